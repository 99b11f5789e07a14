"""Difficulty-based prompt selection (offline), the OpenRLHF prompt files, and online group filtering."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from types import SimpleNamespace

import pytest

from taosr1_plugins.data.samples import esci_sample_path
from taosr1_plugins.passn.difficulty import difficulty_row
from taosr1_plugins.grpo.dynamic_sampling import DynamicSamplingSettings, groups_with_signal, plan_batch, refill_groups
from taosr1_plugins.grpo.difficulty_mix import DifficultyMix, mix_by_difficulty

# prompt id -> number of correct samples out of 8: always, easy, medium, hard, never
PATTERN = {"always": 8, "easy": 7, "medium": 4, "hard": 1, "never": 0}


def rows_for(ids, n=8):
    rows = []
    for i, pid in enumerate(ids):
        correct = list(PATTERN.values())[i % len(PATTERN)]
        rows.append(difficulty_row(pid, "E", ["E"] * correct + ["S"] * (n - correct), [True] * n))
    return rows


def test_selection_drops_always_upweights_hard_caps_never():
    ids = [f"p{i}" for i in range(50)]  # 10 per bucket
    selection = mix_by_difficulty(ids, rows_for(ids), DifficultyMix(never_max_share=0.1))
    kept = Counter(c.bucket for c in selection.chosen)
    assert kept["always"] == 0
    assert kept["easy"] == kept["medium"] == kept["hard"] == 10
    # at most 10% of those kept are never-right: 3 of 33
    assert kept["never"] == 3 and selection.summary["never_capped"] == 7
    weights = {c.bucket: c.weight for c in selection.chosen}
    assert weights["hard"] > weights["medium"] > weights["easy"] > 0
    probs = selection.bucket_probabilities()
    assert sum(probs.values()) == pytest.approx(1.0)
    assert probs["hard"] == pytest.approx(20 / (5 + 10 + 20 + 3))
    assert selection.summary["per_bucket"]["always"] == {"available": 10, "kept": 0, "weight": 0.0}
    # repetition by weight: hard prompts appear 4x as often as easy ones
    counts = Counter(c.bucket for pid in selection.weighted_ids() for c in selection.chosen if c.id == pid)
    assert counts["hard"] == 4 * counts["easy"]


def test_selection_options():
    ids = [f"p{i}" for i in range(50)]
    rows = rows_for(ids)
    assert len(mix_by_difficulty(ids, rows, DifficultyMix(max_prompts=7)).chosen) == 7
    uniform = mix_by_difficulty(ids, rows, DifficultyMix(weights={"always": 1, "easy": 1, "medium": 1, "hard": 1, "never": 1}, never_max_share=1))
    assert len(uniform.chosen) == 50
    unknown = mix_by_difficulty(ids + ["new"], rows[:10], DifficultyMix())
    assert unknown.summary["without_difficulty"] == 41
    assert mix_by_difficulty(ids, rows, DifficultyMix(seed=3)).ids == mix_by_difficulty(ids, rows, DifficultyMix(seed=3)).ids
    with pytest.raises(ValueError):
        DifficultyMix(weights={"harder": 1.0})


def test_registered_samplers():
    from taosr1_plugins import plugins

    samplers = plugins.registered("prompt_sampler")
    ids = [f"p{i}" for i in range(10)]
    assert len(samplers["uniform"]().select(ids, rows_for(ids)).chosen) == 10
    assert "always" not in samplers["difficulty"]().select(ids, rows_for(ids)).bucket_probabilities()


def test_groups_with_signal_and_batch_plan():
    assert groups_with_signal([1.2, 1.2, 0.2, 1.2, 0.0, 0.0], 2) == [False, True, False]
    with pytest.raises(ValueError):
        groups_with_signal([1.0, 2.0, 3.0], 2)
    # round 0: groups 1 has signal; round 1 (refill): both have signal -> 3 kept with signal
    assert plan_batch([[False, True, False], [True, True]], 3) == [(0, 1), (1, 0), (1, 1)]
    # not enough signal: fill with round 0's zero-variance groups, batch keeps its size
    assert plan_batch([[False, True, False], [False]], 3) == [(0, 1), (0, 0), (0, 2)]
    budget = DynamicSamplingSettings(max_extra_rollouts=10)
    assert refill_groups(missing=3, group_size=4, spent=0, settings=budget) == 2  # 8 of 10 rollouts
    assert refill_groups(missing=3, group_size=4, spent=8, settings=budget) == 0
    assert refill_groups(missing=0, group_size=4, spent=0, settings=budget) == 0
    assert refill_groups(3, 4, 0, DynamicSamplingSettings(enabled=False)) == 0


def test_grpo_prepare_writes_openrlhf_files_that_openrlhf_loads(tmp_path):
    from taosr1_plugins.data.importing import import_records
    from taosr1_plugins.core.jsonl import write_jsonl

    records = list(import_records("esci", esci_sample_path()))[:40]
    write_jsonl(tmp_path / "train.jsonl", records)
    write_jsonl(tmp_path / "difficulty.jsonl", rows_for([r.id for r in records]))
    out = tmp_path / "grpo"
    result = subprocess.run(
        [sys.executable, "-m", "taosr1_plugins.cli", "grpo", "prepare", "--data", str(tmp_path / "train.jsonl"),
         "--difficulty", str(tmp_path / "difficulty.jsonl"), "--out-dir", str(out)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["files"]) == {"easy", "medium", "hard", "never"}  # always-right prompts dropped
    env = dict(line.split("=", 1) for line in (out / "openrlhf_prompts.env").read_text().splitlines() if "=" in line)
    assert env["PROMPT_DATASET"].strip("'") == manifest["prompt_dataset"]

    pytest.importorskip("openrlhf")
    from openrlhf.datasets.prompts_dataset import preprocess_data
    from openrlhf.datasets.utils import blending_datasets

    strategy = SimpleNamespace(print=lambda *a: None, is_rank_0=lambda: True, args=SimpleNamespace(use_ms=False))
    blended = blending_datasets(manifest["prompt_dataset"], manifest["prompt_probs"], strategy, seed=0)
    assert len(blended) >= sum(manifest["rows"].values())
    prompt, label = preprocess_data(blended[0], input_key="prompt", label_key="label", apply_chat_template=lambda m, **kw: json.dumps(m))
    assert label["scheme"] == "esci" and label["gold"] in {"E", "S", "C", "I"}
    assert json.loads(prompt)[0]["role"] == "system"
