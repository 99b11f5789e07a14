"""Level-balanced SFT examples on real Crowdflower-skewed labels (ESCI sample: mostly E)."""

from __future__ import annotations

from collections import Counter

import pytest

from taosr1_plugins.cot.balance import balanced_examples, level_shares


def test_equal_gives_every_level_the_same_count_and_repeats_rare_levels_only_after_a_full_pass(esci_records):
    counts = Counter(r.label for r in esci_records)
    rare = min(counts, key=counts.get)
    n = 4 * (counts[rare] + 1)  # one more of the rarest level than the data has
    chosen = balanced_examples(esci_records, n, "equal", seed=1)
    per_level = Counter(r.label for r in chosen)
    assert set(per_level.values()) == {n // 4}
    rare_ids = Counter(r.id for r in chosen if r.label == rare)
    # every rare record appears once before any appears twice
    assert set(rare_ids) == {r.id for r in esci_records if r.label == rare}
    assert max(rare_ids.values()) == 2


def test_sqrt_lies_between_the_data_and_equal(esci_records):
    counts = Counter(r.label for r in esci_records)
    top = max(counts, key=counts.get)
    share = {mode: Counter(r.label for r in balanced_examples(esci_records, 100, mode))[top] for mode in ("none", "sqrt", "equal")}
    assert share["none"] > share["sqrt"] > share["equal"]
    assert share["none"] == round(100 * counts[top] / len(esci_records))


def test_none_without_a_size_is_every_record_once_in_a_seeded_order(esci_records):
    a = balanced_examples(esci_records, None, "none", seed=3)
    assert sorted(r.id for r in a) == sorted(r.id for r in esci_records)
    assert [r.id for r in a] == [r.id for r in balanced_examples(esci_records, None, "none", seed=3)]
    assert [r.id for r in a] != [r.id for r in balanced_examples(esci_records, None, "none", seed=4)]


@pytest.mark.parametrize("mode", ["none", "sqrt", "equal"])
def test_shares_sum_to_one_and_skip_empty_levels(mode):
    shares = level_shares({"a": 9, "b": 1, "c": 0}, mode)
    assert set(shares) == {"a", "b"}
    assert sum(shares.values()) == pytest.approx(1.0)
