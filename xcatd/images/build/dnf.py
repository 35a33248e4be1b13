"""The Red Hat family backend: `dnf --installroot`.

Repositories: every directory under pkgdir holding `repodata/` (a copycds
tree has BaseOS/ and AppStream/), then each otherpkgdir sub-directory that
the otherpkglist names (indexed with createrepo_c when it has no repodata,
or its RPMs are newer than it).  Media that ship their signing keys
(RPM-GPG-KEY-* at the top, as vendors' media do) are verified with them;
local repositories made by createrepo - test media, otherpkgs - carry no
signatures and are read with gpgcheck off, the one shortcut a local
repository needs.  The dnf configuration lives outside the image, in the
build's work directory; nothing of the host's own dnf or rpm set-up (the
Debian host keeps its rpm database in ~/.rpmdb) reaches the image.

Before anything is installed, `missing` has dnf resolve every package of
the pkglist (names, provides, globs, @groups, as the install will) from the
same repositories into an empty scratch root, answering no to the
transaction, so a misspelt name fails in seconds.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from .chroot import Namespace
from .common import INSTALLING, BuildError, Output, Spec, not_found, passed_env
from .pkglist import InstallPass

TOOLS = {"dnf": "dnf", "unshare": "util-linux"}
OTHER_TOOLS = {"createrepo_c": "createrepo-c"}
OTHERPKGS_PREFIX = "xcat-otherpkgs-"

_STEP = re.compile(
    r"^\s*(Installing|Upgrading|Reinstalling|Downgrading|Erasing|Removing|Obsoleting|Cleanup)"
    r"\s*:.*?\s(\d+)/(\d+)\s*$"
)
_NO_MATCH = re.compile(r"^No match for argument: (.+)$")
_NO_GROUP = re.compile(r"^Module or Group '(.+)' (?:does not exist|is not available)\.$")


def release_version(osvers: str) -> str:
    """dnf's --releasever from the osimage's osvers: rocky9.4 -> 9.4, fedora40 -> 40."""
    found = re.search(r"(\d+(?:\.\d+)*)$", osvers)
    if not found:
        raise BuildError(f"cannot tell the release of '{osvers}' (osvers) for dnf --releasever")
    return found.group(1)


def rpm_dbpath(osvers: str) -> str:
    """Where the image's own rpm looks for its database."""
    found = re.match(r"(\D+?)-?(\d+)", osvers)
    name, major = (found.group(1), int(found.group(2))) if found else ("", 0)
    if (name == "fedora" and major >= 36) or (name != "fedora" and major >= 10):
        return "/usr/lib/sysimage/rpm"
    return "/var/lib/rpm"


def pkgdir_repositories(pkgdir: list[str]) -> list[tuple[Path, bool]]:
    """(repository directory, signed) for every repodata/ under the pkgdirs."""
    found: list[tuple[Path, bool]] = []
    for entry in pkgdir:
        if "://" in entry:
            raise BuildError(
                f"pkgdir {entry}: URLs are not supported for Red Hat family images; "
                "copy the repository to a local directory (copycds or reposync)"
            )
        top = Path(entry)
        if not top.is_dir():
            raise BuildError(f"pkgdir {top} does not exist")
        signed = any(top.glob("RPM-GPG-KEY-*"))
        for directory, subdirs, _ in os.walk(top, followlinks=False):
            if "repodata" in subdirs and (Path(directory) / "repodata/repomd.xml").is_file():
                found.append((Path(directory), signed))
            subdirs[:] = sorted(d for d in subdirs if d not in ("repodata", "Packages"))
        if not any(repo == top or top in repo.parents for repo, _ in found):
            raise BuildError(
                f"pkgdir {top} holds no package repository (no repodata/): "
                "run copycds of the distribution media first"
            )
    return found


