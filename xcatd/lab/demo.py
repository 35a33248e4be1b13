"""`xcatd lab demo`: the seed document (diskless service nodes, as xCAT's
documentation walks them) walked on a lab of one service node and one
compute node, each administrator command printed before it runs and its
output after; `bash .ci/demo`, the README's first command, runs it.

    xcatd lab up, xcatd lab media, copycds           the lab and its install media
    lsdef -t osimage | grep -i service               the service images copycds made
    lsdef -t osimage -l <image> -z > myservice.def   a custom image from it, edited,
    cat myservice.def | mkdef -z                     and defined
    xcatd bundle <otherpkgdir>/xcat/wheels           xcat-core and xcat-dep's analog
    genimage, the seed's chroot steps, packimage     the service node's image
    nodeset service osimage=..., rnetboot service    sn1 boots (rcons shows it),
                                                     enrolls and serves
    genimage, packimage of the compute image;
    makedhcp -n, nodeset cn1, rnetboot cn1           cn1 boots, served by sn1
    nodestat sn1,cn1 (cn1 probed by sn1)             both answer

Every command is the real one: the client commands against the lab's
management node through its forwarder, `xcatd lab` and `xcatd bundle` as an
administrator runs them, chroot on the image.  Long commands show a
progress line (on a terminal) and every phase its time; the lab is left
running at the end, with what to try next.  Plain synchronous code, as the
rest of the lab: it drives separate programs and waits for what they print.
"""

from __future__ import annotations

import os
import select
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from . import netns
from .lab import DAEMON_PORT, DEFAULT_NAMESPACE, DEFAULT_PORT, DEFAULT_ROOT, Client, LabError, plan
from .media import DEFAULT_CACHE
from .process import console_text
from .state import State

SERVICE = "debian12-x86_64-netboot-service"
MYSERVICE = "debian12-x86_64-netboot-myservice"  # the seed's custom image
COMPUTE = "debian12-x86_64-netboot-compute"
# The kernel names the NICs eth0, eth1 in their order: what nicips.eth1 names.
KERNEL_OPTIONS = "net.ifnames=0"
# The seed's chroot steps: DHCP off until xcatd configures it (its
# `chkconfig dhcpd off`: dnsmasq is the DHCP server here), and /install
# exported for NFS hybrid mode.
DHCP_SERVICE = "dnsmasq.service"
EXPORTS = "/install *(ro,no_root_squash,sync,fsid=13)"
# The seed's packimage (cpio), with zstd: gunzip alone takes a minute and a
# half under emulation.
PACK = ("-c", "zstd")
BOOT_LIMIT = 1200.0  # seconds from rnetboot to `booted`, under TCG on a loaded 2-core host
POLL_STATUS = 3.0  # seconds between looks at the node's reported status
TICK = 1.0  # seconds between redraws of the progress line
COMMAND_TIMEOUT = 1800.0  # for any one command: genimage of a big image on a slow host


class DemoError(LabError):
    """A step of the walk failed: which, and what it printed."""


@dataclass(frozen=True)
class Options:
    root: Path = DEFAULT_ROOT
    namespace: str = DEFAULT_NAMESPACE
    port: int = DEFAULT_PORT
    cache: Path = DEFAULT_CACHE  # the media's downloaded packages
    iso: Path | None = None  # a real Debian 12 ISO, instead of `xcatd lab media`


