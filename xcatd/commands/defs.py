"""The definition commands: lsdef, mkdef, chdef, rmdef, nodels.

Options and output follow xCAT (see XCAT-BEHAVIOUR.md): the same command
line gives the same text.  The work happens in the store's worker thread
and comes back as lines, which are sent in batches so that listing 100,000
nodes is a few hundred frames, not a million.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, replace
from functools import cached_property, partial
from pathlib import Path

from ..call import Call
from ..images import osimage_update
from ..store import group_defs, keyed, objects, only_if, templates
from ..store.nodes import Nodes
from ..store.objects import Definition, DefinitionError, Edit
from ..store.objtypes import GROUP, NODE, OSIMAGE, POLICY, SITE, TYPES, ObjectType, check_name
from ..store.selection import ATTRIBUTE_NAME, Selection, parse_selection
from ..store.stanza import HEADER, format_stanzas, parse
from ..store.tables import (
    SHORTNAMES,
    Mapping,
    NodeSelection,
    TableError,
    column_places,
    node_attribute,
    node_places,
    node_selection,
    where_kept,
)
from ..store.tables import tables as schema_tables
from . import nodeset
from .common import CommandRefused, Produced, expand_noderange, respond, worked
from .defs_usage import NODELS, usage
from .registry import CommandParser, UsageError, command
from .secrets import is_secret, masked, may_read_secrets

# xCAT's closing line once some object of a mkdef or chdef has failed
# (DBobjectdefs.pm defmk, defch; its spelling).
SOME_FAILED = (
    "One or more errors occured when attempting to create or modify xCAT object definitions."
)

# -- shared option handling ---------------------------------------------------


class DefParser(CommandParser):
    """The def commands' parser: a bad option does not end the request here;
    the command answers it with xCAT's `Invalid option..` and its own usage
    text (DBobjectdefs.pm processArgs), which a UsageError cannot carry."""

    def parse_intermixed_args(self, args=None, namespace=None) -> argparse.Namespace:  # type: ignore[override]
        try:
            return super().parse_intermixed_args(args, namespace)
        except UsageError:
            options = super().parse_intermixed_args([])
            options.invalid_option = True
            return options


def _types(options: argparse.Namespace, values: bool = False) -> list[ObjectType]:
    """The types of -t (node without it), each checked, in xCAT's words:
    several types cannot take attr=value pairs (`values`)."""
    names = [name.strip() for name in (options.type or "node").split(",") if name.strip()]
    if len(names) > 1 and values:
        raise CommandRefused(
            "Cannot combine multiple types with 'att=val' pairs on the command line."
        )
    return [objects.object_type(name) for name in names]


def _split_positionals(positionals: list[str]) -> tuple[str | None, dict[str, str]]:
    """`[noderange] attr=value ...` as mkdef and chdef take them."""
    names = None
    if positionals and "=" not in positionals[0]:
        names, positionals = positionals[0], positionals[1:]
    values = {}
    for pair in positionals:
        attribute, equals, value = pair.partition("=")
        if not equals:
            raise CommandRefused(f"'{pair}' is not attribute=value")
        if not ATTRIBUTE_NAME.fullmatch(attribute):
            raise CommandRefused(_bad_attribute(pair, attribute, value))
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


def _names(db, objtype: ObjectType, names: str | None, call: Call) -> list[str]:
    """Object names from -o or a positional noderange; for nodes a noderange,
    whose unknown names are kept: mkdef and chdef create them, rmdef says
    they are not found, as xCAT's commands do."""
    if names is None:
        return []
    if objtype is NODE:
        return expand_noderange(call, names, call.nodes(db), verify=False)
    return comma_list(names)


def comma_list(names: str) -> list[str]:
    """The names of a comma list, each once, in order."""
    return list(dict.fromkeys(name.strip() for name in names.split(",") if name.strip()))


def _stanzas(call: Call) -> list[Definition]:
    if not call.stdin:
        raise CommandRefused("-z reads a stanza file from standard input: cat FILE | mkdef -z")
    text = call.stdin.decode("utf-8", errors="replace")
    return [
        Definition(objects.object_type(s.objtype or ""), s.name, _without_objtype(s.attributes))
        for s in parse(text)
    ]


def _without_objtype(attributes: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in attributes.items() if k != "objtype"}


def _written(
    lines: list[str], types: Iterable[ObjectType], errors: list[str] | None = None
) -> Produced:
    """What a command that wrote prints; policies written make the daemon read them again."""
    return Produced(lines, policy_changed=POLICY in set(types), errors=errors or [])


def _first_answer(call: Call) -> Produced | None:
    """What xCAT answers before it looks at any object: the usage (mkdef, chdef
    or rmdef without arguments; -h without -t), the version (-v), the
    attributes of the types (-h with -t).  None: the command goes on."""
    options, name = call.options, call.body.cmd
    if options.invalid_option:
        raise CommandRefused("Invalid option..", usage=usage(name))
    if options.cleanup and name != "rmdef":
        raise CommandRefused(f"Option '-C' can not be used with {name}.", usage=usage(name))
    if options.xml:
        raise CommandRefused("The '-x' (XML format) option is not yet implemented.")
    if options.update:
        _check_update_option(call)
    if (not call.body.args and name != "lsdef") or (options.help and options.type is None):
        return Produced([usage(name)])
    if options.version:
        return Produced([f"{name} - Version {call.context.version}"])
    if options.help:
        return Produced([_attribute_help(_types(options), getattr(options, "attributes", None))])
    return None


