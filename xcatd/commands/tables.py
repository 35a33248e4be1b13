"""xCAT's table commands: tabdump, chtab, gettab, tabrestore, tabprune,
nodeadd, nodech and noderm.

They read and write the same objects as the def commands (store/tables.py
says which attribute each table.column is), so a value set by chtab is the
one lsdef shows.  Options, usage texts, messages and the streams they go to
are xCAT's (tabutils.pm, xCAT-server/sbin/chtab, xCAT-client/sbin/tabrestore);
where xCAT writes part of a request and goes on, nothing is written here.
Secrets (passwd.password, ipmi.password, ...) read as `******` for callers
who are not administrators (secrets.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from functools import partial

from ..call import Call
from ..store import objects, table_edits
from ..store import tables as schema
from ..store.nodes import Nodes
from ..store.objtypes import GROUP, NODE, POLICY, ObjectType
from ..store.table_edits import Changes, Key
from ..store.tables import Column, Mapping, Row, Table, TableError
from . import audit_table
from .common import CommandRefused, Produced, expand_noderange, respond
from .defs import DefParser, comma_list
from .registry import CommandParser, command
from .secrets import MASK, is_secret, may_read_secrets

USAGE = {
    "tabdump": (
        "Usage: tabdump [-d] [table]\n"
        "       tabdump      [table]\n"
        "       tabdump [-f <filename>]  [table]\n"
        "       tabdump [-n <# of records>]  [auditlog | eventlog]\n"
        "       tabdump [-w attr==val [-w attr=~val] ...] [table]\n"
        "       tabdump [-w attr==val [-w attr=~val] ...] [-f <filename>] [table]\n"
        "       tabdump [-?|-h|--help]\n"
        "       tabdump {-v|--version}\n"
        "       tabdump "
    ),
    "chtab": (
        "Usage:\n"
        " To add or update rows for tables:\n"
        "   chtab keycolname=keyvalue[,keycolname=keyvalue...] tablename.colname=newvalue "
        "[tablename.colname=newvalue...]\n"
        " To delete rows from tables:\n"
        "   chtab -d|--delete keycolname=keyvalue[,keycolname=keyvalue...] tablename "
        "[tablename...]\n"
        " To display usage and other information:\n"
        "   chtab [-h|--help|-v|--Version]\n\n"
        "   -d|--delete  Delete the rows from a list of tables.\n"
        "   -v|--version Display the version of this command.\n"
        "   -h|--help    Display this usage information.\n"
        "   keycolname=keyvalue   a column name-and-value pair that identifies the rows in a "
        "table to be changed.\n"
        "   tablename.colname=newvalue    the new value for the specified row and column of "
        "the table."
    ),
    "gettab": (
        "Usage: gettab [-H|--with-fieldname] key=value,...  table.attribute ...\n"
        "       gettab [-?|-h|--help]"
    ),
    "noderm": "Usage:\n  noderm noderange\n  noderm {-v|--version}\n  noderm [-?|-h|--help]",
    "nodech": (
        "Usage: nodech <noderange> table.column=value [...]\n"
        "       nodech {-d | --delete} <noderange> <table> [...]\n"
        "       nodech {-v | --version}\n"
        "       nodech [-? | -h | --help]"
    ),
    "nodegrpch": (
        "Usage: nodegrpch <group1,group2,...> [table.column=value] [...]\n"
        "       nodegrpch {-v | --version}\n"
        "       nodegrpch [-? | -h | --help]"
    ),
    "nodeadd": (
        "Usage: nodeadd <noderange> groups=<groupnames> [table.column=value] [...]\n"
        "       nodeadd {-v | --version}\n"
        "       nodeadd [-? | -h | --help]"
    ),
    "tabprune": (
        "Usage: tabprune <tablename> [-V] -a\n"
        "       tabprune <tablename> [-V] -n <# of records>\n"
        "       tabprune <tablename> [-V] -i <recid>\n"
        "       tabprune <tablename> [-V] -p <percent>\n"
        "       tabprune <tablename> [-V] -d <# of days>\n"
        "       tabprune [-h|--help]\n"
        "       tabprune [-v|--version]\n"
        "       tables supported:eventlog,auditlog,unless -a which supports all tables\n"
        "       -d option only supported for eventlog,auditlog"
    ),
    "tabrestore": (
        "Usage: tabrestore <tablename>.csv\n"
        "       tabrestore -a <tablename>.csv\n"
        "       tabrestore [-?|-h|--help]\n"
        "       tabrestore [-v|--version]"
    ),
}

LOGS = ("auditlog", "eventlog")


class _Answer(Exception):
    """Stop with this text on stdout and this return code (xCAT's `data`
    with an `errorcode`, where xCAT refuses that way)."""

    def __init__(self, text: str, rc: int = 1) -> None:
        super().__init__(text)
        self.text, self.rc = text, rc


async def _run(call: Call, produce: Callable[[object], Produced]) -> None:
    """`produce(db)` in the store's thread, its refusals told as xCAT tells them."""

    def work(db) -> Produced:
        try:
            return produce(db)
        except TableError as exc:
            raise CommandRefused(str(exc)) from None
        except _Answer as exc:
            return _answer(call, exc.text, exc.rc)

    await respond(call, work)


