"""`xcatd bundle`: the service node's xcatd, as wheels an image installs offline."""

from __future__ import annotations

import subprocess

from .cluster import Cluster


def test_the_bundle_installs_a_working_xcatd_without_the_network(tmp_path):
    cluster = Cluster(tmp_path / "c")
    wheels = tmp_path / "otherpkgs/xcat/wheels"
    result = cluster.xcatd("bundle", str(wheels))
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(f"wheels for Python 3.11 on x86_64 in {wheels}\n")
    names = {p.name.split("-")[0] for p in wheels.glob("*.whl")}
    assert {"xcatd", "trio", "msgpack", "cryptography", "sqlite_utils", "pycdlib"} <= names

    # As genimage will in the image: a venv from Debian's Python, no index.
    venv = tmp_path / "opt-xcat"
    subprocess.run(["/usr/bin/python3", "-m", "venv", venv], check=True)
    installed = subprocess.run(
        [venv / "bin/pip", "install", "-q", "--no-index", "--find-links", wheels, "xcatd"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    version = subprocess.run([venv / "bin/xcatd", "--version"], capture_output=True, text=True)
    assert version.stdout == "xcatd 0.1.0\n"


def test_the_bundle_is_for_the_images_architecture(tmp_path):
    wheels = tmp_path / "wheels"
    result = Cluster(tmp_path / "c").xcatd("bundle", "--arch", "aarch64", str(wheels))
    assert result.returncode == 0, result.stderr
    compiled = [p.name for p in wheels.glob("*.whl") if not p.name.endswith("-any.whl")]
    assert compiled and all("aarch64" in name for name in compiled)


def test_an_unknown_architecture_is_refused(tmp_path):
    result = Cluster(tmp_path / "c").xcatd("bundle", "--arch", "sparc", str(tmp_path / "w"))
    assert (result.returncode, result.stderr) == (
        1,
        "Error: unknown architecture 'sparc': use one of aarch64, ppc64le, x86_64\n",
    )
