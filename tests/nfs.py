"""A real NFS server for the management node of a test: NFS-Ganesha, in
the management node's network namespace, configured as the administrator
of a Debian host configures it (/etc/ganesha/ganesha.conf; here under the
cluster's root), NFSv4 only, so that neither rpcbind nor a lock daemon is
needed.  This machine's kernel has no nfsd, so nfs-kernel-server cannot
run here; ganesha is a user-space server.  xcatd writes the export itself
(xcatd/boot/nfsexport.py) and makes the running server read it.

    with ganesha(cluster.prefix, cluster.root, tmp_path / "ganesha"):
        cluster.ok("nodeset", "sn1", "osimage=...")   # exports installdir

The client side is real too: libnfs's nfs-cat (a user-space NFSv4
client, since this host's kernel cannot mount NFS either) or a virtual
machine's kernel.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from xcatd.lab.process import Process

from .cluster import Cluster
from .waiting import wait_for

NFS_PORT = 2049  # the NFS port, in the test's own namespace


@contextmanager
def ganesha(prefix: Sequence[str], root: Path, workdir: Path) -> Iterator[Process]:
    """ganesha.nfsd in the foreground in the namespace of `prefix`, its
    configuration in <root>/etc/ganesha, its pid file where xcatd looks
    for it (<root>/run/ganesha/ganesha.pid), no export of its own."""
    conf = root / "etc/ganesha/ganesha.conf"
    pid_file = root / "run/ganesha/ganesha.pid"
    for directory in (conf.parent, pid_file.parent, workdir / "recovery"):
        directory.mkdir(parents=True, exist_ok=True)
    conf.write_text(
        "# The administrator's: NFSv4 only, over TCP, no rpcbind registration needed.\n"
        f"NFS_CORE_PARAM {{ Protocols = 4; NFS_Port = {NFS_PORT}; Enable_NLM = false;\n"
        "    Enable_RQUOTA = false; Enable_UDP = false; }\n"
        "NFSV4 { Graceless = true; RecoveryBackend = fs;\n"
        f'    RecoveryRoot = "{workdir}/recovery"; }}\n'
    )
    log = workdir / "ganesha.log"
    server = Process([*prefix, "ganesha.nfsd", "-F", "-f", conf, "-L", log, "-p", pid_file,
                      "-N", "NIV_EVENT"], workdir / "ganesha.out")  # fmt: skip
    try:
        wait_for(lambda: "NFS SERVER INITIALIZED" in _text(log),
                 lambda: _text(log)[-3000:] + server.tail(), timeout=30)  # fmt: skip
        yield server
    finally:
        server.stop()


def reloaded(workdir: Path, times: int = 1) -> bool:
    """Whether ganesha has read its exports again (after xcatd's SIGHUP) `times` times."""
    return _text(workdir / "ganesha.log").count("Reread exports complete") >= times


def nfs_cat(prefix: Sequence[str], server: str, path: Path) -> subprocess.CompletedProcess:
    """`path` read over NFSv4 from `server` by libnfs's client, from the
    namespace of `prefix`."""
    url = f"nfs://{server}{path}?version=4"
    return subprocess.run([*prefix, "nfs-cat", url], capture_output=True, timeout=60)


def installdir_of(cluster: Cluster) -> Path:
    """The cluster's site.installdir, which installloc names."""
    shown = cluster.ok("lsdef", "-t", "site", "-i", "installdir")
    return Path(shown.split("installdir=", 1)[1].strip())


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
