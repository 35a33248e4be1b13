"""rmimage: remove a diskless osimage's files, and with --xcatdef its definition.

    rmimage [-V] <imagename> [--xcatdef]

As xCAT's: from <rootimgdir>, the root image `rootimg/`, `kernel`,
`initrd-stateless.gz`, `initrd-statelite.gz` and every `rootimg.*` (the
packed images and their `.sha256`), then the kernel and initrd nodeset
copied to <tftpdir>/xcat/osimage/<imagename>/, each named as it goes
(`Removing directory ...`, `Removing file ...`).  Safer than xCAT's:

- only under the install directory: a rootimgdir outside it is refused;
- not while a genimage or packimage of the image runs (their locks, held
  for the whole removal, so none starts meanwhile either);
- not while anything is mounted inside the root image (a chroot's /proc,
  a bind mount of the host's files), which xCAT unmounts and we leave to
  the administrator: removing through a mount removes the host's files.

The nodes nodeset set to the image can no longer boot (their packed image
is gone, so the kernel and initrd are of no use to them either): they are
named in a warning, to be set to another image.  Copies of the image on
service nodes stay, as xCAT's man page says of statelite images.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import trio

from ..call import Call
from ..errors import XcatdError
from ..images.locks import held
from ..images.osimage import INITRD, KERNEL, ImageFiles, OsImage, OsImageError
from ..store import objects
from ..store.objtypes import OSIMAGE
from .bootsettings import settings
from .nodeset import IMAGES, set_to
from .osimages import osimage
from .registry import CommandParser, Usage, command

USAGE = Usage(  # xCAT's (rmimage.pm), without the -o/-a/-p form xcatd does not have
    "\nUsage:\n    rmimage [-h | --help]\n    rmimage [-V | --verbose] imagename [--xcatdef]",
    version=False,
    bare_rc=1,
)
STATELITE_INITRD = "initrd-statelite.gz"


class RemoveError(XcatdError):
    pass


@command("rmimage", "Remove a diskless osimage's files.", usage=USAGE)
def rmimage_options(parser: CommandParser) -> None:
    parser.add_argument("-V", "--verbose", action="store_true", help="say what is looked up")
    parser.add_argument("--xcatdef", action="store_true", help="remove the osimage definition too")
    parser.add_argument("imagename", help="the osimage whose files to remove")


@rmimage_options.runs
async def rmimage(call: Call) -> None:
    name = call.options.imagename
    image = await osimage(call, name)
    if image is None:
        await call.error(f"Cannot find image '{name}' from the osimage table.")
        return
    try:
        files = await _checked(call, image)
        with _locked(files):
            await _remove(call, files, await _boot_copy(call, name))
    except (RemoveError, OsImageError) as exc:
        await call.error(str(exc))
        return
    await call.info("Image files have been removed successfully from this management node.")
    if image.provmethod == "statelite":
        await call.info(
            "Please be aware that the statelite image files on the diskful service nodes are "
            "not removed, you can remove the image files on the service nodes manually if "
            f'necessary, for example, use command "rsync -az --delete {image.installdir} '
            '<sn>:/" to remove the image files on the service nodes, where the <sn> is the '
            "hostname of the service node."
        )
    if call.options.xcatdef:
        await _remove_definition(call, name)


async def _checked(call: Call, image: OsImage) -> ImageFiles:
    """The image's files, once it is known they may be removed."""
    name, verbose = image.name, call.options.verbose
    if verbose:
        await call.info(f"image name is {name}")
        await call.info(
            f"For osimage {name}: osver = {image.osvers}, arch = {image.osarch}, profile = "
            f"{image.profile}, method = {image.provmethod} in osimage table"
        )
    if image.provmethod and not image.diskless:
        raise RemoveError(
            f'Invalid method "{image.provmethod}", the rmimage command can only be used to '
            "remove the netboot or statelite image files"
        )
    rootimgdir = image.rootimgdir
    if verbose:
        await call.info(f"image directory is {rootimgdir}")
    installdir = image.installdir.resolve()
    real = rootimgdir.resolve()
    if real == installdir or installdir not in real.parents:
        raise RemoveError(
            f"rootimgdir {rootimgdir} of osimage {name} is not inside the install directory "
            f"{image.installdir}: rmimage removes files only there"
        )
    if not rootimgdir.is_dir():
        raise RemoveError(f"Image directory {rootimgdir} does not exist")
    files = ImageFiles(real)
    mounted = await trio.to_thread.run_sync(mounts_inside, files.rootimg)
    if mounted:
        raise RemoveError(
            f"{mounted[0]} is mounted inside {files.rootimg}: unmount it (umount {mounted[0]}) "
            "and run rmimage again; removing through it would remove the host's files"
        )
    return files


