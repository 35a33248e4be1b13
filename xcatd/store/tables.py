"""xCAT's tables as a second view of the objects: rows read and written
through the same store as lsdef and chdef.

The tables, their columns in xCAT's order and which object attribute each
column is come from xCAT's Schema.pm, through `xcat_tables.json` (made by
tools/xcat_tables.py).  A column is *kept* when the object type it belongs to
here declares its attribute (objtypes.py); every other column reads empty
and cannot be written.  Rows are keyed as in xCAT: node tables by node or
group name (a group's row is the group object's own values: that is where
this project keeps group attributes), osimage and linuximage by image name,
networks by netname, policy by priority, nodegroup by group name, passwd
by key (objtypes.PASSWD), and site by key, one row per site attribute.

Conditional columns (xCAT's `only_if`, e.g. ipmi.bmc only where mgt=ipmi)
show an object's value only where the condition holds; one is written only
where the condition's attribute is unset or holds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache, cached_property, partial
from pathlib import Path

from ..errors import XcatdError
from .keyed import split_name
from .objtypes import GROUP, NODE, SITE, STORED, TYPES, ObjectType
from .selection import Selection, parse_selection

DATA = Path(__file__).with_name("xcat_tables.json")

Cells = dict[str, str | None]  # column -> value (None: no value)


class TableError(XcatdError, ValueError):
    """A table request that cannot be done; the message is one line, xCAT's where xCAT has one."""


@dataclass(frozen=True)
class Mapping:
    """Where a column lives here: an attribute of an object type, maybe on a condition."""

    objtype: ObjectType
    attribute: str
    only_if: tuple[str, str] | None = None  # (attribute, value)
    first: bool = True  # the attribute's first place in %defspec (ipmi.bmc, not openbmc.bmc)

    def applies(self, condition: Callable[[str], str | None]) -> bool:
        """Whether the condition holds for an object, given its (effective)
        values.  With the condition's attribute unset, the value is in its
        first place only: a bmc without a mgt shows in ipmi, not in openbmc."""
        if self.only_if is None:
            return True
        actual = condition(self.only_if[0])
        return actual == self.only_if[1] if actual else self.first


@dataclass(frozen=True)
class Column:
    name: str
    description: str
    mappings: tuple[Mapping, ...]  # those kept here, in Schema.pm's order

    def mapping(self, objtype: ObjectType) -> Mapping | None:
        """The column's first place for `objtype` (mp.id: slotid where mgt=fsp)."""
        return next((m for m in self.mappings if m.objtype is objtype), None)

    def mappings_of(self, objtype: ObjectType) -> list[Mapping]:
        """Every attribute of `objtype` the column is, each on its condition
        (mp.id: slotid where mgt=fsp, id where mgt=blade, ...)."""
        return [m for m in self.mappings if m.objtype is objtype]

    def conditional(self, objtype: ObjectType) -> bool:
        return any(m.only_if for m in self.mappings_of(objtype))


@dataclass(frozen=True)
class AttributeRows:
    """A table of one object's attributes, a row each (site: key, value)."""

    objtype: ObjectType
    name: str  # the column holding the attribute's name
    value: str  # the column holding its value


