"""Lexical baselines: a query–item match score per pair, cut into levels by thresholds fitted on train.

A scalar score s in [0, 1] is encoded as the cumulative probability of every level above the lowest
(probabilities ``[s, 0, …, 0, 1 - s]``), so CumPT's threshold search (``cumpt.fit_thresholds``) fits
ordinal cut points on s: the pair gets the first level k whose threshold t_k <= s.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from taosr1_plugins.deploy.cumpt import assign_tier, fit_thresholds
from taosr1_plugins.core.records import Record
from taosr1_plugins.cot.retrieval import tokenize
from taosr1_plugins.core.schemes import LabelScheme


def item_text(record: Record) -> str:
    item = record.item
    return " ".join(part for part in (item.title, item.brand or "", item.description or "") if part)


def majority_label(train: Sequence[Record]) -> str:
    counts = Counter(record.label for record in train if record.label is not None)
    if not counts:
        raise ValueError("no labelled training records")
    return counts.most_common(1)[0][0]


def overlap_score(record: Record) -> float:
    """Share of the query's distinct terms that appear in the item's text."""
    query = set(tokenize(record.query))
    if not query:
        return 0.0
    return len(query & set(tokenize(item_text(record)))) / len(query)


class BM25PairScorer:
    """BM25 of each pair's item against its own query, with IDF and lengths from the training items."""

    def __init__(self, train: Sequence[Record], *, k1: float = 1.5, b: float = 0.75):
        docs = [tokenize(item_text(record)) for record in train]
        self.k1, self.b = k1, b
        self.avg_len = sum(map(len, docs)) / max(1, len(docs)) or 1.0
        frequency = Counter(term for doc in docs for term in set(doc))
        n = len(docs)
        self.idf = {term: math.log(1 + (n - df + 0.5) / (df + 0.5)) for term, df in frequency.items()}
        self.unseen_idf = math.log(1 + (n + 0.5) / 0.5)

    def raw(self, record: Record) -> float:
        doc = tokenize(item_text(record))
        counts = Counter(doc)
        norm = self.k1 * (1 - self.b + self.b * len(doc) / self.avg_len)
        return sum(
            self.idf.get(term, self.unseen_idf) * counts[term] * (self.k1 + 1) / (counts[term] + norm)
            for term in set(tokenize(record.query))
            if term in counts
        )


class FittedCutpoints:
    """Thresholds on a [0, 1] score, fitted for macro-F1 on labelled pairs."""

    def __init__(self, scores: Sequence[float], gold: Sequence[str], scheme: LabelScheme):
        self.scheme = scheme
        # a finer grid than CumPT's default: the score is one number, so each candidate is cheap to try
        fit = fit_thresholds([self._probs(s) for s in scores], [scheme.keys.index(g) for g in gold], grid=200)
        self.thresholds = fit.thresholds
        self.train_macro_f1 = fit.value

    def _probs(self, score: float) -> list[float]:
        s = min(1.0, max(0.0, score))
        return [s, *([0.0] * (len(self.scheme.keys) - 2)), 1.0 - s]

    def predict(self, score: float) -> str:
        return self.scheme.keys[assign_tier(self._probs(score), self.thresholds)]


def scaled(values: Sequence[float], top: float) -> list[float]:
    """Scores divided by ``top`` (the training maximum) and clipped to [0, 1]."""
    return [min(1.0, value / top) if top > 0 else 0.0 for value in values]