def _answer(call: Call, text: str, rc: int = 0) -> Produced:
    """Text on stdout with this return code, as xCAT answers usage and some
    refusals (its `data` with an `errorcode`)."""
    if rc:
        call.rc = rc
    return Produced([text])


def _first(call: Call, version: str | None = None) -> Produced | None:
    """The answer to a bad option, -h or -v, before anything else."""
    options, name = call.options, call.body.cmd
    if options.invalid_option:
        return _answer(call, USAGE[name], 1)
    if options.help:
        return _answer(call, USAGE[name])
    if options.version:
        return Produced([version or f"Version {call.context.version}"])
    return None


def _common(parser: CommandParser, version: str = "-v") -> None:
    parser.add_argument("-h", "-?", "--help", dest="help", action="store_true", help="usage")
    parser.add_argument(version, "--version", dest="version", action="store_true", help="version")
    parser.set_defaults(invalid_option=False)


def _visible_nodes(call: Call, nodes: Nodes) -> Callable[[str], bool] | None:
    """A service node's certificate sees only the nodes it serves."""
    if call.caller.signer.role == "servicenode":
        return nodes.groups_of.__contains__
    return None


# -- reading ---------------------------------------------------------------------


def table_rows(db, call: Call, table: Table) -> Iterator[Row]:
    """The rows of a table, as this caller may see them."""
    nodes = call.nodes(db) if {NODE, GROUP} & set(table.objtypes) else None
    visible = _visible_nodes(call, nodes) if nodes is not None else None

    def load(objtype: ObjectType, attributes: list[str]) -> dict[str, dict[str, str]]:
        columns = [a for a in attributes if a in objtype.attributes]
        return objects.load(db, objtype, columns=columns)

    def condition(objtype: ObjectType, name: str, values: dict[str, str], attr: str):
        if attr in values or objtype is not NODE or nodes is None:
            return values.get(attr)
        return nodes.attribute(name, attr)

    secret = None if may_read_secrets(call) else _secret_cells(table)
    for row in schema.rows(load, table, condition):
        if visible is None or row.objtype is not NODE or visible(row.name):
            yield row if secret is None else _masked(row, secret)


def _secret_cells(table: Table) -> Callable[[Row, str], bool]:
    """Whether a row's column holds a secret: passwd.password, ipmi.password,
    ...; in a table of attribute rows (site) the value of a secret key."""
    columns = {c.name for c in table.columns if is_secret(f"{table.name}.{c.name}")}
    spec = table.attribute_rows

    def holds(row: Row, column: str) -> bool:
        if spec is not None and column == spec.value:
            return is_secret(row.cells.get(spec.name) or "")
        return column in columns

    return holds


def _masked(row: Row, secret: Callable[[Row, str], bool]) -> Row:
    """The row as a caller who may not read secrets sees it."""
    cells = row.cells
    return Row(
        row.objtype, row.name, {n: MASK if v and secret(row, n) else v for n, v in cells.items()}
    )


_WHERE = re.compile(r"^(?P<attr>[^=!<>~]*)(?P<op>==|=~|!=|!~|<=|<|>=|>)(?P<value>.*)$", re.S)


