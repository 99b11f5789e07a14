"""Where the package's own recipes/, configs/ and patches/ are, in a checkout and after `pip install`.

They live at the top of the checkout, where the layout documents them and an editable install reads them. A
wheel carries a copy inside the package (taosr1_plugins/recipes, ...; setup.py puts it there), so the
`taosr1` of a plain `pip install` finds them too. A config names them relative to itself, as the checkout's
configs/ do (``../recipes/trl/sft_cot_smollm2.yaml``); from any other folder that path resolves here.
"""

from __future__ import annotations

from pathlib import Path

SHIPPED = ("recipes", "configs", "patches")  # setup.py copies these into the wheel
_PACKAGE = Path(__file__).resolve().parent


def shipped_dir(name: str) -> Path | None:
    """The package's ``recipes``, ``configs`` or ``patches`` folder: the wheel's copy inside the package,
    else the checkout's beside it; None where neither is there."""
    if name not in SHIPPED:
        raise ValueError(f"{name!r} is not shipped with the package; {', '.join(SHIPPED)} are")
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    return None


def shipped_path(relative: str | Path) -> Path | None:
    """The package's file that ``relative`` names the way a config does (``../recipes/trl/x.yaml``,
    ``recipes/trl/x.yaml``: leading ``..`` dropped, then a shipped folder), or None where it names no such
    file."""
    parts = list(Path(relative).parts)
    while parts and parts[0] in ("..", "."):
        parts.pop(0)
    if len(parts) < 2 or parts[0] not in SHIPPED:
        return None
    root = shipped_dir(parts[0])
    if root is None:
        return None
    path = root.joinpath(*parts[1:])
    return path if path.exists() else None