@dataclass
class Terminal:
    """Where the walk is shown: commands, their output, a progress line
    redrawn in place while a long command runs (only on a terminal)."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    progress: str = ""  # what the progress line shows now, "" when none

    @property
    def live(self) -> bool:
        return self.out.isatty()

    def line(self, text: str = "") -> None:
        self._clear()
        print(text, file=self.out, flush=True)

    def show_progress(self, text: str) -> None:
        if self.live:
            text = text[: shutil.get_terminal_size().columns - 1]  # one line, not wrapped
            self.out.write(f"\r\x1b[K{text}")
            self.out.flush()
            self.progress = text

    def _clear(self) -> None:
        if self.progress:
            self.out.write("\r\x1b[K")
            self.progress = ""


@dataclass
class Phase:
    title: str
    seconds: float = 0.0


class Walk:
    """The demo's session: the lab's client commands, shown as they run."""

    def __init__(self, options: Options, terminal: Terminal) -> None:
        self.options = options
        self.terminal = terminal
        self.phases: list[Phase] = []
        self.client: Client | None = None  # once the lab is up
        self.bin = Path(sys.executable).parent

    # -- running and showing ------------------------------------------------------------

    @contextmanager
    def phase(self, title: str) -> Iterator[None]:
        phase = Phase(title)
        self.phases.append(phase)
        self.terminal.line()
        self.terminal.line(f"== {len(self.phases)}. {title}")
        started = time.monotonic()
        yield
        phase.seconds = time.monotonic() - started
        self.terminal.line(f"   ({title}: {phase.seconds:.0f} s)")

    def note(self, text: str) -> None:
        """The administrator's why, as a shell comment."""
        for line in text.splitlines():
            self.terminal.line(f"# {line}")

    def run(self, *argv: str, shown: str | None = None, input: str | None = None,
            inside: bool = False, env: dict[str, str] | None = None,
            quiet: bool = False) -> str:  # fmt: skip
        """`argv` (a client command, `xcatd`, or any program), shown as typed
        (`shown`, or the command line) before it runs and its output while it
        does; what it printed on stdout.  `inside`: in the lab's namespace.
        DemoError if it fails."""
        command = self._resolve(argv[0])
        full = [*(netns.prefix(self.options.namespace) if inside else []), command, *argv[1:]]
        label = shown or shlex.join(argv)
        if not quiet:
            self.terminal.line(f"$ {label}")
        process = subprocess.Popen(
            full, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self._env(env),
        )  # fmt: skip
        if input is not None:
            assert process.stdin is not None
            process.stdin.write(input.encode())
            process.stdin.close()
        out = self.stream(process, label, show=not quiet)
        assert process.stderr is not None
        errors = process.stderr.read().decode(errors="replace")
        if errors and not quiet:
            for line in errors.rstrip("\n").splitlines():
                self.terminal.line(line)
        if process.wait() != 0:
            said = (errors or out).strip().splitlines() or ["(nothing printed)"]
            raise DemoError(f"{label} failed (rc {process.returncode}): {said[-1]}")
        return out

    def _resolve(self, command: str) -> str:
        if self.client is not None:
            try:
                return self.client.program(command)
            except LabError:
                pass
        mine = self.bin / command  # xcatd, before the lab is up
        return str(mine) if mine.exists() else command  # else: the system's (chroot)

    def _env(self, extra: dict[str, str] | None) -> dict[str, str]:
        env = self.client.env if self.client is not None else dict(os.environ)
        return env | {"PATH": f"{self.bin}:{env.get('PATH', '')}"} | (extra or {})

    def stream(self, process: subprocess.Popen, label: str, show: bool = True,
               idle: Callable[[], bool] | None = None, every: float = TICK) -> str:  # fmt: skip
        """Show what `process` prints on stdout, line by line, until it ends
        (or until `idle`, called every `every` seconds, says to stop), with a
        progress line of `label` and the time so far; what it printed."""
        assert process.stdout is not None
        fd = process.stdout.fileno()
        started = last_idle = time.monotonic()
        printed, pending = [], b""
        while True:
            ready, _, _ = select.select([fd], [], [], TICK)
            chunk = os.read(fd, 65536) if ready else None
            if chunk == b"":
                break
            if chunk:
                pending += chunk
                *whole, pending = pending.split(b"\n")
                for raw in whole:
                    text = console_text(raw)
                    printed.append(text + "\n")
                    if show:
                        self.terminal.line(text)
            now = time.monotonic()
            self.terminal.show_progress(f"   ... {now - started:.0f} s  {label}")
            if idle is not None and now - last_idle >= every:
                last_idle = now
                if idle():
                    break
            if now - started > COMMAND_TIMEOUT:
                process.kill()
                raise DemoError(f"{label} did not finish within {COMMAND_TIMEOUT:.0f} s")
        if pending and show:
            self.terminal.line(console_text(pending))
        return "".join(printed) + console_text(pending)

    # -- the walk -----------------------------------------------------------------------

    def walk(self) -> None:
        self.lab_up()
        iso = self.media()
        self.copycds(iso)
        image = self.custom_image()
        self.bundle(image)
        rootimg = self.genimage(image)
        self.chroot_steps(rootimg)
        self.packimage(image)
        self.boot_service_node(image)
        self.compute_image()
        self.boot_compute_node()
        self.summary()

    def lab_up(self) -> None:
        options = self.options
        with self.phase("A lab: one service node, one compute node, powered off"):
            mine = [] if options.root == DEFAULT_ROOT else ["--root", str(options.root)]
            mine += [] if options.namespace == DEFAULT_NAMESPACE else [
                "--namespace", options.namespace]  # fmt: skip
            mine += [] if options.port == DEFAULT_PORT else ["--port", str(options.port)]
            self.run("xcatd", "lab", "up", "--service-nodes", "1", "--compute-nodes", "1", *mine)
            state = State.load(options.root)
            assert state is not None  # up succeeded
            self.client = Client(state)
            self.note("The client commands below reach the lab's management node through "
                      "these:")  # fmt: skip
            exports = " ".join(f"{key}={value}" for key, value in sorted(
                {"XCATHOST": self.client.env["XCATHOST"],
                 "XCAT_CRED_DIR": self.client.env["XCAT_CRED_DIR"]}.items()))  # fmt: skip
            self.terminal.line(f"export {exports}")

    def media(self) -> Path:
        if self.options.iso is not None:
            return self.options.iso.resolve()
        with self.phase("Install media: a Debian 12 ISO from this host's apt"):
            iso = self.options.root / "debian-12-amd64.iso"
            cache = [] if self.options.cache == DEFAULT_CACHE else [
                "--cache", str(self.options.cache)]  # fmt: skip
            self.run("xcatd", "lab", "media", "--out", str(iso), *cache)
        return iso

    def copycds(self, iso: Path) -> None:
        with self.phase("copycds: the media, and the osimages made from them"):
            self.run("copycds", str(iso))
            listed = self.run("lsdef", "-t", "osimage", shown="lsdef -t osimage | grep -i service",
                              quiet=True)  # fmt: skip
            self.terminal.line("$ lsdef -t osimage | grep -i service")
            for line in listed.splitlines():
                if "service" in line.lower():
                    self.terminal.line(line)

    def custom_image(self) -> str:
        with self.phase(f"A custom service image, {MYSERVICE}"):
            self.run("lsdef", "-t", "osimage", "-l", SERVICE)
            stanza = self.options.root / "myservice.def"
            text = self.run("lsdef", "-t", "osimage", "-l", SERVICE, "-z",
                            shown=f"lsdef -t osimage -l {SERVICE} -z > {stanza}")  # fmt: skip
            stanza.with_suffix(".def.orig").write_text(text)
            stanza.write_text(edited(text))
            self.note(f"vi {stanza}: its name, its rootimgdir, and the kernel option "
                      f"{KERNEL_OPTIONS}\n(the NICs named eth0, eth1 in order: sn1's eth1 is on "
                      "the compute network)")  # fmt: skip
            self._show_diff(stanza)
            self.run("mkdef", "-z", input=stanza.read_text(), shown=f"cat {stanza} | mkdef -z")
            self.run("lsdef", "-t", "osimage", "-o", MYSERVICE, "-i", "otherpkgdir")
        return MYSERVICE

    def _show_diff(self, stanza: Path) -> None:
        orig = stanza.with_suffix(".def.orig")
        diff = subprocess.run(["diff", "-u", str(orig), str(stanza)], capture_output=True,
                              text=True)  # fmt: skip
        self.terminal.line(f"$ diff -u {orig} {stanza}")
        for line in diff.stdout.splitlines():
            self.terminal.line(line)

    def attribute(self, image: str, name: str) -> str:
        shown = self.run("lsdef", "-t", "osimage", "-o", image, "-i", name, quiet=True)
        for line in shown.splitlines():
            key, _, value = line.strip().partition("=")
            if key == name:
                return value
        raise DemoError(f"osimage {image} has no {name}")

    def bundle(self, image: str) -> None:
        with self.phase("xcatd into the otherpkgdir (the seed's xcat-core and xcat-dep)"):
            wheels = Path(self.attribute(image, "otherpkgdir")) / "xcat/wheels"
            self.run("xcatd", "bundle", str(wheels))

    def genimage(self, image: str) -> Path:
        with self.phase(f"genimage {image}"):
            self.run("genimage", image)
        return Path(self.attribute(image, "rootimgdir")) / "rootimg"

    def chroot_steps(self, rootimg: Path) -> None:
        with self.phase("The seed's chroot steps"):
            self.note("DHCP off until xcatd has configured it (the seed's chkconfig dhcpd off)")
            self.run("chroot", str(rootimg), "systemctl", "disable", DHCP_SERVICE)
            self.note("/install exported read-only, for NFS hybrid mode")
            exports = rootimg / "etc/exports"
            self.terminal.line(f"$ echo {shlex.quote(EXPORTS)} > {exports}")
            exports.write_text(EXPORTS + "\n")

    def packimage(self, image: str) -> None:
        with self.phase(f"packimage {image}"):
            self.note("zstd: unpacked by the node at boot much faster than gzip")
            self.run("packimage", *PACK, image)

    def boot_service_node(self, image: str) -> None:
        service, compute = plan(1, 1)
        _, _, network = service.nics[1]
        with self.phase("The service node boots, enrolls and serves"):
            self.note(f"{service.name}'s second NIC is on the compute network {network}, "
                      f"where it serves {compute.name}")  # fmt: skip
            self.run("chdef", service.name, f"nicips.eth1={compute.xcatmaster}",
                     f"nicnetworks.eth1={network}")  # fmt: skip
            self.run("nodeset", "service", f"osimage={image}")
            self.netboot("service", service.name)
            self.note(f"{service.name} enrolled with the management node for its certificate "
                      "and serves with it:")  # fmt: skip
            self.on(service.ip, "lsxcatd", "-t")
            self.run("nodestat", service.name)

    def compute_image(self) -> None:
        with self.phase(f"The compute image, {COMPUTE}"):
            self.run("genimage", COMPUTE)
            self.run("packimage", *PACK, COMPUTE)

    def boot_compute_node(self) -> None:
        service, compute = plan(1, 1)
        with self.phase(f"The compute node boots, served by {service.name}"):
            self.note(f"{service.name} starts its own DHCP service, on both its networks:")
            self.run("makedhcp", "-n")
            self.note(f"nodeset runs on {service.name}, which copies the image from the "
                      "management node:")  # fmt: skip
            self.run("nodeset", compute.name, f"osimage={COMPUTE}")
            self.netboot(compute.name, compute.name)
            self.note(f"nodestat asks {service.name} for {compute.name}, which it reaches on "
                      "its compute network, and probes the rest itself:")  # fmt: skip
            self.run("nodestat", f"{service.name},{compute.name}")

    def on(self, address: str, *argv: str) -> str:
        """A client command sent to the xcatd at `address` in the lab's
        network (a service node's) instead of the management node's."""
        there = f"{address}:{DAEMON_PORT}"
        shown = f"XCATHOST={there} {shlex.join(argv)}    # inside the lab's network"
        return self.run(*argv, inside=True, env={"XCATHOST": there}, shown=shown)

    def netboot(self, noderange: str, node: str) -> None:
        """rnetboot `noderange`, then `node`'s console (rcons) until the node
        reports `booted`."""
        self.run("rnetboot", noderange)
        label = f"rcons {node}"
        self.terminal.line(f"$ {label}    # its console while it boots (Ctrl-E c . leaves it)")
        console = subprocess.Popen([self._resolve("rcons"), node], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   env=self._env(None))  # fmt: skip
        started = time.monotonic()
        try:
            self.stream(console, f"{node} booting", idle=lambda: self._booted(node, started),
                        every=POLL_STATUS)  # fmt: skip
        finally:
            console.terminate()
            console.wait()
        self.terminal.line(f"# {node} reported 'booted' {time.monotonic() - started:.0f} s "
                           "after rnetboot")  # fmt: skip
        self.run("lsdef", node, "-i", "status")

    def _booted(self, node: str, started: float) -> bool:
        shown = self.run("nodels", node, "nodelist.status", quiet=True)
        state = shown.strip().partition(": ")[2]
        if state == "failed":
            raise DemoError(f"{node} reported 'failed': see xcatd lab status for its console log")
        if time.monotonic() - started > BOOT_LIMIT:
            raise DemoError(f"{node} did not report 'booted' within {BOOT_LIMIT:.0f} s "
                            f"(its status: {state or 'none'})")  # fmt: skip
        return state == "booted"

    def summary(self) -> None:
        self.terminal.line()
        self.terminal.line("== Phase times")
        for number, phase in enumerate(self.phases, 1):
            self.terminal.line(f"{number:>3}. {phase.title:<66} {phase.seconds:>5.0f} s")
        total = sum(phase.seconds for phase in self.phases)
        self.terminal.line(f"     {'Total':<66} {total:>5.0f} s ({total / 60:.1f} min)")
        self.terminal.line()
        for line in next_steps(self.options):
            self.terminal.line(line)