def where_filter(table: Table, clauses: list[str]) -> Callable[[dict], bool]:
    """tabdump -w: each attr<op>val (==, !=, <, <=, >, >=, =~ and !~ with SQL's
    LIKE patterns) must hold; a missing value holds for none, as in SQL."""
    tests = []
    for clause in clauses:
        found = _WHERE.match(clause)
        if not found:
            raise TableError(f"Unsupported operator:{clause} on -w flag input")
        attr, op, value = found["attr"], found["op"], found["value"]
        if table.column(attr) is None:
            raise TableError(f'No column "{attr}" in table "{table.name}"')
        if op in ("=~", "!~"):
            value = value.removeprefix("/").removesuffix("/")
        tests.append((attr, op, value, _like(value) if op in ("=~", "!~") else None))

    def holds(cells: dict) -> bool:
        return all(_compare(cells.get(attr), op, value, like) for attr, op, value, like in tests)

    return holds


def _like(pattern: str) -> re.Pattern:
    """SQL LIKE as SQLite reads it: % any run, _ one character, ASCII case ignored."""
    parts = ("." if c == "_" else ".*" if c == "%" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _compare(actual: str | None, op: str, value: str, like: re.Pattern | None) -> bool:
    if actual is None:
        return False
    if like is not None:
        return bool(like.fullmatch(actual)) == (op == "=~")
    left, right = _ordered(actual), _ordered(value)
    return {"==": left == right, "!=": left != right, "<": left < right,
            "<=": left <= right, ">": left > right, ">=": left >= right}[op]  # fmt: skip


def _ordered(text: str) -> tuple:
    """Numbers compare as numbers, other text as text (SQLite's affinity, near enough)."""
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)


# -- tabdump ---------------------------------------------------------------------


@command("tabdump", "Display an xCAT database table in CSV format.", add_help=False,
         parser_class=DefParser)  # fmt: skip
def tabdump_options(parser: CommandParser) -> None:
    _common(parser)
    parser.add_argument("-n", "--lines", dest="number", type=int, help="the latest records")
    parser.add_argument("-d", dest="describe", action="store_true", help="descriptions")
    parser.add_argument("-f", dest="file", help="write to this file (the client writes it)")
    parser.add_argument("-w", dest="where", action="append", default=[], help="attr<op>val")
    parser.add_argument("table", nargs="*", help="the table")


@tabdump_options.runs
async def tabdump(call: Call) -> None:
    await _run(call, lambda db: _tabdump(db, call))


def _tabdump(db, call: Call) -> Produced:
    options = call.options
    if (answer := _first(call)) is not None:
        return answer
    for flag, given in (("-d", options.describe), ("-w", options.where), ("-f", options.file)):
        if options.number and given:
            raise CommandRefused(f"You  cannot use the -n and {flag} flag together. ")
    if len(options.table) > 1:
        return _answer(call, USAGE["tabdump"], 1)
    if not options.table:
        if options.file:
            raise CommandRefused("table name missing from the command input. ")
        return Produced(_descriptions() if options.describe else sorted(schema.tables()))
    name = options.table[0]
    if options.number and name not in LOGS:
        raise CommandRefused(
            f"{name} table is not supported in tabdump -n. You may only use this option on "
            "the auditlog or the eventlog."
        )
    if options.describe:
        if name not in schema.tables():
            raise CommandRefused(f"table {name} does not exist.")
        return Produced(_column_descriptions(schema.table(name)))
    table = schema.table(name)
    return Produced(list(schema.csv_lines(table, _dumped(db, call, table))))


def _dumped(db, call: Call, table: Table) -> Iterator[Row]:
    options = call.options
    holds = where_filter(table, options.where)
    if options.number and not db.execute("select 1 from audit limit 1").fetchone():
        raise _Answer(f"Nothing to display from {table.name}.", 0)
    if table.name == "auditlog":
        found: Iterator[Row] = audit_table.rows(db, latest=options.number)
    else:
        found = table_rows(db, call, table)
    return (row for row in found if holds(row.cells))


def _descriptions() -> list[str]:
    """tabdump -d: each table and what it holds, a blank line between (xCAT's layout)."""
    return _described((name, table.description) for name, table in schema.tables().items())


