"""Real rsyslogd for the nodes' logs: a host receiving them with the drop-ins
`xcatd init` writes, and nodes running rsyslog as the images genimage makes
do, each inside a test network namespace.

    with receiver(net.prefix, tmp / "mn", cluster_root / "etc/rsyslog.d") as mn:
        with net.machine(10) as cn, node(cn.prefix, tmp / "cn7", "XCAT=10.77.0.1:3001 NODE=cn7"):
            logger(cn7_syslog, "hello")        # what a program on the node logs

Every rsyslogd gets a main configuration built like Debian's
/etc/rsyslog.conf (drop-ins read, then the host's own rule writing everything
to its syslog), but whose local input is a socket in the test's directory
instead of /dev/log, and with no kernel log input: the machine's own logging
is left alone.  A node runs in a mount namespace of its own in which
/proc/cmdline, /etc/rsyslog.d, /run and /var/log are the test's: the image's
files, its kernel command line, an empty /run, its own logs; its rsyslog
starts as systemd would start it in the image, with the ExecStartPre that
genimage's drop-in for rsyslog.service names, run from the image's files.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from xcatd.images.build.bootunits import UNITS, syslog_files
from xcatd.nodelogs import PORT

from .netboot import Process
from .waiting import wait_for

MAIN = """\
global(workDirectory="{spool}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{socket}")
$IncludeConfig {rsyslog_d}/*.conf
*.* action(type="omfile" file="{syslog}" template="RSYSLOG_FileFormat")
"""
START_TIMEOUT = 10.0


@dataclass
class Syslog:
    """A running rsyslogd: where local programs log, and the host's own syslog."""

    process: Process
    socket: Path
    syslog: Path

    def text(self) -> str:
        return self.syslog.read_text() if self.syslog.exists() else ""


def logger(host: Syslog, message: str, tag: str = "demo") -> None:
    """A program on that host logs `message` (util-linux logger, to its socket)."""
    subprocess.run(["logger", "-u", str(host.socket), "-t", tag, message], check=True)


def main_config(workdir: Path, rsyslog_d: Path | str, syslog: Path | str) -> Path:
    spool = workdir / "spool"
    spool.mkdir(parents=True, exist_ok=True)
    path = workdir / "rsyslog.conf"
    text = MAIN.format(spool=spool, socket=workdir / "log.sock", rsyslog_d=rsyslog_d, syslog=syslog)
    path.write_text(text)
    return path


@contextmanager
def _running(argv: Sequence[str | Path], workdir: Path, syslog: Path) -> Iterator[Syslog]:
    process = Process(argv, workdir / "rsyslogd.log")
    try:
        socket = workdir / "log.sock"
        wait_for(
            lambda: socket.exists() or process.popen.poll() is not None,
            lambda: f"rsyslogd's socket {socket}: {process.tail()}",
            START_TIMEOUT,
        )
        assert process.popen.poll() is None, f"rsyslogd exited: {process.tail()}"
        yield Syslog(process, socket, syslog)
    except BaseException:
        print(f"--- the end of {process.log}:\n{process.tail()}", flush=True)
        raise
    finally:
        process.stop()


def listening(prefix: Sequence[str]) -> bool:
    """Whether something listens on syslog's TCP port in the namespace."""
    ss = [*prefix, "ss", "-Htln", f"sport = :{PORT}"]
    return bool(subprocess.run(ss, capture_output=True, text=True, check=True).stdout.strip())


@contextmanager
def receiver(prefix: Sequence[str], workdir: Path, rsyslog_d: Path) -> Iterator[Syslog]:
    """A management node's rsyslogd, reading the drop-ins in `rsyslog_d`; its
    own syslog is `workdir/syslog` (Debian's /var/log/syslog)."""
    workdir.mkdir(parents=True, exist_ok=True)
    syslog = workdir / "syslog"
    conf = main_config(workdir, rsyslog_d, syslog)
    argv = [*prefix, "rsyslogd", "-n", "-f", conf, "-i", workdir / "rsyslogd.pid"]
    with _running(argv, workdir, syslog) as running:
        wait_for(lambda: listening(prefix), f"rsyslogd listening on port {PORT}", START_TIMEOUT)
        yield running


@contextmanager
def node(
    prefix: Sequence[str], workdir: Path, cmdline: str, *, service: bool = False
) -> Iterator[Syslog]:
    """rsyslogd as a node booted with `cmdline` runs it, with the files
    genimage puts into its image (a `service` node's: those of a receiver
    too).  Its /var/log is `workdir/var/log` (its own syslog there)."""
    image = workdir / "image"
    for path, (data, mode) in syslog_files(receiver=service).items():
        target = image / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(mode)
    (workdir / "cmdline").write_text(cmdline + "\n")
    varlog = workdir / "var/log"
    varlog.mkdir(parents=True, exist_ok=True)
    conf = main_config(workdir, "/etc/rsyslog.d", "/var/log/syslog")
    unit = (image / UNITS.lstrip("/") / "rsyslog.service.d/xcatd.conf").read_text()
    before = re.search(r"^ExecStartPre=(\S+)$", unit, re.MULTILINE)
    assert before, f"genimage's rsyslog.service drop-in runs nothing first:\n{unit}"
    script = f"""
        set -e
        mount -t tmpfs tmpfs /run
        mount --bind {workdir / "cmdline"} /proc/cmdline
        mount --bind {image / "etc/rsyslog.d"} /etc/rsyslog.d
        mount --bind {varlog} /var/log
        {image / before[1].lstrip("/")}
        exec rsyslogd -n -f {conf} -i /run/rsyslogd.pid
    """
    argv = [*prefix, "unshare", "--mount", "--propagation", "private", "sh", "-c", script]
    with _running(argv, workdir, varlog / "syslog") as running:
        yield running
