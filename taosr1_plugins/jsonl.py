"""JSONL reading with located errors, atomic writes, and append-only logs that let long jobs resume."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import DataError, field_path

M = TypeVar("M", bound=BaseModel)


def open_text(path: str | Path) -> IO[str]:
    path = Path(path)
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def iter_numbered_jsonl(path: str | Path, model: type[M]) -> Iterator[tuple[int, M]]:
    """Yield (line number, validated object); the first bad line raises DataError naming file, line and field."""
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(str(path), lineno, None, f"invalid JSON: {exc.msg} (column {exc.colno})") from exc
            try:
                yield lineno, model.model_validate(data)
            except ValidationError as exc:
                err = exc.errors()[0]
                raise DataError(str(path), lineno, field_path(err["loc"]), err["msg"]) from exc


def iter_jsonl(path: str | Path, model: type[M]) -> Iterator[M]:
    for _, obj in iter_numbered_jsonl(path, model):
        yield obj


def read_jsonl(path: str | Path, model: type[M]) -> list[M]:
    return list(iter_jsonl(path, model))


def dumps(obj: BaseModel | dict) -> str:
    if isinstance(obj, BaseModel):
        return obj.model_dump_json(exclude_none=True)
    return json.dumps(obj, ensure_ascii=False)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Write to a temporary file beside ``path`` and move it into place only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_jsonl(path: str | Path, rows: Iterable[BaseModel | dict]) -> int:
    count = 0
    with atomic_write(path) as fh:
        for row in rows:
            fh.write(dumps(row) + "\n")
            count += 1
    return count


class ResumableJsonl:
    """An append-only ``<out>.partial`` log for long jobs, renamed to ``<out>`` when the job completes.

    Every finished row is flushed and fsynced as it is written, so a job killed at any point keeps all
    rows it finished; a torn last line (killed mid-write) is cut off when the log is reopened.
    """

    def __init__(self, path: str | Path, key: str = "id"):
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.key = key
        self.rows: list[dict[str, Any]] = []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.partial.exists():
            self._recover()
        self._fh = open(self.partial, "a", encoding="utf-8")

    def _recover(self) -> None:
        good_bytes = 0
        with open(self.partial, "rb") as fh:
            for raw in fh:
                if not raw.endswith(b"\n"):
                    break
                try:
                    self.rows.append(json.loads(raw))
                except json.JSONDecodeError:
                    break
                good_bytes += len(raw)
        with open(self.partial, "r+b") as fh:
            fh.truncate(good_bytes)

    @property
    def done(self) -> set[Any]:
        return {row[self.key] for row in self.rows}

    def append(self, row: dict[str, Any]) -> None:
        self._fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.rows.append(row)

    def finish(self) -> None:
        self._fh.close()
        os.replace(self.partial, self.path)

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()