def _column_descriptions(table: Table) -> list[str]:
    return _described((column.name, column.description) for column in table.columns)


def _described(items) -> list[str]:
    lines = []
    for name, text in items:
        lines += [f"{name}:{chr(9) * (2 if len(name) < 7 else 1)}{text}", ""]
    return lines[:-1]


# -- gettab ----------------------------------------------------------------------


@command("gettab", "Select table rows, based on attribute criteria, and display specific "
         "attributes.", add_help=False, parser_class=DefParser)  # fmt: skip
def gettab_options(parser: CommandParser) -> None:
    parser.add_argument("-h", "-?", "--help", dest="help", action="store_true", help="usage")
    parser.add_argument("-H", "--with-fieldname", dest="names", action="store_true")
    parser.set_defaults(invalid_option=False, version=False)
    parser.add_argument("args", nargs="*", metavar="key=value,... table.attribute")


@gettab_options.runs
async def gettab(call: Call) -> None:
    await _run(call, lambda db: _gettab(db, call))


def _gettab(db, call: Call) -> Produced:
    options = call.options
    if options.invalid_option or (len(options.args) < 2 and not options.help):
        return _answer(call, USAGE["gettab"], 1)
    if options.help:
        return _answer(call, USAGE["gettab"])
    keys = dict(pair.partition("=")[::2] for pair in options.args[0].split(","))
    wanted: dict[str, list[str]] = {}
    for spec in options.args[1:]:
        table_name, _, column_name = spec.partition(".")
        schema.column(table_name, column_name)
        wanted.setdefault(table_name, []).append(column_name)
    for table_name in wanted:
        for key in keys:
            if schema.table(table_name).column(key) is None:
                raise CommandRefused(f"Unknown key {key} to {table_name}")
    terse = len(options.args) == 2 and not options.names
    lines = []
    for table_name, columns in wanted.items():
        table = schema.table(table_name)
        row = next((r for r in _matching(db, call, table, keys)), None)
        if row is None:
            continue
        for column_name in columns:
            value = row.cells.get(column_name) or ""
            lines.append(value if terse else f"{table_name}.{column_name}: {value}")
    return Produced(lines)


def _matching(db, call: Call, table: Table, keys: dict[str, str]) -> Iterator[Row]:
    """The rows whose cells have these values (a quick look-up when the key names the object)."""
    found = table_rows(db, call, table)
    return (r for r in found if all((r.cells.get(k) or "") == v for k, v in keys.items()))


# -- chtab -----------------------------------------------------------------------


@command("chtab", "Add, delete or update rows in the database tables.", add_help=False,
         parser_class=DefParser)  # fmt: skip
def chtab_options(parser: CommandParser) -> None:
    _common(parser)
    parser.add_argument("-d", "--delete", dest="delete", action="store_true", help="delete rows")
    parser.add_argument("args", nargs="*", metavar="key=value table.column=value")


@chtab_options.runs
async def chtab(call: Call) -> None:
    await _run(call, lambda db: _chtab(db, call))


_NOT_KEYS = re.compile(r"([^.=]+)\.([^.=]+)=(.+)")


def _chtab(db, call: Call) -> Produced:
    options = call.options
    if (answer := _first(call, f"chtab Version {call.context.version}")) is not None:
        return answer
    if not options.args:
        return _answer(call, USAGE["chtab"], 1)
    target, *rest = options.args
    if _NOT_KEYS.match(target.split(",")[0]):
        raise CommandRefused(
            f"'{target}': name the row first, as keycolname=keyvalue (chtab node=NAME "
            "table.column=value; site rows: key=NAME)"
        )
    keys = {}
    for pair in target.split(","):
        found = re.fullmatch(r"(.*)=(.*)", pair, re.S)
        if not found:
            return _answer(call, f'Incorrect argument "{pair}".\n{USAGE["chtab"]}', 1)
        keys[found[1]] = found[2]
    nodes = call.nodes(db)
    changes = Changes()
    if options.delete:
        if not rest:
            return _answer(call, f"Missing table name.\n{USAGE['chtab']}", 1)
        for name in rest:
            _delete_rows(db, call, nodes, _existing_table(call, name), keys, changes)
    else:
        for spec in rest:
            _chtab_assignment(db, call, nodes, spec, keys, changes)
    table_edits.apply(db, nodes, changes)
    return _written(changes)