def _check_update_option(call: Call) -> None:
    """What xCAT refuses of -u, in its words (DBobjectdefs.pm processArgs);
    without -t (nor a stanza file) -u means -t osimage."""
    options, name = call.options, call.body.cmd
    if name not in ("mkdef", "chdef"):
        raise CommandRefused(f"Option '-u' can not work with {name}.", usage=usage(name))
    if options.type is None and not options.stanza:
        options.type = OSIMAGE.name
    elif options.type != OSIMAGE.name:
        raise CommandRefused("Option '-u' only work for objtype 'osimage'.", usage=usage(name))
    if getattr(options, "plus", False) or getattr(options, "minus", False):
        raise CommandRefused("Cannot use '-u' with '-p' or '-m'.")


def _filled_images(db, call: Call, definitions: list[Definition]) -> list[Definition]:
    """-u: each osimage's attributes filled in from its profile (chdef: its
    stored provmethod, profile, osvers, ... where the command line gives
    none), or DefinitionError with xCAT's words for each that cannot be."""
    images = [d.name for d in definitions if d.objtype is OSIMAGE]
    stored = (
        objects.load(db, OSIMAGE, images, columns=osimage_update.IMAGE_ATTRIBUTES)
        if call.body.cmd == "chdef"
        else {}
    )
    places = _places(db, call)
    filled, problems = [], []
    for definition in definitions:
        if definition.objtype is not OSIMAGE:
            filled.append(definition)
            continue
        known = {k: v for k, v in stored.get(definition.name, {}).items() if v}
        try:
            values = osimage_update.filled({**known, **definition.values}, call.body.cmd, places)
        except osimage_update.UpdateError as exc:
            problems.append(str(exc))
            continue
        filled.append(Definition(OSIMAGE, definition.name, values))
    if problems:
        raise DefinitionError(problems, per_object=True)
    return filled


def _no_names(call: Call) -> CommandRefused:
    """xCAT's refusal of a command that names no object; chdef and rmdef
    given a type print their usage after it."""
    with_usage = call.body.cmd in ("chdef", "rmdef") and call.options.type is not None
    text = usage(call.body.cmd) if with_usage else None
    return CommandRefused("No object names were provided.", usage=text)


# -- mkdef ---------------------------------------------------------------------


def _object_options(parser: CommandParser, types: str = "object type (default node)") -> None:
    """The options every definition command shares."""
    parser.add_argument(
        "-h", "-?", "--help", dest="help", action="store_true", help="usage; with -t: attributes"
    )
    parser.add_argument("-v", "--version", action="store_true", help="the version")
    parser.add_argument("-t", dest="type", help=types)
    parser.add_argument("-o", dest="objects", help="object names (a noderange for nodes)")
    parser.add_argument(
        "-V", "--verbose", action="store_true", help="lsdef: the table and column of each value"
    )
    # xCAT's four commands take -u; mkdef and chdef alone use it (_check_update_option).
    parser.add_argument(
        "-u", dest="update", action="store_true", help="osimage: fill in from its profile"
    )
    # xCAT's four commands take -C (rmdef's cleanup) and -x (XML, never done):
    # refused in its words where they do not apply (_first_answer).
    parser.add_argument("-C", "--cleanup", action="store_true", help="rmdef: nodeset offline first")
    parser.add_argument("-x", "--xml", action="store_true", help="not supported")
    parser.set_defaults(invalid_option=False)  # DefParser sets it


def _definition_options(parser: CommandParser) -> None:
    """mkdef's and chdef's: what to define, from the command line or stanzas."""
    _object_options(parser)
    parser.add_argument("-z", "--stanza", action="store_true", help="read stanzas from stdin")
    parser.add_argument("-d", "--dynamic", action="store_true", help="a dynamic group (with -w)")
    parser.add_argument(
        "-w", dest="where", action="append", default=[], help="group members: attr==val, =~ ..."
    )
    parser.add_argument("args", nargs="*", metavar="[noderange] attr=value")


def _requested(db, call: Call) -> tuple[ObjectType, list[str], dict[str, str]]:
    """The type, names and attr=value pairs given on the command line."""
    options = call.options
    positional, values = _split_positionals(options.args)
    objtype = _types(options, bool(values))[0]  # xCAT's: the first type names the objects
    names = _names(db, objtype, options.objects or positional, call)
    if not names and objtype.only_object:
        names = [objtype.only_object]  # -t site: the one site object, as in xCAT
    if not names:
        raise _no_names(call)
    return objtype, names, values


@command(
    "mkdef",
    "Create xCAT data object definitions.",
    add_help=False,
    reads_stdin=True,
    parser_class=DefParser,
)
def mkdef_options(parser: CommandParser) -> None:
    _definition_options(parser)
    parser.add_argument("-f", "--force", action="store_true", help="replace existing objects")
    parser.add_argument(
        "--template", nargs="?", const="", help="an xCAT template or an object to start from"
    )


