"""The boot services as the daemon runs them: on by default, each one
switched off in xcatd.toml, and a clear one-line refusal when one cannot run."""

from __future__ import annotations

import socket
import subprocess

from tests.cluster import BIN, Cluster


def serve_once(cluster: Cluster) -> subprocess.CompletedProcess:
    """`xcatd serve` for a daemon expected to refuse to start."""
    return subprocess.run(
        [BIN / "xcatd", "serve", "--root", str(cluster.root)],
        capture_output=True, text=True, timeout=30, env=cluster.env,
    )  # fmt: skip


def set_in_toml(cluster: Cluster, name: str, value: str) -> None:
    config = cluster.root / "etc/xcat/xcatd.toml"
    lines = config.read_text().splitlines()
    config.write_text("\n".join(f"{name} = {value}" if line.startswith(f"{name} =") else line
                                for line in lines) + "\n")  # fmt: skip


def udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def test_all_three_serve_by_default_and_say_so(cluster):
    assert udp_port_taken(cluster.tftp_port)
    socket.create_connection(("127.0.0.1", cluster.http_port), timeout=5).close()
    socket.create_connection(("127.0.0.1", cluster.status_port), timeout=5).close()
    assert (
        f"boot services: TFTP on port {cluster.tftp_port}, HTTP on port {cluster.http_port}, "
        f"status lines on port {cluster.status_port}"
    ) in cluster.logs()


def test_a_service_switched_off_leaves_its_port_alone(tmp_path):
    cluster = Cluster(tmp_path / "cluster")
    assert cluster.init().returncode == 0
    set_in_toml(cluster, "serve_tftp", "false")
    cluster.start()
    try:
        assert not udp_port_taken(cluster.tftp_port)
        assert "boot services: HTTP on port" in cluster.logs()
    finally:
        cluster.stop()


def test_a_port_in_use_is_a_one_line_error(tmp_path):
    cluster = Cluster(tmp_path / "cluster")
    assert cluster.init().returncode == 0
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", cluster.http_port))
        squatter.listen()
        result = serve_once(cluster)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"Error: cannot serve HTTP on 127.0.0.1:{cluster.http_port}: Address already in use; "
        "free the port, or switch the service off in xcatd.toml"
    )


def test_an_installdir_holding_the_daemons_keys_is_never_served(tmp_path):
    cluster = Cluster(tmp_path / "cluster")
    assert cluster.init().returncode == 0
    cluster.start()
    try:
        cluster.ok("chdef", "-t", "site", "-o", "clustersite", f"installdir={cluster.root}")
    finally:
        assert cluster.stop() == 0
    result = serve_once(cluster)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"Error: site installdir={cluster.root} holds {cluster.root.resolve()}/etc/xcat: "
        "TFTP and HTTP would hand it out; give installdir a directory of its own "
        "(chdef -t site installdir=...)"
    )
