"""xcatd under systemd, as an administrator meets it: the unit file, the notify
protocol (READY=1, WATCHDOG=1, STOPPING=1), `systemctl reload` (SIGHUP) and
`systemctl stop` (SIGTERM).

The tests play systemd's side of the notify protocol themselves: they bind the
datagram socket that NOTIFY_SOCKET names and read what the daemon tells it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.cluster import BIN, Cluster
from tests.waiting import wait_for
from xcatd.images.shipped import SHARE

UNIT = SHARE / "systemd/xcatd.service"
XCATD = Path(sys.executable).parent / "xcatd"
WATCHDOG_USEC = "200000"  # WatchdogSec=0.2s: the daemon pings every 0.1 s


# --- systemd's side ----------------------------------------------------------


class NotifySocket:
    """What systemd listens on for a Type=notify service.  Each datagram is
    one message of KEY=value lines."""

    def __init__(self, address: str) -> None:
        """`address` as NOTIFY_SOCKET spells it: a path, or '@name' for a
        name in the abstract namespace."""
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.messages: list[dict[str, str]] = []  # everything received, in order

    def close(self) -> None:
        self.sock.close()

    def receive(self, timeout: float) -> dict[str, str] | None:
        """The next message, or None if none comes within `timeout` seconds."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(4096)
        except TimeoutError:
            return None
        message = dict(line.split("=", 1) for line in data.decode().splitlines() if line)
        self.messages.append(message)
        return message

    def wait_for(self, key: str, value: str, timeout: float = 5) -> dict[str, str]:
        """The first message from now on that says KEY=VALUE."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            message = self.receive(remaining)
            if message is not None and message.get(key) == value:
                return message
        raise AssertionError(f"no {key}={value} within {timeout} s; got {self.messages}")

    def collect(self, seconds: float) -> list[dict[str, str]]:
        """Every message that arrives in the next `seconds`."""
        got = []
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            message = self.receive(remaining)
            if message is not None:
                got.append(message)
        return got


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    """A notify socket at a path, like systemd's /run/systemd/notify."""
    sock = NotifySocket(str(tmp_path / "notify"))
    yield sock
    sock.close()


@pytest.fixture
def abstract_notify_socket() -> Iterator[NotifySocket]:
    """A notify socket in the abstract namespace: NOTIFY_SOCKET=@name."""
    sock = NotifySocket(f"@xcatd-test-{os.getpid()}-{secrets.token_hex(8)}")
    yield sock
    sock.close()


@pytest.fixture
def new_cluster(tmp_path: Path) -> Cluster:
    """`xcatd init` done, daemon not started yet."""
    cluster = Cluster(tmp_path / "cluster")
    result = cluster.init()
    assert result.returncode == 0, result.stderr
    return cluster


@contextmanager
def started_by_systemd(cluster: Cluster, notify: NotifySocket, **extra: str) -> Iterator[None]:
    """`systemctl start xcatd`: `xcatd serve` with NOTIFY_SOCKET and
    WATCHDOG_USEC (from WatchdogSec=) in its environment."""
    env = cluster.env
    env.pop("WATCHDOG_PID", None)  # in case pytest itself runs under a watchdog
    env |= {"NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": WATCHDOG_USEC, **extra}
    cluster.start(env=env)
    try:
        yield
    finally:
        cluster.stop(timeout=10)


def running(cluster: Cluster) -> bool:
    return cluster.process is not None and cluster.process.poll() is None


def accepts_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def wait_for_log(cluster: Cluster, text: str, after: int = 0, timeout: float = 5) -> None:
    """Until the log holds more than `after` occurrences of `text`, or the daemon died."""
    wait_for(
        lambda: cluster.logs().count(text) > after or not running(cluster),
        f"the log says {text!r}",
        timeout,
        interval=0.01,
    )
    assert running(cluster), f"xcatd exited with {cluster.process.returncode}:\n{cluster.logs()}"


def systemctl_reload(cluster: Cluster) -> None:
    """ExecReload=/bin/kill -HUP $MAINPID, then wait until the daemon has reloaded."""
    assert cluster.process is not None
    done = cluster.logs().count("reloaded settings and")
    cluster.process.send_signal(signal.SIGHUP)
    wait_for_log(cluster, "reloaded settings and", after=done)


# --- 1. the unit file --------------------------------------------------------


def service_section(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_the_unit_is_a_watched_notify_service_restarted_on_failure():
    service = service_section(UNIT.read_text())
    assert service["Type"] == ["notify"]
    assert service["NotifyAccess"] == ["main"]
    assert service["Restart"] == ["on-failure"]
    (watchdog,) = service["WatchdogSec"]
    assert re.fullmatch(r"[1-9]\d*s", watchdog), watchdog
    assert service["ExecStart"][0].endswith("/xcatd serve")
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]


