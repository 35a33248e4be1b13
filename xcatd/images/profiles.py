"""Image profiles and the osimage definitions copycds makes from them.

A profile (compute, service) is a set of files per distro family: pkglist,
exlist, postinstall, otherpkgs.pkglist.  The administrator's copies under
<installdir>/custom/netboot/<family>/ win over the ones shipped in this
package, and within each directory the most specific name wins, as in xCAT:
<profile>.<os>.<arch>.<ext>, <profile>.<osbase>.<arch>.<ext>,
<profile>.<arch>.<ext>, <profile>.<ext>.
"""

from __future__ import annotations

from pathlib import Path

from .build_common import SHARE
from .distro import Distro

SHIPPED = SHARE / "profiles"
PROFILES = ("compute", "service")
PROVMETHODS = ("install", "netboot", "statelite")
# osimage attribute -> profile file extension
PROFILE_FILES = {
    "pkglist": "pkglist",
    "exlist": "exlist",
    "postinstall": "postinstall",
    "otherpkglist": "otherpkgs.pkglist",
}


def find_profile_file(distro: Distro, profile: str, ext: str, installdir: Path) -> Path | None:
    names = [
        f"{profile}.{distro.name}.{distro.arch}.{ext}",
        f"{profile}.{distro.base}.{distro.arch}.{ext}",
        f"{profile}.{distro.arch}.{ext}",
        f"{profile}.{ext}",
    ]
    for directory in (installdir / "custom/netboot" / distro.family, SHIPPED / distro.family):
        for name in names:
            if (directory / name).is_file():
                return directory / name
    return None


def osimage_definitions(
    distro: Distro, installdir: Path, pkgdir: Path
) -> dict[str, dict[str, str]]:
    """The six osimages of a distro, by name, with xCAT's attribute values."""
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
                "otherpkgdir": str(installdir / "post/otherpkgs" / distro.name / distro.arch),
            }
            if provmethod != "install":
                values["rootimgdir"] = str(
                    installdir / "netboot" / distro.name / distro.arch / profile
                )
                for attribute, ext in PROFILE_FILES.items():
                    found = find_profile_file(distro, profile, ext, installdir)
                    if found is not None:
                        values[attribute] = str(found)
            definitions[name] = values
    return definitions
