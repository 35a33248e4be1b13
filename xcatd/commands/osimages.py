"""What the image commands share: an osimage's definition, the install
directory it lives under, and writing back what a command did to it."""

from __future__ import annotations

from pathlib import Path

from ..call import Call
from ..images.osimage import OsImage
from ..store import objects
from ..store.objects import Definition, Edit
from ..store.objtypes import OSIMAGE


async def installdir(call: Call) -> Path:
    """site.installdir, or the layout's default when the site object has none."""
    _, found = await _read(call, None)
    return found


async def osimage(call: Call, name: str) -> OsImage | None:
    """The osimage as stored, None when there is no such osimage."""
    values, found = await _read(call, name)
    return None if values is None else OsImage.of(name, values, found)


async def _read(call: Call, name: str | None) -> tuple[dict[str, str] | None, Path]:
    """The osimage's stored values (None when there is no such osimage) and installdir."""

    def work(db) -> tuple[dict[str, str] | None, str | None]:
        image = objects.load(db, OSIMAGE, [name]).get(name) if name else None
        return image, objects.site(db).get("installdir")

    image, found = await call.context.store.run(work)
    return image, Path(found or call.context.layout.installdir)


async def record(call: Call, name: str, values: dict[str, str]) -> None:
    """Write attributes back onto the osimage, as xCAT's image commands do."""
    await call.context.store.run(
        lambda db: objects.change(db, [Edit(Definition(OSIMAGE, name, values))])
    )
