"""The baselines' own parts on crafted pairs, then the lexical ones and the MiniLM encoder on real data."""

from __future__ import annotations

import random

import pytest

from taosr1_plugins.evaluation.baselines.lexical import BM25PairScorer, FittedCutpoints, majority_label, overlap_score, scaled
from taosr1_plugins.evaluation.metrics import compute_metrics
from taosr1_plugins.core.records import Item, Record
from taosr1_plugins.core.schemes import get_scheme

TAOSR1 = get_scheme("taosr1")  # levels 4, 3, 2, 1


def _record(query: str, title: str, label: str | None = "4", i: int = 0) -> Record:
    return Record(id=f"r{i}", query=query, item=Item(title=title), label=label, scheme="taosr1")


def test_overlap_is_the_share_of_query_terms_found_in_the_item():
    assert overlap_score(_record("red leather sofa", "Leather sofa, brown")) == pytest.approx(2 / 3)
    assert overlap_score(_record("red leather sofa", "Garden hose")) == 0
    assert overlap_score(_record("the", "anything")) == 0  # no content terms: no evidence either way


def test_bm25_weighs_rare_terms_above_common_ones():
    train = [_record("q", f"cable adapter {i}", i=i) for i in range(20)] + [_record("q", "hdmi splitter", i=99)]
    scorer = BM25PairScorer(train)
    rare = scorer.raw(_record("hdmi cable", "hdmi switch"))
    common = scorer.raw(_record("hdmi cable", "cable tie"))
    assert rare > common > 0
    assert scorer.raw(_record("hdmi cable", "garden hose")) == 0


def test_majority_label_ignores_unlabelled_pairs():
    train = [_record("q", "t", "2"), _record("q", "t", "2"), _record("q", "t", "4"), _record("q", "t", None)]
    assert majority_label(train) == "2"
    with pytest.raises(ValueError):
        majority_label([_record("q", "t", None)])


def test_cutpoints_recover_levels_that_a_score_separates():
    rng = random.Random(0)
    # level k's scores lie in their own band: perfect cut points exist
    bands = {"4": (0.8, 1.0), "3": (0.55, 0.75), "2": (0.3, 0.5), "1": (0.0, 0.25)}
    gold = [rng.choice(TAOSR1.keys) for _ in range(200)]
    scores = [rng.uniform(*bands[g]) for g in gold]
    cut = FittedCutpoints(scores, gold, TAOSR1)
    assert cut.train_macro_f1 == pytest.approx(1.0)
    assert [cut.predict(s) for s in (0.95, 0.6, 0.4, 0.1)] == ["4", "3", "2", "1"]
    # out-of-range scores of new pairs still get a level
    assert cut.predict(1.7) == "4" and cut.predict(-1) == "1"
    assert scaled([0, 5, 20], 10) == [0, 0.5, 1.0] and scaled([3], 0) == [0.0]


def test_lexical_baselines_beat_majority_class_on_esci(esci_records):
    scheme = get_scheme(esci_records[0].scheme)
    train, test = esci_records[:140], esci_records[140:]
    gold = [r.label for r in test]
    majority = compute_metrics(gold, [majority_label(train)] * len(test), scheme)
    scorer = BM25PairScorer(train)
    train_raw = [scorer.raw(r) for r in train]
    cut = FittedCutpoints(scaled(train_raw, max(train_raw)), [r.label for r in train], scheme)
    bm25 = compute_metrics(gold, [cut.predict(s) for s in scaled([scorer.raw(r) for r in test], max(train_raw))], scheme)
    assert cut.train_macro_f1 > compute_metrics([r.label for r in train], [majority_label(train)] * 140, scheme).macro_f1
    assert bm25.n == majority.n == 60
    # on the 60 held-out pairs too: the query-item match carries signal the label prior does not
    assert bm25.macro_f1 > majority.macro_f1


@pytest.mark.slow
def test_minilm_cross_encoder_learns_a_separable_task(tmp_path):
    from taosr1_plugins.evaluation.baselines.cross_encoder import CrossEncoderSettings, minilm_dir, predict_probs, train_cross_encoder

    assert (minilm_dir() / "config.json").exists()
    binary = get_scheme("esci")
    # exact-title pairs are Exact, unrelated pairs Irrelevant: twelve steps of the real encoder separate them
    # (before training, its fresh head is at chance)
    products = ["usb c charger", "wool winter socks", "cast iron skillet", "wireless mouse", "yoga mat", "led desk lamp",
                "stainless water bottle", "hiking backpack"]
    train = []
    for i, product in enumerate(products):
        train.append(Record(id=f"e{i}", query=product, item=Item(title=product.title()), label="E", scheme="esci"))
        other = products[(i + 3) % len(products)]
        train.append(Record(id=f"i{i}", query=product, item=Item(title=other.title()), label="I", scheme="esci"))
    settings = CrossEncoderSettings(epochs=12, learning_rate=3e-4, batch_size=16, max_length=32)
    summary = train_cross_encoder(train, binary, tmp_path, settings)
    assert summary["train_pairs"] == 16 and summary["steps"] == 12
    probs = predict_probs(tmp_path / "model", train, max_length=32)
    keys = binary.keys
    predicted = [keys[max(range(len(p)), key=p.__getitem__)] for p in probs]
    assert sum(p == r.label for p, r in zip(predicted, train)) >= 15
    assert all(abs(sum(p) - 1) < 1e-5 for p in probs)


def test_cross_encoder_loss_weights_levels_by_inverse_frequency():
    import torch

    from taosr1_plugins.evaluation.baselines.cross_encoder import _class_weighted_loss

    loss = _class_weighted_loss(["E", "E", "E", "I"], ["E", "S", "C", "I"])
    logits = torch.tensor([[2.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    targets = torch.tensor([0, 3])
    # n / (levels x count): E 4/(4*3), I 4/(4*1); absent levels count as one
    weights = torch.tensor([1 / 3, 1.0, 1.0, 1.0])
    expected = torch.nn.functional.cross_entropy(logits, targets, weight=weights)
    got = loss(type("Outputs", (), {"logits": logits})(), targets)
    assert torch.isclose(got, expected)
    assert not torch.isclose(got, torch.nn.functional.cross_entropy(logits, targets))
