"""What the genimage backends share: the image to build, the error they
raise, and what genimage says (phase lines, times, package counts) and
logs (everything the programs print, in `<rootimgdir>/genimage.log`)."""

from __future__ import annotations

import contextlib
import os
import shlex
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ...errors import XcatdError
from ..osimage import ImageFiles
from .chroot import Namespace

Info = Callable[[str], Awaitable[None]]
ProgressSink = Callable[[str, int, "int | None", str], Awaitable[None]]


TAIL = 20  # lines of a failed program's output genimage shows without -V
INSTALLING = "Installing packages"  # what the backends count while installing

PASSED_ENV = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")


def passed_env() -> dict[str, str]:
    """What of the daemon's environment the programs of a build inherit: proxies."""
    return {name: os.environ[name] for name in PASSED_ENV if name in os.environ}


def image_env(**extra: str) -> dict[str, str]:
    """The environment of a program genimage runs in (or on) the image."""
    return {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        **passed_env(),
        **extra,
    }


class BuildError(XcatdError):
    """genimage stops; the message is what the administrator reads."""


def not_found(names: list[str], image: str) -> BuildError:
    """The package manager found none of these names (in its own order)."""
    names = list(dict.fromkeys(names))
    which = f"package {names[0]}" if len(names) == 1 else "packages " + ", ".join(names)
    return BuildError(f"{which} not found in the repositories of {image}")


@dataclass
class Spec:
    """One osimage, as genimage builds it (values resolved, defaults applied)."""

    name: str
    osvers: str
    arch: str
    profile: str
    family: str  # rh | debian
    rootimgdir: Path
    pkglist: str  # comma-separated files, as the attribute holds them
    pkgdir: list[str] = field(default_factory=list)  # directories (or URLs for Debian)
    otherpkglist: str = ""
    otherpkgdir: Path | None = None
    postinstall: list[Path] = field(default_factory=list)
    noupdate: bool = False
    netdrivers: list[str] = field(default_factory=list)  # -n, else the osimage's netdrivers
    ssh_ca: str = ""  # the cluster's SSH CA public key: trusted by the image's ssh and sshd
    # The family's shipped profiles as this host has them (where init placed
    # them): where a copied list's includes are found when not copied too.
    shipped: Path | None = None

    @property
    def files(self) -> ImageFiles:
        return ImageFiles(self.rootimgdir)

    @property
    def rootimg(self) -> Path:
        return self.files.rootimg


class Output:
    """What genimage says, to the client and to `<rootimgdir>/genimage.log`.

    Phase lines (what genimage does now) go to both; a phase that ran a
    program, or took a second or more, is followed by a line with its time
    and the packages it installed.  Every line the programs print goes to
    the log; to the client only with `verbose` (genimage -V), else the last
    TAIL lines of a program that failed are shown with the log's path.  A
    backend's parser may count packages, which becomes `progress`.
    """

    def __init__(
        self,
        info: Info,
        progress: ProgressSink,
        warning: Info | None = None,
        verbose: bool = False,
    ) -> None:
        self._info, self._progress = info, progress
        self._warning = warning or info
        self.verbose = verbose
        self.what = INSTALLING
        self.done = 0
        self.total: int | None = None
        self._sent: tuple[int, int | None] | None = None
        self.out_of_space = False
        self.log_path: Path | None = None
        self._log: TextIO | None = None
        self._started = time.monotonic()
        self._phase: _Phase | None = None
        self._tail: deque[str] = deque(maxlen=TAIL)
        self.failed_output: list[str] | None = None  # the tail of the program that failed

    @contextlib.contextmanager
    def logging_to(self, path: Path) -> Iterator[None]:
        """Write the log at `path` (anew) while the block runs."""
        self._started = time.monotonic()
        with open(path, "w", buffering=1, errors="replace") as log:
            self._log, self.log_path = log, path
            self._write(f"genimage started {time.strftime('%Y-%m-%d %H:%M:%S')}")
            try:
                yield
            finally:
                self._write(f"genimage ended after {time.monotonic() - self._started:.1f} s")
                self._log = None

    async def phase(self, text: str) -> None:
        """A new step of the build; the one before it ends here."""
        await self.end_phase()
        self._phase = _Phase(text, time.monotonic())
        self.failed_output = None
        self._write(text)
        await self._info(text)

    async def end_phase(self) -> None:
        """The current step is over: its time, when it is worth a line."""
        phase, self._phase = self._phase, None
        if phase is None:
            return
        seconds = time.monotonic() - phase.started
        if not phase.programs and seconds < 1:
            return
        plural = "" if phase.packages == 1 else "s"
        packages = f": {phase.packages} package{plural}" if phase.packages else ""
        line = f"  done in {seconds:.1f} s{packages}"
        self._write(line)
        await self._info(line)

    async def warning(self, text: str) -> None:
        """Something the image lacks that genimage works around, on stderr."""
        self._write(f"Warning: {text}")
        await self._warning(text)

    async def failed(self) -> None:
        """After an error: the last lines of the program that failed (unless
        -V showed them already) and where its whole output is."""
        if not self.failed_output:
            return
        where = f" (all of it in {self.log_path})" if self.log_path else ""
        await self._info(f"The last {len(self.failed_output)} lines of its output{where}:")
        for line in self.failed_output:
            await self._info(line)

    def start_counting(self, what: str) -> None:
        self.what, self.done, self.total, self._sent = what, 0, None, None

    def count(self, done: int, total: int | None) -> None:
        self.done, self.total = done, total

    async def run(
        self,
        argv: Sequence[str],
        ns: Namespace,
        mode: str,
        env: dict[str, str] | None = None,
        parse: Callable[[str], None] | None = None,
        *,
        show: bool = False,
        failure_shown: bool = True,
    ) -> int:
        """Run a program for the build (see chroot.py); its exit status.
        `show`: its lines go to the client even without -V (a postinstall
        script's are the administrator's own).  `failure_shown`: when it
        fails, its last lines are shown (not for a check that says itself
        what it found)."""
        self.out_of_space = False  # what counts is what this program says
        self._tail.clear()
        self._write(f"+ {shlex.join(argv)}")
        if self._phase is not None:
            self._phase.programs += 1
        show = show or self.verbose

        async def on_line(line: str) -> None:
            if "No space left on device" in line or ("At least " in line and "more space" in line):
                self.out_of_space = True
            if parse is not None:
                parse(line)
            self._write(line)
            self._tail.append(line)
            if show:
                await self._info(line)
            if (self.done, self.total) != self._sent and (self.done or self.total):
                self._sent = (self.done, self.total)
                await self._progress(self.what, self.done, self.total, "packages")

        rc = await ns.run(argv, on_line, mode, env)
        if self._phase is not None and self.what == INSTALLING:
            self._phase.packages += self.done
        self.failed_output = list(self._tail) if rc != 0 and failure_shown and not show else None
        if rc != 0:
            self._write(f"+ exit code {rc}")
        if rc != 0 and self.out_of_space:
            raise BuildError(f"no space left on the disk of {ns.root}")
        return rc

    def _write(self, line: str) -> None:
        if self._log is not None:
            self._log.write(f"{line}\n")


@dataclass
class _Phase:
    text: str
    started: float  # time.monotonic()
    programs: int = 0  # how many programs it ran
    packages: int = 0  # how many packages they installed
