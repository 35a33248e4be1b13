"""xdcp: files copied to (or from) many nodes at once, over SSH, as xCAT's.

    xdcp <noderange> [-f fanout] [-l user] [-t timeout] [-o options] [-p] [-P]
         [-r /usr/bin/scp|/usr/bin/rsync] [-R] [-T] [-Q] sourcefile… targetpath
    xdcp -i <image root> [-R] sourcefile… targetpath
    xdcp -i <image root> -F synclist

The files are the user's, from the user's machine: the client sends them
with the request (client/files.py), the daemon stages them in a private
directory and copies them from there with `scp` (or `rsync` over ssh:
-r), with xdsh's ssh key, certificate and known_hosts (nodeshell.py), as
root unless -l.  The daemon never reads a path of this host for the
user, so whoever the policy lets run xdcp writes files as that user on
the nodes, nothing more.  What runs or reads and writes as root on this
host is for administrators only (those the policy lets run chtab), as
xdsh's -i and -o: -o (options of the copy command can run local
commands), -P (pulls the nodes' files into a directory of this host, as
`<targetpath>/<file>._<node>`, xCAT's naming), -i (into an image's root)
and -F (a synclist names files of this host).  -F is for an image only:
synclists to nodes are not provided.  Nodes of a service node get the
files from it: the request goes there with the files (hierarchy.py), and
its daemon stages them as this one does (xCAT stages them in
site.SNsyncfiledir; here a private directory, gone when the copy is
done).  -P does not pull through a service node (xCAT's neither).
"""

from __future__ import annotations

import io
import os
import shlex
import stat
import tarfile
import tempfile
from functools import partial
from pathlib import Path

import trio

from ..call import Call
from ..hierarchy import alongside
from ..images.pack.sync import apply as apply_synclist
from ..images.pack.sync import copy_into
from ..images.pack.tree import PackError
from ..images.rootfiles import RootFileError
from .common import divide, read_nodes
from .nodeshell import (
    CommandLineParser,
    Fanout,
    add_fanout_options,
    address,
    check_fanout_options,
    refused_as_root,
    report,
    run_on_nodes,
    split_node_options,
    ssh_options,
)
from .registry import CommandParser, UsageError, command

COPIERS = ("scp", "rsync")  # -r: the copy programs xdcp runs (xCAT's rcp is not one)
USAGE = "give the files and where they go: xdcp <noderange> <sourcefile>... <targetpath>"


@command(
    "xdcp",
    "Copy files to or from nodes in parallel, over SSH (or into an image: -i).",
    reads_stdin=True,
    parser_class=CommandLineParser,
)
def xdcp_options(parser: CommandParser) -> None:
    add_fanout_options(parser)
    parser.add_argument("-o", "--node-options", default="", help="options for the copy command")
    parser.add_argument("-p", "--preserve", action="store_true", help="keep modes and times")
    parser.add_argument("-P", "--pull", action="store_true", help="from the nodes, to here")
    parser.add_argument("-r", "--node-rcp", default="/usr/bin/scp", help="scp or rsync")
    parser.add_argument("-R", "--recursive", action="store_true", help="a directory")
    parser.add_argument("-T", "--trace", action="store_true", help="show each copy command")
    parser.add_argument("-Q", "--silent", action="store_true", help="no output, only the rc")
    parser.add_argument("-s", dest="sync_sn", action="store_true", help="(with -F) not here")
    parser.add_argument("-F", "--File", dest="synclist", help="a synclist (with -i only)")
    parser.add_argument("-i", "--rootimg", type=Path, help="an image's root: copy into it")
    # With -i there is no noderange: the first word is a file.
    parser.add_argument("noderange", nargs="?", help="the nodes")
    parser.add_argument("words", nargs="*", metavar="file", help="sourcefile... targetpath")


