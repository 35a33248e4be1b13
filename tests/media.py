"""Realistic distribution media, built by the tests from real packages.

Debian: real .deb files fetched with the host's own apt configuration (no
mirror is named anywhere), indexed with apt-ftparchive, with .disk/info and
dists/bookworm/Release as on Debian's own media, and an ISO made by xorriso.
Red Hat family: small RPMs built with rpmbuild, indexed by createrepo_c,
with .discinfo and .treeinfo as on Rocky Linux's media.

Downloads are cached in CACHE between runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

CACHE = Path(os.environ.get("XCATD_TEST_CACHE", "/var/cache/xcatd-tests"))
DEBIAN_RELEASE = "12"
DEBIAN_CODENAME = "bookworm"


def run(*command: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=900
    )
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {result.stderr.strip()[-2000:]}")
    return result.stdout


def debian_packages(names: list[str]) -> list[Path]:
    """The .deb files of `names` (no dependencies), downloaded once into the cache."""
    debs = CACHE / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    missing = [n for n in names if not list(debs.glob(f"{n}_*.deb"))]
    if missing:
        if "Candidate: (none)" in run("apt-cache", "policy", missing[0]) or not run(
            "apt-cache", "policy", missing[0]
        ):
            run("apt-get", "update", "-qq")
        run("apt-get", "download", "-qq", *missing, cwd=debs)
    return [next(debs.glob(f"{n}_*.deb")) for n in names]


def debian_tree(where: Path, packages: list[str], arch: str = "amd64") -> Path:
    """A Debian media tree holding `packages`."""
    tree = where / f"debian-{DEBIAN_RELEASE}-{arch}"
    pool = tree / "pool/main"
    pool.mkdir(parents=True)
    for deb in debian_packages(packages):
        shutil.copy(deb, pool / deb.name)
    (tree / ".disk").mkdir()
    (tree / ".disk/info").write_text(
        f'Debian GNU/Linux {DEBIAN_RELEASE}.5.0 "Bookworm" - xcatd test {arch} Binary-1 '
        "20240210-11:28\n"
    )
    binary = tree / f"dists/{DEBIAN_CODENAME}/main/binary-{arch}"
    binary.mkdir(parents=True)
    (binary / "Packages").write_text(run("apt-ftparchive", "packages", "pool", cwd=tree))
    run("gzip", "-k9", binary / "Packages")
    release = run(
        "apt-ftparchive",
        "-o", "APT::FTPArchive::Release::Origin=Debian",
        "-o", "APT::FTPArchive::Release::Label=Debian",
        "-o", f"APT::FTPArchive::Release::Version={DEBIAN_RELEASE}.5",
        "-o", f"APT::FTPArchive::Release::Codename={DEBIAN_CODENAME}",
        "-o", "APT::FTPArchive::Release::Suite=stable",
        "-o", f"APT::FTPArchive::Release::Architectures={arch}",
        "-o", "APT::FTPArchive::Release::Components=main",
        "release", f"dists/{DEBIAN_CODENAME}",
        cwd=tree,
    )  # fmt: skip
    (tree / f"dists/{DEBIAN_CODENAME}/Release").write_text(release)
    (tree / "debian").symlink_to(".")  # as on Debian's media
    return tree


def iso(tree: Path, output: Path, label: str) -> Path:
    run("xorriso", "-as", "mkisofs", "-r", "-J", "-V", label, "-o", output, tree)
    return output


def redhat_tree(where: Path, product: str = "Rocky Linux", version: str = "9.4") -> Path:
    """A Red Hat family media tree with a repository of small RPMs."""
    tree = where / f"{product.split()[0].lower()}-{version}-x86_64"
    packages = tree / "BaseOS/Packages"
    packages.mkdir(parents=True)
    build = where / "rpmbuild"
    for name, requires in (("xcat-test-base", ""), ("xcat-test-tools", "xcat-test-base")):
        spec = build / f"{name}.spec"
        spec.parent.mkdir(parents=True, exist_ok=True)
        spec.write_text(_spec(name, requires))
        run(
            "rpmbuild", "-bb", "--quiet", "--nodeps",
            "--define", f"_topdir {build}", "--define", f"_rpmdir {build}/out", spec,
        )  # fmt: skip
    for rpm in (build / "out").rglob("*.rpm"):
        shutil.copy(rpm, packages / rpm.name)
    run("createrepo_c", "-q", tree / "BaseOS")
    (tree / ".discinfo").write_text(f"1716800000.000000\n{product} {version}\nx86_64\n1\n")
    (tree / ".treeinfo").write_text(
        f"[general]\nfamily = {product}\nversion = {version}\narch = x86_64\n\n"
        f"[release]\nname = {product}\nshort = {product.split()[0]}\nversion = {version}\n\n"
        "[tree]\narch = x86_64\nplatforms = x86_64\n"
    )
    return tree


def _spec(name: str, requires: str) -> str:
    return (
        f"Name: {name}\nVersion: 1.0\nRelease: 1\nSummary: {name} for xcatd's tests\n"
        "License: EPL-1.0\nBuildArch: noarch\n"
        + (f"Requires: {requires}\n" if requires else "")
        + f"%description\n{name}, built by xcatd's tests.\n"
        + f"%install\nmkdir -p %{{buildroot}}/usr/share/{name}\n"
        + f"echo {name} > %{{buildroot}}/usr/share/{name}/README\n"
        + f"%files\n/usr/share/{name}/README\n"
    )
