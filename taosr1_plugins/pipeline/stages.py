"""The main job's stages, in order: each reads the files of earlier stages and writes its own folder."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from taosr1_plugins.core.display import print_table
from taosr1_plugins.core.formats import ResponseFormat
from taosr1_plugins.core.jsonl import atomic_write, read_jsonl, write_jsonl
from taosr1_plugins.core.prompts import rendering_probe
from taosr1_plugins.core.records import Record
from taosr1_plugins.pipeline.config import RunConfig
from taosr1_plugins.pipeline.context import RunContext
from taosr1_plugins.pipeline.training import grpo_start_model, train, training_job
from taosr1_plugins.training.backend import DryRunStop

__all__ = ["STAGES", "STAGE_NAMES", "DryRunStop"]

console = Console()


@dataclass
class Stage:
    name: str
    run: Callable[[RunContext], dict[str, Any]]
    settings: Callable[[RunConfig], Any]
    inputs: Callable[[RunContext], list[Path]]
    enabled: Callable[[RunConfig], bool] = lambda config: True


def _input_file(config: RunConfig) -> Path:
    if config.data.input is None:
        from taosr1_plugins.data.samples import esci_sample_path

        return esci_sample_path()
    return config.resolve(config.data.input)


def run_import(ctx: RunContext) -> dict[str, Any]:
    from taosr1_plugins.data.importing import import_records

    data = ctx.config.data
    records = list(import_records(data.source, _input_file(ctx.config), ctx.scheme, data.limit, data))
    count = write_jsonl(ctx.path("data", "all.jsonl"), records)
    return {"records": count, "input": str(_input_file(ctx.config))}


def _import_settings(config: RunConfig) -> dict[str, Any]:
    # map, labels and delimiter came later: left out while unset, so run directories made before them stay done
    data = config.data
    return data.model_dump(exclude={name for name in ("map", "labels", "delimiter") if not getattr(data, name)})


def _import_inputs(ctx: RunContext) -> list[Path]:
    from taosr1_plugins.core.schemes import is_scheme_file

    scheme = ctx.config.scheme_ref()
    # a YAML scheme is an input like the raw file: an edited level or raw label imports again
    return [_input_file(ctx.config), *([Path(scheme)] if scheme and is_scheme_file(scheme) else [])]


def run_split(ctx: RunContext) -> dict[str, Any]:
    from taosr1_plugins.data.splits import GROUP_KEYS, sample_items, split_groups

    split = ctx.config.split
    records = read_jsonl(ctx.path("data", "all.jsonl"), Record)
    parts = split_groups(records, GROUP_KEYS[split.by], split.ratios, seed=ctx.config.seed)
    sizes = {}
    for name, part in zip(("train", "dev", "test"), parts):
        # the cap comes after the split by query, so a capped split still shares no query with the others
        sizes[name] = write_jsonl(ctx.split_path(name), sample_items(part, split.max_pairs.get(name), ctx.config.seed))
    return sizes


def run_cot(ctx: RunContext) -> dict[str, Any]:
    from taosr1_plugins.cot.generate import CotOptions, generate_cot
    from taosr1_plugins.cot.teachers import get_teacher

    cot = ctx.config.cot
    train = read_jsonl(ctx.split_path("train"), Record)
    report = generate_cot(
        train,
        get_teacher(cot.teacher, **cot.options),
        ctx.path("cot", "train.jsonl"),
        pool=train,
        # the teacher reasons first whatever form the student trains in: `cot` keeps only the reasoning, and
        # the export renders it in the run's format
        options=CotOptions(**cot.model_dump(exclude={"options"})),
        teacher_name=cot.teacher,
        # a re-run of this stage means its settings or inputs changed: the old output is stale
        overwrite=True,
        progress=True,
    )
    return {key: value for key, value in report.to_dict().items() if key != "per_level"}


def export_sft_examples(
    ctx: RunContext, records: Path, out_dir: Path, name: str, *, allow_missing_cot: bool = False,
    fmt: ResponseFormat | None = None, examples: int | None = None,
) -> dict[str, Any]:
    """The SFT training set: ``sft.examples`` (or ``examples``) records of ``records`` with ``sft.balance`` level
    shares, written as ``out_dir/NAME.records.jsonl`` (TRL reads it) and as LLaMA-Factory dataset NAME in
    ``out_dir``, in the run's response format unless ``fmt`` says otherwise."""
    from collections import Counter

    from taosr1_plugins.cot.balance import balanced_examples
    from taosr1_plugins.integrations.llamafactory.export import export_llamafactory

    sft = ctx.config.sft
    chosen = balanced_examples(read_jsonl(records, Record), examples or sft.examples, sft.balance, seed=ctx.config.seed)
    chosen_file = out_dir / f"{name}.records.jsonl"
    write_jsonl(chosen_file, chosen)
    result = export_llamafactory(
        chosen_file, out_dir, name=name, fmt=fmt or ctx.config.format, allow_missing_cot=allow_missing_cot,
        style=ctx.config.prompt,
    )
    levels = Counter(record.label for record in chosen)
    return {"dataset": result.name, "dataset_dir": str(out_dir), "records_file": str(chosen_file),
            "records": result.records, "per_level": dict(sorted(levels.items())), "distinct": len({r.id for r in chosen})}


