"""JSONL reading with located errors, atomic writes, and append-only logs that let long jobs resume."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import re
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from pydantic import BaseModel, ValidationError

from taosr1_plugins.errors import DataError, data_error, field_path

M = TypeVar("M", bound=BaseModel)


def open_text(path: str | Path) -> IO[str]:
    """UTF-8 text whose undecodable bytes become lone surrogates instead of raising.

    A strict decoder fails per read chunk, so it can name neither the line nor the field; readers find
    the surrogates in what they parsed (``bad_text``) and report the exact place. A leading byte-order
    mark (spreadsheet exports write one) is dropped.
    """
    path = Path(path)
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", errors="surrogateescape", newline="")
    return open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")


_SURROGATE = re.compile("[\ud800-\udfff]")


def describe_surrogate(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # how surrogateescape carries an undecodable byte
        return f"not valid UTF-8 (byte 0x{code - 0xDC00:02x})"
    return f"lone surrogate U+{code:04X} is not valid Unicode text"


def bad_text(value: Any, loc: tuple = ()) -> tuple[tuple, str] | None:
    """(location, problem) of the first string, key included, that cannot be written as UTF-8; else None."""
    if isinstance(value, str):
        found = _SURROGATE.search(value)
        return (loc, describe_surrogate(found.group())) if found else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = bad_text(key, loc + (key,)) or bad_text(item, loc + (key,))
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = bad_text(item, loc + (i,))
            if found:
                return found
    return None


def parse_json_line(text: str, file: str, line: int) -> Any:
    """One JSONL line, parsed; bad JSON or text that is not valid UTF-8 raises DataError at that line and field."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        found = _SURROGATE.search(text)
        if found:
            raise DataError(file, line, None, describe_surrogate(found.group())) from None
        raise DataError(file, line, None, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise DataError(file, line, None, "invalid JSON: nested too deeply") from None
    found = bad_text(data)
    if found:
        raise DataError(file, line, field_path(found[0]) if found[0] else None, found[1])
    return data


# Decompression and decoding failures that mean the file itself is damaged, not one line of it.
DAMAGED_FILE = (EOFError, OSError, zlib.error, UnicodeDecodeError)


def iter_jsonl_objects(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line: the one JSONL reader.

    Damage is never skipped: the first line that is not a JSON object (bad JSON, a torn last line,
    text that is not UTF-8) and a file that cannot be read to its end (a truncated gzip) raise
    DataError naming the file and line. Only ``ResumableJsonl`` cuts a torn tail, from its own log.
    """
    file = str(path)
    lineno = 0
    with open_text(path) as fh:
        try:
            for lineno, text in enumerate(fh, start=1):
                if not text.strip():
                    continue
                obj = parse_json_line(text, file, lineno)
                if not isinstance(obj, dict):
                    raise DataError(file, lineno, None, f"expected a JSON object, got {type(obj).__name__}")
                yield lineno, obj
        except DAMAGED_FILE as exc:
            raise DataError(file, lineno + 1, None, f"unreadable file: {exc}") from exc


def iter_numbered_jsonl(path: str | Path, model: type[M]) -> Iterator[tuple[int, M]]:
    """Yield (line number, validated object); the first bad line raises DataError naming file, line and field."""
    for lineno, data in iter_jsonl_objects(path):
        try:
            yield lineno, model.model_validate(data)
        except ValidationError as exc:
            raise data_error(exc, str(path), lineno) from exc


def iter_jsonl(path: str | Path, model: type[M]) -> Iterator[M]:
    for _, obj in iter_numbered_jsonl(path, model):
        yield obj


def read_jsonl(path: str | Path, model: type[M]) -> list[M]:
    return list(iter_jsonl(path, model))


def dumps(obj: BaseModel | dict) -> str:
    if isinstance(obj, BaseModel):
        return obj.model_dump_json(exclude_none=True)
    return json.dumps(obj, ensure_ascii=False)


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
PLAIN_NAME_RULE = "letters, digits, '_', '-' and '.', not starting with '.'"


def is_plain_name(name: str) -> bool:
    """A name that becomes NAME.jsonl inside an output folder: no separator, no '..', no hidden file,
    so a user-given dataset or split name can never write outside the folder."""
    return bool(_PLAIN_NAME.fullmatch(name))


def check_replaceable(path: str | Path) -> None:
    """Refuse to write over something that is not a regular file: a rename would replace a device node,
    a FIFO or a directory's name, which is never what the user meant."""
    path = Path(path)
    if os.path.lexists(path) and not path.is_file():
        kind = "a directory" if path.is_dir() else "not a regular file"
        raise DataError(str(path), None, None, f"output exists and is {kind}; refusing to replace it")


def check_outputs(outputs: Iterable[str | Path], inputs: Iterable[str | Path | None]) -> None:
    """Before any work: no output may be one of the command's inputs, nor an existing non-regular file.

    Comparing resolved paths (and inodes, for hard links) catches ``--out`` spelled differently from
    ``--input``; writing it would replace the user's only copy of the data.
    """
    existing = [Path(p) for p in inputs if p is not None]
    for out in map(Path, outputs):
        check_replaceable(out)
        for source in existing:
            same = out.resolve() == source.resolve()
            if not same and out.exists() and source.exists():
                same = os.path.samefile(out, source)
            if same:
                raise DataError(str(out), None, None, f"output is the input {str(source)!r}; refusing to overwrite it")


def _remove_stale_temporaries(path: Path) -> None:
    """Delete temporaries of ``path`` left by a writer that was killed (its pid, in the name, is gone)."""
    prefix = f".{path.name}."
    with contextlib.suppress(OSError):
        for entry in os.scandir(path.parent):
            if not (entry.name.startswith(prefix) and entry.name.endswith(".tmp")):
                continue
            pid = entry.name[len(prefix) :].split(".", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def current_umask() -> int:
    """The process's umask (reading it means setting it: set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def make_shareable(target: int | str | Path, *, directory: bool = False) -> None:
    """Give a file (descriptor or path) made by ``tempfile.mkstemp`` / ``mkdtemp`` the mode ``open()`` would have.

    tempfile creates 0600 files and 0700 folders whatever the umask, so a teammate on the same server could not
    read a run's results; ``open()`` and ``mkdir`` give 0666 / 0777 less the user's umask, and so does this."""
    mode = (0o777 if directory else 0o666) & ~current_umask()
    if isinstance(target, int):
        os.fchmod(target, mode)
    else:
        os.chmod(target, mode)


@contextlib.contextmanager
def atomic_writes(paths: Iterable[str | Path], mode: str = "w") -> Iterator[list[IO]]:
    """Write several files beside their targets and move them into place only when all were written.

    Every target is checked before the first byte is written, so a bad one (say, a directory) leaves
    none of the others behind either.
    """
    targets = [Path(p) for p in paths]
    for path in targets:
        check_replaceable(path)
    staged: list[tuple[Path, str, IO]] = []
    created: list[Path] = []  # folders made for the outputs: a failed write must not leave them behind
    try:
        for path in targets:
            missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
            path.parent.mkdir(parents=True, exist_ok=True)
            created.extend(missing)
            _remove_stale_temporaries(path)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
            make_shareable(fd)  # the mode open() would give it, not mkstemp's 0600
            staged.append((path, tmp, os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8")))
        yield [fh for _, _, fh in staged]
        for _, _, fh in staged:
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
        for path, tmp, _ in staged:
            os.replace(tmp, path)
    except BaseException:
        for _, tmp, fh in staged:
            fh.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        for folder in sorted(created, key=lambda p: len(p.parts), reverse=True):  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Write to a temporary file beside ``path`` and move it into place only on success."""
    with atomic_writes([path], mode) as (fh,):
        yield fh


def write_jsonl(path: str | Path, rows: Iterable[BaseModel | dict]) -> int:
    return write_jsonl_all({path: rows})[0]


def write_jsonl_all(outputs: dict[str | Path, Iterable[BaseModel | dict]]) -> list[int]:
    """Several JSONL files, all or none (see ``atomic_writes``); the row count of each."""
    counts = [0] * len(outputs)
    with atomic_writes(outputs) as handles:
        for i, (fh, rows) in enumerate(zip(handles, outputs.values())):
            for row in rows:
                fh.write(dumps(row) + "\n")
                counts[i] += 1
    return counts


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
        check_replaceable(self.path)
        check_replaceable(self.partial)
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
        """Stop without finishing; a log with no rows is removed (a run that failed at once leaves nothing)."""
        if not self._fh.closed:
            self._fh.close()
            if not self.rows:
                with contextlib.suppress(OSError):
                    self.partial.unlink()
