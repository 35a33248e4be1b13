"""pkglist and otherpkglist files, read as xCAT reads them.

One package per line (several separated by blanks are accepted); blank lines
and `#` comments are skipped.  Directives:

    #INCLUDE:<file>#        the lines of another list, here (a relative name is
                            found beside the list that includes it; when it is
                            not there, in the family's shipped profiles: see
                            `read`)
    #NEW_INSTALL_LIST#      what follows is installed in a new pass
    #ENV:VAR=value#         VAR=value in the package manager's environment
                            for this pass
    -pkg                    remove pkg before this pass installs
    --pkg                   remove pkg after this pass installed
    @group                  a package group (dnf), the whole line: @Development Tools

An attribute may name several files separated by commas; they are read one
after the other as if each included the next.  In an otherpkglist an entry
is `<directory>/<package>`, the directory relative to the osimage's
otherpkgdir (see `other_package`).

Every problem is one line naming the file and the line: `path:12: ...`.
How includes may be written: see `listfiles`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import XcatdError
from .. import profiles
from ..listfiles import Line, ListFiles

_ENV = re.compile(r"#ENV:(?P<name>[^=#]*)=(?P<value>[^#]*)#$")
_NEW_PASS = "#NEW_INSTALL_LIST#"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# What a package (or group, or otherpkgs directory/package) may be called:
# no option-looking names, no shell or control characters.
_NAME = re.compile(r"[A-Za-z0-9_.+:~*?\[\]/=<>-]+")
_GROUP = re.compile(r"@[A-Za-z0-9_.+-][A-Za-z0-9_.+ -]*")
_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # listfiles' escapes for bytes that are not UTF-8


class PkglistError(XcatdError):
    """A list that cannot be read; the message is one line naming file and line."""


@dataclass
class InstallPass:
    """One install pass: removals before, installs, removals after."""

    install: list[str] = field(default_factory=list)
    remove_before: list[str] = field(default_factory=list)
    remove_after: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.install or self.remove_before or self.remove_after)

    @property
    def groups(self) -> list[str]:
        return [name[1:] for name in self.install if name.startswith("@")]


@dataclass
class PackageList:
    passes: list[InstallPass]
    files: list[Path]  # every file read, includes too, in reading order
    # (include that does not exist, shipped list read in its place), once each
    borrowed: list[tuple[Path, Path]] = field(default_factory=list)

    @property
    def notes(self) -> list[str]:
        """A warning line for each include read from the shipped profiles."""
        return [
            f"{missing} does not exist: read the shipped {used} in its place "
            f"(copy it to {missing.parent} to change it)"
            for missing, used in self.borrowed
        ]

    @property
    def install(self) -> list[str]:
        """Every package installed by any pass, in order, once each."""
        return list(dict.fromkeys(name for p in self.passes for name in p.install))


def read(
    paths: str | list[str | Path], base: Path | None = None, shipped: Path | None = None
) -> PackageList:
    """Read the comma-separated list files in `paths` (an attribute's value).

    Relative top-level names are found from `base` (default: the current
    directory).  Empty passes are dropped.  A relative `#INCLUDE:<name>#`
    that is not beside the list including it is read from `shipped`, by
    name: a profile copied to /install/custom/netboot/<family>/ without the
    shipped lists it includes keeps working (`PackageList.notes` says so).
    Without `shipped`, the family's shipped profiles when the list's path
    names one as xCAT's directories do (…/netboot/<family>/…).
    """
    names = [p.strip() for p in paths.split(",") if p.strip()] if isinstance(paths, str) else paths
    borrowed: dict[tuple[Path, Path], None] = {}

    def missing(path: Path, name: str) -> Path | None:
        directory = shipped or _family_profiles(path)
        if directory is None or not (directory / name).is_file():
            return None
        borrowed[path, directory / name] = None
        return directory / name

    lists = ListFiles(PkglistError, "pkglist", missing)
    reader = _Reader()
    for name in names:
        for line in lists.lines((base or Path.cwd()) / name):
            reader.line(line)
    passes = [p for p in reader.passes if not p.empty]
    return PackageList(passes, lists.files, list(borrowed))


def _family_profiles(path: Path) -> Path | None:
    """The shipped profiles of the family named in `path` after a `netboot`
    directory (/install/custom/netboot/rh/service/…: rh), the nearest."""
    parts = path.parent.parts
    for index in range(len(parts) - 1, 0, -1):
        if parts[index - 1] == "netboot" and (profiles.SHIPPED / parts[index]).is_dir():
            return profiles.shipped_dir(parts[index])
    return None


def other_package(entry: str) -> tuple[str, str]:
    """An otherpkglist entry split into (directory under otherpkgdir, package).

    `xcat/xcat-core/xCATsn` -> ('xcat/xcat-core', 'xCATsn'); a bare name is
    found in otherpkgdir itself: ('', name).  Groups keep their '@'.
    """
    group = entry.startswith("@")
    directory, _, name = entry.lstrip("@").rpartition("/")
    return directory, ("@" if group else "") + name


class _Reader:
    def __init__(self) -> None:
        self.passes: list[InstallPass] = [InstallPass()]

    def line(self, line: Line) -> None:
        text, where = line.text.strip(), line.where
        if _NOT_UTF8.search(text):
            raise PkglistError(f"{where}: not UTF-8 text")
        if not text:
            return
        if text.startswith("#"):
            self._directive(text, where)
            return
        if text.startswith("@"):  # a group's name may have blanks: @Development Tools
            if not _GROUP.fullmatch(text):
                raise PkglistError(f"{where}: '{text}' is not a package group name")
            if text not in self.passes[-1].install:
                self.passes[-1].install.append(text)
            return
        for word in text.split():
            self._entry(word, where)

    def _directive(self, line: str, where: str) -> None:
        if line == _NEW_PASS:
            self.passes.append(InstallPass())
        elif line.startswith("#ENV:"):
            found = _ENV.match(line)
            if not found or not _ENV_NAME.fullmatch(found.group("name").strip()):
                raise PkglistError(f"{where}: malformed environment line, write #ENV:VAR=value#")
            self.passes[-1].env[found.group("name").strip()] = found.group("value").strip()
        # Anything else starting with '#' is a comment.

    def _entry(self, word: str, where: str) -> None:
        current = self.passes[-1]
        if word.startswith("--"):
            target, name = current.remove_after, word[2:]
        elif word.startswith("-"):
            target, name = current.remove_before, word[1:]
        else:
            target, name = current.install, word
        if not name or not _NAME.fullmatch(name) or name.startswith("-"):
            raise PkglistError(f"{where}: '{word}' is not a package name")
        if name.endswith("/"):
            raise PkglistError(f"{where}: '{word}' names a directory, not a package")
        if ".." in name.split("/"):
            raise PkglistError(f"{where}: '{word}' leaves the package directory")
        if name not in target:
            target.append(name)