def run_export(ctx: RunContext) -> dict[str, Any]:
    traces = ctx.path("cot", "train.jsonl")
    _needs_records(traces, read_jsonl(traces, Record), "the CoT stage kept no trace")
    return export_sft_examples(ctx, traces, ctx.path("lf_data"), "taosr1_train")


def _needs_records(path: Path, records: list[Record], why: str) -> list[Record]:
    # an empty file an earlier stage wrote on purpose: named with that stage's cause (its warning says more),
    # not as the later step's own "no records" or "records of one scheme, got []"
    if not records:
        from taosr1_plugins.errors import DataError

        raise DataError(str(path), None, None, f"no records: {why} (see its warning above, or in manifest.json)")
    return records


def _bf16(section: Any) -> bool:
    from taosr1_plugins.core.precision import use_bf16

    bf16, note = use_bf16(section.precision)
    console.print(f"[dim]precision: {note}[/dim]")
    return bf16


def fine_tune_sft(
    ctx: RunContext, exported: dict[str, Any], stage_dir: Path, overrides: dict[str, Any], *,
    model: str | Path | None = None, fmt: ResponseFormat | None = None, label_weight: float | None = None,
) -> dict[str, Any]:
    """SFT of the base model (or ``model``) with the configured framework and recipe into ``stage_dir/model``.

    ``exported`` is what :func:`export_sft_examples` returned (the examples as records and as a LLaMA-Factory
    dataset: each framework reads its own). ``examples`` in the result counts the rows trained on.
    """
    data = {"records": Path(exported["records_file"]), "dataset_dir": Path(exported["dataset_dir"]),
            "dataset": exported["dataset"], "examples": exported["records"]}
    backend, job = training_job(ctx, "sft", model=model or ctx.base_model(), data=data, work_dir=stage_dir,
                                overrides=overrides, bf16=_bf16(ctx.config.sft), fmt=fmt, label_weight=label_weight)
    return train(backend, job)


def run_sft(ctx: RunContext) -> dict[str, Any]:
    from transformers import AutoTokenizer

    # before minutes of training: label probabilities later need single-token verbalizers
    ctx.scheme.check_tokenizer(AutoTokenizer.from_pretrained(ctx.base_model()))
    exported = ctx.manifest.stage("export").get("outputs", {})
    return fine_tune_sft(ctx, exported, ctx.path("sft"), ctx.config.sft.overrides)


