"""Requests run concurrently, each in its own cancel scope: a cancel frame, a
client that goes away, Ctrl-C in the client or the daemon's graceful stop
end exactly the requests they should.

These run the daemon in the test's own trio loop, so that a test can add a
command that waits for it ("hold") — the product has no command slow enough
to watch being cancelled yet.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time

import pytest
import trio
from xcat_client.errors import ClientError
from xcat_protocol.messages import Cancel, Done, Output, RequestBody, StdinData

from xcatd.call import Call
from xcatd.commands import REGISTRY
from xcatd.commands.registry import Command, CommandParser
from xcatd.daemon import Daemon
from xcatd.layout import Layout
from xcatd.systemd import Notifier

from .cluster import BIN, Cluster
from .sessions import ask, connect, key_of, outcome, outcomes, signed


class Hold:
    """A command that runs until the test releases it, and records how it ended."""

    def __init__(self) -> None:
        self.release = trio.Event()
        self.running = 0
        self.started = trio.Event()
        self.cancelled = 0
        self.finished = 0

    async def __call__(self, call: Call) -> None:
        self.running += 1
        self.started.set()
        try:
            await self.release.wait()
            await call.info("released")
            self.finished += 1
        except trio.Cancelled:
            self.cancelled += 1
            raise
        finally:
            self.running -= 1

    async def until(self, condition, timeout: float = 10) -> None:
        with trio.fail_after(timeout):
            while not condition():
                await trio.sleep(0.01)


@pytest.fixture
def hold(monkeypatch) -> Hold:
    hold = Hold()
    command = Command("hold", "wait until released", CommandParser(prog="hold"), hold)
    monkeypatch.setitem(REGISTRY, "hold", command)
    return hold


@pytest.fixture
async def served(tmp_path, nursery):
    """A cluster whose daemon runs inside this test's trio loop."""
    cluster = Cluster(tmp_path / "cluster")
    assert cluster.init().returncode == 0
    daemon = Daemon(Layout.for_root(cluster.root), notifier=Notifier({}))
    done = trio.Event()

    async def run(task_status=trio.TASK_STATUS_IGNORED):
        try:
            await daemon.run(task_status=task_status)
        finally:
            done.set()

    await nursery.start(run)
    cluster.daemon, cluster.stopped = daemon, done
    return cluster


def in_thread(function, *args):
    return trio.to_thread.run_sync(function, *args)


async def start_hold(connection) -> int:
    """Send a `hold` request; its id."""
    return await in_thread(lambda: connection.request("hold", [], user="t"))


async def test_many_requests_run_at_once_on_one_connection(served, hold):
    connection = await in_thread(connect, served)
    ids = [await start_hold(connection) for _ in range(20)]
    await hold.until(lambda: hold.running == 20)
    # While twenty requests wait, a twenty-first on the same connection is answered.
    assert await in_thread(ask, connection) == (["Version 0.1.0"], 0)
    hold.release.set()
    results = await in_thread(outcomes, connection, ids)
    assert results == {request_id: (["released"], 0) for request_id in ids}


async def test_a_cancel_frame_cancels_exactly_that_request(served, hold):
    connection = await in_thread(connect, served)
    first = await start_hold(connection)
    second = await start_hold(connection)
    await hold.until(lambda: hold.running == 2)

    await in_thread(connection.send, Cancel(first))
    assert await in_thread(outcome, connection, first) == ([], 130)
    assert (hold.cancelled, hold.running) == (1, 1)

    hold.release.set()
    assert await in_thread(outcome, connection, second) == (["released"], 0)


async def test_a_client_that_goes_away_cancels_its_requests(served, hold):
    connection = await in_thread(connect, served)
    await start_hold(connection)
    await start_hold(connection)
    await hold.until(lambda: hold.running == 2)
    connection.close()
    await hold.until(lambda: hold.cancelled == 2)
    assert hold.running == 0


