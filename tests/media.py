"""Realistic distribution media, built by the tests from real packages.

Debian: real .deb files fetched with the host's own apt configuration (no
mirror is named anywhere), indexed with apt-ftparchive, with .disk/info and
dists/bookworm/Release as on Debian's own media, and an ISO made by xorriso.
Either just the packages named, or (`debian_system`) all a minbase system
with those packages needs: what mmdebstrap installs from such media.
Red Hat family: small RPMs built with rpmbuild, indexed by createrepo_c,
with .discinfo and .treeinfo as on Rocky Linux's media.

Downloads are cached in CACHE between runs.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
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


def debian_system(names: list[str], arch: str = "amd64") -> list[Path]:
    """The .deb files of a minbase system (Essential and required packages,
    apt) with `names` installed, resolved by the host's apt as for an empty
    system and downloaded once into the cache."""
    debs = CACHE / "debs"
    (debs / "partial").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="xcatd-media-") as state:
        (Path(state) / "status").touch()  # nothing installed yet
        options = [
            "-o", f"Dir::State::status={state}/status", "-o", f"Dir::Cache::archives={debs}",
            "-o", f"APT::Architecture={arch}", "-o", "APT::Install-Recommends=false",
        ]  # fmt: skip
        wanted = [*minbase(), "apt", *names]
        simulated = run("apt-get", "-s", *options, "install", *wanted)
        chosen = re.findall(r"^Inst (\S+) \((\S+) .*?\[(\S+)\]\)", simulated, re.MULTILINE)
        files = [debs / f"{n}_{v.replace(':', '%3a')}_{a}.deb" for n, v, a in chosen]
        if not all(f.exists() for f in files):
            run("apt-get", "-qq", "--download-only", "-y", *options, "install", *wanted)
    return files


@functools.cache
def archive_fields() -> dict[str, dict[str, str]]:
    """Package -> its fields as the archive (the host's apt lists) has them:
    Priority and Section come from the archive's overrides, not the .deb."""
    packages: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in [*run("apt-cache", "dumpavail").splitlines(), ""]:
        if not line:
            if "Package" in current:
                packages.setdefault(current["Package"], current)
            current = {}
        elif not line[0].isspace() and ":" in line:
            key, _, value = line.partition(":")
            current[key] = value.strip()
    return packages


def minbase() -> list[str]:
    """What mmdebstrap's minbase variant installs: Essential and required packages."""
    return sorted(
        name
        for name, fields in archive_fields().items()
        if fields.get("Essential") == "yes" or fields.get("Priority") == "required"
    )


def _override(pool: Path) -> str:
    """apt-ftparchive's override file for the pool: the archive's priorities
    (mmdebstrap picks required packages by them) and sections."""
    lines = []
    for deb in sorted(pool.glob("*.deb")):
        fields = archive_fields().get(deb.name.split("_")[0], {})
        lines.append(f"{deb.name.split('_')[0]} {fields.get('Priority', 'optional')} "
                     f"{fields.get('Section', 'misc')}\n")  # fmt: skip
    return "".join(lines)


def debian_tree(
    where: Path, packages: list[str], arch: str = "amd64", *, system: bool = False
) -> Path:
    """A Debian media tree holding `packages` (with `system`, a whole
    minbase system with them: see debian_system)."""
    tree = where / f"debian-{DEBIAN_RELEASE}-{arch}"
    pool = tree / "pool/main"
    pool.mkdir(parents=True)
    for deb in debian_system(packages, arch) if system else debian_packages(packages):
        _link_or_copy(deb, pool / deb.name)
    (tree / ".disk").mkdir()
    (tree / ".disk/info").write_text(
        f'Debian GNU/Linux {DEBIAN_RELEASE}.5.0 "Bookworm" - xcatd test {arch} Binary-1 '
        "20240210-11:28\n"
    )
    binary = tree / f"dists/{DEBIAN_CODENAME}/main/binary-{arch}"
    binary.mkdir(parents=True)
    override = where / "override"
    override.write_text(_override(pool))
    (binary / "Packages").write_text(run("apt-ftparchive", "packages", "pool", override, cwd=tree))
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


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)  # the cache is usually on the same disk: no copy
    except OSError:
        shutil.copy(source, target)


def iso(tree: Path, output: Path, label: str) -> Path:
    run("xorriso", "-as", "mkisofs", "-r", "-J", "-V", label, "-o", output, tree)
    return output


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
