"""`xcatd`: the daemon's own command line, run locally by root.

    xcatd init        create the configuration, the cluster CA and the database
    xcatd serve       run the daemon in the foreground (systemd's ExecStart)
    xcatd mkusercert  credentials for a person or a service node
    xcatd revoke      withdraw every certificate issued to a name, at once
    xcatd bundle      wheels of xcatd and its dependencies, for a service-node image
    xcatd enroll      on a booting service node: get its certificate (xcatd-enroll.service)
    xcatd lab         a virtual cluster on this machine: up, status, down; media; demo

Everything users do to the cluster goes through the daemon instead, with the
client commands (lsxcatd, lsdef, ...).
"""

from __future__ import annotations

import argparse
import logging
import os
import pwd
import sys
from collections.abc import Iterator
from pathlib import Path

from . import __version__
from .admin import AdminError, init_cluster, issue_credentials, revoke
from .errors import XcatdError
from .layout import Layout


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    layout = Layout.for_root(args.root)
    try:
        return args.action(layout, args)
    except XcatdError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1


def _init(layout: Layout, args: argparse.Namespace) -> int:
    for line in init_cluster(
        layout,
        settings={
            "hostname": args.hostname,
            "listen": tuple(args.listen) if args.listen else None,
            "port": args.port,
            "http_port": args.http_port,
            "tftp_port": args.tftp_port,
            "status_port": args.status_port,
        },
        force=args.force,
        system=args.root is None,
    ):
        print(line)
    return 0


def _serve(layout: Layout, args: argparse.Namespace) -> int:
    import trio

    from .daemon import Daemon

    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        trio.run(Daemon(layout).run)
    except BaseExceptionGroup as group:  # the nursery's wrapping of one start error
        raise _sole(group) from None
    return 0


def _sole(group: BaseExceptionGroup) -> BaseException:
    """The one exception a group holds (however nested), or the group itself."""
    leaves = list(_leaves(group))
    return leaves[0] if len(leaves) == 1 else group


