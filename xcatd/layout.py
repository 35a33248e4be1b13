"""Where everything lives on the host, derived from one optional root.

Without a root the usual system paths are used; with `--root DIR` everything
lives under DIR, so a whole cluster can be tried (or tested) in a directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    etc: Path  # xcatd.toml and the pki/ directory
    state: Path  # the database
    installdir: Path  # default for site.installdir
    tftpdir: Path  # default for site.tftpdir
    cred_dir: Path  # root's client credentials
    share: Path  # xCAT's $XCATROOT/share/xcat: the profiles under netboot/<family>/

    @classmethod
    def for_root(cls, root: Path | None) -> Layout:
        if root is None:
            return cls(
                etc=Path("/etc/xcat"),
                state=Path("/var/lib/xcat"),
                installdir=Path("/install"),
                tftpdir=Path("/tftpboot"),
                cred_dir=Path.home() / ".xcat",
                share=Path("/opt/xcat/share/xcat"),
            )
        root = root.resolve()
        return cls(
            etc=root / "etc/xcat",
            state=root / "var/lib/xcat",
            installdir=root / "install",
            tftpdir=root / "tftpboot",
            cred_dir=root / ".xcat",
            share=root / "opt/xcat/share/xcat",
        )

    @property
    def config_file(self) -> Path:
        return self.etc / "xcatd.toml"

    @property
    def ssh(self) -> Path:
        """The host's SSH configuration and host keys (/etc/ssh)."""
        return self.etc.parent / "ssh"

    @property
    def sshd_pid(self) -> Path:
        """Where sshd writes its process id (/run/sshd.pid)."""
        return self.etc.parent.parent / "run/sshd.pid"

    @property
    def rsyslog_d(self) -> Path:
        """The host's rsyslog drop-ins (/etc/rsyslog.d): the nodes' logs' receiver."""
        return self.etc.parent / "rsyslog.d"

    @property
    def hosts(self) -> Path:
        """The host's /etc/hosts, which makehosts writes."""
        return self.etc.parent / "hosts"

    @property
    def user_ssh(self) -> Path:
        """root's ~/.ssh: its SSH key and the cluster's certificate for it."""
        return self.cred_dir.parent / ".ssh"

    @property
    def pki(self) -> Path:
        return self.etc / "pki"

    @property
    def dhcp(self) -> Path:
        """The DHCP server configuration makedhcp writes (dnsmasq and ISC dhcpd)."""
        return self.etc / "dhcp"

    @property
    def netboot_profiles(self) -> Path:
        """Where the shipped image profiles are placed, by family, as in xCAT:
        /opt/xcat/share/xcat/netboot/<family>/."""
        return self.share / "netboot"

    @property
    def logdir(self) -> Path:
        """The daemon's logs (/var/log/xcat): the nodes' consoles under consoles/,
        their syslog under nodes/ (written by rsyslog, see nodelogs.py)."""
        return self.state.parent.parent / "log/xcat"

    @property
    def database(self) -> Path:
        return self.state / "xcat.sqlite"
