"""The definition commands: lsdef, mkdef, chdef, rmdef, nodels.

Options and output follow xCAT (see XCAT-BEHAVIOUR.md): the same command
line gives the same text.  The work happens in the store's worker thread
and comes back as lines, which are sent in batches so that listing 100,000
nodes is a few hundred frames, not a million.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property, partial

from ..call import Call
from ..store import objects
from ..store.nodes import Nodes
from ..store.objects import Definition, Edit
from ..store.objtypes import GROUP, NODE, POLICY, TYPES, ObjectType
from ..store.selection import ATTRIBUTE_NAME, Selection, parse_selection
from ..store.stanza import format_stanzas, parse
from .common import Produced, Refusal, expand_noderange, respond
from .registry import CommandParser, HelpRequested, command

# -- shared option handling ---------------------------------------------------


def _types(options: argparse.Namespace, default: str = "node") -> list[ObjectType]:
    names = (options.type or default).split(",")
    return [objects.object_type(name.strip()) for name in names if name.strip()]


def _split_positionals(positionals: list[str]) -> tuple[str | None, dict[str, str]]:
    """`[noderange] attr=value ...` as mkdef and chdef take them."""
    names = None
    if positionals and "=" not in positionals[0]:
        names, positionals = positionals[0], positionals[1:]
    values = {}
    for pair in positionals:
        attribute, equals, value = pair.partition("=")
        if not equals:
            raise Refusal(f"'{pair}' is not attribute=value")
        if not ATTRIBUTE_NAME.fullmatch(attribute):
            raise Refusal(_bad_attribute(pair, attribute, value))
        values[attribute] = value
    return names, values


def _bad_attribute(pair: str, attribute: str, value: str) -> str:
    """Why `pair` is not attr=value: spaces around '=' (which the shell kept,
    and which would end up in the name or the value), or no attribute name."""
    name = attribute.strip()
    if ATTRIBUTE_NAME.fullmatch(name):
        return f"'{pair}': write {name}={value.strip()}, with no spaces around '='"
    return (
        f"'{pair}': '{attribute}' is not an attribute name "
        "(up to 64 letters, digits, '_' and '.'; see lsdef -t TYPE -h)"
    )


def _names(
    db, objtype: ObjectType, names: str | None, call: Call, *, verify: bool = True
) -> list[str]:
    """Object names from -o or a positional noderange; for nodes a noderange."""
    if names is None:
        return []
    if objtype is NODE:
        return expand_noderange(call, names, Nodes.load(db), verify=verify)
    return [name.strip() for name in names.split(",") if name.strip()]


def _stanzas(call: Call) -> list[Definition]:
    if not call.stdin:
        raise Refusal("-z reads a stanza file from standard input: cat FILE | mkdef -z")
    text = call.stdin.decode("utf-8", errors="replace")
    return [
        Definition(objects.object_type(s.objtype or ""), s.name, _without_objtype(s.attributes))
        for s in parse(text)
    ]


def _without_objtype(attributes: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in attributes.items() if k != "objtype"}


def _count(n: int, what: str, types: Iterable[ObjectType]) -> Produced:
    return Produced(
        [f"{n} object definitions have been {what}."], policy_changed=POLICY in set(types)
    )


# -- mkdef ---------------------------------------------------------------------


def _object_options(parser: CommandParser, types: str = "object type (default node)") -> None:
    """The options every definition command shares."""
    parser.add_argument("-t", dest="type", help=types)
    parser.add_argument("-o", dest="objects", help="object names (a noderange for nodes)")
    parser.add_argument(
        "-V", "--verbose", action="store_true", help="lsdef: say which group a value comes from"
    )


def _definition_options(parser: CommandParser) -> None:
    """mkdef's and chdef's: what to define, from the command line or stanzas."""
    _object_options(parser)
    parser.add_argument("-z", "--stanza", action="store_true", help="read stanzas from stdin")
    parser.add_argument("args", nargs="*", metavar="[noderange] attr=value")


def _requested(db, call: Call, *, verify: bool) -> tuple[ObjectType, list[str], dict[str, str]]:
    """The type, names and attr=value pairs given on the command line."""
    options = call.options
    (objtype,) = _types(options)
    positional, values = _split_positionals(options.args)
    names = _names(db, objtype, options.objects or positional, call, verify=verify)
    if not names:
        raise Refusal(f"{call.body.cmd} needs object names: -o NAMES or a noderange")
    return objtype, names, values


@command("mkdef", "Create xCAT data object definitions.", reads_stdin=True)
def mkdef_options(parser: CommandParser) -> None:
    _definition_options(parser)
    parser.add_argument("-f", "--force", action="store_true", help="replace existing objects")
    parser.add_argument("--template", help="copy the attributes of this object first")


@mkdef_options.runs
async def mkdef(call: Call) -> None:
    options = call.options

    def work(db) -> Produced:
        if options.stanza:
            definitions = _stanzas(call)
        else:
            objtype, names, values = _requested(db, call, verify=False)
            if options.template:
                template = objects.load(db, objtype, [options.template]).get(options.template)
                if template is None:
                    raise Refusal(f"the template '{options.template}' is not a {objtype.name}")
                values = {**template, **values}
            definitions = [Definition(objtype, name, dict(values)) for name in names]
        created = objects.create(db, definitions, options.force)
        return _count(created, "created or modified", (d.objtype for d in definitions))

    await respond(call, work)


# -- chdef ---------------------------------------------------------------------


@command("chdef", "Change xCAT data object definitions.", reads_stdin=True)
def chdef_options(parser: CommandParser) -> None:
    _definition_options(parser)
    edit = parser.add_mutually_exclusive_group()
    edit.add_argument("-p", "--plus", action="store_true", help="add items to list values")
    edit.add_argument("-m", "--minus", action="store_true", help="remove items from list values")
    parser.add_argument("-n", dest="newname", help="rename the object")


@chdef_options.runs
async def chdef(call: Call) -> None:
    options = call.options
    mode = "add" if options.plus else "remove" if options.minus else "set"

    def work(db) -> Produced:
        if options.stanza:
            definitions = _stanzas(call)
        else:
            objtype, names, values = _requested(db, call, verify=True)
            if not values and not options.newname:
                raise Refusal("nothing to change: give attr=value or -n NEWNAME")
            definitions = [Definition(objtype, name, dict(values)) for name in names]
        edits = [Edit(definition, mode) for definition in definitions]
        changed = objects.change(db, edits, options.newname)
        return _count(changed, "created or modified", (d.objtype for d in definitions))

    await respond(call, work)


# -- rmdef ---------------------------------------------------------------------


@command("rmdef", "Remove xCAT data object definitions.")
def rmdef_options(parser: CommandParser) -> None:
    _object_options(parser)
    parser.add_argument("-a", "--all", action="store_true", help="every object of the type")
    parser.add_argument("-f", "--force", action="store_true", help="needed with -a")
    parser.add_argument("noderange", nargs="?", help="objects to remove")


@rmdef_options.runs
async def rmdef(call: Call) -> None:
    options = call.options

    def work(db) -> Produced:
        (objtype,) = _types(options)
        if options.all:
            if not options.force:
                raise Refusal(f"removing every {objtype.name} needs -f as well as -a")
            names = list(objects.load(db, objtype))
        else:
            names = _names(db, objtype, options.objects or options.noderange, call)
        if not names:
            raise Refusal("rmdef needs object names: -o NAMES, a noderange, or -a -f")
        return _count(objects.remove(db, objtype, names), "removed", [objtype])

    await respond(call, work)


# -- lsdef ---------------------------------------------------------------------


@command("lsdef", "List xCAT data object definitions.", add_help=False)
def lsdef_options(parser: CommandParser) -> None:
    parser.add_argument(
        "-h", "--help", dest="help", action="store_true", help="with -t: list the attributes"
    )
    _object_options(parser, "object types, comma separated (default node)")
    form = parser.add_mutually_exclusive_group()
    form.add_argument("-l", "--long", action="store_true", help="every attribute")
    form.add_argument("-s", "--short", action="store_true", help="names only")
    form.add_argument("-z", "--stanza", action="store_true", help="stanza format")
    parser.add_argument("-a", "--all", action="store_true", help="objects of every type")
    parser.add_argument("-i", dest="attributes", help="only these attributes, comma separated")
    parser.add_argument("-c", "--compress", action="store_true", help="with -i: obj: attr=val")
    parser.add_argument(
        "-w", dest="where", action="append", default=[], help="attr==val, !=, =~, !~"
    )
    parser.add_argument("noderange", nargs="?", help="objects to list")


@lsdef_options.runs
async def lsdef(call: Call) -> None:
    options = call.options
    if options.help:
        if options.type is None:
            raise HelpRequested(lsdef_options.parser.format_help().rstrip())
        await call.info(_attribute_help(_types(options)))
        return
    await respond(call, lambda db: _listing(db, call))


def _attribute_help(types: list[ObjectType]) -> str:
    lines = []
    for objtype in types:
        lines.append(f"The valid attribute names for object type '{objtype.name}' are:")
        width = max(len(name) for name in objtype.attributes)
        for attribute in objtype.attributes.values():
            lines.append(f"  {attribute.name.ljust(width)}  {attribute.describe()}")
    return "\n".join(lines)


@dataclass
class Listed:
    objtype: ObjectType
    name: str
    fetch: Callable[[], dict[str, tuple[str, str | None]]]

    @cached_property
    def values(self) -> dict[str, tuple[str, str | None]]:
        """attr -> (value, group it is inherited from); worked out only when shown,
        so `lsdef -s` over 100,000 nodes never reads their attributes."""
        return self.fetch()


def _listing(db, call: Call) -> Produced:
    options = call.options
    types = list(TYPES.values()) if options.all else _types(options)
    names = options.objects or options.noderange
    selections = [parse_selection(w) for w in options.where]
    listed = [
        item for objtype in types for item in _objects_of(db, objtype, names, call, selections)
    ]
    if not listed:
        return Produced(["Could not find any object definitions to display."], [])
    if options.json:
        return Produced([], [_record(item) for item in listed])
    form = _form(options, names, selections)
    return Produced(list(form(listed, options, len(types) > 1)))


def _objects_of(
    db, objtype: ObjectType, names: str | None, call: Call, selections: list[Selection]
) -> Iterator[Listed]:
    if objtype is NODE:
        nodes = Nodes.load(db)
        chosen = expand_noderange(call, names, nodes) if names else sorted_names(nodes.groups_of)
        for name in chosen:
            # Test the selected attributes alone before working out all of them.
            if all(s.matches(nodes.attribute(name, s.attribute)) for s in selections):
                yield Listed(NODE, name, partial(nodes.sourced, name))
        return
    if objtype is GROUP:
        candidates: Iterable[Listed] = _groups(Nodes.load(db), names)
    else:
        candidates = _stored(db, objtype, names)
    for item in candidates:
        if all(s.matches(item.values.get(s.attribute, ("",))[0]) for s in selections):
            yield item


def _stored(db, objtype: ObjectType, names: str | None) -> Iterator[Listed]:
    stored = objects.load(db, objtype)
    chosen = [n.strip() for n in names.split(",")] if names else sorted_names(stored)
    missing = [name for name in chosen if name not in stored]
    if missing:
        raise Refusal(
            *(f"Could not find an object named '{n}' of type '{objtype.name}'." for n in missing)
        )
    for name in chosen:
        values = {a: (v, None) for a, v in stored[name].items()}
        yield Listed(objtype, name, lambda values=values: values)


def _groups(nodes: Nodes, names: str | None) -> Iterator[Listed]:
    known = list(nodes.group_names())
    chosen = [n.strip() for n in names.split(",")] if names else sorted_names(known)
    missing = [name for name in chosen if name not in known]
    if missing:
        raise Refusal(*(f"Could not find an object named '{n}' of type 'group'." for n in missing))
    for name in chosen:
        values = {a: (v, None) for a, v in nodes.groups.get(name, {}).items()}
        values.setdefault("grouptype", ("static", None))
        if values["grouptype"][0] == "static":
            values["members"] = (",".join(nodes.group_members(name) or []), None)
        yield Listed(GROUP, name, lambda values=values: values)


def sorted_names(names: Iterable[str]) -> list[str]:
    from ..store.noderange import natural_key

    return sorted(names, key=natural_key)


def _form(options, names: str | None, selections: list[Selection]) -> Callable:
    if options.stanza:
        return _stanza_lines
    if options.attributes and options.compress:
        return _compressed_lines
    if options.short:
        return _short_lines
    if options.long or options.attributes or (names and not selections):
        return _long_lines
    return _short_lines


def _short_lines(listed: list[Listed], options, several_types: bool) -> Iterator[str]:
    for item in listed:
        yield f"{item.name}  ({item.objtype.name})"


def _long_lines(listed: list[Listed], options, several_types: bool) -> Iterator[str]:
    wanted = _wanted(options)
    for item in listed:
        suffix = f"  ({item.objtype.name})" if several_types else ""
        yield f"Object name: {item.name}{suffix}"
        for attribute in wanted or sorted(item.values):
            value, source = item.values.get(attribute, ("", None))
            if value or wanted:
                origin = f" (inherited from group {source})" if source and options.verbose else ""
                yield f"    {attribute}={value}{origin}"


def _compressed_lines(listed: list[Listed], options, several_types: bool) -> Iterator[str]:
    wanted = _wanted(options)
    for item in listed:
        for attribute in wanted:
            yield f"{item.name}: {attribute}={item.values.get(attribute, ('',))[0]}"


def _stanza_lines(listed: list[Listed], options, several_types: bool) -> Iterator[str]:
    wanted = _wanted(options)

    def plain(item: Listed) -> dict[str, str]:
        chosen = wanted or item.values
        return {a: item.values.get(a, ("",))[0] for a in chosen if a != "members"}

    return format_stanzas((item.name, item.objtype.name, plain(item)) for item in listed)


def _wanted(options) -> list[str]:
    return [a.strip() for a in (options.attributes or "").split(",") if a.strip()]


def _record(item: Listed) -> dict:
    return {
        "name": item.name,
        "objtype": item.objtype.name,
        **{attribute: value for attribute, (value, _) in item.values.items()},
    }


# -- nodels --------------------------------------------------------------------


@command("nodels", "List nodes, and their attributes.")
def nodels_options(parser: CommandParser) -> None:
    parser.add_argument("-H", "--with-fieldname", action="store_true", help="node: attr: value")
    parser.add_argument(
        "-b", "--blame", action="store_true", help="say which group a value comes from"
    )
    parser.add_argument("noderange", nargs="?", help="nodes (default: all)")
    parser.add_argument("attributes", nargs="*", help="attributes (attr or table.attr)")


@nodels_options.runs
async def nodels(call: Call) -> None:
    options = call.options

    def work(db) -> Produced:
        nodes = Nodes.load(db)
        chosen = (
            expand_noderange(call, options.noderange, nodes)
            if options.noderange
            else sorted_names(nodes.groups_of)
        )
        if not options.attributes:
            return Produced(chosen, [{"node": n} for n in chosen])
        shown = [(given, given.rpartition(".")[2]) for given in options.attributes]
        unknown = [given for given, attr in shown if attr not in NODE.attributes]
        if unknown:
            raise Refusal(*(f"'{u}' is not a node attribute" for u in unknown))
        label = options.with_fieldname or len(shown) > 1
        lines, records = [], []
        for node in chosen:
            sourced = nodes.sourced(node)
            record = {"node": node}
            for given, attribute in shown:
                value, source = sourced.get(attribute, ("", None))
                blame = f" (inherited from group {source})" if options.blame and source else ""
                lines.append(f"{node}: {given}: {value}{blame}" if label else f"{node}: {value}")
                record[attribute] = value
            records.append(record)
        return Produced(lines, records)

    await respond(call, work)
