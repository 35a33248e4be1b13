"""xCAT's conditional attributes in mkdef and chdef: `bmc` only on an object
whose `mgt` is ipmi or openbmc, `username` only on a node whose `nodetype`
is a hmc, a switch, ... (Schema.pm's `only_if`, `Attribute.only_if`).

As xCAT's DBobjUtils validate_only_if_attrs: an attribute given is refused
unless one of its conditions holds in the values given, the object's stored
values (chdef) or the values of its groups; the condition's value is a word
of the attribute's value (`mgt=ipmi` holds for `ipmi`).  This project's
images are Linux ones: an osimage without `imagetype` is taken as `linux`
(so pkglist, rootimgdir, ... need no imagetype=linux, while the attributes
of xCAT's NIM and Windows images do need theirs).  Unlike xCAT, a
value cleared (`bmc=`) is never refused: clearing cannot set what the
condition forbids.  The table commands write columns as xCAT's chtab does,
without these checks (tables.py has its own rule of where a conditional
column is written).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import sqlite_utils

from .objects import Definition, DefinitionError, Values, load
from .objtypes import GROUP, NODE, OSIMAGE, ObjectType

# What an object without the condition's attribute is taken to have.
_TAKEN_AS = {OSIMAGE.name: {"imagetype": "linux"}}
# Conditions that other values meet too: a redfish node keeps its BMC in
# the same attributes as an ipmi or openbmc one (xCAT's Redfish agent reads
# the openbmc table, AGENT.pm parse_node_info; bmcport for a BMC that does
# not serve on 443, as an emulator).
_ALSO_MET_BY = {("mgt", "openbmc"): ("redfish",), ("mgt", "ipmi"): ("redfish",)}


def check(db: sqlite_utils.Database, definitions: list[Definition], stored: bool) -> None:
    """DefinitionError (per object, xCAT's words) for each conditional
    attribute given whose condition holds nowhere; `stored`: the objects'
    stored values count too (chdef; mkdef makes objects anew)."""
    conditional = [d for d in definitions if _conditional(d)]
    if not conditional:
        return  # the usual chdef (status=booted, ...) reads nothing more
    known = _stored(db, conditional) if stored else {}
    groups = _groups(db, conditional, known)
    problems = []
    for definition in conditional:
        own = known.get((definition.objtype, definition.name), {})
        in_groups = _listed_groups(definition, own)
        sources = [definition.values, own, *(groups.get(g, {}) for g in in_groups)]
        sources.append(_TAKEN_AS.get(definition.objtype.name, {}))
        problems += _unmet(definition, sources)
    if problems:
        raise DefinitionError(problems, per_object=True)


def _conditional(definition: Definition) -> bool:
    return any(_condition_of(definition.objtype, n, v) for n, v in definition.values.items())


def _condition_of(objtype: ObjectType, name: str, value: str) -> tuple[tuple[str, str], ...]:
    attribute = objtype.attributes.get(name)
    return attribute.only_if if attribute is not None and value != "" else ()


def _unmet(definition: Definition, sources: list[Values]) -> list[str]:
    """xCAT's line for each attribute whose conditions all fail; the values
    it names are those of every failing attribute with the same condition
    attribute, as xCAT gathers them."""
    failing: dict[str, str] = {}  # attribute -> its condition's attribute
    wanted: dict[str, set[str]] = {}  # condition attribute -> values that would do
    for name, value in definition.values.items():
        conditions = _condition_of(definition.objtype, name, value)
        if not conditions or any(_holds(sources, a, v) for a, v in conditions):
            continue
        for attribute, needed in conditions:
            failing[name] = attribute
            wanted.setdefault(attribute, set()).add(needed)
    return [
        f"Cannot set the attr='{name}' attribute unless {attribute} value is "
        f"{' or '.join(sorted(wanted[attribute]))}."
        for name, attribute in failing.items()
    ]


def _holds(sources: Iterable[Values], attribute: str, value: str) -> bool:
    values = (value, *_ALSO_MET_BY.get((attribute, value), ()))
    word = re.compile(rf"\b({'|'.join(map(re.escape, values))})\b")
    return any(word.search(source.get(attribute) or "") for source in sources)


def _stored(
    db: sqlite_utils.Database, definitions: list[Definition]
) -> dict[tuple[ObjectType, str], Values]:
    """The condition attributes (and groups) the objects have stored."""
    found: dict[tuple[ObjectType, str], Values] = {}
    for objtype in {d.objtype for d in definitions}:
        columns = _condition_columns(objtype)
        names = [d.name for d in definitions if d.objtype is objtype]
        for name, values in load(db, objtype, names, columns=columns).items():
            found[(objtype, name)] = values
    return found


def _groups(
    db: sqlite_utils.Database,
    definitions: list[Definition],
    known: dict[tuple[ObjectType, str], Values],
) -> dict[str, Values]:
    """The condition attributes of every group the nodes are in."""
    names: set[str] = set()
    for definition in definitions:
        own = known.get((definition.objtype, definition.name), {})
        names.update(_listed_groups(definition, own))
    if not names:
        return {}
    return load(db, GROUP, names, columns=_condition_columns(GROUP))


def _listed_groups(definition: Definition, own: Values) -> list[str]:
    """The groups a node is in once the definition is written (none for other types)."""
    listed = definition.values.get("groups") or own.get("groups") or ""
    return [group for group in listed.split(",") if group] if definition.objtype is NODE else []


def _condition_columns(objtype: ObjectType) -> list[str]:
    columns = {a for attribute in objtype.attributes.values() for a, _ in attribute.only_if}
    if objtype is NODE:
        columns.add("groups")
    return sorted(columns & objtype.attributes.keys())
