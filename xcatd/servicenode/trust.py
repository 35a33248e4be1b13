"""A service node keeps its trust current while it runs (DESIGN.md §§4, 5).

It has no CA key, so it cannot know of a revocation by itself: it takes the
management node's revocation list (`getcrl`) whenever the stamp of that
list in the management node's greeting differs from its own, so a
certificate revoked on the management node (`xcatd revoke`) is refused by
this node's daemon too.  And its SSH certificates (the host's and its
root's, from enrollment) are short-lived: it asks for new ones
(`renewsshcerts`, signed with its own certificate) while a third of their
validity is left, and writes them atomically where sshd and ssh read them.

The daemon does both every `trust_interval` seconds (xcatd.toml), and takes
the list at every other connection to the management node too (taking the
definitions, replica.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from ..auth import AuthError
from ..ca import write_public
from ..link import Link, LinkError
from ..policy import RENEW_SSH
from ..sshca import certificate_file, ensure_key, renewal_due
from ..throttle import ThrottledWarning
from .enroll import host_key, user_key
from .replica import ReplicaError, master_of
from .revocations import TrustError, take_revocations

if TYPE_CHECKING:
    from ..daemon import Daemon

log = logging.getLogger(__name__)
trouble = ThrottledWarning(log)


async def keep_current(daemon: Daemon) -> None:
    """Check with the management node every trust_interval seconds, for as
    long as the daemon runs; a failed check (the MN away or refusing, a
    file that cannot be written) is logged and tried again, and never ends
    the daemon."""
    while True:
        try:
            master = master_of(daemon)
            async with Link.open(master.host, master.port, daemon.ca) as link:
                await take_revocations(daemon, link)
                await renew_ssh_certificates(daemon, link)
        except (LinkError, ReplicaError, TrustError, AuthError, OSError, ValueError) as exc:
            trouble.warning("cannot bring this node's trust up to date: %s", exc)
        await trio.sleep(daemon.config.trust_interval)


async def renew_ssh_certificates(daemon: Daemon, link: Link) -> None:
    """New SSH certificates for this node's host key and its root's key,
    when either has less than a third of its validity left."""
    layout = daemon.layout
    node = daemon.config.hostname
    keys = (host_key(layout), user_key(layout))
    files = [certificate_file(key) for key in keys]
    now = dt.datetime.now(dt.UTC)
    if not any(renewal_due(path, now) for path in files):
        return
    lines = [ensure_key(key, f"root@{node}") for key in keys]
    answer = await link.ask(RENEW_SSH, lines, user=node)
    issued = next((o.data for o in answer.outputs if isinstance(o.data, dict)), None)
    if answer.rc != 0 or issued is None:
        raise TrustError(f"{RENEW_SSH} on {link.where}: " + "; ".join(answer.errors))
    try:
        certificates = (str(issued["ssh_host_certificate"]), str(issued["ssh_user_certificate"]))
    except KeyError:
        raise TrustError(f"{RENEW_SSH} on {link.where} gave no certificates") from None
    for path, certificate in zip(files, certificates, strict=True):
        write_public(path, certificate.encode())
    _reload_sshd(layout.sshd_pid)
    log.info("SSH certificates renewed by %s: %s", link.where, ", ".join(map(str, files)))


def _reload_sshd(pid_file: Path) -> None:
    """sshd reads its host certificate when it starts or is sent SIGHUP."""
    # With no sshd running here, it reads the new one when it starts.
    with contextlib.suppress(OSError, ValueError, IndexError):
        os.kill(int(pid_file.read_text().split()[0]), signal.SIGHUP)
