from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import Cluster

# The Debian service image (`debian_service_image`), built once per session
# for the tests that check it and the test that boots it; the console tests'
# terminals (`terminals`); nodes a real sshd serves (`ssh_nodes`).
pytest_plugins = ["tests.images_debian", "tests.sshnode", "tests.terminal"]


def _started(root: Path) -> Iterator[Cluster]:
    cluster = Cluster(root)
    result = cluster.init()
    assert result.returncode == 0, result.stderr
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A freshly initialised cluster with its daemon running, for one test."""
    yield from _started(tmp_path / "cluster")


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One running cluster for a whole module of tests that only read."""
    yield from _started(tmp_path_factory.mktemp("cluster"))


@pytest.fixture(scope="module")
def xcat(shared_cluster: Cluster):
    """Run a client command against the module's cluster; return (rc, stdout, stderr)."""

    def run(command: str, *args: str, stdin: str | None = None):
        result = shared_cluster.run(command, *args, input=stdin)
        return result.returncode, result.stdout, result.stderr

    return run
