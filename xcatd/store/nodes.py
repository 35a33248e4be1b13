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

from collections.abc import Iterable, Sequence
from functools import cached_property

import sqlite_utils

from .objtypes import GROUP, NODE
from .regex_values import compile_value, is_regex_value
from .selection import parse_wherevals

# Group attributes that describe the group itself and are not inherited.
GROUP_ONLY = ("grouptype", "members", "wherevals")

Sourced = dict[str, tuple[str, str | None]]  # attr -> (value, group it came from or None)


def rows(
    db: sqlite_utils.Database,
    table: str,
    key: str,
    where: str | None = None,
    parameters: list[str] | None = None,
) -> dict[str, dict[str, str]]:
    """Rows of a table as name -> {attribute: value}, leaving out empty values."""
    result: dict[str, dict[str, str]] = {}
    query = f"select * from [{table}]" + (f" where {where}" if where else "")
    cursor = db.execute(query, parameters or [])
    columns = [d[0] for d in cursor.description]
    key_index = columns.index(key)
    for row in cursor:
        result[row[key_index]] = {
            column: value
            for column, value in zip(columns, row, strict=True)
            if value not in (None, "") and column != key
        }
    return result


class Nodes:
    def __init__(self, own: dict[str, dict[str, str]], groups: dict[str, dict[str, str]]) -> None:
        self.own = own
        self.groups = groups
        self._merged: dict[str, Sourced] = {}

    @classmethod
    def load(cls, db: sqlite_utils.Database) -> Nodes:
        return cls(rows(db, NODE.name, NODE.key), rows(db, GROUP.name, GROUP.key))

    # -- NodeSource --------------------------------------------------------

    def all_nodes(self) -> Sequence[str]:
        return list(self.own)

    def group_members(self, group: str) -> Sequence[str] | None:
        definition = self.groups.get(group)
        if definition is not None and definition.get("grouptype") == "dynamic":
            selections = parse_wherevals(definition.get("wherevals", ""))
            return [
                node
                for node in self.own
                if all(s.matches(self.attribute(node, s.attribute)) for s in selections)
            ]
        members = self.static_members.get(group)
        if members is None and definition is not None:
            return []  # defined, nobody in it yet
        return members

    def attribute(self, node: str, attribute: str) -> str | None:
        found = self.sourced(node).get(attribute)
        return found[0] if found else None

    # -- inheritance -------------------------------------------------------

    def effective(self, node: str) -> dict[str, str]:
        return {attribute: value for attribute, (value, _) in self.sourced(node).items()}

    def sourced(self, node: str) -> Sourced:
        """Each attribute's effective value and the group it came from (None: the node's own)."""
        own = self.own[node]
        values = dict(self._inherited(own.get("groups", "")))
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
        for node, own in self.own.items():
            for group in own.get("groups", "").split(","):
                if group:
                    members.setdefault(group, []).append(node)
        return members

    def group_names(self) -> Iterable[str]:
        """Every group that exists: defined, or listed by a node."""
        return dict.fromkeys([*self.groups, *self.static_members])