@dataclass(frozen=True, eq=False)
class Table:
    name: str
    keys: tuple[str, ...]
    description: str
    columns: tuple[Column, ...]
    names: dict[ObjectType, str] = field(default_factory=dict)  # type -> its name column
    attribute_rows: AttributeRows | None = None

    @cached_property
    def by_name(self) -> dict[str, Column]:
        return {column.name: column for column in self.columns}

    def column(self, name: str) -> Column | None:
        return self.by_name.get(name)

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    @cached_property
    def objtypes(self) -> tuple[ObjectType, ...]:
        """The types whose objects have rows here; groups before nodes."""
        if self.attribute_rows is not None:
            return (self.attribute_rows.objtype,)
        kept = {m.objtype for c in self.columns for m in c.mappings if c.name not in self.key_names}
        return tuple(sorted(kept & set(self.names), key=lambda t: t is NODE))

    @cached_property
    def key_names(self) -> set[str]:
        return set(self.names.values())

    @property
    def kept(self) -> bool:
        """Whether this project keeps any of the table's data."""
        return bool(self.objtypes)

    def is_main(self, objtype: ObjectType) -> bool:
        """Whether a row here is the object itself (nodelist for nodes, osimage,
        networks, policy, nodegroup): its name column is the object's key."""
        column = self.column(self.names.get(objtype, ""))
        mapping = column.mapping(objtype) if column else None
        return mapping is not None and mapping.attribute == objtype.key

    def attribute_columns(self, objtype: ObjectType) -> list[tuple[Column, Mapping]]:
        """The columns that hold attributes of `objtype`, with where they live:
        a column that is several attributes on conditions comes once for each."""
        found = []
        for column in self.columns:
            for mapping in column.mappings_of(objtype):
                if mapping.attribute != objtype.key:
                    found.append((column, mapping))
        return found


# -- the tables, from xcat_tables.json -----------------------------------------


@cache
def tables() -> dict[str, Table]:
    """Every table of xCAT's schema, by name, in xCAT's (sorted) order."""
    data = json.loads(DATA.read_text(encoding="utf-8"))["tables"]
    firsts: dict[tuple[str, str], int] = {}
    for entry in data.values():
        for column in entry["columns"]:
            for type_name, attribute, only_if, position in column.get("attributes", []):
                if only_if:
                    key = (type_name, attribute)
                    firsts[key] = min(firsts.get(key, position), position)
    return {name: _table(name, entry, firsts) for name, entry in data.items()}


def _table(name: str, entry: dict, firsts: dict[tuple[str, str], int]) -> Table:
    names = {TYPES[t]: column for t, column in entry.get("names", {}).items() if t in TYPES}
    if name in STORED and name not in TYPES:  # passwd: the rows of a type of its own
        names = {STORED[name]: STORED[name].key}
    rows = entry.get("attribute_rows")
    attribute_rows = None
    if rows and rows["type"] in TYPES:
        attribute_rows = AttributeRows(TYPES[rows["type"]], rows["name"], rows["value"])
    main = _main_type(names, entry)
    columns = tuple(
        Column(c["name"], c["description"], _kept(c, main, firsts)) for c in entry["columns"]
    )
    return Table(name, tuple(entry["keys"]), entry["description"], columns, names, attribute_rows)


def _main_type(names: dict[ObjectType, str], entry: dict) -> ObjectType | None:
    """The one type a table is the main row of, if so (policy for policy,
    passwd for passwd)."""
    if len(names) != 1:
        return None
    ((objtype, column),) = names.items()
    if objtype.name not in TYPES:
        return objtype
    for item in entry["columns"]:
        if item["name"] == column and [objtype.name, objtype.key, ""] in item.get("attributes", []):
            return objtype
    return None


def _kept(
    column: dict, main: ObjectType | None, firsts: dict[tuple[str, str], int]
) -> tuple[Mapping, ...]:
    """The column's mappings onto attributes this project declares.  Failing
    any, a column of an object's main table that has the name of one of its
    attributes is that attribute (policy's comments and disable)."""
    kept = []
    for type_name, attribute, only_if, position in column.get("attributes", []):
        objtype = TYPES.get(type_name)
        if objtype is None:
            continue
        if attribute in objtype.attributes or attribute == objtype.key:
            condition = tuple(only_if.split("=", 1)) if only_if else None
            first = firsts.get((type_name, attribute), position) == position
            kept.append(Mapping(objtype, attribute, condition, first))
    if not kept and main is not None and column["name"] in (*main.attributes, main.key):
        kept.append(Mapping(main, column["name"]))
    return tuple(kept)


def table(name: str) -> Table:
    found = tables().get(name)
    if found is None:
        raise TableError(f"No such table: {name}")
    return found