def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed on this host")
    # verify insists that ExecStart's binary exists: point it at this venv's xcatd.
    unit = tmp_path / "xcatd.service"
    unit.write_text(
        re.sub(r"^ExecStart=\S+", f"ExecStart={XCATD}", UNIT.read_text(), flags=re.MULTILINE)
    )
    service = service_section(unit.read_text())
    assert service["ExecStart"] == [f"{XCATD} serve"]
    assert service["Type"] == ["notify"]
    assert service["Restart"] == ["on-failure"]
    assert service["WatchdogSec"] != [""]

    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=30
    )

    assert result.returncode == 0, result.stderr
    # A misspelt setting or value is only a warning, with exit status 0.
    assert "xcatd.service" not in result.stderr, result.stderr


# --- 2. the notify protocol --------------------------------------------------


def test_ready_comes_with_the_main_pid_once_the_port_accepts_connections(
    new_cluster, notify_socket
):
    # A unit ordered After=xcatd.service starts the moment READY=1 arrives:
    # it connects then, once, without retrying.
    def unit_ordered_after_xcatd() -> tuple[dict[str, str], bool]:
        ready = notify_socket.wait_for("READY", "1", timeout=10)
        return ready, accepts_connections(new_cluster.port)

    with ThreadPoolExecutor(1) as pool:
        follower = pool.submit(unit_ordered_after_xcatd)
        with started_by_systemd(new_cluster, notify_socket):
            ready, connected = follower.result(timeout=10)

            assert connected, "READY=1 came before the port accepted connections"
            assert ready["MAINPID"] == str(new_cluster.process.pid)
            assert ready["STATUS"] == f"serving on port {new_cluster.port}"


def test_watchdog_pings_keep_coming(new_cluster, notify_socket):
    with started_by_systemd(new_cluster, notify_socket):
        notify_socket.wait_for("READY", "1")

        second = notify_socket.collect(1.0)

        pings = [message for message in second if message == {"WATCHDOG": "1"}]
        # Every 0.1 s for WATCHDOG_USEC=200000: well over the 5 asked here.
        assert len(pings) >= 5, notify_socket.messages


def test_sigterm_says_stopping_and_exits_0(new_cluster, notify_socket):
    with started_by_systemd(new_cluster, notify_socket):
        notify_socket.wait_for("READY", "1")

        assert new_cluster.stop(signal.SIGTERM, timeout=5) == 0, new_cluster.logs()

        notify_socket.wait_for("STOPPING", "1", timeout=1)


def test_an_abstract_notify_socket_hears_ready_watchdog_and_stopping(
    new_cluster, abstract_notify_socket
):
    notify = abstract_notify_socket
    with started_by_systemd(new_cluster, notify):
        ready = notify.wait_for("READY", "1")
        assert ready["MAINPID"] == str(new_cluster.process.pid)
        notify.wait_for("WATCHDOG", "1", timeout=1)

        assert new_cluster.stop(signal.SIGTERM, timeout=5) == 0, new_cluster.logs()

        notify.wait_for("STOPPING", "1", timeout=1)


def test_a_watchdog_meant_for_another_process_gets_no_pings(new_cluster, notify_socket):
    # systemd sets WATCHDOG_PID to the process it watches; a child that
    # inherits the environment must not feed the parent's watchdog.
    someone_else = str(os.getpid())
    with started_by_systemd(new_cluster, notify_socket, WATCHDOG_PID=someone_else):
        notify_socket.wait_for("READY", "1")

        notify_socket.collect(0.5)  # five ping intervals

        assert not [m for m in notify_socket.messages if "WATCHDOG" in m], notify_socket.messages
        assert running(new_cluster)


def test_a_reload_right_after_ready_reloads_instead_of_killing_the_daemon(
    new_cluster, notify_socket
):
    # `systemctl start xcatd && systemctl reload xcatd`: the SIGHUP can follow
    # READY=1 within a millisecond.
    def systemctl_reload_at_ready() -> None:
        ready = notify_socket.wait_for("READY", "1", timeout=10)
        os.kill(int(ready["MAINPID"]), signal.SIGHUP)

    with ThreadPoolExecutor(1) as pool:
        reloaded = pool.submit(systemctl_reload_at_ready)
        with started_by_systemd(new_cluster, notify_socket):
            reloaded.result(timeout=10)

            wait_for_log(new_cluster, "reloaded settings and")
            assert new_cluster.run("lsxcatd", "-v").returncode == 0


# --- 3. SIGHUP: settings and policy ------------------------------------------


