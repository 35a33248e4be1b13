"""Consoles on a serial port reached over TCP, as an administrator uses
them: xCAT's `cons=cyclades` (a terminal server's port, `termserver` and
`termport`), here a real QEMU machine whose serial port is a telnet server
(`-serial telnet:…,server`), held by the daemon's console server as a SOL
console is: its log, its history for a new rcons, one writer (`rcons -f`
takes write access), and a reconnection when the port goes away and comes
back.  The guest is iPXE: what is typed into rcons is run there (`echo
${platform}-…` prints `pcbios-…`, which only the guest can have written).
Then each reason such a console cannot be had, one line; and `cons=redfish`.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from xcatd.console.telnet import DO, DONT, ECHO, IAC, SB, SE, SGA, WILL, WONT, Telnet, escaped
from xcatd.lab.chassis_control import GUEST_KERNEL, GUEST_PROMPT, GUEST_READY, QEMU

from .cluster import Cluster, free_port
from .terminal import HELP, LEAVE, STAMP, console_log, rcons
from .waiting import wait_for

CYCLADES_BASE = 7000  # conserver's portbase for cons=cyclades, as xCAT sets it
BOOT_TIMEOUT = 60  # TCG beside other work
RECONNECT_TIMEOUT = 30  # the console server retries after 1, 2, 4, ... s


class SerialMachine:
    """A QEMU machine whose serial port is a telnet server on loopback; it
    runs once a client connects, so its console sees it from its first byte."""

    def __init__(self, port: int, directory: Path) -> None:
        self.port = port
        self.directory = directory
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        chardev = (f"socket,id=ser0,host=127.0.0.1,port={self.port},telnet=on,server=on,"
                   f"wait=on,logfile={self.directory / 'serial.log'},logappend=on")  # fmt: skip
        command = [
            QEMU, "-accel", "tcg", "-m", "64", "-nodefaults", "-display", "none",
            "-nographic", "-monitor", "none", "-chardev", chardev, "-serial", "chardev:ser0",
            "-kernel", GUEST_KERNEL, "-append", f"echo {GUEST_READY} && shell",
        ]  # fmt: skip
        with (self.directory / "qemu.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=log)  # fmt: skip
        # Not a connection to find out: the first one would be the guest's serial line.
        wait_for(lambda: listening(self.port), f"QEMU's serial port {self.port} open", 30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def guest_output(self) -> str:
        return (self.directory / "serial.log").read_text(errors="replace")


def listening(port: int) -> bool:
    """Whether a TCP socket listens on `port` (the kernel's table: state 0A)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(
        fields[1].endswith(f":{port:04X}") and fields[3] == "0A" for fields in map(str.split, rows)
    )


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[SerialMachine]:
    port = free_port()
    assert port > CYCLADES_BASE
    serial = SerialMachine(port, tmp_path)
    yield serial
    serial.stop()


def define(cluster: Cluster, node: str, port: int, method: str = "cyclades") -> None:
    termport = port - CYCLADES_BASE
    cluster.ok("mkdef", node, "groups=compute", f"cons={method}", "termserver=127.0.0.1",
               f"termport={termport}")  # fmt: skip


def test_a_terminal_servers_port_is_held_like_a_sol_console(cluster, machine, terminals):
    define(cluster, "ts1", machine.port)
    machine.start()
    console = rcons(cluster, terminals, "ts1")
    console.wait_for(HELP)
    assert console.raw()
    console.wait_for(GUEST_READY, BOOT_TIMEOUT)
    prompt = console.wait_for(GUEST_PROMPT)
    console.type(b"echo ${platform}-typed\r")
    console.wait_for("pcbios-typed", after=prompt)
    assert "pcbios-typed" in machine.guest_output()  # the guest wrote it

    forced = rcons(cluster, terminals, "ts1", "-f")
    history = forced.wait_for("pcbios-typed")  # the history first
    console.wait_for("[write access taken by root (rcons -f); you are read-only now]")
    mark = len(console.output)
    console.type(b"echo old-writer-typed\r")
    console.wait_for("[read-only: keystrokes are discarded", after=mark)
    forced.type(b"echo ${platform}-forced\r")
    forced.wait_for("pcbios-forced", after=history)
    console.wait_for("pcbios-forced", after=mark)  # watched live
    assert "old-writer-typed" not in machine.guest_output()

    # The machine goes away and comes back: the console server reconnects.
    machine.stop()
    lost = console.wait_for("[console lost: the console port closed the connection")
    machine.start()
    console.wait_for("[console up]", RECONNECT_TIMEOUT, after=lost)
    forced.wait_for(GUEST_PROMPT, BOOT_TIMEOUT, after=history + 1)
    for terminal in (console, forced):
        terminal.type(LEAVE)
        assert terminal.exit_code() == 0
        assert not terminal.raw()

    log = console_log(cluster, "ts1")
    assert re.search(rf"^{STAMP}.*{GUEST_READY}", log, re.M)
    assert re.search(rf"^{STAMP}pcbios-forced", log, re.M)
    assert log.count("[-- console up") == 2 and "[-- console lost: " in log
    assert "Traceback" not in cluster.logs()


