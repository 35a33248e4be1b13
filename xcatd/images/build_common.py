"""What the genimage backends share: the image to build, the error they
raise, and the output of the programs they run turned into records."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .chroot import Namespace

Info = Callable[[str], Awaitable[None]]
ProgressSink = Callable[[str, int, "int | None", str], Awaitable[None]]


SHARE = Path(__file__).resolve().parent.parent / "share"  # data files shipped with xcatd

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


class BuildError(Exception):
    """genimage stops; the message is what the administrator reads."""


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

    @property
    def rootimg(self) -> Path:
        return self.rootimgdir / "rootimg"


class Output:
    """Every line a program prints goes to the client as an `info` record;
    a backend's parser may count packages, which becomes `progress`."""

    def __init__(self, info: Info, progress: ProgressSink, warning: Info | None = None) -> None:
        self._info, self._progress = info, progress
        self._warning = warning or info
        self.what = "Installing packages"
        self.done, self.total = 0, None
        self._sent: tuple[int, int | None] | None = None
        self.out_of_space = False

    async def phase(self, text: str) -> None:
        await self._info(text)

    async def warning(self, text: str) -> None:
        """Something the image lacks that genimage works around, on stderr."""
        await self._warning(text)

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
    ) -> int:
        self.out_of_space = False  # what counts is what this program says

        async def on_line(line: str) -> None:
            if "No space left on device" in line or ("At least " in line and "more space" in line):
                self.out_of_space = True
            if parse is not None:
                parse(line)
            await self._info(line)
            if (self.done, self.total) != self._sent and (self.done or self.total):
                self._sent = (self.done, self.total)
                await self._progress(self.what, self.done, self.total, "packages")

        rc = await ns.run(argv, on_line, mode, env)
        if rc != 0 and self.out_of_space:
            raise BuildError(f"no space left on the disk of {ns.root}")
        return rc
