"""Atomic output: a file or a directory appears complete or not at all."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import OutputError


#: Temporary names: ``.<target name>.fleet-tmp.<host>.<pid>.<random>`` (the output being written)
#: and ``.<target name>.fleet-old.<host>.<pid>`` (the previous report during a swap), next to the
#: target.  ``<host>`` is a short hash of the host name, so a PID is only judged on its own host.
TMP_TAG = ".fleet-tmp."
OLD_TAG = ".fleet-old."
#: a temporary of a live process on another host (a shared file system) is removed only when
#: older than this (s): no fleet output takes hours to write.
STALE_TEMP_S = 6 * 3600.0
#: the target name is cut to this many characters in temporary names (file names are at most 255
#: bytes on Linux/macOS file systems; the tags, PID and random part need the rest).
_NAME_IN_TEMP = 100
_NAME_MAX = 255


def _host() -> str:
    import hashlib
    import socket

    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]


def _tmp_prefix(target: Path, tag: str) -> str:
    return f".{target.name[:_NAME_IN_TEMP]}{tag}{_host()}.{os.getpid()}."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _parse_temp(name: str) -> tuple[str, str, str, int] | None:
    """(target name, tag, host, pid) of one of fleet's temporary names, else None."""
    for tag in (TMP_TAG, OLD_TAG):
        i = name.rfind(tag)
        if name.startswith(".") and i > 0:
            parts = name[i + len(tag):].split(".")
            if len(parts) >= 2 and parts[1].isdigit():
                return name[1:i], tag, parts[0], int(parts[1])
    return None


def _is_stale(entry: Path, host: str, pid: int, now: float) -> bool:
    if host == _host() and pid != os.getpid() and not _pid_alive(pid):
        return True
    try:
        age = now - entry.lstat().st_mtime
    except OSError:
        return False
    return age > STALE_TEMP_S


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            p.unlink()


def recover_and_clean(parent: Path, target_name: str | None = None) -> list[Path]:
    """Tidy ``parent`` after killed runs: a previous report left as ``.<name>.fleet-old.*`` by a
    run killed in the middle of its swap is put back where its target is missing; every other
    temporary of fleet's own naming whose process is dead (or that is older than
    :data:`STALE_TEMP_S`) is removed.  Returns what was removed or restored.  Nothing that does not
    carry fleet's temporary tags is touched."""
    import time

    done: list[Path] = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return done
    now = time.time()
    for e in sorted(entries):
        info = _parse_temp(e.name)
        if info is None:
            continue
        name, tag, host, pid = info
        if not _is_stale(e, host, pid, now):
            continue
        if tag == OLD_TAG:
            # the old output of a swap that was killed half-way: restore it if its target is missing
            full = target_name if target_name and target_name[:_NAME_IN_TEMP] == name else \
                (name if len(name) < _NAME_IN_TEMP else None)
            if full is None:
                continue        # a cut name we cannot place: leave it for the run that can
            tgt = parent / full
            if not tgt.exists():
                try:
                    os.rename(e, tgt)
                except OSError:
                    continue
                done.append(tgt)
                continue
        _remove(e)
        done.append(e)
    return done


def _output_error(target: Path, exc: OSError) -> OutputError:
    import errno

    reasons = {errno.ENOSPC: "no space left on the device", errno.EROFS: "the file system is read-only",
               errno.EACCES: "permission denied", errno.EPERM: "permission denied",
               errno.ENAMETOOLONG: "file name too long", errno.ENOTDIR: "a part of the path is a file, not a folder",
               errno.EISDIR: "it is a folder", errno.EDQUOT: "disk quota exceeded"}
    why = reasons.get(exc.errno) if exc.errno is not None else None
    return OutputError(f"cannot write: {why or exc.strerror or exc}", path=target)


def _chmod_umask(p: Path) -> None:
    """Temporaries are created private (0600/0700); an output gets the user's usual mode."""
    mask = os.umask(0)
    os.umask(mask)
    with contextlib.suppress(OSError):
        p.chmod((0o777 if p.is_dir() else 0o666) & ~mask)


def _check_name(target: Path) -> None:
    if str(target) in ("", ".") or target.name in ("", ".", ".."):
        raise OutputError("expected a file or folder name, not an empty path or '.'/'..'", path=target)
    for part in target.parts:
        if len(part.encode()) > _NAME_MAX:
            raise OutputError(f"file name too long ({len(part.encode())} bytes in "
                              f"{part[:20]}...; at most {_NAME_MAX})", path=target)


def _make_parent(target: Path) -> None:
    parent = target.parent
    for p in (parent, *parent.parents):
        if p.exists() and not p.is_dir():
            raise OutputError(f"{p} is a file, not a folder", path=target)
        if p.exists():
            break
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _output_error(target, exc) from exc


def check_output_file(target: str | Path) -> Path:
    """Refuse, before any work, a file output that cannot be written: an empty name, a folder, a
    path under a file, a name too long.  Returns the path."""
    target = Path(target)
    _check_name(target)
    if target.is_dir():
        raise OutputError("is a folder; expected a file name", path=target)
    return _check_parent(target)


