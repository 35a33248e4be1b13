"""A service node's trust stays current while it runs (DESIGN.md §§4, 5, 9).

A management node (MN) and an enrolled service node (sn1), each a real
daemon process on the loopback network, sn1 enrolled as a booting service
node enrolls and checking with the MN every second (trust_interval).  A
certificate the administrator revokes on the MN is refused by sn1 too,
soon after; sn1's SSH certificates, short-lived, are replaced before they
expire; and a revoked service node gets no new ones.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.cluster import Cluster
from tests.sessions import credentials_for
from tests.test_enrollment import (
    SERVICE_IMAGE,
    audited,
    boot_command_line,
    define,
    enroll,
    service_node,
    ssh_certificate,
)
from tests.test_enrollment import mn as mn  # the fixture
from tests.waiting import wait_for
from xcatd.config import Config

CHECK_EVERY = 1.0  # sn1's trust_interval, in seconds


def start_service_node(mn: Cluster, tmp_path: Path) -> Cluster:
    """sn1 at 127.0.0.1, enrolled and serving."""
    define(mn, "sn1", "127.0.0.1", "52:54:00:00:05:01")
    mn.ok("nodeset", "sn1", f"osimage={SERVICE_IMAGE}")
    sn = service_node(tmp_path, "sn1")
    enrolled = enroll(sn, boot_command_line(mn, "sn1", tmp_path))
    assert enrolled.returncode == 0, enrolled.stderr
    config_file = sn.root / "etc/xcat/xcatd.toml"
    config = replace(Config.load(config_file), trust_interval=CHECK_EVERY)
    config_file.write_text(config.dump())
    sn.start_restored()
    return sn


@pytest.fixture
def sn(mn: Cluster, tmp_path: Path) -> Iterator[Cluster]:
    service = start_service_node(mn, tmp_path)
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def short_lived_sn(mn: Cluster, tmp_path: Path) -> Iterator[Cluster]:
    """sn1, its SSH certificates valid for a minute (site.sshcertminutes)."""
    mn.ok("chdef", "-t", "site", "sshcertminutes=1")
    service = start_service_node(mn, tmp_path)
    try:
        yield service
    finally:
        service.stop()


def as_holder_of(sn: Cluster, cred_dir: Path) -> dict[str, str]:
    """The environment of a user of sn1 with these credentials."""
    return {**sn.env, "XCAT_CRED_DIR": str(cred_dir)}


def refused_within(sn: Cluster, env: dict[str, str], timeout: float) -> tuple[str, float]:
    """sn1's refusal of `lsxcatd -v` with these credentials, and how long it took to come."""
    started = time.monotonic()

    def refusal() -> str:
        result = sn.run("lsxcatd", "-v", env=env)
        return result.stderr if result.returncode else ""

    text = wait_for(refusal, lambda: sn.logs()[-2000:], timeout=timeout, interval=0.2)
    return text, time.monotonic() - started


def test_a_certificate_revoked_on_the_mn_is_refused_by_the_service_node_soon_after(
    mn,
    sn,
    tmp_path,
):
    # alice, an administrator sn1's policy lets run lsxcatd, and sn2's certificate.
    root = as_holder_of(sn, mn.cred_dir)
    assert sn.run("mkdef", "-t", "policy", "-o", "5", "name=alice", "commands=lsxcatd",
                  "rule=allow", env=root).returncode == 0  # fmt: skip
    alice = as_holder_of(sn, credentials_for(mn, "alice", "user", tmp_path / "alice"))
    sn2 = as_holder_of(sn, credentials_for(mn, "sn2", "servicenode", tmp_path / "sn2"))
    for who in (alice, sn2):
        served = sn.run("lsxcatd", "-v", env=who)
        assert (served.returncode, served.stdout.startswith("Version ")) == (0, True), served

    assert mn.xcatd("revoke", "alice").stdout == "Revoked 1 certificate issued to alice\n"
    refusal, after = refused_within(sn, alice, timeout=CHECK_EVERY + 20)
    assert refusal == "Error: the certificate of 'alice' has been revoked\n"
    print(f"\nalice refused by sn1 {after:.1f} s after her revocation on the MN")
    assert sn.run("lsxcatd", "-v", env=sn2).returncode == 0  # only what was revoked

    assert mn.xcatd("revoke", "sn2").stdout == "Revoked 1 certificate issued to sn2\n"
    refusal, after = refused_within(sn, sn2, timeout=CHECK_EVERY + 20)
    assert refusal == "Error: the certificate of 'sn2' has been revoked\n"
    print(f"sn2's certificate refused by sn1 {after:.1f} s after its revocation on the MN")
    # sn1 took the MN's list as it is, and checked it was the cluster CA's.
    assert (sn.root / "etc/xcat/pki/revoked.crl").read_bytes() == (
        mn.root / "etc/xcat/pki/revoked.crl"
    ).read_bytes()
    # Once at its start (it had none), then once for each revocation.
    taken = re.findall(r"revocation list from \S+: (\d+) certificates revoked", sn.logs())
    assert taken == ["0", "1", "2"]


