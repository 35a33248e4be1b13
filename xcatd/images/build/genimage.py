"""genimage's build of `<rootimgdir>/rootimg`, whatever the package manager.

    preflight   root, tools, package lists, pkgdir, disk space: refuse early
    lock        <rootimgdir>/.genimage.lock (flock): one build per image
    log         <rootimgdir>/genimage.log: every line of every program
    check       every package the pkglist installs is in the repositories
                (the package manager resolves them all in a scratch root)
    mark        <rootimgdir>/.genimage.incomplete until the very end
    packages    pkglist passes, otherpkgs passes, then (updating an existing
                image, unless --noupdate) an upgrade of everything
    fstab       xCAT's stateless fstab
    units       the boot report unit, a service node's xcatd (bootunits.py)
    postinstall each script: <script> <rootimg> <osvers> <arch> <profile>
    host keys   SSH host keys removed: nodes make their own at boot
    kernel      the kernel version the image holds (or -k's, checked)
    initrd      <rootimgdir>/kernel and initrd-stateless.gz (initrd.py)
    keys        no private key may be left in the image (privatekeys.py)

A new image is built in <rootimgdir>/.rootimg.genimage and renamed to
rootimg once its packages are in, so a half-installed tree is never called
rootimg; the next genimage removes what an interrupted one left there.  On
an existing rootimg genimage updates in place: installs what the lists add
and upgrades the rest; if such an update is interrupted, the image stays
marked incomplete and the next genimage resumes it (dpkg finishes its
interrupted run first): see osimage.py for the files.
`build_initrd` (--onlyinitrd) remakes only the kernel and initrd of a
finished image.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import trio

from ..locks import held
from ..osimage import ImageFiles
from . import bootunits, initrd, pkglist, wheels
from .chroot import Namespace
from .common import BuildError, Output, Spec, image_env, not_found
from .debian import Debian
from .dnf import Dnf
from .privatekeys import private_keys

LOG = "genimage.log"
STAGING = ".rootimg.genimage"
MIN_FREE = 512 << 20  # bytes free on the rootimgdir's disk before a build starts
SHOWN_KEYS = 5  # private key files named in the error
FSTAB = (
    "devpts  /dev/pts devpts   gid=5,mode=620 0 0\n"
    "tmpfs   /dev/shm tmpfs    defaults       0 0\n"
    "proc    /proc    proc     defaults       0 0\n"
    "sysfs   /sys     sysfs    defaults       0 0\n"
    "tmpfs   /tmp     tmpfs    defaults,size=10m             0 2\n"
    "tmpfs   /var/tmp     tmpfs    defaults,size=10m       0 2\n"
    "{profile}_{arch}    /   tmpfs   rw  0 1\n"
)


@dataclass
class Result:
    kernelver: str | None  # the image's kernel, when it has one
    updated: bool  # an existing rootimg was updated (not built anew)


async def build(spec: Spec, output: Output, kernelver: str | None = None) -> Result:
    """Build or update the image; BuildError (or PkglistError) says why not."""
    main, other = await trio.to_thread.run_sync(_read_lists, spec)
    for note in [*main.notes, *(other.notes if other else [])]:
        await output.warning(note)
    other, python_packages = _split_wheels(spec, other)
    with tempfile.TemporaryDirectory(prefix="xcat-genimage-") as work_dir:
        work = Path(work_dir)
        backend = _backend(spec, work, output)
        other_dirs = _other_dirs(spec, other)
        await trio.to_thread.run_sync(preflight, spec, backend.tools(other_dirs))
        with build_lock(spec.files), output.logging_to(spec.rootimgdir / LOG):
            result = await _locked(
                spec, output, backend, (main, other), other_dirs, python_packages, kernelver
            )
            await output.end_phase()
            return result


async def build_initrd(spec: Spec, output: Output, kernelver: str | None = None) -> Result:
    """--onlyinitrd: the kernel and the initrd of a finished image, nothing else."""
    await trio.to_thread.run_sync(preflight, spec, {"unshare": "util-linux"})
    with build_lock(spec.files):
        if spec.files.incomplete():
            raise BuildError(
                f"{spec.rootimg} is not a finished image: run genimage {spec.name} "
                "without --onlyinitrd"
            )
        with output.logging_to(spec.rootimgdir / LOG):
            found = await trio.to_thread.run_sync(kernel_version, spec.rootimg, kernelver)
            await initrd.make(spec, output, found, requested=True)
            await output.end_phase()
    return Result(found, updated=True)


def _backend(spec: Spec, work: Path, output: Output) -> Dnf | Debian:
    return Debian(spec, work, output) if spec.family == "debian" else Dnf(spec, work, output)


def _read_lists(spec: Spec) -> tuple[pkglist.PackageList, pkglist.PackageList | None]:
    main = pkglist.read(spec.pkglist, shipped=spec.shipped)
    other = pkglist.read(spec.otherpkglist, shipped=spec.shipped) if spec.otherpkglist else None
    return main, other


def _other_dirs(spec: Spec, other: pkglist.PackageList | None) -> list[Path]:
    """The otherpkgdir sub-directories the otherpkglist installs from."""
    if other is None or not other.install:
        return []
    return list(dict.fromkeys(_entry_dir(spec, entry) for entry in other.install))


def _entry_dir(spec: Spec, entry: str) -> Path:
    """The otherpkgdir sub-directory an otherpkglist entry installs from."""
    if spec.otherpkgdir is None:
        raise BuildError(f"osimage {spec.name} has an otherpkglist but no otherpkgdir")
    top = spec.otherpkgdir.resolve()
    relative, _ = pkglist.other_package(entry)
    directory = (top / relative).resolve()
    if directory != top and top not in directory.parents:
        raise BuildError(f"otherpkglist entry {entry} leaves otherpkgdir {top}")
    if not directory.is_dir():
        raise BuildError(
            f"otherpkglist entry {entry}: {directory} does not exist (otherpkgdir {top})"
        )
    return directory


def _split_wheels(
    spec: Spec, other: pkglist.PackageList | None
) -> tuple[pkglist.PackageList | None, list[tuple[Path, str]]]:
    if other is None or not other.install:
        return other, []
    return wheels.split(other, partial(_entry_dir, spec))


def preflight(spec: Spec, tools: dict[str, str], euid: int | None = None) -> None:
    """Refuse at once what cannot work: not root, a missing tool, no disk space."""
    euid = os.geteuid() if euid is None else euid
    if euid != 0:
        raise BuildError(
            f"genimage must run as root: xcatd runs as uid {euid}, and package managers "
            "need root to build an image"
        )
    for tool, package in tools.items():
        if shutil.which(tool) is None:
            raise BuildError(f"{tool} is not installed: install the Debian package {package}")
    try:
        spec.rootimgdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BuildError(f"cannot create rootimgdir {spec.rootimgdir}: {exc.strerror}") from None
    stats = os.statvfs(spec.rootimgdir)
    free = stats.f_bavail * stats.f_frsize
    if free < MIN_FREE:
        raise BuildError(
            f"not enough space on the disk of {spec.rootimgdir}: {free >> 20} MiB free, "
            f"genimage needs at least {MIN_FREE >> 20} MiB"
        )


@contextlib.contextmanager
def build_lock(files: ImageFiles) -> Iterator[None]:
    """Held for the whole build; a second genimage of the same image, from
    this daemon or any other process, is refused at once."""
    with held(
        files.build_lock,
        BuildError(
            f"another genimage or a packimage is using {files.rootimg}; wait for it to finish"
        ),
    ):
        yield


async def _locked(
    spec: Spec,
    output: Output,
    backend: Dnf | Debian,
    lists: tuple[pkglist.PackageList, pkglist.PackageList | None],
    other_dirs: list[Path],
    python_packages: list[tuple[Path, str]],
    kernelver: str | None,
) -> Result:
    main, other = lists
    staging = spec.rootimgdir / STAGING
    marker = spec.files.marker
    if staging.exists():
        await output.phase(f"Removing the unfinished image an interrupted genimage left: {staging}")
        await trio.to_thread.run_sync(_remove_tree, staging)
    updating = spec.rootimg.is_dir()
    resuming = updating and marker.exists()
    if resuming:
        await output.phase(f"Resuming the interrupted genimage of {spec.rootimg}")
    elif updating:
        await output.phase(f"Updating the existing image {spec.rootimg}")
    else:
        await output.phase(f"Building a new image in {spec.rootimg}")
    root = spec.rootimg if updating else staging
    binds = await trio.to_thread.run_sync(backend.prepare, other_dirs)
    # Checked before the image is marked: a finished image whose new
    # pkglist names a missing package is still finished.
    await check_packages(spec, output, backend, main)
    marker.write_text(f"genimage of {spec.name} started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    ns = Namespace(root, binds)
    try:
        for directory in other_dirs:
            await backend.index(directory, Namespace(Path("/")))
        if resuming:
            await backend.resume(root, ns)
        await _passes(spec, output, backend, root, ns, main, fresh=not updating)
        if other is not None:
            await _passes(spec, output, backend, root, ns, other, fresh=False, other=True)
        if python_packages:
            await wheels.install(root, python_packages, output)
        if updating and not spec.noupdate:
            await output.phase("Upgrading the packages of the image")
            await backend.upgrade(root, ns)
        await backend.finish(root, ns)
    except BaseException:
        if not updating:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(_remove_tree, staging)
        raise
    if not updating:
        os.rename(staging, spec.rootimg)
    ns = Namespace(spec.rootimg, [])
    await output.phase("Writing /etc/fstab")
    await trio.to_thread.run_sync(write_fstab, spec)
    await bootunits.install(spec, output)
    for script in spec.postinstall:
        await _postinstall(spec, output, script, ns)
    await bootunits.remove_ssh_host_keys(spec, output)
    found = await trio.to_thread.run_sync(kernel_version, spec.rootimg, kernelver)
    await initrd.make(spec, output, found)
    await refuse_private_keys(spec, output)
    marker.unlink()
    return Result(found, updating)


async def check_packages(
    spec: Spec, output: Output, backend: Dnf | Debian, lists: pkglist.PackageList
) -> None:
    """Every package the pkglist installs, in any pass, is in the
    repositories: a name that is not fails now, in seconds, not after the
    first pass has built the image (the check costs a second or two on
    local media, an index download on a network mirror)."""
    names = lists.install
    if not names:
        return
    await output.phase(
        f"Checking that the {len(names)} packages of the pkglist are in the repositories"
    )
    found = await backend.missing(names)
    # In the order of the lists (dnf says groups first).
    missing = [n for n in names if n in found] + [n for n in found if n not in names]
    if missing:
        raise not_found([f"{name} ({_listed_at(lists, name)})" for name in missing], spec.name)


def _listed_at(lists: pkglist.PackageList, name: str) -> str:
    """`file:line` of the pkglist line that names the package (it may be an
    included file), or the files when no line does (a generated name)."""
    for path in lists.files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if not line.lstrip().startswith("#") and name in line.split():
                return f"{path}:{number}"
    return ", ".join(str(path) for path in lists.files)


async def refuse_private_keys(spec: Spec, output: Output) -> None:
    """Anyone who can download the image can read it: a private key in it is
    no longer private.  The image stays incomplete, so packimage refuses it."""
    await output.phase(f"Looking for private keys in {spec.rootimg}")
    found = await trio.to_thread.run_sync(private_keys, spec.rootimg)
    if found:
        shown = ", ".join(f"/{path.relative_to(spec.rootimg)}" for path in found[:SHOWN_KEYS])
        more = ", ..." if len(found) > SHOWN_KEYS else ""
        raise BuildError(
            f"the image holds {len(found)} private key file(s), which anyone who can "
            f"download it can read: {shown}{more}; remove them (in a postinstall script)"
        )


async def _passes(
    spec: Spec,
    output: Output,
    backend: Dnf | Debian,
    root: Path,
    ns: Namespace,
    lists: pkglist.PackageList,
    fresh: bool,
    other: bool = False,
) -> None:
    what = "Other packages" if other else "Packages"
    name = (lambda e: pkglist.other_package(e)[1]) if other else (lambda e: e)
    total = len(lists.passes)
    if fresh and not lists.passes:
        raise BuildError(f"the pkglist of {spec.name} installs nothing: {spec.pkglist}")
    for number, step in enumerate(lists.passes, 1):
        count = f", pass {number} of {total}" if total > 1 else ""
        installs = [name(e) for e in step.install]
        removals = [name(e) for e in step.remove_before]
        if removals and not (fresh and number == 1):
            await output.phase(f"{what}{count}: removing {' '.join(removals)}")
            await backend.remove(root, removals, step.env, ns)
        if installs or (fresh and number == 1):
            await output.phase(f"{what}{count}: installing {' '.join(installs)}")
            if fresh and number == 1:
                await backend.create(root, step, ns)
            else:
                await backend.install(root, installs, step.env, ns, other)
        if step.remove_after:
            after = [name(e) for e in step.remove_after]
            await output.phase(f"{what}{count}: removing {' '.join(after)}")
            await backend.remove(root, after, step.env, ns)


def write_fstab(spec: Spec) -> None:
    etc = spec.rootimg / "etc"
    etc.mkdir(exist_ok=True)
    fstab = etc / "fstab"
    if fstab.is_symlink():
        fstab.unlink()  # never write through a link out of the image
    fstab.write_text(FSTAB.format(profile=spec.profile, arch=spec.arch))


async def _postinstall(spec: Spec, output: Output, script: Path, ns: Namespace) -> None:
    if not script.is_file():
        raise BuildError(f"postinstall script {script} does not exist")
    if not os.access(script, os.X_OK):
        raise BuildError(f"postinstall script {script} is not executable (chmod +x {script})")
    await output.phase(f"Running postinstall script {script}")
    env = image_env(**postinstall_environment(spec))
    argv = [str(script), str(spec.rootimg), spec.osvers, spec.arch, spec.profile]
    rc = await output.run(argv, ns, "host", env, show=True)  # the administrator's own words
    if rc != 0:
        raise BuildError(f"postinstall script {script} failed with exit code {rc}")


def postinstall_environment(spec: Spec) -> dict[str, str]:
    return {
        "IMG_NAME": spec.name,
        "IMG_ARCH": spec.arch,
        "IMG_OSVER": spec.osvers,
        "IMG_KERNELVERSION": kernel_version(spec.rootimg, None) or "",
        "IMG_PROFILE": spec.profile,
        "IMG_PKGLIST": spec.pkglist,
        "IMG_PKGDIR": ",".join(spec.pkgdir),
        "IMG_OTHERPKGLIST": spec.otherpkglist,
        "IMG_OTHERPKGDIR": str(spec.otherpkgdir or ""),
        "IMG_ROOTIMGDIR": str(spec.rootimgdir),
    }


def kernel_version(rootimg: Path, wanted: str | None) -> str | None:
    """`wanted` if the image has it (else BuildError), or the newest kernel in
    the image (its /lib/modules, or /boot/vmlinuz-*), or None."""
    found = {p.name for p in (rootimg / "lib/modules").glob("*") if p.is_dir()}
    found |= {p.name.removeprefix("vmlinuz-") for p in (rootimg / "boot").glob("vmlinuz-*")}
    if wanted is not None:
        if wanted not in found:
            have = ", ".join(sorted(found, key=_version_key)) or "none"
            raise BuildError(f"kernel {wanted} (-k) is not in the image; it has: {have}")
        return wanted
    return max(found, key=_version_key) if found else None


def _version_key(version: str) -> list[tuple[int, int | str]]:
    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"[.\-+~_]", version)]


def _remove_tree(path: Path) -> None:
    def on_error(function, name, exc_info):  # a read-only leftover: make it writable
        error = exc_info[1]
        if isinstance(error, OSError) and error.errno == errno.EACCES:
            os.chmod(os.path.dirname(name), 0o755)
            function(name)
            return
        raise BuildError(f"cannot remove {name} (left by an unfinished build): {error}")

    shutil.rmtree(path, onerror=on_error)
