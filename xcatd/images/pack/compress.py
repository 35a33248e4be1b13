"""Where an archive stream goes: a compressor on every core, into a file.

- gzip: zlib-ng's threaded writer (pigz's method: 1 MiB blocks compressed
  in parallel, each primed with the previous 32 KiB, written as one ordinary
  gzip member), level 6 as gzip and pigz default to.  zlib-ng is about twice
  as fast as zlib at the same level, for output within 2 % of zlib's.
- zstd: the zstandard library's multi-threaded compressor (one worker per
  core), level 3 (zstd's default), with a frame checksum.
- xz: the `xz -T0` program (liblzma's multi-threaded encoder; Python's lzma
  is single-threaded), CRC32 checks as the kernel's and busybox's decoders
  want.
- squashfs: `mksquashfs - OUT -tar` reading the archive as an uncompressed
  tar on its standard input, with the chosen compressor.  Its own default
  levels (gzip 9, zstd 15) take a minute and more for a 1.3 GB image on two
  cores; gzip 6 and zstd 6 (smaller than gzip 6, three times as fast) take
  20 s and 7 s.

Every sink has `write`, then either `finish` (returns the output's size and
SHA-256) or `abort` (stops helpers, the caller removes the file).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import tempfile
from pathlib import Path
from typing import BinaryIO

from .tree import PackError

GZIP_LEVEL = 6
ZSTD_LEVEL = 3
BUFFER = 1 << 20
SQUASHFS_OPTIONS = {
    "gzip": ["-comp", "gzip", "-Xcompression-level", "6"],
    "xz": ["-comp", "xz"],
    "zstd": ["-comp", "zstd", "-Xcompression-level", "6"],
}


def cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class _Hashing:
    """The output file: counts and hashes every byte on its way to the disk."""

    def __init__(self, file: BinaryIO) -> None:
        self.file, self.size, self.sha256 = file, 0, hashlib.sha256()

    def write(self, data) -> int:
        self.sha256.update(data)
        self.file.write(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.file.flush()


class Sink:
    """Buffers the archive's many small writes into large ones."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def write(self, data: bytes) -> None:
        if len(data) >= BUFFER and not self._buffer:
            self._put(data)
            return
        self._buffer += data
        if len(self._buffer) >= BUFFER:
            self._put(bytes(self._buffer))
            self._buffer.clear()

    def tell(self) -> int:  # tarfile asks
        return 0

    def _drain(self) -> None:
        if self._buffer:
            self._put(bytes(self._buffer))
            self._buffer.clear()

    def _put(self, data: bytes) -> None:
        raise NotImplementedError

    def finish(self) -> tuple[int, str]:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


class _FileSink(Sink):
    """A compressor in this process, writing the file itself."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._file = path.open("wb")
        self._out = _Hashing(self._file)

    def _close(self) -> None:
        raise NotImplementedError

    def finish(self) -> tuple[int, str]:
        self._drain()
        self._close()
        self._file.close()
        return self._out.size, self._out.sha256.hexdigest()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._close()  # stops its threads; the output is thrown away
        self._file.close()


class GzipSink(_FileSink):
    def __init__(self, path: Path, threads: int | None = None) -> None:
        super().__init__(path)
        from zlib_ng import gzip_ng_threaded

        self._gzip = gzip_ng_threaded.open(
            self._out, "wb", compresslevel=GZIP_LEVEL, threads=threads or cores()
        )

    def _put(self, data: bytes) -> None:
        self._gzip.write(data)

    def _close(self) -> None:
        self._gzip.close()


class ZstdSink(_FileSink):
    def __init__(self, path: Path, threads: int | None = None) -> None:
        super().__init__(path)
        import zstandard

        compressor = zstandard.ZstdCompressor(
            level=ZSTD_LEVEL, threads=threads or -1, write_checksum=True
        )
        # It only calls write() and flush(), which _Hashing has.
        self._zstd = compressor.stream_writer(self._out, closefd=False)  # type: ignore[arg-type]

    def _put(self, data: bytes) -> None:
        self._zstd.write(data)

    def _close(self) -> None:
        self._zstd.close()


class ProgramSink(Sink):
    """A program reads the archive on its standard input and writes `path`."""

    def __init__(self, argv: list[str], path: Path, *, stdout_is_output: bool) -> None:
        super().__init__()
        self._path = path
        self._name = argv[0]
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115  (closed in finish/abort)
        self._output = path.open("wb") if stdout_is_output else None
        try:
            self._process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=self._output or subprocess.DEVNULL,
                stderr=self._errors,
                close_fds=True,
            )
        except FileNotFoundError:
            self._close_files()
            raise PackError(f"{self._name} is not installed on this management node") from None

    def _put(self, data: bytes) -> None:
        try:
            self._process.stdin.write(data)  # type: ignore[union-attr]
        except BrokenPipeError:
            self._process.wait()
            raise PackError(self._failure()) from None

    def finish(self) -> tuple[int, str]:
        self._drain()
        with contextlib.suppress(BrokenPipeError):
            self._process.stdin.close()  # type: ignore[union-attr]
        rc = self._process.wait()
        self._close_files()
        if rc != 0:
            raise PackError(self._failure())
        return _size_and_sha256(self._path)

    def abort(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        with contextlib.suppress(OSError):
            self._process.stdin.close()  # type: ignore[union-attr]
        self._process.wait()
        self._close_files()

    def _failure(self) -> str:
        self._errors.seek(0)
        said = self._errors.read().decode(errors="replace").strip().splitlines()
        tail = "; ".join(said[-3:]) if said else "no message"
        return f"{self._name} failed (exit code {self._process.returncode}): {tail}"

    def _close_files(self) -> None:
        if self._output is not None:
            self._output.close()
        self._errors.close()


def xz_sink(path: Path) -> ProgramSink:
    return ProgramSink(["xz", "-T0", "--check=crc32", "-c"], path, stdout_is_output=True)


def squashfs_sink(path: Path, compression: str, root: os.stat_result) -> ProgramSink:
    """mksquashfs reading a tar; the tar holds no '.' entry, so the root
    directory's mode, owner and time are given as options."""
    argv = [
        "mksquashfs", "-", str(path), "-tar", "-noappend", "-quiet", "-no-progress",
        *SQUASHFS_OPTIONS[compression],
        "-processors", str(cores()),
        "-root-mode", f"{root.st_mode & 0o7777:o}",
        "-root-uid", str(root.st_uid), "-root-gid", str(root.st_gid),
        "-root-time", str(max(0, min(int(root.st_mtime), 0xFFFFFFFF))),
    ]  # fmt: skip
    return ProgramSink(argv, path, stdout_is_output=False)


def open_sink(method: str, compression: str, path: Path, root: os.stat_result) -> Sink:
    """The sink for `method` (cpio, tar, squashfs) and `compression` (gzip, xz, zstd)."""
    if method == "squashfs":
        return squashfs_sink(path, compression, root)
    if compression == "xz":
        return xz_sink(path)
    return GzipSink(path) if compression == "gzip" else ZstdSink(path)


def _size_and_sha256(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as file:
        while chunk := file.read(BUFFER):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
