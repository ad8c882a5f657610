"""Atomic file and folder output: readers never see a half-written file or folder, a failed write leaves
nothing behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

# mkstemp creates files readable by the owner only; outputs should get the usual permissions. Read the
# umask once, at import (reading it means setting it, which is not thread-safe).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``, on error delete it.

    The temporary name keeps the final extension, so writers that pick a format from the suffix work.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(f"output directory does not exist: {str(directory)!r}")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=directory)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh, empty ``<name>.partial`` folder beside ``path``; on success it replaces ``path``, on
    error it is deleted.

    An existing ``path`` stays readable until the end of the block (copy what should be kept from it
    there) and is moved aside to ``<name>.old`` for the swap, so at no moment is neither folder in place
    under one of the two names.
    """
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if not path.exists():
        partial.rename(path)
        return
    old = path.with_name(path.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    path.rename(old)
    partial.rename(path)
    shutil.rmtree(old)


def keep_beside(source: Path, target: Path, names: tuple[str, ...], *, replace: bool = False) -> None:
    """Copy the files or folders ``names`` from ``source`` into ``target`` where ``source`` has them and
    ``target`` does not (a model card or seed images kept when a model folder is written anew); with
    ``replace``, also where ``target`` has them (``source``'s win)."""
    for name in names:
        if not (source / name).exists():
            continue
        if (target / name).exists():
            if not replace:
                continue
            if (target / name).is_dir():
                shutil.rmtree(target / name)
            else:
                (target / name).unlink()
        if (source / name).is_dir():
            shutil.copytree(source / name, target / name)
        else:
            shutil.copy2(source / name, target / name)
