"""An interrupted `taosr1 score` resumes from its .partial log: finished rows are kept as written, only
the missing pairs are scored, and a torn last line is cut off."""

from __future__ import annotations

import json

from taosr1_plugins.core.records import Item, Record
from taosr1_plugins.core.schemes import get_scheme
from taosr1_plugins.deploy.scored_pair import score_pair
from taosr1_plugins.deploy.scoring import ScoreSettings, read_scores, score_records, score_row

ESCI = get_scheme("esci")


def test_resume_reuses_the_partial_rows(tmp_path, tiny_model_dir):
    records = [Record(id=f"r{i}", query=f"query {i}", item=Item(title=f"item {i}"), label="E", scheme="esci")
               for i in range(4)]
    out = tmp_path / "scores.jsonl"
    # what a killed run left: two finished rows (probabilities no model would give) and a torn third
    kept = [score_row(records[i], ESCI, score_pair([0.7, 0.1, 0.1, 0.1], ESCI)) for i in (0, 2)]
    partial = out.with_name(out.name + ".partial")
    partial.write_text("".join(json.dumps(row) + "\n" for row in kept) + '{"id": "r1", "sch')

    score_records(tiny_model_dir, records, out, ScoreSettings(device="cpu", batch_size=2, progress=False))

    rows = {row["id"]: row for row in map(json.loads, out.read_text().splitlines())}
    assert sorted(rows) == ["r0", "r1", "r2", "r3"] and not partial.exists()
    for row in kept:
        assert rows[row["id"]] == row  # reused byte for byte, not recomputed
    assert all(rows[i]["probs"] != kept[0]["probs"] for i in ("r1", "r3"))  # scored by the model
    assert len(read_scores(out).rows) == 4
