"""The progress bar every long job shows (CoT, pass@N, scoring, model preparation)."""

from __future__ import annotations


def progress_bar(total: int, *, desc: str, unit: str = "it", initial: int = 0, enabled: bool = True):
    """A tqdm bar on stderr; ``initial`` counts work a resumed run already finished, so the ETA is for what is left."""
    import os

    from tqdm.auto import tqdm  # imported here: importing the package must stay cheap

    # TQDM_DISABLE=1 (what `taosr1 run --quiet` sets) hides ours too: an explicit disable= would override it
    enabled = enabled and os.environ.get("TQDM_DISABLE", "").lower() not in ("1", "true", "yes")
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=not enabled, dynamic_ncols=True)