def passn_prompts(ctx: RunContext, count: int | None) -> list[Record]:
    """The training prompts stage 2 samples or estimates: the first ``count`` with ``passn.balance`` level shares.

    GRPO draws its prompts by these prompts' difficulty, and its reward is accuracy on them: drawn with the data's
    skew, RL teaches the majority level back to a student whose SFT was balanced against it."""
    from taosr1_plugins.cot.balance import balanced_examples

    records = read_jsonl(ctx.path("cot", "train.jsonl"), Record)
    if ctx.config.passn.balance == "none":
        return records[:count]
    count = min(count or len(records), len(records))
    chosen = balanced_examples(records, count, ctx.config.passn.balance, seed=ctx.config.seed)
    # a level smaller than its share repeats records; a prompt is sampled or estimated once
    return list({record.id: record for record in chosen}.values())


def run_passn(ctx: RunContext) -> dict[str, Any]:
    from taosr1_plugins.passn.config import PassnSettings
    from taosr1_plugins.passn.generation import generation_options
    from taosr1_plugins.passn.sample import PassnShardSettings, sample_passn, write_difficulty

    passn = ctx.config.passn
    prompts = passn_prompts(ctx, passn.limit)
    settings = PassnShardSettings(
        **passn.model_dump(include=set(PassnSettings.model_fields)), seed=ctx.config.seed, fmt=ctx.config.format
    )
    summary = sample_passn(
        str(ctx.model_dir("sft")),
        prompts,
        ctx.path("passn", "samples.jsonl"),
        settings,
        backend_options=generation_options(passn.backend, passn.batch_size, passn.options, seed=ctx.config.seed),
        # a re-run of this stage means its settings or inputs changed: the old samples are stale
        overwrite=True,
        progress=True,
    )
    difficulty = write_difficulty(ctx.path("passn", "samples.jsonl"), ctx.path("passn", "difficulty.jsonl"))
    result = {**summary, "difficulty": difficulty["buckets"]}
    if ctx.config.format is ResponseFormat.ANSWER_FIRST:  # one_pass difficulty needs it (a RunConfig validator)
        result["one_pass"] = _one_pass_difficulty(ctx)
    return result


def _one_pass_difficulty(ctx: RunContext) -> dict[str, Any]:
    """One-pass difficulty of the training prompts, its agreement with sampled pass@N on the sampled ones, and
    (``passn.difficulty: one_pass``) the difficulty file GRPO reads."""
    from taosr1_plugins.passn.difficulty import DifficultyRow
    from taosr1_plugins.passn.one_pass import agreement, one_pass_difficulty
    from taosr1_plugins.deploy.scoring import ScoreSettings, load_scorer

    passn = ctx.config.passn
    prompts = passn_prompts(ctx, passn.one_pass_prompts)
    if passn.backend == "vllm":  # the engine pass@N sampled with (core/vllm/engine.py keeps it open)
        from taosr1_plugins.passn.generation import generation_options, get_generation_backend

        # the same options as pass@N's, seed included, so that the engine it left open is the one asked for
        options = generation_options(passn.backend, passn.batch_size, passn.options, seed=ctx.config.seed)
        scorer = get_generation_backend("vllm", model=str(ctx.model_dir("sft")), **options).label_scorer(ctx.scheme)
    else:
        scorer = load_scorer(ctx.model_dir("sft"), ctx.scheme, ScoreSettings(batch_size=passn.batch_size))
    rows = one_pass_difficulty(scorer, prompts, passn.n, passn.temperature)
    write_jsonl(ctx.path("passn", "difficulty_one_pass.jsonl"), rows)
    sampled = read_jsonl(ctx.path("passn", "difficulty.jsonl"), DifficultyRow)
    agree = agreement(sampled, rows)
    with atomic_write(ctx.path("passn", "one_pass_agreement.json")) as fh:
        json.dump(agree, fh, indent=2)
    console.print(f"one-pass difficulty vs sampled pass@{passn.n}: {json.dumps(agree)}", highlight=False, soft_wrap=True)
    if passn.difficulty == "one_pass":
        write_jsonl(ctx.path("passn", "difficulty.jsonl"), rows)
    return {"prompts": len(rows), "agreement": agree}


