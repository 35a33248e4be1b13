"""The Debian 12 service image, built once per test session as an
administrator builds it: copycds of a Debian ISO holding everything the
shipped service profile needs, `xcatd bundle` of this project's wheels into
the otherpkgdir, then `genimage debian12-x86_64-netboot-service` through the
real client (about a minute).  Tests that need the image (its checks, the
network boot) share it through the `debian_service_image` fixture
(registered in tests/conftest.py).

The cluster is the management node of an `xcatd lab` (tests/lab.py), as an
administrator evaluating the product has it: two service nodes (sn2's NICs
e1000s, sn1's virtio), one compute node on sn1's compute network, each a
QEMU machine powered off behind its BMC, where the network-boot test boots
them.  Building needs no network (the packages come from the ISO, the wheels
are bundled from outside the lab's namespace).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from xcatd.lab.media import profile_packages

from .cluster import Cluster
from .lab import Lab, lab_up
from .media import debian_tree, iso

SERVICE = "debian12-x86_64-netboot-service"
BUILD_TIMEOUT = 900


@dataclass
class BuiltImage:
    cluster: Cluster  # the lab's management node, with the image's osimage defined
    name: str
    rootimgdir: Path
    otherpkgdir: Path  # xCAT's default for the image: the wheels `xcatd bundle` put in xcat/
    genimage: subprocess.CompletedProcess  # what the client printed
    lab: Lab  # its machines, networks and BMCs

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
    machines = ("--service-nodes", "2", "--compute-nodes", "1", "--nic-model", "sn2=e1000")
    with lab_up(*machines) as lab:
        yield _built(lab.cluster(), disc, lab)


def _built(cluster: Cluster, disc: Path, lab: Lab) -> BuiltImage:
    copied = cluster.run("copycds", str(disc), timeout=300)
    assert copied.returncode == 0, copied.stderr
    installdir = cluster.root.resolve() / "install"
    otherpkgdir = installdir / "post/otherpkgs/debian12/x86_64"
    # Outside the namespace: from PyPI.
    bundled = cluster.xcatd("bundle", str(otherpkgdir / "xcat/wheels"))
    assert bundled.returncode == 0, bundled.stderr
    built = cluster.run("genimage", SERVICE, timeout=BUILD_TIMEOUT)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr
    rootimgdir = installdir / "netboot/debian12/x86_64/service"
    return BuiltImage(cluster, SERVICE, rootimgdir, otherpkgdir, built, lab)
