"""The nodes' SSH host keys as they report them: ssh_known_hosts2.

A stateless node makes its host keys at every boot, in RAM
(xcatd-ssh-hostkeys.service): no image carries one.  A service node's host
key is certified when it enrolls (sshca.py); a compute node sends its
Ed25519 public key with its `booted` report (report-boot), and the daemon
that takes the report - its service node, or the management node for its
own nodes - keeps it in <etc>/ssh/ssh_known_hosts2, which OpenSSH reads
beside ssh_known_hosts.  `ssh cn1` from there then needs no prompt and no
`StrictHostKeyChecking=no`.  The key is taken on the report's own terms
(from the node's defined address, status.py) and replaces the one the node
reported before, as a node makes new keys at every boot.
"""

from __future__ import annotations

from pathlib import Path

import trio
from cryptography.hazmat.primitives import serialization

from .boot.files import write_atomic
from .group_commit import GroupCommit
from .sshca import public_key

FILE = "ssh_known_hosts2"


class KnownHosts:
    """The file of reported host keys, one line per node: `node,address key`.
    The keys that arrive while the file is being written go in together at
    the next write (a thousand nodes report at once; group_commit.py)."""

    def __init__(self, ssh_dir: Path) -> None:
        self.path = ssh_dir / FILE
        self._entries = GroupCommit(self._write)

    async def record(self, node: str, address: str, key: str) -> None:
        """`key` (host_key's) as the node's, in place of what it reported before."""
        await self._entries.add(f"{node},{address} {key}")

    async def _write(self, entries: list[str]) -> None:
        await trio.to_thread.run_sync(self._replace, entries)

    def _replace(self, entries: list[str]) -> None:
        latest = {_node_of(entry): entry for entry in entries}  # a node's last report wins
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            lines = []
        kept = [line for line in lines if _node_of(line) not in latest]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, "\n".join([*kept, *latest.values(), ""]).encode(), mode=0o644)


def host_key(line: str) -> str:
    """The key of an OpenSSH Ed25519 public key line, without its comment
    (the node's own words), or SshError."""
    key = public_key(line).public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return key.decode()


def _node_of(line: str) -> str:
    return line.partition(" ")[0].partition(",")[0]
