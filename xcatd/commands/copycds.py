"""copycds: import distribution media into the install tree and define its osimages."""

from __future__ import annotations

from pathlib import Path

import trio

from ..call import Call
from ..images.media.copy import CopyError, copy_media, target_lock
from ..images.media.detect import ARCHES, detect
from ..images.media.read import Media, MediaError, open_media
from ..images.osimage import Distro, default_pkgdir
from ..images.profiles import osimage_definitions
from ..store import objects
from ..store.objects import Definition
from ..store.objtypes import OSIMAGE
from . import osimages
from .registry import CommandParser, Usage, command

USAGE = Usage(  # xCAT's (copycds.pm), which has no -v
    "copycds [{-p|--path} path] [{-n|--name|--osver} distroname] [{-a|--arch} architecture] "
    "[-i|--inspection] [{-o|--noosimage}] [{-w|--nonoverwrite}] 1st.iso [2nd.iso ...].",
    version=False,
    bare_error="copycds needs at least one full path to ISO currently.",
)


@command(
    "copycds", "Copy distribution media into the install tree and define osimages.", usage=USAGE
)
def copycds_options(parser: CommandParser) -> None:
    parser.add_argument(
        "-n", "--name", "--osver", dest="distname", help="distribution name (rhels9.4, ...)"
    )
    parser.add_argument("-a", "--arch", help="architecture (x86_64, aarch64, ...)")
    parser.add_argument("-p", "--path", help="copy to this directory instead")
    parser.add_argument("-i", "--inspection", action="store_true", help="only identify the media")
    parser.add_argument("-o", "--noosimage", action="store_true", help="define no osimages")
    parser.add_argument("-w", "--nonoverwrite", action="store_true", help="never overwrite")
    parser.add_argument("media", nargs="+", help="ISO images or directories")


@copycds_options.runs
async def copycds(call: Call) -> None:
    options = call.options
    installdir = await osimages.installdir(call)
    for source in options.media:
        path = Path(call.body.cwd or "/") / source
        try:
            media = await trio.to_thread.run_sync(open_media, str(path))
        except MediaError as exc:
            await call.error(str(exc))
            continue
        try:
            await _one(call, media, installdir)
        except (MediaError, CopyError) as exc:
            await call.error(str(exc))
        finally:
            media.close()


async def _one(call: Call, media: Media, installdir: Path) -> None:
    options = call.options
    distro = await _identify(media, options.distname, options.arch)
    if options.inspection:
        await call.info(
            f"OS Image:{media.source}\nDISTNAME:{distro.name}\nARCH:{distro.arch}\n"
            f"DISCNO:{distro.discno}",
            data={"media": media.source, **distro.__dict__},
        )
        return
    target = Path(options.path or default_pkgdir(installdir, distro.name, distro.arch))
    if not target.is_absolute():
        target = Path(call.body.cwd or "/") / target
    await call.info(f"Copying media to {target}")
    await trio.to_thread.run_sync(_copy, call, media, target, options.nonoverwrite)
    await call.info("Media copy operation successful")
    if not options.noosimage:
        await _define_osimages(call, distro, installdir, target)


async def _identify(media: Media, distname: str | None, arch: str | None) -> Distro:
    detected = await trio.to_thread.run_sync(detect, media)
    if arch is not None and arch not in ARCHES:
        raise MediaError(f"unknown architecture '{arch}': use one of {', '.join(sorted(ARCHES))}")
    if detected is None and not (distname and arch):
        raise MediaError(
            f"could not identify the distribution on {media.source}: "
            "give it with -n DISTNAME -a ARCH"
        )
    family = detected.family if detected else ("debian" if distname and distname.startswith(
        ("debian", "ubuntu")) else "rh")  # fmt: skip
    return Distro(
        distname or detected.name,  # type: ignore[union-attr]
        ARCHES[arch] if arch else detected.arch,  # type: ignore[union-attr]
        family,
        detected.discno if detected else "1",
    )


def _copy(call: Call, media: Media, target: Path, never_overwrite: bool) -> None:
    """In a worker thread: the copy, with progress sent back to the client."""

    def progress(done: int, total: int) -> None:
        trio.from_thread.run(call.progress, "Copying media", done, total, "bytes")

    with target_lock(target):
        if never_overwrite and target.exists():
            raise CopyError(f"{target} exists and -w never overwrites it")
        copy_media(media, target, progress, trio.from_thread.check_cancelled)


async def _define_osimages(call: Call, distro: Distro, installdir: Path, pkgdir: Path) -> None:
    wanted = osimage_definitions(distro, installdir, pkgdir, call.context.layout.netboot_profiles)

    def work(db) -> list[str]:
        present = objects.existing(db, OSIMAGE, wanted)
        missing = [name for name in wanted if name not in present]
        definitions = [Definition(OSIMAGE, name, wanted[name]) for name in missing]
        objects.create(db, definitions, replace=False)
        return missing

    created = await call.context.store.run(work)
    for name in created:
        await call.info(f"Created osimage definition {name}")
