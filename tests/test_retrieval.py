"""BM25 neighbours for the teacher prompt: most similar first, never the record itself, Chinese too."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from taosr1_plugins.core.records import Item, Record
from taosr1_plugins.cot.retrieval import BM25Index, tokenize
from taosr1_plugins.core.schemes import get_scheme
from taosr1_plugins.cot.teachers import build_request


def rec(id: str, query: str, title: str, label: str = "E", scheme: str = "esci") -> Record:
    return Record(id=id, query=query, item=Item(title=title), label=label, scheme=scheme)


def test_tokenize_english_and_chinese():
    assert tokenize("Nike Air-Max 90, for the Men") == ["nike", "air", "max", "90", "men"]
    # CJK: characters and bigrams, so 半身裙 matches 半裙 (shared characters) and 半身 (shared bigram).
    assert tokenize("半身裙") == ["半", "身", "裙", "半身", "身裙"]
    assert tokenize("iPhone15手机壳") == ["iphone15", "手", "机", "壳", "手机", "机壳"]


def test_most_similar_first_and_never_itself():
    pool = [
        rec("a", "red running shoes", "Nike red running shoes for men"),
        rec("b", "blue cotton shirt", "Blue cotton shirt, slim fit", "S"),
        rec("c", "red running shoes", "Adidas red running shoes", "S"),
        rec("d", "garden hose", "50 ft garden hose", "I"),
        rec("e", "running shoes", "Trail running shoes", "C"),
    ]
    index = BM25Index(pool)
    found = index.neighbours(pool[0], k=3)
    assert [r.id for r in found] == ["c", "e"]  # same query first; no shared term -> not returned
    assert all(r.id != "a" for r in found)
    # A record not in the pool: its exact twin in the pool comes first.
    twin = rec("new", "blue cotton shirt", "Blue cotton shirt, slim fit")
    assert index.neighbours(twin, k=1)[0].id == "b"
    assert index.neighbours(rec("x", "zzz", "qqq"), k=3) == []


def test_unlabelled_and_other_scheme_records_are_not_examples():
    pool = [
        rec("a", "red shoes", "red shoes"),
        Record(id="u", query="red shoes", item=Item(title="red shoes"), scheme="esci"),
        rec("t", "red shoes", "red shoes", label="4", scheme="taosr1"),
    ]
    index = BM25Index(pool)
    assert len(index) == 2
    assert [r.id for r in index.neighbours(rec("q", "red shoes", "x"), k=5)] == ["a"]


def test_esci_neighbours_exclude_self_and_share_terms(esci_records):
    index = BM25Index(esci_records)
    for record in esci_records:
        found = index.neighbours(record, k=3)
        assert record.id not in {r.id for r in found}
        for neighbour in found:
            assert set(tokenize(f"{record.query} {record.item.title}")) & set(
                tokenize(f"{neighbour.query} {neighbour.item.title} {neighbour.item.brand or ''}")
            )


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(["red", "shoe", "blue", "shirt", "hose", "裙", "半身", "手机"]), min_size=1, max_size=4))
def test_self_never_returned_even_with_duplicates(words):
    text = " ".join(words)
    pool = [rec(str(i), text, text) for i in range(4)] + [rec("other", "garden hose", "hose")]
    index = BM25Index(pool)
    for record in pool:
        assert record.id not in {r.id for r in index.neighbours(record, k=5)}


def test_chinese_neighbours(kuaisearch_records):
    index = BM25Index(kuaisearch_records)
    record = next(r for r in kuaisearch_records if "半身裙" in r.query)
    found = index.neighbours(record, k=3)
    assert found and record.id not in {r.id for r in found}
    assert all(set(record.query) & set(r.query + r.item.title) for r in found)


def test_teacher_prompt_has_definitions_neighbours_and_hint_only_when_asked(esci_records):
    scheme = get_scheme("esci")
    index = BM25Index(esci_records)
    record = next(r for r in esci_records if r.label == "S")
    neighbours = index.neighbours(record, k=3)
    assert len(neighbours) == 3

    first = build_request(record, scheme, neighbours)
    system, user = (m["content"] for m in first.messages)
    for level in scheme.levels:
        assert level.definition in system
    for neighbour in neighbours:
        level = scheme.level(neighbour.label)
        assert f"Query: {neighbour.query}" in user
        assert neighbour.item.title[:50] in user
    assert user.count("Level: ") == 3
    assert f"Query: {record.query}" in user and record.item.title in user
    assert "<think>" in system and "<answer>" in system
    assert "Hint" not in user and first.hint_label is None

    retry = build_request(record, scheme, neighbours, hint_label=record.label, attempt=1)
    hint = retry.messages[1]["content"].split("---")[-1]
    assert "Hint" in hint and "S (Substitute)" in hint
    assert retry.attempt == 1 and retry.neighbours == tuple(neighbours)
