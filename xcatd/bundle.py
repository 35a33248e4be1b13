"""`xcatd bundle DIR`: this project and everything it needs, as wheels.

The analog of copying xcat-core and xcat-dep into an osimage's otherpkgdir:
genimage installs the service node's xcatd from these wheels, inside the
image, with the image's own Python and no network.  The wheels are chosen
for the image's Python version and architecture, not the host's.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .admin import AdminError

ARCHES = {"x86_64", "aarch64", "ppc64le"}
# The manylinux tags a Debian 12 or RHEL 9 image can load.
MANYLINUX = ("manylinux2014", "manylinux_2_17", "manylinux_2_28", "manylinux_2_34")


def source_tree() -> Path:
    """The checkout this xcatd runs from: a wheel is built from its source."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise AdminError(f"xcatd's source (pyproject.toml) is not beside {root / 'xcatd'}")
    return root


def bundle(out: Path, python_version: str, arch: str) -> list[Path]:
    """Fill `out` with xcatd's wheel and its dependencies' wheels; the wheels there."""
    if arch not in ARCHES:
        raise AdminError(f"unknown architecture '{arch}': use one of {', '.join(sorted(ARCHES))}")
    out.mkdir(parents=True, exist_ok=True)
    _pip("wheel", "--no-deps", "--wheel-dir", str(out), str(source_tree()))
    (own,) = sorted(out.glob("xcatd-*.whl"))[-1:]
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


def _pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise AdminError(f"pip {args[0]} failed: {last}")
