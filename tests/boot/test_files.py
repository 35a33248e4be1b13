"""Boot files are written whole or not at all: a node never reads half of one."""

from __future__ import annotations

import os
import resource
import signal

from xcatd.boot.files import write_atomic


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
