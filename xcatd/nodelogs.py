"""The nodes' logs: their syslog, received by rsyslog on the management node
and on service nodes, written to `<logdir>/nodes/<node>.log`.

Every image forwards its syslog to the xcatd named on its kernel command
line, that is its xcatmaster (genimage installs the forwarding, see
images/build/bootunits.py and share/rsyslog/).  The receiver is the host's own
rsyslog, not the daemon: the daemon does not need it to run, and the host's
syslog is where an administrator looks (`tail -f /var/log/messages`, or
/var/log/syslog on Debian).  `xcatd init` writes the receiving side as a
drop-in for the host's rsyslog (`receiver_config`), and genimage writes the
same into a service node's image:

    UDP and TCP port 514 -> <logdir>/nodes/<sender's hostname>.log
                         -> then the host's own rules, as if logged there:
                            its /var/log/messages (or syslog), and on a
                            service node the forwarding to its own master

So a compute node's lines are in its service node's `nodes/` and, passed
on, in the management node's too, as xCAT's syslog postscript arranges
(xCAT's site.svloglocal, keeping them on the service node, is not offered).
The file is named by the hostname in the message, which the node's
forwarding sets to its node name; `secpath-replace` keeps a forged one from
naming a path outside `nodes/`.  The daemon says at start, in one line,
when rsyslog or the drop-in is missing (`receiver_problem`).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from .layout import Layout

PORT = 514  # syslog's port, UDP and TCP: what the images' forwarding sends to
RSYSLOGD = "rsyslogd"
DROP_IN = "xcatd-nodes.conf"  # in the host's /etc/rsyslog.d
SYSTEMD_RUNNING = Path("/run/systemd/system")


def receiver_config(logdir: Path) -> str:
    """The rsyslog drop-in of a host that receives its nodes' logs."""
    nodes = logdir / "nodes"
    return f"""\
# Written by xcatd (xcatd init; genimage for a service node's image): the
# nodes' syslog, received on UDP and TCP port {PORT}, goes to
# {nodes}/<node>.log and then through this host's own rules,
# so it is also in this host's syslog (and a service node passes it on).
module(load="imudp")
module(load="imtcp")
template(name="xcatd-node-file" type="string"
         string="{nodes}/%hostname:::secpath-replace%.log")
ruleset(name="xcatd-nodes") {{
    action(type="omfile" dynaFile="xcatd-node-file" template="RSYSLOG_FileFormat"
           dirCreateMode="0750" fileCreateMode="0640")
    call RSYSLOG_DefaultRuleset
}}
input(type="imudp" port="{PORT}" ruleset="xcatd-nodes")
input(type="imtcp" port="{PORT}" ruleset="xcatd-nodes")
"""


def drop_in(layout: Layout) -> Path:
    return layout.rsyslog_d / DROP_IN


def rsyslog_installed() -> bool:
    return shutil.which(RSYSLOGD, path="/usr/sbin:/sbin:/usr/bin") is not None


def place_receiver(layout: Layout, *, system: bool) -> Iterator[str]:
    """For `xcatd init`: the drop-in written (when rsyslog is installed) and,
    on a `system` host run by systemd, rsyslog restarted to read it."""
    if not rsyslog_installed():
        yield (
            "rsyslog is not installed, so the nodes' logs will not be received here: "
            "install rsyslog, then run xcatd init again"
        )
        return
    path = drop_in(layout)
    path.parent.mkdir(parents=True, exist_ok=True)
    (layout.logdir / "nodes").mkdir(mode=0o750, parents=True, exist_ok=True)
    text = receiver_config(layout.logdir)
    if path.exists() and path.read_text() == text:
        return
    path.write_text(text)
    if system and SYSTEMD_RUNNING.is_dir():
        restart = subprocess.run(
            ["systemctl", "try-restart", "rsyslog.service"], capture_output=True, text=True
        )
        if restart.returncode == 0:
            yield f"Wrote {path}; rsyslog restarted: the nodes' logs go to {layout.logdir}/nodes"
            return
    yield (
        f"Wrote {path}: the nodes' logs go to {layout.logdir}/nodes once rsyslog is "
        "restarted (systemctl restart rsyslog)"
    )


def receiver_problem(layout: Layout) -> str | None:
    """Why this host does not receive its nodes' logs, in one line; None when it does."""
    if not rsyslog_installed():
        return (
            "the nodes' logs are not received: rsyslog is not installed "
            "(install it, then run xcatd init)"
        )
    if not drop_in(layout).is_file():
        return f"the nodes' logs are not received: {drop_in(layout)} is missing (run xcatd init)"
    return None
