"""The management node's installdir exported read-only over NFS, for the
service nodes that mount it (site.installloc, servicenode/nfsmount.py).

nodeset of service nodes (those it arms to enroll) writes the export when
site.installloc names this host (or no host), for the NFS server this host
has:

- nfs-kernel-server: /etc/exports.d/xcatd.exports, then `exportfs -ra`;
- NFS-Ganesha (a user-space server, for hosts whose kernel has no nfsd):
  an EXPORT block in /etc/ganesha/xcatd.conf, included from ganesha.conf,
  then SIGHUP to the running ganesha.nfsd, which reads its exports again.

Read-only, no_root_squash (as xCAT exports /install: the service nodes'
root reads every file), to the networks this host is on, from which the
service nodes reach it.  A host with neither server, or whose server does
not take the export, gets one warning line saying what is missing; nodeset
goes on (the service nodes say their images cannot be reached).
Blocking: call from a worker thread.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..layout import Layout
from ..servicenode.nfsmount import Installloc, MountError
from .files import write_atomic
from .hostnet import HostNetwork, HostNetworkError, host_networks

SBIN = "/usr/sbin:/sbin:/usr/bin:/bin"  # where the servers' programs are, whatever PATH is
EXPORTS_FILE = "xcatd.exports"  # in /etc/exports.d
GANESHA_FILE = "xcatd.conf"  # in /etc/ganesha
GANESHA_EXPORT_ID = 2049  # the Export_Id of xcatd's export among the administrator's
HEADER = "# Written by xcatd (site.installloc): service nodes mount installdir read-only.\n"


def export_installdir(layout: Layout, installloc: str, installdir: Path,
                      hostname: str) -> str | None:  # fmt: skip
    """`installdir` exported read-only to this host's networks, by the NFS
    server this host has, when site.installloc (`installloc`) names this
    host (`hostname` or one of its addresses) or no host; what is missing,
    in one line, if it cannot be."""
    try:
        wanted = Installloc.parse(installloc)
        if wanted is None:
            return None
        networks = host_networks()
    except (MountError, HostNetworkError) as exc:
        return f"site.installloc: cannot export {installdir}: {exc}"
    if wanted.host and wanted.host not in {hostname, *(str(n.address.ip) for n in networks)}:
        return None  # another host's export
    clients = _clients(networks)
    if not clients:
        return (f"site.installloc: cannot export {installdir}: this host is on no network "
                "its service nodes could mount it from")  # fmt: skip
    ganesha = Ganesha(layout)
    if ganesha.running() is None and shutil.which("exportfs", path=SBIN):
        return _kernel_server(layout, installdir, clients)
    if ganesha.installed():
        return ganesha.export(installdir, clients)
    return (f"site.installloc is set but this host has no NFS server to export {installdir} "
            "to the service nodes: install nfs-kernel-server (or nfs-ganesha and "
            "nfs-ganesha-vfs)")  # fmt: skip


def _clients(networks: Iterable[HostNetwork]) -> list[ipaddress.IPv4Network]:
    return sorted({n.network for n in networks if n.serves_nodes})


def exports_line(installdir: Path, clients: Iterable[ipaddress.IPv4Network]) -> str:
    """The /etc/exports line (exports(5))."""
    options = "ro,no_root_squash,sync,no_subtree_check"
    return f"{installdir} " + " ".join(f"{net}({options})" for net in clients) + "\n"


def ganesha_export(installdir: Path, clients: Iterable[ipaddress.IPv4Network]) -> str:
    """The EXPORT block (ganesha-export-config(8)): NFSv4 over TCP, at the
    same path in the server's pseudo file system, read-only to `clients`."""
    listed = ", ".join(str(net) for net in clients)
    return (
        "EXPORT {\n"
        f"    Export_Id = {GANESHA_EXPORT_ID};\n"
        f'    Path = "{installdir}";\n'
        f'    Pseudo = "{installdir}";\n'
        "    Protocols = 4;\n"
        "    Transports = TCP;\n"
        "    Access_Type = None;\n"
        "    Squash = No_Root_Squash;\n"
        "    FSAL { Name = VFS; }\n"
        f"    CLIENT {{ Clients = {listed}; Access_Type = RO; }}\n"
        "}\n"
    )


def _kernel_server(layout: Layout, installdir: Path, clients: list) -> str | None:
    path = layout.etc.parent / "exports.d" / EXPORTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    if not write_atomic(path, (HEADER + exports_line(installdir, clients)).encode(), 0o644):
        return None
    done = subprocess.run(["exportfs", "-ra"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": SBIN})  # fmt: skip
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or ["(nothing said)"])[-1]
        return f"site.installloc: {path} written, but exportfs -ra failed: {said}"
    return None


@dataclass(frozen=True)
class Ganesha:
    """This host's NFS-Ganesha: its configuration and its pid file."""

    layout: Layout

    @property
    def directory(self) -> Path:
        return self.layout.etc.parent / "ganesha"

    @property
    def pid_file(self) -> Path:
        return self.layout.etc.parent.parent / "run/ganesha/ganesha.pid"

    def installed(self) -> bool:
        return shutil.which("ganesha.nfsd", path=SBIN) is not None

    def running(self) -> int | None:
        """The process id of the running ganesha.nfsd, or None."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return None
        return pid

    def export(self, installdir: Path, clients: list) -> str | None:
        self.directory.mkdir(parents=True, exist_ok=True)
        ours = self.directory / GANESHA_FILE
        changed = write_atomic(ours, (HEADER + ganesha_export(installdir, clients)).encode(),
                               0o644)  # fmt: skip
        main = self.directory / "ganesha.conf"
        include = f'%include "{ours}"\n'
        text = main.read_text() if main.exists() else ""
        if include not in text:
            main.write_text(text + ("" if text.endswith("\n") or not text else "\n") + include)
            changed = True
        pid = self.running()
        if pid is None:
            return (f"site.installloc: {installdir} is exported in {ours}, but nfs-ganesha "
                    "is not running: systemctl start nfs-ganesha")  # fmt: skip
        if changed:
            os.kill(pid, signal.SIGHUP)  # ganesha.nfsd reads its exports again
        return None
