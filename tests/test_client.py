"""The thin client's own errors: each one line, saying what and where."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import xcat_protocol
from xcat_client.render import Renderer
from xcat_protocol import PROTOCOL_VERSION
from xcat_protocol.messages import Output, Progress, RequestBody

from xcatd import __version__

from .cluster import Cluster, free_port
from .sessions import connect, key_of, outcome, signed


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


# -- protocol versions ----------------------------------------------------------

OURS, NEWER = PROTOCOL_VERSION, PROTOCOL_VERSION + 1


def newer_release(tmp_path: Path) -> dict[str, str]:
    """What a program of the next protocol version runs with: this protocol
    package with its version raised, found first on PYTHONPATH."""
    package = Path(xcat_protocol.__file__).parent
    newer = tmp_path / "newer" / "xcat_protocol"
    shutil.copytree(package, newer, ignore=shutil.ignore_patterns("__pycache__"))
    init = newer / "__init__.py"
    declared = f"PROTOCOL_VERSION = {OURS}\n"
    assert declared in init.read_text()
    init.write_text(init.read_text().replace(declared, f"PROTOCOL_VERSION = {NEWER}\n"))
    return {"PYTHONPATH": str(newer.parent)}


def test_a_client_older_than_the_daemon_says_to_upgrade_the_client(tmp_path):
    cluster = Cluster(tmp_path / "c")
    assert cluster.init().returncode == 0
    cluster.start(env={**cluster.env, **newer_release(tmp_path)})
    try:
        result = cluster.run("lsxcatd", "-v")
    finally:
        cluster.stop()
    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        f"Error: xcatd at 127.0.0.1:{cluster.port} speaks protocol {NEWER} (xcatd {__version__}), "
        f"newer than this client's {OURS}: upgrade the client commands on this machine to its "
        "release\n",
    )


def test_a_client_newer_than_the_daemon_says_to_upgrade_the_daemon(shared_cluster, tmp_path):
    env = {**shared_cluster.env, **newer_release(tmp_path)}
    result = shared_cluster.run("lsxcatd", "-v", env=env)
    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        f"Error: xcatd at 127.0.0.1:{shared_cluster.port} speaks protocol {OURS} "
        f"(xcatd {__version__}), older than this client's {NEWER}: upgrade xcatd on 127.0.0.1 "
        "to this client's release\n",
    )
    assert shared_cluster.ok("lsxcatd", "-v") == f"Version {__version__}\n"


def test_the_daemon_refuses_a_request_of_another_protocol_in_one_line(shared_cluster):
    """What a client from before the hello carried a version, or a relay,
    is told: the check on the request itself."""
    connection = connect(shared_cluster)
    payload = RequestBody("lsxcatd", ["-v"], "tester", 0, bytes(16), protocol=NEWER).encode()
    connection.send(signed(1, key_of(shared_cluster.cred_dir), payload))
    assert outcome(connection, 1) == (
        [
            f"Error: this request is of protocol {NEWER} and xcatd {__version__} on mn1 speaks "
            f"{OURS}: upgrade xcatd on mn1 to the client's release"
        ],
        1,
    )
    connection.close()
