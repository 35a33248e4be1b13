"""Nodes as a request sees them: own values, inherited values, group membership.

A `Nodes` snapshot is loaded once per request (in a worker thread) and
answers everything about nodes for that request: a node's effective
attributes (its own value wins; otherwise the first group in its `groups`
order that has one, with xCAT regular-expression values evaluated for the
node), which group a value came from, and which nodes a group holds
(static groups from the nodes' `groups` lists, dynamic ones from
`wherevals`).  It is also the `NodeSource` that noderanges resolve against.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from functools import cached_property, partial
from itertools import compress
from typing import TypeVar

import sqlite_utils

from .objtypes import GROUP, NODE
from .regex_values import compile_value, is_regex_value
from .schema import definitions_stamp
from .selection import parse_wherevals

# Group attributes that describe the group itself and are not inherited.
GROUP_ONLY = ("grouptype", "members", "membergroups", "wherevals")

T = TypeVar("T")
Sourced = dict[str, tuple[str, str | None]]  # attr -> (value, group it came from or None)


def rows(
    db: sqlite_utils.Database,
    table: str,
    key: str,
    where: str | None = None,
    parameters: list[str] | None = None,
    columns: Iterable[str] | None = None,
) -> dict[str, dict[str, str]]:
    """Rows of a table as name -> {attribute: value}, leaving out empty values.

    `columns` limits what is read: at 100,000 rows, reading two columns
    instead of forty is the difference between 50 ms and 600 ms.  Without
    it, the columns used by the rows read are found first, unless they are
    few (a handful of named rows: two statements more would cost more).
    """
    result: dict[str, dict[str, str]] = {}
    if columns is None and (where is None or len(parameters or ()) > FEW):
        columns = _used_columns(db, table, key, where, parameters)
    chosen = "*" if columns is None else ", ".join(f"[{c}]" for c in {key, *columns})
    query = f"select {chosen} from [{table}]" + (f" where {where}" if where else "")
    cursor = db.execute(query, parameters or [])
    names = [d[0] for d in cursor.description]
    key_index = names.index(key)
    for row in cursor:
        # compress() keeps the columns whose value is set (not NULL, not ''),
        # in C: on a wide table most are empty, and a Python test of each
        # would cost more than SQLite's reading of the row.
        values = dict(compress(zip(names, row, strict=True), row))
        values.pop(key, None)
        result[row[key_index]] = values
    return result


def _used_columns(
    db: sqlite_utils.Database,
    table: str,
    key: str,
    where: str | None = None,
    parameters: list[str] | None = None,
) -> list[str]:
    """The table's columns that hold a value in some row (of those `where`
    selects).  A node has a few of xCAT's two hundred attributes: reading
    the others' NULLs, a tuple of two hundred items per row, costs more
    than this count, done in SQLite."""
    names = [row[1] for row in db.execute(f"pragma table_info([{table}])") if row[1] != key]
    if not names:
        return []
    counts = db.execute(
        f"select {', '.join(f'count([{name}])' for name in names)} from [{table}]"
        + (f" where {where}" if where else ""),
        parameters or [],
    ).fetchone()
    return [name for name, count in zip(names, counts, strict=True) if count]


def in_chunks(names: list[str], size: int = 500) -> Iterator[tuple[list[str], str]]:
    """SQLite limits the parameters of one statement; go by slices: each
    slice, and its `?,?,...` marks."""
    for start in range(0, len(names), size):
        chunk = names[start : start + size]
        yield chunk, ",".join("?" * len(chunk))


# How many separate reads a lookup makes before it reads the whole table
# instead: a request about a few objects costs a few indexed reads, one about
# thousands costs one scan (at most twice what the scan alone would).
FEW = 64
# Names asked about at once beyond which the whole table is read instead.
MANY = 5000
# Groups whose members SQLite finds by scanning the nodes' lists before every
# node's list is read once instead (a scan costs a few milliseconds).
MEMBER_SCANS = 4

_ABSENT = object()


class Lookup(Mapping[str, T]):
    """A table's values by name, read as they are asked for: one name, a few,
    or (once many are asked for, or the caller iterates) the whole table.

    `read(None)` reads every row; `read(names)` those of the names that exist.
    Single-object requests against 100,000 nodes then cost what the object
    costs, not what the cluster does."""

    def __init__(
        self,
        read: Callable[[Collection[str] | None], dict[str, T]],
        everything: dict[str, T] | None = None,
        probe: Callable[[], bool] | None = None,
    ) -> None:
        self._read = read
        self._all = everything
        self._probe = probe  # whether the table has any row, without reading them
        self._some: dict[str, object] = {}  # name -> value, or _ABSENT
        self._reads = 0
        self._expected: set[str] = set()

    @classmethod
    def of(cls, values: dict[str, T]) -> Lookup[T]:
        """A lookup over values already in memory."""
        return cls(lambda names: values, values)

    @property
    def loaded(self) -> bool:
        """Whether the whole table has been read."""
        return self._all is not None

    def any(self) -> bool:
        """Whether the table has any row at all."""
        if self._all is None and self._probe is not None:
            return any(value is not _ABSENT for value in self._some.values()) or self._probe()
        return bool(self.whole)

    def expect(self, names: Collection[str]) -> None:
        """These names will be asked about one by one: the first of them not
        read yet reads them all, in one go (many: the whole table)."""
        self._expected = names if isinstance(names, set) else set(names)

    def remember(self, values: dict[str, T]) -> None:
        """Rows read by other means (a group's members), so as not to read them again."""
        if self._all is None:
            self._some.update(values)

    @property
    def whole(self) -> dict[str, T]:
        """Every row: read once, on first need."""
        return self._read_whole()

    def _read_whole(self) -> dict[str, T]:
        if self._all is None:
            self._all = self._read(None)
            self._some.clear()
        return self._all

    def cheap(self, name: str) -> bool:
        """Whether asking for this name costs no query of its own: its row (or
        its absence) is read already, or it is read with the names expected."""
        return self._all is not None or name in self._some or name in self._expected

    def among(self, names: Collection[str]) -> set[str]:
        """The names that have rows, reading those not read yet in one go."""
        if self._all is None and len(names) > MANY:
            self._read_whole()
        if self._all is not None:
            return self._all.keys() & names  # in C: a noderange of 100,000 names
        unread = [name for name in dict.fromkeys(names) if name not in self._some]
        if unread and self._reads >= FEW:
            return self._read_whole().keys() & names
        if unread:
            self._reads += 1
            found = self._read(unread)
            for name in unread:
                self._some[name] = found.get(name, _ABSENT)
        return {name for name in names if self._some[name] is not _ABSENT}

    def __getitem__(self, name: str) -> T:
        if self._all is not None:  # first: a listing of every node asks this 100,000 times
            return self._all[name]
        if name not in self._some:
            self.among(self._expected if name in self._expected else [name])
            if self._all is not None:
                return self._all[name]
        value = self._some[name]
        if value is _ABSENT:
            raise KeyError(name)
        return value  # type: ignore[return-value]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.among([name]))

    def __iter__(self) -> Iterator[str]:
        return iter(self.whole)

    def __len__(self) -> int:
        return len(self.whole)


class Nodes:
    """Reads only what a request asks about: a node's `groups` and row when
    the node is named, a group's row when a node lists it, and whole tables
    (or one whole column) only when many are asked for.  So `lsdef` of one
    node among 100,000 reads a handful of rows, and resolving a noderange
    over all of them reads two columns, not forty."""

    def __init__(
        self,
        groups_of: Mapping[str, str],
        groups: Mapping[str, dict[str, str]],
        read_own: Callable[[Collection[str] | None], dict[str, dict[str, str]]],
        read_column: Callable[[str], dict[str, str]],
        read_members: Callable[[str], dict[str, str]] | None = None,
    ) -> None:
        self.groups_of = _lookup(groups_of)  # node -> its `groups` value
        self.groups = _lookup(groups)  # group objects' own values
        self._read_own = read_own
        self._own = Lookup(read_own)
        self._read_column = read_column
        self._read_members = read_members
        self._columns: dict[str, dict[str, str]] = {}
        self._merged: dict[str, Sourced] = {}
        self._row_asks = 0  # attribute() reads of single rows (see FEW)
        self._member_reads = 0

    @classmethod
    def load(cls, db: sqlite_utils.Database) -> Nodes:
        """The nodes of the database, read as asked (nothing is read here)."""

        def groups_of(names: Collection[str] | None) -> dict[str, str]:
            query = f"select [{NODE.key}], ifnull(groups, '') from [{NODE.name}]"
            if names is None:
                return dict(db.execute(query))
            found: dict[str, str] = {}
            for chunk, marks in in_chunks(sorted(names)):
                found.update(db.execute(f"{query} where [{NODE.key}] in ({marks})", chunk))
            return found

        def column(attribute: str) -> dict[str, str]:
            if attribute not in NODE.attributes:
                return {}
            query = (
                f"select [{NODE.key}], [{attribute}] from [{NODE.name}] where [{attribute}] != ''"
            )
            return dict(db.execute(query))

        def members(group: str) -> dict[str, str]:
            """The nodes that list `group`, with their `groups`: one scan in
            SQLite rather than every node's list in Python (',rack1,' is in
            ',all,rack1,' exactly when rack1 is one of the list's items)."""
            query = (
                f"select [{NODE.key}], groups from [{NODE.name}] "
                "where instr(',' || groups || ',', ?) > 0"
            )
            return dict(db.execute(query, [f",{group},"]))

        def probe() -> bool:
            return db.execute(f"select 1 from [{NODE.name}] limit 1").fetchone() is not None

        return cls(
            Lookup(groups_of, probe=probe),
            Lookup(partial(_table_rows, db, GROUP.name, GROUP.key)),
            partial(_table_rows, db, NODE.name, NODE.key),
            column,
            members,
        )

    def served_by(self, server: str, served: Mapping[str, str]) -> Nodes:
        """The nodes `server` serves, given with their `groups` (`servers()`),
        and `server` itself: what a service node's certificate may see and
        change, and all it can name in a noderange."""
        visible = dict(served)
        if server in self.groups_of:
            visible[server] = self.groups_of[server]
        names = visible.keys()

        def column(attribute: str) -> dict[str, str]:
            # A service node's thousand rows, read once, give every column it
            # asks for (getpasswd, lsdef -a): a scan of the whole column, per
            # attribute and request, costs more once a hundred of them ask.
            if len(names) > MANY:
                return _only(self._read_column(attribute), names)
            return {
                node: values[attribute] for node, values in view.own.items() if attribute in values
            }

        view = Nodes(
            Lookup.of(visible),
            self.groups,
            lambda asked: self._read_own(set(names) if asked is None else names & set(asked)),
            column,
        )
        return view

    def servers(self) -> dict[str, dict[str, str]]:
        """Each service node's nodes, with their `groups`: those whose
        effective servicenode lists it or whose xcatmaster is it.  One pass
        over every node, working out once per distinct `groups` list what
        the nodes that inherit both attributes get (most of them); at
        100,000 nodes this is a fraction of a second, so it is done once for
        all service nodes, not for each (ServedNodes)."""
        own_servicenode, own_xcatmaster = self._column("servicenode"), self._column("xcatmaster")
        by_groups: dict[str, tuple[str, ...]] = {}
        found: dict[str, dict[str, str]] = {}
        for node, groups in self.groups_of.items():
            theirs = by_groups.get(groups)
            if theirs is None:
                theirs = _servers_of(
                    self.attribute(node, "servicenode"), self.attribute(node, "xcatmaster")
                )
                if not (node in own_servicenode or node in own_xcatmaster or self._regex(groups)):
                    by_groups[groups] = theirs
            elif node in own_servicenode or node in own_xcatmaster:
                theirs = _servers_of(
                    self.attribute(node, "servicenode"), self.attribute(node, "xcatmaster")
                )
            for server in theirs:
                found.setdefault(server, {})[node] = groups
        return found

    def _regex(self, groups: str) -> bool:
        """Whether what these groups give holds a regular expression (its value
        differs from node to node)."""
        inherited = self._inherited(groups)
        return any(
            is_regex_value(inherited[a][0]) for a in ("servicenode", "xcatmaster") if a in inherited
        )

    @property
    def own(self) -> dict[str, dict[str, str]]:
        """Each node's own (stored) values: the whole table."""
        return self._own.whole

    def expect(self, names: Collection[str]) -> None:
        """These nodes' rows will be asked for one by one (a listing): the
        first of them read reads them all, in one query or a few."""
        self._own.expect(names)

    def visible(self, names: Iterable[str]) -> list[str]:
        """The names without the hidden nodes (`hidden=1`: xCAT's FSPs and
        BPAs), which lsdef and nodels list only with -S.  Over many nodes,
        one look at the column and the groups says whether any node is."""
        names = list(names)
        if len(names) > FEW and not (
            self._column("hidden") or any("hidden" in g for g in self.groups.values())
        ):
            return names
        return [name for name in names if self.attribute(name, "hidden") != "1"]

    def empty(self) -> bool:
        """Whether there are no nodes at all."""
        return not self.groups_of.any()

    # -- NodeSource --------------------------------------------------------

    def all_nodes(self) -> Sequence[str]:
        return list(self.groups_of)

    def nodes_among(self, names: Collection[str]) -> set[str]:
        return self.groups_of.among(names)

    def group_members(self, group: str) -> Sequence[str] | None:
        definition = self.groups.get(group)
        if definition is not None and definition.get("grouptype") == "dynamic":
            selections = parse_wherevals(definition.get("wherevals", ""))
            return [
                node
                for node in self.groups_of
                if all(s.matches(self.attribute(node, s.attribute)) for s in selections)
            ]
        members = self._static_members(group)
        if members is None and definition is not None:
            return []  # defined, nobody in it yet
        return members

    def _static_members(self, group: str) -> list[str] | None:
        """The nodes that list `group`, or None: found by SQLite while few
        groups are asked about, from every node's list once many are."""
        if "static_members" in self.__dict__ or self._read_members is None:
            return self.static_members.get(group)
        if self._member_reads >= MEMBER_SCANS:
            return self.static_members.get(group)
        self._member_reads += 1
        members = self._read_members(group)
        self.groups_of.remember(members)
        return list(members) or None

    def attribute(self, node: str, attribute: str) -> str | None:
        """One effective value, without working out (or reading) all the others;
        `node` is the node's name (xCAT's `-w node=~...`)."""
        if attribute == NODE.key:
            return node
        value = self._own_value(node, attribute)
        if value is None:
            value = self._inherited(self.groups_of[node]).get(attribute, (None, None))[0]
        if value is not None and is_regex_value(value):
            return compile_value(value)(node)
        return value

    def stored(self, node: str, attribute: str) -> str | None:
        """The node's own value of one attribute, not what it inherits."""
        return self._own_value(node, attribute)

    def _own_value(self, node: str, attribute: str) -> str | None:
        """The node's own value of one attribute: from its row while few nodes
        are asked about, from the whole column once many are (`lsdef -w`
        over 100,000 nodes reads one column, not the whole table)."""
        column = self._columns.get(attribute)
        if column is None and not self._own.cheap(node):
            self._row_asks += 1
            if self._row_asks > FEW:
                column = self._column(attribute)
        if column is not None:
            return column.get(node)
        return self._own.get(node, {}).get(attribute)

    def _column(self, attribute: str) -> dict[str, str]:
        """The nodes' own values of one attribute, all of them."""
        column = self._columns.get(attribute)
        if column is None:
            if self._own.loaded:
                column = {n: v[attribute] for n, v in self.own.items() if attribute in v}
            else:
                column = self._read_column(attribute)
            self._columns[attribute] = column
        return column

    # -- inheritance -------------------------------------------------------

    def effective(self, node: str) -> dict[str, str]:
        return {attribute: value for attribute, (value, _) in self.sourced(node).items()}

    def sourced(self, node: str) -> Sourced:
        """Each attribute's effective value and the group it came from (None: the node's own)."""
        own = self._own[node]
        values = dict(self._inherited(self.groups_of[node]))
        for attribute, value in own.items():
            values[attribute] = (value, None)
        for attribute, (value, source) in list(values.items()):
            if is_regex_value(value):
                evaluated = compile_value(value)(node)
                if evaluated is None:
                    del values[attribute]
                else:
                    values[attribute] = (evaluated, source)
        return values

    def _inherited(self, groups: str) -> Sourced:
        """What a node with this `groups` list inherits, computed once per distinct list."""
        merged = self._merged.get(groups)
        if merged is None:
            merged = {}
            for group in reversed(groups.split(",")):
                for attribute, value in self.groups.get(group, {}).items():
                    if attribute not in GROUP_ONLY:
                        merged[attribute] = (value, group)
            self._merged[groups] = merged
        return merged

    @cached_property
    def static_members(self) -> dict[str, list[str]]:
        members: dict[str, list[str]] = {}
        for node, groups in self.groups_of.items():
            for group in groups.split(","):
                if group:
                    members.setdefault(group, []).append(node)
        return members

    def group_names(self) -> Iterable[str]:
        """Every group that exists: defined, or listed by a node."""
        return dict.fromkeys([*self.groups, *self.static_members])


def _servers_of(servicenode: str | None, xcatmaster: str | None) -> tuple[str, ...]:
    """Who serves a node with these values: each service node in its list, and its xcatmaster."""
    names = [*(servicenode or "").split(","), xcatmaster or ""]
    return tuple(name for name in dict.fromkeys(names) if name)


class ServedNodes:
    """Which nodes each service node serves (`Nodes.servers`), worked out
    once for every state of the definitions (their stamp, store/schema.py):
    a hundred service nodes taking their definitions at once cost the
    management node one pass over the nodes, not a hundred, and it holds
    one copy of the answer, not one per request.  Used in the store's
    worker, one request at a time."""

    def __init__(self) -> None:
        self._stamp: int | None = None
        self._servers: dict[str, dict[str, str]] = {}

    def nodes(self, db: sqlite_utils.Database, server: str) -> Nodes:
        """The nodes as `server`'s certificate sees them (Nodes.served_by)."""
        nodes = Nodes.load(db)
        stamp = definitions_stamp(db)
        if stamp != self._stamp:
            self._servers, self._stamp = nodes.servers(), stamp
            nodes = Nodes.load(db)  # a fresh one: this one holds every node's `groups` now
        return nodes.served_by(server, self._servers.get(server, {}))


def _lookup(values: Mapping[str, T]) -> Lookup[T]:
    return values if isinstance(values, Lookup) else Lookup.of(dict(values))


def _table_rows(
    db: sqlite_utils.Database, table: str, key: str, names: Collection[str] | None
) -> dict[str, dict[str, str]]:
    """Rows of a table: all of them, or those of `names`."""
    if names is None:
        return rows(db, table, key)
    found: dict[str, dict[str, str]] = {}
    for chunk, marks in in_chunks(sorted(names)):
        found |= rows(db, table, key, f"[{key}] in ({marks})", chunk)
    return found


def _only(values: dict[str, T], names: Collection[str]) -> dict[str, T]:
    return {name: value for name, value in values.items() if name in names}
