"""A Redfish BMC in front of a real virtual machine: sushy-tools' emulator
(`sushy-emulator`, in .venv-sushy made by .ci/install) over libvirt, with a
`type='qemu'` domain whose NIC is on a test network's bridge and whose disk
only prints that it booted (DISK_BOOTED, on its serial console).

    with network(tmp) as net, redfish_bmc(net, tmp, mac) as bmc:
        bmc.state()                    # libvirt's word: 'shut off', 'running'
        net.start(dnsmasq ...)         # sees the domain's DHCP when it netboots

libvirtd and virtlogd run inside the network namespace (so the domain's tap
is on the bridge there), started here and stopped on leaving, with the
domain undefined; a libvirtd already running elsewhere could not reach the
bridge, so it is refused in one line.  The emulator serves HTTPS (a
self-signed certificate, as BMCs have) with basic authentication from a
bcrypt htpasswd file, and shows only this domain: a BMC of one machine.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .netboot import Network
from .waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
EMULATOR_VENV = ROOT / ".venv-sushy"
VIRSH = ["virsh", "-q", "-c", "qemu:///system"]
PORT = 8443
USER, PASSWORD = "admin", "redfish-secret"
# What libvirt's privileged daemons need and a container-like machine may lack.
LIBVIRT_DIRS = ("/var/log/libvirt/qemu", "/var/lib/libvirt/qemu", "/var/cache/libvirt")
DOMAIN = """\
<domain type='qemu'>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <bios useserial='yes'/>
  </os>
  <features><acpi/></features>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{disk}'/>
      <target dev='hda' bus='ide'/>
      <boot order='1'/>
    </disk>
    <interface type='bridge'>
      <source bridge='{bridge}'/>
      <mac address='{mac}'/>
      <model type='e1000'/>
    </interface>
    <serial type='file'><source path='{console}'/></serial>
  </devices>
</domain>
"""
BCRYPT = (
    "import bcrypt, sys; print(bcrypt.hashpw(sys.argv[1].encode(), bcrypt.gensalt(4)).decode())"
)
# The disk's boot sector: prints DISK_BOOTED through the BIOS (which SeaBIOS
# copies to the serial port), then stops.  xor ax,ax; mov ds,ax; xor bx,bx;
# mov si,message; next: lodsb; or al,al; jz done; mov ah,0Eh; int 10h;
# jmp next; done: jmp done.
DISK_BOOTED = "xcatd: booted from disk"
_PRINT = bytes.fromhex("31c08ed831dbbe167cac08c07406b40ecd10ebf5ebfe")
BOOT_SECTOR = (_PRINT + DISK_BOOTED.encode() + b"\r\n\0").ljust(510, b"\0") + b"\x55\xaa"
EMULATOR_CONFIG = """\
SUSHY_EMULATOR_LISTEN_IP = {address!r}
SUSHY_EMULATOR_LISTEN_PORT = {port}
SUSHY_EMULATOR_SSL_CERT = {cert!r}
SUSHY_EMULATOR_SSL_KEY = {key!r}
SUSHY_EMULATOR_AUTH_FILE = {users!r}
SUSHY_EMULATOR_LIBVIRT_URI = 'qemu:///system'
SUSHY_EMULATOR_ALLOWED_INSTANCES = [{uuid!r}]
SUSHY_EMULATOR_BOOT_LOADER_MAP = {{
    'UEFI': {{'x86_64': {uefi_code!r}}}, 'Legacy': {{'x86_64': None}}
}}
SUSHY_EMULATOR_SECURE_BOOT_DISABLED_NVRAM = {uefi_vars!r}
"""
# Debian's OVMF (package ovmf), what the BMC boots the machine with in UEFI
# mode (rsetboot -u); without secure boot, which would need a q35 machine.
UEFI_CODE, UEFI_VARS = "/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"


@dataclass
class RedfishBmc:
    address: str
    port: int
    domain: str
    console: Path  # the domain's serial port

    def state(self) -> str:
        """The domain's state as libvirt says it: 'running', 'shut off'."""
        return virsh("domstate", self.domain).strip()

    def console_text(self) -> str:
        return self.console.read_text(errors="replace") if self.console.exists() else ""

    def domain_id(self) -> str:
        """The running domain's id, new at each start ('-' when off)."""
        return virsh("domid", self.domain).strip()

    def wait_state(self, wanted: str, timeout: float = 30) -> None:
        wait_for(lambda: self.state() == wanted, lambda: f"{self.domain} {wanted}", timeout)


def virsh(*args: str) -> str:
    result = subprocess.run([*VIRSH, *args], capture_output=True, text=True)
    assert result.returncode == 0, f"virsh {' '.join(args)}: {result.stderr}"
    return result.stdout


def _libvirtd_running() -> str:
    found = subprocess.run(["pgrep", "-a", "-x", "libvirtd"], capture_output=True, text=True)
    return found.stdout.strip()


@contextmanager
def redfish_bmc(net: Network, workdir: Path, mac: str) -> Iterator[RedfishBmc]:
    """A powered-off domain with `mac` on the network's bridge, behind a
    Redfish BMC at net.server:PORT (credentials USER, PASSWORD)."""
    running = _libvirtd_running()
    assert not running, (
        f"libvirtd already runs ({running}): the Redfish tests run their own in their network "
        "namespace; stop it first"
    )
    for directory in LIBVIRT_DIRS:
        Path(directory).mkdir(parents=True, exist_ok=True)
    net.start(["virtlogd"], "virtlogd.log")
    libvirtd = net.start(["libvirtd"], "libvirtd.log")
    wait_for(
        lambda: subprocess.run([*VIRSH, "version"], capture_output=True).returncode == 0,
        lambda: f"libvirtd answering: {libvirtd.tail()}",
        timeout=30,
    )
    name, identity = f"xcatd-redfish-{os.getpid()}", str(uuid.uuid4())
    console, disk = workdir / "domain-console.log", workdir / "disk.raw"
    disk.write_bytes(BOOT_SECTOR.ljust(1 << 20, b"\0"))
    definition = workdir / "domain.xml"
    definition.write_text(
        DOMAIN.format(
            name=name, uuid=identity, bridge=net.bridge, mac=mac, console=console, disk=disk
        )
    )
    virsh("define", str(definition))
    try:
        _start_emulator(net, workdir, identity)
        yield RedfishBmc(net.server, PORT, name, console)
    finally:
        subprocess.run([*VIRSH, "destroy", name], capture_output=True)
        virsh("undefine", "--nvram", name)  # and its UEFI variables, made by rsetboot -u
        Path(f"/var/log/libvirt/qemu/{name}.log").unlink(missing_ok=True)


def _start_emulator(net: Network, workdir: Path, identity: str) -> None:
    cert, key, users = workdir / "bmc-cert.pem", workdir / "bmc-key.pem", workdir / "htpasswd"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=bmc"],
        check=True, capture_output=True,
    )  # fmt: skip
    hashed = subprocess.run(
        [EMULATOR_VENV / "bin/python", "-c", BCRYPT, PASSWORD],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    users.write_text(f"{USER}:{hashed}\n")
    config = workdir / "emulator.conf"
    config.write_text(
        EMULATOR_CONFIG.format(
            address=net.server, port=PORT, cert=str(cert), key=str(key), users=str(users),
            uuid=identity, uefi_code=UEFI_CODE, uefi_vars=UEFI_VARS,
        )
    )  # fmt: skip
    emulator = net.start([EMULATOR_VENV / "bin/sushy-emulator", "--config", config], "bmc.log")
    emulator.wait_for(f"Running on https://{net.server}:{PORT}", timeout=30)
