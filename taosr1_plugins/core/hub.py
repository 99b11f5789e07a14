"""Finding a Hugging Face Hub id before anything downloads: the local cache first, then at most one short
metadata request.

transformers' own download path retries an unreachable Hub five times per file with back-off (about 70 s
for one model) and then fails with a long traceback. Here an id is settled in seconds: a copy in the local
cache is used as it is when the Hub is offline or out of reach, an id the Hub does not know is named in one
line, and only an id the Hub answers for is handed on to be downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

from taosr1_plugins.errors import DataError

HUB_TIMEOUT_S = 10.0  # one metadata request; its answer decides whether a download is worth starting
TRUE_VALUES = {"1", "ON", "YES", "TRUE"}  # as huggingface_hub reads its flags


def hub_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set. Read from the environment each time, not from
    huggingface_hub's constants, which are fixed when it is first imported."""
    return any(os.environ.get(flag, "").upper() in TRUE_VALUES for flag in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def cached_snapshot(repo_id: str) -> Path | None:
    """The folder of the cached snapshot of ``repo_id`` (its ``main`` revision) holding config.json, or None.

    Raises DataError when ``repo_id`` is not even a valid Hub id (so it cannot name a model anywhere)."""
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except HFValidationError:
        raise _unknown(repo_id, "not a valid Hub id either") from None
    return Path(found).parent if isinstance(found, str) else None


def _unknown(repo_id: str, why: str) -> DataError:
    from taosr1_plugins.core.models import BUILTIN_MODELS

    names = ", ".join(BUILTIN_MODELS)
    return DataError(repo_id, None, None, f"no such model folder, not a built-in model ({names}), and {why}")


def ask_hub(repo_id: str, timeout: float = HUB_TIMEOUT_S) -> str:
    """'found', 'missing' (the Hub does not know it, or it is private), 'gated', or 'unreachable'; never retried."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        HfApi().model_info(repo_id, timeout=timeout)
    except GatedRepoError:
        return "gated"
    except RepositoryNotFoundError:
        return "missing"
    except Exception:  # no network, a proxy refusing, a 5xx: whatever it is, a download would fail the same way
        return "unreachable"
    return "found"


def locate_hub_model(repo_id: str) -> str:
    """What to load for Hub id ``repo_id``: the id itself (the Hub has it and will be asked for files) or its
    cached snapshot folder (offline, or the Hub out of reach: loading a folder makes no network request).

    Raises DataError, one line, when neither exists."""
    try:
        snapshot = cached_snapshot(repo_id)
    except ImportError:  # no huggingface_hub: nothing here can tell; the backend loads the name its own way
        return repo_id
    if hub_offline():
        if snapshot is None:
            raise _unknown(repo_id, "not in the Hugging Face cache (offline: HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE "
                           "is set)")
        return str(snapshot)
    answer = ask_hub(repo_id)
    if answer == "found":
        return repo_id
    if snapshot is not None:  # the cached copy still loads, without the Hub
        return str(snapshot)
    if answer == "missing":
        raise _unknown(repo_id, "no such model on the Hugging Face Hub (a private one needs `hf auth login`)")
    if answer == "gated":
        raise DataError(repo_id, None, None, "is gated on the Hugging Face Hub: accept its terms on its page and "
                        "log in (`hf auth login`)")
    raise _unknown(repo_id, "not in the Hugging Face cache while the Hub cannot be reached (HF_HUB_OFFLINE=1 skips "
                   "asking it)")
