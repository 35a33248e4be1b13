"""Image profiles: where they are, which file of a profile an osimage uses,
and the osimage definitions copycds makes from them.

A profile (compute, service) is a set of files per distro family: pkglist,
exlist, postinstall, otherpkgs.pkglist.  This package ships them (SHIPPED);
`xcatd init` places them where xCAT keeps them, /opt/xcat/share/xcat/netboot/
<family>/ (`Layout.netboot_profiles`), where administrators look for them
and copy them from.  As xCAT's copycds and genimage do, a profile file is
looked for first in <installdir>/custom/netboot/<family>/, then in the
placed directory, and within each directory by the most specific name first
(`file_names`, `postinstall_names`).  The package's own copy is read only
where init has not placed the family's directory.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from ..boot.files import write_atomic
from ..layout import Layout
from .osimage import PROVMETHODS, Distro, default_otherpkgdir, default_rootimgdir
from .shipped import SHARE

SHIPPED = SHARE / "profiles"  # the package's copy: the source of what init places
PROFILES = ("compute", "service")
# osimage attribute -> profile file extension
PROFILE_FILES = {
    "pkglist": "pkglist",
    "exlist": "exlist",
    "postinstall": "postinstall",
    "otherpkglist": "otherpkgs.pkglist",
}
# In the placed directory: what init placed last, as `sha256sum -c` reads it,
# so that an administrator's change there is seen and kept.
MANIFEST = ".xcatd-placed.sha256"


def default_netboot() -> Path:
    """The placed profiles of a management node without --root."""
    return Layout.for_root(None).netboot_profiles


def shipped_dir(family: str, netboot: Path | None = None) -> Path:
    """The family's shipped profiles: the directory init placed under
    `netboot`, or the package's copy on a host where init has not."""
    placed = (netboot or default_netboot()) / family
    return placed if placed.is_dir() else SHIPPED / family


def search_dirs(
    family: str, installdir: Path, netboot: Path | None = None, provdir: str = "netboot"
) -> tuple[Path, Path]:
    """Where xCAT looks for a profile's files, in order; `provdir` install:
    those of install images, beside the netboot ones (none are shipped)."""
    if provdir == "install":
        shipped = (netboot or default_netboot()).parent / "install" / family
        return installdir / "custom/install" / family, shipped
    return installdir / "custom/netboot" / family, shipped_dir(family, netboot)


def find_profile_file(
    distro: Distro,
    profile: str,
    ext: str,
    installdir: Path,
    netboot: Path | None = None,
    provdir: str = "netboot",
) -> Path | None:
    """The profile's file with extension `ext` for this distro, or None.

    Each directory of `search_dirs` is searched through every name before
    the next one, as xCAT's update_tables_with_diskless_image does; a
    postinstall must be executable, the other files readable."""
    postinstall = ext == "postinstall"
    names = postinstall_names(distro, profile) if postinstall else file_names(distro, profile, ext)
    access = os.X_OK if postinstall else os.R_OK
    for directory in search_dirs(distro.family, installdir, netboot, provdir):
        for name in names:
            if (directory / name).is_file() and os.access(directory / name, access):
                return directory / name
    return None


def file_names(distro: Distro, profile: str, ext: str) -> list[str]:
    """A profile file's names, most specific first, as xCAT's
    SvrUtils::get_file_name tries them: <profile>.<os>.<arch>.<ext>,
    <profile>.<os>.<ext>, the same for the generic OS name (rhels9 for
    rhels9.4) and then for every earlier release (rhels9.3, … rhels9.0),
    then <profile>.<arch>.<ext>, <profile>.<ext>."""
    oses = [distro.name, generic_os(distro.name), *os_search_list(distro.name)]
    tried = [suffix for os_name in oses for suffix in (f"{os_name}.{distro.arch}", os_name)]
    return _named(profile, ext, [*tried, distro.arch, ""])


def postinstall_names(distro: Distro, profile: str) -> list[str]:
    """A postinstall script's names, as xCAT's get_postinstall_file_name
    tries them: the OS, then the OS less one `.part` at a time (rhels9.4.1,
    rhels9.4, rhels9), its letters with two digits and with one (sles11,
    rhels9), the generic OS, the architecture, none."""
    shorter, name = [], distro.name
    while "." in name:
        name = name.rpartition(".")[0]
        shorter.append(name)
    prefixes = [
        m[0] for p in (r"[a-zA-Z]+\d\d", r"[a-zA-Z]+\d") if (m := re.search(p, distro.name))
    ]
    # xCAT's first three: <os>.<arch>, <os less one part>.<arch>, <os>.
    first = [f"{distro.name}.{distro.arch}", *(f"{s}.{distro.arch}" for s in shorter[:1])]
    oses = [distro.name, *shorter, *prefixes, generic_os(distro.name)]
    tried = [
        *first,
        *(suffix for os_name in oses for suffix in (f"{os_name}.{distro.arch}", os_name)),
    ]
    return _named(profile, "postinstall", [*tried, distro.arch, ""])


def _named(profile: str, ext: str, suffixes: list[str]) -> list[str]:
    names = [".".join(part for part in (profile, suffix, ext) if part) for suffix in suffixes]
    return list(dict.fromkeys(names))