async def test_ctrl_c_in_the_client_cancels_the_request_and_exits_130(served, hold, tmp_path):
    (tmp_path / "hold").symlink_to(BIN / "lsxcatd")
    client = subprocess.Popen(
        [tmp_path / "hold"], env=served.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    await hold.started.wait()
    client.send_signal(signal.SIGINT)
    rc = await in_thread(client.wait, 10)
    stderr = client.stderr.read()
    assert (rc, stderr) == (130, b"Error: hold cancelled\n"), stderr.decode()
    await hold.until(lambda: hold.cancelled == 1)


async def test_sigterm_lets_running_requests_finish_and_refuses_new_ones(served, hold):
    connection = await in_thread(connect, served)
    running = await start_hold(connection)
    await hold.started.wait()

    os.kill(os.getpid(), signal.SIGTERM)  # the daemon's signal handler takes it
    await hold.until(lambda: served.daemon.stopping)
    with pytest.raises(ClientError, match="Connection refused"):  # no longer listening
        await in_thread(connect, served)
    assert await in_thread(ask, connection) == (
        ["Error: xcatd is shutting down; try again when it is back"],
        1,
    )

    hold.release.set()
    assert await in_thread(outcome, connection, running) == (["released"], 0)
    with trio.fail_after(5):
        await served.stopped.wait()


async def test_requests_still_running_after_the_grace_period_are_cancelled(served, hold):
    config = served.root / "etc/xcat/xcatd.toml"
    config.write_text(config.read_text().replace("grace_period = 30.0", "grace_period = 0.3"))
    os.kill(os.getpid(), signal.SIGHUP)
    await hold.until(lambda: served.daemon.config.grace_period == 0.3)

    connection = await in_thread(connect, served)
    await start_hold(connection)
    await hold.started.wait()
    os.kill(os.getpid(), signal.SIGTERM)
    with trio.fail_after(5):
        await served.stopped.wait()
    assert (hold.cancelled, hold.finished) == (1, 0)


async def test_a_request_id_in_use_is_a_protocol_error(served, hold):
    connection = await in_thread(connect, served)
    request_id = await start_hold(connection)
    await hold.started.wait()
    connection._next_id = request_id  # the client reuses an id still running
    await start_hold(connection)
    messages = []
    with pytest.raises(Exception, match=f"request id {request_id} is already in use"):
        while True:
            messages.append(await in_thread(connection.receive))
    assert all(isinstance(m, Output | Done) for m in messages)


async def test_the_client_sends_its_cwd_xcat_environment_and_piped_stdin(
    served, monkeypatch, tmp_path
):
    seen = {}

    async def record(call: Call) -> None:
        seen.update(cwd=call.body.cwd, env=call.body.env, stdin=call.stdin)
        seen.update(args=call.body.args, user=call.caller.name)

    parser = CommandParser(prog="show")
    parser.add_argument("-z", action="store_true")
    command = Command("show", "show the request", parser, record, reads_stdin=True)
    monkeypatch.setitem(REGISTRY, "show", command)
    (tmp_path / "show").symlink_to(BIN / "lsxcatd")
    env = {**served.env, "XCAT_PROFILE": "compute", "OTHER": "not sent"}

    def run_client():
        return subprocess.run(
            [tmp_path / "show", "-z"], input=b"node01:\n", cwd=tmp_path, env=env, timeout=30
        )

    assert (await in_thread(run_client)).returncode == 0
    assert seen["cwd"] == str(tmp_path)
    assert seen["stdin"] == b"node01:\n"
    assert seen["args"] == ["-z"]
    assert seen["user"] == "root"
    assert seen["env"]["XCAT_PROFILE"] == "compute"
    assert "OTHER" not in seen["env"]


async def test_large_standard_input_is_streamed_and_checked_against_the_signed_digest(
    served, monkeypatch
):
    sizes = []

    async def measure(call: Call) -> None:
        sizes.append(len(call.stdin or b""))

    measuring = Command("measure", "", CommandParser(prog="measure"), measure, reads_stdin=True)
    monkeypatch.setitem(REGISTRY, "measure", measuring)
    connection = await in_thread(connect, served)
    big = os.urandom(9 << 20)  # over the frame-friendly inline size: streamed
    request_id = await in_thread(lambda: connection.request("measure", [], stdin=big, user="t"))
    assert await in_thread(outcome, connection, request_id) == ([], 0)
    assert sizes == [len(big)]

    # A relay that alters streamed input is caught by the digest.
    key = key_of(served.cred_dir)
    payload = RequestBody(
        cmd="measure",
        args=[],
        user="t",
        ts=int(time.time() * 1000),
        nonce=os.urandom(16),
        stdin_sha256=hashlib.sha256(b"what the user piped").digest(),
    ).encode()
    await in_thread(connection.send, signed(99, key, payload))
    await in_thread(connection.send, StdinData(99, b"something else"))
    await in_thread(connection.send, StdinData(99, b""))
    assert await in_thread(outcome, connection, 99) == (
        ["Error: standard input does not match the digest the request was signed with"],
        1,
    )


async def test_a_reply_too_large_for_the_client_arrives_as_an_error_in_its_place(
    served, monkeypatch
):
    async def shout(call: Call) -> None:
        await call.info("x" * (17 << 20))
        await call.info("and then a line that fits")

    monkeypatch.setitem(REGISTRY, "shout", Command("shout", "", CommandParser(prog="shout"), shout))
    connection = await in_thread(connect, served)
    request_id = await in_thread(lambda: connection.request("shout", [], user="t"))
    lines, _ = await in_thread(outcome, connection, request_id)
    assert lines == [
        f"Error: a reply of {(17 << 20) + 35} bytes is over the 16777216-byte frame limit "
        "and was not sent; see the xcatd log",
        "and then a line that fits",
    ]


def send_streamed(connection, key, request_id: int, cmd: str, megabytes: int) -> None:
    """A request whose standard input is `megabytes` MiB streamed after it, in
    1 MiB frames sent as they are made (the test never holds it whole)."""
    chunk = os.urandom(1 << 20)
    payload = RequestBody(
        cmd=cmd,
        args=[],
        user="t",
        ts=int(time.time() * 1000),
        nonce=os.urandom(16),
        stdin_sha256=hashlib.sha256(b"the limits come before the digest").digest(),
    ).encode()
    connection.send(signed(request_id, key, payload))
    for _ in range(megabytes):
        connection.send(StdinData(request_id, chunk))
    connection.send(StdinData(request_id, b""))


async def test_standard_input_is_bounded_and_dropped_unread_where_not_wanted(served, monkeypatch):
    async def measure(call: Call) -> None:
        await call.info(f"{len(call.stdin or b'')} bytes")

    for name, reads in (("measure", True), ("ignore", False)):
        command = Command(name, "", CommandParser(prog=name), measure, reads_stdin=reads)
        monkeypatch.setitem(REGISTRY, name, command)
    connection = await in_thread(connect, served)
    key = key_of(served.cred_dir)

    await in_thread(send_streamed, connection, key, 1, "measure", 257)
    assert await in_thread(outcome, connection, 1) == (
        ["Error: standard input is over the 256 MiB limit"],
        1,
    )
    # A command that reads no input is not held up by it, nor made to keep it.
    await in_thread(send_streamed, connection, key, 2, "ignore", 64)
    assert await in_thread(outcome, connection, 2) == (["0 bytes"], 0)
    assert served.daemon.input_budget.held == 0
