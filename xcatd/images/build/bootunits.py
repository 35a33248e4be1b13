"""What genimage sets up in an image for the node that boots it.

Every image with systemd:
    xcatd-report-boot.service  reports booted (or failed, naming the failed
                               units) to the daemon on the kernel command line
    xcatd-ssh-hostkeys.service makes the SSH host keys at boot, where sshd has
                               no key generator of its own (Debian)
Every image with systemd and rsyslog, its syslog sent to its xcatmaster
(xcatd/nodelogs.py has the whole path):
    rsyslog.d/xcatd-forward.conf  includes /run/xcatd/rsyslog-forward.conf,
                               which /usr/lib/xcatd/syslog-forward writes as
                               rsyslog starts (rsyslog.service.d/xcatd.conf)
                               from the kernel command line
Every image with sshd, the cluster's SSH CA (public key only, xcatd/sshca.py):
    sshd_config.d/xcatd.conf   users it certified may log in; the host
                               certificate enrollment brings is presented
    ssh_known_hosts            hosts it certified are known: no prompts
An image with xcatd in /opt/xcat (a service node's, from `xcatd bundle`):
    xcatd-enroll.service       at boot, makes the node's key in memory and
                               enrolls with the management node for its
                               certificate (xcatd/servicenode/enroll.py)
    xcatd.service              the daemon, enabled, in service-node mode
                               (/etc/xcat/xcatd.toml role = "servicenode"),
                               after enrolling; skipped, not failed, while the
                               node has no certificate (drop-in xcatd-enrolled.conf)
    rsyslog.d/xcatd-nodes.conf its compute nodes' logs received, kept under
                               /var/log/xcat/nodes and passed on to its master

Units go to /etc/systemd/system (installed by the administrator's tool, not
by a package) and are enabled by the image's own systemctl.  SSH host keys
that package installation made are removed: an image is downloaded by anyone
on the network, so nothing in it may be a secret.
"""

from __future__ import annotations

from pathlib import Path

import trio

from ...config import Config
from ...layout import Layout
from ...nodelogs import DROP_IN, receiver_config
from ..osimage import is_service_node
from ..rootfiles import RootFileError, names_in_image, remove_in_image, write_in_image
from ..shipped import SHARE
from .chroot import Namespace
from .common import BuildError, Output, Spec, image_env

UNITS = "/etc/systemd/system"
SHIPPED = SHARE / "systemd"
REPORT = "xcatd-report-boot.service"
REPORT_SCRIPT = "/usr/lib/xcatd/report-boot"
SSH_KEYGEN = "xcatd-ssh-hostkeys.service"
DAEMON = "xcatd.service"
ENROLL = "xcatd-enroll.service"
ENROLLED = f"{UNITS}/{DAEMON}.d/xcatd-enrolled.conf"
DAEMON_CONFIG = "/etc/xcat/xcatd.toml"
SSH_HOST_KEYS = "/etc/ssh"
SSHD_CONFIG = "/etc/ssh/sshd_config.d/xcatd.conf"
RSYSLOGD = "/usr/sbin/rsyslogd"
RSYSLOG_D = "/etc/rsyslog.d"
SYSLOG_FORWARD = "/usr/lib/xcatd/syslog-forward"


def has_systemd(rootimg: Path) -> bool:
    return (rootimg / "usr/bin/systemctl").is_file()


def needs_ssh_keygen(rootimg: Path) -> bool:
    """sshd is there, without a key generator unit (Red Hat's sshd-keygen@)."""
    units = rootimg / "usr/lib/systemd/system"
    return (rootimg / "usr/sbin/sshd").is_file() and not any(units.glob("sshd-keygen*"))


