"""The nodes' logs (issue 13 item 4): what a node logs reaches the rsyslog of
its xcatmaster, which keeps it in <logdir>/nodes/<node>.log and in its own
syslog; a service node keeps its nodes' lines and passes them on.

Real rsyslogd everywhere, in network namespaces: the management node's with
the drop-in `xcatd init` wrote, the nodes' with the files genimage puts into
an image and the kernel command line nodeset writes (tests/syslogs.py).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import Cluster
from tests.netboot import Network, network
from tests.syslogs import logger, node, receiver
from tests.waiting import wait_for
from xcatd.images.shipped import SHARE
from xcatd.nodelogs import DROP_IN

MN = "10.77.0.1"
SN = 10  # sn1's address on the bridge: 10.77.0.10
CN = 20


@pytest.fixture
def mn(tmp_path: Path) -> Iterator[tuple[Network, Cluster]]:
    """A management node's cluster after `xcatd init`, and the test network it is on."""
    cluster = Cluster(tmp_path / "mn1")
    init = cluster.init()
    assert init.returncode == 0, init.stderr
    drop_in = cluster.root / "etc/rsyslog.d" / DROP_IN
    assert (
        f"Wrote {drop_in}: the nodes' logs go to {cluster.root}/var/log/xcat/nodes" in init.stdout
    )
    with network(tmp_path) as net:
        yield net, cluster


def logged(path: Path, text: str, timeout: float = 15) -> str:
    """Wait for a log file to hold `text`; the file's text."""
    wait_for(
        lambda: path.exists() and text in path.read_text(),
        lambda: f"{text!r} in {path}: {path.read_text() if path.exists() else 'no file'}",
        timeout,
    )
    return path.read_text()


def command_line(master: str, name: str) -> str:
    """What nodeset puts on a node's kernel command line, around what syslog needs."""
    return f"imgurl=http://{master}/x.cpio.gz XCAT={master}:3001 NODE={name} FC=0 console=ttyS0"


def test_a_node_s_syslog_lands_in_its_file_and_in_the_management_node_s_syslog(
    mn: tuple[Network, Cluster], tmp_path: Path
) -> None:
    net, cluster = mn
    nodes = cluster.root / "var/log/xcat/nodes"
    with (
        receiver(net.prefix, tmp_path / "mn-syslog", cluster.root / "etc/rsyslog.d") as master,
        net.machine(CN) as machine,
        node(machine.prefix, tmp_path / "cn7", command_line(MN, "cn7")) as cn7,
    ):
        logger(cn7, "cn7 says hello")
        line = "cn7 demo: cn7 says hello"
        assert line in logged(nodes / "cn7.log", line)
        assert line in logged(master.syslog, line)  # tail -f /var/log/syslog shows it
        assert line in cn7.text()  # and the node kept its own copy
        # Any syslog sender is received: a plain UDP one, named by its hostname.
        send = "hostname cn8 && logger --server 10.77.0.1 --udp --rfc3164 -t demo udp hello"
        subprocess.run([*machine.prefix, "unshare", "--uts", "sh", "-c", send], check=True)
        assert "cn8 demo: udp hello" in logged(nodes / "cn8.log", "udp hello")
    assert sorted(path.name for path in nodes.iterdir()) == ["cn7.log", "cn8.log"]


def test_what_a_node_logs_while_its_master_is_down_arrives_when_it_is_back(
    mn: tuple[Network, Cluster], tmp_path: Path
) -> None:
    """A boot's first lines, sent before the master's rsyslog listens, are kept."""
    net, cluster = mn
    with (
        net.machine(CN) as machine,
        node(machine.prefix, tmp_path / "cn7", command_line(MN, "cn7")) as cn7,
    ):
        logger(cn7, "logged while the master was down")
        with receiver(net.prefix, tmp_path / "mn-syslog", cluster.root / "etc/rsyslog.d"):
            logged(
                cluster.root / "var/log/xcat/nodes/cn7.log", "while the master was down", timeout=60
            )


def test_a_service_node_keeps_its_nodes_logs_and_passes_them_on(
    mn: tuple[Network, Cluster], tmp_path: Path
) -> None:
    net, cluster = mn
    on_mn = cluster.root / "var/log/xcat/nodes"
    sn1_dir = tmp_path / "sn1"
    with (
        receiver(net.prefix, tmp_path / "mn-syslog", cluster.root / "etc/rsyslog.d"),
        net.machine(SN) as sn_machine,
        node(sn_machine.prefix, sn1_dir, command_line(MN, "sn1"), service=True) as sn1,
        net.machine(CN) as cn_machine,
        node(cn_machine.prefix, tmp_path / "cn7", command_line(net.host(SN), "cn7")) as cn7,
    ):
        logger(cn7, "cn7 through sn1")
        logger(sn1, "sn1 itself")
        # The service node's own /var/log/xcat/nodes, where its image's drop-in says.
        assert "cn7 demo: cn7 through sn1" in logged(
            sn1_dir / "var/log/xcat/nodes/cn7.log", "through sn1"
        )
        assert "cn7 demo: cn7 through sn1" in logged(on_mn / "cn7.log", "through sn1")
        assert "sn1 demo: sn1 itself" in logged(on_mn / "sn1.log", "sn1 itself")
    assert not (sn1_dir / "var/log/xcat/nodes/sn1.log").exists()  # its own lines are local


def test_the_daemon_says_in_one_line_when_the_nodes_logs_are_not_received(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "mn1")
    assert cluster.init().returncode == 0
    drop_in = cluster.root / "etc/rsyslog.d" / DROP_IN
    cluster.start()
    cluster.stop()
    assert "nodes' logs" not in cluster.logs()
    drop_in.unlink()
    cluster.start()
    cluster.stop()
    assert (
        f"the nodes' logs are not received: {drop_in} is missing (run xcatd init)" in cluster.logs()
    )
    again = cluster.init()
    assert "Wrote" in again.stdout and drop_in.is_file()
    assert f"Wrote {drop_in}" not in cluster.init().stdout  # unchanged: nothing to say


def test_a_node_forwards_nothing_when_its_command_line_says_nothing_usable(tmp_path: Path) -> None:
    """The image's script, as rsyslog's ExecStartPre runs it: no XCAT=, or
    one that is not an address, writes an empty file (nothing forwarded)."""
    script = SHARE / "rsyslog/syslog-forward"
    written = tmp_path / "run/forward.conf"
    for cmdline, said in [
        ("BOOT_IMAGE=vmlinuz quiet", ""),
        (
            'XCAT=10.0.0.1";x:3001 NODE=cn7',
            "xcatd: syslog not forwarded: unexpected XCAT= or NODE=",
        ),
        (
            "XCAT=10.0.0.1:3001 NODE=cn$(reboot)",
            "xcatd: syslog not forwarded: unexpected XCAT= or NODE=",
        ),
    ]:
        (tmp_path / "cmdline").write_text(cmdline + "\n")
        run = subprocess.run(
            [script, tmp_path / "cmdline", written], capture_output=True, text=True
        )
        assert (run.returncode, written.read_text()) == (0, ""), run.stderr
        assert run.stderr.startswith(said)
    (tmp_path / "cmdline").write_text("XCAT=[fd77::1]:3001 NODE=cn7 FC=0\n")
    subprocess.run([script, tmp_path / "cmdline", written], check=True)
    assert 'target="fd77::1" port="514" protocol="tcp"' in written.read_text()