def test_sighup_rereads_the_policy(cluster, tmp_path):
    alice = tmp_path / "alice"
    issued = cluster.xcatd("mkusercert", "alice", "--out", str(alice))
    assert issued.returncode == 0, issued.stderr
    as_alice = cluster.env | {"XCAT_CRED_DIR": str(alice)}

    refused = cluster.run("lsxcatd", "-v", env=as_alice)
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr == "Error: Permission denied for request\n"

    # The administrator lets alice in ...
    inserted = subprocess.run(
        [BIN / "sqlite-utils", "insert", cluster.root / "var/lib/xcat/xcat.sqlite", "policy", "-"],
        input=json.dumps({"priority": 3, "name": "alice", "rule": "allow"}),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert inserted.returncode == 0, inserted.stderr
    # ... which the running daemon does not know yet,
    assert cluster.run("lsxcatd", "-v", env=as_alice).returncode == 1

    systemctl_reload(cluster)

    allowed = cluster.run("lsxcatd", "-v", env=as_alice)
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout == "Version 0.1.0\n"


def test_sighup_applies_a_changed_xcatd_toml(cluster):
    config = cluster.root / "etc/xcat/xcatd.toml"
    config.write_text(config.read_text().replace('hostname = "mn1"', 'hostname = "mn1-new"'))

    systemctl_reload(cluster)

    result = cluster.run("lsxcatd", "-a")
    assert result.returncode == 0, result.stderr
    assert "hostname=mn1-new" in result.stdout.splitlines()


def test_a_new_port_in_xcatd_toml_waits_for_the_next_start(cluster):
    config = cluster.root / "etc/xcat/xcatd.toml"
    config.write_text(
        config.read_text().replace(f"port = {cluster.port}\n", f"port = {cluster.port + 1}\n")
    )

    systemctl_reload(cluster)

    assert "reload: listen and port changes apply at the next start" in cluster.logs()
    assert cluster.run("lsxcatd", "-v").returncode == 0  # still on the old port


BROKEN_TOML = {
    "not TOML": b'hostname = "mn2"\nport = \n',
    "an unknown setting": b'hostname = "mn2"\nlisten_port = 3001\n',
    "a setting of the wrong type": b'hostname = "mn2"\nport = "3001"\n',
    "an unknown role": b'hostname = "mn2"\nrole = "compute"\n',
    "no hostname": b'role = "master"\n',
    "not UTF-8": b'hostname = "mn2"\n# \xff\n',
}


@pytest.mark.parametrize("content", BROKEN_TOML.values(), ids=BROKEN_TOML.keys())
def test_a_broken_xcatd_toml_on_sighup_keeps_the_daemon_serving_the_old_settings(cluster, content):
    config = cluster.root / "etc/xcat/xcatd.toml"
    config.write_bytes(content)

    systemctl_reload(cluster)

    said = re.compile(
        rf"^ERROR xcatd\.daemon: reload: .*{re.escape(str(config.resolve()))}.*"
        r"; keeping the current settings$",
        re.MULTILINE,
    )
    assert said.search(cluster.logs()), cluster.logs()
    result = cluster.run("lsxcatd", "-a")
    assert result.returncode == 0, result.stderr
    assert "hostname=mn1" in result.stdout.splitlines()  # not mn2 from the broken file


def test_a_bad_policy_row_on_sighup_keeps_the_daemon_serving(cluster):
    inserted = subprocess.run(
        [BIN / "sqlite-utils", "insert", cluster.root / "var/lib/xcat/xcat.sqlite", "policy", "-"],
        input=json.dumps({"priority": "three", "name": "alice", "rule": "allow"}),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert inserted.returncode == 0, inserted.stderr

    systemctl_reload(cluster)

    assert "reload: policy priority 'three' is not a number; keeping the current policy" in (
        cluster.logs()
    )
    assert cluster.run("lsxcatd", "-v").returncode == 0


# --- 4. graceful stop --------------------------------------------------------


def test_sigterm_while_idle_exits_0_at_once(cluster):
    # A client holding a connection open, mid-handshake, does not hold up the stop.
    with socket.create_connection(("127.0.0.1", cluster.port), timeout=1):
        began = time.monotonic()
        rc = cluster.stop(signal.SIGTERM, timeout=5)
        took = time.monotonic() - began

    assert rc == 0, cluster.logs()
    assert took < 2, f"an idle daemon took {took:.1f} s to stop"
    logs = cluster.logs()
    assert "stopping: 0 requests running, up to 30 s to finish" in logs
    assert logs.rstrip().endswith("xcatd stopped")


def test_after_sigterm_the_port_no_longer_accepts(cluster):
    assert cluster.stop(signal.SIGTERM, timeout=5) == 0, cluster.logs()

    assert not accepts_connections(cluster.port)
    result = cluster.run("lsxcatd", "-v")
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"Error: cannot reach xcatd at {cluster.address}:{cluster.port}"
    )
