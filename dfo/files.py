"""Safe file writing: exclusive temporary files, atomic renames, paths checked up front.

Every file dfo writes (checkpoints, JSON, the repaired ``runs.jsonl``, tables) goes
through :func:`atomic_write`: the content is written to a new temporary file created
exclusively (:func:`tempfile.mkstemp`, ``O_EXCL``, a random name) in the target's
folder, flushed to disk and renamed over the target with :func:`os.replace`. A
reader thus sees the old file or the new one, never half of one; a file or symlink
planted at a predictable temporary name is never opened, and a symlink at the
target itself is replaced, not followed. :func:`check_output_file` says, before any
work is spent, whether a path can be written.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Collection
from pathlib import Path
from typing import IO, Any

from dfo.exceptions import OutputPathError

__all__ = ["atomic_write", "check_output_file", "check_output_folder"]

#: permissions of a new file (what ``open`` would give under the current umask)
_UMASK = os.umask(0o022)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


def check_output_file(path: str | os.PathLike[str], what: str = "file") -> Path:
    """``path`` as a :class:`~pathlib.Path` if a file can be written there, else raise.

    Parameters
    ----------
    path : path-like
        Where a file will be written (it may exist: it will be replaced).
    what : str, default "file"
        What the file is, for the message ("checkpoint", ...).

    Returns
    -------
    Path

    Raises
    ------
    OutputPathError
        If ``path`` is a directory, its folder does not exist or is not a
        directory, or the folder is not writable.

    Examples
    --------
    >>> check_output_file("/", "checkpoint")
    Traceback (most recent call last):
    ...
    dfo.exceptions.OutputPathError: checkpoint '/' is a directory; expected the path of a file
    """
    try:
        path = Path(path)
    except TypeError:
        raise TypeError(f"{what} must be a path; got {type(path).__name__}") from None
    if path.is_dir():
        raise OutputPathError(f"{what} {str(path)!r} is a directory; expected the path of a file")
    folder = path.parent
    if not folder.exists():
        raise OutputPathError(
            f"{what} {str(path)!r} cannot be written: its folder {str(folder)!r} does not exist"
        )
    if not folder.is_dir():
        raise OutputPathError(
            f"{what} {str(path)!r} cannot be written: {str(folder)!r} is not a folder"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(
            f"{what} {str(path)!r} cannot be written: folder {str(folder)!r} is not writable"
        )
    return path


def check_output_folder(
    folder: str | os.PathLike[str], writes: Collection[str] = (), what: str = "folder"
) -> Path:
    """Create ``folder`` if needed and check that files can be written into it.

    Parameters
    ----------
    folder : path-like
        Where a command writes its files.
    writes : collection of str, optional
        The names of the files it writes there. A folder holding some of them beside
        files of other names (``--out .`` among one's own files) is refused: those
        files would be overwritten, and nothing says dfo wrote them. A folder holding
        only such names (an earlier run's) or none of them is accepted.
    what : str, default "folder"
        How the folder is named, for the message ("--out").

    Returns
    -------
    Path

    Raises
    ------
    OutputPathError
        If ``folder`` is a file, cannot be created or written, or would have files
        dfo did not write overwritten.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(f"{what} {str(folder)!r} is a file; expected a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(
            f"{what} {str(folder)!r} cannot be created: {exc.strerror or exc}"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(f"{what} {str(folder)!r} is not writable")
    names = {p.name for p in folder.iterdir()}
    clash, others = sorted(names & set(writes)), sorted(names - set(writes))
    if clash and others:
        raise OutputPathError(
            f"{what} {str(folder)!r} holds files dfo did not write ({', '.join(others[:3])}"
            f"{', ...' if len(others) > 3 else ''}) beside files it would overwrite "
            f"({', '.join(clash[:3])}{', ...' if len(clash) > 3 else ''}); use a new or "
            "empty folder"
        )
    return folder


def atomic_write(
    path: str | os.PathLike[str],
    content: bytes | str | Callable[[IO[Any]], Any],
    *,
    encoding: str = "utf-8",
) -> None:
    """Write ``content`` to ``path`` atomically, through an exclusive temporary file.

    Parameters
    ----------
    path : path-like
        The file to write (replaced if it exists; a symlink there is replaced, not
        followed).
    content : bytes, str or callable
        The bytes, the text (encoded with ``encoding``), or a function that writes
        into the binary file object it is given (``pickle.dump(obj, fh)``).
    encoding : str, default "utf-8"

    Raises
    ------
    OutputPathError
        If ``path`` is a directory or its folder cannot be written
        (:func:`check_output_file`).
    Exception
        Whatever ``content`` raises; the temporary file is removed and ``path``
        keeps its earlier content.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> atomic_write(target, "hello\\n")
    >>> target.read_text()
    'hello\\n'
    """
    path = check_output_file(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            if callable(content):
                content(fh)
            else:
                fh.write(content.encode(encoding) if isinstance(content, str) else content)
            fh.flush()
            os.fsync(fh.fileno())
            os.fchmod(fh.fileno(), _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
