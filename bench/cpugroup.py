"""A CPU cgroup of small weight for the simulated nodes of a benchmark.

Real nodes bring their own cores; on one machine the programs that play
them (a thousand curls) share the cores with the servers under test and
with the administrator whose commands a benchmark times.  Niceness does not
model that: each nice process still gets its share, so a thousand of them
together outweigh one command.  A cgroup of the smallest CPU weight takes
them all as one: they run on the cores the servers and the administrator
leave idle, however many they are.  Processes are moved in and out by
writing their pid to the group's `cgroup.procs` (in a child before it
execs, see `join`), which cgroup v2 and v1's cpu hierarchy both read.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
NAME = "xcatd-bench-nodes"


@dataclass(frozen=True)
class CpuGroup:
    """A cgroup directory, and the one this process is in (for what must leave it)."""

    path: Path
    home: Path


def join(group: Path) -> None:
    """Move the calling process into the cgroup directory `group` (a
    subprocess's preexec_fn: the child moves before it execs)."""
    (group / "cgroup.procs").write_text(str(os.getpid()))


@contextlib.contextmanager
def low_weight() -> Iterator[CpuGroup | None]:
    """A fresh group of the smallest CPU weight for as long as the block runs,
    removed after; None where cgroups cannot be made (not root, no cpu
    controller), and the caller says so."""
    made = _make()
    try:
        yield made
    finally:
        if made is not None:
            with contextlib.suppress(OSError):  # a process still in it: left for the next run
                made.path.rmdir()


def _make() -> CpuGroup | None:
    try:
        if (CGROUP_ROOT / "cgroup.controllers").is_file():  # v2, unified
            return _v2()
        if (CGROUP_ROOT / "cpu/cpu.shares").is_file():  # v1, the cpu hierarchy
            return _v1(CGROUP_ROOT / "cpu")
    except OSError:
        pass
    return None


def _v2() -> CpuGroup | None:
    if "cpu" not in (CGROUP_ROOT / "cgroup.controllers").read_text().split():
        return None
    (CGROUP_ROOT / "cgroup.subtree_control").write_text("+cpu")
    group = CGROUP_ROOT / NAME
    group.mkdir(exist_ok=True)
    (group / "cpu.weight").write_text("1")
    return CpuGroup(group, CGROUP_ROOT / _own("").lstrip("/"))


def _v1(hierarchy: Path) -> CpuGroup:
    group = hierarchy / NAME
    group.mkdir(exist_ok=True)
    (group / "cpu.shares").write_text("2")  # v1's smallest
    return CpuGroup(group, hierarchy / _own("cpu").lstrip("/"))


def _own(controller: str) -> str:
    """This process's cgroup path in the hierarchy of `controller` ("" is v2's)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return "/"
