"""`xcatd lab up|status|down`: a virtual cluster on this machine.

Everything lives in one network namespace of the lab's own (nothing touches
the host's interfaces): the management network, a bridge `br0` with the
management node's address; one compute network per service node (a bridge
`snN-net` with no address of the management node's: only the service
node's second NIC and its compute nodes are on it); a BMC per machine
(ipmi_sim, on its own address on the management network, standard port
623, its chassis a QEMU machine it powers on and off, its SOL the
machine's serial console); and xcatd as the management node, on the
standard ports, defining the machines as nodes through the real client as
an administrator would, and starting its DHCP service (makedhcp -n); and a
dnsmasq of the lab's sending IPv6 router advertisements on the management
network, for the machines' firmware (see ADVERTISED).  The
machines are powered off until rpower or rnetboot.  The host reaches the
daemon through a forwarder listening on 127.0.0.1:PORT (default 3001).

Addresses (the management network is 172.30.0.0/24):

    management node  172.30.0.1          service node N   172.30.0.(10+N), and
    BMC of snN       172.30.0.(100+N)                     172.30.N.1 on snN-net
    BMC of cnM       172.30.0.(150+M)    compute node M   172.30.S.(10+M) on snS-net
                                         (172.30.0.(50+M) without service nodes)

Compute nodes are spread over the service nodes in turn (cn1 on sn1, cn2
on sn2, ...).  Every NIC is a virtio-net-pci one unless `--nic-model
NODE=MODEL` gives a node's machine another (an e1000, whose firmware and
kernel driver are other code).  What was made is recorded as it is made (state.py), so
`down` removes exactly that, and a failed `up` takes down what it made
before it says why, in one line.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import XcatdError
from . import bmc, netns
from .chassis_control import HARDWARE, QEMU, Machine
from .process import Process, ProgramError, running, stop_group
from .qemu import accelerator
from .state import Node, State

DEFAULT_ROOT = Path("/var/lib/xcatd-lab")
DEFAULT_NAMESPACE = "xcatd-lab"
DEFAULT_PORT = 3001
DEFAULT_MEMORY_MB = 2048
MAX_SERVICE_NODES = 40
MAX_COMPUTE_NODES = 90
# The machines' NIC models: QEMU's with an iPXE ROM of its own (ipxe-qemu)
# and a driver in the images' initrds (genimage's default network drivers).
NIC_MODELS = ("virtio-net-pci", "e1000", "e1000e")
DEFAULT_NIC_MODEL = NIC_MODELS[0]
MANAGEMENT = ipaddress.IPv4Network("172.30.0.0/24")
MN_ADDRESS = "172.30.0.1"
MN_HOSTNAME = "mn"
BRIDGE = "br0"
# QEMU's iPXE waits for an IPv6 router advertisement while it configures its
# NIC, about 14 s of each boot when none comes: the lab's own dnsmasq (not
# the product's, which serves IPv4 DHCP) advertises this unique local prefix
# on the management bridge, as not a router (lifetime 0: no IPv6 default
# route), so the machines are configured as soon as DHCP has answered.
ADVERTISED = ipaddress.IPv6Interface("fd00:172:30::1/64")
IPMI_PORT = 623
SERIAL_PORTS = 7000  # + the machine's number: its serial console, inside the namespace
DAEMON_PORT = 3001  # the daemon's, inside the namespace: the standard one
START_TIMEOUT = 60.0  # for the daemon and each BMC to listen (a loaded 2-core host)
STOP_TIMEOUT = 10.0
CLIENT_TIMEOUT = 120.0
# What the lab runs: missing, it is refused before anything is made.
PROGRAMS = {QEMU: "qemu-system-x86", bmc.IPMI_SIM: "openipmi", "dnsmasq": "dnsmasq-base",
            "ip": "iproute2", "ss": "iproute2"}  # fmt: skip


class LabError(XcatdError):
    """What went wrong, in one line, and what to do."""


@dataclass(frozen=True)
class Request:
    root: Path
    service_nodes: int
    compute_nodes: int
    namespace: str = DEFAULT_NAMESPACE
    port: int = DEFAULT_PORT
    memory_mb: int = DEFAULT_MEMORY_MB
    # {node: model} for the machines whose NICs are not DEFAULT_NIC_MODEL
    # (a node's firmware and kernel driver are those of its NIC's model).
    nic_models: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Planned:
    """A machine to make: its node definition and its NICs (tap, MAC, bridge)."""

    number: int  # among all machines: its BMC's serial port
    name: str
    group: str
    ip: str
    bmc: str
    nics: tuple[tuple[str, str, str], ...]
    servicenode: str = ""
    xcatmaster: str = ""

    @property
    def mac(self) -> str:
        return self.nics[0][1]


def plan(service_nodes: int, compute_nodes: int) -> list[Planned]:
    """Every machine of a lab, with its addresses (see the module's table)."""
    machines = [
        Planned(n, f"sn{n}", "service", f"172.30.0.{10 + n}", f"172.30.0.{100 + n}",
                ((f"sn{n}-0", _mac(0, n), BRIDGE), (f"sn{n}-1", _mac(1, n), _compute_net(n))))
        for n in range(1, service_nodes + 1)
    ]  # fmt: skip
    for m in range(1, compute_nodes + 1):
        name, bmc_address, mac = f"cn{m}", f"172.30.0.{150 + m}", _mac(2, m)
        if not service_nodes:
            nic = (f"{name}-0", mac, BRIDGE)
            machines.append(Planned(service_nodes + m, name, "compute", f"172.30.0.{50 + m}",
                                    bmc_address, (nic,)))  # fmt: skip
            continue
        s = (m - 1) % service_nodes + 1
        nic = (f"{name}-0", mac, _compute_net(s))
        machines.append(Planned(service_nodes + m, name, "compute", f"172.30.{s}.{10 + m}",
                                bmc_address, (nic,), f"sn{s}", f"172.30.{s}.1"))  # fmt: skip
    return machines


def _mac(kind: int, number: int) -> str:
    return f"52:54:00:30:{kind:02x}:{number:02x}"


def _compute_net(service_node: int) -> str:
    return f"sn{service_node}-net"


# -- up -------------------------------------------------------------------------------


def up(request: Request, say=print) -> State:
    """Make the lab `request` asks for; LabError (and nothing left) if it cannot."""
    _refuse_bad(request)
    listening = _door(request.port)
    made_root = not request.root.exists()
    request.root.mkdir(parents=True, exist_ok=True)
    state = State(request.root.resolve(), request.namespace, request.port, made_root)
    state.save()  # before anything is made: `down` can always find it
    try:
        with listening:
            _make(state, request, listening, say)
    except BaseException as exc:
        teardown(state)
        if isinstance(exc, LabError | ProgramError | netns.NetnsError):
            raise LabError(f"lab up failed, and what it made is removed: {exc}") from None
        raise
    return state


def _refuse_bad(request: Request) -> None:
    """Every reason not to begin, before anything is made."""
    if os.geteuid() != 0:
        raise LabError("lab up needs root (network namespaces, bridges, taps): run it as root")
    if not Path("/dev/net/tun").exists():
        raise LabError("/dev/net/tun is missing, and the machines' NICs need it: "
                       "load the tun module (modprobe tun)")  # fmt: skip
    for program, package in PROGRAMS.items():
        if shutil.which(program) is None:
            raise LabError(f"{program} is not installed: install the Debian package {package}")
    if not 0 <= request.service_nodes <= MAX_SERVICE_NODES:
        raise LabError(f"--service-nodes must be 0 to {MAX_SERVICE_NODES}")
    if not 0 <= request.compute_nodes <= MAX_COMPUTE_NODES:
        raise LabError(f"--compute-nodes must be 0 to {MAX_COMPUTE_NODES}")
    machines = {machine.name for machine in plan(request.service_nodes, request.compute_nodes)}
    _refuse_bad_nics(request.nic_models, machines)
    if (existing := State.load(request.root)) is not None:
        raise LabError(f"a lab is already up under {request.root} (namespace "
                       f"{existing.namespace}): 'xcatd lab down' first")  # fmt: skip
    if request.root.exists() and any(request.root.iterdir()):
        raise LabError(f"{request.root} is not empty: give a new or empty directory with --root")
    if netns.exists(request.namespace):
        raise LabError(f"network namespace {request.namespace} exists already: take it down, "
                       "or give another name with --namespace")  # fmt: skip
    count = len(machines)
    needed, available = count * request.memory_mb, _available_mb()
    if needed > available:
        raise LabError(f"{count} machines of {request.memory_mb} MiB need {needed} MiB and "
                       f"{available} MiB is available: ask for fewer machines or less "
                       "--memory")  # fmt: skip


def nic_models(settings: Sequence[str]) -> dict[str, str]:
    """--nic-model's NODE=MODEL settings as {node: model}."""
    models = {}
    for setting in settings:
        node, equals, model = setting.partition("=")
        if not (node and equals and model):
            raise LabError(f"--nic-model {setting}: give NODE=MODEL, such as sn2=e1000")
        models[node] = model
    return models


def _refuse_bad_nics(models: Mapping[str, str], machines: set[str]) -> None:
    for node, model in models.items():
        if node not in machines:
            raise LabError(f"--nic-model {node}={model}: this lab has no machine {node}")
        if model not in NIC_MODELS:
            raise LabError(f"--nic-model {node}={model}: the models are {', '.join(NIC_MODELS)}")


def _available_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    return 0


def _door(port: int) -> socket.socket:
    """The host's end of the forwarder, bound now: a port taken is refused
    before anything is made."""
    try:
        return socket.create_server(("127.0.0.1", port))
    except OSError as exc:  # its strerror names the address again: the system's words alone
        why = os.strerror(exc.errno) if exc.errno is not None else str(exc)
        raise LabError(f"port {port} on 127.0.0.1 is taken ({why}): "
                       "give another with --port") from None  # fmt: skip


def _make(state: State, request: Request, listening: socket.socket, say) -> None:
    machines = plan(request.service_nodes, request.compute_nodes)
    say(f"Making namespace {state.namespace}: management network {MANAGEMENT} on {BRIDGE}")
    netns.add(state.namespace)
    state.management = f"{MN_ADDRESS}/{MANAGEMENT.prefixlen}"
    state.save()
    netns.add_bridge(state.namespace, BRIDGE, state.management, str(ADVERTISED))
    for n in range(1, request.service_nodes + 1):
        netns.add_bridge(state.namespace, _compute_net(n))
    for machine in machines:
        # Each BMC's address is a secondary one on the management bridge:
        # the management node's stays the first, which is the one xcatd
        # gives the nodes as its own on that network.
        netns.ip("-n", state.namespace, "addr", "add", f"{machine.bmc}/{MANAGEMENT.prefixlen}",
                 "dev", BRIDGE)  # fmt: skip
        for tap, _, bridge in machine.nics:
            netns.add_tap(state.namespace, tap, bridge)
    state.accel = accelerator()
    say(f"Starting xcatd as the management node at {MN_ADDRESS} (machines under {state.accel})")
    _start_daemon(state)
    _start_door(state, listening)
    _start_router_adverts(state)
    password = secrets.token_hex(8)
    for machine in machines:
        model = request.nic_models.get(machine.name, DEFAULT_NIC_MODEL)
        _start_bmc(state, machine, password, request.memory_mb, model)
    say(f"Defining {len(machines)} nodes, powered off, and starting DHCP (makedhcp -n)")
    _define(state, machines, password)
    say(f"Lab up under {state.root}")


def _start_daemon(state: State) -> None:
    mn = state.root / "mn"
    initialised = subprocess.run(
        [sys.executable, "-m", "xcatd", "init", "--root", str(mn), "--hostname", MN_HOSTNAME,
         "--listen", MN_ADDRESS, "--port", str(DAEMON_PORT)],
        capture_output=True, text=True, timeout=CLIENT_TIMEOUT,
    )  # fmt: skip
    if initialised.returncode != 0:
        raise LabError(f"xcatd init: {initialised.stderr.strip()}")
    state.cred_dir = str(mn / ".xcat")
    daemon = _start(state, "xcatd", [sys.executable, "-m", "xcatd", "serve", "--root", str(mn)])
    daemon.wait_for(f"serving on port {DAEMON_PORT}", START_TIMEOUT)


def _start_door(state: State, listening: socket.socket) -> None:
    argv = [sys.executable, "-m", "xcatd.lab.forward", str(listening.fileno()),
            f"{MN_ADDRESS}:{DAEMON_PORT}"]  # fmt: skip
    door = _start(state, "forward", argv, pass_fds=(listening.fileno(),))
    door.wait_for("forwarding", START_TIMEOUT)


def _start_router_adverts(state: State) -> None:
    """A dnsmasq of router advertisements only (see ADVERTISED): no DNS, no
    DHCP, no lease file, no configuration file but its arguments."""
    argv = ["dnsmasq", "--conf-file=/dev/null", "--keep-in-foreground", "--log-facility=-",
            "--pid-file=", "--leasefile-ro", "--port=0", f"--interface={BRIDGE}",
            "--bind-interfaces", "--enable-ra", f"--dhcp-range=::,constructor:{BRIDGE},ra-only",
            f"--ra-param={BRIDGE},60,0"]  # fmt: skip
    adverts = _start(state, "router-adverts", argv)
    adverts.wait_for("IPv6 router advertisement enabled", START_TIMEOUT)


def _start_bmc(
    state: State, machine: Planned, password: str, memory_mb: int, nic_model: str
) -> None:
    directory = state.root / "bmc" / machine.name
    command = bmc.configure(directory, f"bmc-{machine.name}", machine.bmc, IPMI_PORT, password,
                            machine.number, serial_port=SERIAL_PORTS + machine.number)  # fmt: skip
    hardware = {"accel": state.accel, "memory_mb": memory_mb,
                "nics": [(tap, mac, nic_model) for tap, mac, _ in machine.nics]}  # fmt: skip
    (directory / HARDWARE).write_text(json.dumps(hardware) + "\n")
    process = _start(state, f"bmc-{machine.name}", command, log=directory / "log")
    deadline = time.monotonic() + START_TIMEOUT
    while not bmc.listening(netns.prefix(state.namespace), IPMI_PORT, machine.bmc):
        if process.popen.poll() is not None or time.monotonic() > deadline:
            raise LabError(f"the BMC of {machine.name} did not start: see {process.log}")
        time.sleep(0.05)
    state.nodes.append(Node(machine.name, machine.group, machine.mac, machine.ip,
                            f"{machine.bmc}:{IPMI_PORT}", str(directory)))  # fmt: skip
    state.save()


def _start(
    state: State, name: str, argv: Sequence[str], log: Path | None = None, pass_fds=()
) -> Process:
    """A program of the lab, in its namespace, recorded before anything waits for it."""
    log = log or state.root / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    process = Process([*netns.prefix(state.namespace), *argv], log, pass_fds=pass_fds)
    state.record(name, process.popen.pid, log)
    return process


def _define(state: State, machines: list[Planned], password: str) -> None:
    """The nodes and their networks, through the daemon as an administrator defines them."""
    client = Client(state)
    # The BMCs are on the management network, which the MN reaches: it
    # drives them itself (xCAT's default sends a service node's nodes' to it).
    client.run("chdef", "-t", "site", "ipmidispatch=n")
    # The management node's interface, as its makenetworks would record it: a
    # service node, which has no br0, serves on its own interface there (eth0).
    client.run("mkdef", "-t", "network", "-o", "mgmt", f"net={MANAGEMENT.network_address}",
               f"mask={MANAGEMENT.netmask}", f"mgtifname={BRIDGE}")  # fmt: skip
    for machine in machines:
        if machine.group == "service":
            n = machine.number
            client.run("mkdef", "-t", "network", "-o", _compute_net(n), f"net=172.30.{n}.0",
                       "mask=255.255.255.0", f"gateway=172.30.{n}.1")  # fmt: skip
    # The MN's DHCP service first: makedhcp -n asks each service node named
    # by a node to set up its own too, and none is up yet.
    client.run("makedhcp", "-n")
    for machine in machines:
        extra = [f"servicenode={machine.servicenode}", f"xcatmaster={machine.xcatmaster}"]
        client.run("mkdef", machine.name, f"groups={machine.group},all", f"mac={machine.mac}",
                   f"ip={machine.ip}", f"bmc={machine.bmc}", "bmcusername=" + bmc.USER,
                   f"bmcpassword={password}", "mgt=ipmi", "cons=ipmi", "serialport=0",
                   "serialspeed=115200", *(extra if machine.servicenode else []))  # fmt: skip


class Client:
    """The real client commands, pointed at the lab's daemon through its door."""

    def __init__(self, state: State) -> None:
        self.env = os.environ | environment(state)
        bin_dir = Path(sys.executable).parent
        self.path = f"{bin_dir}:{os.environ.get('PATH', '')}"

    def program(self, command: str) -> str:
        """Where the client command (or xcatd itself) is: beside this xcatd."""
        program = shutil.which(command, path=self.path)
        if program is None:
            raise LabError(f"the client command {command} is not installed beside xcatd")
        return program

    def run(self, command: str, *args: str) -> str:
        result = subprocess.run([self.program(command), *args], capture_output=True, text=True,
                                env=self.env, timeout=CLIENT_TIMEOUT)  # fmt: skip
        if result.returncode != 0:
            raise LabError(f"{command} {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout


def environment(state: State) -> dict[str, str]:
    """What a user of the lab's cluster sets, on this host."""
    return {"XCATHOST": f"127.0.0.1:{state.port}", "XCAT_CRED_DIR": state.cred_dir}


# -- status ---------------------------------------------------------------------------


def status(root: Path) -> Iterator[str]:
    """The lab under `root`: its programs, machines, BMCs, addresses, power
    and console logs, as lines."""
    state = _running(root)
    yield (f"Lab under {state.root}: namespace {state.namespace}, management network "
           f"{MANAGEMENT} on {BRIDGE}, machines under {state.accel or '?'}")  # fmt: skip
    crashed = [name for name, program in state.programs.items() if not program.alive()]
    for name, program in state.programs.items():
        yield f"  {name:<12} pid {program.pid:<8} {'running' if program.alive() else 'GONE'}"
    if crashed:
        yield f"Not running: {', '.join(crashed)}: the lab crashed; 'xcatd lab down' cleans it"
    env = environment(state)
    yield f"xcatd at {MN_ADDRESS}:{DAEMON_PORT}, reached from this host at {env['XCATHOST']}:"
    yield "  export " + " ".join(f"{key}={value}" for key, value in env.items())
    if not state.nodes:
        return
    yield f"{'node':<6} {'group':<8} {'mac':<17} {'ip':<13} {'bmc':<17} {'power':<5} console log"
    for node in state.nodes:
        power = "on" if Machine(Path(node.directory)).pid() is not None else "off"
        console = Path(node.directory) / "serial.log"
        yield (f"{node.name:<6} {node.group:<8} {node.mac:<17} {node.ip:<13} {node.bmc:<17} "
               f"{power:<5} {console}")  # fmt: skip


def next_steps(state: State) -> Iterator[str]:
    """What to try on a lab just made, after the export line."""
    first = state.nodes[0].name if state.nodes else ""
    if first:
        yield f"Try: rpower all stat; makedhcp {first}; rnetboot {first}; rcons {first} " \
              "(Ctrl-E c . leaves it)"  # fmt: skip
    root = "" if state.root == DEFAULT_ROOT else f" --root {state.root}"
    yield f"Then: xcatd lab status{root}; xcatd lab down{root}"


def _running(root: Path) -> State:
    state = State.load(root)
    if state is None:
        raise LabError(f"no lab is up under {root}")
    return state


# -- down -----------------------------------------------------------------------------


def down(root: Path) -> str:
    """Take down the lab under `root`; what was removed, in one line."""
    state = _running(root)
    stopped = teardown(state)
    programs = "1 program" if stopped == 1 else f"{stopped} programs"
    namespace = f"namespace {state.namespace} deleted"
    return f"Lab under {state.root} taken down: {programs} stopped, {namespace}"


def teardown(state: State) -> int:
    """Stop what the lab runs and remove what it made; how many programs
    were still running.  Safe after a crash, and to run again."""
    stopped = 0
    for program in reversed(state.programs.values()):
        if program.alive():  # else: gone, or its number is another process's now
            stop_group(program.pid, STOP_TIMEOUT)
            stopped += 1
    if netns.exists(state.namespace):
        # Whatever is left inside runs there because of the lab (a machine
        # whose BMC was killed, the daemon's dnsmasq after a daemon crash);
        # the namespace lives on while anything does.
        for pid in netns.pids(state.namespace):
            _kill(pid)
        netns.delete(state.namespace)
    if state.made_root:
        shutil.rmtree(state.root, ignore_errors=True)
    else:
        for entry in state.root.iterdir():
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    return stopped


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
