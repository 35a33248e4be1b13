"""Groups defined by mkdef and chdef as xCAT defines them: dynamic groups
from `-d -w attr==val ...`, and static groups whose members are named
(`members=noderange`) or selected (`-w`), which xCAT records in the member
nodes' `groups` (DBobjectdefs.pm defmk, defch).

`planned` turns the command's group definitions into what is stored: each
group's own row, and the edits of its members' `groups` lists; it refuses,
in xCAT's words, what xCAT refuses, and nothing is written for any object
then (this project's rule).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from .nodes import Nodes
from .objects import Definition, DefinitionError, Edit
from .objtypes import GROUP, NODE
from .selection import Selection, SelectionError, parse_selection

# Values of `members` that xCAT writes in place of a list (its stanzas carry them).
_PLACEHOLDERS = ("static", "dynamic")

# xCAT's words (DBobjectdefs.pm).
BAD_SELECTION = "Incorrect selection string specified with -w flag."
BAD_SELECTION_ATTRIBUTE = "Incorrect attribute '{}' in the selection string specified with -w flag."
NO_ATTRIBUTES = "Can not assign attributes to dynamic node group '{}'."
NO_WHERE = (
    "The 'where' attributes and values were not provided for dynamic group '{}'.",
    "Skipping to the next group.",
)
MEMBERS_AND_WHERE = "Cannot use a list of members together with the '-w' option."
NO_SUCH_MEMBER = "Could not find a node named '{}', skipping to the next node."


@dataclass
class GroupOptions:
    """What the command line says of groups: -d, the -w selections, -p/-m."""

    dynamic: bool = False
    where: list[str] = field(default_factory=list)
    mode: str = "set"  # set | add (-p) | remove (-m)
    command: str = "mkdef"


@dataclass
class Plan:
    definitions: list[Definition]  # every object of the request, groups as stored
    members: list[Edit]  # the member nodes' `groups` edits
    # xCAT's error for each member named that is not a node: the group and
    # its other members are still written, and the command ends with rc 1.
    missing: list[str] = field(default_factory=list)


def selections(options: GroupOptions) -> list[Selection]:
    """The -w selections, refused in xCAT's words; a dynamic group's may
    name only node attributes."""
    try:
        chosen = [parse_selection(text) for text in options.where]
    except SelectionError:
        raise DefinitionError([BAD_SELECTION]) from None
    if options.dynamic:
        for selection in chosen:
            if selection.attribute != NODE.key and NODE.attribute(selection.attribute) is None:
                raise DefinitionError([BAD_SELECTION_ATTRIBUTE.format(selection.attribute)])
    return chosen


def planned(
    nodes: Nodes,
    definitions: list[Definition],
    options: GroupOptions,
    expand: Callable[[str], list[str]],
    skip: Collection[str] = (),
) -> Plan:
    """The request's definitions with its groups worked out; `expand` reads
    a `members=` noderange; `skip`: groups mkdef leaves as they are (they
    exist, and it warns of them)."""
    chosen = selections(options)
    problems: list[str] = []
    kept: list[Definition] = []
    members: list[Edit] = []
    missing: list[str] = []
    for definition in definitions:
        if definition.objtype is not GROUP or definition.name in skip:
            kept.append(definition)
            continue
        group = _Group(nodes, definition, options, chosen, expand)
        if why := group.refusal():
            problems += why
            continue
        kept.append(Definition(GROUP, definition.name, group.stored_values()))
        found, not_nodes = group.members()
        missing += [NO_SUCH_MEMBER.format(name) for name in not_nodes]
        if found or not not_nodes:  # none of the names a node: xCAT leaves the members be
            members += group.edits(found)
    if problems:
        raise DefinitionError(problems, per_object=True)
    return Plan(kept, members, missing)


class _Group:
    """One group of the request, beside what is stored of it."""

    def __init__(
        self,
        nodes: Nodes,
        definition: Definition,
        options: GroupOptions,
        chosen: list[Selection],
        expand: Callable[[str], list[str]],
    ) -> None:
        self.nodes, self.name, self.options = nodes, definition.name, options
        self.values = dict(definition.values)
        self.chosen, self.expand = chosen, expand
        self.stored = nodes.groups.get(self.name)
        self.listed = None if self.stored is not None else nodes.group_members(self.name)
        if options.where and not self.values.get("wherevals"):
            self.values["wherevals"] = "::".join(options.where)

    @property
    def exists(self) -> bool:
        """Defined, or listed by some node."""
        return self.stored is not None or bool(self.listed)

    @property
    def kind(self) -> str:
        stored = (self.stored or {}).get("grouptype")
        given = self.values.get("grouptype")
        return given or stored or ("dynamic" if self.options.dynamic else "static")

    def refusal(self) -> list[str]:
        """xCAT's refusal of this group, or nothing."""
        given = {k for k in self.values if k != "wherevals" or not self.options.where}
        if (
            self.options.dynamic
            and given
            and (self.options.command == "chdef" or "grouptype" not in given)
        ):
            return [NO_ATTRIBUTES.format(self.name)]
        stored = self.stored or {}
        if self.options.command == "chdef" and stored.get("grouptype") == "dynamic" and given:
            return [NO_ATTRIBUTES.format(self.name)]
        if self.kind == "dynamic":
            if not (self.values.get("wherevals") or stored.get("wherevals")):
                return [line.format(self.name) for line in NO_WHERE]
        elif self.options.where and self.values.get("members") not in (None, *_PLACEHOLDERS):
            return [MEMBERS_AND_WHERE]
        return []

    def stored_values(self) -> dict[str, str]:
        """The group's own row: its type recorded when it is new, never a
        list of members (the members' `groups` hold that, as in xCAT)."""
        values = {k: v for k, v in self.values.items() if k != "members"}
        if not self.stored:
            values.setdefault("grouptype", self.kind)
        return values

    def members(self) -> tuple[list[str], list[str]]:
        """The members given (`members=` or -w) that are nodes, and the
        names that are not; nothing given: no change to the members."""
        if self.kind == "dynamic":
            return [], []
        given = self.values.get("members")
        if given and given not in _PLACEHOLDERS:
            names = self.expand(given)
            known = self.nodes.nodes_among(names)
            return [n for n in names if n in known], [n for n in names if n not in known]
        if self.options.where:
            return [n for n in self.nodes.all_nodes() if self._selected(n)], []
        return [], []

    def _selected(self, node: str) -> bool:
        return all(s.matches(self.nodes.attribute(node, s.attribute)) for s in self.chosen)

    def edits(self, found: list[str]) -> list[Edit]:
        """The member nodes' `groups` edits: added to (new group, -p),
        taken from (-m), or, for chdef of a group that exists, the members
        replaced (xCAT's default)."""
        if not found and not self._replacing():
            return []
        mode = self.options.mode
        if self._replacing():
            current = list(self.nodes.group_members(self.name) or [])
            gone = [n for n in current if n not in set(found)]
            found = [n for n in found if n not in set(current)]
            return self._edit(gone, "remove") + self._edit(found, "add")
        return self._edit(found, "remove" if mode == "remove" else "add")

    def _replacing(self) -> bool:
        """chdef of a group that exists, given its members: they replace the old."""
        given = self.values.get("members") not in (None, *_PLACEHOLDERS) or self.options.where
        chdef = self.options.command == "chdef" and self.options.mode == "set"
        return bool(given) and chdef and self.exists

    def _edit(self, names: list[str], mode: str) -> list[Edit]:
        return [Edit(Definition(NODE, name, {"groups": self.name}), mode) for name in names]
