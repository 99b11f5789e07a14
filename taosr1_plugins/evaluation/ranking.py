"""The ranking view: how a relevance score orders the judged items of each query (NDCG, scikit-learn).

The score ranks by tier first, then by the expected level inside the tier (CumPT's fine-grained score;
argmax tiers for a model without thresholds, the model's own scalar for a baseline that has one).
Gains are graded: 2^g - 1 with g = 0 for the lowest level up to L - 1 for the most relevant. A query
whose judged items all share one level has no order to get right (every ranking is ideal), so only
queries with at least two levels are averaged; how many were left out is reported beside.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from taosr1_plugins.deploy.cumpt import expected_score

CUTOFF = 10


def tiered_score(tier: int, probs: Sequence[float]) -> float:
    """One number ordering pairs by (tier, expected level): tier k (0 = most relevant) of L levels maps
    to [2(L-1-k), 2(L-1-k) + 1], so no expected level can lift a pair above a better tier."""
    return 2.0 * (len(probs) - 1 - tier) + min(1.0, max(0.0, expected_score(probs)))


@dataclass
class RankingMetrics:
    ndcg_at_10: float | None  # None: no query has two levels
    ndcg: float | None  # over all judged items of the query
    queries: int  # averaged: queries with at least two levels
    skipped_queries: int  # one level only (or one item)

    def to_dict(self) -> dict:
        return asdict(self)


def ranking_metrics(queries: Sequence[str], gold: Sequence[int], scores: Sequence[float], n_levels: int,
                    cutoff: int = CUTOFF) -> RankingMetrics:
    """``gold``: level index per pair (0 = most relevant); ``scores``: higher ranks first.

    Tied scores share their gains (scikit-learn's ``ndcg_score`` averages over ties), so a constant
    score is scored as a random order would be on average, not as a lucky one.
    """
    from sklearn.metrics import ndcg_score

    if not (len(queries) == len(gold) == len(scores)):
        raise ValueError(f"{len(queries)} queries, {len(gold)} gold levels and {len(scores)} scores")
    groups: dict[str, list[int]] = defaultdict(list)
    for i, query in enumerate(queries):
        groups[query].append(i)
    at_k, full, skipped = [], [], 0
    for index in groups.values():
        if len({gold[i] for i in index}) < 2:
            skipped += 1
            continue
        gains = [[2.0 ** (n_levels - 1 - gold[i]) - 1 for i in index]]
        ranked = [[float(scores[i]) for i in index]]
        at_k.append(float(ndcg_score(gains, ranked, k=cutoff)))
        full.append(float(ndcg_score(gains, ranked)))
    return RankingMetrics(
        ndcg_at_10=sum(at_k) / len(at_k) if at_k else None,
        ndcg=sum(full) / len(full) if full else None,
        queries=len(at_k),
        skipped_queries=skipped,
    )
