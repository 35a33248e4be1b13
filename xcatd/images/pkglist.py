"""pkglist and otherpkglist files, read as xCAT reads them.

One package per line (several separated by blanks are accepted); blank lines
and `#` comments are skipped.  Directives:

    #INCLUDE:<file>#        the lines of another list, here (a relative name is
                            found beside the list that includes it)
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
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_INCLUDE = re.compile(r"#INCLUDE:(?P<file>[^#]*)#$")
_ENV = re.compile(r"#ENV:(?P<name>[^=#]*)=(?P<value>[^#]*)#$")
_NEW_PASS = "#NEW_INSTALL_LIST#"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# What a package (or group, or otherpkgs directory/package) may be called:
# no option-looking names, no shell or control characters.
_NAME = re.compile(r"[A-Za-z0-9_.+:~*?\[\]/=<>-]+")
_GROUP = re.compile(r"@[A-Za-z0-9_.+-][A-Za-z0-9_.+ -]*")
MAX_DEPTH = 32


class PkglistError(Exception):
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

    @property
    def install(self) -> list[str]:
        """Every package installed by any pass, in order, once each."""
        return list(dict.fromkeys(name for p in self.passes for name in p.install))


def read(paths: str | list[str | Path], base: Path | None = None) -> PackageList:
    """Read the comma-separated list files in `paths` (an attribute's value).

    Relative top-level names are found from `base` (default: the current
    directory).  Empty passes are dropped.
    """
    if isinstance(paths, str):
        names: list[str | Path] = [p.strip() for p in paths.split(",") if p.strip()]
    else:
        names = list(paths)
    reader = _Reader()
    for name in names:
        path = Path(name)
        if not path.is_absolute():
            path = (base or Path.cwd()) / path
        reader.read_file(path, stack=(), origin=None)
    passes = [p for p in reader.passes if not p.empty]
    return PackageList(passes, reader.files)


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
        self.files: list[Path] = []

    def read_file(self, path: Path, stack: tuple[Path, ...], origin: str | None) -> None:
        where = origin or str(path)
        try:
            resolved = path.resolve(strict=True)
        except FileNotFoundError:
            raise PkglistError(f"{where}: {path} does not exist") from None
        except (OSError, RuntimeError) as exc:
            raise PkglistError(f"{where}: cannot read {path}: {exc}") from None
        if resolved in stack:
            chain = " -> ".join(str(p) for p in (*stack, resolved))
            raise PkglistError(f"{where}: #INCLUDE# cycle: {chain}")
        if len(stack) >= MAX_DEPTH:
            raise PkglistError(f"{where}: #INCLUDE# nested more than {MAX_DEPTH} deep")
        try:
            text = resolved.read_text(encoding="utf-8")
        except IsADirectoryError:
            raise PkglistError(f"{where}: {path} is a directory, not a package list") from None
        except UnicodeDecodeError:
            raise PkglistError(f"{where}: {path} is not a text file") from None
        except OSError as exc:
            raise PkglistError(f"{where}: cannot read {path}: {exc.strerror}") from None
        self.files.append(resolved)
        for number, raw in enumerate(text.splitlines(), 1):
            self._line(raw.strip(), f"{path}:{number}", path, (*stack, resolved))

    def _line(self, line: str, where: str, path: Path, stack: tuple[Path, ...]) -> None:
        if not line:
            return
        if line.startswith("#"):
            self._directive(line, where, path, stack)
            return
        if line.startswith("@"):  # a group's name may have blanks: @Development Tools
            if not _GROUP.fullmatch(line):
                raise PkglistError(f"{where}: '{line}' is not a package group name")
            if line not in self.passes[-1].install:
                self.passes[-1].install.append(line)
            return
        for word in line.split():
            self._entry(word, where)

    def _directive(self, line: str, where: str, path: Path, stack: tuple[Path, ...]) -> None:
        if line.startswith("#INCLUDE:"):
            found = _INCLUDE.match(line)
            if not found or not found.group("file").strip():
                raise PkglistError(f"{where}: malformed include, write #INCLUDE:<file>#")
            included = Path(found.group("file").strip())
            if not included.is_absolute():
                included = path.parent / included
            self.read_file(included, stack, where)
        elif line == _NEW_PASS:
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