@xdcp_options.runs
async def xdcp(call: Call) -> None:
    options = call.options
    check_fanout_options(options)
    copier = _copier(options.node_rcp)
    split_node_options(options.node_options)
    given = next((flag for flag, on in (
        ("-i", options.rootimg is not None), ("-o", bool(options.node_options)),
        ("-P", options.pull), ("-F", options.synclist is not None)) if on), None)  # fmt: skip
    if await refused_as_root(call, given):
        return
    if options.synclist is not None or options.sync_sn:
        await _synclist(call)
        return
    words = [options.noderange, *options.words] if options.rootimg else options.words
    if options.noderange is None or len(words) < 2:
        raise UsageError(USAGE)
    sources, target = words[:-1], words[-1]
    if options.pull:
        await _pull(call, copier, sources, target)
        return
    with tempfile.TemporaryDirectory(prefix="xdcp-") as staging:
        staged = await trio.to_thread.run_sync(_unpack, call.stdin, Path(staging), len(sources))
        if options.rootimg is not None:
            await _into_image(call, options.rootimg, staged, target)
        else:
            await _push(call, copier, staged, target)


def _copier(given: str) -> str:
    """The copy program -r names: scp or rsync, run from this host's PATH."""
    program = os.path.basename(given)
    if program not in COPIERS:
        raise UsageError(f"Remote command: {given} is invalid, the supported remote "
                         f"commands: {', '.join(COPIERS)}.")  # fmt: skip
    return program


async def _synclist(call: Call) -> None:
    """-i <rootimg> -F <synclist>: the synclist applied to the image, as
    packimage applies an osimage's."""
    options = call.options
    if options.rootimg is None:
        raise UsageError("xdcp -F (a synclist to nodes) and -s are not provided here: "
                         "xdcp -i <rootimg> -F <synclist> syncs an image; copy files to "
                         "nodes with xdcp <noderange> <sourcefile>... <targetpath>")  # fmt: skip
    if not options.rootimg.is_dir():
        await call.error(f"Input image directory {options.rootimg} does not exist.")
        return
    synclist = str(Path(call.body.cwd or "/") / options.synclist)
    try:
        notes = await trio.to_thread.run_sync(apply_synclist, options.rootimg, [synclist])
    except PackError as exc:
        await call.error(str(exc))
        return
    for note in notes:
        await call.info(note)


def _unpack(data: bytes | None, staging: Path, count: int) -> list[Path]:
    """The client's archive of the source files into `staging`: each source
    (`<index>/<name>`), in order.  Only files and directories, each inside
    its own `<index>/` (an archive the client did not make is refused)."""
    if data is None:
        raise UsageError("xdcp's files come with the request from its client: run the "
                         "xdcp command, which sends them")  # fmt: skip
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            for member in archive.getmembers():
                _extract(archive, member, staging, count)
    except tarfile.TarError as exc:
        raise UsageError(f"the files sent are not an archive xdcp reads: {exc}") from None
    indexes = [staging / str(index) for index in range(count)]
    staged = [next(index.iterdir(), None) if index.is_dir() else None for index in indexes]
    if any(path is None for path in staged):
        raise UsageError("the files sent are not the ones the command line names")
    return [path for path in staged if path is not None]


