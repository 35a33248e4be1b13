"""Reading and writing object definitions, checked against their declarations.

Every function here runs in the store's worker thread and does all its
writing in one transaction: a definition with one bad attribute among ten
thousand writes nothing and names the object and the attribute.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial

import sqlite_utils

from ..errors import XcatdError
from . import keyed
from .attributes import AttributeValueError
from .nodes import in_chunks, rows
from .objtypes import GROUP, NETWORK, NODE, SITE, TYPES, ObjectType, check_name

Values = dict[str, str]


class DefinitionError(XcatdError):
    """Definitions that cannot be written; one line per problem.

    `per_object`: the problems are those of objects that failed xCAT's checks
    one by one (xCAT goes on with the others and closes with a line of its
    own); otherwise the request as a whole is wrong.  `warnings`: objects
    skipped on the way, which xCAT warns of whatever else happens."""

    def __init__(
        self, problems: list[str], *, per_object: bool = False, warnings: list[str] | None = None
    ) -> None:
        super().__init__(*problems, warnings=warnings or [])
        self.problems = problems
        self.per_object = per_object


@dataclass
class Definition:
    """What a command asks of one object."""

    objtype: ObjectType
    name: str
    values: Values = field(default_factory=dict)


def object_type(name: str) -> ObjectType:
    try:
        return TYPES[name]
    except KeyError:
        # xCAT's words, leading newline included (DBobjectdefs.pm processArgs).
        raise DefinitionError([f"\nType '{name}' is not a valid xCAT object type."]) from None


def checked(definition: Definition) -> Values:
    """The definition's values as they will be stored, or DefinitionError."""
    if problems := naming_problems(definition):
        raise DefinitionError(problems)
    return checked_values(definition)


def naming_problems(definition: Definition) -> list[str]:
    """What is wrong with the object's name and its attributes' names: what
    xCAT refuses for the whole request before it looks at any object."""
    objtype, problems = definition.objtype, []
    if why := check_name(objtype, definition.name):
        problems.append(why)
    if objtype.only_object and definition.name != objtype.only_object:
        problems.append(f"the only {objtype.name} object is '{objtype.only_object}'")
    for name in definition.values:
        if objtype.attribute(name) is None:
            problems.append(
                f"{definition.name}: '{name}' is not a valid attribute name for an object "
                f"type of '{objtype.name}' (see lsdef -t {objtype.name} -h)"
            )
    return problems


def checked_values(definition: Definition) -> Values:
    """The values of a definition whose names are known good, as they will be
    stored, or DefinitionError (per object) naming each bad value."""
    values, problems = {}, []
    for name, value in definition.values.items():
        attribute = definition.objtype.attributes.get(name)
        try:
            if attribute is None:  # nicips.eth1: one interface's entry
                values[name] = definition.objtype.attribute(name).check_entry(name, value)  # type: ignore[union-attr]
            else:
                values[name] = attribute.check(value)
        except AttributeValueError as exc:
            problems.append(f"{definition.name}: {exc}")
    if problems:
        raise DefinitionError(problems, per_object=True)
    return values