def edited(stanza: str) -> str:
    """The seed's edit of `lsdef -z`'s stanza: the new name, rootimgdir with
    it instead of `service`, and the kernel option (xCAT's addkcmdline)."""
    lines = stanza.splitlines(keepends=True)
    out = []
    for line in lines:
        if line == f"{SERVICE}:\n":
            line = f"{MYSERVICE}:\n"
        elif line.strip().startswith("rootimgdir=") and line.rstrip().endswith("/service"):
            line = line.rstrip()[: -len("service")] + "myservice\n"
        out.append(line)
    if not any(line == f"{MYSERVICE}:\n" for line in out):
        raise DemoError(f"lsdef -z printed no stanza of {SERVICE}")
    return "".join(out).rstrip("\n") + f"\n    addkcmdline={KERNEL_OPTIONS}\n"


def next_steps(options: Options) -> Iterator[str]:
    root = "" if options.root == DEFAULT_ROOT else f" --root {options.root}"
    yield "The lab is left running. Try, after the export line above:"
    yield "  rcons sn1                 the service node's console (Ctrl-E c . leaves it)"
    yield "  rpower cn1 stat; rpower cn1 reset"
    yield "  lsdef sn1; lsdef -t osimage -l " + MYSERVICE
    yield f"  xcatd lab status{root}     machines, BMCs, addresses, console logs"
    yield f"  xcatd lab down{root}       remove everything the lab made"


def demo(options: Options, out: TextIO | None = None) -> None:
    """Walk the seed on a new lab; DemoError (the lab left up) if a step fails."""
    if options.iso is not None and not options.iso.is_file():
        raise DemoError(f"{options.iso} is not a file: give a Debian 12 ISO with --iso")
    walk = Walk(options, Terminal(out or sys.stdout))
    try:
        walk.walk()
    except DemoError as exc:
        if walk.client is None:  # the lab did not come up
            raise
        root = "" if options.root == DEFAULT_ROOT else f" --root {options.root}"
        raise DemoError(f"{exc}; the lab is left up to look at: xcatd lab status{root}, "
                        f"xcatd lab down{root}") from None  # fmt: skip
