"""Tier stability: how many pairs of one split change tier between two checkpoints, argmax vs CumPT.

CumPT's claim is that its tiers move less than argmax's when the model changes. Both checkpoints'
pairs are decided by the same rule (the same thresholds and calibration for CumPT), so a change is
the model's, not the rule's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from taosr1_plugins.deploy.cumpt import CumPT, argmax_tier
from taosr1_plugins.errors import DataError
from taosr1_plugins.deploy.scoring import ScoreSet


@dataclass
class TierStability:
    first: str
    second: str
    n: int
    argmax_changed: int
    cumpt_changed: int | None  # None: no thresholds given

    @property
    def argmax_share(self) -> float:
        return self.argmax_changed / self.n

    @property
    def cumpt_share(self) -> float | None:
        return None if self.cumpt_changed is None else self.cumpt_changed / self.n

    def to_dict(self) -> dict:
        return {**asdict(self), "argmax_share": self.argmax_share, "cumpt_share": self.cumpt_share}


def tier_stability(first: ScoreSet, second: ScoreSet, cumpt: CumPT | None, names: tuple[str, str] | None = None) -> TierStability:
    """Pairs of ``first`` and ``second`` (the same ids, one scheme) whose tier differs."""
    keys = first.scheme.keys
    if second.scheme.name != first.scheme.name:
        raise DataError(str(second.path), None, "scheme", f"{second.scheme.name!r} differs from {first.scheme.name!r}")
    a = {row.id: [row.probs[k] for k in keys] for row in first.rows}
    b = {row.id: [row.probs[k] for k in keys] for row in second.rows}
    if set(a) != set(b):
        raise DataError(str(second.path), None, "id", f"its pairs are not those of {first.path}; tiers compare the same pairs")
    ids = sorted(a)
    argmax_changed = sum(argmax_tier(a[i]) != argmax_tier(b[i]) for i in ids)
    cumpt_changed = None if cumpt is None else sum(cumpt.tier_index(a[i]) != cumpt.tier_index(b[i]) for i in ids)
    first_name, second_name = names or (str(first.path), str(second.path))
    return TierStability(first_name, second_name, len(ids), argmax_changed, cumpt_changed)