@mkdef_options.runs
async def mkdef(call: Call) -> None:
    options = call.options

    def work(db) -> Produced:
        if (answer := _first_answer(call)) is not None:
            return answer
        if options.template is not None:
            _check_template_option(call)
        if options.stanza:
            definitions = _stanzas(call)
        else:
            objtype, names, values = _requested(db, call)
            if options.template is not None:
                values = _from_template(db, objtype, options.template, names, values)
            definitions = [Definition(objtype, name, dict(values)) for name in names]
        try:
            if options.update:
                definitions = _filled_images(db, call, definitions)
            skip = set() if options.force else _defined_groups(db, definitions)
            plan = _group_plan(db, call, definitions, "set", skip)
            only_if.check(db, plan.definitions, stored=False)
            with db.atomic():
                created = objects.create(db, plan.definitions, options.force)
                objects.change(db, plan.members)
        except DefinitionError as exc:
            raise _failed(exc, closing=exc.per_object) from None
        return _created(created, [d.objtype for d in definitions], plan.missing)

    await respond(call, work)


def _check_template_option(call: Call) -> None:
    """What xCAT's mkdef refuses of --template before anything else, with
    its usage (DBobjectdefs.pm processArgs)."""
    template = call.options.template
    why = None
    if not template:
        why = "no object definition template specified for mkdef --template!"
    elif "," in template:
        why = "Only 1 template object definition should be specified for mkdef!"
    elif call.options.stanza:
        why = "The file input can not be used with --template option!"
    if why:
        raise CommandRefused(why, usage=usage("mkdef"))


def _from_template(
    db, objtype: ObjectType, template: str, names: list[str], given: dict[str, str]
) -> dict[str, str]:
    """mkdef --template: the values of xCAT's shipped template of that name
    (its MANDATORY attributes given), or of an existing object, under those
    given; refused in xCAT's words."""
    if (shipped := templates.shipped([objtype]).get(template)) is not None:
        try:
            return templates.filled(shipped[1], given)
        except templates.TemplateError as exc:
            raise CommandRefused(str(exc)) from None
    found = objects.load(db, objtype, [template]).get(template)
    if found is None and not objects.any_object(db, objtype):
        raise CommandRefused(f"Could not get objects of type '{objtype.name}'.")
    if found is None:
        raise CommandRefused(
            f"Could not find the template object named '{template}' of type '{objtype.name}'."
        )
    if template in names:
        raise CommandRefused("The template node cannot be the same as the node to create.")
    return {**found, **given}


def _failed(exc: DefinitionError, closing: bool) -> CommandRefused:
    """The problems of a mkdef or chdef that wrote nothing, with xCAT's
    closing line when some object failed its checks (DBobjectdefs.pm defmk
    prints it only then; defch after any error)."""
    return CommandRefused(*exc.problems, *([SOME_FAILED] if closing else []), warnings=exc.warnings)


def _created(created: objects.Created, types: list[ObjectType], errors: list[str]) -> Produced:
    """What mkdef prints once it has written: the count, or xCAT's error when
    every object existed already (DBobjectdefs.pm defmk), after the warnings
    of those it left as they were; `errors`: of members that are not nodes."""
    count = f"{created.count} object definitions have been created or modified."
    if not created.count:
        return Produced([], errors=[*errors, count], warnings=created.warnings)
    produced = _written([count], types, errors)
    produced.warnings = created.warnings
    return produced


# -- chdef ---------------------------------------------------------------------


@command(
    "chdef",
    "Change xCAT data object definitions.",
    add_help=False,
    reads_stdin=True,
    parser_class=DefParser,
)
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
        if (answer := _first_answer(call)) is not None:
            return answer
        if options.newname is not None:
            return _renamed(db, call)
        if options.stanza:
            definitions = _stanzas(call)
        else:
            objtype, names, values = _requested(db, call)
            if not values and not (options.where or options.dynamic or options.update):
                raise CommandRefused("nothing to change: give attr=value or -n NEWNAME")
            definitions = [Definition(objtype, name, dict(values)) for name in names]
        try:
            if options.update:
                definitions = _filled_images(db, call, definitions)
            plan = _group_plan(db, call, definitions, mode)
            only_if.check(db, plan.definitions, stored=True)
            edits = [Edit(definition, mode) for definition in plan.definitions]
            with db.atomic():
                changed = objects.change(db, edits, create=True)
                objects.change(db, plan.members)
        except DefinitionError as exc:
            raise _failed(exc, closing=True) from None
        lines = [f"{changed.count} object definitions have been created or modified."]
        if changed.new:
            lines.append(f"New object definitions '{','.join(changed.new)}' have been created.")
        return _written(lines, (d.objtype for d in definitions), plan.missing)

    await respond(call, work)


def _group_plan(
    db, call: Call, definitions: list[Definition], mode: str, skip: Collection[str] = ()
) -> group_defs.Plan:
    """The request's definitions with its groups worked out as xCAT does
    (-d, -w, members=); -d and -w are for groups alone."""
    options = call.options
    if (options.dynamic or options.where) and any(d.objtype is not GROUP for d in definitions):
        raise CommandRefused("The '-d' and '-w' options define groups: use them with '-t group'.")
    if not any(d.objtype is GROUP for d in definitions):
        return group_defs.Plan(definitions, [])
    nodes = call.nodes(db)
    wanted = group_defs.GroupOptions(options.dynamic, options.where, mode, call.body.cmd)
    return group_defs.planned(
        nodes,
        definitions,
        wanted,
        lambda names: expand_noderange(call, names, nodes, verify=False),
        skip,
    )


