"""Boot files are written whole or not at all: a node never reads half of one."""

from __future__ import annotations

import os
import resource
import signal
import tempfile
from pathlib import Path

from xcatd.boot.files import copy_if_changed, write_atomic


def test_a_write_that_fails_leaves_no_temporary_behind(tmp_path):
    """A file size limit fails the write the way a full disk does, part way."""
    (tmp_path / "cn1").write_bytes(b"as before")
    pid = os.fork()
    if pid == 0:  # the limit and its signal only in a child
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        try:
            write_atomic(tmp_path / "cn1", b"x" * 10000)
        except OSError as exc:
            os._exit(exc.errno)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 27  # EFBIG
    assert [p.name for p in tmp_path.iterdir()] == ["cn1"]
    assert (tmp_path / "cn1").read_bytes() == b"as before"


def test_a_file_replaced_only_by_renames_is_linked_not_copied(tmp_path):
    cache, tftpdir = tmp_path / "install", tmp_path / "tftpboot"
    cache.mkdir()
    tftpdir.mkdir()
    publish(cache / "kernel", b"a kernel", 0o644)
    before = (cache / "kernel").stat()

    assert copy_if_changed(cache / "kernel", tftpdir / "kernel", link=True)
    assert not copy_if_changed(cache / "kernel", tftpdir / "kernel", link=True)  # current

    assert (tftpdir / "kernel").stat().st_ino == before.st_ino
    after = (cache / "kernel").stat()  # the source's mode and times are its own
    assert (after.st_mode, after.st_mtime_ns) == (before.st_mode, before.st_mtime_ns)
    with (tftpdir / "kernel").open("rb") as booting:  # a node's download under way
        publish(cache / "kernel", b"a newer kernel", 0o644)
        assert copy_if_changed(cache / "kernel", tftpdir / "kernel", link=True)
        assert booting.read() == b"a kernel"  # the old inode, whole
    assert (tftpdir / "kernel").read_bytes() == b"a newer kernel"
    assert (tftpdir / "kernel").stat().st_ino == (cache / "kernel").stat().st_ino
    assert sorted(p.name for p in tftpdir.iterdir()) == ["kernel"]


def test_a_source_nodes_could_not_read_is_copied_readable_not_linked(tmp_path):
    publish(tmp_path / "kernel", b"a kernel", 0o600)

    assert copy_if_changed(tmp_path / "kernel", tmp_path / "served", link=True)

    assert (tmp_path / "served").stat().st_ino != (tmp_path / "kernel").stat().st_ino
    assert (tmp_path / "served").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "kernel").stat().st_mode & 0o777 == 0o600


def test_across_filesystems_the_file_is_copied(tmp_path):
    with tempfile.TemporaryDirectory(dir="/dev/shm") as other:  # a tmpfs of its own
        source = Path(other) / "kernel"
        publish(source, b"a kernel", 0o644)
        assert source.stat().st_dev != tmp_path.stat().st_dev

        assert copy_if_changed(source, tmp_path / "kernel", link=True)
        assert not copy_if_changed(source, tmp_path / "kernel", link=True)  # current

        assert (tmp_path / "kernel").read_bytes() == b"a kernel"
        assert (tmp_path / "kernel").stat().st_mtime_ns == source.stat().st_mtime_ns


def publish(path: Path, data: bytes, mode: int) -> None:
    """`data` put at `path` by a rename, as the writers of images do."""
    new = path.with_name(f".{path.name}.new")
    new.write_bytes(data)
    new.chmod(mode)
    os.replace(new, path)
