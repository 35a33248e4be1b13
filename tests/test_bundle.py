"""`xcatd bundle`: the service node's xcatd, as wheels an image installs offline."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

from xcatd.images.build.bootunits import DAEMON, SHIPPED
from xcatd.images.shipped import SHARE

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


def venv_of(where: Path) -> Path:
    """A fresh virtual environment of Debian's Python, as genimage makes in an image."""
    subprocess.run(["/usr/bin/python3", "-m", "venv", where], check=True)
    return where


def install_offline(venv: Path, wheels: Path) -> None:
    """xcatd from `wheels` only: no index, no network."""
    installed = subprocess.run(
        [venv / "bin/pip", "install", "-q", "--no-index", "--find-links", wheels, "xcatd"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr


def test_an_installed_xcatd_bundles_itself_and_reads_its_data_without_the_source(tmp_path):
    # xcatd installed the ordinary way (not editable) from the checkout's wheel,
    # its dependencies from the wheels bundled beside it.
    first = tmp_path / "from-checkout"
    assert Cluster(tmp_path / "c").xcatd("bundle", str(first)).returncode == 0
    installed = venv_of(tmp_path / "installed")
    install_offline(installed, first)
    site = next(installed.glob("lib/python3*/site-packages"))
    assert not (site / "pyproject.toml").exists()

    # Its bundle: its own wheel made from the installed files, the dependencies as before.
    wheels = tmp_path / "otherpkgs/xcat/wheels"
    result = subprocess.run([installed / "bin/xcatd", "bundle", str(wheels)],
                            capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(f"wheels for Python 3.11 on x86_64 in {wheels}\n")
    own = wheels / "xcatd-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(first / own.name) as built, zipfile.ZipFile(own) as rebuilt:
        assert sorted(rebuilt.namelist()) == sorted(built.namelist())
        assert rebuilt.read("xcatd/share/systemd/xcatd.service") == (SHIPPED / DAEMON).read_bytes()
    again = tmp_path / "again"
    assert subprocess.run([installed / "bin/xcatd", "bundle", str(again)]).returncode == 0
    assert (again / own.name).read_bytes() == own.read_bytes()  # the same install, the same wheel

    # What the image gets installs offline and finds its data where it is installed.
    image = venv_of(tmp_path / "opt-xcat")
    install_offline(image, wheels)
    rootimg = tmp_path / "rootimg"  # a service node's image, as far as planning its units goes
    (rootimg / "opt/xcat/bin").mkdir(parents=True)
    (rootimg / "opt/xcat/bin/xcatd").touch()
    probe = (
        "import sys; from pathlib import Path; from xcatd.images.build.bootunits import planned; "
        "files, units = planned(Path(sys.argv[1]), ''); "
        "sys.stdout.buffer.write(files['/etc/systemd/system/xcatd.service'][0])"
    )
    read = subprocess.run([image / "bin/python", "-c", probe, rootimg], capture_output=True)
    assert read.stdout == (SHIPPED / DAEMON).read_bytes(), read.stderr
    init = subprocess.run([image / "bin/xcatd", "init", "--root", tmp_path / "root", "--hostname",
                           "mn1"], capture_output=True, text=True)  # fmt: skip
    assert init.returncode == 0, init.stderr
    placed = tmp_path / "root/opt/xcat/share/xcat/netboot/debian/service.pkglist"
    assert placed.read_bytes() == (SHARE / "profiles/debian/service.pkglist").read_bytes()

    # A file changed since it was installed is not shipped as that version.
    unit = site / "xcatd/share/systemd/xcatd.service"
    unit.write_text(unit.read_text().replace("RestartSec=2s", "RestartSec=5s"))
    refused = subprocess.run([installed / "bin/xcatd", "bundle", str(tmp_path / "w")],
                             capture_output=True, text=True)  # fmt: skip
    assert (refused.returncode, refused.stderr) == (
        1,
        f"Error: xcatd's installed file {unit} is not what was installed (its RECORD hash "
        "differs): reinstall xcatd (pip install --force-reinstall) before bundling it\n",
    )
