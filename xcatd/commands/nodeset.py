"""nodeset: what nodes boot next from the network.

    nodeset <noderange> osimage[=<image>] | boot | offline | stat

osimage boots the packed diskless image (the node's provmethod without
`=<image>`): the node takes provmethod, os, arch and profile from the image,
the image's kernel and initrd are copied once into
<tftpdir>/xcat/osimage/<image>/ (on a service node, hard-linked from its
own copy of the image), each node gets the file its boot loader
(netboot: xnba, grub2, pxe or petitboot) asks for, with the kernel command
line the stateless initrd reads, and currstate says `netboot
<os>-<arch>-<profile>`.  boot and offline write files that leave the network
boot for the next boot device.  Then, unless site.dhcpsetup=n, makedhcp's
entries for the nodes.  Service nodes set to boot (armed to enroll), with
site.installloc set, have the management node export its installdir to
them read-only over NFS (boot/nfsexport.py).  One line per node, `<node>: <state>`; a node that
cannot be set up gets its error and does not stop the others.  `shell`
(xCAT's genesis shell) is refused: there is no genesis image here.

The addresses in the files are xCAT's: the node's xcatmaster, else this
host's address on the node's network, else site.master; tftpserver and
nfsserver take their roles when given.  A node is refused when its address
is one of this host's that xcatd does not listen on, or when no interface
of this host is on its network and site.master is unset (see BootServers
in xcatd/boot/netboot.py).  packimage writes the files of the nodes set to
an image again after each pack (`refresh_image`); a service node's daemon,
as it starts, those of its nodes as their states say (`enact`).

Built for thousands of nodes: one snapshot of the nodes, each image checked
and copied once, every file written in one worker thread, one batched store
update, one write of the DHCP entries.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

import trio
from xcat_protocol.messages import ServerMessage

from ..boot import binaries
from ..boot.dhcp import Host
from ..boot.dhcphosts import DEFAULT_ARCH, DhcpFilesError, host_entry, write_entries
from ..boot.files import Links, copy_if_changed, link_atomic, write_atomic
from ..boot.loaders import (
    DEFAULT,
    LINK_DIRECTORIES,
    LOADERS,
    Boot,
    Kernel,
    Loader,
    config_paths,
    state_of,
)
from ..boot.netboot import (
    NODE_ATTRIBUTES,
    Addresses,
    BootServers,
    NodeError,
    PackedImage,
    Settings,
    StaticInterfaces,
    boot_ip,
    boot_mac,
    check_node_name,
    kernel_command_line,
    loader_for,
    packed_image,
)
from ..boot.nfsexport import export_installdir
from ..ca import fingerprint
from ..call import Call
from ..enrollment import arm, window_minutes
from ..hierarchy import Split, alongside, server_of, split
from ..images.osimage import INITRD, KERNEL, PROVMETHODS, OsImage
from ..servicenode import serving
from ..servicenode.replica import Copy
from ..store import objects
from ..store.noderange import NoderangeError
from ..store.nodes import Nodes
from ..store.objects import Definition, DefinitionError, Edit
from ..store.objtypes import NETWORK, NODE, OSIMAGE
from ..store.regex_values import RegexValueError
from .bootsettings import settings
from .common import expand_noderange, send_node_lines, verbose_option
from .registry import CommandParser, Usage, UsageError, command

ACTIONS = "osimage[=<image>] | boot | offline | stat"
IMAGES = "xcat/osimage"  # under tftpdir: each image's kernel and initrd
USAGE = Usage(  # xCAT's (perl-xCAT/xCAT/Usage.pm), with the actions xcatd has
    "Usage:\n   Common:\n      nodeset [-h|--help|-v|--version]\n"
    "      nodeset <noderange> [boot|osimage[=<imagename>]|offline|stat]"
)


@command("nodeset", "Set what nodes boot next from the network.", usage=USAGE)
def nodeset_options(parser: CommandParser) -> None:
    parser.add_argument("noderange", help="the nodes")
    parser.add_argument("action", metavar="action", help=ACTIONS)
    parser.add_argument(
        "--noupdateinitrd", action="store_true", help="keep the kernel and initrd copied before"
    )
    # xCAT's skips its check of the kernel that drivers are injected for; xcatd injects none.
    parser.add_argument(
        "--ignorekernelchk", action="store_true", help="accepted: no drivers are injected here"
    )
    verbose_option(parser)


@dataclass(frozen=True)
class Action:
    kind: str  # osimage | boot | offline | stat
    image: str | None = None  # osimage=<image>
    keep_boot_files: bool = False  # --noupdateinitrd: an image's kernel and initrd as they are


PROVMETHOD = Action("osimage")  # plain osimage: the image the node's provmethod names


# xCAT's actions that boot its genesis image (xCAT-genesis), which xcatd does not have.
GENESIS = ("shell", "runcmd=", "runimage=")


def parse_action(text: str, command: str = "nodeset") -> Action:
    """nodeset's action (rinstall's too, which names itself in the refusal)."""
    kind, equals, image = text.partition("=")
    if kind == "osimage" and (image or not equals):
        return Action(kind, image or None)
    if kind in ("boot", "offline", "stat") and not equals:
        return Action(kind)
    if kind + equals in GENESIS:
        raise UsageError(
            f"{command} {kind + equals} boots xCAT's genesis image, which xcatd does not provide"
        )
    raise UsageError(f"'{text}' is not a nodeset action: use {ACTIONS}")


@nodeset_options.runs
async def nodeset(call: Call) -> None:
    action = replace(parse_action(call.options.action), keep_boot_files=call.options.noupdateinitrd)
    await set_boot(call, action, partial(expand_noderange, call, call.options.noderange))


async def take_offline(call: Call, names: list[str]) -> None:
    """`nodeset <names> offline` inside another request (rmdef -C), for
    those of the names that are nodes: their boot files here and on their
    service nodes (the request carried to them) say offline.  What it says
    goes nowhere, and the request goes on whatever it said."""
    quiet = replace(call, send=_nowhere, errors=0, rc=None)
    await set_boot(quiet, Action("offline"), lambda nodes: sorted(nodes.nodes_among(names)))


async def _nowhere(message: ServerMessage) -> None:
    pass


# xCAT's `nodeset enact` (destiny.pm): a recorded currstate's first word -> the action
# that writes its boot files again; a node in any other state, or none, is left alone.
ENACTED = {"netboot": PROVMETHOD, "statelite": PROVMETHOD, "install": PROVMETHOD,
           "boot": Action("boot"), "offline": Action("offline")}  # fmt: skip


async def enact(call: Call, copy: Copy) -> dict[str, str]:
    """xCAT's `nodeset <nodes> enact`, run by a service node as its daemon
    starts (servicenode/restore.py): the nodes it serves (whose first
    servicenode it is: those the management node carries requests for to
    it) set again as their recorded currstate says (ENACTED), from the
    definitions `copy` just taken, with its images provided as for a
    carried request.  Their states come out as they were recorded; what
    each node set up now boots."""
    here = call.context.config.hostname

    def chosen(action: Action, nodes: Nodes) -> list[str]:
        return [
            node
            for node in nodes.all_nodes()
            if server_of(nodes, node) == here
            and ENACTED.get((nodes.attribute(node, "currstate") or "").partition(" ")[0]) == action
        ]

    states: dict[str, str] = {}
    for action in dict.fromkeys(ENACTED.values()):
        states |= await set_boot(call, action, partial(chosen, action), copy)
    return states


async def set_boot(
    call: Call,
    action: Action,
    chosen: Callable[[Nodes], Sequence[str]],
    taken: Copy | None = None,
) -> dict[str, str]:
    """The nodes `chosen` of those this caller sees set to `action`, here and
    on their service nodes (the request carried to them); on a service
    node, from the definitions `taken`, else those the request takes.  What
    each node set up (its files, definition and DHCP entry) now boots, as
    its line says.  A node left out had its error said."""
    try:
        copy = taken or await serving.definitions(call)  # on a service node: the MN's
        snapshot, split = await call.context.store.run(lambda db: _read(db, call, action, chosen))
    except (NoderangeError, RegexValueError, serving.ServingError) as exc:
        await call.error(str(exc))
        return {}
    boot = settings(call, snapshot.site)
    if copy is not None:
        snapshot.copied = True
        snapshot.own_copies = serving.keeps_copies(copy)
        snapshot.unavailable = await serving.copy_images(call, copy, snapshot.images)
    said: dict[str, str] = {}  # what the service nodes set their nodes to
    states: dict[str, str] = {}

    async def here() -> None:
        states.update(await _here(call, action, snapshot, boot))

    await alongside(call, split, here, said)
    if said and action.kind != "stat":
        await call.context.store.run(lambda db: _record_served(db, action, said))
    return states | said


async def _here(call: Call, action: Action, snapshot: _Snapshot, boot: Settings) -> dict[str, str]:
    """The nodes this daemon serves; what each of them boots."""
    if action.kind != "stat":
        return await _set(call, action, snapshot, boot)
    states, errors = await trio.to_thread.run_sync(_states, snapshot, boot)
    for node, why in errors.items():
        await call.error(why, node=node)
    await send_node_lines(call, states, "state")
    return states


async def _set(call: Call, action: Action, snapshot: _Snapshot, boot: Settings) -> dict[str, str]:
    """Files first (in a worker thread), then the definitions, then DHCP: a node's
    DHCP entry never names a file that is not there yet.  The nodes set up
    in full: none when their DHCP entries could not be written."""
    outcome = await _write_files(call, action, snapshot, boot)
    try:
        await _record(call, outcome, window_minutes(snapshot.site))
    except DefinitionError as exc:
        for problem in exc.problems:
            await call.error(problem)
        return {}
    if outcome.enrolling and call.context.role != "servicenode":
        await _export_installdir(call, snapshot.site, boot)
    states = outcome.states
    if boot.dhcp and outcome.hosts:
        try:
            written = await write_entries(call.context.layout.dhcp, outcome.hosts)
        except DhcpFilesError as exc:  # the nodes' files and states are set: say both
            await call.error(str(exc))
            states = {}
        else:
            if not written.configured:
                await call.warning(written.unconfigured)
    for node, why in outcome.errors.items():
        await call.error(why, node=node)
    await send_node_lines(call, outcome.states, "state")
    return states


async def _export_installdir(call: Call, site: dict[str, str], boot: Settings) -> None:
    """installdir exported for the service nodes just set up to mount it
    (site.installloc); a warning when it cannot be."""
    layout, hostname = call.context.layout, call.context.config.hostname
    installloc = site.get("installloc", "")
    missing = await trio.to_thread.run_sync(
        export_installdir, layout, installloc, boot.installdir, hostname
    )
    if missing:
        await call.warning(missing)


async def _write_files(call: Call, action: Action, snapshot: _Snapshot, boot: Settings) -> _Outcome:
    """Every node's boot files, in a worker thread; the warnings said."""
    ca_fingerprint = fingerprint(call.context.ca.cert).hex()
    outcome = await trio.to_thread.run_sync(_Setter(action, snapshot, boot, ca_fingerprint).run)
    for warning in outcome.warnings:
        await call.warning(warning)
    return outcome