def planned(rootimg: Path, ssh_ca: str) -> tuple[dict[str, tuple[bytes, int]], list[str]]:
    """The files to write (path in the image -> contents, mode) and the units to enable."""
    files = {
        f"{UNITS}/{REPORT}": ((SHIPPED / REPORT).read_bytes(), 0o644),
        REPORT_SCRIPT: ((SHIPPED / "report-boot").read_bytes(), 0o755),
    }
    if (rootimg / "usr/sbin/sshd").is_file() and ssh_ca:
        files |= ssh_trust(ssh_ca)
    units = [REPORT]
    if needs_ssh_keygen(rootimg):
        files[f"{UNITS}/{SSH_KEYGEN}"] = ((SHIPPED / SSH_KEYGEN).read_bytes(), 0o644)
        units.append(SSH_KEYGEN)
    if has_rsyslog(rootimg):
        files |= syslog_files(receiver=is_service_node(rootimg))
    if is_service_node(rootimg):
        files[f"{UNITS}/{DAEMON}"] = ((SHIPPED / DAEMON).read_bytes(), 0o644)
        files[ENROLLED] = ((SHIPPED / "xcatd-enrolled.conf").read_bytes(), 0o644)
        files[f"{UNITS}/{ENROLL}"] = ((SHIPPED / ENROLL).read_bytes(), 0o644)
        files[DAEMON_CONFIG] = (service_node_config().encode(), 0o644)
        units += [ENROLL, DAEMON]
    return files, units


def has_rsyslog(rootimg: Path) -> bool:
    return (rootimg / RSYSLOGD.lstrip("/")).is_file()


def syslog_files(*, receiver: bool) -> dict[str, tuple[bytes, int]]:
    """rsyslog sends everything to the xcatd the node booted from; a
    `receiver` (a service node) also takes in its own nodes' logs."""
    shipped = SHARE / "rsyslog"
    files = {
        f"{RSYSLOG_D}/xcatd-forward.conf": ((shipped / "xcatd-forward.conf").read_bytes(), 0o644),
        SYSLOG_FORWARD: ((shipped / "syslog-forward").read_bytes(), 0o755),
        f"{UNITS}/rsyslog.service.d/xcatd.conf": (
            (shipped / "rsyslog.service.conf").read_bytes(),
            0o644,
        ),
    }
    if receiver:
        received = receiver_config(Layout.for_root(None).logdir)  # the node's own /var/log/xcat
        files[f"{RSYSLOG_D}/{DROP_IN}"] = (received.encode(), 0o644)
    return files


def ssh_trust(ssh_ca: str) -> dict[str, tuple[bytes, int]]:
    """The cluster's SSH CA, trusted by sshd for users and by ssh for hosts:
    public keys only, so the image stays free of secrets."""
    return {
        SSHD_CONFIG: ((SHARE / "ssh/sshd-xcatd.conf").read_bytes(), 0o644),
        f"{SSH_HOST_KEYS}/xcatd_user_ca.pub": (f"{ssh_ca}\n".encode(), 0o644),
        f"{SSH_HOST_KEYS}/ssh_known_hosts": (f"@cert-authority * {ssh_ca}\n".encode(), 0o644),
    }


def service_node_config() -> str:
    # The node's name is not known when the image is built: enrollment sets it.
    return "# hostname: set when the node enrolls\n" + Config("", role="servicenode").dump()


def write(rootimg: Path, files: dict[str, tuple[bytes, int]]) -> None:
    try:
        for path, (data, mode) in files.items():
            write_in_image(rootimg, path, data, mode)
    except RootFileError as exc:
        raise BuildError(str(exc)) from None


async def install(spec: Spec, output: Output) -> None:
    """The units (and a service node's configuration) into the image, enabled."""
    if not has_systemd(spec.rootimg):
        await output.warning(
            f"the image has no systemd, so genimage installed no {REPORT}: its nodes will "
            "not report booted"
        )
        return
    if not has_rsyslog(spec.rootimg):
        await output.warning(
            "the image has no rsyslog, so its nodes' syslog will not reach their xcatmaster "
            "(add rsyslog to the pkglist)"
        )
    files, units = await trio.to_thread.run_sync(planned, spec.rootimg, spec.ssh_ca)
    await trio.to_thread.run_sync(write, spec.rootimg, files)
    await output.phase(f"Enabling {' '.join(units)} in the image")
    command = ["systemctl", "enable", *units]
    status = await output.run(command, Namespace(spec.rootimg), "chroot", image_env())
    if status != 0:
        raise BuildError(f"systemctl enable {' '.join(units)} failed in the image (exit {status})")


async def remove_ssh_host_keys(spec: Spec, output: Output) -> None:
    """The host keys package installation (or a postinstall) made."""
    keys = [
        name for name in names_in_image(spec.rootimg, SSH_HOST_KEYS) if name.startswith("ssh_host_")
    ]
    if keys:
        await output.phase(f"Removing SSH host keys from the image: {' '.join(keys)}")
        for name in keys:
            remove_in_image(spec.rootimg, f"{SSH_HOST_KEYS}/{name}")
