"""Real SmolLM2-135M-Instruct scores on real ESCI pairs: padding correctness, then CumPT calibration on them.

Kept to a few short pairs: one SmolLM2 forward over a ~400-token prompt takes seconds on 2 CPU cores.
"""

from __future__ import annotations

import pytest

from taosr1_plugins.deploy.calibration import fit_cumpt
from taosr1_plugins.deploy.cumpt import assign_tier
from taosr1_plugins.deploy.scoring import ScoreSettings, read_scores, score_records


@pytest.fixture(scope="module")
def smollm2_scorer(smollm2_dir):
    from taosr1_plugins import plugins
    from taosr1_plugins.core.schemes import get_scheme

    return plugins.get("deployment_adapter", "hf")(str(smollm2_dir), get_scheme("esci"), device="cpu", batch_size=6)


@pytest.fixture(scope="module")
def short_pairs(esci_records):
    """The 6 pairs with the shortest items, at least one per gold level present among them."""
    by_length = sorted(esci_records, key=lambda r: len(r.item.model_dump_json()))
    chosen = {}
    for record in by_length:  # one of each level first, then fill with the shortest
        chosen.setdefault(record.label, record)
    picked = list(chosen.values())
    picked += [r for r in by_length if r not in picked][: 6 - len(picked)]
    return picked


@pytest.fixture(scope="module")
def dev_scores(smollm2_scorer, short_pairs, tmp_path_factory):
    out = tmp_path_factory.mktemp("smollm2") / "dev_scores.jsonl"
    score_records(smollm2_scorer, short_pairs, out, ScoreSettings(batch_size=6, progress=False))
    return read_scores(out)


def test_batched_equals_unbatched_on_smollm2(smollm2_scorer, short_pairs, dev_scores):
    smollm2_scorer.batch_size = 1
    try:
        alone = smollm2_scorer.probabilities(short_pairs[:1])  # the shortest: the most padding in the batch
    finally:
        smollm2_scorer.batch_size = 6
    batched = dev_scores.ordered_probs()[:1]  # scored in one padded batch of 6
    for b, a in zip(batched, alone):
        assert b == pytest.approx(a, abs=2e-4)  # stored rounded to 6 decimals; fp32 sums differ in order


def test_calibration_on_real_scores(dev_scores):
    result = fit_cumpt(dev_scores)
    assert result["split"]["n"] == len(dev_scores.rows)
    assert result["cumpt"]["macro_f1"] >= result["argmax"]["macro_f1"]
    levels = dev_scores.scheme.keys
    thresholds = [result["thresholds"][k] for k in levels[:-1]]
    tiers = [levels[assign_tier(p, thresholds)] for p in dev_scores.ordered_probs()]
    correct = sum(t == row.gold for t, row in zip(tiers, dev_scores.rows))
    assert result["cumpt"]["accuracy"] == pytest.approx(correct / len(tiers))
