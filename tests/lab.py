"""`xcatd lab` for the tests, run as an administrator runs it: a lab with a
namespace, a root and a port of its own (the lab's defaults are the
administrator's), so that it cannot meet another's; its management node as
a tests.cluster.Cluster, and its machines' serial consoles as the lab logs
them.

    with lab_up("--service-nodes", "1", "--compute-nodes", "1") as lab:
        cluster = lab.cluster()        # the client runs inside the lab's namespace
        cluster.ok("rnetboot", "sn1")
        lab.serial("sn1")              # what sn1 wrote on its serial console
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from xcatd.config import Config
from xcatd.lab import netns
from xcatd.lab.chassis_control import Machine
from xcatd.lab.lab import BRIDGE, DAEMON_PORT, MANAGEMENT, MN_ADDRESS, MN_HOSTNAME
from xcatd.lab.process import console_text
from xcatd.lab.state import Node, State

from .cluster import BIN, Cluster, free_port
from .netboot import Machine as Host
from .netboot import host_on

_labs = itertools.count()


@dataclass
class Lab:
    """One lab's settings, and the administrator's commands for it."""

    root: Path
    namespace: str = field(default_factory=lambda: f"xcatd-lab-{os.getpid()}-{next(_labs)}")
    port: int = field(default_factory=free_port)
    prefix: list[str] = field(default_factory=list)  # for tests.terminal.Terminal

    def xcatd(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """`xcatd lab ARGS` with this lab's root (and, for up, its namespace and port)."""
        action, *rest = args
        mine = ["--namespace", self.namespace, "--port", str(self.port)] if action == "up" else []
        argv = [BIN / "xcatd", "lab", action, "--root", str(self.root), *mine, *rest]
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)

    @property
    def state(self) -> State:
        state = State.load(self.root)
        assert state is not None, f"no lab is up under {self.root}"
        return state

    @property
    def env(self) -> dict[str, str]:
        """A user's environment on this host, as `lab status` prints it (its export line)."""
        state = self.state
        user = {"XCATHOST": f"127.0.0.1:{state.port}", "XCAT_CRED_DIR": state.cred_dir}
        return os.environ | user | {"PATH": f"{BIN}:{os.environ['PATH']}"}

    def ok(self, command: str, *args: str) -> str:
        result = subprocess.run([BIN / command, *args], capture_output=True, text=True,
                                env=self.env, timeout=120)  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout

    def left_behind(self) -> list[str]:
        """Whatever of the lab is still there: none after `down`."""
        left = [f"namespace {self.namespace}"] if netns.exists(self.namespace) else []
        return left + ([str(self.root)] if self.root.exists() else [])

    def logs(self) -> str:
        """The tail of each of the lab's programs' logs."""
        directory = self.root / "logs"
        return "".join(
            f"\n--- {log}:\n{log.read_text()[-3000:]}" for log in directory.glob("*.log")
        )

    def cluster(self) -> Cluster:
        """The lab's management node as the tests drive a cluster: its root,
        its daemon's address and standard ports, the client run inside the
        lab's namespace (where the nodes are), its daemon's log."""
        state = self.state
        cluster = Cluster(Path(state.cred_dir).parent, MN_HOSTNAME, MN_ADDRESS,
                          netns.prefix(self.namespace))  # fmt: skip
        cluster.port, cluster.status_port = DAEMON_PORT, Config.status_port
        cluster.http_port, cluster.tftp_port = Config.http_port, Config.tftp_port
        cluster.log = Path(state.programs["xcatd"].log)
        return cluster

    @staticmethod
    def host(number: int) -> str:
        """The management network's address `number` (20 -> 172.30.0.20)."""
        return str(MANAGEMENT[number])

    def machine(self, number: int) -> AbstractContextManager[Host]:
        """A host of the test's on the management network (a veth on the
        lab's bridge) with its address `number`, in a namespace of its own:
        a DHCP client, a service node's daemon."""
        address = ipaddress.IPv4Interface(f"{self.host(number)}/{MANAGEMENT.prefixlen}")
        return host_on(self.namespace, BRIDGE, f"{self.namespace}-m{number}", address)

    def node(self, name: str) -> Node:
        (node,) = [node for node in self.state.nodes if node.name == name]
        return node

    def serial(self, name: str) -> str:
        """What machine `name` wrote on its serial console (every boot), as
        its BMC's chassis logs it."""
        log = Machine(Path(self.node(name).directory)).serial_log
        return console_text(log.read_bytes()) if log.exists() else ""


@contextmanager
def lab_up(*args: str) -> Iterator[Lab]:
    """`xcatd lab up ARGS` under a new short directory (a machine's QMP
    socket path must fit in 108 bytes); `xcatd lab down` on leaving."""
    directory = Path(tempfile.mkdtemp(prefix="xcatd-lab-"))
    lab = Lab(directory / "lab")
    try:
        made = lab.xcatd("up", *args)
        assert made.returncode == 0, made.stderr + lab.logs()
        yield lab
    except BaseException:
        print(lab.logs(), flush=True)
        raise
    finally:
        if State.load(lab.root) is not None:
            lab.xcatd("down")
        shutil.rmtree(directory, ignore_errors=True)