def logged(cluster: Cluster, node: str) -> str:
    """The node's console log, empty until the console server writes one."""
    path = cluster.root / f"var/log/xcat/consoles/{node}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def test_the_daemon_holds_every_defined_console_from_its_start(
    cluster, machine, terminals, tmp_path
):
    define(cluster, "ts2", machine.port)
    machine.start()  # it runs once a client connects to its serial port
    assert cluster.stop() == 0
    cluster.start()
    # Nobody ran rcons: the console server connected at its start, as conserver does.
    wait_for(lambda: GUEST_READY in logged(cluster, "ts2"), "ts2's console held", BOOT_TIMEOUT)

    # Defined since, its machine not there yet: SIGHUP holds it, and it is tried again.
    (tmp_path / "later").mkdir()
    later = SerialMachine(free_port(), tmp_path / "later")
    define(cluster, "ts3", later.port)
    assert cluster.process is not None
    cluster.process.send_signal(signal.SIGHUP)
    wait_for(lambda: "[-- console down: " in logged(cluster, "ts3"), "ts3's first try")
    later.start()
    try:
        wait_for(lambda: GUEST_READY in logged(cluster, "ts3"), "ts3's console", BOOT_TIMEOUT)
        console = rcons(cluster, terminals, "ts3")
        console.wait_for(GUEST_READY)  # the history of the console held before any rcons
        # Removed: the next SIGHUP ends its console, and the rcons attached to it.
        cluster.ok("rmdef", "ts3")
        cluster.process.send_signal(signal.SIGHUP)
        console.wait_for("[the console of ts3 is no longer defined]")
        assert console.exit_code() == 0
        assert not console.raw()
    finally:
        later.stop()
    assert "Traceback" not in cluster.logs()


def test_makeconservercf_holds_a_console_defined_since_and_d_lets_it_go(cluster, machine):
    define(cluster, "ts6", machine.port)  # after the daemon's start: not held yet
    machine.start()
    assert cluster.ok("makeconservercf", "ts6") == ""  # xCAT's says nothing either
    wait_for(lambda: GUEST_READY in logged(cluster, "ts6"), "ts6's console held", BOOT_TIMEOUT)

    assert cluster.ok("makeconservercf", "-d", "ts6") == ""
    wait_for(lambda: "the console of ts6 is let go" in logged(cluster, "ts6"), "ts6 let go")
    # A console server that let it go closed the port: the machine's telnet server waits again.
    cluster.ok("makeconservercf")  # every node, as at the daemon's start
    wait_for(lambda: logged(cluster, "ts6").count("[-- console up") == 2, "ts6 held again")

    cluster.ok("rmdef", "ts6")
    assert cluster.ok("makeconservercf", "-C") == ""
    wait_for(lambda: "the console of ts6 is no longer defined" in logged(cluster, "ts6"), "-C")
    assert cluster.outcome("makeconservercf", "-l", "ts6") == (
        1, "", "Error: Invalid option -l or --local when there are nodes specified.\n"
    )  # fmt: skip


def test_sighup_gives_the_console_server_a_new_bmc_timeout(cluster):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(0)
        port = silent.getsockname()[1]
        # Its one queued connection: the kernel answers no later one, never refuses it.
        with socket.create_connection(("127.0.0.1", port)):
            config = cluster.root / "etc/xcat/xcatd.toml"
            config.write_text(config.read_text().replace("bmc_timeout = 10.0", "bmc_timeout = 1.5"))
            define(cluster, "ts5", port)
            assert cluster.process is not None
            cluster.process.send_signal(signal.SIGHUP)
            said = f"console down: no answer from the console port 127.0.0.1:{port} within 1.5 s"
            wait_for(lambda: said in logged(cluster, "ts5"), "ts5's first try, in 1.5 s")


def test_each_console_that_cannot_be_had_is_one_line(shared_cluster):
    cluster = shared_cluster
    closed = free_port()  # nothing listens there
    define(cluster, "tsclosed", closed)
    define(cluster, "mrvbad", 70000, method="mrv")
    cluster.ok("mkdef", "tsnoport", "groups=compute", "cons=cyclades", "termserver=127.0.0.1")
    cluster.ok("mkdef", "rfcons", "groups=compute", "mgt=redfish", "cons=redfish")
    # Without cons, a serialport makes the console its mgt's, as in xCAT.
    cluster.ok("mkdef", "rfserial", "groups=compute", "mgt=redfish", "serialport=0")
    expected = {
        "tsclosed": f"console port 127.0.0.1:{closed}: Connection refused",
        "mrvbad": f"termport {70000 - CYCLADES_BASE}: mrv port {2000 + 100 * 63000} is not a "
        "TCP port",
        "tsnoport": "cons=cyclades needs termserver and termport (a number): set them with chdef "
        "<node> termserver=<terminal server> termport=<its port for the node>",
        "rfcons": "cons=redfish: there is no Redfish console, in xCAT either (nor in "
        "sushy-tools, the Redfish BMC xcatd is tested against): reach the node's serial console "
        "with cons=ipmi (Serial over LAN)",
    }
    expected["rfserial"] = expected["rfcons"]
    for node, line in expected.items():
        assert cluster.outcome("rcons", node) == (1, "", f"{node}: Error: {line}\n"), node


def test_telnet_answers_each_option_once_and_keeps_the_data():
    telnet = Telnet()
    offer = bytes((IAC, WILL, ECHO, IAC, WILL, SGA, IAC, DO, 24, IAC, WILL, 31))
    output, answer = telnet.receive(b"ab" + offer + b"c\xff\xffd")
    assert output == b"abc\xffd"
    assert answer == bytes((IAC, DO, ECHO, IAC, DO, SGA, IAC, WONT, 24, IAC, DONT, 31))
    assert telnet.receive(offer) == (b"", b"")  # asked again: no second answer, no loop
    # Split anywhere, a subnegotiation too.
    pieces = [bytes((IAC,)), bytes((SB, 24, 1)), bytes((IAC, SE)) + b"e", bytes((IAC,)), b"\xff"]
    assert b"".join(telnet.receive(piece)[0] for piece in pieces) == b"e\xff"
    assert escaped(b"a\xffb") == b"a\xff\xffb"
