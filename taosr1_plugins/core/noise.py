"""Third-party output that says nothing to a `taosr1` user, hidden by name (issue 31 item 7).

* transformers 5 draws a "Loading weights" bar for every model it loads (five in the deploy stage alone): a
  tqdm hook (``transformers.utils.logging.set_tqdm_hook``) disables those bars only; training and our own
  progress bars stay.
* Known deprecation warnings of code we do not own, each filtered by its message (:data:`KNOWN_WARNINGS`), never
  all warnings; a deprecation in our own recipes or calls is fixed there instead (the TRL recipes use
  ``warmup_steps``, not ``warmup_ratio``).
"""

from __future__ import annotations

import warnings
from typing import Any

# (message regex, category): third-party deprecations we cannot act on, matched at the start of the message
# (None seen in a tiny TRL run of import … DPO with transformers 5.6 / TRL 0.24 once our recipes said warmup_steps:
# add one here, by its message, when a run shows it.)
KNOWN_WARNINGS: tuple[tuple[str, type[Warning]], ...] = (
)

HIDDEN_BARS = ("Loading weights", "Writing model shards")  # per model load / save, not per job


def _drop_hidden_bars(factory, args: tuple[Any, ...], kwargs: dict[str, Any]):
    if kwargs.get("desc") in HIDDEN_BARS:
        kwargs = {**kwargs, "disable": True}
    return factory(*args, **kwargs)


def hide_known_noise(*, import_transformers: bool = True) -> None:
    """Filter :data:`KNOWN_WARNINGS` and hide transformers' model-loading bars in this process.

    ``import_transformers`` False leaves transformers alone unless it is imported already (a run that trains
    nothing need not pay for importing it)."""
    for message, category in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    import sys

    if not import_transformers and "transformers" not in sys.modules:
        return
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    set_hook = getattr(hf_logging, "set_tqdm_hook", None)  # transformers 5
    if set_hook is not None:
        set_hook(_drop_hidden_bars)
