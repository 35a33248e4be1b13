"""Which distribution, release and architecture a medium holds.

The Red Hat family says so in `.treeinfo` (and `.discinfo`); Debian and
Ubuntu in `.disk/info` and `dists/<codename>/Release`.  The name given is
the one xCAT uses for the osimage and the directory: rhels9.4, rocky9.4,
alma9.4, centos-stream9, fedora40, debian12, ubuntu24.04.
"""

from __future__ import annotations

import configparser
import re

from ..osimage import Distro
from .read import Media

ARCHES = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "aarch64": "aarch64",
    "arm64": "aarch64",
    "ppc64le": "ppc64le",
    "ppc64el": "ppc64le",
    "ppc64": "ppc64",
}

# (words in the product name, prefix of the distro name); first match wins.
RED_HAT_NAMES = (
    (("red hat",), "rhels"),
    (("rocky",), "rocky"),
    (("alma",), "alma"),
    (("centos", "stream"), "centos-stream"),
    (("centos",), "centos"),
    (("fedora",), "fedora"),
    (("oracle",), "ol"),
)


def detect(media: Media) -> Distro | None:
    return _red_hat(media) or _debian(media)


def _red_hat(media: Media) -> Distro | None:
    treeinfo = media.read_text(".treeinfo")
    discinfo = media.read_text(".discinfo")
    product = version = arch = ""
    if treeinfo:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(treeinfo)
        except configparser.Error:
            parser = configparser.ConfigParser()
        section = "release" if parser.has_section("release") else "general"
        key = "name" if section == "release" else "family"
        product = parser.get(section, key, fallback="")
        version = parser.get(section, "version", fallback="")
        arch = parser.get("tree", "arch", fallback="") or parser.get("general", "arch", fallback="")
    discno = "1"
    if discinfo:
        lines = [line.strip() for line in discinfo.splitlines()]
        if len(lines) >= 3:
            found = re.search(r"(\d+(\.\d+)?)\s*$", lines[1])
            product = product or lines[1]
            version = version or (found.group(1) if found else "")
            arch = arch or lines[2]
        if len(lines) >= 4 and lines[3]:
            discno = lines[3].split(",")[0]
    if not product or not version or arch not in ARCHES:
        return None
    lowered = product.lower()
    for words, prefix in RED_HAT_NAMES:
        if all(word in lowered for word in words):
            if prefix in ("centos-stream", "fedora"):
                version = version.split(".")[0]
            return Distro(f"{prefix}{version}", ARCHES[arch], "rh", discno)
    return None


def _debian(media: Media) -> Distro | None:
    info = media.read_text(".disk/info") or ""
    found = re.match(r"\s*(Debian|Ubuntu)\S*\s+(?:GNU/Linux\s+)?(\d+(?:\.\d+)*)", info)
    release = _release(media)
    if found:
        vendor, version = found.group(1), found.group(2)
    elif release.get("Origin") in ("Debian", "Ubuntu") and release.get("Version"):
        vendor, version = release["Origin"], release["Version"]  # a mirror-style tree
    else:
        return None
    vendor = vendor.lower()
    # Debian names releases by their major number, Ubuntu by year and month.
    version = version.split(".")[0] if vendor == "debian" else ".".join(version.split(".")[:2])
    arch = next((ARCHES[w] for w in re.findall(r"\w+", info) if w in ARCHES), None)
    arch = arch or next(
        (ARCHES[w] for w in release.get("Architectures", "").split() if w in ARCHES), None
    )
    if arch is None:
        return None
    number = re.search(r"(?:Binary|Disk|DVD)-(\d+)", info)
    return Distro(f"{vendor}{version}", arch, "debian", number.group(1) if number else "1")


def _release(media: Media) -> dict[str, str]:
    """The fields of the first dists/*/Release file, which every Debian tree has."""
    for entry in media.entries():
        if re.fullmatch(r"dists/[^/]+/Release", entry.path):
            text = media.read_text(entry.path) or ""
            return dict(re.findall(r"^([\w-]+):\s*(.*)$", text, re.MULTILINE))
    return {}
