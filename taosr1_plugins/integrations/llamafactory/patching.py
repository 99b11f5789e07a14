"""Apply, check and revert patches/llamafactory-0.9.5-plugins.patch on the installed LLaMA-Factory.

The patch is applied by a small strict unified-diff applier here (no `patch` program needed, which slim
images lack): every hunk's context must match exactly, searched near its stated line, and files are
replaced atomically. A file's state is decided by which direction applies cleanly, so applying twice,
or reverting an unpatched install, is a no-op; anything else (a different version, local edits) is an
error that names the file and hunk.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from enum import Enum
from importlib import metadata
from pathlib import Path

from taosr1_plugins.core.jsonl import atomic_write
from taosr1_plugins.errors import UserError
from taosr1_plugins.shipped import shipped_dir

PINNED_VERSION = "0.9.5"
PATCH_NAME = f"llamafactory-{PINNED_VERSION}-plugins.patch"
HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


class PatchError(UserError, RuntimeError):
    """The installed LLaMA-Factory or the patch file is not what the patch expects: not installed, another
    version, a file changed locally (named with its hunk), no patch file."""


class PatchState(str, Enum):
    UNAPPLIED = "unapplied"
    APPLIED = "applied"

    def __str__(self) -> str:
        return self.value


@dataclass
class Hunk:
    old_start: int  # 1-based line of the first old line
    old: list[str] = field(default_factory=list)  # context + removed lines
    new: list[str] = field(default_factory=list)  # context + added lines

    def reversed(self) -> Hunk:
        return Hunk(self.old_start, self.new, self.old)


@dataclass
class FilePatch:
    path: str  # relative to the patch root, after stripping one leading component (-p1)
    hunks: list[Hunk]

    def reversed(self) -> FilePatch:
        return FilePatch(self.path, [hunk.reversed() for hunk in self.hunks])


def parse_patch(text: str) -> list[FilePatch]:
    """Parse a unified diff; lines before the first ``---`` (a description) are ignored, like patch(1)."""
    files: list[FilePatch] = []
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        if not (lines[i].startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ ")):
            i += 1
            continue
        target = lines[i + 1][4:].strip().split("\t")[0]
        path = target.split("/", 1)[1] if "/" in target else target
        current = FilePatch(path, [])
        files.append(current)
        i += 2
        while i < len(lines) and (match := HUNK_RE.match(lines[i])):
            old_len = int(match.group(2) or 1)
            new_len = int(match.group(4) or 1)
            hunk = Hunk(int(match.group(1)))
            i += 1
            while len(hunk.old) < old_len or len(hunk.new) < new_len:
                if i >= len(lines):
                    raise PatchError(f"{path}: truncated hunk at line {hunk.old_start}")
                line = lines[i]
                tag, body = line[:1], line[1:]
                if line.startswith("\\"):  # "\ No newline at end of file"
                    i += 1
                    continue
                if tag in (" ", "\n"):
                    body = body if tag == " " else "\n"
                    hunk.old.append(body)
                    hunk.new.append(body)
                elif tag == "-":
                    hunk.old.append(body)
                elif tag == "+":
                    hunk.new.append(body)
                else:
                    raise PatchError(f"{path}: unexpected line in hunk: {line!r}")
                i += 1
            current.hunks.append(hunk)
    if not files:
        raise PatchError("no file diffs found in the patch")
    return files


def _find(lines: list[str], needle: list[str], near: int) -> int | None:
    """Index where ``needle`` occurs in ``lines``, preferring the one closest to ``near``."""
    starts = [s for s in range(len(lines) - len(needle) + 1) if lines[s : s + len(needle)] == needle]
    return min(starts, key=lambda s: abs(s - near)) if starts else None


def apply_hunks(text: str, file_patch: FilePatch) -> str:
    """The patched text; raises PatchError when a hunk's context is not found."""
    lines = text.splitlines(keepends=True)
    offset = 0
    for number, hunk in enumerate(file_patch.hunks, start=1):
        start = _find(lines, hunk.old, hunk.old_start - 1 + offset)
        if start is None:
            raise PatchError(f"{file_patch.path}: hunk {number} (line {hunk.old_start}) does not apply")
        lines[start : start + len(hunk.old)] = hunk.new
        offset += len(hunk.new) - len(hunk.old)
    return "".join(lines)


def file_state(text: str, file_patch: FilePatch) -> PatchState:
    try:
        apply_hunks(text, file_patch)
        forward = True
    except PatchError:
        forward = False
    try:
        apply_hunks(text, file_patch.reversed())
        backward = True
    except PatchError:
        backward = False
    if forward and not backward:
        return PatchState.UNAPPLIED
    if backward and not forward:
        return PatchState.APPLIED
    raise PatchError(
        f"{file_patch.path}: neither pristine {PINNED_VERSION} nor patched (changed locally, or another version)"
    )


def _write(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o7777
    with atomic_write(path) as fh:
        fh.write(text)
    os.chmod(path, mode)  # the temporary file was created 0600


def patch_tree(root: Path, patch_file: Path, *, revert: bool = False, check: bool = False) -> dict[str, PatchState]:
    """Bring every file the patch touches under ``root`` to patched (or, with ``revert``, pristine) state.

    Returns each file's state before the call. With ``check`` nothing is written. All files are checked
    before any is written, so a conflict leaves the tree as it was.
    """
    file_patches = parse_patch(patch_file.read_text(encoding="utf-8"))
    texts = {}
    states = {}
    for fp in file_patches:
        path = root / fp.path
        if not path.is_file():
            raise PatchError(f"{path}: file to patch not found")
        texts[fp.path] = path.read_text(encoding="utf-8")
        states[fp.path] = file_state(texts[fp.path], fp)
    if check:
        return states
    want = PatchState.UNAPPLIED if revert else PatchState.APPLIED
    for fp in file_patches:
        if states[fp.path] is not want:
            _write(root / fp.path, apply_hunks(texts[fp.path], fp.reversed() if revert else fp))
    return states


def find_patch_file() -> Path:
    """The patch in $TAOSR1_PATCHES_DIR, else the package's patches/ (the checkout's, or the wheel's copy)."""
    override = os.environ.get("TAOSR1_PATCHES_DIR")
    candidates = [Path(override)] if override else []
    if (shipped := shipped_dir("patches")) is not None:
        candidates.append(shipped)
    for directory in candidates:
        if (directory / PATCH_NAME).is_file():
            return directory / PATCH_NAME
    raise PatchError(f"{PATCH_NAME} not found in {', '.join(map(str, candidates)) or 'the package'} (set TAOSR1_PATCHES_DIR)")


def installed_llamafactory_root() -> Path:
    """The site-packages directory holding the installed llamafactory 0.9.5 (checks the pin)."""
    try:
        dist = metadata.distribution("llamafactory")
    except metadata.PackageNotFoundError as exc:
        raise PatchError("llamafactory is not installed (pip install 'taosr1-plugins[llamafactory]')") from exc
    if dist.version != PINNED_VERSION:
        raise PatchError(f"the patch is for llamafactory=={PINNED_VERSION}, installed is {dist.version}")
    root = Path(dist.locate_file("")).resolve()
    if not (root / "llamafactory" / "launcher.py").is_file():
        raise PatchError(f"llamafactory {dist.version} metadata found but no llamafactory/launcher.py under {root}")
    return root


def patch_installed(*, revert: bool = False, check: bool = False) -> dict[str, PatchState]:
    return patch_tree(installed_llamafactory_root(), find_patch_file(), revert=revert, check=check)
