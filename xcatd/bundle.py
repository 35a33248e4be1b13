"""`xcatd bundle DIR`: this project and everything it needs, as wheels.

The analog of copying xcat-core and xcat-dep into an osimage's otherpkgdir:
genimage installs the service node's xcatd from these wheels, inside the
image, with the image's own Python and no network.  The dependencies'
wheels are chosen for the image's Python version and architecture, not the
host's.

xcatd's own wheel holds the code this xcatd runs.  Run from a checkout (or
an editable install of one), it is built from that source, as it is now.
Run from a regular install, it is the installed distribution packed back
into the wheel it came from: the files its RECORD lists, each checked
against the hash recorded when it was installed, with the same .dist-info
(METADATA, WHEEL with its tag, entry_points.txt).  That needs neither the
source nor the network nor a build backend, and works however xcatd was
installed (from a wheel, an sdist or `pip install .`); a file changed since
it was installed is refused rather than shipped under that version.  The
console scripts are not in it, as in any wheel: pip makes them from
entry_points.txt when it installs the wheel.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import subprocess
import sys
import zipfile
from importlib.metadata import Distribution, PackageNotFoundError, PackagePath, distribution
from pathlib import Path

from . import __version__
from .admin import AdminError

ARCHES = {"x86_64", "aarch64", "ppc64le"}
# The manylinux tags a Debian 12 or RHEL 9 image can load.
MANYLINUX = ("manylinux2014", "manylinux_2_17", "manylinux_2_28", "manylinux_2_34")
PACKAGE = Path(__file__).resolve().parent
# What an installer adds to a .dist-info; not part of the wheel it installed.
INSTALLER_FILES = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed: the same install always gives the same wheel


def bundle(out: Path, python_version: str, arch: str) -> list[Path]:
    """Fill `out` with xcatd's wheel and its dependencies' wheels; the wheels there."""
    if arch not in ARCHES:
        raise AdminError(f"unknown architecture '{arch}': use one of {', '.join(sorted(ARCHES))}")
    out.mkdir(parents=True, exist_ok=True)
    own = own_wheel(out)
    platforms = [arg for tag in MANYLINUX for arg in ("--platform", f"{tag}_{arch}")]
    _pip(
        "download",
        "--only-binary=:all:",
        "--python-version", python_version,
        "--implementation", "cp",
        *platforms,
        "--dest", str(out),
        str(own),
    )  # fmt: skip
    return sorted(out.glob("*.whl"))


def own_wheel(out: Path) -> Path:
    """xcatd's wheel, written into `out`: from the source beside this
    package when there is one, else from the installed distribution."""
    source = PACKAGE.parent
    if (source / "pyproject.toml").is_file():
        _pip("wheel", "--no-deps", "--wheel-dir", str(out), str(source))
        return next(out.glob(f"xcatd-{__version__}-*.whl"))
    return installed_wheel(_installed(), out)


def _installed() -> Distribution:
    """The distribution whose files this xcatd runs from."""
    try:
        installed = distribution("xcatd")
    except PackageNotFoundError:
        raise AdminError(
            f"xcatd at {PACKAGE} is neither a source checkout (no pyproject.toml beside it) nor "
            "an installed distribution: install it with pip"
        ) from None
    if Path(str(installed.locate_file("xcatd/__init__.py"))).resolve() != PACKAGE / "__init__.py":
        raise AdminError(
            f"the installed xcatd distribution ({installed.locate_file('')}) is not the xcatd "
            f"running from {PACKAGE}: run the xcatd of that installation"
        )
    return installed


def installed_wheel(installed: Distribution, out: Path) -> Path:
    """The wheel `installed` was installed from, rebuilt from its files into
    `out` (see the module's docstring); its path."""
    members = [path for path in installed.files or () if _in_wheel(path)]
    info = next((p.parent for p in members if p.name == "METADATA"), None)
    if info is None or not installed.read_text("WHEEL"):
        raise AdminError(
            f"xcatd's installation in {installed.locate_file('')} has no RECORD, METADATA or "
            "WHEEL: reinstall it with pip"
        )
    name = info.name.removesuffix(".dist-info")  # name-version, as the installer wrote it
    wheel = out / f"{name}-{_tag(installed)}.whl"
    partial = wheel.with_name(f".{wheel.name}.partial")
    members.sort(key=lambda path: (path.parent == info, str(path)))  # .dist-info last
    try:
        _write_wheel(installed, members, info, partial)
        partial.replace(wheel)
    finally:
        partial.unlink(missing_ok=True)
    return wheel


def _in_wheel(path: PackagePath) -> bool:
    """Whether an installed file came from the wheel: not the console scripts
    (outside site-packages), the bytecode compiled at install, or what the
    installer wrote into the .dist-info."""
    if path.parts[0] == ".." or "__pycache__" in path.parts:
        return False
    return not (path.parent.name.endswith(".dist-info") and path.name in INSTALLER_FILES)


def _tag(installed: Distribution) -> str:
    """The wheel's compatibility tag, from its WHEEL file (py3-none-any)."""
    tags = [
        line.partition(":")[2].strip()
        for line in (installed.read_text("WHEEL") or "").splitlines()
        if line.startswith("Tag:")
    ]
    parts = [sorted({tag.split("-")[i] for tag in tags}) for i in range(3)]
    if not tags or not all(parts):
        raise AdminError(f"xcatd's WHEEL in {installed.locate_file('')} names no tag: reinstall it")
    return "-".join(".".join(part) for part in parts)


def _write_wheel(
    installed: Distribution, members: list[PackagePath], info: PackagePath, wheel: Path
) -> None:
    """A zip of `members`, each checked against its recorded hash, with a new RECORD."""
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    with zipfile.ZipFile(wheel, "w") as archive:
        for member in members:
            data, mode = _checked(installed, member)
            _add(archive, member.as_posix(), data, mode)
            writer.writerow([member.as_posix(), f"sha256={_digest(data)}", len(data)])
        writer.writerow([f"{info.as_posix()}/RECORD", "", ""])
        _add(archive, f"{info.as_posix()}/RECORD", record.getvalue().encode(), 0o644)


def _add(archive: zipfile.ZipFile, name: str, data: bytes, mode: int) -> None:
    """A regular file with its permission bits (pip keeps the executable
    bit) and a fixed time."""
    entry = zipfile.ZipInfo(name, ZIP_TIME)
    entry.external_attr = (0o100000 | mode) << 16
    entry.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(entry, data)


def _checked(installed: Distribution, member: PackagePath) -> tuple[bytes, int]:
    """An installed file's contents and permission bits, once they are known
    to be what was installed."""
    path = Path(str(installed.locate_file(member)))
    try:
        data = path.read_bytes()
        mode = os.stat(path).st_mode & 0o777
    except OSError as exc:
        raise AdminError(
            f"cannot read xcatd's installed file {path}: {exc.strerror}; reinstall xcatd"
        ) from None
    if member.hash is None or member.hash.mode != "sha256" or member.hash.value != _digest(data):
        raise AdminError(
            f"xcatd's installed file {path} is not what was installed (its RECORD hash differs): "
            "reinstall xcatd (pip install --force-reinstall) before bundling it"
        )
    return data, mode


def _digest(data: bytes) -> str:
    """A file's hash as RECORD writes it: urlsafe base64 of SHA-256, unpadded."""
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise AdminError(f"pip {args[0]} failed: {last}")
