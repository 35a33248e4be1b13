"""Python packages in an image, from wheels: how a service node gets xcatd.

An otherpkglist entry whose directory holds wheels (`xcat/wheels/xcatd`,
filled by `xcatd bundle`) names a Python package, not a distribution one:
genimage installs it into a virtual environment at /opt/xcat in the image,
with the image's own python3 and no network — the analog of xCAT's xCATsn
from xcat-core.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ..osimage import VENV
from . import pkglist
from .chroot import Namespace
from .common import BuildError, Output, image_env


def split(
    other: pkglist.PackageList, directory_of: Callable[[str], Path]
) -> tuple[pkglist.PackageList, list[tuple[Path, str]]]:
    """The otherpkglist without its wheel entries, and those entries as
    (directory, package name)."""
    wheels: list[tuple[Path, str]] = []
    passes = []
    for step in other.passes:
        kept = []
        for entry in step.install:
            directory = directory_of(entry)
            if any(directory.glob("*.whl")):
                wheels.append((directory, pkglist.other_package(entry)[1]))
            else:
                kept.append(entry)
        passes.append(replace(step, install=kept))
    return replace(other, passes=passes), wheels


async def install(root: Path, wheels: list[tuple[Path, str]], output: Output) -> None:
    """Install the packages into the image's /opt/xcat virtual environment."""
    directories = list(dict.fromkeys(directory for directory, _ in wheels))
    names = [name for _, name in wheels]
    if not (root / "usr/bin/python3").exists():
        raise BuildError(
            f"{' '.join(names)} needs python3 in the image: add python3 and python3-venv "
            "to its pkglist"
        )
    ns = Namespace(root, directories)
    if not (root / VENV.lstrip("/") / "bin/python").exists():
        await output.phase(f"Creating the Python environment {VENV} in the image")
        if await output.run(["python3", "-m", "venv", VENV], ns, "chroot", image_env()) != 0:
            raise BuildError(
                f"python3 -m venv {VENV} failed in the image: add python3-venv to its pkglist"
            )
    await output.phase(f"Installing {' '.join(names)} into {VENV} from wheels")
    links = [arg for directory in directories for arg in ("--find-links", str(directory))]
    command = [f"{VENV}/bin/pip", "install", "--no-index", "--upgrade", *links, *names]
    # The daemon's own pip settings (PIP_FIND_LINKS, an index) are not the image's.
    status = await output.run(command, ns, "chroot", image_env())
    if status != 0:
        raise BuildError(
            f"installing {' '.join(names)} into {VENV} from {', '.join(map(str, directories))} "
            f"failed (pip exit {status})"
        )
