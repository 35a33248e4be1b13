"""wcons: a window with the console of each node, running rcons.

    wcons [-t|--tile[=n]] [-g|--geometry WxH] [xterm options] <noderange>
    wcons --tmux <noderange>

One xterm per node, titled with the node's name (xCAT's options: --tile
places them left to right, top to bottom, n across or as many as fit; any
other option goes to xterm); or, with --tmux, one tmux session with a
window per node, attached at once when run from a terminal.  The nodes come
from the daemon (nodels), as xCAT's wcons asks for them.  A window whose
rcons fails waits for Enter, so that its error can be read.

(xCAT's -t means --tile; the tmux session is --tmux.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

from xcat_protocol.messages import Done, Output

from .connection import Connection
from .credentials import Credentials, Target
from .errors import ClientError
from .main import _user

USAGE = "Usage: wcons [-t|--tile[=n]] [-g|--geometry WxH] [--tmux] [xterm options] <noderange>"
NO_DISPLAY = (
    "DISPLAY is not set: wcons opens an xterm for each node; run it inside an X session "
    "(or ssh -X), or use wcons --tmux <noderange> for a tmux session"
)
XTERM = ("-bg", "black", "-fg", "white")
WINDOW_WAIT = 5.0  # seconds for the first xterm to appear, when tiling
# Run in each window: the node's rcons, and a pause when it fails.
WINDOW_SCRIPT = 'rcons=$1; shift; "$rcons" "$@" || { echo "Press Enter to close"; read _; }'


class Options:
    def __init__(self, args: list[str]) -> None:
        if not args:
            raise ClientError(f"no noderange given\n{USAGE}")
        self.noderange = args[-1]
        self.tile: int | None = None  # None: no tiling; 0: as many across as fit
        self.geometry = ""
        self.tmux = False
        self.xterm: list[str] = []
        rest = iter(args[:-1])
        for arg in rest:
            if arg in ("-t", "--tile") or arg.startswith("--tile="):
                self.tile = _count(arg.partition("=")[2] or "0")
            elif arg in ("-g", "--geometry"):
                self.geometry = next(rest, "")
            elif arg.startswith("--geometry="):
                self.geometry = arg.partition("=")[2]
            elif arg == "--tmux":
                self.tmux = True
            else:
                self.xterm.append(arg)
        if self.tmux and (self.xterm or self.tile is not None or self.geometry):
            raise ClientError(f"--tmux takes no xterm options\n{USAGE}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[-1] in ("-h", "--help"):
        print(USAGE)
        return 0
    try:
        options = Options(args)
        if not options.tmux and not os.environ.get("DISPLAY"):
            raise ClientError(NO_DISPLAY)
        nodes = _nodes(options.noderange)
        if options.tmux:
            return _tmux(nodes)
        _xterms(nodes, options)
        return 0
    except ClientError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1


def _count(text: str) -> int:
    if not text.isdigit():
        raise ClientError(f"--tile takes a number of windows across, not {text!r}\n{USAGE}")
    return int(text)


def _nodes(noderange: str) -> list[str]:
    """The nodes of the noderange, as the daemon's nodels lists them."""
    connection = Connection(Target.from_environment(), Credentials.from_environment())
    try:
        request_id = connection.request("nodels", [noderange], user=_user(), cwd=os.getcwd())
        nodes: list[str] = []
        errors: list[str] = []
        while not isinstance(message := connection.receive(), Done) or message.id != request_id:
            if isinstance(message, Output) and message.text:
                (errors if message.kind == "error" else nodes).extend(message.text.splitlines())
    finally:
        connection.close()
    if errors or message.rc:
        raise ClientError("; ".join(errors) or f"nodels {noderange} failed")
    if not nodes:
        raise ClientError(f"no nodes in {noderange}")
    return nodes


def _rcons() -> str:
    """The rcons beside this wcons (the same installation), else rcons on PATH."""
    beside = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), "rcons")
    return beside if os.access(beside, os.X_OK) else "rcons"


def _window_command(node: str) -> list[str]:
    return ["/bin/sh", "-c", WINDOW_SCRIPT, "wcons", _rcons(), node]


def _xterms(nodes: list[str], options: Options) -> None:
    if shutil.which("xterm") is None:
        raise ClientError("xterm is not installed: install it, or use wcons --tmux <noderange>")
    places = _Tiling(options) if options.tile is not None else None
    for index, node in enumerate(nodes):
        geometry = options.geometry
        if places is not None and index:
            geometry += places.position(index)
        command = ["xterm", *XTERM, *options.xterm, "-title", node, "-n", node,
                   *(("-geometry", geometry) if geometry else ()),
                   "-e", *_window_command(node)]  # fmt: skip
        # On its own, as xCAT's wcons leaves its xterms: not holding our output open.
        subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        if places is not None and index == 0:
            places.measure(node)


class _Tiling:
    """Where each window goes: the first at the top left, then its size
    across the screen and down, starting over at the top when full."""

    def __init__(self, options: Options) -> None:
        self.across = options.tile or 0
        self.screen = _size(_xwininfo("-root")) or (1024, 768)
        self.window = (0, 0)

    def measure(self, first: str) -> None:
        deadline = time.monotonic() + WINDOW_WAIT
        while time.monotonic() < deadline:
            size = _size(_xwininfo("-name", first))
            if size:
                self.window = size
                break
            time.sleep(0.1)
        width = max(self.window[0], 1)
        self.across = self.across or max(self.screen[0] // width, 1)

    def position(self, index: int) -> str:
        width, height = self.window
        rows = max(self.screen[1] // max(height, 1), 1)
        column, row = index % self.across, (index // self.across) % rows
        return f"+{column * width}+{row * height}"


def _xwininfo(*args: str) -> str:
    try:
        return subprocess.run(["xwininfo", *args], capture_output=True, text=True).stdout
    except OSError:
        return ""


def _size(info: str) -> tuple[int, int] | None:
    width = re.search(r"Width:\s*(\d+)", info)
    height = re.search(r"Height:\s*(\d+)", info)
    return (int(width[1]), int(height[1])) if width and height else None


def _tmux(nodes: list[str]) -> int:
    """A tmux session with a window per node; attached from a terminal."""
    if shutil.which("tmux") is None:
        raise ClientError("tmux is not installed: install it, or run wcons in an X session")
    session = f"wcons-{os.getpid()}"
    env = [f"-e{name}={value}" for name, value in os.environ.items()
           if name.startswith("XCAT")]  # fmt: skip
    first, *others = nodes
    steps = [["new-session", "-d", "-s", session, "-n", first, *env, *_window_command(first)]]
    steps += [["new-window", "-d", "-t", f"{session}:", "-n", node, *env, *_window_command(node)]
              for node in others]  # fmt: skip
    for step in steps:
        result = subprocess.run(["tmux", *step], capture_output=True, text=True)
        if result.returncode:
            raise ClientError(f"tmux {step[0]} failed: {result.stderr.strip()}")
    if sys.stdin.isatty() and sys.stdout.isatty() and not os.environ.get("TMUX"):
        return subprocess.run(["tmux", "attach-session", "-t", session]).returncode
    print(f"tmux session {session}: {len(nodes)} windows; attach with: tmux attach -t {session}")
    return 0
