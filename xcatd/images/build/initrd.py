"""The kernel and the stateless initrd genimage puts beside the root image.

    <rootimgdir>/kernel              the image's kernel (-k, else its newest)
    <rootimgdir>/initrd-stateless.gz made by the image's own dracut, in the image

The initrd holds this project's dracut module (share/dracut/95xcatd: DHCP,
download of imgurl=, checksum, unpack into a tmpfs, switch root) and only
what it needs: dracut's shell init and network-legacy, no systemd, and of
the kernel's network drivers only those asked for (-n or the osimage's
netdrivers) plus DEFAULT_NETDRIVERS, where the kernel has them.  dracut's
network module would otherwise pull in every wired driver of the kernel
(some 45 MB); the drivers not kept are named to dracut as omitted.

The settings go to dracut in a configuration file left in the module's
directory in the image, so that an administrator can see how the initrd was
made and make it again by hand.  The kernel and the initrd appear
atomically: written beside their place, then renamed.

Making the initrd is most of the time of an update that brings nothing new,
so it is made again only when what it is made from changed: the kernel,
the settings, the module, dracut's configuration in the image and the
image's packages (its programs, libraries, dracut itself).  A digest of
those is kept beside it; --onlyinitrd makes it whatever the digest says.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import trio

from ..osimage import INITRD, KERNEL
from ..rootfiles import (
    RootFileError,
    names_in_image,
    read_in_image,
    remove_in_image,
    write_in_image,
)
from ..shipped import SHARE
from .chroot import Namespace
from .common import BuildError, Output, Spec, image_env

INPUTS = ".initrd-stateless.inputs"  # the digest of what the initrd was made from
PACKAGE_DATABASES = (
    "/var/lib/dpkg/status", "/usr/lib/sysimage/rpm/rpmdb.sqlite", "/var/lib/rpm/rpmdb.sqlite",
    "/var/lib/rpm/Packages",
)  # fmt: skip
DRACUT_CONF, DRACUT_CONF_D = "/etc/dracut.conf", "/etc/dracut.conf.d"
MODULE = SHARE / "dracut/95xcatd"
MODULE_IN_IMAGE = "/usr/lib/dracut/modules.d/95xcatd"
CONF_IN_IMAGE = f"{MODULE_IN_IMAGE}/initrd.conf"
DRACUT_MODULES = ("base", "network-legacy", "xcatd")
# Virtual machines, Intel, Broadcom and Mellanox: what HPC nodes boot from (xCAT's list).
DEFAULT_NETDRIVERS = (
    "virtio_net", "e1000", "e1000e", "igb", "ixgbe", "i40e", "tg3", "bnx2", "bnx2x", "mlx5_core",
)  # fmt: skip
NETWORK_DRIVERS = "kernel/drivers/net/"  # where dracut's network module takes drivers from
_SUFFIX = re.compile(r"\.ko(\.[a-z]+)?$")


def read_first(rootimg: Path, paths: list[str]) -> bytes | None:
    """The first of `paths` the image has as a regular file, read without
    following links (/lib is one in a merged-/usr image: /usr/lib comes first)."""
    for path in paths:
        try:
            found = read_in_image(rootimg, path)
        except RootFileError:
            continue
        if found is not None:
            return found
    return None


def modules_dirs(version: str) -> list[str]:
    return [f"/usr/lib/modules/{version}", f"/lib/modules/{version}"]


@dataclass
class KernelModules:
    """What `modules.dep` and `modules.builtin` of one kernel say."""

    paths: dict[str, str]  # module name -> its file under /lib/modules/<version>
    depends: dict[str, list[str]]  # module name -> the modules it needs
    builtin: set[str]

    @classmethod
    def read(cls, rootimg: Path, version: str) -> KernelModules:
        dirs = modules_dirs(version)
        dep = (read_first(rootimg, [f"{d}/modules.dep" for d in dirs]) or b"").decode()
        builtin = (read_first(rootimg, [f"{d}/modules.builtin" for d in dirs]) or b"").decode()
        paths, depends = {}, {}
        for line in dep.splitlines():
            path, _, needs = line.partition(":")
            paths[module_name(path)] = path
            depends[module_name(path)] = [module_name(n) for n in needs.split()]
        return cls(paths, depends, {module_name(p) for p in builtin.split()})

    def has(self, name: str) -> bool:
        return name in self.paths or name in self.builtin

    def closure(self, names: list[str]) -> set[str]:
        """`names` and every module they need, directly or not."""
        found: set[str] = set()
        waiting = list(names)
        while waiting:
            name = waiting.pop()
            if name not in found:
                found.add(name)
                waiting.extend(self.depends.get(name, []))
        return found


def module_name(path: str) -> str:
    """kernel/drivers/net/virtio_net.ko.xz -> virtio_net (as modprobe spells it)."""
    return _SUFFIX.sub("", path.rsplit("/", 1)[-1]).replace("-", "_")


def network_drivers(requested: list[str], modules: KernelModules, version: str) -> list[str]:
    """The loadable drivers to put in the initrd: all requested ones (each
    must exist), then those of the defaults this kernel has."""
    wanted = [module_name(name) for name in requested]
    missing = [name for name in wanted if not modules.has(name)]
    if missing:
        raise BuildError(
            f"kernel {version} of the image has no network driver {', '.join(missing)} "
            "(-n or the osimage's netdrivers)"
        )
    chosen = dict.fromkeys([*wanted, *DEFAULT_NETDRIVERS])
    return [name for name in chosen if name in modules.paths]  # built-in ones need nothing


def omitted_drivers(kept: list[str], modules: KernelModules) -> list[str]:
    """Every network driver of the kernel that neither `kept` nor what they need names."""
    needed = modules.closure(kept)
    return sorted(
        name
        for name, path in modules.paths.items()
        if path.startswith(NETWORK_DRIVERS) and name not in needed
    )


def dracut_conf(drivers: list[str], omitted: list[str]) -> str:
    return (
        "# Written by genimage: how it makes <rootimgdir>/initrd-stateless.gz, with\n"
        f"#   dracut --force --conf {CONF_IN_IMAGE} --kver <version> <file>\n"
        'hostonly="no"\n'
        'hostonly_cmdline="no"\n'
        f'dracutmodules=" {" ".join(DRACUT_MODULES)} "\n'
        f'add_drivers+=" {" ".join(drivers)} "\n'
        f'omit_drivers+=" {" ".join(omitted)} "\n'
        'compress="gzip"\n'
    )


def has_dracut(rootimg: Path) -> bool:
    return any((rootimg / d / "dracut").is_file() for d in ("usr/bin", "usr/sbin"))


def lacking(rootimg: Path, version: str | None) -> str | None:
    """What the image needs for a kernel and initrd and does not have, or None."""
    if version is None:
        return "the image has no kernel: add the kernel package (linux-image-<arch>, kernel)"
    if not has_dracut(rootimg):
        return "the image has no dracut: add dracut and dracut-network"
    return None


async def make(spec: Spec, output: Output, version: str | None, requested: bool = False) -> None:
    """The kernel and the initrd of the image, `version` its kernel.  An image
    that cannot have them gets a warning; `requested` (--onlyinitrd) makes
    that an error, and the initrd is made even when it is up to date."""
    problem = lacking(spec.rootimg, version)
    if problem is not None:
        if requested:
            raise BuildError(f"{problem} to the pkglist of {spec.name}")
        await output.warning(f"genimage made no {KERNEL} and no {INITRD}: {problem} to its pkglist")
        return
    assert version is not None
    await output.phase(f"Copying kernel {version} to {spec.files.kernel}")
    await trio.to_thread.run_sync(copy_kernel, spec, version)
    await make_initrd(spec, output, version, requested)


def copy_kernel(spec: Spec, version: str) -> None:
    places = [f"/boot/vmlinuz-{version}", *(f"{d}/vmlinuz" for d in modules_dirs(version))]
    kernel = read_first(spec.rootimg, places)
    if kernel is None:
        raise BuildError(
            f"the image has modules for kernel {version} but no /boot/vmlinuz-{version}: "
            "reinstall its kernel package"
        )
    publish(spec.files.kernel, kernel)


async def make_initrd(spec: Spec, output: Output, version: str, always: bool) -> None:
    """dracut, run in the image, with our module and settings put there first
    (unless the initrd is up to date, and not `always`)."""
    modules = await trio.to_thread.run_sync(KernelModules.read, spec.rootimg, version)
    drivers = network_drivers(spec.netdrivers, modules, version)
    conf = dracut_conf(drivers, omitted_drivers(drivers, modules))
    inputs = await trio.to_thread.run_sync(inputs_digest, spec.rootimg, version, conf)
    stamp = spec.rootimgdir / INPUTS
    if not always and spec.files.initrd.exists() and _read(stamp) == inputs:
        await output.phase(
            f"Keeping {spec.files.initrd}: the same kernel, drivers, dracut module "
            "and packages made it"
        )
        return
    await trio.to_thread.run_sync(install_module, spec.rootimg, conf)
    await output.phase(
        f"Making {spec.files.initrd} with dracut for kernel {version}, network "
        f"drivers {' '.join(drivers)}"
    )
    made = f"/tmp/xcatd-{INITRD}.{uuid.uuid4().hex[:8]}"
    command = ["dracut", "--force", "--conf", CONF_IN_IMAGE, "--kver", version, made]
    try:
        status = await output.run(command, Namespace(spec.rootimg), "chroot", image_env())
        if status != 0:
            raise BuildError(f"dracut failed with exit code {status} making {INITRD}")
        await trio.to_thread.run_sync(take_initrd, spec, made)
        stamp.write_text(inputs)
    finally:
        remove_in_image(spec.rootimg, made)


def inputs_digest(rootimg: Path, version: str, conf: str) -> str:
    """The digest of what the initrd is made from (see the module's docstring)."""
    digest = hashlib.sha256(f"{version}\0{conf}\0".encode())
    for source in sorted(MODULE.iterdir()):
        digest.update(source.read_bytes())
    confs = [f"{DRACUT_CONF_D}/{name}" for name in names_in_image(rootimg, DRACUT_CONF_D)]
    for path in [*PACKAGE_DATABASES, DRACUT_CONF, *confs]:
        digest.update(path.encode() + b"\0" + (read_first(rootimg, [path]) or b"") + b"\0")
    return digest.hexdigest()


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def take_initrd(spec: Spec, made: str) -> None:
    initrd = read_in_image(spec.rootimg, made)
    if initrd is None:
        raise BuildError(f"dracut made no {made} in the image")
    publish(spec.files.initrd, initrd)


def install_module(rootimg: Path, conf: str) -> None:
    """This project's dracut module into the image's dracut, with `conf`.
    (dracut includes it only when asked: the image's own initrds never have it.)"""
    try:
        for source in sorted(MODULE.iterdir()):  # shell scripts, all of them
            write_in_image(rootimg, f"{MODULE_IN_IMAGE}/{source.name}", source.read_bytes(), 0o755)
        write_in_image(rootimg, CONF_IN_IMAGE, conf.encode(), 0o644)
    except RootFileError as exc:
        raise BuildError(str(exc)) from None


def publish(final: Path, data: bytes) -> None:
    """`data` as `final` (mode 0644, served to nodes), complete or not at all."""
    temp = final.with_name(f".{final.name}.genimage")
    temp.write_bytes(data)
    os.chmod(temp, 0o644)
    os.replace(temp, final)
