"""Bad input: each is refused, says why where the connection still allows, and
the daemon goes on serving a well-behaved client connected at the same time."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import struct
import time

import msgpack
import pytest
import sqlite_utils
from xcat_client.errors import ClientError
from xcat_protocol.framing import encode_frame

from xcatd.ca import CertificateAuthority, cert_pem, key_pem

from .cluster import BIN, Cluster
from .sessions import (
    ask,
    body,
    connect,
    credentials_for,
    key_of,
    mixed_credentials,
    outcome,
    signed,
)
from .waiting import wait_for


@pytest.fixture
def bystander(shared_cluster):
    """A well-behaved client, connected before the misbehaviour starts, that must
    still be served afterwards, as must a brand-new client command."""
    connection = connect(shared_cluster)
    assert ask(connection) == (["Version 0.1.0"], 0)
    yield connection
    assert ask(connection) == (["Version 0.1.0"], 0)
    connection.close()
    assert shared_cluster.run("lsxcatd", "-v").stdout == "Version 0.1.0\n"


def audit_rows(cluster: Cluster) -> list[dict]:
    db = sqlite_utils.Database(cluster.root / "var/lib/xcat/xcat.sqlite")
    try:
        return list(db["audit"].rows_where(order_by="id"))
    finally:
        db.close()


def wait_for_audit(cluster: Cluster, match) -> dict:
    found = wait_for(
        lambda: [row for row in audit_rows(cluster) if match(row)], "a matching audit row", 5
    )
    return found[-1]


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


def test_plain_text_instead_of_tls_is_told_to_use_tls(shared_cluster, bystander):
    with socket.create_connection(("127.0.0.1", shared_cluster.port), timeout=5) as sock:
        sock.sendall(b"lsxcatd -v\n")
        assert read_all(sock) == (
            b"Error: xcatd speaks TLS on this port; use the xCAT client commands\n"
        )


def test_tls_without_a_client_certificate_may_not_send_commands(shared_cluster, bystander):
    context = ssl.create_default_context(cafile=shared_cluster.cred_dir / "ca.pem")
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    raw = socket.create_connection(("127.0.0.1", shared_cluster.port), timeout=5)
    with context.wrap_socket(raw, server_hostname="localhost") as sock:
        sock.sendall(encode_frame(signed(1, key_of(shared_cluster.cred_dir), body()).to_wire()))
        reply = read_frames(sock, until_done=1)
    assert reply[1] == {
        "t": "out",
        "id": 1,
        "kind": "error",
        "text": "'lsxcatd' needs a client certificate: set XCAT_CRED_DIR to a directory "
        "holding ca.pem and client-cred.pem",
    }
    assert reply[-1] == {"t": "done", "id": 1, "rc": 1}


def read_frames(sock: ssl.SSLSocket, until_done: int) -> list[dict]:
    from xcat_protocol.framing import FrameDecoder

    decoder, frames = FrameDecoder(), []
    while not frames or frames[-1] != {"t": "done", "id": until_done, "rc": frames[-1].get("rc")}:
        frames += decoder.messages(sock.recv(65536))
    return frames


def test_a_certificate_from_another_ca_is_refused(shared_cluster, bystander, tmp_path):
    stranger = Cluster(tmp_path / "elsewhere")
    assert stranger.init().returncode == 0
    creds = mixed_credentials(shared_cluster.cred_dir, stranger.cred_dir, tmp_path / "mixed")
    result = shared_cluster.run(
        "lsxcatd", "-v", env={**shared_cluster.env, "XCAT_CRED_DIR": str(creds)}
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: xcatd at {shared_cluster.address}:{shared_cluster.port} refused our certificate "
        f"{creds}/client-cred.pem: it is not from this cluster's CA\n"
    )


def test_a_server_from_another_ca_is_not_trusted(shared_cluster, tmp_path):
    stranger = Cluster(tmp_path / "elsewhere")
    assert stranger.init().returncode == 0
    env = {**shared_cluster.env, "XCAT_CRED_DIR": str(stranger.cred_dir)}
    result = shared_cluster.run("lsxcatd", "-v", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"Error: the server at {shared_cluster.address}:{shared_cluster.port} is not trusted: "
        f"its certificate is not from the cluster CA in {stranger.cred_dir}/ca.pem"
    )


def test_an_expired_certificate_is_refused(shared_cluster, bystander, tmp_path):
    ca = CertificateAuthority(shared_cluster.root / "etc/xcat/pki")
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    issued = ca.issue("root", "user", days=1, not_before=long_ago)
    creds = tmp_path / "expired"
    creds.mkdir()
    (creds / "ca.pem").write_bytes(cert_pem(ca.cert))
    (creds / "client-cred.pem").write_bytes(cert_pem(issued.cert) + key_pem(issued.key))
    result = shared_cluster.run(
        "lsxcatd", "-v", env={**shared_cluster.env, "XCAT_CRED_DIR": str(creds)}
    )
    assert result.returncode == 1
    expiry = (long_ago + dt.timedelta(days=1)).strftime("%Y-%m-%d")
    assert result.stderr.endswith(
        f"client-cred.pem: it expired on {expiry}; ask for a new one (xcatd mkusercert)\n"
    )


def test_a_revoked_certificate_is_refused_at_once_even_on_an_open_connection(
    shared_cluster, bystander, tmp_path
):
    creds = credentials_for(shared_cluster, "sn1", "servicenode", tmp_path / "sn1")
    connection = connect(shared_cluster, creds)
    assert ask(connection) == (["Version 0.1.0"], 0)

    revoked = shared_cluster.xcatd("revoke", "sn1")
    assert revoked.stdout == "Revoked 1 certificate issued to sn1\n"

    assert ask(connection) == (["Error: the certificate of 'sn1' has been revoked"], 1)
    result = shared_cluster.run(
        "lsxcatd", "-v", env={**shared_cluster.env, "XCAT_CRED_DIR": str(creds)}
    )
    assert (result.returncode, result.stderr) == (
        1,
        "Error: the certificate of 'sn1' has been revoked\n",
    )


def test_revoking_a_name_with_no_certificate_says_so(shared_cluster):
    result = shared_cluster.xcatd("revoke", "nobody")
    assert (result.returncode, result.stderr) == (
        1,
        "Error: no valid certificate was issued to 'nobody'\n",
    )


def test_a_signature_that_does_not_match_the_body_is_refused(shared_cluster, bystander):
    connection = connect(shared_cluster)
    genuine = signed(7, key_of(shared_cluster.cred_dir), body())
    connection.send(genuine._replace(body=body("lsxcatd", "-a")))
    assert outcome(connection, 7) == (["Error: request signature does not match its body"], 1)


def test_the_same_signed_request_sent_twice_is_refused_the_second_time(shared_cluster, bystander):
    connection = connect(shared_cluster)
    request = signed(1, key_of(shared_cluster.cred_dir), body())
    connection.send(request)
    assert outcome(connection, 1) == (["Version 0.1.0"], 0)
    connection.send(request._replace(id=2))
    assert outcome(connection, 2) == (
        ["Error: request refused: it was already received once (replay)"],
        1,
    )
    # ...also from another connection.
    other = connect(shared_cluster)
    other.send(request)
    assert outcome(other, 1)[1] == 1


def test_a_timestamp_outside_the_window_is_refused(shared_cluster, bystander):
    connection = connect(shared_cluster)
    ten_minutes_ago = int((time.time() - 600) * 1000)
    connection.send(signed(1, key_of(shared_cluster.cred_dir), body(ts=ten_minutes_ago)))
    (line,), rc = outcome(connection, 1)
    assert rc == 1
    assert line.startswith("Error: request timestamp is -600 s from the server's clock")
    assert line.endswith("outside the ±120 s window: check the clocks")


def test_a_frame_over_the_size_limit_closes_the_connection_with_an_error(shared_cluster, bystander):
    connection = connect(shared_cluster)
    connection.sock.sendall(struct.pack(">I", 16 * 1024 * 1024 + 1) + b"\0" * 65536)
    with pytest.raises(
        ClientError, match="frame of 16777217 bytes is over the 16777216-byte limit"
    ):
        connection.receive()
    with pytest.raises(ClientError, match="closed the connection"):
        connection.receive()


def test_malformed_messagepack_closes_the_connection_with_an_error(shared_cluster, bystander):
    connection = connect(shared_cluster)
    connection.sock.sendall(struct.pack(">I", 3) + b"\xc1\xc1\xc1")
    with pytest.raises(ClientError, match="malformed MessagePack in frame"):
        connection.receive()


def test_a_request_missing_keys_closes_the_connection_with_an_error(shared_cluster, bystander):
    connection = connect(shared_cluster)
    payload = msgpack.packb({"t": "req", "id": 1})
    connection.sock.sendall(struct.pack(">I", len(payload)) + payload)
    with pytest.raises(ClientError, match="'req' message is missing 'body'"):
        connection.receive()


def test_a_request_body_of_the_wrong_types_is_refused(shared_cluster, bystander):
    connection = connect(shared_cluster)
    bad = msgpack.packb({"cmd": "lsxcatd", "args": "-v", "user": "x", "ts": 1, "nonce": b"n" * 16})
    connection.send(signed(1, key_of(shared_cluster.cred_dir), bad))
    assert outcome(connection, 1) == (
        ["Error: malformed request: request body has a bad 'args': expected a list of strings"],
        1,
    )


def test_an_unknown_command_is_named(shared_cluster, bystander, tmp_path):
    # Any name the client is started as is sent as the command, as with xCAT's
    # symlinks to xcatclient.
    (tmp_path / "nosuchcmd").symlink_to(BIN / "lsxcatd")
    result = shared_cluster.run(str(tmp_path / "nosuchcmd"), "-x")
    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        "Error: Unknown command nosuchcmd\n",
    )


def test_a_request_refused_by_policy_is_denied_and_audited(shared_cluster, bystander, tmp_path):
    alice = credentials_for(shared_cluster, "alice", "user", tmp_path / "alice")
    result = shared_cluster.run(
        "lsxcatd", "-v", env={**shared_cluster.env, "XCAT_CRED_DIR": str(alice)}
    )
    assert (result.returncode, result.stderr) == (1, "Error: Permission denied for request\n")
    row = wait_for_audit(shared_cluster, lambda r: r["user"] == "alice")
    assert (row["command"], row["status"], row["rc"]) == ("lsxcatd", "denied", 1)


def test_a_service_node_may_relay_a_users_request_and_the_user_is_audited(
    shared_cluster, bystander, tmp_path
):
    sn = connect(
        shared_cluster, credentials_for(shared_cluster, "sn2", "servicenode", tmp_path / "sn")
    )
    root_cert = (shared_cluster.cred_dir / "client-cred.pem").read_bytes()
    chain = [_der(root_cert)]
    sn.send(signed(1, key_of(shared_cluster.cred_dir), body("lsxcatd", "-t"), chain))
    assert outcome(sn, 1) == (["This is a Management Node"], 0)
    row = wait_for_audit(shared_cluster, lambda r: r["args"] == '["-t"]' and "via" in r["peer"])
    assert row["user"] == "root"
    assert row["peer"].endswith(" via sn2")


def test_a_plain_user_may_not_relay_someone_elses_request(shared_cluster, bystander, tmp_path):
    bob = connect(shared_cluster, credentials_for(shared_cluster, "bob", "user", tmp_path / "bob"))
    chain = [_der((shared_cluster.cred_dir / "client-cred.pem").read_bytes())]
    bob.send(signed(1, key_of(shared_cluster.cred_dir), body(), chain))
    assert outcome(bob, 1) == (["Error: 'bob' may not relay requests signed by 'root'"], 1)


def test_a_relay_cannot_forge_a_users_request(shared_cluster, bystander, tmp_path):
    sn_creds = credentials_for(shared_cluster, "sn3", "servicenode", tmp_path / "sn")
    sn = connect(shared_cluster, sn_creds)
    chain = [_der((shared_cluster.cred_dir / "client-cred.pem").read_bytes())]
    sn.send(signed(1, key_of(sn_creds), body(), chain))  # signed with its own key
    assert outcome(sn, 1) == (["Error: request signature does not match its body"], 1)


def test_secrets_in_arguments_are_masked_in_the_audit(shared_cluster, bystander):
    result = shared_cluster.run("lsxcatd", "-v", "bmcpassword=hunter2")
    assert result.returncode == 1
    row = wait_for_audit(shared_cluster, lambda r: "bmcpassword" in r["args"])
    assert row["args"] == '["-v", "bmcpassword=******"]'
    assert "hunter2" not in str(audit_rows(shared_cluster))


def test_a_thousand_connections_opened_and_dropped_leave_the_daemon_serving(
    shared_cluster, bystander
):
    before = open_connections(shared_cluster)
    assert before is not None
    for n in range(1000):
        sock = socket.create_connection(("127.0.0.1", shared_cluster.port), timeout=5)
        if n % 2:
            sock.sendall(b"\x16\x03\x01\x02\x00\x01")  # the start of a TLS hello
        sock.close()
    # Until the daemon has closed them, this address's turns may still be taken:
    # a command turned away then is asked again, not counted.
    wait_for(
        lambda: (now := open_connections(shared_cluster)) is not None and now <= before,
        "the dropped connections freed",
        10,
        interval=0.1,
    )


def open_connections(cluster: Cluster) -> int | None:
    """What `lsxcatd -a` reports, less the connection asking; None when it was turned away."""
    result = cluster.run("lsxcatd", "-a", "--json")
    if result.returncode != 0:
        return None
    return json.loads(result.stdout)["connections"] - 1


def _der(pem_bundle: bytes) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    return x509.load_pem_x509_certificate(pem_bundle).public_bytes(Encoding.DER)
