"""Finding the dnsmasq that serves makedhcp's files, and making it read them again.

dnsmasq re-reads its dhcp-hostsfile and dhcp-optsfile on SIGHUP.  The one
to signal is the dnsmasq started with makedhcp's dnsmasq.conf: its pid file
names it, unless it runs with --no-daemon (as tests and the network-boot
test start it), which writes none; then the process table does.  Only a
process whose program is dnsmasq and whose command line names that
dnsmasq.conf is ever signalled.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path


def reload_dnsmasq(directory: Path) -> int | None:
    """SIGHUP to the dnsmasq that runs with this directory's dnsmasq.conf; its
    pid, or None when none runs."""
    pid = running_dnsmasq(directory)
    if pid is not None:
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:  # it stopped in between
            return None
    return pid


def running_dnsmasq(directory: Path) -> int | None:
    """The pid of the dnsmasq using this directory's dnsmasq.conf: from its pid
    file, else (dnsmasq --no-daemon writes none) from the process table."""
    conf = str(directory / "dnsmasq.conf")
    try:
        recorded = [int((directory / "dnsmasq.pid").read_text())]
    except (OSError, ValueError):
        recorded = []
    others = (int(entry) for entry in os.listdir("/proc") if entry.isdigit())
    return next((pid for pid in (*recorded, *others) if _is_dnsmasq_of(pid, conf)), None)


def _is_dnsmasq_of(pid: int, conf: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            words = f.read().decode(errors="replace").split("\0")
    except OSError:
        return False
    named = any(word == conf or word.endswith(f"={conf}") for word in words)
    return os.path.basename(words[0]) == "dnsmasq" and named
