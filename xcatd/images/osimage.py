"""An osimage as the image commands and the boot path use it: made once from
its stored attributes (`OsImage.of`), with xCAT's defaults, and the rules
every command shares, each stated here once with one message.

    <rootimgdir>                  the osimage's rootimgdir, else
                                  <installdir>/netboot/<osvers>/<osarch>/<profile>
        rootimg/                  the root image genimage builds
        kernel                    its kernel, and
        initrd-stateless.gz       its stateless initrd (genimage)
        rootimg.<ext>             the packed image nodes boot (packimage)
        .genimage.lock            held by genimage (exclusive), packimage (shared)
        .packimage.lock           held by packimage
        .genimage.incomplete      there while a genimage has not finished

A diskless image is one whose provmethod is netboot or statelite; only those
are built, packed and booted here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import XcatdError

DISKLESS = ("netboot", "statelite")
PROVMETHODS = ("install", *DISKLESS)
PACK_METHODS = ("cpio", "tar", "squashfs")
PACK_COMPRESSIONS = ("gzip", "xz", "zstd")

ROOTIMG = "rootimg"
KERNEL = "kernel"
INITRD = "initrd-stateless.gz"
BUILD_LOCK = ".genimage.lock"
PACK_LOCK = ".packimage.lock"
INCOMPLETE = ".genimage.incomplete"
VENV = "/opt/xcat"  # in a service node's image: xcatd's Python environment


class OsImageError(XcatdError):
    """The osimage cannot be used as asked; the message says what to set."""


def family_of(osvers: str) -> str:
    """The distro family whose package manager builds the image: rh | debian."""
    return "debian" if osvers.startswith(("debian", "ubuntu")) else "rh"


@dataclass(frozen=True)
class Distro:
    """A distribution as copycds found it and profiles are looked up by."""

    name: str  # rhels9.4, debian12, ...: an osimage's osvers
    arch: str  # x86_64, aarch64, ppc64le, ppc64
    family: str  # rh | debian
    discno: str = "1"


def default_rootimgdir(installdir: Path, osvers: str, osarch: str, profile: str) -> Path:
    """Where xCAT builds an image whose rootimgdir is not set."""
    return installdir / "netboot" / osvers / osarch / profile


def default_otherpkgdir(installdir: Path, osvers: str, osarch: str) -> Path:
    """Where xCAT keeps an image's other packages when its otherpkgdir is not set."""
    return installdir / "post/otherpkgs" / osvers / osarch


def default_pkgdir(installdir: Path, osvers: str, osarch: str) -> Path:
    """The distribution's packages as copycds copied them."""
    return installdir / osvers / osarch


def is_service_node(rootimg: Path) -> bool:
    """Whether the image is a service node's: xcatd is in it (xcatd bundle, genimage)."""
    return (rootimg / VENV.lstrip("/") / "bin/xcatd").is_file()


def incomplete(rootimgdir: Path) -> bool:
    """Whether the last genimage of this image did not finish (or none ran)."""
    return (rootimgdir / INCOMPLETE).exists() or not (rootimgdir / ROOTIMG).is_dir()


@dataclass(frozen=True)
class ImageFiles:
    """The files of one rootimgdir, by xCAT's names (see above)."""

    rootimgdir: Path

    @property
    def rootimg(self) -> Path:
        return self.rootimgdir / ROOTIMG

    @property
    def kernel(self) -> Path:
        return self.rootimgdir / KERNEL

    @property
    def initrd(self) -> Path:
        return self.rootimgdir / INITRD

    @property
    def build_lock(self) -> Path:
        return self.rootimgdir / BUILD_LOCK

    @property
    def pack_lock(self) -> Path:
        return self.rootimgdir / PACK_LOCK

    @property
    def marker(self) -> Path:
        """There while a genimage of the image has not finished."""
        return self.rootimgdir / INCOMPLETE

    def incomplete(self) -> bool:
        return incomplete(self.rootimgdir)


def _items(value: str | None) -> tuple[str, ...]:
    """A comma list attribute's items (paths, URLs, names), empty ones left out."""
    return tuple(item for item in (value or "").split(",") if item)


