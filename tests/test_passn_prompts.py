"""Which training prompts stage 2 samples (and so which GRPO draws from): passn.balance and the unknown bucket."""

from __future__ import annotations

from collections import Counter

from taosr1_plugins.core.jsonl import write_jsonl
from taosr1_plugins.data.importing import import_records
from taosr1_plugins.data.samples import esci_sample_path
from taosr1_plugins.pipeline.config import RunConfig
from taosr1_plugins.pipeline.context import RunContext


def _context(tmp_path, **passn):
    config = RunConfig.model_validate({"run_dir": str(tmp_path / "run"), "format": "answer_first", "passn": passn})
    ctx = RunContext(config)
    records = list(import_records("esci", esci_sample_path()))
    write_jsonl(ctx.path("cot", "train.jsonl"), records)
    return ctx, records


def test_balanced_prompts_give_every_level_its_share_once(tmp_path):
    from taosr1_plugins.pipeline.stages import passn_prompts

    ctx, records = _context(tmp_path, balance="equal")
    skewed = Counter(record.label for record in records[:40])
    chosen = passn_prompts(ctx, 40)
    levels = Counter(record.label for record in chosen)
    assert len({record.id for record in chosen}) == len(chosen)
    # the sample is mostly E; the first 40 rows show it, the balanced 40 do not
    assert skewed.most_common(1)[0][1] > 20
    available = Counter(record.label for record in records)
    assert all(levels[level] == min(10, available[level]) for level in available)


def test_unbalanced_prompts_are_the_first_rows(tmp_path):
    from taosr1_plugins.pipeline.stages import passn_prompts

    ctx, records = _context(tmp_path)
    assert [record.id for record in passn_prompts(ctx, 12)] == [record.id for record in records[:12]]


def test_grpo_warns_when_prompts_without_difficulty_outnumber_the_estimated(tmp_path, capsys):
    from taosr1_plugins.grpo.config import GrpoSettings
    from taosr1_plugins.passn.difficulty import DifficultyRow
    from taosr1_plugins.pipeline.stages import _warn_unestimated_prompts

    _, records = _context(tmp_path)
    rows = [DifficultyRow(id=record.id, gold=record.label, n=4, correct=2, pass_rate=0.5, format_ok_rate=1.0, bucket="medium")
            for record in records[:10]]
    _warn_unestimated_prompts(records, rows, GrpoSettings())
    assert "have no difficulty estimate" in capsys.readouterr().out
    drawn_by_difficulty = GrpoSettings(sampling={"weights": {"medium": 1.0, "unknown": 0.0}})
    _warn_unestimated_prompts(records, rows, drawn_by_difficulty)
    assert "difficulty estimate" not in capsys.readouterr().out
