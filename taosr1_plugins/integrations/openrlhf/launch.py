"""The GRPO stage on GPUs: `grpo.framework: openrlhf` launches recipes/openrlhf/grpo_taosr1.sh on a Ray cluster.

The stage writes what the script reads (difficulty-mixed prompt files with their probabilities, and the
reward settings the TRL route would use), then runs it with ``POLICY`` (the DPO or SFT model),
``GRPO_DIR`` and ``OUTPUT_DIR``. OpenRLHF saves the final policy in Hugging Face format to
``--ckpt.output_dir``, which is the stage's ``model`` folder, so evaluation and deployment read it like
TRL's (the main job writes the prompt style there, as after every training stage). ``options.launch_env``
passes e.g. ``RAY_ADDRESS``; ``DRY_RUN: "1"`` makes the script print the Ray job command instead of submitting
it (the stage then stops before evaluation, since no model was trained).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from taosr1_plugins.core.jsonl import atomic_write
from taosr1_plugins.core.prompts import PromptStyle
from taosr1_plugins.core.records import Record
from taosr1_plugins.core.schemes import LabelScheme
from taosr1_plugins.errors import UserError
from taosr1_plugins.grpo.config import GrpoSettings
from taosr1_plugins.passn.difficulty import DifficultyRow


class LaunchError(UserError):
    """The job cannot be launched here (no GPU, the OpenRLHF environment not ready), or its script failed."""


def prepare_launch(
    records: Sequence[Record],
    difficulty: Sequence[DifficultyRow],
    scheme: LabelScheme,
    settings: GrpoSettings,
    out_dir: Path,
    policy: Path | None = None,
    *,
    style: PromptStyle | None = None,
    budget_set_by: str | None = None,
) -> dict[str, Any]:
    """Prompt files + ``openrlhf_prompts.env`` and ``reward.yaml`` under ``out_dir``; returns the prompts
    manifest. The prompt is the one the ``policy`` folder was trained with (else ``style``). With the policy's
    tokenizer at hand the prompt budget covers its longest chosen prompt: raised to it, or, when
    ``budget_set_by`` names who set the budget, refused before anything is written (a LaunchError)."""
    from taosr1_plugins.core.prompts import PROMPT_FILE, prompt_style_of
    from taosr1_plugins.grpo.prompts import select_prompts
    from taosr1_plugins.integrations.openrlhf.prompts import write_openrlhf_prompts

    if policy is not None and (policy / PROMPT_FILE).is_file():
        style = prompt_style_of(policy)  # the prompt the policy was trained with
    labelled, selection = select_prompts(records, difficulty, settings)
    if not selection.chosen:
        from taosr1_plugins.grpo.difficulty_mix import why_nothing_kept

        raise LaunchError(why_nothing_kept(selection.summary, difficulty, "the GRPO recipe and grpo.overrides"))
    if policy is not None and (policy / "tokenizer_config.json").is_file():
        by_id = {record.id: record for record in labelled}
        longest = longest_prompt_tokens([by_id[c.id] for c in selection.chosen], scheme, settings, policy, style)
        budget = settings.max_prompt_length or 0
        if longest > budget and budget_set_by:
            raise LaunchError(
                f"max_prompt_length {budget} (set by {budget_set_by}) is shorter than the longest chosen prompt, "
                f"{longest} tokens in {policy}'s tokenizer: OpenRLHF would cut {longest - budget} tokens from its left, "
                "the system prompt with the level definitions; raise it to at least that, or leave it unset"
            )
        if longest > budget:
            settings = settings.model_copy(update={"max_prompt_length": longest})
    return write_openrlhf_prompts(labelled, selection, scheme, out_dir, settings.format, settings, style)


def longest_prompt_tokens(
    records: Sequence[Record], scheme: LabelScheme, settings: GrpoSettings, policy: Path, style: PromptStyle | None = None
) -> int:
    """The longest chat-templated prompt in the policy's tokens, counted as OpenRLHF's PromptDataset and
    rollout executor count it. OpenRLHF cuts a longer prompt from the left, losing the system prompt
    that defines the levels and the answer format."""
    from transformers import AutoTokenizer

    from taosr1_plugins.grpo.prompts import grpo_prompt_row

    tokenizer = AutoTokenizer.from_pretrained(str(policy))
    lengths = []
    for record in records:
        text = tokenizer.apply_chat_template(grpo_prompt_row(record, scheme, settings.format, style)["prompt"],
                                             tokenize=False, add_generation_prompt=True)
        lengths.append(len(tokenizer(text, add_special_tokens=False)["input_ids"]))
    return max(lengths, default=0)


def with_run_lengths(settings: GrpoSettings, overrides: Mapping[str, Any], *new_token_budgets: int) -> GrpoSettings:
    """GRPO's completion budget, unless ``grpo.overrides`` sets it, is the largest of the run's other budgets
    (pass@N, evaluation): a trace those stages let finish must not be cut before its closing tag (and
    score 0) during RL. The CPU TRL recipes keep their own short budget; this applies to OpenRLHF."""
    if "max_completion_length" in overrides or not new_token_budgets:
        return settings
    return settings.model_copy(update={"max_completion_length": max(settings.max_completion_length, *new_token_budgets)})


def script_repo(script: Path) -> Path:
    """The folder holding taosr1_plugins that the launch script puts on the workers' PYTHONPATH, found as the
    script finds it: the checkout (recipes/openrlhf/), or site-packages for the wheel's copy inside the package
    (taosr1_plugins/recipes/openrlhf/)."""
    repo = script.resolve().parents[2]
    return repo if (repo / "taosr1_plugins").is_dir() else repo.parent


def job_nodes(env: Mapping[str, str]) -> int:
    """The Ray nodes the job trains on: NNODES, which recipes/openrlhf/grpo_taosr1.sh passes as num_nodes."""
    value = str(env.get("NNODES", os.environ.get("NNODES", "1")))
    if not value.isdigit() or int(value) < 1:
        raise LaunchError(f"NNODES must be a whole number of nodes >= 1, got {value!r}")
    return int(value)


def is_dry_run(env: Mapping[str, str]) -> bool:
    return str(env.get("DRY_RUN", os.environ.get("DRY_RUN", ""))) == "1"


def launch(
    script: Path, policy: Path, grpo_dir: Path, output_dir: Path, env: Mapping[str, str], log: Path, python: str | None = None
) -> dict[str, Any]:
    """Check the OpenRLHF environment (``python``), then run the launch script, streaming its output to
    ``log``; fails with the reason, or the log's tail when the script fails. A dry run records the
    environment check in ``grpo_dir/openrlhf_env.json`` instead of failing on it."""
    from taosr1_plugins.integrations.openrlhf.env import ALL_PACKAGES, EnvironmentCheckError, check_openrlhf_env, probe, problems
    from taosr1_plugins.integrations.openrlhf.prompts import REWARD_FILE
    from taosr1_plugins.integrations.openrlhf.shared_storage import require_shared_storage

    dry_run = is_dry_run(env)
    python = python or "python3"
    repo = script_repo(script)
    reward_config = grpo_dir / REWARD_FILE
    # every node reads these (the trainer's prompts, the engines' policy, the workers' reward) or writes its shards
    require_shared_storage({
        "the policy": policy, "the prompt files and reward.yaml": grpo_dir, "the final model": output_dir,
        "the checkpoints": Path(env.get("CKPT_PATH", grpo_dir / "checkpoints")), "the checkout (workers' PYTHONPATH)": repo,
    }, job_nodes(env))
    if dry_run:
        try:
            report = probe(python, repo, reward_config, ALL_PACKAGES)
            report["problems"] = problems(report, repo)
        except EnvironmentCheckError as exc:
            report = {"python": python, "problems": [str(exc)]}
        with atomic_write(grpo_dir / "openrlhf_env.json") as fh:
            json.dump(report, fh, indent=2)
    else:
        import torch

        if not torch.cuda.is_available():
            raise LaunchError(
                "grpo.framework 'openrlhf' needs GPUs and a Ray cluster (see recipes/openrlhf/grpo_taosr1.sh); "
                "on CPU use grpo.framework 'trl', or set grpo.options.launch_env.DRY_RUN: '1' to print the launch command"
            )
        try:
            check_openrlhf_env(python, repo, reward_config)
        except EnvironmentCheckError as exc:
            raise LaunchError(str(exc)) from exc
    full_env = {
        **os.environ,
        "POLICY": str(policy),
        "GRPO_DIR": str(grpo_dir),
        "OUTPUT_DIR": str(output_dir),
        "REWARD_CONFIG": str(reward_config),
        "OPENRLHF_PYTHON": python,
        **{key: str(value) for key, value in env.items()},
    }
    started = time.perf_counter()
    with open(log, "w") as fh:
        result = subprocess.run(["bash", str(script)], env=full_env, stdout=fh, stderr=subprocess.STDOUT, text=True)
    tail = log.read_text()[-2000:]
    if result.returncode != 0:
        raise LaunchError(f"{script} exited with {result.returncode}; log {log}:\n{tail}")
    return {"dry_run": dry_run, "log": str(log), "wall_seconds": round(time.perf_counter() - started, 1)}