def column(table_name: str, column_name: str) -> tuple[Table, Column]:
    """table.column, or TableError in xCAT's words (tabutils.pm nodech, tabch)."""
    found = tables().get(table_name)
    col = found.column(column_name) if found else None
    if found is None or col is None:
        raise TableError(f"{table_name}.{column_name} not a valid table.column description")
    return found, col


# nodech's and nodels' short names (tabutils.pm %shortnames).
SHORTNAMES = {"groups": ("nodelist", "groups"), "tags": ("nodelist", "groups"),
              "mgt": ("nodehm", "mgt")}  # fmt: skip


def node_column(spec: str) -> tuple[Table, Column]:
    """table.column or one of xCAT's short names, or TableError."""
    table_name, column_name = SHORTNAMES.get(spec) or spec.partition(".")[::2]
    return column(table_name, column_name)


def node_places(spec: str) -> tuple[Mapping, ...]:
    """What nodels and nodech read for `spec`: the node attributes a
    table.column (or a short name) is, each on its condition; an attribute
    name is itself.  None of them: a column not kept here (it reads empty).
    TableError for no such column."""
    if "." not in spec and spec not in SHORTNAMES:
        return (Mapping(NODE, spec),)
    return column_places(*node_column(spec))


def column_places(table_: Table, column_: Column) -> tuple[Mapping, ...]:
    """A column's node attributes; a node table's key column is the node's name."""
    if column_.name == table_.names.get(NODE):
        return (Mapping(NODE, NODE.key),)
    return tuple(column_.mappings_of(NODE))


ValueOf = Callable[[str], str | None]  # a node's effective value of an attribute


def node_attribute(places: tuple[Mapping, ...], value_of: ValueOf) -> str | None:
    """Which of a column's places holds a node's value (mp.id is id where
    mgt=blade, slotid where mgt=fsp); None: none of them."""
    return next((m.attribute for m in places if m.applies(value_of)), None)


@cache
def _places(objtype: ObjectType) -> dict[str, list[tuple[Table, Column, Mapping]]]:
    """Where each attribute of a type lives: its table columns, the
    unconditional first."""
    found: dict[str, list[tuple[Table, Column, Mapping]]] = {}
    for table_ in tables().values():
        if objtype in table_.names and table_.attribute_rows is None:
            for column_, mapping in table_.attribute_columns(objtype):
                found.setdefault(mapping.attribute, []).append((table_, column_, mapping))
    for places in found.values():
        places.sort(key=lambda place: place[2].only_if is not None)
    return found


def where_kept(objtype: ObjectType, attribute: str, value_of: ValueOf) -> str | None:
    """lsdef -V's note of the table row and column an object's value is in,
    in xCAT's words (DBobjUtils.pm getobjdefs); None for a value of no column."""
    if objtype is SITE:
        return f"(Table:site - Key:{attribute})"
    for table_, column_, mapping in _places(objtype).get(split_name(attribute)[0], []):
        if mapping.applies(value_of):
            key = table_.names[objtype]
            space = "" if objtype in (NODE, GROUP) else " "  # xCAT's two forms
            return f"(Table:{table_.name} - Key:{space}{key} - Column:{column_.name})"
    return None


# nodech's, nodels' and noderanges' selections: table.column==value, !=, =~, !~
# (tabutils.pm, NodeRange.pm).
_CRITERION = re.compile(r"^(?P<col>[^=]*?)(?P<op>==|!=|=~|!~)(?P<value>.*)$", re.S)


@dataclass(frozen=True)
class NodeSelection:
    """A node's effective value of a table.column, tested as nodech and
    nodels test it; a column not kept here reads empty."""

    places: tuple[Mapping, ...]
    selection: Selection

    def holds(self, value_of: ValueOf) -> bool:
        attribute = node_attribute(self.places, value_of)
        return self.selection.matches(value_of(attribute) if attribute else None)