def run_pairs(ctx: RunContext) -> dict[str, Any]:
    from taosr1_plugins.integrations import dpo_pair_writers
    from taosr1_plugins.passn.pairs import PairOptions, build_pairs, pairs_table

    pairs = ctx.config.dpo
    summary = build_pairs(
        ctx.path("passn", "samples.jsonl"),
        read_jsonl(ctx.path("cot", "train.jsonl"), Record),
        ctx.path("pairs"),
        PairOptions(**pairs.model_dump(include=_pair_fields())),
        writers=dpo_pair_writers(),
    )
    print_table(pairs_table(summary), console)
    return {"pairs": summary["pairs"]}


def _pair_fields() -> set[str]:
    from taosr1_plugins.passn.config import PairSettings

    return set(PairSettings.model_fields)


def run_dpo(ctx: RunContext) -> dict[str, Any]:
    backend, job = training_job(ctx, "dpo", model=ctx.model_dir("sft"), data={"pairs_dir": ctx.path("pairs")},
                                bf16=_bf16(ctx.config.dpo))
    return train(backend, job)


def run_grpo(ctx: RunContext) -> dict[str, Any]:
    from taosr1_plugins.passn.difficulty import DifficultyRow

    difficulty_file = ctx.path("passn", "difficulty.jsonl")
    data = {"records": read_jsonl(ctx.path("cot", "train.jsonl"), Record),
            "difficulty": read_jsonl(difficulty_file, DifficultyRow) if difficulty_file.exists() else []}
    backend, job = training_job(ctx, "grpo", model=grpo_start_model(ctx), data=data)
    _warn_unestimated_prompts(data["records"], data["difficulty"], job.method["settings"])
    return train(backend, job)


def _warn_unestimated_prompts(records: list[Record], difficulty: list[Any], settings: Any) -> None:
    # pass@N or the one-pass estimate usually covers a budgeted subset; the rest fall in the "unknown" bucket,
    # and with its default weight they can take most of the draws, so difficulty hardly chooses anything
    from taosr1_plugins.grpo.difficulty_mix import UNKNOWN
    from taosr1_plugins.grpo.prompts import select_prompts

    if not difficulty:
        return
    summary = select_prompts(records, difficulty, settings)[1].summary  # the sampler GRPO itself will use
    share = summary["bucket_probabilities"].get(UNKNOWN, 0.0)
    if share > 0.5:
        console.print(
            f"[yellow]GRPO: {summary['without_difficulty']} training prompts have no difficulty estimate (against "
            f"{len(difficulty)} with one) and take {share:.0%} of the draws as '{UNKNOWN}'; "
            f"grpo.overrides.sampling.weights.{UNKNOWN}: 0 draws only estimated prompts[/yellow]"
        )


def post_cot_start_model(ctx: RunContext) -> Path:
    """The last think-first model: GRPO's, else DPO's, else SFT's."""
    return ctx.model_dir([stage for stage, _ in THINK_FIRST_MODELS if stage_enabled(ctx.config, stage)][-1])


def run_post_cot(ctx: RunContext) -> dict[str, Any]:
    """Post-CoT conversion (the paper's order): the think-first policy fine-tuned on the same examples as SFT, each
    rendered answer-first (label, then the same trace), so that deploy reads its label in one forward pass."""
    post_cot = ctx.config.post_cot
    exported = export_sft_examples(ctx, ctx.path("cot", "train.jsonl"), ctx.path("post_cot", "lf_data"),
                                   "taosr1_post_cot", fmt=ResponseFormat.ANSWER_FIRST, examples=post_cot.examples)
    return fine_tune_sft(ctx, exported, ctx.path("post_cot"), {**ctx.config.sft.overrides, **post_cot.overrides},
                         model=post_cot_start_model(ctx), fmt=ResponseFormat.ANSWER_FIRST,
                         label_weight=post_cot.label_weight)


# (stage, row label in tables) for every model the main job may train, in training order
THINK_FIRST_MODELS = (("sft", "SFT-CoT"), ("dpo", "+DPO"), ("grpo", "+GRPO"))
TRAINED_MODELS = (*THINK_FIRST_MODELS, ("post_cot", "+post-CoT"))


