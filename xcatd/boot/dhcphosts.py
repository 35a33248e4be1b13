"""The nodes' DHCP entries: made from their attributes and written.

`host_entry` makes a node's entry (its MAC, address and boot file, from its
servers as netboot.py chooses them); `write_entries` replaces or removes
entries in every host file of the DHCP directory (dhcp.py's HOST_FILES)
and has a dnsmasq running with them read them again.  makedhcp and nodeset
write entries, makedhcp -n the files' first versions: each holds the
directory's flock (`locked`), whether in this daemon or in another process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import trio

from ..errors import XcatdError
from .dhcp import HOST_FILES, Host, boot_choice
from .dnsmasq import reload_dnsmasq
from .files import one_writer, write_atomic
from .netboot import (
    Addresses,
    BootServers,
    Servers,
    Settings,
    Values,
    boot_ip,
    boot_mac,
    check_node_name,
    loader_for,
)

DEFAULT_ARCH = "x86_64"  # for nodes that no nodeset has given an architecture yet


class DhcpFilesError(XcatdError):
    """The DHCP files could not be written: one line saying why."""


def host_entry(
    node: str, values: Values, boot: Settings, resolve: Addresses, serving: Servers | BootServers
) -> Host:
    """The node's DHCP entry, or NodeError: the node's own faults first, then
    its servers (given, or chosen now)."""
    check_node_name(node)
    mac, ip = boot_mac(values), boot_ip(values)
    arch = values.get("arch") or DEFAULT_ARCH
    loader = loader_for(values, arch)
    if isinstance(serving, BootServers):
        serving = serving.servers(node, values, ip)
    http = boot.http_url(serving.image, boot.tftpdir)
    choice = boot_choice(loader.name, arch, node, http)
    return Host(node, mac, ip, resolve(serving.tftp), choice)


@dataclass(frozen=True)
class Written:
    directory: Path
    configured: bool  # makedhcp -n has written the servers' settings
    dnsmasq: int | None  # the dnsmasq sent SIGHUP

    @property
    def unconfigured(self) -> str:
        return (
            f"the DHCP service is not set up ({self.directory}/dnsmasq.conf does not exist "
            "yet): run makedhcp -n, after makenetworks if no network object is defined"
        )


async def write_entries(directory: Path, changes: Mapping[str, Host | None]) -> Written:
    """Replace (or, for None, remove) these nodes' entries in every host file,
    then have a running dnsmasq read them; DhcpFilesError when they cannot be written."""

    def write() -> Written:
        try:
            directory.mkdir(mode=0o755, parents=True, exist_ok=True)
            with locked(directory):
                for host_file in HOST_FILES:
                    path = directory / host_file.name
                    current = path.read_text() if path.exists() else ""
                    write_atomic(path, host_file.updated(current, changes).encode())
        except (OSError, UnicodeDecodeError) as exc:
            raise DhcpFilesError(f"cannot write the DHCP entries in {directory}: {exc}") from None
        configured = (directory / "dnsmasq.conf").exists()
        return Written(directory, configured, reload_dnsmasq(directory))

    return await trio.to_thread.run_sync(write)


def locked(directory: Path) -> contextlib.AbstractContextManager[None]:
    """One writer of the host files at a time, in this daemon or in any other process."""
    return one_writer(directory / ".makedhcp.lock")