def valid_until(certificate: Path) -> dt.datetime:
    """The end of an SSH certificate's validity, as `ssh-keygen -L` shows it (local time)."""
    shown = ssh_certificate(certificate)
    found = re.search(r"Valid: from \S+ to (\S+)", shown)
    assert found, shown
    return dt.datetime.fromisoformat(found[1])


def public_key_of(certificate: Path) -> str:
    return re.findall(r"Public key: .*", ssh_certificate(certificate))[0]


def public_key_of_text(certificate: str, tmp_path: Path) -> str:
    path = tmp_path / "earlier-cert.pub"
    path.write_text(certificate)
    return public_key_of(path)


def test_a_service_node_renews_its_ssh_certificates_before_they_expire(
    mn,
    short_lived_sn,
    tmp_path,
):
    sn = short_lived_sn
    host = sn.root / "etc/ssh/ssh_host_ed25519_key-cert.pub"
    user = sn.root / ".ssh/id_ed25519-cert.pub"
    enrolled = {path: path.read_text() for path in (host, user)}
    expiry = {path: valid_until(path) for path in (host, user)}
    assert max(expiry.values()) <= dt.datetime.now() + dt.timedelta(minutes=1)

    wait_for(lambda: all(p.read_text() != enrolled[p] for p in (host, user)),
             lambda: sn.logs()[-2000:], timeout=60, interval=0.2)  # fmt: skip

    assert dt.datetime.now() < min(expiry.values())  # replaced before the old ones expired
    for path, kind, principal in ((host, "host", "sn1"), (user, "user", "root")):
        renewed = ssh_certificate(path)
        assert (
            f"{kind} certificate" in renewed
            and f"Principals: \n                {principal}\n" in renewed
        )
        assert valid_until(path) > expiry[path]
        # For the same key, which never left sn1.
        assert public_key_of(path) == public_key_of_text(enrolled[path], tmp_path)
    assert ("sn1", "allowed", 0) in audited(mn, "renewsshcerts")
    print(
        f"\nrenewed: {', '.join(f'{p.name} until {valid_until(p):%H:%M:%S}' for p in (host, user))}"
    )


def as_its_daemon(mn: Cluster, sn: Cluster, where: Path) -> dict[str, str]:
    """The environment of a user of the MN holding the service node's own
    certificate and key (in `where`), as its daemon asks the MN."""
    where.mkdir()
    pki = sn.root / "etc/xcat/pki"
    shutil.copy(pki / "ca.pem", where / "ca.pem")
    (where / "client-cred.pem").write_bytes((pki / "server.pem").read_bytes()
                                            + (pki / "server.key").read_bytes())  # fmt: skip
    return {**mn.env, "XCAT_CRED_DIR": str(where)}


def test_a_revoked_service_node_gets_no_new_ssh_certificates(mn, short_lived_sn, tmp_path):
    sn = short_lived_sn
    # With its own certificate, as its daemon asks: here the client, by hand.
    keys = [(sn.root / "etc/ssh/ssh_host_ed25519_key.pub").read_text().strip(),
            (sn.root / ".ssh/id_ed25519.pub").read_text().strip()]  # fmt: skip
    as_sn1 = as_its_daemon(mn, sn, tmp_path / "sn1-cred")
    renewed = mn.run("renewsshcerts", *keys, env=as_sn1)
    assert (renewed.returncode, renewed.stdout) == (0, "sn1: SSH certificates renewed\n")
    # Nobody else may have them: not even the MN's root.
    by_root = mn.run("renewsshcerts", *keys)
    assert by_root.returncode == 1
    assert by_root.stderr == (
        "Error: Permission denied for request: renewsshcerts is answered only to a service "
        "node's daemon, signed with its own certificate; 'root' is not one\n"
    )
    wait_for(lambda: ("root", "denied", 1) in audited(mn, "renewsshcerts"),
             lambda: f"root's refusal audited: {audited(mn, 'renewsshcerts')}")  # fmt: skip

    assert mn.xcatd("revoke", "sn1").stdout == "Revoked 1 certificate issued to sn1\n"
    refused = mn.run("renewsshcerts", *keys, env=as_sn1)
    assert (refused.returncode, refused.stderr) == (
        1,
        "Error: the certificate of 'sn1' has been revoked\n",
    )
    # sn1's daemon, asking when its certificates are due, is refused and says so.
    wait_for(lambda: "renewsshcerts on 127.0.0.1" in sn.logs()
             and "the certificate of 'sn1' has been revoked" in sn.logs(),
             lambda: sn.logs()[-2000:], timeout=60, interval=0.2)  # fmt: skip
    # (A request refused at its certificate is audited without a user.)
    wait_for(lambda: audited(mn, "renewsshcerts")[-1] == ("", "refused", 1), "the refusal audited")
