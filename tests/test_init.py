"""`xcatd init`, `mkusercert` and `revoke`: a cluster's trust, set up locally."""

from __future__ import annotations

import ipaddress
import stat
import subprocess
import tomllib

from cryptography import x509

from xcatd.ca import name_of, role_of

from .cluster import Cluster


def test_init_creates_everything_under_the_root_and_says_how_to_connect(tmp_path):
    cluster = Cluster(tmp_path / "c")
    result = cluster.init("--http-port", "8080", "--tftp-port", "6969")
    assert result.returncode == 0, result.stderr
    root = cluster.root.resolve()
    assert result.stdout.splitlines() == [
        f"Created the cluster CA in {root}/etc/xcat/pki",
        "Issued the server certificate for mn1",
        f"Wrote root's client credentials to {root}/.xcat",
        f"Wrote root's SSH certificate to {root}/.ssh/id_ed25519-cert.pub",
        f"Wrote {root}/etc/rsyslog.d/xcatd-nodes.conf: the nodes' logs go to "
        f"{root}/var/log/xcat/nodes once rsyslog is restarted (systemctl restart rsyslog)",
        f"Database: {root}/var/lib/xcat/xcat.sqlite",
        "Point the client at this daemon with:",
        f"export XCATHOST=localhost:{cluster.port}",
        f"export XCAT_CRED_DIR={root}/.xcat",
    ]
    for directory in ("etc/xcat", "var/lib/xcat", "install", "tftpboot", ".xcat"):
        assert (root / directory).is_dir()
    config = tomllib.loads((root / "etc/xcat/xcatd.toml").read_text())
    assert config["hostname"] == "mn1"
    assert (config["port"], config["http_port"], config["tftp_port"]) == (cluster.port, 8080, 6969)
    assert config["listen"] == ["127.0.0.1"]


def test_private_keys_are_readable_by_their_owner_only(tmp_path):
    cluster = Cluster(tmp_path / "c")
    cluster.init()
    for secret in ("etc/xcat/pki/ca.key", "etc/xcat/pki/server.key", ".xcat/client-cred.pem",
                   "etc/xcat/pki/ssh_ca", ".ssh/id_ed25519"):  # fmt: skip
        assert stat.S_IMODE((cluster.root / secret).stat().st_mode) == 0o600, secret
    for private_dir in ("etc/xcat/pki", "var/lib/xcat", ".xcat"):
        assert stat.S_IMODE((cluster.root / private_dir).stat().st_mode) == 0o700, private_dir


