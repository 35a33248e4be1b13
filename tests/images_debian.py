"""The Debian 12 service image, built once per test session as an
administrator builds it: copycds of a Debian ISO holding everything the
shipped service profile needs, `xcatd bundle` of this project's wheels into
the otherpkgdir, then `genimage debian12-x86_64-netboot-service` through the
real client (about a minute).  Tests that need the image (its checks, the
network boot) share it through the `debian_service_image` fixture
(registered in tests/conftest.py).

The cluster's daemon runs in a network namespace with a bridge (tests/
netboot.py), where the network-boot test's machines reach it; building
needs no network (the packages come from the ISO, the wheels are bundled
from outside the namespace).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from xcatd.config import Config
from xcatd.lab.media import profile_packages

from .cluster import Cluster
from .media import debian_tree, iso
from .netboot import Network, network

SERVICE = "debian12-x86_64-netboot-service"
BUILD_TIMEOUT = 900


@dataclass
class BuiltImage:
    cluster: Cluster  # running in `network`, with the image's osimage defined
    name: str
    rootimgdir: Path
    genimage: subprocess.CompletedProcess  # what the client printed
    network: Network  # the namespace and bridge the daemon serves on

    @property
    def rootimg(self) -> Path:
        return self.rootimgdir / "rootimg"


def service_packages() -> list[str]:
    """What the shipped service pkglist installs on x86_64."""
    return profile_packages("service")


@pytest.fixture(scope="session")
def debian_service_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltImage]:
    media = tmp_path_factory.mktemp("debian-service-media")
    tree = debian_tree(media, service_packages(), system=True)
    disc = iso(tree, media / "debian-12-amd64.iso", "Debian 12")
    with network(tmp_path_factory.mktemp("service-network")) as net:
        root = tmp_path_factory.mktemp("service-cluster")
        cluster = Cluster(root, address=net.server, prefix=net.prefix)
        # The standard ports, as on every host of a real cluster: what PXE
        # firmware asks (TFTP, whatever DHCP says), and what the service
        # nodes booted from the image serve on and expect of the management
        # node (its image server, the dispatch port).  Free: the namespace is new.
        cluster.tftp_port, cluster.http_port = 69, 80
        cluster.port, cluster.status_port = Config.port, Config.status_port
        initialised = cluster.init()
        assert initialised.returncode == 0, initialised.stderr
        cluster.start()
        try:
            yield _built(cluster, disc, net)
        finally:
            cluster.stop()


def _built(cluster: Cluster, disc: Path, net: Network) -> BuiltImage:
    copied = cluster.run("copycds", str(disc), timeout=300)
    assert copied.returncode == 0, copied.stderr
    installdir = cluster.root.resolve() / "install"
    wheels = installdir / "post/otherpkgs/debian12/x86_64/xcat/wheels"
    bundled = cluster.xcatd("bundle", str(wheels))  # outside the namespace: from PyPI
    assert bundled.returncode == 0, bundled.stderr
    built = cluster.run("genimage", SERVICE, timeout=BUILD_TIMEOUT)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr
    rootimgdir = installdir / "netboot/debian12/x86_64/service"
    return BuiltImage(cluster, SERVICE, rootimgdir, built, net)