async def refresh_image(call: Call, image: str) -> int:
    """The boot files of the nodes set to boot `image` (their provmethod names
    it and their currstate is a netboot) written again, as `nodeset <those
    nodes> osimage` writes them: packimage calls this, so that they name the
    file just packed.  Their definitions, enrollments and DHCP entries stay
    as they are (a pack changes none of them).  A node that cannot be written
    is `<node>: Error: ...`; the number of nodes written."""
    try:
        snapshot = await call.context.store.run(lambda db: _read_set_to(db, call, image))
    except RegexValueError as exc:  # a node's regex value that fails
        await call.error(str(exc))
        return 0
    if not snapshot.nodes:
        return 0
    boot = replace(settings(call, snapshot.site), dhcp=False)
    outcome = await _write_files(call, Action("osimage", image), snapshot, boot)
    for node, why in outcome.errors.items():
        await call.error(why, node=node)
    return len(outcome.states)


# -- reading ------------------------------------------------------------------------


@dataclass
class _Snapshot:
    site: dict[str, str]
    nodes: dict[str, dict[str, str]]  # node -> its boot attributes
    images: dict[str, dict[str, str]]  # the osimages they boot
    networks: dict[str, dict[str, str]]  # the network objects: who serves the nodes
    # On a service node: its images are copies of the MN's; those it could
    # not copy, and why.  Its own copies (not site.installloc's mount) are
    # linked into tftpdir rather than copied again.
    copied: bool = False
    own_copies: bool = False
    unavailable: dict[str, str] = field(default_factory=dict)