def node_selection(arg: str) -> NodeSelection | None:
    """`arg` as a selection (xCAT drops the slashes of `=~/re/`), or None
    when it is not one; TableError for no such column."""
    found = _CRITERION.match(arg)
    if found is None:
        return None
    op, value = found["op"], found["value"]
    if op in ("=~", "!~"):
        value = value.removeprefix("/").removesuffix("/")
    places = column_places(*node_column(found["col"]))
    return NodeSelection(places, parse_selection(f"value{op}{value}"))


def not_kept(table_: Table, column_: Column, objtype: ObjectType | None = None) -> TableError:
    """The refusal of a write to a column this project does not keep."""
    what = f" for a {objtype.name}" if objtype is not None and column_.mappings else ""
    return TableError(
        f"{table_.name}.{column_.name} is not kept by xcatd{what}: it cannot be set "
        f"(tabdump shows it empty; see 'Table commands' in the README for the columns kept)"
    )


# -- reading rows --------------------------------------------------------------


Condition = Callable[[ObjectType, str, dict[str, str], str], str | None]


def own_condition(objtype: ObjectType, name: str, values: dict[str, str], attr: str) -> str | None:
    """A condition's attribute as an object's own values give it."""
    return values.get(attr)


@dataclass
class Row:
    objtype: ObjectType
    name: str
    cells: Cells


def rows(
    load: Callable[[ObjectType, list[str]], dict[str, dict[str, str]]],
    table_: Table,
    condition: Condition = own_condition,
) -> Iterator[Row]:
    """The rows of a table, from the objects `load(type, attributes)` gives
    (name -> own values, in the store's order); `condition` gives the value
    an only_if condition is tested against (nodes inherit it)."""
    if table_.attribute_rows is not None:
        yield from _attribute_rows(load, table_.attribute_rows)
        return
    for objtype in table_.objtypes:
        wanted = table_.attribute_columns(objtype)
        needed = {m.attribute for _, m in wanted} | {m.only_if[0] for _, m in wanted if m.only_if}
        main = table_.is_main(objtype)
        name_column = table_.names[objtype]
        for name, values in load(objtype, sorted(needed)).items():
            cells = _cells(table_, objtype, name, values, wanted, condition)
            if cells is not None or main:
                yield Row(objtype, name, cells or {name_column: name})


def _cells(
    table_: Table,
    objtype: ObjectType,
    name: str,
    values: dict[str, str],
    wanted: list[tuple[Column, Mapping]],
    condition: Condition,
) -> Cells | None:
    """An object's row: its name and the values of the columns it has here;
    None when it has none."""
    cells: Cells = {table_.names[objtype]: name}
    for column_, mapping in wanted:
        value = values.get(mapping.attribute)
        if column_.name in cells:
            continue  # an earlier place of the column applied
        if value and mapping.applies(partial(condition, objtype, name, values)):
            cells[column_.name] = value
    return cells if len(cells) > 1 else None


def _attribute_rows(
    load: Callable[[ObjectType, list[str]], dict[str, dict[str, str]]], spec: AttributeRows
) -> Iterator[Row]:
    objtype = spec.objtype
    name = objtype.only_object
    values = load(objtype, list(objtype.attributes)).get(name, {})
    for attribute in objtype.attributes:
        if values.get(attribute):
            yield Row(objtype, name, {spec.name: attribute, spec.value: values[attribute]})


def csv_lines(table_: Table, found: Iterable[Row]) -> Iterator[str]:
    """tabdump's text: the `#col,...` header, then each row with every value
    in double quotes (a quote doubled) and nothing for no value, as xCAT's
    tabutils.pm output_table writes them."""
    yield "#" + ",".join(table_.column_names)
    names = table_.column_names
    for row in found:
        yield ",".join(_quoted(row.cells.get(name)) for name in names)


def _quoted(value: str | None) -> str:
    return "" if value is None else '"' + value.replace('"', '""') + '"'