def _defined_groups(db, definitions: list[Definition]) -> set[str]:
    """The groups among the definitions that are defined already (mkdef leaves them)."""
    return objects.existing(db, GROUP, [d.name for d in definitions if d.objtype is GROUP])


def _renamed(db, call: Call) -> Produced:
    """chdef -n: one object renamed, nothing else done, as xCAT's defch does,
    with its words for what it refuses."""
    options = call.options
    if options.plus or options.minus or options.stanza or options.dynamic or options.where:
        raise CommandRefused(
            "Cannot combine '-n' and '-d','-p','-m','-z','-w' options.", usage=usage("chdef")
        )
    objtype = _types(options)[0]
    if check_name(objtype, options.newname):
        raise CommandRefused(
            f"The new object name '{options.newname}' is not valid.Please refer to "
            '"man xcatdb" for the valid "xCAT Object Name Format" ',
            usage=usage("chdef"),
        )
    _, names, _ = _requested(db, call)
    if len(names) > 1:
        raise CommandRefused(
            "The '-n' option (changing object name) can only work on one object.",
            usage=usage("chdef"),
        )
    objects.rename(db, objtype, names[0], options.newname)
    return _written([f"Changed the object name from {names[0]} to {options.newname}."], [objtype])


# -- rmdef ---------------------------------------------------------------------


@command("rmdef", "Remove xCAT data object definitions.", add_help=False, parser_class=DefParser)
def rmdef_options(parser: CommandParser) -> None:
    _object_options(parser)
    parser.add_argument("-a", "--all", action="store_true", help="every object of the type")
    parser.add_argument("-f", "--force", action="store_true", help="needed with -a")
    parser.add_argument("noderange", nargs="?", help="objects to remove")


@rmdef_options.runs
async def rmdef(call: Call) -> None:
    chosen = await worked(call, lambda db: _to_remove(db, call))
    if chosen is None:
        return
    if isinstance(chosen, Produced):  # usage, version, attribute help
        await respond(call, lambda db: chosen)
        return
    if call.options.cleanup and chosen.objtype is NODE:
        await _cleaned_up(call, chosen.names)
        if call.relayed_by_master:
            return  # a service node clears its nodes' boot files; the MN removes them
    await respond(call, partial(_removal, chosen))


@dataclass(frozen=True)
class _Removal:
    objtype: ObjectType
    names: list[str]


def _to_remove(db, call: Call) -> _Removal | Produced:
    """What rmdef removes, or what it answers instead, in xCAT's words."""
    options = call.options
    if (answer := _first_answer(call)) is not None:
        return answer
    objtype = _types(options)[0]  # xCAT's: the first type names the objects
    if options.all:
        if not options.force:
            raise CommandRefused(
                "You must use the '-f' option when using the '-a' option.",
                usage=usage("rmdef"),
            )
        names = list(objects.load(db, objtype))
    else:
        names = _names(db, objtype, options.objects or options.noderange, call)
    if not names:
        raise _no_names(call)
    return _Removal(objtype, names)


# xCAT's rmdef -C tells the user it may take a while above this many nodes.
CLEANUP_NOTICE_ABOVE = 100


async def _cleaned_up(call: Call, names: list[str]) -> None:
    """rmdef -C: as xCAT's, `nodeset <nodes> offline` before the nodes are
    removed, on this host and on their service nodes, so no boot file of a
    removed node is left to boot it; what it says is dropped, and the
    removal goes on whatever it said."""
    if len(names) > CLEANUP_NOTICE_ABOVE:
        await call.info("Performing configuration cleanup. This might take a some time.")
    await nodeset.take_offline(call, names)


def _removal(chosen: _Removal, db) -> Produced:
    removed, missing = objects.remove(db, chosen.objtype, chosen.names)
    errors = [objects.not_found(name, chosen.objtype) for name in missing]
    return _written([_removed(removed)], [chosen.objtype] if removed else [], errors)


def _removed(count: int) -> str:
    """xCAT's report of what rmdef removed."""
    if count:
        return f"{count} object definitions have been removed."
    return "No objects have been removed from the xCAT database."


# -- lsdef ---------------------------------------------------------------------


@command("lsdef", "List xCAT data object definitions.", add_help=False, parser_class=DefParser)
def lsdef_options(parser: CommandParser) -> None:
    _object_options(parser, "object types, comma separated (default node)")
    # -l and -z combine (a stanza is long output); conflicts are xCAT's (_conflict).
    parser.add_argument("-l", "--long", action="store_true", help="every attribute")
    parser.add_argument("-s", "--short", action="store_true", help="names only")
    parser.add_argument("-z", "--stanza", action="store_true", help="stanza format")
    parser.add_argument("-a", "--all", action="store_true", help="objects of every type")
    parser.add_argument("-i", dest="attributes", help="only these attributes, comma separated")
    parser.add_argument("-c", "--compress", action="store_true", help="with -i: obj: attr=val")
    parser.add_argument("--nics", action="store_true", help="the attributes per interface")
    parser.add_argument("--osimage", action="store_true", help="nodes: their osimage's too")
    parser.add_argument("-S", dest="hidden", action="store_true", help="hidden nodes too")
    parser.add_argument(
        "-w", dest="where", action="append", default=[], help="attr==val, !=, =~, !~"
    )
    parser.add_argument(
        "--template", nargs="?", const="", help="xCAT's shipped templates (these, or all)"
    )
    parser.add_argument("noderange", nargs="?", help="objects to list")