def _read(
    db, call: Call, action: Action, chosen: Callable[[Nodes], Sequence[str]]
) -> tuple[_Snapshot, Split]:
    """The nodes served here, and those of each service node."""
    nodes = call.nodes(db)
    names = split(call, nodes, chosen(nodes))
    return _snapshot(db, nodes, names.local, action), names


def _read_set_to(db, call: Call, image: str) -> _Snapshot:
    """The nodes whose boot files boot `image`: what nodeset osimage wrote for
    them (currstate `netboot ...`) and the image their provmethod names."""
    nodes = call.nodes(db)
    names = set_to(nodes, image)
    # Service nodes' nodes boot from their own copy, taken anew at the next nodeset.
    return _snapshot(db, nodes, split(call, nodes, names).local, Action("osimage", image))


def set_to(nodes: Nodes, image: str) -> list[str]:
    """The nodes nodeset set to boot `image`: their currstate is a netboot
    and their provmethod names the image."""
    keys = ("provmethod", "os", "arch", "profile")
    return [
        node
        for node in nodes.all_nodes()
        if (nodes.attribute(node, "currstate") or "").startswith("netboot ")
        and image_name(PROVMETHOD, {k: v for k in keys if (v := nodes.attribute(node, k))}) == image
    ]


def _snapshot(db, nodes: Nodes, names: list[str], action: Action) -> _Snapshot:
    values = {n: {a: v for a in NODE_ATTRIBUTES if (v := nodes.attribute(n, a))} for n in names}
    images = {}
    if action.kind == "osimage":
        wanted = {n for v in values.values() if (n := image_name(action, v)) is not None}
        images = objects.load(db, OSIMAGE, wanted)
    networks = objects.load(db, NETWORK) if action.kind != "stat" and names else {}
    return _Snapshot(objects.site(db), values, images, networks)


