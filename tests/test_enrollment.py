"""Service nodes enroll for their certificates at boot (DESIGN.md §5).

The administrator runs nodeset for a service node with its service image;
the node, booting, runs `xcatd enroll` (xcatd-enroll.service in the image)
with the kernel command line nodeset wrote.  Here `xcatd enroll` runs as
that unit runs it, from the node's address on the loopback network, with
the command line taken from the node's real boot file; then the service
node's own daemon starts with what it got.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from tests.cluster import Cluster
from tests.sessions import connect, outcome
from tests.test_nodeset import make_image
from xcatd.ca import name_of, role_of
from xcatd.config import Config

SERVICE_IMAGE = "sn-image"


@pytest.fixture
def mn(cluster: Cluster) -> Cluster:
    """A management node with a packed service image (xcatd in it)."""
    rootimgdir = make_image(cluster, SERVICE_IMAGE, pack=False)
    xcatd = rootimgdir / "rootimg/opt/xcat/bin/xcatd"
    xcatd.parent.mkdir(parents=True)
    xcatd.write_text("#!/bin/sh\n")
    cluster.ok("packimage", "-c", "zstd", SERVICE_IMAGE)
    return cluster


def define(mn: Cluster, node: str, ip: str, mac: str) -> None:
    mn.ok("mkdef", node, "groups=service", f"mac={mac}", f"ip={ip}")


def boot_command_line(mn: Cluster, node: str, tmp_path: Path) -> Path:
    """The kernel command line in the node's boot file, as the node's /proc/cmdline."""
    script = (mn.root / "tftpboot/xcat/xnba/nodes" / node).read_text()
    line = script.split("imgargs kernel ", 1)[1].split("\n", 1)[0]
    path = tmp_path / f"{node}.cmdline"
    path.write_text(line + "\n")
    return path


def service_node(tmp_path: Path, node: str) -> Cluster:
    """A service node's root as its image has it: xcatd.toml in service-node
    mode, no credentials (ports of its own, to share the loopback with the MN)."""
    sn = Cluster(tmp_path / node, hostname=node)
    config = Config("", role="servicenode", listen=("127.0.0.1",), port=sn.port,
                    http_port=sn.http_port, tftp_port=sn.tftp_port,
                    status_port=sn.status_port)  # fmt: skip
    (sn.root / "etc/xcat").mkdir(parents=True)
    (sn.root / "etc/xcat/xcatd.toml").write_text(config.dump())
    return sn


def enroll(sn: Cluster, cmdline: Path):
    return sn.xcatd("enroll", "--cmdline", str(cmdline), "--wait", "0")


def ssh_certificate(path: Path) -> str:
    shown = subprocess.run(["ssh-keygen", "-L", "-f", path], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


def ssh_fingerprint(public_line: str) -> str:
    shown = subprocess.run(["ssh-keygen", "-l", "-f", "-"], input=public_line, text=True,
                           capture_output=True, check=True).stdout  # fmt: skip
    return shown.split()[1]


def audited(mn: Cluster, command: str, at_least: int = 1) -> list[tuple[str, str, int]]:
    return mn.audited(command, "user, status, rc", at_least)


def test_a_service_node_enrolls_once_and_its_daemon_serves_with_the_certificate(mn, tmp_path):
    define(mn, "sn1", "127.0.0.1", "52:54:00:00:05:01")
    assert mn.ok("nodeset", "sn1", f"osimage={SERVICE_IMAGE}") == (
        "sn1: netboot debian12-x86_64-service\n"
    )
    cmdline = boot_command_line(mn, "sn1", tmp_path)
    assert f"XCATCA=sha256:{mn.ca_fingerprint}" in cmdline.read_text().split()
    sn = service_node(tmp_path, "sn1")

    result = enroll(sn, cmdline)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"sn1: enrolled with xcatd at 127.0.0.1:{mn.port}; credentials in {sn.root}/etc/xcat/pki\n"
    )
    pki = sn.root / "etc/xcat/pki"
    certificate = x509.load_pem_x509_certificate((pki / "server.pem").read_bytes())
    assert (name_of(certificate), role_of(certificate)) == ("sn1", "servicenode")
    assert (pki / "server.key").stat().st_mode & 0o777 == 0o600
    assert (pki / "ca.pem").read_bytes() == (mn.root / "etc/xcat/pki/ca.pem").read_bytes()
    config = Config.load(sn.root / "etc/xcat/xcatd.toml")
    assert (config.hostname, config.role, config.port) == ("sn1", "servicenode", sn.port)
    # SSH: its host key certified for its name and address, its root's key for root.
    host = ssh_certificate(sn.root / "etc/ssh/ssh_host_ed25519_key-cert.pub")
    assert "host certificate" in host and "Principals: \n                sn1\n" \
        "                127.0.0.1\n" in host  # fmt: skip
    user = ssh_certificate(sn.root / ".ssh/id_ed25519-cert.pub")
    assert "user certificate" in user and "Principals: \n                root\n" in user
    ca_line = (mn.root / "etc/xcat/pki/ssh_ca.pub").read_text().split()
    assert f"Signing CA: ED25519 {ssh_fingerprint(' '.join(ca_line))}" in host
    assert (sn.root / ".ssh/id_ed25519").stat().st_mode & 0o777 == 0o600

    # Once only: the enrollment is used up, and a second one is refused.
    again = enroll(sn, cmdline)
    assert again.returncode == 1
    assert again.stderr == (
        f"Error: xcatd at 127.0.0.1:{mn.port} refused to enroll sn1: no enrollment is armed "
        "for sn1: run nodeset sn1 osimage=<service image>\n"
    )
    assert audited(mn, "enroll", 2) == [("sn1", "allowed", 0), ("sn1", "refused", 1)]

    # The service node's daemon starts with its certificate; the MN's root reaches it.
    sn.start()
    try:
        as_root = {**sn.env, "XCAT_CRED_DIR": str(mn.cred_dir)}
        shown = sn.run("lsxcatd", "-t", env=as_root)
        assert (shown.returncode, shown.stdout) == (0, "This is a Service Node\n"), shown.stderr
    finally:
        sn.stop()
    assert mn.xcatd("revoke", "sn1").stdout == "Revoked 1 certificate issued to sn1\n"


def test_an_enrollment_from_another_address_is_refused_and_stays_armed(mn, tmp_path):
    define(mn, "sn2", "127.0.0.2", "52:54:00:00:05:02")
    mn.ok("nodeset", "sn2", f"osimage={SERVICE_IMAGE}")
    sn = service_node(tmp_path, "sn2")
    result = enroll(sn, boot_command_line(mn, "sn2", tmp_path))  # from 127.0.0.1
    assert result.returncode == 1
    assert result.stderr.endswith(
        "enroll for sn2 came from 127.0.0.1, not from its address 127.0.0.2\n"
    )
    assert not (sn.root / "etc/xcat/pki").exists()
    # A stranger's attempt does not use the node's enrollment up.
    mn.ok("chdef", "sn2", "ip=127.0.0.1")
    assert enroll(sn, boot_command_line(mn, "sn2", tmp_path)).returncode == 0
    assert audited(mn, "enroll", 2) == [("sn2", "refused", 1), ("sn2", "allowed", 0)]


def test_an_enrollment_after_its_window_is_refused(mn, tmp_path):
    mn.ok("chdef", "-t", "site", "enrollwindow=0")
    try:
        define(mn, "sn3", "127.0.0.1", "52:54:00:00:05:03")
        mn.ok("nodeset", "sn3", f"osimage={SERVICE_IMAGE}")
        result = enroll(service_node(tmp_path, "sn3"), boot_command_line(mn, "sn3", tmp_path))
    finally:
        mn.ok("chdef", "-t", "site", "enrollwindow=")
    assert result.returncode == 1
    assert "refused to enroll sn3: the enrollment of sn3 expired at " in result.stderr
    assert result.stderr.endswith(": run nodeset sn3 osimage=<service image> again\n")


def test_a_compute_image_arms_no_enrollment(mn, tmp_path):
    make_image(mn, "compute-image")  # no xcatd in it
    define(mn, "cn1", "127.0.0.1", "52:54:00:00:05:04")
    mn.ok("nodeset", "cn1", "osimage=compute-image")
    result = enroll(service_node(tmp_path, "cn1"), boot_command_line(mn, "cn1", tmp_path))
    assert result.returncode == 1
    assert "no enrollment is armed for cn1" in result.stderr


def test_a_node_trusts_no_server_but_the_ca_it_was_booted_with(mn, tmp_path):
    define(mn, "sn4", "127.0.0.1", "52:54:00:00:05:05")
    mn.ok("nodeset", "sn4", f"osimage={SERVICE_IMAGE}")
    cmdline = boot_command_line(mn, "sn4", tmp_path)
    forged = cmdline.read_text().replace(mn.ca_fingerprint, "ab" * 32)
    cmdline.write_text(forged)
    sn = service_node(tmp_path, "sn4")
    result = enroll(sn, cmdline)
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: xcatd at 127.0.0.1:{mn.port} is not certified by the cluster CA this node was "
        "booted to trust (XCATCA): refusing its certificate\n"
    )
    assert not (sn.root / "etc/xcat/pki").exists()


@pytest.mark.parametrize(
    ("cmdline", "why"),
    [
        ("quiet NODE=sn1", "the kernel command line has no XCAT, XCATCA=: boot the node after "
                           "nodeset <node> osimage=<service image>"),
        ("XCAT=mn:3001 XCATCA=md5:00 NODE=sn1", "XCAT=mn:3001 XCATCA=md5:00 are not "
         "<host>:<port> and sha256:<64 hex digits>: run nodeset for this node again"),
        (f"XCAT=mn XCATCA=sha256:{'00' * 32} NODE=sn1", "are not <host>:<port>"),
    ],
)  # fmt: skip
def test_a_command_line_without_what_enrolling_needs_says_so(tmp_path, cmdline, why):
    path = tmp_path / "cmdline"
    path.write_text(cmdline)
    result = enroll(service_node(tmp_path, "sn9"), path)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ") and why in result.stderr


def test_enroll_is_only_for_connections_without_a_certificate(mn):
    connection = connect(mn)
    try:
        request_id = connection.request("enroll", ["sn1"], stdin=b"not a CSR", user="root")
        assert outcome(connection, request_id) == (
            ["Error: enroll is for nodes without credentials; this connection has a certificate"],
            1,
        )
    finally:
        connection.close()