def _extract(archive: tarfile.TarFile, member: tarfile.TarInfo, staging: Path, count: int) -> None:
    parts = member.name.split("/")
    if (
        len(parts) < 2
        or not parts[0].isdigit()
        or int(parts[0]) >= count
        or any(part in ("", ".", "..") for part in parts[1:])
        or not (member.isfile() or member.isdir())
    ):
        raise UsageError(f"the files sent hold {member.name!r}, which xdcp does not copy")
    path = staging.joinpath(*parts)
    mode = stat.S_IMODE(member.mode)
    if member.isdir():
        path.mkdir(parents=True, exist_ok=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        source = archive.extractfile(member)
        assert source is not None  # a regular file's
        with open(path, "xb") as file:
            file.write(source.read())
    os.chmod(path, mode)
    os.utime(path, (member.mtime, member.mtime))


async def _into_image(call: Call, rootimg: Path, staged: list[Path], target: str) -> None:
    """-i: the files into the image's root, never through a link out of it."""
    if not rootimg.is_dir():
        await call.error(f"Input image directory {rootimg} does not exist.")
        return
    into_directory = target.endswith("/") or len(staged) > 1 or _is_dir_in(rootimg, target)
    for source in staged:
        destination = f"{target.rstrip('/')}/{source.name}" if into_directory else target
        try:
            await trio.to_thread.run_sync(copy_into, source, rootimg, destination)
        except (RootFileError, PackError) as exc:
            await call.error(str(exc))


def _is_dir_in(rootimg: Path, target: str) -> bool:
    """Whether `target` is a directory in the image (a link is not followed)."""
    try:
        return stat.S_ISDIR(os.lstat(rootimg / target.lstrip("/")).st_mode)
    except OSError:
        return False


async def _push(call: Call, copier: str, staged: list[Path], target: str) -> None:
    """The files to each node, from this host or from its service node (to
    which the request goes with the files, as the user sent them)."""
    divided = await divide(call, hardware=False)
    if divided is None:
        return

    async def here() -> None:
        addresses = await read_nodes(call, address, names=divided.local) or {}
        sources = [str(path) for path in staged]
        argvs = {
            node: _copy_argv(call, copier, sources, _remote(call.options.user, ip, target))
            for node, ip in addresses.items()
        }
        await _run(call, argvs)

    await alongside(call, divided, here)


async def _pull(call: Call, copier: str, sources: list[str], target: str) -> None:
    """-P: each node's file (or directory, -R) to `<target>/<name>._<node>`."""
    options = call.options
    if options.rootimg is not None:
        raise UsageError("-P pulls from nodes: give a noderange, not -i")
    if len(sources) != 1:
        raise UsageError("-P pulls one file (or, with -R, one directory) from each node")
    directory = Path(call.body.cwd or "/") / target
    if not directory.is_dir():
        await call.error(f"Cannot copy to target {target}. Directory does not exist.")
        return
    source = sources[0].rstrip("/") or "/"
    name = os.path.basename(source)
    if options.recursive and copier == "rsync":
        source += "/"  # the directory's contents into <name>._<node>, as scp -r does
    argvs = {
        node: _copy_argv(
            call, copier, [_remote(options.user, ip, source)], str(directory / f"{name}._{node}")
        )
        for node, ip in (await _reachable(call)).items()
    }
    await _run(call, argvs)


async def _reachable(call: Call) -> dict[str, str]:
    """The addresses of the nodes -P pulls from; a line for the nodes of each
    service node: as xCAT's, -P does not pull through a service node."""
    divided = await divide(call, hardware=False)
    if divided is None:
        return {}
    for server, nodes in divided.remote.items():
        await call.error(f"{','.join(nodes)}: served by service node {server}: -P does not "
                         f"pull through it (as xCAT's): pull to {server} first (xdsh {server} "
                         f"xdcp … -P …), then from it")  # fmt: skip
    return await read_nodes(call, address, names=divided.local) or {}


def _remote(user: str, ip: str, path: str) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    return f"{user}@{host}:{path}"


def _copy_argv(call: Call, copier: str, sources: list[str], destination: str) -> list[str]:
    """scp, or rsync with ssh as its remote shell, with xdsh's ssh options;
    -o's options for the copy program after ours."""
    options = call.options
    if copier == "rsync":
        flags = ["-e", shlex.join(["ssh", *ssh_options(call)])]
        flags += ["-p", "-t"] if options.preserve else []
    else:
        flags = [*ssh_options(call), *(["-p"] if options.preserve else [])]
    flags += ["-r"] if options.recursive else []
    node_options = split_node_options(options.node_options)
    return [copier, *flags, *node_options, "--", *sources, destination]


async def _run(call: Call, argvs: dict[str, list[str]]) -> None:
    options = call.options
    if options.trace:
        for node, argv in argvs.items():
            await call.info(shlex.join(argv), node=node)
    how = Fanout(options.fanout, options.timeout, silent=options.silent)
    await run_on_nodes(call, how, argvs, partial(report, call))
