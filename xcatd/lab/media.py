"""Install media for the lab: a Debian 12 installation ISO made from the
packages this host's apt can fetch (its own sources: no mirror is named
here), so that `copycds` has a real ISO to read where the administrator has
none (one who has a real ISO copies that instead).

Real .deb files, indexed with apt-ftparchive, with .disk/info and
dists/bookworm/Release as on Debian's own media, and an ISO made by
xorriso.  Either just the packages named, or (`system`) all that a minbase
system with those packages needs: what mmdebstrap (genimage) installs from
such media.  Downloads are kept in a cache directory between runs.  The
tests build their media with these functions too.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..images.build import pkglist
from ..images.profiles import SHIPPED
from .lab import LabError

DEFAULT_CACHE = Path("/var/cache/xcatd-lab")
DEBIAN_RELEASE = "12"
DEBIAN_CODENAME = "bookworm"
# What `xcatd lab media` needs on this host.
PROGRAMS = {"apt-get": "apt", "apt-ftparchive": "apt-utils", "xorriso": "xorriso",
            "gzip": "gzip"}  # fmt: skip


def profile_packages(*profiles: str) -> list[str]:
    """What the shipped Debian `profiles` (service, compute) install on x86_64."""
    names: dict[str, None] = {}
    for profile in profiles:
        listed = pkglist.read(str(SHIPPED / f"debian/{profile}.x86_64.pkglist"))
        names |= dict.fromkeys(name for step in listed.passes for name in step.install)
    return list(names)


def make(output: Path, cache: Path = DEFAULT_CACHE) -> str:
    """`xcatd lab media`: the lab's ISO at `output`, a minbase system with
    what the shipped service and compute profiles install; what was
    written, in one line.  LabError if it cannot be made (nothing is left)."""
    output = output.resolve()
    if output.exists():
        raise LabError(f"{output} exists: remove it or give another --out")
    if not output.parent.is_dir():
        raise LabError(f"{output.parent} is not a directory: give --out in one")
    for program, package in PROGRAMS.items():
        if shutil.which(program) is None:
            raise LabError(f"{program} is not installed: install the Debian package {package}")
    try:
        with tempfile.TemporaryDirectory(prefix=".xcatd-media-", dir=output.parent) as where:
            tree = debian_tree(Path(where), profile_packages("service", "compute"), cache,
                               system=True)  # fmt: skip
            count = len(list((tree / "pool/main").iterdir()))
            iso(tree, output, f"Debian {DEBIAN_RELEASE} amd64")
    except (RuntimeError, OSError) as exc:
        output.unlink(missing_ok=True)
        said = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise LabError(f"lab media: {' / '.join(said[-3:])}") from None
    size = output.stat().st_size / 2**20
    return f"Wrote {output} ({count} packages, {size:.0f} MiB): copycds {output}"


def run(*command: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=900
    )
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {result.stderr.strip()[-2000:]}")
    return result.stdout


def debian_packages(names: list[str], cache: Path) -> list[Path]:
    """The .deb files of `names` (no dependencies), downloaded once into `cache`."""
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    missing = [n for n in names if not list(debs.glob(f"{n}_*.deb"))]
    if missing:
        if "Candidate: (none)" in run("apt-cache", "policy", missing[0]) or not run(
            "apt-cache", "policy", missing[0]
        ):
            run("apt-get", "update", "-qq")
        run("apt-get", "download", "-qq", *missing, cwd=debs)
    return [next(debs.glob(f"{n}_*.deb")) for n in names]


def debian_system(names: list[str], cache: Path, arch: str = "amd64") -> list[Path]:
    """The .deb files of a minbase system (Essential and required packages,
    apt) with `names` installed, resolved by the host's apt as for an empty
    system and downloaded once into `cache`."""
    debs = cache / "debs"
    (debs / "partial").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="xcatd-media-") as state:
        (Path(state) / "status").touch()  # nothing installed yet
        options = [
            "-o", f"Dir::State::status={state}/status", "-o", f"Dir::Cache::archives={debs}",
            "-o", f"APT::Architecture={arch}", "-o", "APT::Install-Recommends=false",
        ]  # fmt: skip
        wanted = [*minbase(), "apt", *names]
        simulated = run("apt-get", "-s", *options, "install", *wanted)
        chosen = re.findall(r"^Inst (\S+) \((\S+) .*?\[(\S+)\]\)", simulated, re.MULTILINE)
        files = [debs / f"{n}_{v.replace(':', '%3a')}_{a}.deb" for n, v, a in chosen]
        if not all(f.exists() for f in files):
            run("apt-get", "-qq", "--download-only", "-y", *options, "install", *wanted)
    return files


@functools.cache
def archive_fields() -> dict[str, dict[str, str]]:
    """Package -> its fields as the archive (the host's apt lists) has them:
    Priority and Section come from the archive's overrides, not the .deb."""
    packages: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in [*run("apt-cache", "dumpavail").splitlines(), ""]:
        if not line:
            if "Package" in current:
                packages.setdefault(current["Package"], current)
            current = {}
        elif not line[0].isspace() and ":" in line:
            key, _, value = line.partition(":")
            current[key] = value.strip()
    return packages


def minbase() -> list[str]:
    """What mmdebstrap's minbase variant installs: Essential and required packages."""
    return sorted(
        name
        for name, fields in archive_fields().items()
        if fields.get("Essential") == "yes" or fields.get("Priority") == "required"
    )


def _override(pool: Path) -> str:
    """apt-ftparchive's override file for the pool: the archive's priorities
    (mmdebstrap picks required packages by them) and sections."""
    lines = []
    for deb in sorted(pool.glob("*.deb")):
        fields = archive_fields().get(deb.name.split("_")[0], {})
        lines.append(f"{deb.name.split('_')[0]} {fields.get('Priority', 'optional')} "
                     f"{fields.get('Section', 'misc')}\n")  # fmt: skip
    return "".join(lines)


def debian_tree(
    where: Path, packages: list[str], cache: Path, arch: str = "amd64", *, system: bool = False
) -> Path:
    """A Debian media tree holding `packages` (with `system`, a whole
    minbase system with them: see debian_system), downloaded into `cache`."""
    tree = where / f"debian-{DEBIAN_RELEASE}-{arch}"
    pool = tree / "pool/main"
    pool.mkdir(parents=True)
    debs = debian_system(packages, cache, arch) if system else debian_packages(packages, cache)
    for deb in debs:
        _link_or_copy(deb, pool / deb.name)
    (tree / ".disk").mkdir()
    (tree / ".disk/info").write_text(
        f'Debian GNU/Linux {DEBIAN_RELEASE}.5.0 "Bookworm" - xcatd lab {arch} Binary-1 '
        "20240210-11:28\n"
    )
    binary = tree / f"dists/{DEBIAN_CODENAME}/main/binary-{arch}"
    binary.mkdir(parents=True)
    override = where / "override"
    override.write_text(_override(pool))
    (binary / "Packages").write_text(run("apt-ftparchive", "packages", "pool", override, cwd=tree))
    run("gzip", "-k9", binary / "Packages")
    release = run(
        "apt-ftparchive",
        "-o", "APT::FTPArchive::Release::Origin=Debian",
        "-o", "APT::FTPArchive::Release::Label=Debian",
        "-o", f"APT::FTPArchive::Release::Version={DEBIAN_RELEASE}.5",
        "-o", f"APT::FTPArchive::Release::Codename={DEBIAN_CODENAME}",
        "-o", "APT::FTPArchive::Release::Suite=stable",
        "-o", f"APT::FTPArchive::Release::Architectures={arch}",
        "-o", "APT::FTPArchive::Release::Components=main",
        "release", f"dists/{DEBIAN_CODENAME}",
        cwd=tree,
    )  # fmt: skip
    (tree / f"dists/{DEBIAN_CODENAME}/Release").write_text(release)
    (tree / "debian").symlink_to(".")  # as on Debian's media
    return tree


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)  # the cache is usually on the same disk: no copy
    except OSError:
        shutil.copy(source, target)


def iso(tree: Path, output: Path, label: str) -> Path:
    run("xorriso", "-as", "mkisofs", "-r", "-J", "-V", label, "-o", output, tree)
    return output
