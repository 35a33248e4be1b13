"""Nodes that answer over SSH without a virtual machine: a real sshd on a
high port of loopback, trusting the cluster's SSH certificates exactly as a
node's image does (TrustedUserCAKeys: the cluster's SSH CA; a host
certificate signed by it, so the management node's known_hosts
`@cert-authority` line vouches for it).  Nodes at 127.0.0.1 and 127.0.0.2
reach it; the port is in the cluster root's `.ssh/config`, which
xdsh, xdcp and psh give ssh (as /root/.ssh/config on a real management
node).  The nodes share this host's file system: tests copy under their
own tmp_path."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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


@contextmanager
def sshd(
    directory: Path, authority: SshAuthority, addresses: Sequence[str], prefix: Sequence[str] = ()
) -> Iterator[int]:
    """A real sshd at `addresses` (run under `prefix`: a network namespace)
    trusting `authority`'s users, its host certificate signed by it; its port."""
    directory.mkdir(parents=True)
    host_key = directory / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", host_key], check=True)
    certificate = authority.host_certificate(
        (directory / "ssh_host_ed25519_key.pub").read_text(),
        tuple(addresses),
        dt.timedelta(hours=1),
    )
    certificate_file(host_key).write_text(certificate)
    port = free_port()
    config = directory / "sshd_config"
    config.write_text(
        "".join(f"ListenAddress {address}:{port}\n" for address in addresses)
        + f"HostKey {host_key}\nHostCertificate {certificate_file(host_key)}\n"
        f"TrustedUserCAKeys {authority.public_file}\nAuthorizedKeysFile none\n"
        f"PidFile {directory / 'sshd.pid'}\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nSubsystem sftp internal-sftp\nLogLevel INFO\n"
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # its privilege separation directory
    log = directory / "sshd.log"
    process = subprocess.Popen(
        [*prefix, "/usr/sbin/sshd", "-D", "-e", "-f", config], stderr=log.open("wb")
    )
    try:
        # "Server listening on <address> port <port>." once for each address.
        wait_for(
            lambda: (
                process.poll() is None
                and log.read_text().count("Server listening") == len(addresses)
            ),
            lambda: log.read_text(),
        )
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def reach_at_port(user_ssh: Path, addresses: Sequence[str], port: int) -> None:
    """root's ssh config (the cluster root's .ssh/config): `addresses` at `port`."""
    (user_ssh / "config").write_text(f"Host {' '.join(addresses)}\n    Port {port}\n")


@pytest.fixture
def ssh_nodes(cluster: Cluster, tmp_path: Path) -> Iterator[SshNodes]:
    """Nodes `sh1` and `sh2` (group sshnodes) served by a real sshd, for one test."""
    authority = SshAuthority(cluster.root / "etc/xcat/pki")
    with sshd(tmp_path / "sshd", authority, ADDRESSES) as port:
        reach_at_port(cluster.root / ".ssh", ADDRESSES, port)
        names = ("sh1", "sh2")
        for name, address in zip(names, ADDRESSES, strict=True):
            cluster.ok("mkdef", name, "groups=all,sshnodes", f"ip={address}")
        yield SshNodes(port, names)
