"""BM25 retrieval of similar labelled records: the grounding for the CoT teacher's prompt.

TaoSR1 grounds its teacher with labelled examples similar to the pair being judged. Our default source
is BM25 (``bm25s``) over a reference pool of labelled records. Tokenisation handles Chinese (KuaiSearch)
as well as English: CJK text has no spaces, so CJK runs become character unigrams and bigrams.
"""

from __future__ import annotations

from collections.abc import Iterable

from taosr1_plugins.core.records import Record
from taosr1_plugins.core.terms import CJK_RUN_RE, STOPWORDS, TOKEN_RE


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens; CJK runs become character unigrams plus bigrams."""
    tokens: list[str] = []
    for match in TOKEN_RE.finditer(text.casefold()):
        run = match.group(0)
        if CJK_RUN_RE.match(run):
            tokens.extend(run)
            tokens.extend(run[i : i + 2] for i in range(len(run) - 1))
        elif run not in STOPWORDS:
            tokens.append(run)
    return tokens


def record_text(record: Record) -> str:
    """What a record is matched on: the query and the item's short fields (descriptions would drown them)."""
    item = record.item
    parts = [record.query, item.title, item.brand or "", item.category or ""]
    return " ".join(part for part in parts if part)


class BM25Index:
    """BM25 over labelled records; ``neighbours`` never returns the record itself (same id)."""

    def __init__(self, pool: Iterable[Record], *, k1: float = 1.5, b: float = 0.75):
        import bm25s  # imported here: it pulls in numpy/scipy

        # Unlabelled records cannot serve as examples: the point of an example is its label.
        self.records: list[Record] = [r for r in pool if r.label is not None]
        self._bm25 = bm25s.BM25(k1=k1, b=b)
        self._vocab: set[str] = set()
        if self.records:
            corpus = [tokenize(record_text(r)) or [""] for r in self.records]
            self._bm25.index(corpus, show_progress=False)
            self._vocab = set(self._bm25.vocab_dict)

    def __len__(self) -> int:
        return len(self.records)

    def scores(self, record: Record) -> list[float]:
        """BM25 score of every pool record against ``record`` (pool order)."""
        if not self.records:
            return []
        # bm25s rejects tokens outside its vocabulary; they could not score anyway.
        tokens = [t for t in tokenize(record_text(record)) if t in self._vocab]
        if not tokens:
            return [0.0] * len(self.records)
        return [float(s) for s in self._bm25.get_scores(tokens)]

    def neighbours(self, record: Record, k: int, *, same_scheme: bool = True) -> list[Record]:
        """The ``k`` most similar pool records with a positive score, best first, excluding ``record.id``.

        Ties keep pool order, so results are deterministic.
        """
        if k <= 0:
            return []
        scored = [
            (score, i)
            for i, score in enumerate(self.scores(record))
            if score > 0
            and self.records[i].id != record.id
            and (not same_scheme or self.records[i].scheme == record.scheme)
        ]
        scored.sort(key=lambda pair: (-pair[0], pair[1]))
        return [self.records[i] for _, i in scored[:k]]