def _existing_table(call: Call, name: str) -> Table:
    found = schema.tables().get(name)
    if found is None:
        raise _Answer(f"Table {name} does not exist.")
    return found


def _chtab_assignment(db, call, nodes, spec: str, keys: dict[str, str], changes: Changes) -> None:
    """One table.column=value (or +=value) of chtab."""
    table_name, _, rest = spec.partition(".")
    table = _existing_table(call, table_name)
    for key in keys:
        if table.column(key) is None:
            raise CommandRefused(f'No column "{key}" in table "{table.name}"')
    op = "+=" if "+=" in rest else "="
    column_name, equals, value = rest.partition(op)
    if not equals:
        raise CommandRefused(f"'{spec}' gives no value: write {table_name}.{column_name}=value")
    _, column = schema.column(table.name, column_name)
    for key in _rows_for(db, call, nodes, table, keys, create=True):
        _assign(changes, table, column, key, op, value)


def _assign(changes: Changes, table: Table, column: Column, key: Key, op: str, value: str):
    """column op value in the row `key`; a site row (key: the site type and an
    attribute) is that attribute of the one site object."""
    spec = table.attribute_rows
    if spec is not None:
        if column.name == spec.value:
            column = Column(column.name, column.description, (Mapping(spec.objtype, key[1]),))
        key = (spec.objtype, spec.objtype.only_object)
    changes.assign(key, table, column, op, value)


def _rows_for(db, call, nodes: Nodes, table: Table, keys: dict[str, str], create: bool) -> list:
    """The rows `keys` name: (type, name) for each object, with a site row's
    attribute as its name; a row named by the table's name column that does not
    exist yet is made (when `create`), otherwise the rows whose cells match."""
    spec = table.attribute_rows
    if spec is not None:
        if set(keys) != {spec.name}:
            raise CommandRefused(
                f"site rows are named by key: chtab key=NAME site.{spec.value}=VALUE"
            )
        return [(spec.objtype, schema.site_attribute(table, keys[spec.name]))]
    named = [t for t, column in table.names.items() if set(keys) == {column}]
    if named and table.kept:
        name = keys[table.names[named[0]]]
        found = schema.target(table, name, nodes.groups_of.__contains__, _is_group(db, nodes))
        if found.new and not create:
            return []
        return [(found.objtype, found.name)]
    matched = [(r.objtype, r.name) for r in _matching(db, call, table, keys)]
    if not matched and create:
        pairs = ",".join(f"{k}={v}" for k, v in keys.items())
        names = " or ".join(sorted(set(table.names.values()))) or "its key"
        raise CommandRefused(f"No {table.name} row has {pairs}: name a row by {names} to add one")
    return matched


def _is_group(db, nodes: Nodes) -> Callable[[str], bool]:
    return lambda name: name in nodes.groups or name in nodes.static_members


def _delete_rows(db, call, nodes, table: Table, keys: dict[str, str], changes: Changes) -> None:
    """chtab -d: the rows `keys` name, deleted."""
    if table.name in LOGS:
        raise CommandRefused(f"The {table.name} is kept by xcatd's audit trail: use tabprune")
    for key in _rows_for(db, call, nodes, table, keys, create=False):
        _clear_row(table, key, changes)


def _written(changes: Changes) -> Produced:
    """What a table command prints once it has written: nothing, as xCAT;
    the daemon reads policies again when they changed."""
    types = {key[0] for key in changes.assignments} | {k[0] for k in changes.cleared}
    return Produced([], policy_changed=POLICY in types | set(changes.removed))


# -- nodeadd, nodech, noderm -------------------------------------------------------


@command("nodeadd", "Adds nodes to the xCAT cluster database.", add_help=False,
         parser_class=DefParser)  # fmt: skip
def nodeadd_options(parser: CommandParser) -> None:
    _common(parser)
    parser.add_argument("args", nargs="*", metavar="noderange groups=... table.column=value")


def _nodech_options(parser: CommandParser) -> None:
    """nodech's, which nodegrpch shares (xCAT's tabutils.pm nodech serves both)."""
    _common(parser)
    parser.add_argument("-d", "--delete", dest="delete", action="store_true", help="delete rows")
    parser.add_argument("args", nargs="*", metavar="noderange|groups table.column=value")


