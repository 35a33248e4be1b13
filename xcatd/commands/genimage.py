"""genimage: build the stateless root image of an osimage with the distro's
own package manager (dnf for the Red Hat family, mmdebstrap for Debian and
Ubuntu), its kernel and stateless initrd, and record what was used on the
osimage.  It prints a line a phase, with times and package counts; what the
programs print goes to <rootimgdir>/genimage.log, and to the user only with
-V (--verbose) or, when one fails, its last lines."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from ..call import Call
from ..images.build.common import BuildError, Output, Spec
from ..images.build.genimage import build, build_initrd
from ..images.build.pkglist import PkglistError
from ..images.osimage import Distro, OsImage, OsImageError, default_pkgdir
from ..images.profiles import find_profile_file, shipped_dir
from ..sshca import SshAuthority
from .osimages import osimage, record
from .registry import CommandParser, Usage, command

USAGE = Usage(  # in the form of xCAT's (xCAT-client/bin/genimage), with the options xcatd has
    "Usage:\n    genimage [-n <nodenetdrivers>] [-k <kernelver>] [--onlyinitrd] [--noupdate] "
    "[-V|--verbose] <imagename>\n\n"
    "Examples:\n    genimage -n tg3,bnx2 myimagename\n    genimage myimagename\n",
    bare_rc=1,
)

_DRIVER = re.compile(r"[A-Za-z0-9_\-]+(\.ko)?")


@command("genimage", "Generate the stateless root image of an osimage.", usage=USAGE)
def genimage_options(parser: CommandParser) -> None:
    parser.add_argument(
        "-n", dest="netdrivers", help="network drivers for the stateless initrd (comma list)"
    )
    parser.add_argument("-k", dest="kernelver", help="the kernel version of the image to use")
    parser.add_argument(
        "--onlyinitrd", action="store_true",
        help="only make the kernel and initrd again, from the finished image",
    )  # fmt: skip
    parser.add_argument(
        "--noupdate", action="store_true", help="on an existing image, do not upgrade packages"
    )
    parser.add_argument(
        "-V", "--verbose", action="store_true",
        help="show all the package manager's output (it is always in <rootimgdir>/genimage.log)",
    )  # fmt: skip
    parser.add_argument("osimage", help="the osimage definition to build")


@genimage_options.runs
async def genimage(call: Call) -> None:
    options = call.options
    await generate(call, options.osimage, Build(
        options.netdrivers, options.kernelver, options.onlyinitrd, options.noupdate,
        options.verbose,
    ))  # fmt: skip


@dataclass(frozen=True)
class Build:
    """What genimage is asked to do (its options)."""

    netdrivers: str | None = None
    kernelver: str | None = None
    onlyinitrd: bool = False
    noupdate: bool = False
    verbose: bool = False


async def generate(call: Call, name: str, asked: Build) -> None:
    """genimage of the osimage `name`; geninitrd is this with onlyinitrd."""
    image = await osimage(call, name)
    if image is None:
        await call.error(f"Cannot find image '{name}' from the osimage table.")
        return
    try:
        netboot = call.context.layout.netboot_profiles
        spec, defaults = _spec(image, netboot, asked.noupdate)
        drivers = _drivers(asked.netdrivers)
        spec.netdrivers = drivers or _drivers(image.netdrivers) or []
        spec.ssh_ca = SshAuthority(call.context.layout.pki).ensure()
        spec.shipped = shipped_dir(spec.family, netboot)
    except (BuildError, OsImageError) as exc:
        await call.error(str(exc))
        return

    async def progress(what: str, done: int, total: int | None, unit: str) -> None:
        await call.progress(what, done, total, unit)

    output = Output(call.info, progress, call.warning, verbose=asked.verbose)
    make = build_initrd if asked.onlyinitrd else build
    started = time.monotonic()
    try:
        result = await make(spec, output, asked.kernelver)
    except (BuildError, PkglistError) as exc:
        await output.failed()
        await call.error(str(exc))
        if spec.rootimg.is_dir() and spec.files.incomplete():
            await call.info(
                f"{spec.rootimg} is marked incomplete; run genimage {name} again to finish it"
            )
        return
    records = {**defaults, "rootimgdir": str(spec.rootimgdir)}
    if result.kernelver:
        records["kernelver"] = result.kernelver
    if drivers:
        records["netdrivers"] = ",".join(drivers)
    if not image.permission:
        records["permission"] = "755"
    await record(call, name, records)
    seconds = time.monotonic() - started
    await call.info(f"genimage of {name} is complete: {spec.rootimg} ({seconds:.1f} s)", data={
        "osimage": name, "rootimg": str(spec.rootimg), "kernelver": result.kernelver,
        "updated": result.updated, "seconds": round(seconds, 1), "log": str(output.log_path),
    })  # fmt: skip


def _spec(image: OsImage, netboot: Path, noupdate: bool) -> tuple[Spec, dict[str, str]]:
    """The build's Spec, and the attribute values genimage records back."""
    image.check_set("osvers", "osarch", "profile", "provmethod")
    image.check_diskless()
    osvers, arch, family = image.osvers, image.osarch, image.family
    records: dict[str, str] = {}
    pkglist = ",".join(image.pkglist)
    if not pkglist:
        distro = Distro(osvers, arch, family)
        found = find_profile_file(distro, image.profile, "pkglist", image.installdir, netboot)
        if found is None:
            raise BuildError(f"A .pkglist file must be specified for image '{image.name}'.")
        pkglist = str(found)
    records["pkglist"] = pkglist
    pkgdir = list(image.pkgdir)
    if not pkgdir and family == "rh":
        pkgdir = [str(default_pkgdir(image.installdir, osvers, arch))]  # as xCAT
    if pkgdir:
        records["pkgdir"] = ",".join(pkgdir)
    if image.otherpkglist:
        records["otherpkglist"] = ",".join(image.otherpkglist)
    if image.postinstall:
        records["postinstall"] = ",".join(str(p) for p in image.postinstall)
    spec = Spec(
        name=image.name,
        osvers=osvers,
        arch=arch,
        profile=image.profile,
        family=family,
        rootimgdir=image.rootimgdir,
        pkglist=pkglist,
        pkgdir=pkgdir,
        otherpkglist=",".join(image.otherpkglist),
        otherpkgdir=image.otherpkgdir,
        postinstall=list(image.postinstall),
        noupdate=noupdate,
    )
    return spec, records


