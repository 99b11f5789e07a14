"""The resumable output of a Ray scoring run: ``OUT.parts/`` while it runs, ``OUT`` when every pair is in.

Why this shape:

- A part is one Ray Data batch, written by the actor that scored it through ``write_jsonl`` (temporary file,
  fsync, rename), so a part file is complete or absent, whatever is killed when.
- A part is named by a digest of its ids. When Ray retries a batch (its actor died), the retry scores the same
  ids and replaces the same file: a retry can never add a second copy of a pair.
- A re-run reads the ids of the parts present and scores only the others; ``run.json`` records what the parts
  were scored with (model, scheme, thresholds, the input's ids), and a re-run with anything else is refused
  instead of mixing two runs' numbers (with overwrite, the other run's parts are deleted and scoring starts over).
- At the end the parts are concatenated into ``OUT`` (the same file, rows and schema the local scorer writes,
  rows in part order rather than input order), each input id exactly once: an id missing fails the run (re-run
  resumes it), and an id found twice (a batch scored by a straggler of a killed run) is written once. Then
  ``OUT.parts/`` is removed, as the local scorer renames its ``.partial``.

No Ray here: the actor calls ``write_part``, the driver the rest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taosr1_plugins.core.jsonl import atomic_write, check_replaceable, write_jsonl
from taosr1_plugins.errors import OutputExistsError

RUN_FILE = "run.json"
PART_GLOB = "part-*.jsonl"


def ids_digest(ids: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for pair_id in ids:
        digest.update(pair_id.encode("utf-8", "surrogatepass") + b"\n")
    return digest.hexdigest()


def part_name(ids: Sequence[str]) -> str:
    """The same ids give the same name: a retried batch replaces its own file."""
    return f"part-{ids_digest(ids)[:24]}.jsonl"


def write_part(folder: str | Path, rows: Sequence[dict[str, Any]]) -> str:
    """One scored batch as one part file, atomically; returns its name."""
    name = part_name([row["id"] for row in rows])
    write_jsonl(Path(folder) / name, rows)
    return name


@dataclass
class Assembly:
    rows: int
    parts: int
    duplicates_dropped: int


class PartsFolder:
    """``OUT.parts/`` beside ``OUT``."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.folder = self.out.with_name(self.out.name + ".parts")

    def start(self, identity: dict[str, Any], *, overwrite: bool) -> None:
        """Refuse a finished OUT (unless overwrite) and parts of another run; record this run's identity."""
        check_replaceable(self.out)
        if self.out.exists() and not overwrite:
            raise OutputExistsError(f"{self.out} exists")
        run_file = self.folder / RUN_FILE
        if run_file.exists():
            recorded = json.loads(run_file.read_text(encoding="utf-8"))
            if recorded == identity:
                return  # resume
            if not overwrite:
                changed = sorted(k for k in {*recorded, *identity} if recorded.get(k) != identity.get(k))
                raise OutputExistsError(f"{self.folder} holds parts of a run with other {', '.join(changed)}; "
                                        "overwrite to start over")
            self.remove()  # overwrite: another run's parts are not ours to resume
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_write(run_file) as fh:
            json.dump(identity, fh, indent=1, sort_keys=True)

    def parts(self) -> list[Path]:
        return sorted(self.folder.glob(PART_GLOB)) if self.folder.is_dir() else []

    def done_ids(self) -> set[str]:
        """Ids in finished parts: every part file present is complete (written by rename)."""
        done: set[str] = set()
        for part in self.parts():
            with open(part, encoding="utf-8") as fh:
                done.update(json.loads(line)["id"] for line in fh if line.strip())
        return done

    def assemble(self, expected_ids: Sequence[str]) -> Assembly:
        """Concatenate the parts into OUT, each expected id exactly once; fail (parts kept) if any is missing."""
        expected = set(expected_ids)
        written: set[str] = set()
        dropped = 0
        parts = self.parts()
        with atomic_write(self.out) as out:
            for part in parts:
                with open(part, encoding="utf-8") as fh:
                    for line in fh:
                        if not line.strip():
                            continue
                        pair_id = json.loads(line)["id"]
                        if pair_id not in expected:
                            raise RuntimeError(f"{part}: id {pair_id!r} is not in the input")
                        if pair_id in written:
                            dropped += 1
                            continue
                        written.add(pair_id)
                        out.write(line if line.endswith("\n") else line + "\n")
            missing = len(expected) - len(written)
            if missing:  # raising inside atomic_write leaves no OUT behind
                raise RuntimeError(f"{missing} of {len(expected)} pairs have no score in {self.folder}; "
                                   "re-run the same command to score them")
        self.remove()
        return Assembly(len(written), len(parts), dropped)

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.folder)