nodech_options = command(
    "nodech", "Changes nodes' attributes in the xCAT cluster database.", add_help=False,
    parser_class=DefParser,
)(_nodech_options)  # fmt: skip
nodegrpch_options = command(
    "nodegrpch", "Changes attributes at the group level in the xCAT cluster database.",
    add_help=False, parser_class=DefParser,
)(_nodech_options)  # fmt: skip


@nodeadd_options.runs
async def nodeadd(call: Call) -> None:
    await _run(call, lambda db: _nodech(db, call, adding=True))


@nodech_options.runs
async def nodech(call: Call) -> None:
    await _run(call, lambda db: _nodech(db, call, adding=False))


def _nodech(db, call: Call, adding: bool) -> Produced:
    options = call.options
    name = call.body.cmd
    if (answer := _first(call)) is not None:
        return answer
    if len(options.args) < 2:  # a noderange and something to do
        return _answer(call, USAGE[name], 1)
    noderange, *args = options.args
    nodes = call.nodes(db)
    chosen = expand_noderange(call, noderange, nodes, verify=not adding)
    warnings = []
    if adding and (capital := [n for n in chosen if re.search("[A-Z]", n)]):
        warnings.append(
            f"The node name '{','.join(capital)}' contains capital letters which may not be "
            "resolved correctly by the dns server."
        )
    changes = Changes()
    if getattr(options, "delete", False):
        for table in _delete_tables(args):
            for node in chosen:
                changes.clear((NODE, node), table)
    else:
        criteria, assignments = _nodech_args(args)
        chosen = [n for n in chosen if all(c.holds(partial(nodes.attribute, n)) for c in criteria)]
        for node in chosen:
            for table, column, op, value in assignments:
                changes.assign((NODE, node), table, column, op, value)
    table_edits.apply(db, nodes, changes)
    produced = _written(changes)
    produced.warnings = warnings
    return produced


@nodegrpch_options.runs
async def nodegrpch(call: Call) -> None:
    await _run(call, lambda db: _nodegrpch(db, call))


def _nodegrpch(db, call: Call) -> Produced:
    """The columns set on each group's own row, and cleared on every node of
    the group, so that the group's value is the one its nodes have (xCAT's
    tabutils.pm nodech in group mode, with its refusals)."""
    if (answer := _first(call)) is not None:
        return answer
    if not call.options.args:
        return _answer(call, USAGE["nodech"], 1)  # xCAT prints nodech's usage here
    groups, *args = call.options.args
    nodes = call.nodes(db)
    changes = Changes()
    if call.options.delete:  # the groups' own rows, as xCAT's -d deletes them
        for table in _delete_tables(args):
            for group in comma_list(groups):
                changes.clear((GROUP, group), table)
        table_edits.apply(db, nodes, changes)
        return _written(changes)
    criteria, assignments = _nodech_args(args)
    if criteria:
        raise CommandRefused("nodegrpch sets columns: table.column==value selections are nodech's")
    for _, column, op, _ in assignments:
        if op != "=":
            raise CommandRefused(",= and ^= are not supported by nodegrpch")
        if (mapping := column.mapping(NODE)) is not None and mapping.attribute == "groups":
            raise CommandRefused("Group membership is not changeable via nodegrpch")
    for group in comma_list(groups):
        for table, column, op, value in assignments:
            changes.assign((GROUP, group), table, column, op, value)
            for node in nodes.group_members(group) or ():
                changes.assign((NODE, node), table, column, "=", "")
    table_edits.apply(db, nodes, changes)
    return _written(changes)


def _delete_tables(args: list[str]) -> list[Table]:
    bad = [arg for arg in args if "." in arg or "=" in arg]
    if bad:
        raise CommandRefused(". and = not valid in delete mode.")
    return [_node_table(name) for name in args]


def _node_table(name: str) -> Table:
    table = schema.tables().get(name)
    if table is None:
        raise _Answer(f"Table {name} does not exist.")
    return table


