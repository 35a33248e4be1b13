"""The Debian and Ubuntu backend: `mmdebstrap`, then apt in the image.

The first install pass is the mmdebstrap run itself (variant `minbase`
unless that pass sets `#ENV:MMDEBSTRAP_VARIANT=<variant>#`); every later
pass, the otherpkgs and the update run `apt-get` inside the image, with its
/proc, /sys and /dev and the package directories mounted in a private
namespace (see chroot.py), and services kept from starting by a
policy-rc.d that is removed afterwards.

Package sources: a copycds tree (or any local Debian archive with
dists/<codename>/Release) is used as a `file:` mirror, marked
[trusted=yes] only when it carries no signature (InRelease, Release.gpg) -
signed media are verified with the host's keyrings; a URL is a network
mirror; with no pkgdir at all, the host's own apt sources are used.
otherpkgdir sub-directories holding .deb files become flat local
repositories, indexed with apt-ftparchive.

Before anything is installed, `missing` has apt resolve every package of
the pkglist from those same sources, in an apt state of its own under the
build's work directory (lists, cache and an empty dpkg status: the host's
apt is never touched), so a misspelt name fails in seconds.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import trio

from .chroot import Namespace
from .common import INSTALLING, BuildError, Output, Spec, not_found, passed_env
from .pkglist import InstallPass

TOOLS = {"mmdebstrap": "mmdebstrap", "unshare": "util-linux"}
OTHER_TOOLS = {"apt-ftparchive": "apt-utils"}
CODENAMES = {
    "debian10": "buster",
    "debian11": "bullseye",
    "debian12": "bookworm",
    "debian13": "trixie",
    "ubuntu20.04": "focal",
    "ubuntu22.04": "jammy",
    "ubuntu24.04": "noble",
}
DEBIAN_ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "ppc64le": "ppc64el"}
HOST_SOURCES = Path("/etc/apt")
SUFFIXES = (".list", ".sources")
VARIANTS = (
    "extract", "custom", "essential", "apt", "required", "minbase", "buildd", "important",
    "standard",
)  # fmt: skip
OTHERPKGS_LIST = "/etc/apt/sources.list.d/xcat-otherpkgs.list"
POLICY_RC_D = "usr/sbin/policy-rc.d"
AUTOMOUNT = "/usr/share/mmdebstrap/hooks/file-mirror-automount"

_NEWLY = re.compile(r"^(\d+) upgraded, (\d+) newly installed")
_MISSING = re.compile(r"^E: Unable to locate package (\S+)")
_NO_CANDIDATE = re.compile(r"^E: Package '(\S+)' has no installation candidate")
APT_OPTIONS = [
    "-o", "APT::Install-Recommends=false",
    "-o", "Dpkg::Options::=--force-confdef",
    "-o", "Dpkg::Options::=--force-confold",
]  # fmt: skip


def codename_of(osvers: str) -> str:
    try:
        return CODENAMES[re.sub(r"^(debian\d+)\..*$", r"\1", osvers)]
    except KeyError:
        raise BuildError(
            f"unknown Debian or Ubuntu release '{osvers}' (osvers): set pkgdir to its media"
        ) from None


def host_sources(codename: str) -> list[Path]:
    """The host's apt source files, when they carry the image's release."""
    listed = (HOST_SOURCES / "sources.list.d").glob("*")
    files = [HOST_SOURCES / "sources.list", *sorted(p for p in listed if p.suffix in SUFFIXES)]
    files = [f for f in files if f.is_file() and _meaningful(f.read_text(errors="replace"))]
    if not files:
        raise BuildError("the host has no apt sources: set pkgdir on the osimage")
    text = "\n".join(f.read_text(errors="replace") for f in files)
    suites = set(re.findall(r"^\s*Suites:\s*(.+)$", text, re.MULTILINE))
    suites = {s for line in suites for s in line.split()}
    suites |= set(re.findall(r"^\s*deb\s+(?:\[[^]]*\]\s+)?\S+\s+(\S+)", text, re.MULTILINE))
    if codename not in suites:
        raise BuildError(
            f"the host's apt sources are for {', '.join(sorted(suites)) or 'nothing'}, "
            f"not {codename}: set pkgdir on the osimage"
        )
    return files


def _meaningful(text: str) -> bool:
    return any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines())


def archive_source(pkgdir: str, codename: str) -> tuple[str, Path | None]:
    """(a one-line sources.list entry, the local directory to bind or None)."""
    if "://" in pkgdir:
        return f"deb {pkgdir} {codename} main", None
    top = Path(pkgdir)
    if not top.is_dir():
        raise BuildError(f"pkgdir {top} does not exist")
    releases = sorted(top.glob("dists/*/Release"))
    if not releases:
        raise BuildError(
            f"pkgdir {top} is not a Debian archive (no dists/*/Release): "
            "run copycds of the distribution media first"
        )
    release = next((r for r in releases if r.parent.name == codename), None)
    if release is None:
        found_here = ", ".join(r.parent.name for r in releases)
        raise BuildError(f"pkgdir {top} has dists/{found_here}, not dists/{codename}")
    text = release.read_text(errors="replace")
    found = re.search(r"^Codename:\s*(\S+)", text, re.MULTILINE)
    suite = found.group(1) if found else release.parent.name
    if release.parent.name != suite:
        suite = release.parent.name
    components = re.search(r"^Components:\s*(.+)$", text, re.MULTILINE)
    parts = components.group(1).split() if components else ["main"]
    signed = (release.parent / "InRelease").exists() or (release.parent / "Release.gpg").exists()
    options = "" if signed else "[trusted=yes] "
    return f"deb {options}file:{top.resolve()} {suite} {' '.join(parts)}", top.resolve()


class Debian:
    family = "debian"

    def __init__(self, spec: Spec, work: Path, output: Output) -> None:
        self.spec, self.work, self.output = spec, work, output
        self.codename = codename_of(spec.osvers)
        self.arch = DEBIAN_ARCHES.get(spec.arch, spec.arch)
        self.mirrors: list[str] = []
        self.binds: list[Path] = []
        self.other_lines: list[str] = []
        self._lists_for: bool | None = None  # the lists are fresh for (other repos or not)
        if spec.pkgdir:
            for entry in spec.pkgdir:
                line, bind = archive_source(entry, self.codename)
                self.mirrors.append(line)
                if bind is not None:
                    self.binds.append(bind)
        else:
            self.mirrors = [str(f) for f in host_sources(self.codename)]

    def tools(self, other_dirs: list[Path]) -> dict[str, str]:
        return {**TOOLS, **(OTHER_TOOLS if other_dirs else {})}

    def prepare(self, other_dirs: list[Path]) -> list[Path]:
        self.other_lines = [f"deb [trusted=yes] file:{d} ./" for d in other_dirs]
        return self.binds + other_dirs

    async def index(self, directory: Path, ns: Namespace) -> None:
        """A flat apt repository of an otherpkgs directory of .deb files."""
        debs = list(directory.glob("*.deb"))
        index = directory / "Packages"
        if not debs:
            raise BuildError(f"otherpkgdir {directory} holds no .deb packages")
        if index.exists() and all(d.stat().st_mtime <= index.stat().st_mtime for d in debs):
            return
        await self.output.phase(f"Indexing {directory} with apt-ftparchive")
        index.write_text(await trio.to_thread.run_sync(_ftparchive, directory))

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        return {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            "LC_ALL": "C.UTF-8",
            "DEBIAN_FRONTEND": "noninteractive",
            "DEBCONF_NONINTERACTIVE_SEEN": "true",
            # The kernel package's hooks make no initrd of their own: a node
            # boots genimage's initrd-stateless.gz, never /boot/initrd.img.
            "INITRD": "No",
            **passed_env(),
            **extra,
        }

    async def missing(self, names: list[str]) -> list[str]:
        """The names apt finds in none of the image's sources."""
        _refuse_groups(names)
        options = await trio.to_thread.run_sync(self._scratch_apt)
        host = Namespace(Path("/"))
        # --error-on=any: an unreachable mirror is its own error, not every
        # package missing.
        update = ["apt-get", *options, "--error-on=any", "update"]
        await self._apt_run(update, {}, host, "none", "Updating lists")
        simulate = ["apt-get", *options, *APT_OPTIONS, "--simulate", "install", *names]
        _, missing = await self._apt_lines(simulate, {}, host, "none", "Resolving", shown=False)
        return missing

    def _scratch_apt(self) -> list[str]:
        """apt options for a state of its own with the image's sources (in a
        worker thread: it writes files)."""
        top = self.work / "apt"
        parts = top / "sources.list.d"
        for directory in (parts, top / "preferences.d", top / "lists/partial",
                          top / "archives/partial"):  # fmt: skip
            directory.mkdir(parents=True, exist_ok=True)
        (top / "status").touch()
        if self.spec.pkgdir:
            (parts / "xcat-genimage.list").write_text("\n".join(self.mirrors) + "\n")
        else:  # the host's own source files, as mmdebstrap takes them
            for number, source in enumerate(self.mirrors):
                shutil.copyfile(source, parts / f"{number:02d}-{Path(source).name}")
        settings = {
            "Dir::Etc::SourceList": top / "sources.list",  # none: all are in the parts
            "Dir::Etc::SourceParts": parts,
            "Dir::Etc::Preferences": top / "preferences",
            "Dir::Etc::PreferencesParts": top / "preferences.d",
            "Dir::State::Lists": top / "lists",
            "Dir::State::status": top / "status",
            "Dir::Cache": top,
            "Dir::Cache::pkgcache": "",
            "Dir::Cache::srcpkgcache": "",
            "APT::Architecture": self.arch,
            "APT::Architectures": self.arch,
            "Acquire::Languages": "none",
            "APT::Sandbox::User": "root",  # the scratch directory is root's alone
            "Debug::NoLocking": "true",
        }
        return [word for name, value in settings.items() for word in ("-o", f"{name}={value}")]

    async def create(self, root: Path, first: InstallPass, ns: Namespace) -> None:
        env = dict(first.env)
        variant = env.pop("MMDEBSTRAP_VARIANT", "minbase")
        if variant not in VARIANTS:
            raise BuildError(f"MMDEBSTRAP_VARIANT={variant} is not one of {', '.join(VARIANTS)}")
        command = [
            "mmdebstrap", "--verbose", "--mode=root", f"--variant={variant}",
            f"--architectures={self.arch}",
            *(f"--aptopt={o}" for o in ("APT::Install-Recommends false",)),
            *([f"--include={','.join(first.install)}"] if first.install else []),
            # A file: mirror must be reachable inside the chroot, too.
            *([f"--hook-dir={AUTOMOUNT}"] if self.binds else []),
            self.codename, str(root), *self.mirrors,
        ]  # fmt: skip
        # mmdebstrap wants an empty target and mounts what it needs itself; the
        # private namespace only makes sure none of its mounts outlives it.
        await self._apt_run(command, env, Namespace(root), "none", INSTALLING)

    async def install(
        self, root: Path, names: list[str], env: dict[str, str], ns: Namespace, other: bool
    ) -> None:
        if not names:
            return
        _refuse_groups(names)
        await self._in_image(root, ns, other, [["apt-get", *APT_OPTIONS, "-y", "install", *names]],
                             env)  # fmt: skip

    async def remove(self, root: Path, names: list[str], env: dict[str, str], ns: Namespace):
        installed = _installed(root)
        present = [n for n in names if n in installed]
        if present:
            await self._in_image(
                root, ns, True, [["apt-get", *APT_OPTIONS, "-y", "purge", *present]], env,
                update=False,
            )  # fmt: skip

    async def upgrade(self, root: Path, ns: Namespace) -> None:
        await self._in_image(root, ns, True, [["apt-get", *APT_OPTIONS, "-y", "upgrade"]], {})

    async def resume(self, root: Path, ns: Namespace) -> None:
        """An interrupted dpkg run is finished before anything else."""
        await self._in_image(root, ns, False, [["dpkg", "--configure", "-a"]], {}, update=False)

    async def finish(self, root: Path, ns: Namespace) -> None:
        await self._in_image(root, ns, False, [["apt-get", "clean"]], {}, update=False)

    async def _in_image(
        self,
        root: Path,
        ns: Namespace,
        other: bool,
        commands: list[list[str]],
        env: dict[str, str],
        update: bool = True,
    ) -> None:
        if not (root / "usr/bin/apt-get").exists():
            raise BuildError(
                f"the image of {self.spec.name} has no apt (variant essential?): "
                "add apt to its first install pass"
            )
        policy = root / POLICY_RC_D
        made_policy = not policy.exists()
        sources = root / OTHERPKGS_LIST.lstrip("/")
        if made_policy:
            policy.write_text("#!/bin/sh\n# genimage: no service starts in the image\nexit 101\n")
            policy.chmod(0o755)
        if other and self.other_lines:
            sources.write_text("\n".join(self.other_lines) + "\n")
        try:
            wanted = bool(other and self.other_lines)
            if update and self._lists_for != wanted:  # once a build, again when sources change
                await self._apt_run(["apt-get", "update"], env, ns, "chroot", "Updating lists")
                self._lists_for = wanted
            for command in commands:
                await self._apt_run(command, env, ns, "chroot", INSTALLING)
        finally:
            if made_policy:
                policy.unlink(missing_ok=True)
            sources.unlink(missing_ok=True)

    async def _apt_run(
        self, command: list[str], env: dict[str, str], ns: Namespace, mode: str, what: str
    ) -> None:
        """Run an apt command; BuildError when it fails or misses a package."""
        rc, missing = await self._apt_lines(command, env, ns, mode, what)
        if missing:
            raise not_found(missing, self.spec.name)
        if rc != 0:
            label = command[0] if command[0] == "mmdebstrap" else f"{command[0]} {_action(command)}"
            raise BuildError(f"{label} failed with exit code {rc}")

    async def _apt_lines(
        self,
        command: list[str],
        env: dict[str, str],
        ns: Namespace,
        mode: str,
        what: str,
        shown: bool = True,
    ) -> tuple[int, list[str]]:
        """Run an apt command, counting the packages it sets up; its exit
        status and the packages it could not find."""
        missing: list[str] = []

        def parse(line: str) -> None:
            if newly := _NEWLY.match(line):
                added = int(newly.group(1)) + int(newly.group(2))
                self.output.count(self.output.done, (self.output.total or 0) + added)
            elif line.startswith("Setting up "):
                self.output.count(self.output.done + 1, self.output.total)
            elif found := _MISSING.match(line) or _NO_CANDIDATE.match(line):
                missing.append(found.group(1))

        self.output.start_counting(what)
        rc = await self.output.run(command, ns, mode, self.env(env), parse, failure_shown=shown)
        return rc, list(dict.fromkeys(missing))


def _refuse_groups(names: list[str]) -> None:
    groups = [n for n in names if n.startswith("@")]
    if groups:
        raise BuildError(
            f"package groups ({', '.join(groups)}) exist only for dnf: name the "
            "Debian packages (or task-* packages) instead"
        )


def _ftparchive(directory: Path) -> str:
    result = subprocess.run(
        ["apt-ftparchive", "packages", "."], cwd=directory, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise BuildError(f"apt-ftparchive failed on {directory}: {result.stderr.strip()[-500:]}")
    return result.stdout


def _action(command: list[str]) -> str:
    words = [w for w in command[1:] if not w.startswith("-") and "=" not in w and "::" not in w]
    return words[0] if words else ""


def _installed(root: Path) -> set[str]:
    """Packages dpkg has installed in the image."""
    status = root / "var/lib/dpkg/status"
    if not status.exists():
        return set()
    installed, name = set(), None
    for line in status.read_text(errors="replace").splitlines():
        if line.startswith("Package: "):
            name = line[9:].strip()
        elif line.startswith("Status: ") and line.endswith(" installed") and name:
            installed.add(name)
    return installed
