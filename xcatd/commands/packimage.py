"""packimage: pack an osimage's root image into the file diskless nodes boot.

    packimage [-m cpio|tar|squashfs] [-c gzip|pigz|xz|zstd] [--nosyncfiles] <osimage>

As xCAT's: the image's provmethod must be netboot or statelite, the root
image is `<rootimgdir>/rootimg`, the exlist files say what stays out, and
the result is `<rootimgdir>/rootimg.<ext>`; the osimage's synclists are
copied into the image first unless --nosyncfiles.  Here the archive is written in
this process on every core, appears atomically with a `.sha256` beside it,
and is recorded on the osimage (packfile, packmethod, packcompression,
packsize, packsha256, packtime, packuuid).  See xcatd/images/pack/.

A pack removes the image's other `rootimg.*` files, so the boot files of the
nodes set to the image (`imgurl=.../rootimg.cpio.gz`) would name a file that
is gone until nodeset ran again.  packimage writes them again itself, with
nodeset's own code (`refresh_image`), naming the new file (and with it its
checksum, which the initrd fetches from `<imgurl>.sha256`), and says so:
`packimage: updated the boot files of N nodes set to <image>`.  That, rather
than having the daemon serve each node's boot script as it asks for it,
because pxelinux and GRUB2 read their configuration files over TFTP as
they are on disk (so would any TFTP server the site runs instead), the
files stay what nodeset stat and an administrator read, and a pack happens
far less often than a boot.
"""

from __future__ import annotations

import time

import trio

from ..call import Call
from ..images.osimage import PACK_COMPRESSIONS, PACK_METHODS, OsImageError
from ..images.pack.exlist import ExlistError
from ..images.pack.packimage import PackRequest, PackResult, output_name, pack
from ..images.pack.tree import PackError
from ..store.objects import DefinitionError
from .nodeset import refresh_image
from .osimages import osimage, record
from .registry import CommandParser, Usage, command

USAGE = Usage(  # xCAT's (packimage.pm), with the methods and compressions xcatd has
    f"Usage:\n   packimage [-m| --method={'|'.join(PACK_METHODS)}] "
    f"[-c| --compress={'|'.join(sorted({*PACK_COMPRESSIONS, 'pigz'}))}] [--nosyncfiles] "
    "<imagename>\n   packimage [-h| --help]\n   packimage [-v| --version]",
    bare_error="An image name is required, use 'packimage <osimage name>'.",
)


@command("packimage", "Pack an osimage's root image for diskless nodes.", usage=USAGE)
def packimage_options(parser: CommandParser) -> None:
    parser.add_argument("-m", "--method", choices=PACK_METHODS, default="cpio",
                        help="archive method (default cpio)")  # fmt: skip
    parser.add_argument("-c", "--compress", choices=sorted({*PACK_COMPRESSIONS, "pigz"}),
                        default="gzip",
                        help="compression (default gzip; pigz is the same)")  # fmt: skip
    parser.add_argument("--nosyncfiles", action="store_true",
                        help="do not sync the osimage's synclists into the image")  # fmt: skip
    parser.add_argument("imagename", help="the osimage to pack")


@packimage_options.runs
async def packimage(call: Call) -> None:
    options = call.options
    name = options.imagename
    compression = "gzip" if options.compress == "pigz" else options.compress
    image = await osimage(call, name)
    if image is None:
        await call.error(f"Cannot find image '{name}' from the osimage table.")
        return
    try:
        image.check_diskless()
        files = image.files
    except OsImageError as exc:
        await call.error(str(exc))
        return
    request = PackRequest(
        imagename=name,
        rootimgdir=files.rootimgdir,
        method=options.method,
        compression=compression,
        exlists=list(image.exlist),
        synclists=[] if options.nosyncfiles else list(image.synclists),
    )
    await call.info(f"Packing contents of {files.rootimg}")
    await call.info(f"archive method:{options.method}")
    await call.info(f"compress method:{options.compress}")
    try:
        result = await trio.to_thread.run_sync(_pack, call, request)
    except (PackError, ExlistError) as exc:
        await call.error(str(exc))
        return
    except OSError as exc:  # writing xcatinfo or synclists into the image, say
        await call.error(f"packing {name} failed: {exc}")
        return
    for note in result.notes:
        await call.info(f"Note: {note}")
    try:
        await record(call, name, _recorded(request, result))
    except DefinitionError as exc:
        await call.error(f"{result.path} was written, but recording it on {name} failed: {exc}")
        return
    await call.info(_summary(result), data=_data(request, result))
    updated = await refresh_image(call, name)
    if updated:
        nodes = "node" if updated == 1 else "nodes"
        await call.info(f"packimage: updated the boot files of {updated} {nodes} set to {name}")


def _pack(call: Call, request: PackRequest) -> PackResult:
    """In a worker thread: the pack, with progress sent back to the client."""

    def progress(done: int, total: int) -> None:
        trio.from_thread.run(call.progress, "Packing", done, total, "bytes")

    return pack(request, progress, trio.from_thread.check_cancelled)


def _recorded(request: PackRequest, result: PackResult) -> dict[str, str]:
    return {
        "packfile": str(result.path),
        "packmethod": request.method,
        "packcompression": request.compression,
        "packsize": str(result.size),
        "packsha256": result.sha256,
        "packtime": time.strftime("%m-%d-%Y %H:%M:%S"),
        "packuuid": result.imageuuid,
    }


def _summary(result: PackResult) -> str:
    ratio = f"{100 * result.size / result.source_bytes:.1f}%" if result.source_bytes else "-"
    return (
        f"Packed {result.path}: {_amount(result.size)} from {_amount(result.source_bytes)} "
        f"in {result.entries:,} entries ({ratio}) in {result.seconds:.1f} s"
    )


def _data(request: PackRequest, result: PackResult) -> dict:
    return {
        "file": str(result.path),
        "method": request.method,
        "compression": request.compression,
        "size": result.size,
        "sha256": result.sha256,
        "source_bytes": result.source_bytes,
        "entries": result.entries,
        "seconds": round(result.seconds, 3),
        "imageuuid": result.imageuuid,
        "name": output_name(request.method, request.compression),
    }


def _amount(count: int) -> str:
    size = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{count:,} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError  # pragma: no cover