def check_output_dir(target: str | Path, marker: str | None = None) -> Path:
    """Refuse, before any work, an output folder fleet must not replace: an existing file, a
    folder that is not one of fleet's outputs (non-empty, without ``marker``), a path under a
    file, a name too long, a parent that is not writable.  Returns the path."""
    target = Path(target)
    _check_name(target)
    if target.exists() or target.is_symlink():
        if target.is_symlink() or not target.is_dir():
            raise OutputError("exists and is not a folder; refusing to replace it (choose another -o)", path=target)
        if marker is not None and not (target / marker).is_file():
            try:
                empty = next(target.iterdir(), None) is None
            except OSError as exc:
                raise _output_error(target, exc) from exc
            if not empty:
                raise OutputError(f"exists and is not a fleet output (no {marker}); refusing to replace "
                                  f"it (choose another folder or remove it)", path=target)
    return _check_parent(target)


def _check_parent(target: Path) -> Path:
    for p in target.parents:
        if p.exists():
            if not p.is_dir():
                raise OutputError(f"{p} is a file, not a folder", path=target)
            if not os.access(p, os.W_OK | os.X_OK):
                raise OutputError(f"cannot write into {p}: permission denied or read-only", path=target)
            break
    return target


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it is renamed onto ``target``.

    On an exception the temporary file is removed and ``target`` is left untouched.  An output
    location that cannot be written raises :class:`~fleet.errors.OutputError` (path and reason).
    """
    target = Path(target)
    check_output_file(target)
    _make_parent(target)
    recover_and_clean(target.parent, None)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(target, TMP_TAG), suffix=suffix or target.suffix,
                                   dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise _output_error(target, exc) from exc
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        _chmod_umask(tmp_path)
        os.replace(tmp_path, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if isinstance(exc, OSError):
            raise _output_error(target, exc) from exc
        raise


def write_text_atomic(target: str | Path, text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_json_atomic(target: str | Path, obj, **kwargs) -> Path:
    kwargs.setdefault("indent", 2)
    kwargs.setdefault("sort_keys", False)
    return write_text_atomic(target, json.dumps(obj, **kwargs) + "\n")


# ---------------------------------------------------------------------------- directory swap
_RENAME_EXCHANGE = 2        # linux/fs.h
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap ``a`` and ``b`` in one atomic step (Linux renameat2 RENAME_EXCHANGE).  False where the
    platform or the file system cannot (the caller falls back to two renames)."""
    import ctypes
    import ctypes.util
    import errno
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _exchange_supported(folder: Path) -> bool:
    """Whether :func:`_exchange` works in ``folder`` (tests and diagnostics)."""
    a = Path(tempfile.mkdtemp(prefix=".xchg-a.", dir=folder))
    b = Path(tempfile.mkdtemp(prefix=".xchg-b.", dir=folder))
    try:
        return _exchange(a, b)
    except OSError:
        return False
    finally:
        shutil.rmtree(a, ignore_errors=True)
        shutil.rmtree(b, ignore_errors=True)


def swap_in(tmp: Path, target: Path) -> None:
    """Put the finished folder ``tmp`` in place of ``target`` so that, at every instant, ``target``
    is either the old output whole or the new one whole.

    On Linux one atomic exchange (renameat2) does it; the old output is then in ``tmp`` and is
    removed.  Elsewhere (or on a file system without the exchange) the old output is first
    renamed to ``.<name>.fleet-old.<host>.<pid>`` and the new one renamed into place: a kill
    between those two renames leaves the old output whole under that name, and the next fleet
    run writing next to it puts it back (:func:`recover_and_clean`)."""
    if not target.exists():
        os.rename(tmp, target)
        return
    if _exchange(tmp, target):
        shutil.rmtree(tmp, ignore_errors=True)
        return
    backup = target.with_name(_tmp_prefix(target, OLD_TAG).rstrip("."))
    os.rename(target, backup)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(backup, target)      # put the old output back
        raise
    shutil.rmtree(backup, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(target: str | Path, marker: str | None = None) -> Iterator[Path]:
    """Yield an empty temporary directory next to ``target``; on success it replaces ``target``
    (:func:`swap_in`: the old or the new output is whole at every instant).

    A failed run never leaves a half-written ``target``: the old one (if any) stays as it was.
    ``target`` must not be an existing file, nor (with ``marker``, a file every such output
    holds, e.g. ``summary.json``) a non-empty folder that is not one of fleet's outputs.
    Temporaries of killed runs next to ``target`` are cleaned first (:func:`recover_and_clean`).
    """
    target = Path(target)
    _make_parent(target)
    recover_and_clean(target.parent, target.name)
    check_output_dir(target, marker)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(target, TMP_TAG), dir=target.parent))
    except OSError as exc:
        raise _output_error(target, exc) from exc
    try:
        yield tmp
        _chmod_umask(tmp)
        swap_in(tmp, target)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise _output_error(target, exc) from exc
        raise


def jsonable(obj: Any):
    """A copy of ``obj`` that json can write: numpy scalars as Python numbers, NaN/inf as null,
    dates as ISO 8601 text."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return obj


def to_json(obj: Any) -> str:
    """``obj`` as indented JSON text (see :func:`jsonable`)."""
    return json.dumps(jsonable(obj), indent=2)
