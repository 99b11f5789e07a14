"""Training cost per unit of work: the landed recipe ("old") against the new default ("new"), in one run.

    .venv/bin/python benchmarks/bench_training.py [--data RECORDS.jsonl] [--sft-examples 24] [--skip grpo,passn]

On the same examples, model and machine, measures:
- SFT: seconds per example (the trainer's own runtime, so process start-up and model loading are not counted);
- DPO: seconds per pair (TRL's DPOTrainer, chosen = gold label, rejected = another level);
- GRPO: seconds per sampled completion (TRL, one step);
- pass@N: prompts per second sampled, and prompts per second of the one-pass estimate (answer-first only);
- and one lever of the new recipe alone: its SFT with every layer trained (``FULL_LEVER``).

"old" is what the main job did before issue 13: the full prompt (level definitions, 600 description
characters), the template teacher's full trace (~150 tokens), fp32, 256 new tokens for sampling, and SFT with
LLaMA-Factory's recipe as it was (``OLD_SFT_RECIPE``: sequences cut at 768 tokens, activations recomputed, every
layer trained). "new" is what ``configs/crowdflower.yaml``, ``home_depot.yaml`` and ``quickstart.yaml`` run
now: the compact prompt with 50 description characters and the term-match line, the concise trace, bf16
autocast where the CPU has it (``precision: auto``), the sampling length the concise trace needs, and SFT as
``NEW_CONFIG`` declares it (its prompt, ``sft.recipe``, ``sft.overrides`` and ``sft.label_weight``: TRL, the top
8 layers at lr 1e-4, label weight 30), read from the file so the benchmark cannot drift from the configs.
Batch sizes are the recipe files' in both arms.
The last line is ``sft seconds/example: old X, new Y, ratio Z×``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# what recipes/llamafactory/sft_cot_smollm2.yaml said before issue 13's levers, over today's file
OLD_SFT_RECIPE = {"cutoff_len": 768, "disable_gradient_checkpointing": False, "finetuning_type": "full"}
NEW_CONFIG = REPO / "configs" / "crowdflower.yaml"  # the "new" arm's prompt and SFT section
FULL_LEVER = {"freeze_trainable_layers": None}  # the new recipe with every layer of SmolLM2's 30 trained


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None, help="labelled records JSONL (default: the shipped ESCI sample)")
    parser.add_argument("--model", default=None, help="checkpoint (default: SmolLM2-135M-Instruct, prepared offline)")
    parser.add_argument("--sft-examples", type=int, default=24)
    parser.add_argument("--dpo-pairs", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=8, help="pass@N and GRPO prompts")
    parser.add_argument("--n", type=int, default=4, help="samples per prompt (pass@N) and group size (GRPO)")
    parser.add_argument("--new-max-tokens", type=int, default=64, help="sampling length for the concise trace")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: dpo, grpo, passn, full")
    return parser.parse_args(argv)


def load_records(path: str | None):
    from taosr1_plugins.data.samples import esci_sample_path
    from taosr1_plugins.data.importing import import_records
    from taosr1_plugins.core.jsonl import read_jsonl
    from taosr1_plugins.core.records import Record

    if path:
        return read_jsonl(path, Record)
    return list(import_records("esci", esci_sample_path()))


def with_style(model: Path, style, folder: Path) -> Path:
    """A view of ``model`` (symlinks) that carries ``style`` as its prompt file, as a trained model would."""
    from taosr1_plugins.core.prompts import PROMPT_FILE, write_prompt_style

    folder.mkdir(parents=True, exist_ok=True)
    for entry in model.iterdir():
        if entry.name != PROMPT_FILE:
            os.symlink(entry.resolve(), folder / entry.name)
    write_prompt_style(folder, style)
    return folder


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))

    from taosr1_plugins.cot.balance import balanced_examples
    from taosr1_plugins.cot.teacher_backends.template import concise_reasoning, template_reasoning
    from taosr1_plugins.integrations.llamafactory.export import export_llamafactory
    from taosr1_plugins.core.jsonl import read_jsonl, write_jsonl
    from taosr1_plugins.core.models import prepare_smollm2
    from taosr1_plugins.core.records import Record
    from taosr1_plugins.integrations.trl.finetune import run_sft_trl
    from taosr1_plugins.integrations.llamafactory.launch import train
    from taosr1_plugins.training.backend import recipe_args
    from taosr1_plugins.core.precision import use_bf16
    from taosr1_plugins.core.prompts import FULL
    from taosr1_plugins.core.schemes import get_scheme
    from taosr1_plugins.pipeline.config import load_config

    shipped = load_config(NEW_CONFIG)
    model = Path(args.model) if args.model else prepare_smollm2(progress=False)
    records = balanced_examples(load_records(args.data), None, "none", seed=0)
    scheme = get_scheme(records[0].scheme)
    bf16, note = use_bf16("auto")
    print(f"machine: {os.cpu_count()} CPUs; new precision: {note}")
    recipes = {
        "old": {"style": FULL, "reason": template_reasoning, "bf16": False, "max_tokens": 256, "sft": OLD_SFT_RECIPE},
        "new": {"style": shipped.prompt, "reason": concise_reasoning, "bf16": bf16, "max_tokens": args.new_max_tokens,
                "sft": shipped.sft.overrides},
    }
    results: dict[str, dict[str, float]] = {name: {} for name in recipes}
    work = Path(tempfile.mkdtemp(prefix="bench_training_"))
    sft_records = records[: args.sft_examples]

    def sft_seconds_per_example(name: str, recipe: dict, sft_overrides: dict, out: str = "sft") -> float:
        fixed = {"num_train_epochs": 1, "bf16": recipe["bf16"], "logging_steps": 1000}
        if name == "old":  # LLaMA-Factory, the main job's framework before issue 13
            sft_args = recipe_args(
                REPO / "recipes" / "llamafactory" / "sft_cot_smollm2.yaml", {**sft_overrides, **fixed},
                model_name_or_path=model, dataset_dir=work / name / "lf", dataset="bench",
                output_dir=work / name / out, seed=0,
            )
            return train(work / name, sft_args, "cli")["train_runtime"] / len(sft_records)
        sft_args = recipe_args(shipped.resolve(shipped.sft.recipe), {**sft_overrides, **fixed}, seed=0)
        cot = read_jsonl(work / name / "cot.jsonl", Record)
        summary = run_sft_trl(model, cot, work / name / out, sft_args, "answer_first", recipe["style"],
                              shipped.sft.label_weight)
        return summary["train_runtime"] / len(sft_records)

    for name, recipe in recipes.items():
        styled = with_style(model, recipe["style"], work / name / "model")
        cot = [r.model_copy(update={"cot": recipe["reason"](r, scheme)}) for r in sft_records]
        write_jsonl(work / name / "cot.jsonl", cot)
        export_llamafactory(work / name / "cot.jsonl", work / name / "lf", name="bench", fmt="answer_first", style=recipe["style"])
        results[name]["sft_s_per_example"] = sft_seconds_per_example(name, recipe, recipe["sft"])

        if "dpo" not in skip:
            results[name]["dpo_s_per_pair"] = bench_dpo(styled, records[: args.dpo_pairs], scheme, recipe, work / name)
        if "grpo" not in skip:
            results[name]["grpo_s_per_completion"] = bench_grpo(styled, records[: args.prompts], recipe, args.n, work / name)
        if "passn" not in skip:
            results[name].update(bench_passn(styled, records[: args.prompts], scheme, recipe, args.n, work / name))

    if "full" not in skip:  # what training only the top 8 layers buys inside the new recipe
        full = sft_seconds_per_example("new", recipes["new"], {**shipped.sft.overrides, **FULL_LEVER}, out="sft_full")
        print(f"sft seconds/example, new with every layer trained: {full:.2f}; "
              f"the top 8 layers alone are {full / results['new']['sft_s_per_example']:.2f}× faster")
    print(json.dumps(results, indent=2))
    for key in results["old"]:
        old, new = results["old"][key], results["new"][key]
        faster = old / new if key.endswith(("per_example", "per_pair", "per_completion")) else new / old
        print(f"{key}: old {old:.3f}, new {new:.3f}, {faster:.2f}× {'faster' if faster >= 1 else 'slower'}")
    old, new = results["old"]["sft_s_per_example"], results["new"]["sft_s_per_example"]
    print(f"sft seconds/example: old {old:.2f}, new {new:.2f}, ratio {old / new:.1f}×")


def bench_dpo(model: Path, records, scheme, recipe, work: Path) -> float:
    from taosr1_plugins.core.formats import render_response
    from taosr1_plugins.integrations.trl.finetune import run_dpo_trl
    from taosr1_plugins.core.jsonl import write_jsonl
    from taosr1_plugins.core.prompts import build_messages

    rows = []
    for record in records:
        wrong = next(level.key for level in scheme.levels if level.key != record.label)
        messages = build_messages(record, scheme, "answer_first", recipe["style"])

        def answer(label):
            return [{"role": "assistant", "content": render_response(recipe["reason"](record, scheme), label, scheme, "answer_first")}]

        rows.append({"prompt": messages, "chosen": answer(record.label), "rejected": answer(wrong)})
    write_jsonl(work / "pairs.jsonl", rows)
    dpo_args = {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 1, "num_train_epochs": 1,
                "learning_rate": 5e-7, "bf16": recipe["bf16"], "logging_steps": 1000, "max_length": 768, "seed": 0}
    summary = run_dpo_trl(model, work / "pairs.jsonl", work / "dpo", dpo_args)
    return summary["train_runtime"] / len(rows)


def bench_grpo(model: Path, records, recipe, n: int, work: Path) -> float:
    from taosr1_plugins.grpo.config import GrpoSettings
    from taosr1_plugins.integrations.trl.run import run_grpo_trl

    settings = GrpoSettings(format="answer_first", sampler="uniform", steps=1, prompts_per_step=2, num_generations=n,
                            max_completion_length=recipe["max_tokens"],
                            dynamic_sampling={"enabled": False})
    started = time.perf_counter()
    run_grpo_trl(model, records, [], work / "grpo", settings)
    return (time.perf_counter() - started) / (settings.prompts_per_step * n)


def bench_passn(model: Path, records, scheme, recipe, n: int, work: Path) -> dict[str, float]:
    from taosr1_plugins.passn.one_pass import one_pass_difficulty
    from taosr1_plugins.passn.sample import PassnShardSettings, sample_passn
    from taosr1_plugins.deploy.scoring import ScoreSettings, load_scorer

    settings = PassnShardSettings(n=n, max_new_tokens=recipe["max_tokens"], fmt="answer_first")
    started = time.perf_counter()
    sample_passn(str(model), records, work / "samples.jsonl", settings, backend_options={"batch_size": 8}, overwrite=True)
    sampled = len(records) / (time.perf_counter() - started)
    scorer = load_scorer(model, scheme, ScoreSettings(batch_size=8))
    started = time.perf_counter()
    one_pass_difficulty(scorer, records, n, 1.0)
    return {"passn_prompts_per_s": sampled, "one_pass_prompts_per_s": len(records) / (time.perf_counter() - started)}


if __name__ == "__main__":
    main()
