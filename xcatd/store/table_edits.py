"""Writing xCAT table rows: each cell becomes an attribute of an object, and
all of a request is written through `objects` (the store functions chdef
and rmdef use) in one transaction, or nothing is.

A request is a `Changes`: values to give columns of rows (`=` sets, `+=`
appends to a comma list and `,=` prepends, each item once, `^=` removes
items, as chtab and nodech do), rows to delete (the object itself for its
main table — nodelist, osimage, networks, policy —, otherwise the table's
columns cleared), in the order given.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlite_utils

from . import objects
from .nodes import Nodes
from .objects import Definition, Edit
from .objtypes import GROUP, NODE, ObjectType
from .tables import Column, Mapping, Table, TableError, not_kept

Key = tuple[ObjectType, str]
LIST_OPS = ("+=", ",=", "^=")


@dataclass
class Changes:
    """What one command asks of the tables."""

    assignments: dict[Key, list[tuple[Table, Column, str, str]]] = field(default_factory=dict)
    new: set[Key] = field(default_factory=set)  # objects made by this request
    cleared: dict[Key, list[Table]] = field(default_factory=dict)
    removed: dict[ObjectType, list[str]] = field(default_factory=dict)

    def assign(self, key: Key, table: Table, column: Column, op: str, value: str) -> None:
        """column op value for the object `key`; refused if the column is not kept for it."""
        if column.mapping(key[0]) is None:
            raise not_kept(table, column, key[0])
        self.assignments.setdefault(key, []).append((table, column, op, value))

    def clear(self, key: Key, table: Table) -> None:
        """The object's row in `table` deleted: the object, for its main table."""
        if table.is_main(key[0]) and key[0] is not GROUP:
            self.removed.setdefault(key[0], []).append(key[1])
        else:
            self.cleared.setdefault(key, []).append(table)


def apply(db: sqlite_utils.Database, nodes: Nodes, changes: Changes) -> int:
    """Write `changes`, or raise DefinitionError/TableError having written
    nothing; how many objects were changed or removed."""
    edits = [
        Edit(Definition(objtype, name, values))
        for (objtype, name), values in _values(db, nodes, changes).items()
    ]
    with db.atomic():
        for objtype, names in changes.removed.items():
            objects.remove(db, objtype, names)
        if edits:
            objects.change(db, edits, create=True)
    return len(edits) + sum(len(names) for names in changes.removed.values())


def _values(db: sqlite_utils.Database, nodes: Nodes, changes: Changes) -> dict[Key, dict[str, str]]:
    """Each changed object's attributes as they will be written ('' clears)."""
    result: dict[Key, dict[str, str]] = {}
    for key, tables_ in changes.cleared.items():
        for table in tables_:
            for _, mapping in table.attribute_columns(key[0]):
                result.setdefault(key, {})[mapping.attribute] = ""
    current = _current(db, changes)
    for key, assignments in changes.assignments.items():
        values, own = result.setdefault(key, {}), current.get(key, {})
        # Plain columns first: the conditional ones (mp.id) depend on them (mgt).
        for table, column, op, value in sorted(assignments, key=lambda a: a[1].conditional(key[0])):
            mapping = _mapping_for(nodes, key, values, own, column)
            now = values.get(mapping.attribute, own.get(mapping.attribute, ""))
            combined = _combined(now, op, value)
            if _writes_condition(nodes, key, values, own, table, column, mapping, combined):
                values[mapping.attribute] = combined
    return result


def _mapping_for(
    nodes: Nodes, key: Key, values: dict[str, str], own: dict[str, str], column: Column
) -> Mapping:
    """The attribute the column is for this object: the first place whose
    condition holds (mp.id is slotid where mgt=fsp, id where mgt=blade), or
    the first place, which `_writes_condition` then judges."""
    places = column.mappings_of(key[0])
    for mapping in places:
        if mapping.only_if is None:
            return mapping
        if _actual(nodes, key, values, own, mapping.only_if[0]) == mapping.only_if[1]:
            return mapping
    return places[0]


def _actual(
    nodes: Nodes, key: Key, values: dict[str, str], own: dict[str, str], attribute: str
) -> str | None:
    """The object's value of a condition's attribute: written now, its own,
    or (a node's) inherited."""
    objtype, name = key
    actual = values.get(attribute, own.get(attribute))
    if actual is None and objtype is NODE and name in nodes.groups_of:
        actual = nodes.attribute(name, attribute)
    return actual


def _current(db: sqlite_utils.Database, changes: Changes) -> dict[Key, dict[str, str]]:
    """The own values that list operations and conditions start from."""
    wanted: dict[ObjectType, set[str]] = {}
    for (objtype, _), assignments in changes.assignments.items():
        for _, column, _, _ in assignments:
            for mapping in column.mappings_of(objtype):
                wanted.setdefault(objtype, set()).update(
                    [mapping.attribute, *([mapping.only_if[0]] if mapping.only_if else [])]
                )
    found: dict[Key, dict[str, str]] = {}
    for objtype, attributes in wanted.items():
        names = [name for t, name in changes.assignments if t is objtype]
        columns = [a for a in attributes if a in objtype.attributes]
        for name, values in objects.load(db, objtype, names, columns=columns).items():
            found[(objtype, name)] = values
    return found


def _combined(now: str, op: str, value: str) -> str:
    """The value `op` leaves: chtab's += (append each new item), nodech's ,=
    (prepend each new item) and ^= (remove items); = replaces."""
    if op == "=":
        return value
    items = [item for item in now.split(",") if item]
    given = [item for item in value.split(",") if item]
    if op == "+=":
        items += [item for item in given if item not in items]
    elif op == ",=":
        for item in given:
            if item not in items:
                items.insert(0, item)
    else:
        items = [item for item in items if item not in given]
    return ",".join(items)


def _writes_condition(
    nodes: Nodes,
    key: Key,
    values: dict[str, str],
    own: dict[str, str],
    table: Table,
    column: Column,
    mapping: Mapping,
    value: str,
) -> bool:
    """Whether to write `value` to a conditional column (openbmc.bmc: only
    where mgt=openbmc): not for an object whose condition attribute says
    otherwise, or is unset where the column is not the attribute's first
    place (ipmi.bmc is).  There the column shows nothing: an empty value
    (tabrestore's, for every column of a row) is left unwritten, so that the
    attribute's place that holds its value keeps it; any other is refused."""
    if mapping.only_if is None:
        return True
    attribute, wanted = mapping.only_if
    objtype, name = key
    actual = _actual(nodes, key, values, own, attribute)
    if not ((actual and actual != wanted) or (not actual and not mapping.first)):
        return True
    if value:
        raise TableError(
            f"{table.name}.{column.name} is {objtype.name} attribute '{mapping.attribute}' only "
            f"where {attribute}={wanted}, and {name} has {attribute}={actual or '(unset)'}"
        )
    return False