def model_format(config: RunConfig, stage: str) -> ResponseFormat:
    """The response form a stage's model was trained to give: post_cot's is answer-first whatever the run's."""
    return ResponseFormat.ANSWER_FIRST if stage == "post_cot" else config.format


def served_stages(config: RunConfig) -> list[str]:
    """The trained models the deploy stage scores: those that answer first. A think-first run without post_cot
    still has all of its models scored (with a warning), as before post_cot existed."""
    answer_first = [stage for stage in trained_stages(config) if model_format(config, stage) is ResponseFormat.ANSWER_FIRST]
    return answer_first or trained_stages(config)


def evaluated_models(ctx: RunContext) -> dict[str, tuple[str, Path | str]]:
    """slug -> (label, model) for the base model (optional) and every enabled training stage."""
    models: dict[str, tuple[str, Path | str]] = {}
    if ctx.config.eval.zero_shot_baseline:
        models["base"] = ("base (zero-shot)", ctx.base_model())
    labels = dict(TRAINED_MODELS)
    for stage in trained_stages(ctx.config):
        models[stage] = (labels[stage], ctx.model_dir(stage))
    return models


def run_eval(ctx: RunContext) -> dict[str, Any]:
    from taosr1_plugins.evaluation.generative import evaluate_model
    from taosr1_plugins.evaluation.metrics import metrics_table

    ev = ctx.config.eval
    records = _needs_records(ctx.split_path(ev.split), read_jsonl(ctx.split_path(ev.split), Record),
                             f"the split stage left {ev.split} empty, and eval.split is {ev.split}")[: ev.limit]
    results = {}
    for slug, (label, model) in evaluated_models(ctx).items():
        results[label] = evaluate_model(
            model,
            records,
            ctx.scheme,
            ctx.path("eval", f"predictions_{slug}.jsonl"),
            fmt=model_format(ctx.config, slug),
            max_new_tokens=ev.max_new_tokens,
            batch_size=ev.batch_size,
            # the base model was not trained on any prompt: it gets the run's
            style=ctx.config.prompt if slug == "base" else None,
            backend=ev.backend,
            options=ev.options,
        )
    with atomic_write(ctx.path("eval", "metrics.json")) as fh:
        json.dump({label: m.to_dict() for label, m in results.items()}, fh, indent=2)
    # whole: Markdown when stdout is not a terminal, folding cells in a narrow one (core/display.py)
    print_table(metrics_table(results, ctx.scheme, title=f"evaluation on {ev.split} ({len(records)} pairs)"), console)
    return {label: {"macro_f1": m.macro_f1, "accuracy": m.accuracy, "n": m.n} for label, m in results.items()}


def _eval_settings(config: RunConfig) -> dict[str, Any]:
    # an hf eval dumps as before eval.backend existed, so finished runs keep their fingerprints
    hf = config.eval.backend == "hf" and not config.eval.options
    return config.eval.model_dump(exclude={"backend", "options"} if hf else None)


def trained_stages(config: RunConfig) -> list[str]:
    """The enabled training stages, in order; the last one trains the model that gets deployed."""
    return [stage for stage, _ in TRAINED_MODELS if stage_enabled(config, stage)]


def _model_weights(ctx: RunContext, stages: list[str]) -> list[Path]:
    return [weights for stage in stages for weights in _weights(ctx.model_dir(stage))]


