"""rcons and wcons as an administrator uses them: the real client on a
pseudo-terminal, attached through the daemon's console server to the Serial
over LAN of a real BMC simulator (OpenIPMI's ipmi_sim), whose serial port is
a real QEMU machine's (tests/bmc.py, xcatd/lab/chassis_control.py): iPXE prints
its banner and waits at its `iPXE>` prompt, and what is typed into rcons is
run there (`echo ${platform}-...` prints `pcbios-...`, which only the guest
can have written).  One machine for the module, started by rpower while a
console is attached (the same BMC user for both).  Then every reason rcons
refuses, one line each; then wcons under Xvfb with real xterms, and in tmux.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from xcatd.console.log import ConsoleLog
from xcatd.lab.chassis_control import GUEST_PROMPT, GUEST_READY

from .bmc import QEMU_CHASSIS, Bmc, bmc_lab
from .cluster import BIN, Cluster, free_port
from .terminal import HELP, LEAVE, STAMP, TIMEOUT, console_log, rcons
from .waiting import wait_for

NODE = "cn1"
BOOT_TIMEOUT = 60  # ipmi_sim connects to the serial port every 10 s; TCG beside other work
RECONNECT_TIMEOUT = 90  # pyghmi notices a dead session at its next keepalive (< 30 s), then retries


@pytest.fixture(scope="module")
def console_bmc() -> Iterator[Bmc]:
    with bmc_lab(QEMU_CHASSIS) as lab:
        (bmc,) = lab.start(1, console=True)
        yield bmc


@pytest.fixture(scope="module")
def node(shared_cluster: Cluster, console_bmc: Bmc) -> str:
    shared_cluster.ok("mkdef", NODE, "groups=compute", "cons=ipmi", *console_bmc.attributes())
    return NODE


def guest_output(bmc: Bmc) -> str:
    """What the guest wrote on its serial port, as QEMU logged it."""
    return bmc.machine.serial_log.read_text(errors="replace")


# -- rcons on a running machine ------------------------------------------------------------


def test_rcons_shows_the_boot_and_typing_reaches_the_node(shared_cluster, node, console_bmc,
                                                          terminals):  # fmt: skip
    cluster = shared_cluster
    console = rcons(cluster, terminals, node)
    console.wait_for(HELP)
    assert console.raw()
    # Powered on while the console is attached, through the same BMC user.
    assert cluster.ok("rpower", node, "on") == f"{node}: on\n"
    console.wait_for(GUEST_READY, BOOT_TIMEOUT)
    prompt = console.wait_for(GUEST_PROMPT)

    console.type(b"echo ${platform}-typed\r")
    console.wait_for("pcbios-typed", after=prompt)
    assert "pcbios-typed" in guest_output(console_bmc)  # the guest wrote it
    assert cluster.ok("rpower", node, "stat") == f"{node}: on\n"  # beside the open console

    console.type(LEAVE)
    assert console.exit_code() == 0
    assert not console.raw()  # the terminal is as it was
    assert "[disconnect]" in console.output
    # The log has what the console showed, each line with its time.
    log = console_log(cluster, node)
    assert re.search(rf"^{STAMP}.*{GUEST_READY}", log, re.M)
    assert re.search(rf"^{STAMP}pcbios-typed", log, re.M)
    assert "[-- console up" in log


def test_a_new_rcons_shows_the_history_first_then_live_output(shared_cluster, node, terminals):
    console = rcons(shared_cluster, terminals, node)
    history = console.wait_for("pcbios-typed")  # before anything new is typed
    assert console.output.index(HELP) < history
    console.type(b"echo ${platform}-again\r")
    console.wait_for("pcbios-again", after=history)
    console.type(LEAVE)
    assert console.exit_code() == 0


def test_watchers_see_the_same_output_and_only_the_writer_types(
    shared_cluster, node, console_bmc, terminals
):
    cluster = shared_cluster
    first = rcons(cluster, terminals, node)
    first.wait_for(HELP)
    second = rcons(cluster, terminals, node)
    second.wait_for("[read-only: root has write access; rcons -f takes it]")

    second.type(b"echo watcher-typed\r")
    second.wait_for("[read-only: keystrokes are discarded; rcons -f takes write access]")
    mark = len(first.output), len(second.output)
    first.type(b"echo ${platform}-first\r")
    first.wait_for("pcbios-first", after=mark[0])
    second.wait_for("pcbios-first", after=mark[1])  # watched live

    forced = rcons(cluster, terminals, node, "-f")
    forced.wait_for(HELP)
    first.wait_for("[write access taken by root (rcons -f); you are read-only now]")
    mark = len(forced.output)
    first.type(b"echo old-writer-typed\r")
    first.wait_for("[read-only: keystrokes are discarded")
    forced.type(b"echo ${platform}-forced\r")
    forced.wait_for("pcbios-forced", after=mark)
    first.wait_for("pcbios-forced")
    guest = guest_output(console_bmc)
    assert "watcher-typed" not in guest and "old-writer-typed" not in guest

    for terminal in (first, second, forced):
        terminal.type(LEAVE)
        assert terminal.exit_code() == 0
        assert not terminal.raw()


def test_a_client_killed_while_attached_ends_nothing_else(shared_cluster, node, terminals):
    cluster = shared_cluster
    killed = rcons(cluster, terminals, node)
    killed.wait_for(HELP)
    killed.process.send_signal(signal.SIGKILL)
    killed.process.wait(TIMEOUT)
    logged = len(console_log(cluster, node))

    console = rcons(cluster, terminals, node)
    mark = console.wait_for(HELP)
    console.type(b"echo ${platform}-after-kill\r")
    console.wait_for("pcbios-after-kill", after=mark)
    assert "pcbios-after-kill" in console_log(cluster, node)[logged:]  # the log goes on
    console.type(LEAVE)
    assert console.exit_code() == 0
    assert cluster.process.poll() is None
    assert "Traceback" not in cluster.logs()


def test_a_signal_restores_the_terminal(shared_cluster, node, terminals):
    console = rcons(shared_cluster, terminals, node)
    console.wait_for(HELP)
    assert console.raw()
    console.process.send_signal(signal.SIGTERM)
    assert console.exit_code() == 128 + signal.SIGTERM
    assert not console.raw()


def test_stopping_the_daemon_ends_rcons_and_restores_the_terminal(cluster, terminals):
    with bmc_lab(QEMU_CHASSIS) as lab:
        (bmc,) = lab.start(1, console=True)  # its machine stays off: a quiet console
        cluster.ok("mkdef", "quiet1", "groups=compute", "cons=ipmi", *bmc.attributes())
        console = rcons(cluster, terminals, "quiet1")
        console.wait_for(HELP)
        assert console.raw()
        started = time.monotonic()
        assert cluster.stop() == 0
        assert time.monotonic() - started < cluster_grace(cluster)  # not waited out
        console.wait_for("[xcatd is stopping]")
        assert console.exit_code() == 0
        assert not console.raw()


def test_a_console_the_bmc_drops_is_reconnected(cluster, terminals):
    with bmc_lab(QEMU_CHASSIS) as lab:
        (bmc,) = lab.start(1, console=True)
        cluster.ok("mkdef", "quiet2", "groups=compute", "cons=ipmi", *bmc.attributes())
        console = rcons(cluster, terminals, "quiet2")
        console.wait_for(HELP)
        lab.restart(bmc)  # its SOL session is gone with it
        lost = console.wait_for("[console lost: ", RECONNECT_TIMEOUT)
        console.wait_for("[console up]", TIMEOUT, after=lost)
        log = console_log(cluster, "quiet2")
        assert log.count("[-- console up") == 2 and "[-- console lost: " in log
        console.type(LEAVE)
        assert console.exit_code() == 0


def cluster_grace(cluster: Cluster) -> float:
    text = (cluster.root / "etc/xcat/xcatd.toml").read_text()
    return float(re.search(r"^grace_period = ([\d.]+)", text, re.M)[1])


# -- what rcons refuses ------------------------------------------------------------------


def test_bad_input_is_one_line_each(shared_cluster, node, console_bmc):
    cluster = shared_cluster
    unreachable = free_port()  # nothing answers IPMI there
    for name, *values in (
        ("nocons", *console_bmc.attributes()),
        ("othercons", "cons=kvm", *console_bmc.attributes()),
        ("deadbmc", "cons=ipmi", *console_bmc.attributes(bmcport=str(unreachable))),
        ("badpass", "cons=ipmi", *console_bmc.attributes(bmcpassword="wrong")),
        ("nobmc", "cons=ipmi"),
    ):
        cluster.ok("mkdef", name, "groups=bad", *values)
    bmc = f"{console_bmc.address}:{console_bmc.port}"
    expected = {
        ("nocons",): "nocons: Error: cons is not set: set it with chdef <node> cons=ipmi",
        ("othercons",): "othercons: Error: cons=kvm: xcatd has no kvm console (it has ipmi, "
        "cyclades, mrv)",
        ("deadbmc",): f"deadbmc: Error: no answer from BMC {console_bmc.address}:{unreachable}",
        ("badpass",): f"badpass: Error: BMC {bmc} refused the password of user 'admin': "
        "check bmcpassword",
        ("nobmc",): "nobmc: Error: no BMC: set one with chdef <node> bmc=<address>",
        ("nosuchnode",): "Error: Invalid nodes and/or groups in noderange: nosuchnode",
        ("nocons,badpass",): "Error: rcons attaches one node's console; wcons opens one for "
        "each node",
    }
    for args, line in expected.items():
        rc, out, err = cluster.outcome("rcons", *args)
        assert (rc, out, err) == (1, "", line + "\n"), args
    rc, out, err = cluster.outcome("rcons", node, "-f", "-s")
    assert rc == 1 and "not allowed with argument" in err
    # The good node's BMC answers as before.
    assert cluster.ok("rpower", node, "stat") in (f"{node}: on\n", f"{node}: off\n")
    assert "password" not in console_log(cluster, node)
    assert "wrong" not in cluster.logs()


# -- the console log ---------------------------------------------------------------------


def test_the_console_log_stamps_each_line_and_rotates_by_size(tmp_path):
    log = ConsoleLog(tmp_path / "consoles/n1.log", max_bytes=200, keep=2)
    for piece in (b"Boot", b"ing\r\nline two\n", b"\n", b"half"):
        log.output(piece)
    log.event("console lost: timeout; reconnecting")
    text = log.path.read_bytes().decode()  # as written: \r kept
    assert re.fullmatch(rf"{STAMP}Booting\r\n{STAMP}line two\n{STAMP}\n{STAMP}half\n"
                        rf"\[-- console lost: timeout; reconnecting -- {STAMP[:-1]} --\]\n",
                        text), text  # fmt: skip
    for number in range(20):  # about 600 bytes: two rotations
        log.output(f"line {number:02d}\n".encode())
    rotated = sorted(path.name for path in log.path.parent.iterdir())
    assert rotated == ["n1.log", "n1.log.1", "n1.log.2"]
    assert all(path.stat().st_size <= 200 for path in log.path.parent.iterdir())
    assert "line 19" in log.path.read_text()
    assert oct(log.path.stat().st_mode & 0o777) == "0o600"


# -- wcons -----------------------------------------------------------------------------------


def test_wcons_without_display_says_what_to_do(shared_cluster, node):
    env = {k: v for k, v in shared_cluster.env.items() if k != "DISPLAY"}
    result = shared_cluster.run("wcons", node, env=env)
    assert result.returncode == 1
    assert result.stderr == (
        "Error: DISPLAY is not set: wcons opens an xterm for each node; run it inside an X "
        "session (or ssh -X), or use wcons --tmux <noderange> for a tmux session\n"
    )


@pytest.fixture
def display(tmp_path: Path) -> Iterator[str]:
    """A real X server (Xvfb) for the test: its DISPLAY."""
    if shutil.which("Xvfb") is None or shutil.which("xterm") is None:
        pytest.skip("Xvfb and xterm are not installed (.ci/install installs them)")
    readable, writable = os.pipe()
    # It picks a free display and writes its number once it takes clients; it
    # must not reset when its last client leaves (as a desktop never does):
    # an X server refuses connections while it resets.
    command = ["Xvfb", "-displayfd", str(writable), "-screen", "0", "1280x1024x24",
               "-nolisten", "tcp", "-noreset"]  # fmt: skip
    server = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "xvfb.log").open("wb"),
        pass_fds=(writable,),
        start_new_session=True,
    )
    os.close(writable)
    try:
        with os.fdopen(readable) as announced:
            number = announced.readline().strip()
        assert number, (tmp_path / "xvfb.log").read_text()
        yield f":{number}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait()


def windows(display: str) -> str:
    tree = subprocess.run(["xwininfo", "-root", "-tree", "-display", display],
                          capture_output=True, text=True)  # fmt: skip
    return tree.stdout


def test_wcons_opens_an_xterm_per_node_titled_with_its_name(shared_cluster, node, display):
    cluster = shared_cluster
    cluster.ok("mkdef", "cn2", "groups=compute", "mgt=ipmi", "cons=ipmi", "bmc=127.0.0.1",
               "bmcusername=admin", "bmcpassword=x")  # fmt: skip
    env = dict(cluster.env, DISPLAY=display)
    result = cluster.run("wcons", "--tile", "compute", env=env)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    try:
        wait_for(lambda: '"cn1"' in windows(display) and '"cn2"' in windows(display),
                 "two xterms titled cn1 and cn2", timeout=2 * TIMEOUT)  # fmt: skip
    except AssertionError:
        raise AssertionError(windows(display)) from None
    tree = windows(display)
    place = {name: re.search(rf'"{name}": \("xterm" "XTerm"\)\s+(\d+)x(\d+)\+(\d+)\+(\d+)', tree)
             for name in ("cn1", "cn2")}  # fmt: skip
    assert all(place.values()), tree
    assert place["cn2"][3] != place["cn1"][3]  # tiled: side by side
    # Each xterm runs the real rcons of its node.
    wait_for(lambda: _rcons_running(node), "rcons cn1 running in its xterm", TIMEOUT)


def _rcons_running(node: str) -> bool:
    return any(
        f"{BIN}/rcons\0{node}" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
        for pid in os.listdir("/proc")
        if pid.isdigit() and Path(f"/proc/{pid}/cmdline").exists()
    )


def test_wcons_tmux_opens_a_window_per_node(shared_cluster, node, tmp_path):
    cluster = shared_cluster
    env = dict(cluster.env, TMUX_TMPDIR=str(tmp_path))  # a tmux server of the test's own
    env.pop("TMUX", None)
    result = cluster.run("wcons", "--tmux", f"{node},cn2", env=env)
    assert result.returncode == 0, result.stderr
    session = re.fullmatch(r"tmux session (\S+): 2 windows; attach with: tmux attach -t \1\n",
                           result.stdout)[1]  # fmt: skip
    try:
        listed = subprocess.run(["tmux", "list-windows", "-t", session, "-F", "#{window_name}"],
                                capture_output=True, text=True, env=env)  # fmt: skip
        assert listed.stdout.split() == [node, "cn2"]

        def pane() -> str:
            return subprocess.run(["tmux", "capture-pane", "-p", "-t", f"{session}:{node}"],
                                  capture_output=True, text=True, env=env).stdout  # fmt: skip

        # The console's history may clear the screen after the notice.
        wait_for(lambda: HELP in pane() or GUEST_PROMPT in pane(),
                 "rcons attached in the tmux window", TIMEOUT)  # fmt: skip
    finally:
        subprocess.run(["tmux", "kill-server"], env=env, check=False)