def generic_os(name: str) -> str:
    """xCAT's genos: the name less its minor release (rhels9.4 -> rhels9,
    ubuntu24.04 -> ubuntu24); a name with rh…s<major> is rhels<major>."""
    generic = name.split(".")[0]
    found = re.search(r"rh.*s(\d*)", generic)
    return f"rhels{found.group(1)}" if found else generic


def os_search_list(name: str) -> list[str]:
    """xCAT's get_os_search_list: the release and every earlier minor one,
    down to none (rhels9.4: rhels9.4 … rhels9.0, rhels9); a zero-padded
    minor release stands alone (ubuntu24.04).  As xCAT, a name with a `-`
    is cut there first."""
    words = name.split("-")[0].split(".")
    found: list[str] = []
    while words and words[-1].isdigit():
        last = words.pop()
        if re.fullmatch(r"0\d+", last):
            return [*found, ".".join([*words, last])]
        for release in range(int(last), -1, -1):
            found.append(".".join([*words, str(release).zfill(len(last))]))
            if re.match(r"0\d", str(release).zfill(len(last))):
                found.append(".".join([*words, str(release)]))
    return [*found, ".".join(words)]


def install_shipped(netboot: Path) -> Iterator[str]:
    """Place the package's profiles under `netboot`/<family>/, or refresh
    them; yield a line for each file refreshed or kept.

    A file is replaced only while it is what init placed last (MANIFEST) or
    is absent: one the administrator changed, or that init did not place,
    is kept, and a line says so."""
    placed = _read_manifest(netboot / MANIFEST)
    now: dict[str, str] = {}
    for relative, source in _shipped_files():
        target, digest = netboot / relative, _digest(source)
        current = _digest(target) if target.is_file() else None
        last = placed.get(relative)
        if target.is_symlink() or (current is None and target.exists()):
            yield f"Kept {target}: not a regular file (the shipped one is {source})"
        elif current is None or current in (digest, last):
            if current != digest:
                _write(target, source)
                if current is not None:
                    yield f"Updated {target}"
            now[relative] = digest
            continue
        elif last is None:
            yield f"Kept {target}: it differs from the shipped {source}, which init did not place"
        else:
            yield f"Kept {target}: changed since xcatd init placed it (the shipped one is {source})"
        if last is not None:
            now[relative] = last  # still what was placed: kept until it is changed back
    yield from _remove_unshipped(netboot, placed, now)
    _write_manifest(netboot / MANIFEST, now)


def _remove_unshipped(netboot: Path, placed: dict[str, str], now: dict[str, str]) -> Iterator[str]:
    """Files init placed that this version no longer ships would still be
    found by name: remove those the administrator has not changed."""
    for relative in sorted(placed.keys() - now.keys()):
        target = netboot / relative
        if target.is_file() and not target.is_symlink() and _digest(target) == placed[relative]:
            target.unlink()
            yield f"Removed {target}: no longer shipped"
        elif target.exists():
            yield f"Kept {target}: no longer shipped, and changed since xcatd init placed it"


def _shipped_files() -> Iterator[tuple[str, Path]]:
    """(family/name, path) of every file of the package's profiles."""
    for family in sorted(p for p in SHIPPED.iterdir() if p.is_dir()):
        for source in sorted(p for p in family.iterdir() if p.is_file()):
            yield f"{family.name}/{source.name}", source


def _digest(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _write(target: Path, source: Path) -> None:
    """Atomically (a reader sees the old or the new file), executable for
    scripts whatever mode the package's copy was installed with."""
    target.parent.mkdir(parents=True, exist_ok=True)
    executable = target.name.endswith(".postinstall") or os.access(source, os.X_OK)
    write_atomic(target, source.read_bytes(), 0o755 if executable else 0o644)


def _read_manifest(path: Path) -> dict[str, str]:
    """family/name -> sha256 of what init placed; empty before the first init."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    placed = {}
    for line in text.splitlines():
        digest, _, relative = line.partition("  ")
        if relative:
            placed[relative] = digest
    return placed


def _write_manifest(path: Path, placed: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{digest}  {relative}\n" for relative, digest in sorted(placed.items()))
    write_atomic(path, text.encode(), 0o644)


def osimage_definitions(
    distro: Distro, installdir: Path, pkgdir: Path, netboot: Path | None = None
) -> dict[str, dict[str, str]]:
    """The six osimages of a distro, by name, with xCAT's attribute values;
    `netboot`: where init placed the shipped profiles."""
    definitions = {}
    for provmethod in PROVMETHODS:
        for profile in PROFILES:
            name = f"{distro.name}-{distro.arch}-{provmethod}-{profile}"
            values = {
                "imagetype": "linux",
                "osname": "Linux",
                "osvers": distro.name,
                "osarch": distro.arch,
                "osdistroname": f"{distro.name}-{distro.arch}",
                "profile": profile,
                "provmethod": provmethod,
                "pkgdir": str(pkgdir),
                "otherpkgdir": str(default_otherpkgdir(installdir, distro.name, distro.arch)),
            }
            if provmethod != "install":
                rootimgdir = default_rootimgdir(installdir, distro.name, distro.arch, profile)
                values["rootimgdir"] = str(rootimgdir)
                for attribute, ext in PROFILE_FILES.items():
                    found = find_profile_file(distro, profile, ext, installdir, netboot)
                    if found is not None:
                        values[attribute] = str(found)
            definitions[name] = values
    return definitions
