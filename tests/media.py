"""Realistic distribution media, built by the tests from real packages.

Debian: the lab's media (xcatd/lab/media.py: real .deb files fetched with
the host's own apt, indexed, with an ISO made by xorriso), either just the
packages named or (`system`) a whole minbase system with them.
Red Hat family: small RPMs built with rpmbuild, indexed by createrepo_c,
with .discinfo and .treeinfo as on Rocky Linux's media.

Downloads are cached in CACHE between runs.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from xcatd.lab import media
from xcatd.lab.media import iso, run

__all__ = [
    "Rpm",
    "build_deb",
    "build_rpms",
    "comps_xml",
    "debian_tree",
    "iso",
    "redhat_tree",
    "run",
]  # fmt: skip

CACHE = Path(os.environ.get("XCATD_TEST_CACHE", "/var/cache/xcatd-tests"))


def debian_tree(
    where: Path, packages: list[str], arch: str = "amd64", *, system: bool = False
) -> Path:
    """The lab's Debian media tree (xcatd/lab/media.py), downloads in the tests' cache."""
    return media.debian_tree(where, packages, CACHE, arch, system=system)


@dataclass(frozen=True)
class Rpm:
    """A tiny noarch RPM for the tests: a README under /usr/share/<name>, plus
    whatever `files` (path -> content), a `requires` and an embedded-Lua %post
    (rpm runs Lua inside the image without needing a shell there)."""

    name: str
    version: str = "1.0"
    requires: str = ""
    files: tuple[tuple[str, str], ...] = ()
    post_lua: str = ""


BASE_RPMS = (Rpm("xcat-test-base"), Rpm("xcat-test-tools", requires="xcat-test-base"))


def build_rpms(where: Path, rpms: tuple[Rpm, ...] | list[Rpm]) -> list[Path]:
    """Build `rpms` with rpmbuild under `where`; the .rpm files."""
    build = where / "rpmbuild"
    out = build / "out"
    built = []
    for rpm in rpms:
        spec = build / f"{rpm.name}-{rpm.version}.spec"
        spec.parent.mkdir(parents=True, exist_ok=True)
        spec.write_text(_spec(rpm))
        run(
            "rpmbuild", "-bb", "--quiet", "--nodeps",
            "--define", f"_topdir {build}", "--define", f"_rpmdir {out}", spec,
        )  # fmt: skip
        built.append(out / "noarch" / f"{rpm.name}-{rpm.version}-1.noarch.rpm")
    return built


def redhat_tree(
    where: Path,
    product: str = "Rocky Linux",
    version: str = "9.4",
    rpms: tuple[Rpm, ...] | list[Rpm] = BASE_RPMS,
    comps: str | None = None,
) -> Path:
    """A Red Hat family media tree with a repository of small RPMs (and, given
    `comps`, a comps.xml of package groups)."""
    tree = where / f"{product.split()[0].lower()}-{version}-x86_64"
    packages = tree / "BaseOS/Packages"
    packages.mkdir(parents=True)
    for rpm in build_rpms(where, rpms):
        shutil.copy(rpm, packages / rpm.name)
    if comps is not None:
        (where / "comps.xml").write_text(comps)
        run("createrepo_c", "-q", "-g", where / "comps.xml", tree / "BaseOS")
    else:
        run("createrepo_c", "-q", tree / "BaseOS")
    (tree / ".discinfo").write_text(f"1716800000.000000\n{product} {version}\nx86_64\n1\n")
    (tree / ".treeinfo").write_text(
        f"[general]\nfamily = {product}\nversion = {version}\narch = x86_64\n\n"
        f"[release]\nname = {product}\nshort = {product.split()[0]}\nversion = {version}\n\n"
        "[tree]\narch = x86_64\nplatforms = x86_64\n"
    )
    return tree


def comps_xml(groups: dict[str, list[str]]) -> str:
    """A comps.xml defining each group id with its mandatory packages."""
    body = "".join(
        f"  <group>\n    <id>{gid}</id>\n    <name>{gid}</name>\n"
        "    <description>xcatd test group</description>\n"
        "    <default>false</default>\n    <uservisible>true</uservisible>\n"
        "    <packagelist>\n"
        + "".join(f'      <packagereq type="mandatory">{name}</packagereq>\n' for name in names)
        + "    </packagelist>\n  </group>\n"
        for gid, names in groups.items()
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE comps PUBLIC "-//Red Hat, Inc.//DTD Comps info//EN" "comps.dtd">\n'
        f"<comps>\n{body}</comps>\n"
    )


def _spec(rpm: Rpm) -> str:
    name = rpm.name
    install = [f"mkdir -p %{{buildroot}}/usr/share/{name}",
               f"echo {name} {rpm.version} > %{{buildroot}}/usr/share/{name}/README"]  # fmt: skip
    listed = [f"/usr/share/{name}/README"]
    for path, content in rpm.files:
        install.append(f"mkdir -p %{{buildroot}}{os.path.dirname(path)}")
        install.append(f"printf '%%s' '{content}' > %{{buildroot}}{path}")
        listed.append(path)
    return (
        f"Name: {name}\nVersion: {rpm.version}\nRelease: 1\nSummary: {name} for xcatd's tests\n"
        "License: EPL-1.0\nBuildArch: noarch\n"
        + (f"Requires: {rpm.requires}\n" if rpm.requires else "")
        + f"%description\n{name}, built by xcatd's tests.\n"
        + "%install\n"
        + "\n".join(install)
        + "\n"
        + "%files\n"
        + "\n".join(listed)
        + "\n"
        + (f"%post -p <lua>\n{rpm.post_lua}\n" if rpm.post_lua else "")
    )


def build_deb(where: Path, name: str, version: str = "1.0", depends: str = "") -> Path:
    """A tiny architecture-independent .deb made with dpkg-deb."""
    root = where / f"{name}-{version}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / f"usr/share/{name}").mkdir(parents=True)
    (root / f"usr/share/{name}/README").write_text(f"{name} {version}\n")
    (root / "DEBIAN/control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: xcatd tests <root@localhost>\n"
        + (f"Depends: {depends}\n" if depends else "")
        + f"Description: {name} for xcatd's tests\n"
    )
    deb = where / f"{name}_{version}_all.deb"
    run("dpkg-deb", "--root-owner-group", "--build", root, deb)
    return deb
