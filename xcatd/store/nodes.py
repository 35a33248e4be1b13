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

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from functools import cached_property
from typing import TypeVar

import sqlite_utils

from .objtypes import GROUP, NODE
from .regex_values import compile_value, is_regex_value
from .selection import parse_wherevals

# Group attributes that describe the group itself and are not inherited.
GROUP_ONLY = ("grouptype", "members", "wherevals")

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
    instead of forty is the difference between 50 ms and 600 ms.
    """
    result: dict[str, dict[str, str]] = {}
    chosen = "*" if columns is None else ", ".join(f"[{c}]" for c in {key, *columns})
    query = f"select {chosen} from [{table}]" + (f" where {where}" if where else "")
    cursor = db.execute(query, parameters or [])
    names = [d[0] for d in cursor.description]
    key_index = names.index(key)
    for row in cursor:
        result[row[key_index]] = {
            column: value
            for column, value in zip(names, row, strict=True)
            if value not in (None, "") and column != key
        }
    return result


def in_chunks(names: list[str], size: int = 500) -> Iterator[tuple[list[str], str]]:
    """SQLite limits the parameters of one statement; go by slices: each
    slice, and its `?,?,...` marks."""
    for start in range(0, len(names), size):
        chunk = names[start : start + size]
        yield chunk, ",".join("?" * len(chunk))


class Nodes:
    """Built from the node names and `groups` alone; every other attribute is
    read the first time one is asked for, so resolving a noderange over
    100,000 nodes reads two columns, not forty."""

    def __init__(
        self,
        groups_of: dict[str, str],
        groups: dict[str, dict[str, str]],
        read_own: Callable[[Collection[str] | None], dict[str, dict[str, str]]],
        read_column: Callable[[str], dict[str, str]],
    ) -> None:
        self.groups_of = groups_of  # node -> its `groups` value
        self.groups = groups  # group objects' own values
        self._read_own = read_own
        self._read_column = read_column
        self._columns: dict[str, dict[str, str]] = {}
        self._merged: dict[str, Sourced] = {}

    @classmethod
    def load(cls, db: sqlite_utils.Database) -> Nodes:
        groups_of = {
            node: groups or ""
            for node, groups in db.execute(f"select [{NODE.key}], groups from [{NODE.name}]")
        }

        def column(attribute: str) -> dict[str, str]:
            if attribute not in NODE.attributes:
                return {}
            query = (
                f"select [{NODE.key}], [{attribute}] from [{NODE.name}] where [{attribute}] != ''"
            )
            return dict(db.execute(query))

        def own(names: Collection[str] | None) -> dict[str, dict[str, str]]:
            """The nodes' own rows: all of them, or those of `names`."""
            if names is None:
                return rows(db, NODE.name, NODE.key)
            found: dict[str, dict[str, str]] = {}
            for chunk, marks in in_chunks(sorted(names)):
                found |= rows(db, NODE.name, NODE.key, f"[{NODE.key}] in ({marks})", chunk)
            return found

        return cls(groups_of, rows(db, GROUP.name, GROUP.key), own, column)

    def served_by(self, server: str) -> Nodes:
        """The nodes `server` serves (its name in their `servicenode` list, or
        as their `xcatmaster`) and `server` itself: what a service node's
        certificate may see and change, and all it can name in a noderange."""
        served = {server} | self._served(server)
        return Nodes(
            {node: groups for node, groups in self.groups_of.items() if node in served},
            self.groups,
            lambda names: self._read_own(served if names is None else set(names) & served),
            lambda attribute: _only(self._read_column(attribute), served),
        )

    def _served(self, server: str) -> set[str]:
        """The nodes whose effective servicenode lists `server` or whose
        xcatmaster is it.  Worked out once per distinct `groups` list for the
        nodes that inherit both (most of them: at 100,000 nodes this is
        tens of milliseconds, and a service node asks on every request)."""

        def serves(servicenode: str | None, xcatmaster: str | None) -> bool:
            return server in (servicenode or "").split(",") or xcatmaster == server

        own_servicenode, own_xcatmaster = self._column("servicenode"), self._column("xcatmaster")
        by_groups: dict[str, bool] = {}
        served = set()
        for node, groups in self.groups_of.items():
            if node in own_servicenode or node in own_xcatmaster or groups not in by_groups:
                answer = serves(
                    self.attribute(node, "servicenode"), self.attribute(node, "xcatmaster")
                )
                if node in own_servicenode or node in own_xcatmaster or self._regex(groups):
                    if answer:
                        served.add(node)
                    continue
                by_groups[groups] = answer
            if by_groups[groups]:
                served.add(node)
        return served

    def _regex(self, groups: str) -> bool:
        """Whether what these groups give holds a regular expression (its value
        differs from node to node)."""
        inherited = self._inherited(groups)
        return any(
            is_regex_value(inherited[a][0]) for a in ("servicenode", "xcatmaster") if a in inherited
        )

    @cached_property
    def own(self) -> dict[str, dict[str, str]]:
        """Each node's own (stored) values."""
        return self._read_own(None)

    # -- NodeSource --------------------------------------------------------

    def all_nodes(self) -> Sequence[str]:
        return list(self.groups_of)

    def group_members(self, group: str) -> Sequence[str] | None:
        definition = self.groups.get(group)
        if definition is not None and definition.get("grouptype") == "dynamic":
            selections = parse_wherevals(definition.get("wherevals", ""))
            return [
                node
                for node in self.groups_of
                if all(s.matches(self.attribute(node, s.attribute)) for s in selections)
            ]
        members = self.static_members.get(group)
        if members is None and definition is not None:
            return []  # defined, nobody in it yet
        return members

    def attribute(self, node: str, attribute: str) -> str | None:
        """One effective value, without working out (or reading) all the others."""
        own = self._column(attribute)
        if node in own:
            value = own[node]
        else:
            value = self._inherited(self.groups_of[node]).get(attribute, (None, None))[0]
        if value is not None and is_regex_value(value):
            return compile_value(value)(node)
        return value

    def _column(self, attribute: str) -> dict[str, str]:
        """The nodes' own values of one attribute (`lsdef -w` over 100,000 nodes
        reads one column, not the whole table)."""
        column = self._columns.get(attribute)
        if column is None:
            if "own" in self.__dict__:  # already read whole
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
        own = self.own[node]
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


def _only(values: dict[str, T], names: set[str]) -> dict[str, T]:
    return {name: value for name, value in values.items() if name in names}