def _nodech_args(args: list[str]) -> tuple[list[schema.NodeSelection], list[tuple]]:
    """nodech's arguments as xCAT reads them: selections (==, !=, =~, !~) that
    narrow the noderange, and assignments (=, ,=, ^=, and chtab's +=; -= as ^=;
    =@ for a value that starts with '=')."""
    criteria, assignments = [], []
    for arg in args:
        if "=" not in arg and "!~" not in arg:
            raise CommandRefused(f"Malformed argument {arg} ignored.")
        if (selection := schema.node_selection(arg)) is not None:
            criteria.append(selection)
            continue
        spec, _, value = arg.partition("=")
        value = value.removeprefix("@")
        op = "="
        if spec[-1:] in (",", "^", "+", "-"):
            op = {",": ",=", "^": "^=", "+": "+=", "-": "^="}[spec[-1]]
            spec = spec[:-1]
        table, column = schema.node_column(spec)
        assignments.append((table, column, op, value))
    return criteria, assignments


@command("noderm", "Removes the nodes in the noderange from all database tables.",
         add_help=False, parser_class=DefParser)  # fmt: skip
def noderm_options(parser: CommandParser) -> None:
    _common(parser)
    parser.add_argument("noderange", nargs="?", help="the nodes")


@noderm_options.runs
async def noderm(call: Call) -> None:
    def work(db) -> Produced:
        if (answer := _first(call)) is not None:
            return answer
        if not call.options.noderange:
            return _answer(call, USAGE["noderm"], 1)
        chosen = expand_noderange(call, call.options.noderange, call.nodes(db))
        objects.remove(db, NODE, chosen)
        return Produced([])

    await _run(call, work)


# -- tabrestore ----------------------------------------------------------------------


@command("tabrestore", "Replaces with or adds to a table the contents of a CSV file.",
         add_help=False, reads_stdin=True, parser_class=DefParser)  # fmt: skip
def tabrestore_options(parser: CommandParser) -> None:
    _common(parser)
    parser.add_argument("-a", "--addrows", action="store_true", help="add rows, keep the others")
    parser.add_argument("file", nargs="?", help="TABLE.csv (the client sends its contents)")


@tabrestore_options.runs
async def tabrestore(call: Call) -> None:
    await _run(call, lambda db: _tabrestore(db, call))


def _tabrestore(db, call: Call) -> Produced:
    options = call.options
    if (answer := _first(call)) is not None:
        return answer
    if not options.file:
        return _answer(call, USAGE["tabrestore"], 2)
    if call.stdin is None:
        raise CommandRefused(f"Unable to open {options.file} for reading.")
    name = os.path.basename(options.file).split(".")[0]
    table = schema.tables().get(name)
    if table is None:
        raise TableError(f"Unable to open {name}")
    if name in LOGS:
        raise CommandRefused(f"The {name} is kept by xcatd's audit trail: tabprune removes records")
    text = call.stdin.decode("utf-8", errors="replace")
    return _written(restore(db, call, table, text.splitlines(), replace=not options.addrows))


def restore(db, call: Call, table: Table, lines: list[str], replace: bool) -> Changes:
    """The table's rows replaced by (or, without `replace`, added from) a CSV
    text, all or nothing; the changes made."""
    columns, found = schema.parse_csv(lines)
    for name in columns:
        if table.column(name) is None:
            raise TableError(
                f"The header line indicates that column '{name}' should exist, which is not "
                f"defined in the schema for '{table.name}'"
            )
    nodes = call.nodes(db)
    changes = Changes()
    given: set[Key] = set()
    for number, cells in enumerate(found):
        key = _restored_row(db, nodes, table, cells, number)
        given.add(key)
        _restore_cells(table, key, cells, columns if not replace else table.column_names, changes)
    if replace:
        for row in table_rows(db, call, table):
            key = _row_key(table, row)
            if key not in given:
                _clear_row(table, key, changes)
    table_edits.apply(db, nodes, changes)
    return changes


def _restored_row(db, nodes: Nodes, table: Table, cells: dict, number: int) -> Key:
    """The object a CSV row is."""
    spec = table.attribute_rows
    if spec is not None:
        return (spec.objtype, schema.site_attribute(table, cells.get(spec.name) or ""))
    if not table.kept:
        values = [name for name, value in cells.items() if value and name not in table.keys]
        if values:
            raise schema.not_kept(table, table.by_name[values[0]])
    name_column = next(iter(table.names.values()), table.keys[0] if table.keys else "")
    name = cells.get(name_column)
    if not name:
        raise TableError(f"line {number}: the {table.name} row has no {name_column}")
    found = schema.target(table, name, nodes.groups_of.__contains__, _is_group(db, nodes))
    return (found.objtype, found.name)