@lsdef_options.runs
async def lsdef(call: Call) -> None:
    def work(db) -> Produced:
        if conflict := _conflict(call.options):
            raise CommandRefused(conflict, usage=usage("lsdef"))
        if (answer := _first_answer(call)) is not None:
            return answer
        if call.options.template is not None:
            return _template_listing(call.options)
        return _listing(db, call)

    await respond(call, work)


def _template_listing(options: argparse.Namespace) -> Produced:
    """lsdef --template: xCAT's shipped templates of the types (-t, node by
    default; -a all), those named or all of them, listed as objects are."""
    available = templates.shipped(list(TYPES.values()) if options.all else _types(options))
    names = comma_list(options.template) if options.template else list(available)
    for name in names:
        if name not in available:
            raise CommandRefused(f"Could not find {name} in xCAT templates.")
    listed = [
        Listed(available[name][0], name, partial(_as_listed, available[name][1]))
        for name in sorted(names)
    ]
    lines = list(_form(options, options.template, [])(listed, options, False))
    return Produced(lines or ["No object definitions have been found"])


def _as_listed(values: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    return {attribute: (value, None) for attribute, value in values.items()}


def _conflict(options: argparse.Namespace) -> str | None:
    """Options that xCAT's lsdef refuses together, in xCAT's words; --nics is
    made the -i it stands for."""
    if options.long and options.short:
        return "The flags '-l' and '-s' cannot be used together."
    if options.nics and options.attributes:
        return "The flags '-i' and '--nics' cannot be used together."
    for flag, given in (("-i", options.attributes), ("-z", options.stanza)):
        if given and options.osimage:
            return f"The flags '{flag}' and '--osimage' cannot be used together."
    if options.nics:  # xCAT's: --nics is -i with these
        options.attributes = NICS
    if options.attributes and options.short:
        return "The flags '-i' and '-s' cannot be used together."
    if options.compress and not options.attributes:
        return "The flags '-c' and '-i' must be used together."
    return None


# What lsdef --nics lists (DBobjectdefs.pm processArgs).
NICS = (
    "nicips,nichostnamesuffixes,nichostnameprefixes,nictypes,niccustomscripts,nicnetworks,"
    "nicaliases,nicextraparams,nicdevices"
)


def _attribute_help(types: list[ObjectType], wanted: str | None) -> str:
    """`-h -t T` as xCAT prints it (DBobjectdefs.pm processArgs): a header,
    then `attr:<tab(s)>description`, a blank line between, sorted; with -i,
    only those attributes (`nicips.eth0` is nicips) and no first line."""
    chosen = {keyed.split_name(name.strip())[0] for name in wanted.split(",")} if wanted else None
    blocks = []
    for objtype in types:
        lines = (
            [] if chosen else [f"The valid attribute names for object type '{objtype.name}' are:"]
        )
        lines.append("Attribute          Description\n")
        entries = [
            f"{name}:{_HELP_GAP[len(name) < 7]}{attribute.meaning}"
            for name, attribute in objtype.attributes.items()
            if chosen is None or name in chosen
        ]
        lines.append("\n\n".join(sorted(entries)))
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


_HELP_GAP = {True: "\t\t", False: "\t"}  # xCAT's: two tabs after a name of under 7 characters


@dataclass
class Listed:
    objtype: ObjectType
    name: str
    fetch: Callable[[], dict[str, tuple[str, str | None]]]
    osimage: dict[str, str] | None = None  # lsdef --osimage: a node's image's attributes

    @cached_property
    def values(self) -> dict[str, tuple[str, str | None]]:
        """attr -> (value, group it is inherited from); worked out only when shown,
        so `lsdef -s` over 100,000 nodes never reads their attributes.  An
        attribute per interface is one `nicips.eth1` entry per interface."""
        return keyed.shown(self.fetch(), self.objtype.per_interface)

    def chosen(self, wanted: list[str]) -> list[str]:
        """The names -i asks for that the type has: `nicips` is each of its
        `nicips.<nic>` entries."""
        wanted = [name for name in wanted if _has(self.objtype, name)]
        if not self.objtype.per_interface:
            return wanted
        shown = []
        for name in wanted:
            if name in self.objtype.per_interface:
                shown += [a for a in sorted(self.values) if keyed.split_name(a)[0] == name]
            else:
                shown.append(name)
        return shown


@dataclass
class Found:
    """The objects of one type that lsdef lists."""

    listed: list[Listed]  # those named (or all) that every selection holds for
    missing: list[str]  # the names that are not objects of the type
    none: bool  # the type has no objects at all


def _listing(db, call: Call) -> Produced:
    """What lsdef prints, and xCAT's words when there is nothing to list."""
    options = call.options
    types = list(TYPES.values()) if options.all else _types(options)
    names = options.objects or options.noderange
    unknown = _unknown_attributes(options, types)
    selections = [parse_selection(w) for w in options.where]
    hidden = not may_read_secrets(call)
    if hidden and (secret := next((s for s in selections if is_secret(s.attribute)), None)):
        raise CommandRefused(
            f"-w {secret.attribute}: only administrators may select objects by a secret"
        )
    # One snapshot of the nodes for the node and group listings alike.
    nodes = call.nodes(db) if {NODE, GROUP} & set(types) else None
    found = {objtype: _objects_of(db, objtype, names, call, selections, nodes) for objtype in types}
    if hidden:  # passwords read ****** (secrets.py)
        for of_type in found.values():
            of_type.listed = [
                replace(item, fetch=partial(_masked_fetch, item.fetch)) for item in of_type.listed
            ]
    image_errors = _with_osimages(db, call, found[NODE].listed) if options.osimage else []
    empty = [objtype.name for objtype, of_type in found.items() if of_type.none]
    if empty and not (names or options.all):
        raise CommandRefused(f"Could not get objects of type '{empty[0]}'.")
    listed = [item for of_type in found.values() for item in of_type.listed]
    errors = (
        unknown
        + image_errors
        + [
            objects.not_found(name, objtype)
            for objtype, of_type in found.items()
            if not (of_type.none or selections)  # with -w, a missing name is just not selected
            for name in of_type.missing
        ]
    )
    if options.json:
        return Produced([], [_record(item) for item in listed], errors=errors)
    lines = list(_form(options, names, selections)(listed, options, len(types) > 1))
    if not lines and len(empty) < len(types):
        lines = ["No object definitions have been found"]
    notes = [f"Could not find any objects of type '{name}'." for name in empty]
    return Produced(notes + lines, errors=errors)


def _unknown_attributes(options: argparse.Namespace, types: list[ObjectType]) -> list[str]:
    """xCAT's error for each -i attribute a type does not have (each type
    lists those it has); refused when no type has any."""
    wanted = _wanted(options)
    errors = [
        f"'{a}' is not a valid attribute name for an object type of '{objtype.name}'."
        for objtype in types
        for a in wanted
        if not _has(objtype, a)
    ]
    if wanted and not any(_has(objtype, a) for objtype in types for a in wanted):
        raise CommandRefused(*errors)
    return errors


# The provmethods that name no image: the image is worked out from the profile.
PROFILE_METHODS = ("install", "netboot", "statelite")


def _with_osimages(db, call: Call, listed: list[Listed]) -> list[str]:
    """lsdef --osimage: each node's image attributes beside its own, as
    xCAT's lsdef adds them: the osimage its provmethod names, or, for
    install/netboot/statelite, what its os, arch and profile give (the
    image mkdef -u would make of them).  xCAT's error for a node with
    neither."""
    named = {item.name: item.values.get("provmethod", ("",))[0] for item in listed}
    images = objects.load(db, OSIMAGE, {m for m in named.values() if m not in PROFILE_METHODS})
    places = _places(db, call)
    errors = []
    for item in listed:
        method = named[item.name]
        if method and method not in PROFILE_METHODS:
            item.osimage = images.get(method, {})
            continue
        given = {attribute: item.values.get(attribute, ("",))[0] for attribute in _PROFILE_KEYS}
        if not (method and all(given.values())):
            errors.append(
                f"Missing attributes for node {item.name}, check the node attributes "
                "'os', 'arch','profile' and 'provmethod'."
            )
            continue
        image = {"provmethod": method, "profile": given["profile"], "osvers": given["os"],
                 "osarch": given["arch"]}  # fmt: skip
        try:
            item.osimage = osimage_update.filled(image, "lsdef", places)
        except osimage_update.UpdateError as exc:
            errors.append(f"{item.name}: {exc}")
    return errors


_PROFILE_KEYS = ("os", "arch", "profile")


def _places(db, call: Call) -> osimage_update.Places:
    """Where an image's profile files are looked for: site.installdir, the shipped profiles."""
    layout = call.context.layout
    installdir = objects.site(db).get("installdir") or layout.installdir
    return osimage_update.Places(Path(installdir), layout.netboot_profiles)


def _has(objtype: ObjectType, attribute: str) -> bool:
    """Whether lsdef -i shows `attribute` for objects of the type: xCAT does
    not check the site's (nor monitoring's) names."""
    if objtype is SITE or objtype.name == "monitoring":
        return True
    return keyed.split_name(attribute)[0] in (objtype.key, *objtype.attributes)


def _masked_fetch(
    fetch: Callable[[], dict[str, tuple[str, str | None]]],
) -> dict[str, tuple[str, str | None]]:
    return masked(fetch())


def _objects_of(
    db,
    objtype: ObjectType,
    names: str | None,
    call: Call,
    selections: list[Selection],
    nodes: Nodes | None,
) -> Found:
    """The objects of a type to list: those named, or all (`nodes`: the
    request's snapshot, for nodes and groups)."""
    if objtype is NODE:
        assert nodes is not None
        return _nodes(nodes, names, call, selections)
    if objtype is GROUP:
        assert nodes is not None
        found = _groups(nodes, names)
    else:
        found = _stored(db, objtype, names)
    found.listed = [
        item
        for item in found.listed
        if all(s.matches(item.values.get(s.attribute, ("",))[0]) for s in selections)
    ]
    return found


def _nodes(nodes: Nodes, names: str | None, call: Call, selections: list[Selection]) -> Found:
    """The nodes to list, reading only what the request names: one node
    named is a few indexed reads, whatever the size of the cluster."""
    named = expand_noderange(call, names, nodes, verify=False) if names else None
    known = nodes.groups_of if named is None else nodes.nodes_among(named)
    chosen, missing = _existing(named, known)
    if not call.options.hidden:  # xCAT's lsdef leaves them out even when named
        chosen = nodes.visible(chosen)
    listed = [
        Listed(NODE, name, partial(nodes.sourced, name))
        for name in chosen
        # Test the selected attributes alone before working out all of them.
        if all(s.matches(nodes.attribute(name, s.attribute)) for s in selections)
    ]
    nodes.expect([item.name for item in listed])  # their rows, read together when shown
    return Found(listed, missing, none=not chosen and nodes.empty())


def _stored(db, objtype: ObjectType, names: str | None) -> Found:
    stored = objects.load(db, objtype)
    named = comma_list(names) if names else None
    if named and objtype is SITE:
        named.append(SITE.only_object)  # xCAT's lsdef lists it beside any name given
    chosen, missing = _existing(named, stored)
    listed = []
    for name in chosen:
        listed.append(Listed(objtype, name, partial(_as_listed, stored[name])))
    return Found(listed, missing, none=not stored)


def _groups(nodes: Nodes, names: str | None) -> Found:
    known = set(nodes.group_names())
    chosen, missing = _existing(comma_list(names) if names else None, known)
    listed = [Listed(GROUP, name, partial(_group_values, nodes, name)) for name in chosen]
    return Found(listed, missing, none=not known)


def _group_values(nodes: Nodes, name: str) -> dict[str, tuple[str, str | None]]:
    """A group's own values and its members, which xCAT's lsdef shows even when
    there are none (worked out only when shown: a dynamic group's mean testing
    every node).  A defined group is static unless it says otherwise, as
    xCAT's mkdef and chdef store it; one that nodes only list has no type."""
    values = _as_listed(nodes.groups.get(name, {}))
    if name in nodes.groups:
        values.setdefault("grouptype", ("static", None))
    values["members"] = (",".join(nodes.group_members(name) or []), None)
    return values


def _existing(named: list[str] | None, known: Collection[str]) -> tuple[list[str], list[str]]:
    """The named objects that exist (all of them when none is named) and the
    names that are not objects, each once and sorted as xCAT's lsdef sorts
    them (Perl's `sort`: by characters, so node10 comes before node2)."""
    if named is None:
        return sorted(known), []
    names = set(named)
    return sorted(n for n in names if n in known), sorted(n for n in names if n not in known)


def _form(options, names: str | None, selections: list[Selection]) -> Callable:
    if options.stanza and options.short:
        return _stanza_names
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
    gap = " " if options.all else "  "  # xCAT's lsdef -a puts one space, otherwise two
    for item in listed:
        yield f"{item.name}{gap}({item.objtype.name})"


def _long_lines(listed: list[Listed], options, several_types: bool) -> Iterator[str]:
    wanted = _wanted(options)
    for item in listed:
        suffix = f"  ({item.objtype.name})" if several_types else ""
        yield f"Object name: {item.name}{suffix}"
        for attribute in item.chosen(wanted) if wanted else sorted(item.values):
            value = item.values.get(attribute, ("", None))[0]
            if value or wanted or attribute == "members":  # a group's, even when it has none
                note = _where_kept(item, attribute) if options.verbose else None
                yield f"    {attribute}={value}" + (f"\t{note}" if note else "")
        for attribute, value in sorted((item.osimage or {}).items()):
            if value:
                yield f"    {attribute}={value}"


def _where_kept(item: Listed, attribute: str) -> str | None:
    """The table and column of the value (lsdef -V); a group's members are
    worked out, in no column."""
    if item.objtype is GROUP and attribute == "members":
        return None
    return where_kept(item.objtype, attribute, lambda a: item.values.get(a, ("",))[0] or None)


def _compressed_lines(listed: list[Listed], options, several_types: bool) -> Iterator[str]:
    wanted = _wanted(options)
    for item in listed:
        for attribute in item.chosen(wanted):
            yield f"{item.name}: {attribute}={item.values.get(attribute, ('',))[0]}"


def _stanza_lines(listed: list[Listed], options, several_types: bool) -> Iterator[str]:
    wanted = _wanted(options)

    def plain(item: Listed) -> dict[str, str]:
        shown = item.chosen(wanted) if wanted else item.values
        return {a: item.values.get(a, ("",))[0] for a in shown}

    return format_stanzas((item.name, item.objtype.name, plain(item)) for item in listed)


def _stanza_names(listed: list[Listed], options, several_types: bool) -> Iterator[str]:
    """lsdef -s -z: xCAT's stanza header, then each object's name alone."""
    yield HEADER
    for item in listed:
        yield ""
        yield f"{item.name}:"


def _wanted(options) -> list[str]:
    """The -i attributes, each once and sorted, as xCAT lists them."""
    return sorted({a.strip() for a in (options.attributes or "").split(",") if a.strip()})


def _record(item: Listed) -> dict:
    return {
        "name": item.name,
        "objtype": item.objtype.name,
        **{attribute: value for attribute, (value, _) in item.values.items()},
    }


# -- nodels --------------------------------------------------------------------


@command("nodels", "List nodes, and their attributes.", add_help=False, parser_class=DefParser)
def nodels_options(parser: CommandParser) -> None:
    parser.add_argument("-h", "-?", "--help", dest="help", action="store_true", help="usage")
    parser.add_argument("-v", "--version", action="store_true", help="the version")
    parser.add_argument("-H", "--with-fieldname", action="store_true", help="node: attr: value")
    parser.add_argument(
        "-b", "--blame", action="store_true", help="say which group a value comes from"
    )
    parser.add_argument("-S", dest="hidden", action="store_true", help="hidden nodes too")
    parser.add_argument("noderange", nargs="?", help="nodes (default: all)")
    parser.add_argument(
        "attributes", nargs="*", help="table.column, table, attr, or table.column==value ..."
    )
    parser.set_defaults(invalid_option=False)  # DefParser sets it


@nodels_options.runs
async def nodels(call: Call) -> None:
    options = call.options
    if options.invalid_option:  # xCAT's nodels: its usage, on stdout, rc 1
        call.rc = 1
    if options.help or options.version or options.invalid_option:  # as xCAT's: -h before -v
        await call.info(NODELS if not options.version else f"Version {call.context.version}")
        return

    def work(db) -> Produced:
        nodes = call.nodes(db)
        chosen = (
            expand_noderange(call, options.noderange, nodes)
            if options.noderange
            else list(nodes.groups_of)
        )
        if not options.hidden:
            chosen = nodes.visible(chosen)
        chosen = sorted(chosen)  # xCAT's nodels sorts by characters: blade10 before blade2
        try:
            wanted = _nodels_wanted(options.attributes)
        except TableError as exc:
            raise CommandRefused(str(exc)) from None
        chosen = [
            n
            for n in chosen
            if all(s.holds(partial(nodes.attribute, n)) for s in wanted.selections)
        ]
        if not wanted.shown:
            return Produced(chosen, [{"node": n} for n in chosen])
        label = options.with_fieldname or wanted.labelled
        nodes.expect(chosen)
        lines, records = [], []
        hidden = not may_read_secrets(call)
        for node in chosen:
            sourced = masked(nodes.sourced(node)) if hidden else nodes.sourced(node)
            sourced[NODE.key] = (node, None)
            record = {"node": node}
            for given, attribute in _nodels_columns(wanted, nodes, node, sourced):
                value, source = sourced.get(attribute or "", ("", None))
                blame = f" (inherited from group {source})" if options.blame and source else ""
                lines.append(f"{node}: {given}: {value}{blame}" if label else f"{node}: {value}")
                record[attribute or given] = value
            records.append(record)
        return Produced(lines, records)

    await respond(call, work)


@dataclass
class _NodelsWanted:
    """What nodels' arguments ask for, as xCAT's tabutils.pm reads them."""

    shown: list[tuple[str, tuple[Mapping, ...]]]  # (as given, the attributes it is)
    selections: list[NodeSelection]
    labelled: bool  # `node: given: value` (several columns, or a whole table)
    whole_table: bool  # its columns with a value first, sorted (xCAT's order)


def _nodels_wanted(args: list[str]) -> _NodelsWanted:
    """`table.column` (or a short name, or an attribute), `table` (all its
    columns), and `table.column==value` (also !=, =~, !~) selecting nodes;
    xCAT labels the values once two of the first and third are given."""
    wanted = _NodelsWanted([], [], False, False)
    columns = 0
    for given in args:
        if (selection := node_selection(given)) is not None:
            wanted.selections.append(selection)
            columns += 1
        elif "." not in given and given not in SHORTNAMES and given in schema_tables():
            table = schema_tables()[given]
            wanted.whole_table = wanted.labelled = True
            for column in table.columns:
                wanted.shown.append((f"{given}.{column.name}", column_places(table, column)))
        else:
            wanted.shown.append((given, node_places(given)))
            columns += 1
    known = {*NODE.attributes, NODE.key}
    unknown = [given for given, places in wanted.shown for m in places if m.attribute not in known]
    if unknown:
        raise CommandRefused(*(f"'{u}' is not a node attribute" for u in unknown))
    wanted.labelled = wanted.labelled or columns > 1
    return wanted


def _nodels_columns(
    wanted: _NodelsWanted, nodes: Nodes, node: str, sourced: dict[str, tuple[str, str | None]]
) -> list[tuple[str, str | None]]:
    """The columns as given, each with the attribute that holds the node's
    value; a whole table's as xCAT prints them, those with a value first,
    sorted."""
    value_of = partial(nodes.attribute, node)
    columns = [(given, node_attribute(places, value_of)) for given, places in wanted.shown]
    if not wanted.whole_table:
        return columns
    has_value = [c for c in columns if c[1] and sourced.get(c[1])]
    return sorted(has_value) + [c for c in columns if c not in has_value]