@contextlib.contextmanager
def _locked(files: ImageFiles) -> Iterator[None]:
    """packimage's lock and genimage's, both exclusive (packimage holds
    genimage's shared): refused while either runs, and none starts meanwhile."""
    busy = RemoveError(
        f"genimage or packimage is using {files.rootimg}: run rmimage when it has finished"
    )
    with held(files.pack_lock, busy), held(files.build_lock, busy):
        yield


async def _boot_copy(call: Call, name: str) -> Path | None:
    """Where nodeset copied the image's kernel and initrd, after warning of
    the nodes set to boot it."""

    def work(db) -> tuple[list[str], Path]:
        nodes = set_to(call.nodes(db), name)
        return nodes, settings(call, objects.site(db)).tftpdir

    nodes, tftpdir = await call.context.store.run(work)
    if nodes:
        shown = ",".join(nodes[:10]) + (f" (and {len(nodes) - 10} more)" if len(nodes) > 10 else "")
        await call.warning(
            f"{len(nodes)} node(s) set to boot {name} cannot boot it any more: {shown}; "
            f"set them to another image (nodeset <noderange> osimage=<image>)"
        )
    copy = tftpdir / IMAGES / name
    return copy if copy.parent == tftpdir / IMAGES else None  # a name with a '/' has none


async def _remove(call: Call, files: ImageFiles, boot_copy: Path | None) -> None:
    rootimgdir = files.rootimgdir
    if files.rootimg.is_dir() and not files.rootimg.is_symlink():
        await _gone(call, f"Removing directory {files.rootimg}", shutil.rmtree, files.rootimg)
    packed = sorted(p for p in rootimgdir.glob("rootimg.*") if not p.is_dir())
    for path in [rootimgdir / KERNEL, rootimgdir / INITRD, rootimgdir / STATELITE_INITRD, *packed]:
        if path.is_file():
            await _gone(call, f"Removing file {path}", os.unlink, path)
    if boot_copy is not None and boot_copy.is_dir():
        await _gone(call, f"Removing directory {boot_copy}", shutil.rmtree, boot_copy)


async def _gone(call: Call, saying: str, remove: Callable[[Path], object], path: Path) -> None:
    await call.info(saying)
    try:
        await trio.to_thread.run_sync(remove, path)
    except OSError as exc:
        raise RemoveError(f"cannot remove {path}: {exc}") from None


async def _remove_definition(call: Call, name: str) -> None:
    await call.info(f"Removing osimage definition for {name}.")
    removed, _ = await call.context.store.run(lambda db: objects.remove(db, OSIMAGE, [name]))
    if removed:
        await call.info(f"osimage definition for {name} is removed successfully.")
    else:
        await call.error(f"Failed to remove the osimage definition for {name}")


def mounts_inside(directory: Path) -> list[str]:
    """The mount points at or under `directory` (its real path), from /proc/self/mountinfo."""
    real = os.path.realpath(directory)
    found = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            point = _unescaped(line.split()[4])
            if point == real or point.startswith(real.rstrip("/") + "/"):
                found.append(point)
    return found


def _unescaped(field: str) -> str:
    """A mountinfo path: spaces, tabs, newlines and backslashes are octal escapes."""
    for code in ("\\040", "\\011", "\\012", "\\134"):
        field = field.replace(code, chr(int(code[1:], 8)))
    return field