def run_deploy(ctx: RunContext) -> dict[str, Any]:
    from taosr1_plugins.deploy.calibration import fit_cumpt, load_cumpt, write_cumpt
    from taosr1_plugins.evaluation.report import evaluate_scores
    from taosr1_plugins.deploy.scoring import ScoreSettings, read_scores, score_records

    deploy = ctx.config.deploy
    served = served_stages(ctx.config)
    if model_format(ctx.config, served[-1]) is not ResponseFormat.ANSWER_FIRST:
        console.print(
            "[yellow]warning:[/yellow] post-CoT scoring reads the label right after '<answer>', a form these "
            "models were not trained in (format: think_answer); set `format: answer_first` to train for it, or "
            "`post_cot.enabled: true` to convert the think-first policy after RL."
        )
    settings = ScoreSettings(backend=deploy.backend, batch_size=deploy.batch_size, overwrite=True, progress=True,
                             options=deploy.options, executor=deploy.executor, ray=deploy.ray)
    final = served[-1]
    dev = _needs_records(ctx.split_path("dev"), read_jsonl(ctx.split_path("dev"), Record),
                         "the split stage left dev empty, and CumPT is fitted on dev")
    test = _needs_records(ctx.split_path("test"), read_jsonl(ctx.split_path("test"), Record),
                          "the split stage left test empty, and the deploy report is on test")
    score_files, names = [], []
    labels = dict(TRAINED_MODELS)
    # model by model, the final one's dev scores last but one: a backend that keeps one engine open per process
    # (vllm, core/vllm/engine.py) starts each model's engine once and ends it before the next one's
    for stage in served:
        if stage == final:
            dev_scores = score_records(ctx.model_dir(final), dev, ctx.path("deploy", "dev_scores.jsonl"), settings)
        score_files.append(score_records(ctx.model_dir(stage), test, ctx.path("deploy", f"test_scores_{stage}.jsonl"), settings))
        names.append(labels[stage])
    cumpt_path = write_cumpt(
        fit_cumpt(dev_scores, objective=deploy.objective, precision_targets=deploy.precision_targets or None,
                  calibration=deploy.calibration),
        ctx.path("deploy", "cumpt.json"),
    )
    cumpt = load_cumpt(cumpt_path)
    results = [evaluate_scores(read_scores(path), cumpt, name, irrelevant=deploy.irrelevant or None)
               for path, name in zip(score_files, names)]
    report = _write_run_report(ctx, final)
    final_result = results[-1]
    console.print(
        f"post-CoT scoring of the {final} model on test ({final_result.metrics.n} pairs): macro-F1 "
        f"{final_result.metrics.macro_f1:.3f} with CumPT vs {final_result.argmax_metrics.macro_f1:.3f} with argmax; "
        f"report: {report or 'not written (see the warning above)'}"
    )
    return {
        "model": final,
        "cumpt": str(cumpt_path),
        "report": str(report) if report else None,
        "test": {
            r.name: {"macro_f1_cumpt": round(r.metrics.macro_f1, 4), "macro_f1_argmax": round(r.argmax_metrics.macro_f1, 4),
                     "ndcg_at_10": None if r.ranking.ndcg_at_10 is None else round(r.ranking.ndcg_at_10, 4),
                     "over_recall": None if r.over_recall is None else round(r.over_recall, 4)}
            for r in results
        },
    }


def _write_run_report(ctx: RunContext, final: str) -> Path | None:
    """The run's one report (RUN_DIR/report/report.html, as `taosr1 report` writes it, with whatever baselines
    are there so far); a report that cannot be written warns instead of failing the scoring done."""
    from taosr1_plugins.errors import DataError
    from taosr1_plugins.evaluation.ablation import write_ablation

    try:
        _, paths = write_ablation(ctx.run_dir, TRAINED_MODELS, irrelevant=ctx.config.deploy.irrelevant or None, final=final)
    except DataError as exc:
        console.print(f"[yellow]warning:[/yellow] the report was not written: {escape(str(exc))}; "
                      f"`taosr1 report {ctx.run_dir}` writes it", highlight=False)
        return None
    return paths["html"]


def _recipe(ctx: RunContext, stage: str) -> list[Path]:
    """A training stage's recipe file, if its framework reads one."""
    recipe = getattr(ctx.config, stage).recipe
    return [ctx.config.resolve(recipe)] if recipe else []


