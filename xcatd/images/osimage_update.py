"""`mkdef -u` and `chdef -u`: an osimage's attributes filled in from its
profile, as xCAT's DBobjectdefs.pm (parse_attr_for_osimage) fills them.

Given a profile and a provisioning method (and osvers and osarch, else this
host's), the image gets xCAT's defaults: imagetype, osname, osdistroname,
pkgdir, otherpkgdir, rootimgdir, and the profile's files (pkglist,
otherpkglist, exlist, postinstall, synclists, template) found as copycds and
genimage find them: <installdir>/custom/<netboot|install>/<family>/ first,
then the shipped profiles.  A chdef -u looks the files up again (pkglist,
exlist, ... not given on the command line are replaced), which is how an
administrator points an image at the files they copied under custom/.
"""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import XcatdError
from .osimage import Distro, default_otherpkgdir, default_pkgdir, default_rootimgdir, family_of
from .profiles import SHIPPED, find_profile_file

# What chdef -u takes from the stored image when the command line does not give it.
IMAGE_ATTRIBUTES = ("imagetype", "provmethod", "profile", "osname", "osvers", "osarch")
# The profile files of a diskless image, by attribute: (extension, looked up
# even when the stored image has one) -- xCAT looks exlist and postinstall up
# only when not given, pkglist and otherpkglist likewise.
_DISKLESS_FILES = {"exlist": "exlist", "postinstall": "postinstall"}
_ANY_FILES = {"pkglist": "pkglist", "otherpkglist": "otherpkgs.pkglist"}


class UpdateError(XcatdError, ValueError):
    """Why the image cannot be filled in, in xCAT's words."""


@dataclass(frozen=True)
class Places:
    """Where the files are: site.installdir and the placed shipped profiles."""

    installdir: Path
    netboot: Path  # /opt/xcat/share/xcat/netboot: install profiles are beside it


def filled(given: dict[str, str], command: str, places: Places) -> dict[str, str]:
    """The values to write: `given` (the command line's, with chdef's stored
    IMAGE_ATTRIBUTES under them) and what xCAT fills in; UpdateError."""
    values = dict(given)
    profile, provmethod = values.get("profile"), values.get("provmethod")
    if profile is None or provmethod is None:
        raise UpdateError("The profile and provmethod are all need to be specified.")
    if not re.search("install|netboot|statelite", provmethod):
        raise UpdateError(f"The provmethod: {provmethod} is incorrect.")
    osvers = values.setdefault("osvers", host_osvers())
    arch = values.setdefault("osarch", host_arch())
    provdir = "install" if provmethod == "install" else "netboot"
    family = _family(osvers, places.netboot, provdir)
    for attribute, expected in (("imagetype", "linux"), ("osname", "Linux")):
        if attribute in values and not values[attribute].lower().startswith(expected.lower()):
            raise UpdateError(f"The input {attribute}:{values[attribute]} not match {expected}.")
        values.setdefault(attribute, expected)
    values["osdistroname"] = f"{osvers}-{arch}"
    distro = Distro(osvers, arch, family)

    def find(ext: str) -> str | None:
        found = find_profile_file(distro, profile, ext, places.installdir, places.netboot, provdir)
        return str(found) if found else None

    if "synclists" not in values or command == "chdef":
        _set_found(values, "synclists", find("synclist"))
    if provmethod == "install":
        values.update(exlist="", postinstall="", rootimgdir="")
        if "template" not in values or command == "chdef":
            _set_found(values, "template", find("tmpl"))
    else:
        values["template"] = ""
        for attribute, ext in _DISKLESS_FILES.items():
            if attribute not in values:
                _set_found(values, attribute, find(ext))
        values.setdefault(
            "rootimgdir", str(default_rootimgdir(places.installdir, osvers, arch, profile))
        )
    for attribute, ext in _ANY_FILES.items():
        if attribute not in values:
            _set_found(values, attribute, find(ext))
    values.setdefault("otherpkgdir", str(default_otherpkgdir(places.installdir, osvers, arch)))
    values.setdefault("pkgdir", str(default_pkgdir(places.installdir, osvers, arch)))
    return values


def _set_found(values: dict[str, str], attribute: str, found: str | None) -> None:
    if found:
        values[attribute] = found


def _family(osvers: str, netboot: Path, provdir: str) -> str:
    """The profiles' directory of this OS, as xCAT finds it: the OS name
    shortened a letter at a time until a directory has that name (rhels9.4:
    rh); for the Debian family, debian (where Ubuntu's profiles are here)."""
    shipped = [netboot.parent / provdir, *([SHIPPED] if provdir == "netboot" else [])]
    candidates = [osvers[:end] for end in range(len(osvers), 0, -1)]
    for name in [*candidates, family_of(osvers)]:
        if any((base / name).is_dir() for base in shipped):
            return name
    raise UpdateError(f"Unable to find {netboot.parent / provdir} directory for {osvers}.")


def host_osvers() -> str:
    """This host's OS as xCAT names it (rhels9.4, debian12, ubuntu24.04): the
    osvers of an image for which none is given."""
    fields = {}
    try:
        text = Path("/etc/os-release").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition("=")
        fields[key] = value.strip().strip('"')
    name = {"rhel": "rhels"}.get(fields.get("ID", ""), fields.get("ID", "linux"))
    return f"{name}{fields.get('VERSION_ID', '')}"


def host_arch() -> str:
    """This host's architecture as xCAT names it (uname -m; x86 for i?86)."""
    machine = platform.machine()
    return "x86" if re.fullmatch(r"i.86", machine) else machine