def image_name(action: Action, values: dict[str, str]) -> str | None:
    """The image given, else the node's provmethod: an osimage name, or xCAT's
    older netboot|statelite|install, which names <os>-<arch>-<provmethod>-<profile>."""
    if action.image:
        return action.image
    provmethod = values.get("provmethod")
    if provmethod in PROVMETHODS:
        parts = [values.get(key) for key in ("os", "arch", "profile")]
        return f"{parts[0]}-{parts[1]}-{provmethod}-{parts[2]}" if all(parts) else None
    return provmethod


# -- setting the nodes up ------------------------------------------------------------------


@dataclass
class _Planned:
    boot: Boot
    loader: Loader
    image: PackedImage | None
    host: Host | None  # its DHCP entry, unless site.dhcpsetup=n


@dataclass
class _Outcome:
    states: dict[str, str] = field(default_factory=dict)  # node -> what it boots next
    changes: dict[str, dict[str, str]] = field(default_factory=dict)  # node -> attributes
    hosts: dict[str, Host] = field(default_factory=dict)  # node -> its DHCP entry
    errors: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    enrolling: list[str] = field(default_factory=list)  # service nodes, to enroll at boot


class _Setter:
    """One nodeset request's work, in a worker thread: every node planned
    (images checked and boot programs provided once each), then written."""

    def __init__(
        self, action: Action, snapshot: _Snapshot, boot: Settings, ca_fingerprint: str
    ) -> None:
        self.action = action
        self.snapshot = snapshot
        self.settings = boot
        self.ca_fingerprint = ca_fingerprint
        self.outcome = _Outcome()
        self._images: dict[str, PackedImage | NodeError] = {
            name: NodeError(why) for name, why in snapshot.unavailable.items()
        }
        self._programs: dict[tuple[str, str], NodeError | None] = {}
        self._resolve = Addresses()
        self._servers = BootServers(boot, snapshot.networks, self._resolve)
        self._interfaces = StaticInterfaces(snapshot.networks)
        self._tftpdir = os.fspath(boot.tftpdir)  # strings: see files.py
        self._directories: set[str] = set()
        self._links: Links | None = None  # read when the first node is written

    def run(self) -> _Outcome:
        planned: dict[str, _Planned] = {}
        for node, values in self.snapshot.nodes.items():
            try:
                planned[node] = self._plan(node, values)
            except NodeError as exc:
                self.outcome.errors[node] = str(exc)
        failed_images = self._copy_images({p.image for p in planned.values() if p.image})
        for node, plan in planned.items():
            if plan.image and plan.image.name in failed_images:
                self.outcome.errors[node] = failed_images[plan.image.name]
            else:
                self._write(node, plan)
        return self.outcome

    def _plan(self, node: str, values: dict[str, str]) -> _Planned:
        check_node_name(node)
        mac, ip = boot_mac(values), boot_ip(values)
        image = self._image(values) if self.action.kind == "osimage" else None
        arch = image.osarch if image else values.get("arch") or DEFAULT_ARCH
        loader = loader_for(values, arch)
        self._provide(loader.name, arch)
        serving = self._servers.servers(node, values, ip)
        if image:
            interfaces = self._interfaces.arguments(node, values)
            cmdline = kernel_command_line(
                node, values, mac, image, serving, self.settings, self.ca_fingerprint, interfaces
            )
            where = f"{IMAGES}/{image.name}"
            kernel = Kernel(f"{where}/{KERNEL}", f"{where}/{INITRD}", cmdline)
            state = image.state
        else:
            kernel, state = None, self.action.kind
        http = self.settings.http_url(serving.image, self.settings.tftpdir)
        boot = Boot(node, mac, ip, arch, state, kernel, http, serving.tftp)
        host = None
        if self.settings.dhcp:
            entry = {**values, "arch": arch}
            host = host_entry(node, entry, self.settings, self._resolve, serving)
        return _Planned(boot, loader, image, host)

    def _image(self, values: dict[str, str]) -> PackedImage:
        name = image_name(self.action, values)
        if name is None:
            raise NodeError("no osimage given and provmethod is not set: use osimage=<image>")
        if name not in self._images:
            try:
                given = self.snapshot.images.get(name)
                stored = OsImage.of(name, given, self.settings.installdir) if given else None
                image = packed_image(name, stored, copied=self.snapshot.copied)
                self._images[name] = image
            except NodeError as exc:
                self._images[name] = exc
            else:
                if not self.settings.served(image.packfile):
                    self.outcome.warnings.append(
                        f"osimage '{name}': {image.packfile} is outside installdir and "
                        "tftpdir, where xcatd's HTTP server does not serve it"
                    )
        found = self._images[name]
        if isinstance(found, NodeError):
            raise found
        return found

    def _provide(self, netboot: str, arch: str) -> None:
        key = (netboot, arch)
        if key not in self._programs:
            try:
                binaries.provide(self.settings.tftpdir, netboot, arch)
                self._programs[key] = None
            except NodeError as exc:
                self._programs[key] = exc
        problem = self._programs[key]
        if problem is not None:
            raise problem

    def _copy_images(self, images: set[PackedImage]) -> dict[str, str]:
        """Each image's kernel and initrd into tftpdir, once (not again over
        those there with --noupdateinitrd); image -> why it failed."""
        failed = {}
        for image in images:
            target = self.settings.tftpdir / IMAGES / image.name
            try:
                target.mkdir(parents=True, exist_ok=True)
                for source in image.boot_files:
                    if not (self.action.keep_boot_files and (target / source.name).exists()):
                        copy_if_changed(source, target / source.name, link=self.snapshot.own_copies)
            except OSError as exc:
                failed[image.name] = f"cannot copy the kernel of {image.name}: {exc}"
        return failed

    def _write(self, node: str, plan: _Planned) -> None:
        try:
            boot_files = plan.loader.files(plan.boot)
            for boot_file in boot_files:
                path = f"{self._tftpdir}/{boot_file.path}"
                directory = path.rpartition("/")[0]
                if directory not in self._directories:
                    os.makedirs(directory, exist_ok=True)
                    self._directories.add(directory)
                if boot_file.link is not None:
                    link_atomic(path, boot_file.link)
                else:
                    write_atomic(path, (boot_file.text or "").encode())
            self._remove_old_links(node, {f.path for f in boot_files if f.link is not None})
        except OSError as exc:
            self.outcome.errors[node] = f"cannot write its boot files: {exc}"
            return
        self.outcome.states[node] = plan.boot.state
        self.outcome.changes[node] = _changes(plan)
        if plan.image and plan.image.enrolls:
            self.outcome.enrolling.append(node)
        if plan.host:
            self.outcome.hosts[node] = plan.host

    def _remove_old_links(self, node: str, current: set[str]) -> None:
        """The node's links by a MAC or IP it no longer has (or of a loader it no
        longer uses): the next node given that address must not boot its file."""
        if self._links is None:
            self._links = Links(self._tftpdir, LINK_DIRECTORIES)
        for path in config_paths(node):
            self._links.remove_others(path, keep=current)


