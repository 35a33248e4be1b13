"""Nodes that answer over SSH without a virtual machine: a real sshd on a
high port of loopback, trusting the cluster's SSH certificates exactly as a
node's image does (TrustedUserCAKeys: the cluster's SSH CA; a host
certificate signed by it, so the management node's known_hosts
`@cert-authority` line vouches for it).  Nodes `sn-less` at 127.0.0.1 and
127.0.0.2 reach it; the port is in the cluster root's `.ssh/config`, which
xdsh, xdcp and psh give ssh (as /root/.ssh/config on a real management
node).  The nodes share this host's file system: tests copy under their
own tmp_path."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from xcatd.sshca import SshAuthority, certificate_file

from .cluster import Cluster, free_port
from .waiting import wait_for

ADDRESSES = ("127.0.0.1", "127.0.0.2")


@dataclass(frozen=True)
class SshNodes:
    port: int
    names: tuple[str, ...]  # the nodes, one an address of ADDRESSES


def _answers(port: int) -> bool:
    try:
        with socket.create_connection((ADDRESSES[0], port), timeout=1) as sock:
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False


@pytest.fixture
def ssh_nodes(cluster: Cluster, tmp_path: Path) -> Iterator[SshNodes]:
    """sn1-less nodes `sh1` and `sh2` served by a real sshd, for one test."""
    directory = tmp_path / "sshd"
    directory.mkdir()
    host_key = directory / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", host_key], check=True)
    authority = SshAuthority(cluster.root / "etc/xcat/pki")
    certificate = authority.host_certificate(
        (directory / "ssh_host_ed25519_key.pub").read_text(), ADDRESSES, dt.timedelta(hours=1)
    )
    certificate_file(host_key).write_text(certificate)
    port = free_port()
    config = directory / "sshd_config"
    config.write_text(
        "".join(f"ListenAddress {address}:{port}\n" for address in ADDRESSES)
        + f"HostKey {host_key}\nHostCertificate {certificate_file(host_key)}\n"
        f"TrustedUserCAKeys {authority.public_file}\nAuthorizedKeysFile none\n"
        f"PidFile {directory / 'sshd.pid'}\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nSubsystem sftp internal-sftp\nLogLevel ERROR\n"
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # its privilege separation directory
    log = directory / "sshd.log"
    sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", config], stderr=log.open("wb"))
    try:
        wait_for(lambda: sshd.poll() is None and _answers(port), lambda: log.read_text())
        user_ssh = cluster.root / ".ssh"
        (user_ssh / "config").write_text(f"Host {' '.join(ADDRESSES)}\n    Port {port}\n")
        names = ("sh1", "sh2")
        for name, address in zip(names, ADDRESSES, strict=True):
            cluster.ok("mkdef", name, "groups=all,sshnodes", f"ip={address}")
        yield SshNodes(port, names)
    finally:
        sshd.terminate()
        sshd.wait(timeout=10)