def _weights(model_dir: Path) -> list[Path]:
    """A model's weight files: one for small models, shards (model-0000k-of-0000n) for large ones."""
    return sorted(model_dir.glob("*.safetensors")) or [model_dir / "model.safetensors"]


STAGES = (
    Stage("import", run_import, lambda c: _import_settings(c), _import_inputs),
    Stage("split", run_split, lambda c: [c.split.model_dump(), c.seed], lambda ctx: [ctx.path("data", "all.jsonl")]),
    Stage("cot", run_cot, lambda c: [c.cot.model_dump(), str(c.format)], lambda ctx: [ctx.split_path("train")]),
    Stage(
        "export",
        run_export,
        lambda c: [str(c.format), c.prompt.model_dump(), rendering_probe(c.prompt, c.format), c.sft.examples,
                   c.sft.balance, c.seed],
        lambda ctx: [ctx.path("cot", "train.jsonl")],
    ),
    Stage(
        "sft",
        run_sft,
        lambda c: [c.sft.model_dump(), c.model.model_dump(), c.prompt.model_dump(), rendering_probe(c.prompt, c.format),
                   c.seed],
        lambda ctx: [ctx.path("lf_data"), *_recipe(ctx, "sft")],
    ),
    Stage(
        "passn",
        run_passn,
        lambda c: [c.passn.model_dump(), str(c.format), c.seed],
        lambda ctx: [ctx.path("cot", "train.jsonl"), *_weights(ctx.model_dir("sft"))],
        enabled=lambda c: c.passn.enabled or c.dpo.enabled,
    ),
    Stage(
        "pairs",
        run_pairs,
        lambda c: c.dpo.model_dump(include=_pair_fields()),
        lambda ctx: [ctx.path("passn", "samples.jsonl"), ctx.path("cot", "train.jsonl")],
        enabled=lambda c: c.dpo.enabled,
    ),
    Stage(
        "dpo",
        run_dpo,
        lambda c: [c.dpo.model_dump(), c.seed],
        lambda ctx: [ctx.path("pairs"), *_recipe(ctx, "dpo"), *_weights(ctx.model_dir("sft"))],
        enabled=lambda c: c.dpo.enabled,
    ),
    Stage(
        "grpo",
        run_grpo,
        lambda c: [c.grpo.model_dump(), c.dpo.enabled, c.seed],
        lambda ctx: [
            ctx.path("cot", "train.jsonl"),
            ctx.path("passn", "difficulty.jsonl"),
            ctx.config.resolve(ctx.config.grpo.recipe),
            *_weights(grpo_start_model(ctx)),
        ],
        enabled=lambda c: c.grpo.enabled,
    ),
    Stage(
        "post_cot",
        run_post_cot,
        lambda c: [c.post_cot.model_dump(), c.sft.model_dump(), c.prompt.model_dump(),
                   rendering_probe(c.prompt, ResponseFormat.ANSWER_FIRST), c.seed],
        lambda ctx: [ctx.path("cot", "train.jsonl"), *_recipe(ctx, "sft"), *_weights(post_cot_start_model(ctx))],
        enabled=lambda c: c.post_cot.enabled,
    ),
    Stage(
        "eval",
        run_eval,
        lambda c: [_eval_settings(c), trained_stages(c)],
        lambda ctx: [ctx.split_path(ctx.config.eval.split), *_model_weights(ctx, trained_stages(ctx.config))],
    ),
    Stage(
        "deploy",
        run_deploy,
        # the models it scores: with post_cot on, the think-first ones are evaluated (eval) but not served
        lambda c: [c.deploy.fingerprint(), served_stages(c)],
        lambda ctx: [ctx.split_path("dev"), ctx.split_path("test"), *_model_weights(ctx, served_stages(ctx.config))],
        enabled=lambda c: c.deploy.enabled,
    ),
)
STAGE_NAMES = tuple(stage.name for stage in STAGES)


def stage_enabled(config: RunConfig, name: str) -> bool:
    return next(stage for stage in STAGES if stage.name == name).enabled(config) if name in STAGE_NAMES else False
