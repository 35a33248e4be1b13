"""genimage of a real Debian 12 image: a fresh build, then an update with
nothing new, each phase timed.

The image is the shipped Debian service profile (service.x86_64.pkglist:
systemd, dracut, the kernel, python3, dnsmasq, ...; xcatd from the wheels
`xcatd bundle` puts into its otherpkgdir; its postinstall) built with
mmdebstrap from the host's own apt sources (no pkgdir), through the real
client against a real daemon.  Phases are the lines genimage prints as it
advances ("Packages: installing ...", "Making .../initrd-stateless.gz ...",
"Looking for private keys ..."); each phase's time runs until the next phase
line.  Target (issue 5): an update with nothing new takes under 25 % of a
fresh build.

    .venv/bin/python -m bench.genimage [--profile service|compute]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from xcatd.images.profiles import SHIPPED

from .common import report, running_cluster

PHASES = (
    "Building a new image", "Updating the existing image", "Resuming the interrupted",
    "Removing the unfinished", "Packages", "Other packages", "Creating the Python environment",
    "Installing xcatd into", "Upgrading the packages", "Writing /etc/fstab", "Enabling ",
    "Running postinstall", "Removing SSH host keys", "Copying kernel", "Making ", "Keeping ",
    "Looking for private keys", "genimage of",
)  # fmt: skip


def timed_genimage(cluster, image: str) -> tuple[float, list[tuple[str, float]]]:
    """Run genimage; its wall time and (phase line, seconds) for each phase."""
    started = time.monotonic()
    process = subprocess.Popen(
        [cluster.env["PATH"].split(":")[0] + "/genimage", image],
        env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    phases: list[tuple[str, float]] = []
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(PHASES):
            phases.append((line.rstrip(), time.monotonic()))
    rc = process.wait()
    if rc != 0:
        raise RuntimeError(f"genimage {image} failed: {process.stderr.read()}")
    ended = time.monotonic()
    durations = [
        (text, (phases[i + 1][1] if i + 1 < len(phases) else ended) - at)
        for i, (text, at) in enumerate(phases)
    ]
    return ended - started, durations


def main(argv: list[str] | None = None) -> bool:
    parser = argparse.ArgumentParser(prog="bench.genimage")
    parser.add_argument("--profile", default="service", choices=("service", "compute"))
    args = parser.parse_args(argv)
    with running_cluster() as cluster:
        installdir = cluster.root.resolve() / "install"
        otherpkgdir = installdir / "post/otherpkgs/debian12/x86_64"
        bundled = cluster.xcatd("bundle", str(otherpkgdir / "xcat/wheels"))
        if bundled.returncode != 0:
            raise RuntimeError(f"xcatd bundle failed: {bundled.stderr}")
        shipped = SHIPPED / "debian"
        image = f"debian12-x86_64-netboot-{args.profile}"
        defined = cluster.run(
            "mkdef", "-t", "osimage", "-o", image, "imagetype=linux", "provmethod=netboot",
            f"profile={args.profile}", "osvers=debian12", "osarch=x86_64",
            f"pkglist={shipped}/{args.profile}.x86_64.pkglist",
            f"otherpkglist={shipped}/{args.profile}.otherpkgs.pkglist",
            f"otherpkgdir={otherpkgdir}",
            f"postinstall={shipped}/{args.profile}.postinstall",
            f"rootimgdir={installdir}/netboot/debian12/x86_64/{args.profile}",
        )  # fmt: skip
        if defined.returncode != 0:
            raise RuntimeError(f"mkdef failed: {defined.stderr}")
        figures = {}
        for kind in ("fresh", "update"):
            total, phases = timed_genimage(cluster, image)
            figures[kind] = total
            print(f"genimage {image}, {kind} build:")
            for text, seconds in phases:
                print(f"    {seconds:7.1f} s  {text[:90]}")
            report(f"genimage {kind}", total, "s")
        share = figures["update"] / figures["fresh"] * 100
        return report("update / fresh", share, "%", "< 25 %", share < 25)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