def _changes(plan: _Planned) -> dict[str, str]:
    """What the node's definition records: its state and, for an image, what it runs."""
    changes = {"currstate": plan.boot.state}
    if plan.image:
        image = plan.image
        changes |= {"provmethod": image.name, "os": image.osvers, "arch": image.osarch,
                    "profile": image.profile}  # fmt: skip
    return changes


async def _record(call: Call, outcome: _Outcome, window_minutes: int) -> None:
    """Every node set up, in the store; the service nodes among them armed
    to enroll within the window."""
    edits = [Edit(Definition(NODE, node, values)) for node, values in outcome.changes.items()]
    until = time.time() + window_minutes * 60

    def record(db) -> None:
        objects.change(db, edits)
        arm(db, outcome.enrolling, until=until, by=call.caller.name)

    if edits:
        await call.context.store.run(record)


def _record_served(db, action: Action, states: dict[str, str]) -> None:
    """What service nodes set their nodes to, recorded here as for the nodes
    set here: the management node's definitions stay the ones that count
    (lsdef, and the service nodes' next copy, read them)."""
    nodes = Nodes.load(db)
    keys = ("provmethod", "os", "arch", "profile")
    names = {}
    if action.kind == "osimage":
        for node in states:
            values = {k: v for k in keys if (v := nodes.attribute(node, k))}
            names[node] = image_name(action, values)
    images = objects.load(db, OSIMAGE, {n for n in names.values() if n is not None})
    edits = []
    for node, state in states.items():
        changes = {"currstate": state}
        image = images.get(names.get(node) or "")
        if image and state.startswith("netboot "):
            changes |= {"provmethod": names[node] or "", "os": image["osvers"],
                        "arch": image["osarch"], "profile": image["profile"]}  # fmt: skip
        # A nodeset again of what a node boots already (the usual case)
        # changes nothing of it: it is left out rather than written as it is.
        if any((nodes.stored(node, key) or "") != value for key, value in changes.items()):
            edits.append(Edit(Definition(NODE, node, changes)))
    if edits:
        objects.change(db, edits)


# -- stat ------------------------------------------------------------------------


def _states(snapshot: _Snapshot, boot: Settings) -> tuple[dict[str, str], dict[str, str]]:
    """What each node's boot file was written for (offline when it has none),
    and why the file of a node could not be read."""
    states, errors = {}, {}
    for node, values in snapshot.nodes.items():
        loader = LOADERS.get(values.get("netboot") or DEFAULT)
        try:
            check_node_name(node)
            text = (boot.tftpdir / loader.config_path(node)).read_text() if loader else ""
        except NodeError as exc:
            errors[node] = str(exc)
            continue
        except FileNotFoundError:
            text = "#offline"
        except (OSError, UnicodeDecodeError) as exc:
            errors[node] = f"cannot read its boot file: {exc}"
            continue
        states[node] = state_of(text) or "unknown"
    return states, errors