@dataclass(frozen=True)
class OsImage:
    """One osimage's attributes, typed; "" or empty where unset."""

    name: str
    installdir: Path  # site.installdir, else the daemon's: where defaults point
    provmethod: str = ""
    osvers: str = ""
    osarch: str = ""
    profile: str = ""
    given_rootimgdir: Path | None = None  # the rootimgdir attribute
    pkglist: tuple[str, ...] = ()  # the list files
    pkgdir: tuple[str, ...] = ()
    otherpkglist: tuple[str, ...] = ()
    given_otherpkgdir: Path | None = None
    postinstall: tuple[Path, ...] = ()
    exlist: tuple[str, ...] = ()
    synclists: tuple[str, ...] = ()
    netdrivers: str = ""  # as given: genimage checks each name
    packfile: Path | None = None  # what the last packimage wrote
    addkcmdline: str = ""
    permission: str = ""

    @classmethod
    def of(cls, name: str, values: Mapping[str, str], installdir: Path) -> OsImage:
        """The osimage `name` from its stored attribute `values`."""

        def path(attribute: str) -> Path | None:
            return Path(values[attribute]) if values.get(attribute) else None

        return cls(
            name=name,
            installdir=installdir,
            provmethod=values.get("provmethod", ""),
            osvers=values.get("osvers", ""),
            osarch=values.get("osarch", ""),
            profile=values.get("profile", ""),
            given_rootimgdir=path("rootimgdir"),
            pkglist=_items(values.get("pkglist")),
            pkgdir=_items(values.get("pkgdir")),
            otherpkglist=_items(values.get("otherpkglist")),
            given_otherpkgdir=path("otherpkgdir"),
            postinstall=tuple(Path(p) for p in _items(values.get("postinstall"))),
            exlist=_items(values.get("exlist")),
            synclists=_items(values.get("synclists")),
            netdrivers=values.get("netdrivers", ""),
            packfile=path("packfile"),
            addkcmdline=values.get("addkcmdline", ""),
            permission=values.get("permission", ""),
        )

    # -- the checks ---------------------------------------------------------------

    @property
    def diskless(self) -> bool:
        return self.provmethod in DISKLESS

    def check_diskless(self) -> None:
        """OsImageError unless the image is a diskless one (xCAT's message)."""
        if not self.diskless:
            raise OsImageError(
                f"'{self.name}' cannot be used to build a diskless image. Make sure "
                "osimage.provmethod is 'netboot' or 'statelite'."
            )

    def check_set(self, *attributes: str) -> None:
        """OsImageError naming those of `attributes` that are not set."""
        missing = [a for a in attributes if not getattr(self, a)]
        if missing:
            settings = " ".join(f"{a}=<value>" for a in missing)
            raise OsImageError(
                f"osimage '{self.name}' has no {', '.join(missing)}: set "
                f"{'it' if len(missing) == 1 else 'them'} with "
                f"chdef -t osimage {self.name} {settings}"
            )

    # -- where its files are ------------------------------------------------------

    @property
    def family(self) -> str:
        return family_of(self.osvers)

    @property
    def rootimgdir(self) -> Path:
        """The rootimgdir attribute, else xCAT's default (OsImageError when
        neither is set nor can be derived)."""
        if self.given_rootimgdir is not None:
            return self.given_rootimgdir
        if not (self.osvers and self.osarch and self.profile):
            raise OsImageError(
                f"osimage '{self.name}' has no rootimgdir, and no osvers, osarch and "
                "profile to derive one from"
            )
        return default_rootimgdir(self.installdir, self.osvers, self.osarch, self.profile)

    @property
    def files(self) -> ImageFiles:
        """Its root image, kernel, initrd, locks and marker (OsImageError
        when it has no rootimgdir)."""
        return ImageFiles(self.rootimgdir)

    @property
    def otherpkgdir(self) -> Path:
        """The otherpkgdir attribute, else xCAT's default."""
        default = default_otherpkgdir(self.installdir, self.osvers, self.osarch)
        return self.given_otherpkgdir or default