def _drivers(given: str | None) -> list[str] | None:
    """-n's (or netdrivers') comma list as module names, or None when empty."""
    if not given:
        return None
    drivers = [d.strip() for d in given.split(",") if d.strip()]
    for driver in drivers:
        if not _DRIVER.fullmatch(driver):
            raise BuildError(f"'{driver}' is not a kernel module name (-n or netdrivers)")
    return drivers or None


# -- geninitrd ---------------------------------------------------------------------

GENINITRD_USAGE = Usage(  # xCAT's (geninitrd.pm)
    "Usage: geninitrd <imagename> [--ignorekernelchk] [-h | --help]", version=False
)


@command("geninitrd", "Make a diskless osimage's initrd again.", usage=GENINITRD_USAGE)
def geninitrd_options(parser: CommandParser) -> None:
    # xCAT's skips a kernel version check of the drivers it injects from
    # driverupdatesrc; xcatd injects none (the image's own modules, -n/netdrivers).
    parser.add_argument("--ignorekernelchk", action="store_true", help="accepted, as xCAT's")
    parser.add_argument("imagename", help="the osimage whose initrd to make")


@geninitrd_options.runs
async def geninitrd(call: Call) -> None:
    """As xCAT's for a stateless image: genimage --onlyinitrd, once the image is built."""
    name = call.options.imagename
    image = await osimage(call, name)
    if image is None or not (image.osvers and image.osarch):
        await call.error(
            f"The osimage [{name}] was not defined or [osvers, osarch] attributes were not set."
        )
    elif image.provmethod == "install":
        await call.error(
            f"osimage {name} is a diskful (install) image: xcatd provisions diskless images, "
            "whose initrd geninitrd makes (provmethod netboot or statelite)"
        )
    elif not image.diskless:
        await call.error(
            f"The attribute [provmethod] for osimage [{name}] must be set to install, netboot "
            "or statelite."
        )
    elif image.given_rootimgdir is None:
        await call.error("The rootimgdir attribute for the osimage should be set.")
    elif not (image.files.rootimg / "lib/modules").is_dir():
        await call.error("The genimage should be run before running geninitrd.")
    else:
        await generate(call, name, Build(onlyinitrd=True))
