"""The boot loader programs DHCP answers name, put into tftpdir from the host.

A node's firmware loads a program first (iPXE, pxelinux, GRUB2), over TFTP
by the name its DHCP answer gives; that program then asks for the node's
own file.  The programs come from the host's Debian packages and are put
into tftpdir when they are not there yet; one already there is left alone,
so an administrator's own build stays.  A package that is not installed is
named in the error.  GRUB2 is not shipped ready for the network: its image
is made once with grub-mkimage, with the modules a network boot needs built
in and its prefix set to boot/grub2, where nodeset writes the configs.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from .files import copy_if_changed
from .loaders import IPXE_ARCHES, grub2_program
from .netboot import NodeError


@dataclass(frozen=True)
class Program:
    """A file a package installs on the host, copied to `path` under tftpdir."""

    path: str
    source: str
    package: str

    def provide(self, tftpdir: Path, host: Path) -> None:
        source = host / self.source.lstrip("/")
        if not source.is_file():
            raise _missing(self.path, tftpdir, source, self.package)
        target = tftpdir / self.path
        target.parent.mkdir(parents=True, exist_ok=True)
        copy_if_changed(source, target)


@dataclass(frozen=True)
class GrubImage:
    """A GRUB2 network boot image for one platform, made by grub-mkimage."""

    path: str
    platform: str  # grub-mkimage's -O
    package: str  # ships /usr/lib/grub/<platform>
    network: str  # the module that drives the firmware's network card

    def provide(self, tftpdir: Path, host: Path) -> None:
        modules = host / "usr/lib/grub" / self.platform
        if not modules.is_dir():
            raise _missing(self.path, tftpdir, modules, self.package)
        target = tftpdir / self.path
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.mkimage")
        try:
            built = subprocess.run(
                ["grub-mkimage", "-O", self.platform, "-d", str(modules), "-p", "/boot/grub2",
                 "-o", str(partial), self.network, *GRUB_MODULES],
                capture_output=True, text=True,
            )  # fmt: skip
        except FileNotFoundError:
            raise _missing(self.path, tftpdir, "grub-mkimage", GRUB_MKIMAGE_PACKAGE) from None
        if built.returncode != 0:
            partial.unlink(missing_ok=True)
            raise NodeError(f"grub-mkimage could not make {self.path}: {built.stderr.strip()}")
        partial.chmod(0o644)
        partial.replace(target)


def _missing(path: str, tftpdir: Path, needed: Path | str, package: str) -> NodeError:
    return NodeError(
        f"{path} is not in {tftpdir} and {needed} is missing: install the Debian package {package}"
    )


# What a GRUB2 network boot uses: fetch over TFTP or HTTP, read the node's
# config, boot Linux, or leave.
GRUB_MODULES = ("net", "tftp", "http", "normal", "configfile", "linux", "echo", "test", "minicmd")
GRUB_MKIMAGE_PACKAGE = "grub-common"

IPXE_BIOS = Program("xcat/xnba.kpxe", "/usr/lib/ipxe/undionly.kpxe", "ipxe")
IPXE_UEFI = Program("xcat/xnba.efi", "/usr/lib/ipxe/ipxe.efi", "ipxe")
PXELINUX = Program("pxelinux.0", "/usr/lib/PXELINUX/pxelinux.0", "pxelinux")
LDLINUX = Program("ldlinux.c32", "/usr/lib/syslinux/modules/bios/ldlinux.c32", "syslinux-common")
GRUB_PLATFORMS = {  # architecture -> grub-mkimage platform, package, network module
    "x86_64": ("x86_64-efi", "grub-efi-amd64-bin", "efinet"),
    "aarch64": ("arm64-efi", "grub-efi-arm64-bin", "efinet"),
    "ppc64": ("powerpc-ieee1275", "grub-ieee1275-bin", "ofnet"),
    "ppc64le": ("powerpc-ieee1275", "grub-ieee1275-bin", "ofnet"),
}


def programs(netboot: str, arch: str) -> tuple[Program | GrubImage, ...]:
    """What a node of this boot loader and architecture loads from tftpdir: on
    x86 iPXE first (see loaders.py), then pxelinux or GRUB2 when it uses them."""
    first = (IPXE_BIOS, IPXE_UEFI) if arch in IPXE_ARCHES else ()
    if netboot == "pxe":
        return *first, PXELINUX, LDLINUX
    if netboot == "grub2":
        return *first, GrubImage(grub2_program(arch), *GRUB_PLATFORMS[arch])
    return first  # xnba; petitboot is in the firmware


def provide(tftpdir: Path, netboot: str, arch: str, host: Path = Path("/")) -> None:
    """Put the programs in place unless they are there; NodeError names what is missing.
    `host` is the root the packages are installed under."""
    for program in programs(netboot, arch):
        if not (tftpdir / program.path).is_file():
            try:
                program.provide(tftpdir, host)
            except OSError as exc:
                raise NodeError(f"cannot put {program.path} into {tftpdir}: {exc}") from None
