"""The prompt files `taosr1 grpo prepare` writes, read by OpenRLHF 0.11.2's own ``blending_datasets``
(what ``train_ppo_ray`` calls on ``--data.prompt_dataset`` / ``--data.prompt_probs``), for several mixes."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from taosr1_plugins.data.samples import esci_sample_path
from taosr1_plugins.passn.difficulty import difficulty_row
from taosr1_plugins.integrations.openrlhf.prompts import probability_strings
from taosr1_plugins.core.jsonl import write_jsonl

# correct answers out of 8 samples -> bucket (thresholds 0.25 / 0.75): 8 always, 7 easy, 4 medium, 1 hard, 0 never
CORRECT_FOR_BUCKET = {"always": 8, "easy": 7, "medium": 4, "hard": 1, "never": 0}

MIXES = {
    # equal thirds: 0.333333 x 3 is what broke numpy's rng.choice(p=...)
    "thirds": ({"easy": 1.0, "medium": 1.0, "hard": 1.0}, {"easy": 5, "medium": 5, "hard": 5}),
    # the shipped default weights on uneven bucket sizes (sevenths and worse)
    "default": ({"always": 0.0, "easy": 0.5, "medium": 1.0, "hard": 2.0, "never": 1.0}, {"always": 2, "easy": 3, "medium": 4, "hard": 6, "never": 1}),
    "six_buckets": ({"easy": 1.0, "medium": 3.0, "hard": 7.0, "never": 11.0, "always": 13.0}, {"easy": 1, "medium": 2, "hard": 3, "never": 3, "always": 1}),
}


class QuietStrategy:
    """The two things blending_datasets asks of OpenRLHF's DeepSpeed strategy object: print and rank."""

    args = SimpleNamespace(use_ms=False)

    def print(self, *args):
        pass

    def is_rank_0(self):
        return False


def _prepare(tmp_path: Path, weights: dict[str, float], sizes: dict[str, int], without_difficulty: int = 2) -> Path:
    from typer.testing import CliRunner

    from taosr1_plugins.cli import app
    from taosr1_plugins.data.importing import import_records

    records = list(import_records("esci", esci_sample_path()))[: sum(sizes.values()) + without_difficulty]
    rows, cursor = [], iter(records)
    for bucket, count in sizes.items():
        for _ in range(count):
            record = next(cursor)
            right = CORRECT_FOR_BUCKET[bucket]
            labels = [record.label] * right + [None] * (8 - right)
            rows.append(difficulty_row(record.id, record.label, labels, [True] * right + [False] * (8 - right)))
    write_jsonl(tmp_path / "train.jsonl", records)
    write_jsonl(tmp_path / "difficulty.jsonl", rows)
    (tmp_path / "grpo.yaml").write_text(yaml.safe_dump({"sampling": {"weights": {**weights, "unknown": 1.0}, "never_max_share": 1.0}}))
    result = CliRunner().invoke(app, [
        "grpo", "prepare", "--data", str(tmp_path / "train.jsonl"), "--difficulty", str(tmp_path / "difficulty.jsonl"),
        "--config", str(tmp_path / "grpo.yaml"), "--out-dir", str(tmp_path / "grpo"),
    ])
    assert result.exit_code == 0, result.output
    return tmp_path / "grpo"


def _env_file(grpo_dir: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (grpo_dir / "openrlhf_prompts.env").read_text().splitlines() if "=" in line)
    return {key: shlex.split(value)[0] for key, value in pairs if not key.startswith("#")}


@pytest.mark.parametrize("mix", sorted(MIXES))
def test_openrlhf_blending_datasets_reads_the_prepared_mix(tmp_path, mix):
    pytest.importorskip("openrlhf", reason="pip install --no-deps openrlhf==0.11.2 (make install does)")
    from openrlhf.datasets.utils import blending_datasets

    weights, sizes = MIXES[mix]
    grpo_dir = _prepare(tmp_path, weights, sizes)
    env = _env_file(grpo_dir)
    manifest = json.loads((grpo_dir / "manifest.json").read_text())
    assert env["PROMPT_PROBS"] == manifest["prompt_probs"] and env["PROMPT_DATASET"] == manifest["prompt_dataset"]
    kept = {b for b, w in weights.items() if w > 0 and sizes.get(b)} | {"unknown"}  # 2 records have no difficulty row
    assert set(manifest["rows"]) == kept and len(env["PROMPT_DATASET"].split(",")) == len(kept) >= 3

    # the arguments exactly as train_ppo_ray hands them over (openrlhf/trainer/ppo_trainer.py)
    blended = blending_datasets(env["PROMPT_DATASET"], env["PROMPT_PROBS"], QuietStrategy(), 42)
    ids = {row["id"] for path in env["PROMPT_DATASET"].split(",") for row in map(json.loads, Path(path).read_text().splitlines())}
    assert len(blended) >= sum(manifest["rows"].values())  # all_exhausted: every file is drawn to its end
    assert {row["id"] for row in blended} == ids
    assert all(row["label"]["gold"] and row["label"]["scheme"] == "esci" for row in blended)


def test_six_decimal_probabilities_are_what_openrlhf_rejected(tmp_path):
    """The failure mode the fix removes, shown on the same upstream function: 0.333333 x 3 does not sum to 1."""
    pytest.importorskip("openrlhf", reason="pip install --no-deps openrlhf==0.11.2 (make install does)")
    from openrlhf.datasets.utils import blending_datasets

    grpo_dir = _prepare(tmp_path, *MIXES["thirds"], without_difficulty=0)
    assert _env_file(grpo_dir)["PROMPT_PROBS"].count(",") == 2
    datasets = _env_file(grpo_dir)["PROMPT_DATASET"]
    with pytest.raises(ValueError, match="sum to 1"):
        blending_datasets(datasets, "0.333333,0.333333,0.333333", QuietStrategy(), 42)


@pytest.mark.parametrize("weights", [[1, 1, 1], [1, 1, 1, 1, 1, 1, 1], [0.5, 1.0, 2.0, 1e-12], [3.0], [1e-3, 5, 7, 11, 13, 17]])
def test_probability_strings_sum_to_one(weights):
    strings = probability_strings(weights)
    digits = [int(s.replace(".", "")) for s in strings]
    assert sum(digits) == 10 ** (len(strings[0]) - 2)  # exactly 1 in decimal
    assert abs(sum(map(float, strings)) - 1.0) < 1e-12
    total = sum(weights)
    assert all(abs(float(s) - w / total) <= 2e-9 and (float(s) > 0) == (w > 0) for s, w in zip(strings, weights))


def test_probability_strings_refuse_no_weight():
    with pytest.raises(ValueError, match="positive sum"):
        probability_strings([0.0, 0.0])
