"""One-pass difficulty: p(gold label) at the answer position is the chance a sampled answer names it."""

from __future__ import annotations

import math

import pytest

from taosr1_plugins.passn.difficulty import DifficultyRow, difficulty_row
from taosr1_plugins.passn.one_pass import agreement, one_pass_difficulty, one_pass_row, pass_at_k
from taosr1_plugins import plugins
from taosr1_plugins.core.schemes import get_scheme
from taosr1_plugins.deploy.scoring import scoring_prompt

ESCI = get_scheme("esci")


@pytest.fixture(scope="module")
def scorer(tiny_model_dir):
    return plugins.get("deployment_adapter", "hf")(str(tiny_model_dir), ESCI, device="cpu", batch_size=4)


@pytest.mark.parametrize("temperature", [0.7, 1.5])
def test_sampling_probabilities_are_what_sampling_draws(scorer, esci_records, temperature):
    import torch

    record = esci_records[0]
    probs = scorer.sampling_probabilities([record], temperature)[0]
    tokenizer, model = scorer.chat.tokenizer, scorer.chat.model
    ids = tokenizer(scoring_prompt(tokenizer, record, ESCI, scorer.style), return_tensors="pt", add_special_tokens=False)
    draws = 4000
    torch.manual_seed(0)
    with torch.inference_mode():
        logits = model(**ids).logits[0, -1].float()
        sampled = torch.multinomial(torch.softmax(logits / temperature, dim=-1), draws, replacement=True)
    for level, p in zip(ESCI.levels, probs):
        token = tokenizer.encode(level.token, add_special_tokens=False)[0]
        share = (sampled == token).float().mean().item()
        assert abs(share - p) <= 4 * math.sqrt(p * (1 - p) / draws) + 1e-3, (level.key, share, p)


def test_rows_bucket_like_n_samples_would(scorer, esci_records):
    rows = one_pass_difficulty(scorer, esci_records[:6], n=8, temperature=1.0)
    assert [row.id for row in rows] == [r.id for r in esci_records[:6]]
    for row in rows:
        assert row.correct == min(8, math.floor(9 * row.pass_rate))
        assert row.bucket == row.thresholds.bucket(row.correct, 8)
    with pytest.raises(ValueError, match="temperature"):
        one_pass_difficulty(scorer, esci_records[:1], n=8, temperature=0)


def test_pass_at_k_and_extremes(esci_records):
    assert pass_at_k(0.5, 3) == pytest.approx(0.875)
    record = esci_records[0]
    sure = one_pass_row(record, 1.0, ESCI.keys, [1.0, 0, 0, 0], n=4)
    never = one_pass_row(record, 0.0, ESCI.keys, [0.0, 0, 0, 1.0], n=4)
    assert (str(sure.bucket), str(never.bucket)) == ("always", "never")


def test_agreement_compares_the_prompts_both_cover(esci_records):
    sampled = [difficulty_row(r.id, r.label, [r.label, None, r.label, "X"], [True] * 4) for r in esci_records[:3]]
    estimated = [DifficultyRow(**{**s.model_dump(), "pass_rate": p}) for s, p in zip(sampled, (0.5, 0.4, 0.6))]
    report = agreement(sampled, estimated[:2])
    assert report["prompts"] == 2
    assert report["mean_abs_diff_pass1"] == pytest.approx(0.05)
    assert report["bucket_agreement"] == 1.0
    assert agreement(sampled, [])["prompts"] == 0
