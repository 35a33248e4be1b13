"""Local administration of a cluster's trust: set-up, credentials, revocation.

These run on the management node as root, on the files directly (the daemon
need not be running), which is why they are not client commands.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import socket
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from .ca import (
    CertificateAuthority,
    Issued,
    cert_pem,
    certificate_row,
    now,
    write_private,
    write_public,
)
from .config import Config
from .errors import XcatdError
from .hostsfile import is_address
from .images.profiles import install_shipped
from .layout import Layout
from .nodelogs import place_receiver
from .policy import DEFAULT_RULES
from .sshca import SshAuthority, certificate_file, ensure_key
from .store import Store
from .store.objtypes import SITE

ADMIN = "root"  # the administrator's identity; the default policy lets it do everything
# The management node's root's SSH certificate; init renews it.
ROOT_SSH_VALIDITY = dt.timedelta(days=365)


class AdminError(XcatdError):
    pass


def init_cluster(
    layout: Layout,
    *,
    settings: Mapping[str, Any] | None = None,
    force: bool = False,
    system: bool = False,
) -> Iterator[str]:
    """Create what is missing (everything, with force); yield lines to print.

    `settings` are xcatd.toml values given on the command line (None: not
    given); `system`: this is the host's own cluster (no --root), whose
    services (rsyslog) may be restarted.
    """
    for directory in (layout.etc, layout.state, layout.installdir, layout.tftpdir):
        directory.mkdir(parents=True, exist_ok=True)
    layout.state.chmod(0o700)
    yield from _place_profiles(layout)  # first: its failure leaves no half-made cluster

    config = _write_config(layout, settings or {}, force)
    ca = CertificateAuthority(layout.pki)
    fresh = force or not ca.exists()
    if fresh:
        ca.create(config.hostname)
        yield f"Created the cluster CA in {layout.pki}"
    else:
        yield f"Keeping the existing cluster CA in {layout.pki} (--force makes a new one)"
    if fresh or not ca.server_cert_file.exists():
        ca.issue_server(config.hostname, server_addresses(config))
        yield f"Issued the server certificate for {config.hostname}"

    store = Store(layout.database)
    try:
        seed_policy(store)
        _seed_site(store, layout, config)
        if fresh or not (layout.cred_dir / "client-cred.pem").exists():
            _record(store, ca.issue(ADMIN, "user"), ca, layout.cred_dir)
            yield f"Wrote {ADMIN}'s client credentials to {layout.cred_dir}"
    finally:
        store.close()
    yield from _root_ssh(layout, config.hostname, fresh)
    yield from place_receiver(layout, system=system)
    yield f"Database: {layout.database}"
    yield "Point the client at this daemon with:"
    yield f"export XCATHOST={_client_host(config)}:{config.port}"
    yield f"export XCAT_CRED_DIR={layout.cred_dir}"


def _root_ssh(layout: Layout, hostname: str, fresh: bool) -> Iterator[str]:
    """root's SSH key (made if it has none), a user certificate for it from
    the cluster's SSH CA (renewed at every init), and that CA trusted for
    the nodes' host keys: `ssh <node>` with no password, no key copied to
    the nodes and no known_hosts prompt.  A new cluster CA (--force) makes
    a new SSH CA too."""
    authority = SshAuthority(layout.pki)
    if fresh:
        authority.key_file.unlink(missing_ok=True)
    ca_line = authority.ensure()
    key = layout.user_ssh / "id_ed25519"
    identity = f"{ADMIN}@{hostname}"
    public = ensure_key(key, identity)
    certificate = authority.user_certificate(public, ADMIN, identity, ROOT_SSH_VALIDITY)
    write_public(certificate_file(key), certificate.encode())
    known_hosts = layout.user_ssh / "known_hosts"
    trusted = f"@cert-authority * {ca_line}"
    lines = known_hosts.read_text().splitlines() if known_hosts.exists() else []
    if trusted not in lines:
        write_public(known_hosts, "\n".join([*lines, trusted]).encode() + b"\n")
    yield f"Wrote {ADMIN}'s SSH certificate to {certificate_file(key)}"


def _place_profiles(layout: Layout) -> Iterator[str]:
    """The shipped image profiles where xCAT keeps them (see install_shipped)."""
    try:
        yield from install_shipped(layout.netboot_profiles)
    except OSError as exc:
        raise AdminError(
            f"cannot place the image profiles in {layout.netboot_profiles}: {exc.strerror or exc}"
        ) from None


def issue_credentials(layout: Layout, name: str, role: str, out: Path, *, days: int) -> list[Path]:
    """Issue a certificate to `name` and write ca.pem and client-cred.pem into `out`."""
    if not name or any(c.isspace() or c in "/\\" for c in name):
        raise AdminError(f"'{name}' is not a usable name: no spaces or slashes")
    ca = _existing_ca(layout)
    store = Store(layout.database)
    try:
        return _record(store, ca.issue(name, role, days=days), ca, out)
    finally:
        store.close()


def revoke(layout: Layout, name: str) -> int:
    """Revoke every valid certificate issued to `name`; return how many."""
    ca = _existing_ca(layout)
    store = Store(layout.database)
    try:
        db = store.db
        with db.atomic():
            valid = [
                row["serial"]
                for row in db["certificates"].rows_where("name = ? and revoked is null", [name])
            ]
            if not valid:
                raise AdminError(f"no valid certificate was issued to '{name}'")
            stamp = now().isoformat(timespec="seconds")
            for serial in valid:
                db.table("certificates").update(serial, {"revoked": stamp})
            revoked = [
                (int(row["serial"]), dt.datetime.fromisoformat(row["revoked"]))
                for row in db["certificates"].rows_where("revoked is not null")
            ]
            ca.write_crl(revoked)
    finally:
        store.close()
    return len(valid)


def server_addresses(config: Config) -> tuple[str, ...]:
    """What the server certificate names: this host's addresses, and the
    addresses it is told to listen on (which may not be up yet, or be in
    another network namespace than `xcatd init`)."""
    wildcards = ("0.0.0.0", "::")
    listen = [a for a in config.listen if a not in wildcards and is_address(a)]
    return tuple(dict.fromkeys((*host_addresses(config.hostname), *listen)))


def host_addresses(hostname: str) -> tuple[str, ...]:
    """This host's addresses, for the server certificate's alternative names."""
    found: list[str] = []
    try:
        listing = subprocess.run(
            ["ip", "-j", "address", "show"], capture_output=True, check=True, text=True
        )
        for interface in json.loads(listing.stdout):
            found += [a["local"] for a in interface.get("addr_info", []) if "local" in a]
    except (OSError, subprocess.CalledProcessError, ValueError):
        pass
    with contextlib.suppress(OSError):
        found += [a for *_, (a, *_) in socket.getaddrinfo(hostname, None) if isinstance(a, str)]
    usable = []
    for address in found:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:  # zoned link-local addresses cannot go in a certificate
            continue
        if not ip.is_link_local:
            usable.append(str(ip))
    return tuple(dict.fromkeys(usable))


def _write_config(layout: Layout, settings: Mapping[str, Any], force: bool) -> Config:
    if layout.config_file.exists() and not force:
        config = Config.load(layout.config_file)
    else:
        config = Config(hostname=settings.get("hostname") or socket.gethostname())
    config = replace(config, **{k: v for k, v in settings.items() if v is not None})
    write_public(layout.config_file, config.dump().encode())
    return config


def _seed_site(store: Store, layout: Layout, config: Config) -> None:
    """The clustersite object with what init knows; an existing one is kept."""
    table = store.db.table(SITE.name)
    if table.count:
        return
    with store.db.atomic():
        table.insert(
            {
                SITE.key: SITE.only_object,
                "master": config.hostname,
                "domain": config.hostname.partition(".")[2] or "cluster",
                "installdir": str(layout.installdir),
                "tftpdir": str(layout.tftpdir),
                "httpport": str(config.http_port),
                "xcatdport": str(config.port),
                "xcatiport": str(config.status_port),
                "dhcpsetup": "y",
            }
        )


def seed_policy(store: Store) -> None:
    table = store.db.table("policy")
    if table.count == 0:
        with store.db.atomic():
            table.insert_all(DEFAULT_RULES, alter=False)


def _record(store: Store, issued: Issued, ca: CertificateAuthority, out: Path) -> list[Path]:
    cert = issued.cert
    with store.db.atomic():
        store.db.table("certificates").insert(certificate_row(cert))
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o700)
    ca_file, cred_file = out / "ca.pem", out / "client-cred.pem"
    write_public(ca_file, cert_pem(ca.cert))
    write_private(cred_file, issued.credentials_pem())
    return [ca_file, cred_file]


def _existing_ca(layout: Layout) -> CertificateAuthority:
    ca = CertificateAuthority(layout.pki)
    if not ca.exists():
        raise AdminError(f"no cluster CA in {layout.pki}: run 'xcatd init' first")
    return ca


def _client_host(config: Config) -> str:
    """The name a client should use: localhost when the daemon listens only there."""
    try:
        loopback_only = all(ipaddress.ip_address(a).is_loopback for a in config.listen)
    except ValueError:
        loopback_only = False
    return "localhost" if loopback_only else config.hostname
