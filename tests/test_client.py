"""The thin client's own errors: each one line, saying what and where."""

from __future__ import annotations

import io

from xcat_client.render import Renderer
from xcat_protocol.messages import Output, Progress

from .cluster import Cluster, free_port


def test_a_daemon_that_is_not_running_is_named_with_its_address(tmp_path):
    cluster = Cluster(tmp_path / "c")
    cluster.init()
    port = free_port()
    result = cluster.run("lsxcatd", "-v", env={**cluster.env, "XCATHOST": f"127.0.0.1:{port}"})
    assert (result.returncode, result.stderr) == (
        1,
        f"Error: cannot reach xcatd at 127.0.0.1:{port} (XCATHOST): Connection refused\n",
    )


def test_missing_credentials_name_the_file(tmp_path):
    cluster = Cluster(tmp_path / "c")
    cluster.init()
    nowhere = tmp_path / "nowhere"
    result = cluster.run("lsxcatd", "-v", env={**cluster.env, "XCAT_CRED_DIR": str(nowhere)})
    assert (result.returncode, result.stderr) == (
        1,
        f"Error: cannot read credentials file {nowhere}/ca.pem: No such file or directory "
        "(set XCAT_CRED_DIR)\n",
    )


def test_unreadable_credentials_name_the_file(tmp_path):
    cluster = Cluster(tmp_path / "c")
    cluster.init()
    cred = cluster.cred_dir / "client-cred.pem"
    cred.unlink()
    cred.mkdir()  # unreadable as a file, even for root
    result = cluster.run("lsxcatd", "-v")
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: cannot read credentials file {cred}: Is a directory (set XCAT_CRED_DIR)\n"
    )


def test_a_bad_xcathost_is_explained(tmp_path):
    cluster = Cluster(tmp_path / "c")
    cluster.init()
    result = cluster.run("lsxcatd", "-v", env={**cluster.env, "XCATHOST": "mn1:http"})
    assert (result.returncode, result.stderr) == (
        1,
        "Error: XCATHOST='mn1:http' is not host[:port]\n",
    )


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_becomes_a_one_line_bar_on_a_terminal():
    out, err = io.StringIO(), Terminal()
    renderer = Renderer(out=out, err=err)
    renderer.progress(Progress(1, "Copying media", 512 * 1024, 1024 * 1024, "bytes"))
    renderer.output(Output(1, "info", text="Media copy operation successful"))
    assert err.getvalue() == (
        "\r\x1b[KCopying media [###############               ]  50% 512.0 KiB/1.0 MiB\r\x1b[K"
    )
    assert out.getvalue() == "Media copy operation successful\n"


def test_progress_is_silent_when_not_on_a_terminal():
    out, err = io.StringIO(), io.StringIO()
    Renderer(out=out, err=err).progress(Progress(1, "Copying", 1, 2, "bytes"))
    assert err.getvalue() == ""


def test_node_messages_are_prefixed_and_errors_go_to_stderr():
    out, err = io.StringIO(), io.StringIO()
    renderer = Renderer(out=out, err=err)
    renderer.output(Output(1, "data", node="node01", text="booted"))
    renderer.output(Output(1, "warning", node="node02", text="no MAC"))
    renderer.output(Output(1, "error", text="Permission denied for request"))
    assert out.getvalue() == "node01: booted\n"
    assert err.getvalue() == "node02: Warning: no MAC\nError: Permission denied for request\n"