class Dnf:
    family = "rh"

    def __init__(self, spec: Spec, work: Path, output: Output) -> None:
        self.spec, self.work, self.output = spec, work, output
        self.repos = pkgdir_repositories(spec.pkgdir)
        self.config = work / "dnf.conf"
        self.home = work / "home"

    def tools(self, other_dirs: list[Path]) -> dict[str, str]:
        return {**TOOLS, **(OTHER_TOOLS if other_dirs else {})}

    def prepare(self, other_dirs: list[Path]) -> list[Path]:
        """Write the configuration (in a worker thread); the directories of
        packages to bind into the image's namespace (none: dnf runs outside)."""
        repos_d = self.work / "repos.d"
        repos_d.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(exist_ok=True)
        # Debian's rpm keeps its database in ~/.rpmdb; the image's rpm wants its own place.
        (self.home / ".rpmmacros").write_text(f"%_dbpath {rpm_dbpath(self.spec.osvers)}\n")
        self.config.write_text(
            "[main]\n"
            f"reposdir={repos_d}\n"
            "cachedir=/var/cache/dnf\n"
            "keepcache=0\n"
            "gpgcheck=1\n"
            "plugins=0\n"
            "skip_if_unavailable=False\n"
            "install_weak_deps=False\n"
        )
        stanzas = []
        for number, (directory, signed) in enumerate(self.repos, 1):
            keys = sorted(directory.glob("RPM-GPG-KEY-*")) or sorted(
                p for top in self.spec.pkgdir for p in Path(top).glob("RPM-GPG-KEY-*")
            )
            check = (
                f"gpgcheck=1\ngpgkey={' '.join(k.as_uri() for k in keys)}\n"
                if signed
                else "gpgcheck=0\n"
            )
            stanzas.append(
                f"[xcat-pkgdir-{number}]\nname={directory}\nbaseurl={directory.as_uri()}\n{check}"
            )
        for number, directory in enumerate(other_dirs, 1):
            stanzas.append(
                f"[{OTHERPKGS_PREFIX}{number}]\nname={directory}\n"
                f"baseurl={directory.as_uri()}\ngpgcheck=0\n"
            )
        (repos_d / "xcat-genimage.repo").write_text("\n".join(stanzas))
        return []

    async def index(self, directory: Path, ns: Namespace) -> None:
        """createrepo_c for an otherpkgs directory without (current) repodata."""
        repomd = directory / "repodata/repomd.xml"
        rpms = list(directory.glob("*.rpm")) + list(directory.glob("*/*.rpm"))
        if not rpms and not repomd.exists():
            raise BuildError(f"otherpkgdir {directory} holds no RPM packages")
        if repomd.exists() and all(p.stat().st_mtime <= repomd.stat().st_mtime for p in rpms):
            return
        await self.output.phase(f"Indexing {directory} with createrepo_c")
        await self.output.run(["createrepo_c", "--update", "-q", str(directory)], ns, "none")

    def _base(self, root: Path, other: bool) -> list[str]:
        return [
            "dnf", "-y", "--config", str(self.config), "--installroot", str(root),
            "--releasever", release_version(self.spec.osvers), "--forcearch", self.spec.arch,
            *([] if other else [f"--disablerepo={OTHERPKGS_PREFIX}*"]),
        ]  # fmt: skip

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        return {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",  # dnf's lines as they come, not in 4 KiB bursts
            **passed_env(),
            **extra,
        }

    async def missing(self, names: list[str]) -> list[str]:
        """The names (and @groups) dnf finds in none of the repositories."""
        scratch = self.work / "check-root"
        scratch.mkdir(exist_ok=True)
        missing: list[str] = []
        self.output.start_counting("Resolving")
        await self.output.run(
            # strict=0: every missing name is said, not only the first kind.
            [*self._base(scratch, other=False), "--assumeno", "--setopt=strict=0", "install",
             *names],
            Namespace(scratch), "none", self.env({}), _missing_parser(missing),
            failure_shown=False,
        )  # fmt: skip
        return list(dict.fromkeys(missing))

    async def create(self, root: Path, first: InstallPass, ns: Namespace) -> None:
        root.mkdir(parents=True, exist_ok=True)
        await self.install(root, first.install, first.env, ns, other=False)

    async def install(
        self, root: Path, names: list[str], env: dict[str, str], ns: Namespace, other: bool
    ) -> None:
        if names:
            await self._dnf(root, ["install", *names], env, ns, other)

    async def remove(self, root: Path, names: list[str], env: dict[str, str], ns: Namespace):
        if names:
            await self._dnf(root, ["remove", *names], env, ns, other=True)

    async def upgrade(self, root: Path, ns: Namespace) -> None:
        await self._dnf(root, ["upgrade"], {}, ns, other=True)

    async def resume(self, root: Path, ns: Namespace) -> None:
        """Before updating an image whose last build was interrupted."""

    async def finish(self, root: Path, ns: Namespace) -> None:
        await self._dnf(root, ["clean", "all"], {}, ns, other=True)

    async def _dnf(
        self, root: Path, action: list[str], env: dict[str, str], ns: Namespace, other: bool
    ) -> None:
        missing: list[str] = []
        find_missing = _missing_parser(missing)

        def parse(line: str) -> None:
            if step := _STEP.match(line):
                self.output.count(int(step.group(2)), int(step.group(3)))
            else:
                find_missing(line)

        self.output.start_counting("Removing packages" if action[0] == "remove" else INSTALLING)
        rc = await self.output.run(
            [*self._base(root, other), *action], ns, "host", self.env(env), parse
        )
        if missing and action[0] == "install":
            raise not_found(missing, self.spec.name)
        if rc != 0:
            raise BuildError(f"dnf {action[0]} failed with exit code {rc}")


def _missing_parser(missing: list[str]) -> Callable[[str], None]:
    """A line parser adding to `missing` each name dnf says it cannot find."""

    def parse(line: str) -> None:
        if found := _NO_MATCH.match(line):
            missing.append(found.group(1).strip())
        elif found := _NO_GROUP.match(line):
            missing.append(f"@{found.group(1).strip()}")

    return parse