def _restore_cells(table: Table, key: Key, cells: dict, columns: list[str], changes: Changes):
    """A CSV row's values: each kept column set ('' for none); a value in a
    column not kept here is refused."""
    for name in columns:
        if name in table.key_names or (table.attribute_rows and name == table.attribute_rows.name):
            continue
        column = table.by_name[name]
        value = cells.get(name) or ""
        if column.mapping(key[0]) is None and name != getattr(table.attribute_rows, "value", ""):
            if value:
                raise schema.not_kept(table, column, key[0])
            continue
        _assign(changes, table, column, key, "=", value)


def _clear_row(table: Table, key: Key, changes: Changes) -> None:
    if table.attribute_rows is not None:
        _assign(changes, table, table.by_name[table.attribute_rows.value], key, "=", "")
    else:
        changes.clear(key, table)


# -- tabprune ----------------------------------------------------------------------


@command("tabprune", "Deletes records from the auditlog and eventlog tables.", add_help=False,
         parser_class=DefParser)  # fmt: skip
def tabprune_options(parser: CommandParser) -> None:
    _common(parser)
    parser.add_argument("-V", dest="verbose", action="store_true", help="show what is removed")
    parser.add_argument("-p", "--percent", type=int, help="this percentage of the records")
    parser.add_argument("-d", "--days", type=int, help="records at least this many days old")
    parser.add_argument("-i", "--recid", help="records before this record id")
    parser.add_argument("-a", dest="all", action="store_true", help="every record")
    parser.add_argument("-n", "--number", type=int, help="this many of the oldest records")
    parser.add_argument("table", nargs="*", help="auditlog or eventlog (any table with -a)")


@tabprune_options.runs
async def tabprune(call: Call) -> None:
    await _run(call, lambda db: _tabprune(db, call))


def _tabprune(db, call: Call) -> Produced:
    options = call.options
    if (answer := _first(call)) is not None:
        return answer
    if len(options.table) > 1:
        return _answer(call, USAGE["tabprune"], 1)
    if not options.table:
        return _answer(call, "Table name required.", 1)
    name = re.sub(r"\s", "", options.table[0])
    if name not in LOGS and not options.all:
        return _answer(
            call, f"Table {name} not supported, see tabprune -h for supported tables.", 1
        )
    if name not in LOGS and options.days is not None:
        return _answer(call, f"Table {name} not supported for the -d option.", 1)
    chosen = [o for o in ("percent", "recid", "all", "number") if getattr(options, o)]
    if not chosen and options.days is None:
        return _answer(call, "One option -p or -i or -n or -a or -d must be supplied.", 1)
    if len(chosen) > 1:
        return _answer(call, "Only one option -p or -i or -n or -a maybe used at a time.", 1)
    if name == "auditlog":
        lines = audit_table.prune(db, options)
    elif name == "eventlog":
        lines = audit_table.prune_events(options)
    else:
        lines = _prune_table(db, call, schema.table(name))
    if not options.verbose:
        lines.append(f"tabprune of {name} complete.")
    return Produced(lines)


def _prune_table(db, call: Call, table: Table) -> list[str]:
    """tabprune TABLE -a: every row of a table deleted (-V: shown first)."""
    found = list(table_rows(db, call, table))
    shown = list(schema.csv_lines(table, found)) if call.options.verbose else []
    changes = Changes()
    for row in found:
        _clear_row(table, _row_key(table, row), changes)
    table_edits.apply(db, call.nodes(db), changes)
    return shown


def _row_key(table: Table, row: Row) -> Key:
    """The row's object and its name, or in a table of one object's
    attributes (site) the attribute the row holds."""
    if table.attribute_rows is None:
        return row.objtype, row.name
    attribute = row.cells[table.attribute_rows.name]
    assert attribute is not None  # every attribute row names its attribute
    return row.objtype, attribute
