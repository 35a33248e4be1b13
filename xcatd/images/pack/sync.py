"""Synclists applied to a root image before it is packed (`xdcp -i <rootimg> -F`).

xCAT's synclist format, as far as it concerns an image:

    /etc/hosts -> /etc/hosts                 a file, to that path in the image
    /etc/a /etc/b -> /etc/sync/              files into a directory (trailing /)
    /srv/conf/*.conf -> /etc/app/            shell globs on the management node
    /srv/tree -> /opt/tree                   a directory, copied recursively
    APPEND:
    /srv/motd.extra -> /etc/motd             appended to the image's file
    EXECUTE: / EXECUTEALWAYS: / MERGE:       for nodes (updatenode); skipped here

`#` starts a comment.  Lines starting with `(noderange)` name nodes, which an
image has none of, and are skipped.  Everything is written inside the image
without following a symbolic link out of it; modes and times come from the
source, owners are root.
"""

from __future__ import annotations

import glob
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..rootfiles import RootFileError, read_in_image, write_in_image
from .tree import PackError

NODE_SECTIONS = ("EXECUTE:", "EXECUTEALWAYS:", "MERGE:")


@dataclass
class SyncList:
    copies: list[tuple[list[str], str]] = field(default_factory=list)
    appends: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # for nodes, not images


def parse(text: str, where: str = "synclist") -> SyncList:
    parsed, section = SyncList(), ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line in ("APPEND:", *NODE_SECTIONS):
            section = line
            continue
        if section in NODE_SECTIONS or line.startswith("("):
            parsed.skipped.append(line)
            continue
        sources, arrow, target = line.partition("->")
        if not arrow or not sources.split() or not target.strip():
            raise PackError(f"{where} line {number}: expected 'source ... -> destination'")
        target = target.strip()
        if not target.startswith("/"):
            raise PackError(f"{where} line {number}: the destination must be absolute")
        if section == "APPEND:":
            parsed.appends.extend((source, target) for source in sources.split())
        else:
            parsed.copies.append((sources.split(), target))
    return parsed


def apply(rootimg: Path, synclist_paths: list[str]) -> list[str]:
    """Sync every list into the image; notes about what was skipped."""
    try:
        return _apply(rootimg, synclist_paths)
    except RootFileError as exc:
        raise PackError(str(exc)) from None


def _apply(rootimg: Path, synclist_paths: list[str]) -> list[str]:
    notes = []
    for path in synclist_paths:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise PackError(f"cannot read synclist {path}: {exc.strerror}") from None
        synclist = parse(text, path)
        for sources, target in synclist.copies:
            files = _expand(sources, path)
            into_directory = target.endswith("/") or len(files) > 1
            for source in files:
                destination = f"{target.rstrip('/')}/{source.name}" if into_directory else target
                copy_into(source, rootimg, destination)
        for appended, target in synclist.appends:
            data = _read(Path(appended))
            write_in_image(
                rootimg, target, _original(rootimg, target) + data, 0o644, keep_mode=True
            )
        if synclist.skipped:
            notes.append(
                f"{path}: {len(synclist.skipped)} line(s) for nodes (EXECUTE, MERGE, "
                "noderanges) are not applied to an image"
            )
    return notes


def _expand(sources: list[str], where: str) -> list[Path]:
    found = []
    for source in sources:
        matches = sorted(glob.glob(source)) if glob.has_magic(source) else [source]
        if not matches or not all(os.path.lexists(m) for m in matches):
            raise PackError(f"{where}: {source} does not exist on the management node")
        found += [Path(m) for m in matches]
    return found


def _read(source: Path) -> bytes:
    try:
        return source.read_bytes()
    except OSError as exc:
        raise PackError(f"cannot read {source} to sync it: {exc.strerror}") from None


def copy_into(source: Path, rootimg: Path, destination: str) -> None:
    """A file, or a directory and what it holds, to `destination` in the image
    (xdcp -i too)."""
    st = source.stat()
    if stat.S_ISDIR(st.st_mode):
        for child in sorted(source.iterdir()):
            copy_into(child, rootimg, f"{destination.rstrip('/')}/{child.name}")
        return
    write_in_image(rootimg, destination, _read(source), stat.S_IMODE(st.st_mode),
                   mtime_ns=st.st_mtime_ns)  # fmt: skip


ORIGINALS = "var/lib/xcat/syncfiles/org"  # inside the image


def _original(rootimg: Path, target: str) -> bytes:
    """The file as it was before any APPEND, kept aside the first time, so that
    packing again appends once, not once per pack (as xCAT keeps it)."""
    kept = f"/{ORIGINALS}/{target.lstrip('/')}"
    original = read_in_image(rootimg, kept)
    if original is None:
        original = read_in_image(rootimg, target) or b""
        write_in_image(rootimg, kept, original, 0o600)
    return original
