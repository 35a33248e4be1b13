"""What a service node does before it runs a request the management node
carried to it: take the management node's definitions (replica.py) and
the packed images they name (on the installdir NFS-mounted from
site.installloc, nfsmount.py, else copied, images.py), so that the command then works
as it does on the management node, on this node's own files — and the
passwd rows its nodes' BMCs are driven with, which it keeps in memory."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..call import Call
from ..errors import XcatdError
from ..hw.target import Defaults, passwd_defaults
from ..images.osimage import INITRD, KERNEL
from ..link import LinkError
from ..store import objects
from .images import ImageCopyError, provide, source_of
from .nfsmount import Installloc, MountError, ensure_mounted, ensure_unmounted
from .replica import Copy, ReplicaError, master_of, refresh

if TYPE_CHECKING:
    from ..context import Context


class ServingError(XcatdError):
    """The service node cannot work for this request; the text says why."""


async def definitions(call: Call) -> Copy | None:
    """The management node's definitions, made this node's; None when there
    is nothing to take (not a service node, or a request the management
    node did not carry here)."""
    context = call.context
    if not (context.role == "servicenode" and call.relayed_by_master):
        return None
    try:
        return await take_definitions(context)
    except (ReplicaError, LinkError) as exc:
        why = f"{context.config.hostname} cannot take the definitions: {exc}"
        raise ServingError(why) from None


async def take_definitions(context: Context) -> Copy:
    """The management node's definitions, made this node's (replica.py).
    New ones give the consoles this node holds anew: nodes added or
    removed, BMCs or passwd rows changed."""
    kept = context.definitions
    copy = await refresh(context)
    if copy is not kept:
        await context.hold_consoles()
    return copy


async def bmc_defaults(context: Context) -> Defaults:
    """The passwd table's rows the BMCs are driven with here: the management
    node's own; on a service node, those it took with the definitions (none
    before it took them), whatever its own database holds."""
    if context.role == "servicenode":
        return context.definitions.passwd if context.definitions is not None else {}
    return await context.store.run(passwd_defaults)


async def copy_images(
    call: Call, copy: Copy, images: Mapping[str, Mapping[str, str]]
) -> dict[str, str]:
    """Each osimage's packed files from the management node, current: on
    the installdir mounted from site.installloc, else copied; why an image
    could not be had, by name (its nodes cannot be set up)."""
    master = master_of(call.context).host
    installdir = call.context.layout.installdir
    # An image not packed has no files to have: nodeset says so for its nodes.
    packed = {name: Path(v["packfile"]) for name, v in images.items() if v.get("packfile")}
    if not packed:  # nothing to serve: no mount tried (and logged) for nothing
        return {}
    try:
        installloc = Installloc.parse(copy.site.get("installloc", ""))
        if installloc is not None:
            await ensure_mounted(installloc.source(master), installdir)
            return {name: why for name, path in packed.items() if (why := _missing(name, path))}
        await ensure_unmounted(installdir)
    except MountError as exc:
        return {name: f"osimage {name} is not reachable: {exc}" for name in packed}
    source = source_of(copy, master, call.context.config.http_port)
    failed = {}
    for name, packfile in packed.items():
        try:
            await provide(source, installdir, packfile)
        except (ImageCopyError, OSError) as exc:
            failed[name] = f"cannot copy osimage {name} from the management node: {exc}"
    return failed


def keeps_copies(copy: Copy) -> bool:
    """Whether this service node serves its own copies of the images
    (images.py: replaced only by renames), not the management node's files
    on site.installloc's mount, which may be rewritten in place."""
    with contextlib.suppress(MountError):
        return Installloc.parse(copy.site.get("installloc", "")) is None
    return False


async def mount_installloc(context: Context) -> None:
    """At a service node daemon's start, before its boot services: the
    installdir mounted again from the site.installloc of the definitions it
    last took (kept in its store): the mount was its last run's (its mount
    namespace's), and nodes that boot before the next nodeset must get the
    management node's images, not what the installdir holds underneath.  A
    failure is logged (nfsmount.py); the next nodeset tries again."""
    site = await context.store.run(objects.site)
    with contextlib.suppress(MountError, ReplicaError):
        installloc = Installloc.parse(site.get("installloc", ""))
        if installloc is not None:
            source = installloc.source(master_of(context).host)
            await ensure_mounted(source, context.layout.installdir)


def _missing(name: str, packfile: Path) -> str | None:
    """Why the image on the NFS-mounted installdir cannot be served, if it cannot."""
    for path in (packfile, *(packfile.with_name(n) for n in (KERNEL, INITRD))):
        if not path.is_file():
            return f"osimage {name} is not reachable: {path} is not on site.installloc's mount"
    return None
