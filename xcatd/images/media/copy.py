"""Copying media into the install tree, all or nothing.

The copy goes to a staging directory beside the target and is renamed into
place only when complete, so a copy that fails or is cancelled half way
never leaves a tree that looks finished; the next copycds removes what a
crashed one left.  A lock file beside the target makes a second copycds of
the same target (from any process) refuse at once instead of mixing trees.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from ...errors import XcatdError
from ..locks import held
from .read import Entry, Media, MediaError

CHUNK = 1 << 20
PROGRESS_EVERY = 16 << 20


class CopyError(XcatdError):
    pass


@contextlib.contextmanager
def target_lock(target: Path) -> Iterator[None]:
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.parent / f".{target.name}.copycds.lock"
    with held(
        lock_path, CopyError(f"another copycds is copying to {target}; wait for it to finish")
    ):
        for leftover in target.parent.glob(f".{target.name}.copycds-*"):
            shutil.rmtree(leftover, ignore_errors=True)  # from a copy that crashed
        yield


def copy_media(
    media: Media,
    target: Path,
    progress: Callable[[int, int], None],
    check_cancelled: Callable[[], None],
) -> None:
    """Copy every entry of `media` to `target` (replacing it), reporting bytes done."""
    entries = [_safe(entry) for entry in media.entries()]
    meter = _Meter(sum(entry.size for entry in entries), progress, check_cancelled)
    staging = target.parent / f".{target.name}.copycds-{uuid.uuid4().hex[:8]}"
    try:
        staging.mkdir(mode=0o755)
        for entry in entries:
            check_cancelled()
            _place(media, entry, staging / entry.path, meter)
        progress(meter.total, meter.total)
        _swap_into_place(staging, target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if exc.errno == errno.ENOSPC:
            raise CopyError(f"no space left on the disk of {target.parent} while copying") from None
        raise CopyError(f"copying to {target} failed: {exc}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


class _Meter:
    """Bytes copied so far; reports progress (and notices a cancel) every few MiB."""

    def __init__(
        self, total: int, progress: Callable[[int, int], None], check_cancelled: Callable
    ) -> None:
        self.total, self.done, self._reported = total, 0, 0
        self._progress, self._check_cancelled = progress, check_cancelled

    def add(self, count: int) -> None:
        self.done += count
        if self.done - self._reported >= PROGRESS_EVERY:
            self._check_cancelled()
            self._progress(self.done, self.total)
            self._reported = self.done


def _safe(entry: Entry) -> Entry:
    parts = entry.path.split("/")
    if entry.path.startswith("/") or ".." in parts or "" in parts:
        raise MediaError(f"the media names a path outside itself: {entry.path!r}")
    return entry


def _place(media: Media, entry: Entry, path: Path, meter: _Meter) -> None:
    if entry.kind == "dir":
        path.mkdir(mode=entry.mode | 0o700)
    elif entry.kind == "symlink":
        path.symlink_to(entry.target)
    else:
        copied = 0
        with media.open(entry.path) as source, path.open("wb") as out:
            while chunk := source.read(CHUNK):
                out.write(chunk)
                copied += len(chunk)
                meter.add(len(chunk))
        if copied != entry.size:
            raise MediaError(
                f"{media.source} is damaged or truncated: {entry.path} has "
                f"{copied} of its {entry.size} bytes"
            )
        path.chmod(entry.mode | 0o400)


def _swap_into_place(staging: Path, target: Path) -> None:
    if target.exists():
        retired = target.parent / f".{target.name}.copycds-old-{uuid.uuid4().hex[:8]}"
        os.rename(target, retired)
        os.rename(staging, target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.rename(staging, target)
