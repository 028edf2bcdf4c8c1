"""Whose a run folder is, who writes it, and what it must hold to be resumed.

A compare writes only into a folder that is new, empty, or recognised as a dfo
compare run folder: one whose ``config.json`` says ``"format": "dfo compare"``.
Anything else (``--out .`` in a folder of one's own files, an existing file, an
unwritable path) is refused before any run.

**Identity.** ``config.json`` holds the compare's identity: the fully resolved
settings (task and its options, methods, seeds, budgets, method options) and the
folder format's version, with a short hash of both, ``id``. Every record in
``runs.jsonl`` carries the ``id`` of the compare that wrote it; a record of
another compare is never counted. Resuming with other settings is refused with
the differences named.

**Lock.** While a compare writes the folder it holds ``dfo.lock``, created
exclusively and holding its process id, host, start time and command line. A
second compare into the same folder is refused with a message naming the first.
A lock left by a process that no longer runs on this host (killed with SIGKILL,
a power cut) is recognised as stale and taken over.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dfo.exceptions import OutputPathError, RunFolderError
from dfo.files import check_output_folder

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "LOCK_FILE",
    "compare_id",
    "lock",
    "prepare",
]

FORMAT = "dfo compare"
#: version 1: no format, identity or lock; version 2: all three
FORMAT_VERSION = 2
LOCK_FILE = "dfo.lock"
CONFIG_FILE = "config.json"


def compare_id(planned: dict[str, Any]) -> str:
    """A short hash of a compare's resolved settings and the folder format's version.

    Parameters
    ----------
    planned : dict
        The JSON-ready resolved settings (:func:`dfo.compare.runner.resolved`).

    Returns
    -------
    str
        16 hexadecimal digits; equal settings give equal ids.
    """
    text = json.dumps(
        {"format_version": FORMAT_VERSION, "compare": planned},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _not_own(config: Path) -> str:
    """Why ``config`` is not the config.json of a dfo compare ("" if it is, any version)."""
    from dfo.compare.records import read_config

    try:
        read_config(config)
    except RunFolderError as exc:
        if "earlier dfo" in str(exc):
            return ""  # dfo's own, of an earlier format: it may be started afresh
        return str(exc)
    return ""


def prepare(folder: Path, *, resume: bool) -> bool:
    """Check that a compare may write ``folder`` (creating it); say if it holds one.

    Parameters
    ----------
    folder : Path
        The run folder (``--out``).
    resume : bool
        Whether the finished runs of a compare in it are to be kept.

    Returns
    -------
    bool
        Whether ``folder`` holds a dfo compare (its ``config.json`` is dfo's).

    Raises
    ------
    OutputPathError
        ``folder`` is a file, cannot be created or written, or holds files that a
        dfo compare did not write.
    RunFolderError
        ``resume`` with nothing to resume, or a damaged ``config.json``.
    """
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(f"--out {str(folder)!r} is a file; expected a folder")
    if resume and not folder.is_dir():
        raise RunFolderError(
            f"nothing to resume: {str(folder)!r} does not exist; run without --resume "
            "to start a compare there"
        )
    check_output_folder(folder, what="--out")
    config = folder / CONFIG_FILE
    why = ""
    if config.is_file():
        from dfo.compare.records import read_config

        if resume:
            read_config(config)  # a damaged file is an error, named
            return True
        why = _not_own(config)
        if not why:
            return True
    others = sorted(p.name for p in folder.iterdir() if p.name != LOCK_FILE)
    if others:
        shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        raise OutputPathError(
            f"--out {str(folder)!r} is not a dfo run folder (it holds {shown}"
            + (f"; {why}" if why else "")
            + "); dfo writes only into a new or empty folder or one of its own run folders"
        )
    if resume:
        raise RunFolderError(f"nothing to resume in {str(folder)!r}: no compare was started there")
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _read_lock(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _describe(holder: dict[str, Any] | None) -> str:
    if holder is None:
        return "a process that left no details"
    started = holder.get("started")
    when = (
        time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started))
        if isinstance(started, int | float)
        else "?"
    )
    command = holder.get("command")
    command = " ".join(map(str, command)) if isinstance(command, list) else "?"
    return f"process {holder.get('pid')} on {holder.get('host')}, started {when}: {command}"


def _stale(holder: dict[str, Any] | None) -> bool:
    if holder is None:
        return False
    pid = holder.get("pid")
    return (
        holder.get("host") == socket.gethostname()
        and isinstance(pid, int)
        and not isinstance(pid, bool)
        and pid > 0
        and not _alive(pid)
    )


@contextlib.contextmanager
def lock(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s lock while the block runs; refuse if another compare holds it.

    The lock file is written completely under a temporary name and then linked to
    ``dfo.lock``, which fails if that name exists: two compares can never both
    hold it, and a lock file is never half written.

    Parameters
    ----------
    folder : Path

    Raises
    ------
    RunFolderError
        Another live process holds the lock (the message names it).
    """
    path = folder / LOCK_FILE
    me = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.time(),
        "command": ["dfo", *sys.argv[1:]] if sys.argv and sys.argv[0] else [],
    }
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".dfo.lock.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(me, fh)
        for attempt in range(2):
            try:
                os.link(tmp, path)
                break
            except FileExistsError:
                holder = _read_lock(path)
                if attempt == 0 and _stale(holder):
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                    continue
                raise RunFolderError(
                    f"run folder {str(folder)!r} is in use by another dfo compare "
                    f"({_describe(holder)}); wait for it to finish or use another --out "
                    f"(if it is not running, delete {str(path)!r})"
                ) from None
    finally:
        os.unlink(tmp)
    try:
        yield
    finally:
        if _read_lock(path) == me:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
