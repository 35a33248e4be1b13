"""The per-node files network boot loaders ask for, rendered as text.

Each boot loader fetches a file named after the node, its MAC or its IP
address from the TFTP (or HTTP) server: iPXE (xCAT's "xnba") a script,
GRUB2, pxelinux and petitboot a configuration.  The names, links and
contents follow xCAT's, so nodes set up by xCAT boot the same way:

    xnba       xcat/xnba/nodes/<node>, and <node>.uefi for UEFI firmware
    grub2      boot/grub2/<node>, links grub.cfg-01-<mac> and grub.cfg-<HEXIP>
    pxe        pxelinux.cfg/<node>, link pxelinux.cfg/<HEXIP>
    petitboot  petitboot/<node>, link <hexip> in the TFTP root

On x86 the firmware loads iPXE first whatever the node's loader (dnsmasq
cannot give nodes different programs, see dhcp.py), so pxe and grub2 nodes
get iPXE scripts too, which chain pxelinux or GRUB2 over TFTP; those then
read the node's own configuration.  Every file starts with a `#<state>`
line (`#netboot debian12-x86_64-service`, `#boot`, `#offline`), which
`nodeset stat` reads back.  Pure functions: what to write where, relative
to tftpdir; files.py does the writing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

IPXE_SCRIPTS = "xcat/xnba/nodes"
IPXE_ARCHES = ("x86_64",)  # Debian's ipxe package has x86 programs only
GRUB2_CONFIGS = "boot/grub2"
PXELINUX_CONFIGS = "pxelinux.cfg"
PETITBOOT_CONFIGS = "petitboot"
# Where the links by MAC or IP address are ("" is the TFTP root, petitboot's).
LINK_DIRECTORIES = (GRUB2_CONFIGS, PXELINUX_CONFIGS, "")


@dataclass(frozen=True)
class Kernel:
    """What a node boots: kernel and initrd (paths under tftpdir) and its command line."""

    kernel: str
    initrd: str
    cmdline: str


@dataclass(frozen=True)
class Boot:
    """One node's next network boot: `kernel` None means "leave the network boot"
    (boot, offline), which every loader says in its own way."""

    node: str
    mac: str
    ip: str
    arch: str
    state: str
    kernel: Kernel | None
    http: str  # tftpdir over HTTP: http://<imgsrv>:<httpport><tftpdir>
    tftp: str  # the TFTP server, for loaders that fetch over TFTP


@dataclass(frozen=True)
class BootFile:
    """A file (`text`) or a relative symbolic link (`link`) at `path` under tftpdir."""

    path: str
    text: str | None = None
    link: str | None = None


@dataclass(frozen=True)
class Loader:
    name: str
    arches: tuple[str, ...]  # the architectures whose firmware can run it
    directory: str  # where the node's own file is: <directory>/<node>
    files: Callable[[Boot], list[BootFile]]  # the node's own file first

    def config_path(self, node: str) -> str:
        return f"{self.directory}/{node}"


def hex_ip(ip: str) -> str:
    """10.0.0.5 -> 0A000005, the name pxelinux, GRUB2 and petitboot look for."""
    return "".join(f"{int(part):02X}" for part in ip.split("."))


def state_of(text: str) -> str | None:
    """The state a boot file was written for: its first `#` line that is not `#!`."""
    for line in text.splitlines():
        if line.startswith("#") and not line.startswith("#!"):
            return line[1:].strip()
    return None


# Names boot loaders look for on their own: a node's file by such a name
# would be read by other nodes.
_RESERVED = tuple(
    (re.compile(pattern), why)
    for pattern, why in (
        ("default", "pxelinux reads pxelinux.cfg/default for nodes without a file"),
        (r"grub\.cfg.*", "GRUB2 reads its grub.cfg* files"),
        (r".*\.uefi", "it is the name of an iPXE script for UEFI firmware"),
        (r"[0-9A-Fa-f]{8}", "pxelinux, GRUB2 and petitboot read files named by hex IP address"),
        (r"01(-[0-9A-Fa-f]{2}){6}", "pxelinux reads files named 01-<mac>"),
    )
)


def reserved(node: str) -> str | None:
    """Why `node` cannot name a boot file, when a boot loader looks for that name itself."""
    for pattern, why in _RESERVED:
        if pattern.fullmatch(node):
            return f"'{node}' cannot name a boot file: {why}; rename the node"
    return None


# -- iPXE ---------------------------------------------------------------------

EXIT = ["exit"]  # iPXE gives the boot back to the firmware's next device


def grub2_program(arch: str) -> str:
    """The GRUB2 network image of an architecture, under tftpdir (xCAT's names)."""
    return f"{GRUB2_CONFIGS}/grub2.{'ppc' if arch.startswith('ppc') else arch}"


def _ipxe(boot: Boot, commands: list[str]) -> str:
    return "\n".join(["#!ipxe", f"#{boot.state}", *commands]) + "\n"


Commands = Callable[[Kernel], list[str]]  # an iPXE script's commands that boot the kernel


def _ipxe_scripts(boot: Boot, bios: Commands, uefi: Commands) -> list[BootFile]:
    """The node's iPXE script, and its variant for UEFI firmware: both exit when
    the node boots no kernel."""
    path = f"{IPXE_SCRIPTS}/{boot.node}"
    kernel = boot.kernel
    bios_commands, uefi_commands = (EXIT, EXIT) if kernel is None else (bios(kernel), uefi(kernel))
    return [
        BootFile(path, _ipxe(boot, bios_commands)),
        BootFile(f"{path}.uefi", _ipxe(boot, uefi_commands)),
    ]


def _kernel_commands(boot: Boot, kernel: Kernel, *, uefi: bool) -> list[str]:
    # An EFI-stub kernel loads its initrd by name, from iPXE's virtual files.
    args = kernel.cmdline + (" initrd=initrd" if uefi else "")
    return [
        f"imgfetch -n kernel {boot.http}/{kernel.kernel}",
        "imgload kernel",
        f"imgargs kernel {args}",
        f"imgfetch -n initrd {boot.http}/{kernel.initrd}",
        "imgexec kernel",
    ]


def _xnba_files(boot: Boot) -> list[BootFile]:
    return _ipxe_scripts(
        boot,
        lambda kernel: _kernel_commands(boot, kernel, uefi=False),
        lambda kernel: _kernel_commands(boot, kernel, uefi=True),
    )


def _unsupported(loader: str, firmware: str) -> list[str]:
    return [f"echo netboot={loader} cannot boot {firmware} firmware", "exit"]


# -- GRUB2 --------------------------------------------------------------------

GRUB2_ENTRY = "xCAT OS Deployment"


def grub2_config(boot: Boot) -> str:
    lines = [f"#{boot.state}"]
    if boot.kernel is None:
        lines.append("exit")  # back to the firmware, which boots the next device
    else:
        kernel = boot.kernel
        lines += [
            "set timeout=5",
            f'set default="{GRUB2_ENTRY}"',
            f'menuentry "{GRUB2_ENTRY}" {{',
            "    insmod http",
            "    insmod tftp",
            f"    set root=tftp,{boot.tftp}",
            "    echo Loading Install kernel ...",
            f"    linux /{kernel.kernel} {kernel.cmdline}",
            "    echo Loading initial ramdisk ...",
            f"    initrd /{kernel.initrd}",
            "}",
        ]
    return "\n".join(lines) + "\n"


def _grub2_files(boot: Boot) -> list[BootFile]:
    mac = boot.mac.lower().replace(":", "-")
    files = [
        BootFile(f"{GRUB2_CONFIGS}/{boot.node}", grub2_config(boot)),
        BootFile(f"{GRUB2_CONFIGS}/grub.cfg-01-{mac}", link=boot.node),
        BootFile(f"{GRUB2_CONFIGS}/grub.cfg-{hex_ip(boot.ip)}", link=boot.node),
    ]
    if boot.arch in IPXE_ARCHES:
        chain = [f"chain tftp://{boot.tftp}/{grub2_program(boot.arch)}"]
        files += _ipxe_scripts(boot, lambda _: _unsupported("grub2", "BIOS"), lambda _: chain)
    return files


# -- pxelinux -----------------------------------------------------------------


def pxelinux_config(boot: Boot) -> str:
    lines = [f"#{boot.state}", "DEFAULT xCAT", "LABEL xCAT"]
    if boot.kernel is None:
        lines.append(" LOCALBOOT 0")  # back to the BIOS, which boots the next device
    else:
        kernel = boot.kernel
        # Paths relative to pxelinux.0's directory, the TFTP root.
        lines += [f" KERNEL {kernel.kernel}", f" APPEND initrd={kernel.initrd} {kernel.cmdline}"]
    return "\n".join(lines) + "\n"


def _pxelinux_files(boot: Boot) -> list[BootFile]:
    # pxelinux run by iPXE finds its config by the DHCP options iPXE sets (209, 210).
    chain = [
        f"set 209:string {PXELINUX_CONFIGS}/{boot.node}",
        f"set 210:string tftp://{boot.tftp}/",
        f"chain tftp://{boot.tftp}/pxelinux.0",
    ]
    return [
        BootFile(f"{PXELINUX_CONFIGS}/{boot.node}", pxelinux_config(boot)),
        BootFile(f"{PXELINUX_CONFIGS}/{hex_ip(boot.ip)}", link=boot.node),
        *_ipxe_scripts(boot, lambda _: chain, lambda _: _unsupported("pxe", "UEFI")),
    ]


# -- petitboot ----------------------------------------------------------------


def petitboot_config(boot: Boot) -> str:
    lines = [f"#{boot.state}"]
    if boot.kernel is not None:  # no entry: petitboot boots from disk
        kernel = boot.kernel
        lines += [
            "default xCAT",
            "label xCAT",
            f"\tkernel {boot.http}/{kernel.kernel}",
            f"\tinitrd {boot.http}/{kernel.initrd}",
            f'\tappend "{kernel.cmdline}"',
        ]
    return "\n".join(lines) + "\n"


def _petitboot_files(boot: Boot) -> list[BootFile]:
    path = f"{PETITBOOT_CONFIGS}/{boot.node}"
    return [
        BootFile(path, petitboot_config(boot)),
        BootFile(hex_ip(boot.ip).lower(), link=path),
    ]


LOADERS = {
    loader.name: loader
    for loader in (
        Loader("xnba", IPXE_ARCHES, IPXE_SCRIPTS, _xnba_files),
        Loader("grub2", ("x86_64", "aarch64", "ppc64", "ppc64le"), GRUB2_CONFIGS, _grub2_files),
        Loader("pxe", ("x86_64",), PXELINUX_CONFIGS, _pxelinux_files),
        Loader("petitboot", ("ppc64", "ppc64le"), PETITBOOT_CONFIGS, _petitboot_files),
    )
}
DEFAULT = "xnba"


def config_paths(node: str) -> list[str]:
    """Where each loader keeps the node's file: what its links by MAC or IP point to."""
    return [loader.config_path(node) for loader in LOADERS.values()]