def existing(db: sqlite_utils.Database, objtype: ObjectType, names: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for chunk, marks in in_chunks(list(names)):
        query = f"select [{objtype.key}] from [{objtype.name}] where [{objtype.key}] in ({marks})"
        found.update(row[0] for row in db.execute(query, chunk))
    return found


def any_object(db: sqlite_utils.Database, objtype: ObjectType) -> bool:
    """Whether the type has any object at all (without reading them)."""
    return db.execute(f"select 1 from [{objtype.name}] limit 1").fetchone() is not None


def load(
    db: sqlite_utils.Database,
    objtype: ObjectType,
    names: Iterable[str] | None = None,
    columns: Iterable[str] | None = None,
) -> dict[str, Values]:
    """Objects' own (stored) values, by name; all objects when `names` is None;
    only `columns` (and the name) when given."""
    read = partial(rows, db, objtype.name, objtype.key, columns=columns)
    if names is None:
        return read()
    names = list(names)
    if len(names) > 5000:  # cheaper to read the table once than to look up each
        everything = read()
        return {name: everything[name] for name in names if name in everything}
    found: dict[str, Values] = {}
    for chunk, marks in in_chunks(names):
        found.update(read(f"[{objtype.key}] in ({marks})", chunk))
    return found


def site(db: sqlite_utils.Database) -> Values:
    """The cluster-wide settings: the one site object's values."""
    return load(db, SITE, [SITE.only_object]).get(SITE.only_object, {})


@dataclass
class Created:
    """What mkdef wrote: how many objects, and xCAT's warning for each existing
    object it left as it was."""

    count: int
    warnings: list[str]


# xCAT's words (DBobjectdefs.pm defmk) for an object that exists already: a
# warning, and the others are still created; for a network, an error.
_EXISTS = (
    "A definition for '{}' already exists. No changes will be made.  "
    "Run again with '-f' option to force replace."
)
_NETWORK_EXISTS = (
    "A network definition called '{0}' already exists. Cannot create a definition for '{0}'."
)


def create(db: sqlite_utils.Database, definitions: list[Definition], replace: bool) -> Created:
    """mkdef: new objects (or, with `replace`, objects replaced whole).

    Checked as xCAT's defmk checks them: the names, for the whole request;
    then each object: a network whose name is taken (even with `replace`),
    an existing object (left as it is, with a warning, unless replaced), its
    values, what its type requires.  Unlike xCAT, nothing is written when
    any object fails."""
    problems = [problem for definition in definitions for problem in naming_problems(definition)]
    _refuse_duplicates(definitions, problems)
    if problems:
        raise DefinitionError(problems)
    types = {definition.objtype for definition in definitions}
    present = {t: existing(db, t, [d.name for d in definitions if d.objtype is t]) for t in types}
    skipped: list[str] = []
    rows: dict[ObjectType, list[dict]] = {}
    for definition in definitions:
        exists = definition.name in present[definition.objtype]
        if exists and definition.objtype is NETWORK:
            problems.append(_NETWORK_EXISTS.format(definition.name))
        elif exists and not replace:
            skipped.append(_EXISTS.format(definition.name))
        elif (row := _new_row(definition, problems)) is not None:
            rows.setdefault(definition.objtype, []).append(row)
    problems += _same_networks(db, rows.get(NETWORK, []))
    if problems:
        raise DefinitionError(problems, per_object=True, warnings=skipped)
    with db.atomic():
        for objtype, new_rows in rows.items():
            db.table(objtype.name).insert_all(new_rows, replace=replace, batch_size=2000)
    return Created(sum(len(new_rows) for new_rows in rows.values()), skipped)


def _new_row(definition: Definition, problems: list[str]) -> dict | None:
    """The row of a new object, or None, with why it cannot be made added to
    `problems`: a bad value, or an attribute its type requires missing."""
    try:
        values = checked_values(definition)
    except DefinitionError as exc:
        problems += exc.problems
        return None
    values = keyed.folded(values, {})
    if lacking := _lacking(definition.objtype, definition.name, values):
        problems.append(lacking)
        return None
    return {definition.objtype.key: definition.name, **values}


def _refuse_duplicates(definitions: list[Definition], problems: list[str]) -> None:
    seen: set[tuple[str, str]] = set()
    for definition in definitions:
        key = (definition.objtype.name, definition.name)
        if key in seen:
            problems.append(f"'{definition.name}' is defined twice in the input")
        seen.add(key)


@dataclass
class Edit:
    """chdef's change to one object: values to set, or list items to add or remove."""

    definition: Definition
    mode: str = "set"  # set | add (-p) | remove (-m)


def change(db: sqlite_utils.Database, edits: list[Edit], *, create: bool = False) -> Changed:
    """Change objects; with `create` (chdef) those that do not exist are created,
    as xCAT's chdef does (without it, only groups and the site object are)."""
    problems: list[str] = []
    updates: list[Update] = []
    for objtype, group in _by_type(edits).items():
        present = _present(db, objtype, group)
        for edit in group:
            name = edit.definition.name
            try:
                values = checked(edit.definition)
            except DefinitionError as exc:
                problems += exc.problems
                continue
            current = present.get(name)
            if current is None and not (create or objtype in (GROUP, SITE)):
                problems.append(not_found(name, objtype))
                continue
            if edit.mode != "set" and (entry := _interface_entry(values)):
                problems.append(
                    f"-p and -m add to and remove from lists, not {entry}=: "
                    f"give the interface's whole value"
                )
                continue
            new = _edited(current or {}, keyed.folded(values, current or {}), edit.mode)
            if why := _refused(edit, current, new):
                problems.append(why)
            else:
                updates.append(Update(objtype, name, new, created=current is None))
    new_networks = [u for u in updates if u.created and u.objtype is NETWORK]
    problems += _same_networks(db, [{NETWORK.key: u.name, **u.columns} for u in new_networks])
    if problems:
        raise DefinitionError(problems)
    created = _new(db, [update for update in updates if update.created])
    with db.atomic():
        _write(db, updates)
    return Changed(len(updates), created)


@dataclass
class Changed:
    """What chdef wrote: how many objects, and the names of those that did not
    exist before (xCAT prints them)."""

    count: int
    new: list[str]


def _present(
    db: sqlite_utils.Database, objtype: ObjectType, group: list[Edit]
) -> dict[str, Values]:
    """The edited objects that exist, with what the edits need of their values:
    what must stay set, and the current lists that -p and -m edit."""
    needed = {*objtype.required}
    # -p and -m edit the current lists; nicips.eth1= keeps nicips' other interfaces.
    needed.update(
        base
        for edit in group
        for base, interface in map(keyed.split_name, edit.definition.values)
        if edit.mode != "set" or interface is not None
    )
    return load(db, objtype, [edit.definition.name for edit in group], columns=needed)


def _interface_entry(values: Values) -> str | None:
    """The first `attr.nic` name among `values`, if any."""
    return next((name for name in values if keyed.split_name(name)[1] is not None), None)


def _refused(edit: Edit, current: Values | None, new: Mapping[str, str | None]) -> str | None:
    """Why this edit, giving the object `new` values, cannot be made (in xCAT's
    words where xCAT refuses it too), or None."""
    objtype, name = edit.definition.objtype, edit.definition.name
    if current is None:
        if edit.mode == "remove":
            return f"The '-m' option is not valid since the '{name}' definition does not exist."
        return _lacking(objtype, name, new)
    for required in objtype.required:
        if not new.get(required, current.get(required)):
            return f"{name}: a {objtype.name} must keep '{required}'"
    return None


# What xCAT says (DBobjectdefs.pm, defmk and defch) of a new object without
# what its type requires.
_LACKING = {
    NODE.name: "Attribute 'groups' is not specified for node '{}', skipping to the next node.",
    NETWORK.name: "Net or mask value should not be empty for xCAT network object '{}'.",
}


_SAME_NETWORK = (
    "A network definition called '{}' already exists that contains the same net and mask "
    "values. Cannot create a definition for '{}'."
)


def _same_networks(db: sqlite_utils.Database, new: list[dict]) -> list[str]:
    """xCAT's refusal of each new network whose net and mask another network
    has (stored, or earlier in the request): the two would be one network."""
    if not new:
        return []
    taken = {
        (values.get("net"), values.get("mask")): name
        for name, values in load(db, NETWORK, columns=["net", "mask"]).items()
    }
    problems = []
    for row in new:
        name, key = row[NETWORK.key], (row.get("net"), row.get("mask"))
        if (other := taken.get(key)) is not None and other != name:
            problems.append(_SAME_NETWORK.format(other, name))
        else:
            taken.setdefault(key, name)
    return problems


def _lacking(objtype: ObjectType, name: str, values: Mapping[str, str | None]) -> str | None:
    """xCAT's refusal of a new object without an attribute its type requires, or None."""
    if all(values.get(required) for required in objtype.required):
        return None
    return _LACKING[objtype.name].format(name)


def not_found(name: str, objtype: ObjectType) -> str:
    """xCAT's words for a named object that does not exist."""
    return f"Could not find an object named '{name}' of type '{objtype.name}'."


def _new(db: sqlite_utils.Database, created: list[Update]) -> list[str]:
    """The objects among those just given a row that did not exist before, as
    xCAT counts them: the site object always exists, and so does a group that
    some node lists."""
    listed = _listed_groups(db) if any(u.objtype is GROUP for u in created) else set()
    return [
        u.name
        for u in created
        if u.objtype is not SITE and not (u.objtype is GROUP and u.name in listed)
    ]


def _listed_groups(db: sqlite_utils.Database) -> set[str]:
    """Every group named in some node's `groups` (there are few distinct lists)."""
    listed: set[str] = set()
    for (groups,) in db.execute(f"select distinct groups from [{NODE.name}]"):
        listed.update((groups or "").split(","))
    return listed


@dataclass
class Update:
    objtype: ObjectType
    name: str
    columns: dict[str, str | None]
    created: bool


def _write(db: sqlite_utils.Database, updates: list[Update]) -> None:
    """Write changed columns; one executemany per distinct set of columns, so a
    chdef of one attribute on 100,000 nodes is a single statement; new objects
    are inserted in batches."""
    inserts: dict[ObjectType, list[dict]] = {}
    batches: dict[tuple[ObjectType, tuple[str, ...]], list[list]] = {}
    for update in updates:
        if update.created:
            row = {update.objtype.key: update.name, **update.columns}
            inserts.setdefault(update.objtype, []).append(row)
            continue
        columns = tuple(update.columns)
        batches.setdefault((update.objtype, columns), []).append(
            [*update.columns.values(), update.name]
        )
    for objtype, new_rows in inserts.items():
        db.table(objtype.name).insert_all(new_rows, batch_size=2000)
    for (objtype, columns), parameters in batches.items():
        if not columns:
            continue
        assignments = ", ".join(f"[{c}] = ?" for c in columns)
        db.conn.executemany(
            f"update [{objtype.name}] set {assignments} where [{objtype.key}] = ?", parameters
        )


def _by_type(edits: list[Edit]) -> dict[ObjectType, list[Edit]]:
    grouped: dict[ObjectType, list[Edit]] = {}
    for edit in edits:
        grouped.setdefault(edit.definition.objtype, []).append(edit)
    return grouped


def _edited(current: Values, values: Values, mode: str) -> dict[str, str | None]:
    """The columns to write: values set, or list items added (-p) or removed (-m)."""
    if mode == "set":
        return {name: value or None for name, value in values.items()}  # '' clears
    new: dict[str, str | None] = {}
    for name, value in values.items():
        items = [item for item in (current.get(name) or "").split(",") if item]
        given = [item for item in value.split(",") if item]
        if mode == "add":
            items += [item for item in given if item not in items]
        else:
            items = [item for item in items if item not in given]
        new[name] = ",".join(items) or None
    return new


def rename(db: sqlite_utils.Database, objtype: ObjectType, name: str, new_name: str) -> None:
    """chdef -n: the object's new name, or DefinitionError in xCAT's words
    (DBobjectdefs.pm defch) when it does not exist or the name is taken."""
    if not existing(db, objtype, [name]):
        raise DefinitionError([f"The {name} is not a valid object."])
    if existing(db, objtype, [new_name]):
        raise DefinitionError([f"Object {new_name} already exists."])
    with db.atomic():
        db.execute(
            f"update [{objtype.name}] set [{objtype.key}] = ? where [{objtype.key}] = ?",
            [new_name, name],
        )


def remove(
    db: sqlite_utils.Database, objtype: ObjectType, names: list[str]
) -> tuple[int, list[str]]:
    """rmdef: the named objects that exist, as xCAT removes them; how many
    were removed, and the names of those that do not exist.

    A group exists when it is defined or some node lists it; removing a
    static group takes it out of its members' `groups`, as xCAT's defrm does
    (a dynamic group's members are left as they are)."""
    names = list(dict.fromkeys(names))
    present = existing(db, objtype, names)
    with db.atomic():
        if objtype is GROUP:
            present |= _listed_groups(db) & set(names)
            _leave_groups(db, present - _dynamic(db, present))
        for chunk, marks in in_chunks([name for name in names if name in present]):
            db.execute(f"delete from [{objtype.name}] where [{objtype.key}] in ({marks})", chunk)
    return len(present), [name for name in names if name not in present]


def _dynamic(db: sqlite_utils.Database, groups: set[str]) -> set[str]:
    """The dynamic groups among these."""
    defined = load(db, GROUP, groups, columns=["grouptype"])
    return {name for name, values in defined.items() if values.get("grouptype") == "dynamic"}


def _leave_groups(db: sqlite_utils.Database, groups: set[str]) -> None:
    """Take these groups out of the `groups` of every node that lists them."""
    if not groups:
        return
    changed = []
    for node, listed in db.execute(f"select [{NODE.key}], groups from [{NODE.name}]"):
        items = (listed or "").split(",")
        kept = [group for group in items if group not in groups]
        if len(kept) != len(items):
            changed.append([",".join(kept) or None, node])
    db.conn.executemany(f"update [{NODE.name}] set groups = ? where [{NODE.key}] = ?", changed)