def _leaves(error: BaseException) -> Iterator[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error


def _mkusercert(layout: Layout, args: argparse.Namespace) -> int:
    out = args.out or _home_cred_dir(args.name)
    written = issue_credentials(layout, args.name, args.role, out, days=args.days)
    if args.out is None:
        account = pwd.getpwnam(args.name)
        for path in (out, *written):
            os.chown(path, account.pw_uid, account.pw_gid)
    print(f"Credentials for {args.name} ({args.role}) written to {out}")
    return 0


def _revoke(layout: Layout, args: argparse.Namespace) -> int:
    count = revoke(layout, args.name)
    print(f"Revoked {count} certificate{'s' if count != 1 else ''} issued to {args.name}")
    return 0


def _enroll(layout: Layout, args: argparse.Namespace) -> int:
    import time

    from .servicenode.enroll import BootArguments, EnrollError, enroll_until, install

    try:
        boot = BootArguments.parse(args.cmdline.read_text())
        enrolled = enroll_until(boot, layout, time.monotonic() + args.wait)
        install(layout, boot, enrolled)
    except (EnrollError, OSError) as exc:
        raise AdminError(str(exc)) from None
    print(f"{boot.node}: enrolled with xcatd at {boot.master}; credentials in {layout.pki}")
    return 0


def _bundle(layout: Layout, args: argparse.Namespace) -> int:
    from .bundle import bundle

    wheels = bundle(args.dir.resolve(), args.python_version, args.arch)
    print(f"{len(wheels)} wheels for Python {args.python_version} on {args.arch} in {args.dir}")
    return 0


def _lab(layout: Layout, args: argparse.Namespace) -> int:
    from .lab import lab, media

    try:
        if args.lab_action == "up":
            request = lab.Request(args.root, args.service_nodes, args.compute_nodes,
                                  args.namespace, args.port, args.memory,
                                  lab.nic_models(args.nic_model))  # fmt: skip
            state = lab.up(request)
            lines = [*lab.status(state.root), *lab.next_steps(state)]
        elif args.lab_action == "status":
            lines = list(lab.status(args.root))
        elif args.lab_action == "media":
            lines = [media.make(args.out, args.cache)]
        elif args.lab_action == "demo":
            from .lab.demo import Options, demo

            demo(Options(args.root, args.namespace, args.port, args.cache, args.iso))
            return 0
        else:
            lines = [lab.down(args.root)]
    except lab.LabError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


def _home_cred_dir(name: str) -> Path:
    try:
        return Path(pwd.getpwnam(name).pw_dir) / ".xcat"
    except KeyError:
        raise AdminError(f"there is no local account '{name}': give --out DIR") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xcatd", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"xcatd {__version__}")
    root = argparse.ArgumentParser(add_help=False)
    root.add_argument(
        "--root", type=Path, help="keep everything under this directory instead of / and ~"
    )
    actions = parser.add_subparsers(required=True, metavar="ACTION")

    init = actions.add_parser(
        "init", parents=[root], help="create configuration, cluster CA and database"
    )
    init.add_argument("--hostname", help="this host's name (default: the system's)")
    init.add_argument(
        "--listen", action="append", metavar="ADDR", help="address to listen on (repeatable)"
    )
    init.add_argument("--port", type=int, help="xcatd port (default 3001)")
    init.add_argument("--http-port", type=int, help="boot HTTP port (default 80)")
    init.add_argument("--tftp-port", type=int, help="TFTP port (default 69)")
    init.add_argument(
        "--status-port", type=int, help="xCAT's installstatus line port (default 3002)"
    )
    init.add_argument("--force", action="store_true", help="make a new CA: old certificates die")
    init.set_defaults(action=_init)

    serve = actions.add_parser("serve", parents=[root], help="run the daemon in the foreground")
    serve.add_argument("--debug", action="store_true", help="log every connection")
    serve.set_defaults(action=_serve)

    mkusercert = actions.add_parser("mkusercert", parents=[root], help="issue client credentials")
    mkusercert.add_argument("name", help="user name, or a service node's node name")
    mkusercert.add_argument("--role", choices=("user", "servicenode"), default="user")
    mkusercert.add_argument("--out", type=Path, help="directory (default: ~NAME/.xcat)")
    mkusercert.add_argument("--days", type=int, default=730, help="validity (default 730)")
    mkusercert.set_defaults(action=_mkusercert)

    revoke_ = actions.add_parser(
        "revoke", parents=[root], help="revoke every certificate issued to NAME"
    )
    revoke_.add_argument("name")
    revoke_.set_defaults(action=_revoke)

    bundle = actions.add_parser(
        "bundle", parents=[root], help="wheels of xcatd and its dependencies, for an image"
    )
    bundle.add_argument("dir", type=Path, help="e.g. <otherpkgdir>/xcat/wheels")
    bundle.add_argument("--python-version", default="3.11", help="the image's (default 3.11)")
    bundle.add_argument("--arch", default="x86_64", help="the image's (default x86_64)")
    bundle.set_defaults(action=_bundle)

    enroll = actions.add_parser(
        "enroll", parents=[root], help="on a booting service node: get its certificate"
    )
    enroll.add_argument(
        "--cmdline", type=Path, default=Path("/proc/cmdline"),
        help="the kernel command line with XCAT=, XCATCA=, NODE= (default /proc/cmdline)",
    )  # fmt: skip
    enroll.add_argument(
        "--wait", type=float, default=300,
        help="seconds to keep trying while the management node is unreachable (default 300)",
    )  # fmt: skip
    enroll.set_defaults(action=_enroll)
    _lab_parser(actions)
    return parser


def _lab_parser(actions) -> None:
    from .lab.lab import (
        DEFAULT_MEMORY_MB,
        DEFAULT_NAMESPACE,
        DEFAULT_NIC_MODEL,
        DEFAULT_PORT,
        DEFAULT_ROOT,
        NIC_MODELS,
    )
    from .lab.media import DEFAULT_CACHE

    lab_root = argparse.ArgumentParser(add_help=False)
    lab_root.add_argument(
        "--root", type=Path, default=DEFAULT_ROOT,
        help=f"the lab's directory: its state, logs and daemon (default {DEFAULT_ROOT})",
    )  # fmt: skip
    lab = actions.add_parser("lab", help="a virtual cluster on this machine: up, status, down")
    lab.set_defaults(action=_lab)
    verbs = lab.add_subparsers(
        required=True, dest="lab_action", metavar="up|status|down|media|demo"
    )
    lab_made = argparse.ArgumentParser(add_help=False)  # what up makes: namespace, door
    lab_made.add_argument(
        "--namespace",
        default=DEFAULT_NAMESPACE,
        help=f"its network namespace's name (default {DEFAULT_NAMESPACE})",
    )
    lab_made.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"its xcatd, from this host: 127.0.0.1:PORT (default {DEFAULT_PORT})",
    )
    up = verbs.add_parser("up", parents=[lab_root, lab_made], help="make the lab and start it")
    up.add_argument("--service-nodes", type=int, default=1, metavar="N", help="(default 1)")
    up.add_argument("--compute-nodes", type=int, default=1, metavar="M", help="(default 1)")
    up.add_argument("--memory", type=int, default=DEFAULT_MEMORY_MB, metavar="MiB",
                    help=f"each machine's memory (default {DEFAULT_MEMORY_MB})")  # fmt: skip
    up.add_argument("--nic-model", action="append", default=[], metavar="NODE=MODEL",
                    help=f"the model of NODE's NICs, one of {', '.join(NIC_MODELS)} (default "
                         f"{DEFAULT_NIC_MODEL}); may be repeated")  # fmt: skip
    verbs.add_parser(
        "status", parents=[lab_root], help="machines, BMCs, addresses, power, consoles"
    )
    verbs.add_parser("down", parents=[lab_root], help="stop and remove everything the lab made")
    media = verbs.add_parser("media", help="a Debian 12 ISO for copycds, from this host's apt")
    media.set_defaults(root=None)  # of no lab
    media.add_argument("--out", type=Path, default=Path("debian-12-amd64.iso"),
                       help="the ISO to write (default ./debian-12-amd64.iso)")  # fmt: skip
    media.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                       help=f"downloaded packages, kept (default {DEFAULT_CACHE})")  # fmt: skip
    demo = verbs.add_parser(
        "demo", parents=[lab_root, lab_made],
        help="walk the seed document (diskless service nodes) on a new lab of one service "
        "node and one compute node, each command shown; the lab is left up",
    )  # fmt: skip
    demo.add_argument(
        "--cache",
        type=Path,
        default=DEFAULT_CACHE,
        help=f"the media's downloaded packages, kept (default {DEFAULT_CACHE})",
    )
    demo.add_argument(
        "--iso", type=Path, help="a Debian 12 ISO to copycds, instead of making one (lab media)"
    )