def parse_csv(lines: list[str]) -> tuple[list[str], list[Cells]]:
    """tabrestore's reading of a CSV file: the header's columns and each row's
    cells (None for an empty field, '' for ""), or TableError in xCAT's words
    (tabutils.pm tabrestore); line numbers count from the first data line, 0."""
    if not lines or not lines[0].startswith("#"):
        raise TableError("Data missing header line starting with #")
    header = lines[0].replace('"', "").removeprefix("#").rstrip()
    columns = header.split(",")
    found: list[Cells] = []
    number = 0
    data = lines[1:]
    while number < len(data):
        line, number = _record(data, number)
        cells: Cells = {}
        rest = line
        for name in columns:
            value, rest = _field(rest, line, number)
            cells[name] = value
        if rest:
            raise TableError(f"Too many fields on line {number}: {line} | {rest}")
        found.append(cells)
        number += 1
    return columns, found


def _record(data: list[str], number: int) -> tuple[str, int]:
    """One record: a line, joined with the next ones while a quote is open."""
    line = data[number].rstrip()
    while line.count('"') % 2 and number + 1 < len(data):
        number += 1
        line = f"{line}\n{data[number]}".rstrip()
    return line, number


def _field(rest: str, line: str, number: int) -> tuple[str | None, str]:
    """The first field of `rest` and what follows its comma."""
    if rest == "" or rest.startswith(","):
        return None, rest[1:]
    if '"' not in rest.split(",", 1)[0]:
        value, _, after = rest.partition(",")
        return value, after
    where = len(line) - len(rest)
    if not rest.startswith('"'):
        raise TableError(
            f'CSV missing opening " for record with " characters on line {number}, '
            f"character {where}: {line}"
        )
    position = 1
    while True:
        position = rest.find('"', position)
        if position < 0:
            raise TableError(
                f'CSV unmatched " in record on line {number}, character {where}: {line}'
            )
        after = rest[position + 1 : position + 2]
        if after == '"':
            position += 2
        elif after in ("", ","):
            return rest[1:position].replace('""', '"'), rest[position + 2 :]
        else:
            raise TableError(
                f'CSV unescaped " in record on line {number}, character {where}: {line}'
            )


# -- where rows are written ----------------------------------------------------


@dataclass
class Target:
    """The object one row is, and whether it is yet to be made."""

    objtype: ObjectType
    name: str
    new: bool = False


def target(
    table_: Table, name: str, is_node: Callable[[str], bool], is_group: Callable[[str], bool]
) -> Target:
    """The object whose row in `table_` is keyed `name`: a node or a group for
    node tables (a name that is neither is made only by nodelist, as a node,
    and nodegroup, as a group), the one type of the others."""
    types = table_.objtypes
    if table_.attribute_rows is not None:
        return Target(table_.attribute_rows.objtype, table_.attribute_rows.objtype.only_object)
    if NODE in types or GROUP in types:
        if NODE in types and is_node(name):
            return Target(NODE, name)
        if GROUP in types and is_group(name):
            return Target(GROUP, name)
        if is_node(name) or is_group(name):
            kind = "node" if is_node(name) else "group"
            raise TableError(f"'{name}' is a {kind}: the {table_.name} table has no {kind} rows")
        for objtype in types:
            if table_.is_main(objtype):
                return Target(objtype, name, new=True)
        raise TableError(
            f"'{name}' is neither a node nor a group: add the node first (nodeadd {name} "
            f"groups=...) or define the group (mkdef -t group {name})"
        )
    return Target(types[0], name)


def site_attribute(table_: Table, name: str) -> str:
    """The site attribute a site row's key names, or TableError."""
    assert table_.attribute_rows is not None
    if name not in table_.attribute_rows.objtype.attributes:
        raise TableError(
            f"site key '{name}' is not kept by xcatd (lsdef -t site -h lists the keys it keeps)"
        )
    return name
