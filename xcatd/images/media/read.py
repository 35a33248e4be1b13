"""Distribution media, read the same way whether a directory or an ISO image.

ISO images are read with pycdlib, in-process: no loop devices, no mounts, no
root-only tricks, so copycds works in containers and CI alike.  Rock Ridge
names (and symlinks, and modes) are used when present, Joliet otherwise.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import pycdlib
from pycdlib.dr import DirectoryRecord
from pycdlib.pycdlibexception import PyCdlibException

from ...errors import XcatdError

ISO_MAGIC_OFFSET = 0x8001
ISO_MAGIC = b"CD001"


class MediaError(XcatdError):
    """Media that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Entry:
    path: str  # relative, '/'-separated
    kind: str  # dir | file | symlink
    size: int = 0
    mode: int = 0o644
    target: str = ""  # for symlinks


class Media(Protocol):
    source: str

    def read_text(self, path: str) -> str | None:
        """A small file's text, or None when the media has no such file."""

    def entries(self) -> Iterator[Entry]:
        """Every directory, file and symlink, parents before children."""

    def open(self, path: str) -> BinaryIO: ...

    def close(self) -> None: ...


def open_media(source: str) -> Media:
    path = Path(source)
    try:
        if path.is_dir():
            os.listdir(path)  # fails now, with the reason, if unreadable
            return DirectoryMedia(path)
        with path.open("rb") as f:
            f.seek(ISO_MAGIC_OFFSET)
            magic = f.read(len(ISO_MAGIC))
    except FileNotFoundError:
        raise MediaError(f"{source} does not exist") from None
    except OSError as exc:
        raise MediaError(f"cannot read {source}: {exc.strerror}") from None
    if magic != ISO_MAGIC:
        raise MediaError(f"{source} is neither an ISO image nor a directory")
    return IsoMedia(path)


class DirectoryMedia:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.source = str(root)

    def read_text(self, path: str) -> str | None:
        try:
            return (self.root / path).read_text(errors="replace")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def entries(self) -> Iterator[Entry]:
        for directory, dirs, files in os.walk(self.root):
            dirs.sort()
            base = Path(directory)
            for name in [*dirs, *sorted(files)]:
                full = base / name
                relative = str(full.relative_to(self.root))
                info = full.lstat()
                if stat.S_ISLNK(info.st_mode):
                    yield Entry(relative, "symlink", target=os.readlink(full))
                elif stat.S_ISDIR(info.st_mode):
                    yield Entry(relative, "dir", mode=stat.S_IMODE(info.st_mode))
                elif stat.S_ISREG(info.st_mode):
                    yield Entry(relative, "file", info.st_size, stat.S_IMODE(info.st_mode))

    def open(self, path: str) -> BinaryIO:
        return (self.root / path).open("rb")

    def close(self) -> None:
        pass


class IsoMedia:
    def __init__(self, path: Path) -> None:
        self.source = str(path)
        self.iso = pycdlib.PyCdlib()
        try:
            self.iso.open(str(path))
        except (PyCdlibException, OSError, ValueError, IndexError) as exc:
            raise MediaError(f"{path} is damaged or truncated: {exc}") from None
        # The volume descriptor says how large the image is: a shorter file
        # lost its end, even where that end was only padding.
        declared = self.iso.pvd.space_size * self.iso.pvd.log_block_size
        actual = path.stat().st_size
        if actual < declared:
            self.iso.close()
            raise MediaError(
                f"{path} is damaged or truncated: it has {actual} of its {declared} bytes"
            )
        if self.iso.has_rock_ridge():
            self._facet = "rr_path"
        elif self.iso.has_joliet():
            self._facet = "joliet_path"
        else:
            self._facet = "iso_path"

    def read_text(self, path: str) -> str | None:
        try:
            expected = self.iso.get_record(**{self._facet: "/" + path}).get_data_length()
            with self.open(path) as f:
                data = f.read()
        except PyCdlibException:
            return None
        if len(data) != expected:
            raise MediaError(
                f"{self.source} is damaged or truncated: {path} has {len(data)} of its "
                f"{expected} bytes"
            )
        return data.decode(errors="replace")

    def entries(self) -> Iterator[Entry]:
        try:
            for directory, dirs, files in self.iso.walk(**{self._facet: "/"}):
                for name in sorted(dirs) + sorted(files):
                    absolute = f"{directory.rstrip('/')}/{name}"
                    yield self._entry(absolute)
        except PyCdlibException as exc:
            raise MediaError(f"{self.source} is damaged: {exc}") from None

    def _entry(self, absolute: str) -> Entry:
        record = self.iso.get_record(**{self._facet: absolute})
        assert isinstance(record, DirectoryRecord)  # a UDF record only for udf_path
        relative = absolute.lstrip("/")
        rock = record.rock_ridge
        if rock is not None and rock.is_symlink():
            return Entry(relative, "symlink", target=rock.symlink_path().decode())
        mode = stat.S_IMODE(rock.get_file_mode()) if rock is not None else None
        if record.is_dir():
            return Entry(relative, "dir", mode=mode or 0o755)
        return Entry(relative, "file", record.get_data_length(), mode or 0o644)

    def open(self, path: str) -> BinaryIO:
        # A RawIOBase whose read() never answers None: it reads a file, not a pipe.
        return self.iso.open_file_from_iso(**{self._facet: "/" + path.lstrip("/")})  # type: ignore[return-value]

    def close(self) -> None:
        self.iso.close()
