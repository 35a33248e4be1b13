"""Running the package manager and scripts on an image, and stopping them.

Every program genimage runs on an image runs in a private mount namespace
(`unshare --mount --propagation private`): the image's /proc, /sys and /dev
(and the package directories it needs, bound at their own paths) are mounted
there and nowhere else.  The kernel removes those mounts when the last
process of the namespace exits, so a build that fails, is cancelled or whose
daemon is killed never leaves a mount on the host - there is nothing to
forget to unmount.

Each program runs in a session (process group) of its own; cancelling the
request terminates that whole group (dnf and its rpm scriptlets, mmdebstrap
and its apt and dpkg children), and kills it if it has not gone after a
grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import trio

GRACE = 5.0  # seconds between SIGTERM and SIGKILL of a cancelled program
DRAIN = 2.0  # seconds to read what a finished program left in its output pipe

# Runs as: sh -c MOUNTS genimage-mounts ROOT MODE [BIND ...] -- COMMAND ...
# MODE: chroot (run COMMAND inside ROOT), host (run it outside, ROOT mounted),
# none (only the private namespace, nothing mounted in ROOT).
_MOUNTS = r"""
set -e
root=$1; mode=$2; shift 2
while [ "$1" != "--" ]; do
    mkdir -p "$root$1"
    mount --bind -o ro "$1" "$root$1"
    shift
done
shift
if [ "$mode" != none ]; then
    mkdir -p "$root/proc" "$root/sys" "$root/dev"
    mount -t proc proc "$root/proc"
    mount -t sysfs sysfs "$root/sys"
    mount --rbind /dev "$root/dev"
fi
if [ "$mode" = chroot ]; then
    # Name resolution for package managers in the image; read-only, so that
    # nothing run in the image can write the host's own file.
    if [ -f /etc/resolv.conf ] && [ -f "$root/etc/resolv.conf" ] && [ ! -L "$root/etc/resolv.conf" ]
    then
        mount --bind -o ro /etc/resolv.conf "$root/etc/resolv.conf"
    fi
    exec chroot "$root" "$@"
fi
exec "$@"
"""


@dataclass
class Namespace:
    """How to run commands for one image: its root and what is bound into it."""

    root: Path
    binds: list[Path] = field(default_factory=list)  # host directories, bound at the same path

    def command(self, argv: Sequence[str], mode: str = "host") -> list[str]:
        """`argv` wrapped to run in a private mount namespace with the image's
        mounts; `mode` chroot runs it inside the image."""
        assert mode in ("chroot", "host", "none")
        binds = [str(b) for b in self.binds]
        return [
            "unshare", "--mount", "--propagation", "private", "--",
            "/bin/sh", "-c", _MOUNTS, "genimage-mounts", str(self.root), mode,
            *binds, "--", *argv,
        ]  # fmt: skip

    async def run(
        self,
        argv: Sequence[str],
        on_line: LineHandler,
        mode: str = "host",
        env: dict[str, str] | None = None,
    ) -> int:
        """Run `argv` for this image (see `command`); what it needed made in
        the image (mount points, a resolv.conf to bind the host's on) is
        removed again afterwards."""
        made = self._mountpoints()
        resolv = self.root / "etc/resolv.conf"
        placeholder = (
            mode == "chroot"
            and (self.root / "etc").is_dir()
            and not resolv.exists()
            and not resolv.is_symlink()
        )
        if placeholder:
            resolv.touch()
        try:
            return await run(self.command(argv, mode), on_line, env)
        finally:
            if placeholder:
                with contextlib.suppress(OSError):
                    resolv.unlink()
            for top in made:
                _remove_empty_tree(top)

    def _mountpoints(self) -> list[Path]:
        """Mount points that do not exist in the image yet: the top directory
        that `mkdir -p` will make for each bind."""
        made = []
        for bind in self.binds:
            probe = self.root
            for part in bind.parts[1:]:
                probe = probe / part
                if not probe.exists():
                    made.append(probe)
                    break
        return made


def _remove_empty_tree(top: Path) -> None:
    """Remove directories made as mount points; never anything with content."""
    if not top.is_dir() or top.is_symlink():
        return
    for directory, _, _ in os.walk(top, topdown=False):
        with contextlib.suppress(OSError):
            os.rmdir(directory)  # fails, harmlessly, on anything not empty


LineHandler = Callable[[str], Awaitable[None]]


async def run(
    argv: Sequence[str],
    on_line: LineHandler,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Run `argv` in a session of its own, handing each output line (stdout
    and stderr together) to `on_line`; its exit status.  Cancelled, it stops
    the program's whole process group before returning."""
    process = await trio.lowlevel.open_process(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        async with trio.open_nursery() as nursery:
            read_all = trio.Event()
            nursery.start_soon(_forward_lines, process.stdout, on_line, read_all)
            status = await process.wait()
            # Its exit ends the step, even if something it started in the
            # background still holds the output pipe: that is killed, and
            # what is left to read gets a moment.
            _signal_group(process.pid, signal.SIGKILL)
            with trio.move_on_after(DRAIN):
                await read_all.wait()
            nursery.cancel_scope.cancel()
        return status
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                await stop_group(process)
            else:  # nothing it started outlives it in the image's namespace
                _signal_group(process.pid, signal.SIGKILL)
        if process.stdout is not None:  # trio's Process has no aclose(): its pipe is ours to close
            await process.stdout.aclose()


async def stop_group(process: trio.Process) -> None:
    """SIGTERM to the process's whole group; SIGKILL after GRACE seconds."""
    _signal_group(process.pid, signal.SIGTERM)
    with trio.move_on_after(GRACE):
        await process.wait()
    # Members may outlive the leader; the group is killed whatever happened.
    _signal_group(process.pid, signal.SIGKILL)
    await process.wait()


async def _forward_lines(
    stream: trio.abc.ReceiveStream, on_line: LineHandler, done: trio.Event
) -> None:
    pending = b""
    async for chunk in stream:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            await on_line(_text(line))
    if pending:
        await on_line(_text(pending))
    done.set()


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _text(line: bytes) -> str:
    # Progress bars redraw with \r; keep what was drawn last.
    return line.decode("utf-8", "replace").rstrip("\r").rpartition("\r")[2].rstrip()
