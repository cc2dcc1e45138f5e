"""Writes that never leave half a file behind, and the JSON/TOML every record uses.

Every writer goes through :func:`atomic_path` or :func:`atomic_dir`: the data goes to a temporary name beside the
target and is renamed onto it only when complete, with the permissions any program's new file gets (the umask).
A full disk, a quota or a read-only folder becomes one :class:`musefusion.errors.OutputError` naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from musefusion.errors import DataFormatError, MissingDataError, OutputError

# ----------------------------------------------------------------------------------------------- atomic writes


#: errno values that mean 'this output cannot be written here' (not a bug): reported on one line.
OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG})


def _raise_output_error(exc: OSError, path: Path) -> None:
    """Re-raise a full disk, quota, read-only or permission error while writing ``path`` as one clear line."""
    if exc.errno in OUTPUT_ERRNOS:
        raise OutputError(f"Could not write '{path}': {exc.strerror or exc}; nothing partial was left there. Free "
                          "space or pick another --out.") from None


def _umask() -> int:
    """The process umask (read without changing it for longer than the call)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary file is removed when the block raises, so no half-written output is left. The file gets the
    mode any program's new file gets (0666 less the umask), not ``mkstemp``'s private 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as exc:
        _raise_output_error(exc, path)
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def _staged(path: Path, commit: Callable[[Path, Path], None]) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; ``commit(tmp, path)`` moves it into place only if the block
    succeeds; the temporary folder never outlives the block; an output error names ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    tmp.chmod(0o777 & ~_umask())
    try:
        yield tmp
        commit(tmp, path)
    except OSError as exc:
        _raise_output_error(exc, path)
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _replace_whole(tmp: Path, path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)


def _replace_entries(tmp: Path, path: Path) -> None:
    if not path.is_dir():
        _replace_whole(tmp, path)
        return
    for entry in sorted(tmp.iterdir()):
        target = path / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        os.replace(entry, target)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; it replaces ``path`` only if the block succeeds."""
    with _staged(Path(path), _replace_whole) as tmp:
        yield tmp


@contextlib.contextmanager
def own_entries(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; when the block succeeds its entries replace the same-named entries
    of ``path`` (a new ``path`` is moved in whole), and every other file in ``path`` is kept: an output written
    with ``--overwrite`` never removes what it did not write."""
    with _staged(Path(path), _replace_entries) as tmp:
        yield tmp


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


#: Key of the map ``{"path/to/key": "nan" | "inf" | "-inf"}`` of values written as JSON null.
NON_FINITE_KEY = "non_finite"


def _strict(obj: Any, where: str, found: dict[str, str]) -> Any:
    if isinstance(obj, float) and not np.isfinite(obj):
        found[where] = repr(obj)
        return None
    if isinstance(obj, np.floating | np.integer):
        return _strict(obj.item(), where, found)
    if isinstance(obj, dict):
        return {k: _strict(v, f"{where}/{k}" if where else str(k), found) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v, f"{where}/{i}" if where else str(i), found) for i, v in enumerate(obj)]
    return obj


def _restore(obj: Any, parts: list[str], value: float) -> None:
    for p in parts[:-1]:
        obj = obj[int(p)] if isinstance(obj, list) else obj.get(p)
        if obj is None:
            return
    last = parts[-1]
    if isinstance(obj, list):
        obj[int(last)] = value
    elif isinstance(obj, dict) and last in obj and obj[last] is None:
        obj[last] = value


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Write strict JSON atomically (sorted keys, indented).

    NaN and infinities (a devel CCC without devel subjects, say) are written as ``null``, and a top-level
    ``"non_finite"`` map records which keys they were and what they held, so :func:`read_json` restores them.
    """
    found: dict[str, str] = {}
    clean = _strict(data, "", found)
    if found and isinstance(clean, dict):
        clean[NON_FINITE_KEY] = found
    return write_text(path, json.dumps(clean, indent=2, sort_keys=True, default=str, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file.

    Raises:
        MissingDataError: the file does not exist.
        DataFormatError: the file is not valid JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"File '{path}' not found.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"'{path}' is not valid JSON ({exc}).") from None
    if isinstance(data, dict) and isinstance(data.get(NON_FINITE_KEY), dict):
        for where, text in data.pop(NON_FINITE_KEY).items():
            _restore(data, str(where).split("/"), float(text))
    return data


def write_toml(path: str | os.PathLike[str], data: dict[str, Any]) -> Path:
    """Write a TOML file atomically (``None`` values are dropped, TOML has no null)."""

    def clean(d: Any) -> Any:
        if isinstance(d, dict):
            return {k: clean(v) for k, v in d.items() if v is not None}
        if isinstance(d, (list, tuple)):
            return [clean(v) for v in d]
        return d

    return write_text(path, tomli_w.dumps(clean(data)))


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML file.

    Raises:
        MissingDataError: the file does not exist.
        DataFormatError: the file is not valid TOML.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"Config file '{path}' not found.")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise DataFormatError(f"'{path}' is not valid TOML ({exc}).") from None
    except UnicodeDecodeError:
        raise DataFormatError(f"'{path}' is not UTF-8 text (TOML files must be UTF-8); save it as UTF-8.") from None
    except PermissionError:
        raise MissingDataError(f"'{path}' cannot be read (permission denied).") from None



#: Content digests of files already hashed in this process, keyed by (path, size, mtime_ns, inode).
_DIGESTS: dict[tuple[str, int, int, int], bytes] = {}


def file_digest(path: str | os.PathLike[str], h: Any) -> None:
    """Feed a file's name and a digest of its bytes into the hash object ``h`` (for cache and reuse keys).

    A file's bytes are read once per process while its size, mtime and inode stay the same.
    """

    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    digest = _DIGESTS.get(key)
    if digest is None:
        fh_hash = hashlib.blake2b(digest_size=16)
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                fh_hash.update(chunk)
        digest = _DIGESTS[key] = fh_hash.digest()
    h.update(str(path.name).encode())
    h.update(digest)
