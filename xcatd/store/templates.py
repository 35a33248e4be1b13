"""xCAT's shipped object definition templates (`lsdef --template`, `mkdef
--template switch-template ...`), from xcat_templates.json (generated from
xCAT's xCAT/templates/objects by tools/xcat_templates.py).

A template's value `MANDATORY:<what>` must be given on mkdef's command line,
`OPTIONAL:<what>` may be; every other value is the new object's unless the
command line gives one (DBobjectdefs.pm processArgs).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from ..errors import XcatdError
from .objtypes import TYPES, ObjectType

DATA = Path(__file__).with_name("xcat_templates.json")


class TemplateError(XcatdError, ValueError):
    """A mkdef from a template lacking what the template requires; xCAT's words."""


@cache
def _all() -> dict[str, tuple[ObjectType, dict[str, str]]]:
    data = json.loads(DATA.read_text(encoding="utf-8"))["templates"]
    return {name: (TYPES[t["objtype"]], t["attributes"]) for name, t in data.items()}


def shipped(types: Iterable[ObjectType]) -> dict[str, tuple[ObjectType, dict[str, str]]]:
    """The templates of these types, by name, sorted."""
    wanted = set(types)
    return {name: found for name, found in sorted(_all().items()) if found[0] in wanted}


def filled(template: dict[str, str], given: dict[str, str]) -> dict[str, str]:
    """A new object's values: the command line's over the template's, the
    template's placeholders dropped; TemplateError (xCAT's words) for a
    MANDATORY one not given."""
    values = {}
    for name, value in template.items():
        if value.startswith("MANDATORY:") and not given.get(name):
            raise TemplateError(f'The attribute "{name}" must be specified!')
        if not value.startswith(("MANDATORY:", "OPTIONAL:")):
            values[name] = value
    return {**values, **given}
