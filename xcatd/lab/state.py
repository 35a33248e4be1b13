"""What a lab made, recorded under its root (ROOT/lab.json) as it makes it,
so that `xcatd lab down` removes exactly that, even after `up` or the lab
crashed half-way: the namespace (and with it every bridge, tap and address
in it), each program by its process id and start time (a later process
given the same number is not ours), and whether `up` made the root itself.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .process import running, start_time

STATE_FILE = "lab.json"


@dataclass
class Program:
    """A program the lab runs, leading its own process group."""

    pid: int
    start: int | None  # /proc's start time, which tells it from a later process
    log: str

    def alive(self) -> bool:
        return running(self.pid) and start_time(self.pid) == self.start


@dataclass
class Node:
    """One machine of the lab, as `status` shows it."""

    name: str
    group: str
    mac: str
    ip: str
    bmc: str
    directory: str  # its BMC's: configuration, state, the machine's console log


@dataclass
class State:
    root: Path
    namespace: str
    port: int  # on this host's 127.0.0.1: the door to the daemon
    made_root: bool
    management: str = ""  # the MN's address on its bridge, with the prefix
    accel: str = ""
    cred_dir: str = ""
    programs: dict[str, Program] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)

    @classmethod
    def load(cls, root: Path) -> State | None:
        """The lab recorded under `root`, or None if there is none."""
        try:
            raw = json.loads((root / STATE_FILE).read_text())
        except FileNotFoundError:
            return None
        raw["root"] = root
        raw["programs"] = {name: Program(**p) for name, p in raw["programs"].items()}
        raw["nodes"] = [Node(**node) for node in raw["nodes"]]
        return cls(**raw)

    def save(self) -> None:
        """Write the record whole or not at all (a crash leaves the last one)."""
        record = asdict(self)
        record.pop("root")
        partial = self.root / f".{STATE_FILE}.new"
        partial.write_text(json.dumps(record, indent=1) + "\n")
        os.replace(partial, self.root / STATE_FILE)

    def record(self, name: str, pid: int, log: Path) -> None:
        self.programs[name] = Program(pid, start_time(pid), str(log))
        self.save()