def test_the_server_certificate_names_the_host_and_loopback(tmp_path):
    cluster = Cluster(tmp_path / "c")
    cluster.init()
    cert = x509.load_pem_x509_certificate((cluster.root / "etc/xcat/pki/server.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"mn1", "localhost"} <= set(names.get_values_for_type(x509.DNSName))
    ips = set(names.get_values_for_type(x509.IPAddress))
    assert {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")} <= ips
    assert (name_of(cert), role_of(cert)) == ("mn1", "master")


def test_running_init_again_keeps_the_ca_and_credentials(tmp_path):
    cluster = Cluster(tmp_path / "c")
    cluster.init()
    ca_before = (cluster.root / "etc/xcat/pki/ca.pem").read_bytes()
    cred_before = (cluster.cred_dir / "client-cred.pem").read_bytes()
    again = cluster.init()
    assert again.returncode == 0
    assert again.stdout.startswith("Keeping the existing cluster CA in")
    assert (cluster.root / "etc/xcat/pki/ca.pem").read_bytes() == ca_before
    assert (cluster.cred_dir / "client-cred.pem").read_bytes() == cred_before


def test_init_force_makes_a_new_ca_and_old_credentials_stop_working(tmp_path):
    cluster = Cluster(tmp_path / "c")
    cluster.init()
    old_creds = tmp_path / "old"
    cluster.cred_dir.rename(old_creds)
    forced = cluster.init("--force")
    assert forced.stdout.startswith("Created the cluster CA")
    cluster.start()
    try:
        assert cluster.run("lsxcatd", "-v").returncode == 0
        stale = cluster.run("lsxcatd", "-v", env={**cluster.env, "XCAT_CRED_DIR": str(old_creds)})
        assert stale.returncode == 1
        assert "is not trusted" in stale.stderr
    finally:
        cluster.stop()


def test_mkusercert_writes_credentials_for_a_service_node(tmp_path):
    cluster = Cluster(tmp_path / "c")
    cluster.init()
    out = tmp_path / "sn01-creds"
    result = cluster.xcatd("mkusercert", "sn01", "--role", "servicenode", "--out", str(out))
    assert result.stdout == f"Credentials for sn01 (servicenode) written to {out}\n"
    cert = x509.load_pem_x509_certificate((out / "client-cred.pem").read_bytes())
    assert (name_of(cert), role_of(cert)) == ("sn01", "servicenode")
    assert (out / "ca.pem").read_bytes() == (cluster.cred_dir / "ca.pem").read_bytes()


def test_mkusercert_for_a_name_with_no_account_needs_out(tmp_path):
    cluster = Cluster(tmp_path / "c")
    cluster.init()
    result = cluster.xcatd("mkusercert", "no-such-account-here")
    assert (result.returncode, result.stderr) == (
        1,
        "Error: there is no local account 'no-such-account-here': give --out DIR\n",
    )


def test_mkusercert_refuses_names_that_are_not_names(tmp_path):
    cluster = Cluster(tmp_path / "c")
    cluster.init()
    result = cluster.xcatd("mkusercert", "../etc", "--out", str(tmp_path / "x"))
    assert result.returncode == 1
    assert result.stderr == "Error: '../etc' is not a usable name: no spaces or slashes\n"


def test_mkusercert_before_init_says_to_run_init(tmp_path):
    cluster = Cluster(tmp_path / "c")
    result = cluster.xcatd("mkusercert", "bob", "--out", str(tmp_path / "bob"))
    assert result.returncode == 1
    assert result.stderr.startswith("Error: no cluster CA in ")
    assert result.stderr.endswith(": run 'xcatd init' first\n")


def test_serve_before_init_says_to_run_init(tmp_path):
    cluster = Cluster(tmp_path / "c")
    result = cluster.xcatd("serve")
    assert result.returncode == 1
    assert result.stderr.endswith("xcatd.toml does not exist: run 'xcatd init' first\n")


def test_init_says_in_one_line_when_it_cannot_place_the_profiles(tmp_path):
    cluster = Cluster(tmp_path / "c")
    blocker = cluster.root / "opt/xcat/share/xcat/netboot"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a directory\n")
    result = cluster.init()
    assert (result.returncode, result.stderr) == (
        1,
        f"Error: cannot place the image profiles in {blocker.resolve()}: Not a directory\n",
    )
    assert not (cluster.root / "etc/xcat/pki/ca.key").exists()  # nothing half-made


def test_init_certifies_roots_ssh_key_and_trusts_the_clusters_ssh_ca_for_hosts(tmp_path):
    cluster = Cluster(tmp_path / "c")
    cluster.init()
    ssh = cluster.root / ".ssh"
    shown = subprocess.run(["ssh-keygen", "-L", "-f", ssh / "id_ed25519-cert.pub"],
                           capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "Type: ssh-ed25519-cert-v01@openssh.com user certificate" in shown
    assert "Principals: \n                root\n" in shown
    ca_line = (cluster.root / "etc/xcat/pki/ssh_ca.pub").read_text().strip()
    assert f"Signing CA: ED25519 {_fingerprint(ca_line)}" in shown
    assert (ssh / "known_hosts").read_text() == f"@cert-authority * {ca_line}\n"
    key = (ssh / "id_ed25519").read_bytes()
    cluster.init()  # again: the key and the trust stay, the certificate is renewed
    assert (ssh / "id_ed25519").read_bytes() == key
    assert (ssh / "known_hosts").read_text() == f"@cert-authority * {ca_line}\n"


def _fingerprint(public_line: str) -> str:
    shown = subprocess.run(["ssh-keygen", "-l", "-f", "-"], input=public_line, text=True,
                           capture_output=True, check=True).stdout  # fmt: skip
    return shown.split()[1]
