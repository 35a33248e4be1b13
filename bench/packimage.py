"""packimage against xCAT's pipeline, side by side on one tree in one run.

The tree is a root image given with --tree, else a copy of parts of this
machine's /usr of about --size-mb MiB (the Debian service rootimg is
~0.75-1.7 GB).  After one read of the whole tree (so every figure finds it in
the page cache), the same tree is packed by

- xCAT's pipeline: `find . | cpio -H newc -o | pigz` (pigz at its default
  level 6 on every core), the reference;
- `packimage -c gzip` and `packimage -c zstd`, each a whole run of the real
  client against a real daemon (`--all` adds xz, tar and squashfs, with no
  targets).

Targets (issue 6):
- gzip: time no more than the pipeline's (ratio <= 1.0, printed as a
  percentage), output at most 3 % larger;
- zstd: at least 4x faster than the pipeline, output no larger;
- the daemon's peak resident memory under 300 MiB (VmRSS sampled every
  50 ms while packing, and the kernel's VmHWM).

    .venv/bin/python -m bench.packimage [--tree DIR] [--size-mb N] [--runs N] [--all]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import report, running_cluster
from .objects import MemorySampler, status_kib

SIZE_MB = 1300
MEMORY_LIMIT_MIB = 300
TIMEOUT = 1200
# Parts of /usr a root image is made of, in the order they are taken.
SOURCES = ["bin", "sbin", "lib/x86_64-linux-gnu", "lib/aarch64-linux-gnu", "share", "include",
           "lib/python3", "libexec"]  # fmt: skip


class BenchmarkFailure(Exception):
    pass


def _size(path: Path) -> int:
    out = subprocess.run(["du", "-sb", "--", str(path)], capture_output=True, text=True)
    return int(out.stdout.split()[0]) if out.returncode == 0 else 0


def build_tree(rootimg: Path, size_mb: int) -> int:
    """Copy parts of /usr into rootimg/usr until about size_mb MiB; bytes copied."""
    budget, total = size_mb << 20, 0
    for source in SOURCES:
        origin = Path("/usr", source)
        if not origin.is_dir() or origin.is_symlink():
            continue
        parts = [origin] if source != "share" else sorted(origin.iterdir())
        for part in parts:
            if total >= budget:
                return total
            if part.is_symlink() or not part.exists():
                continue
            size = _size(part)
            if total + size > budget * 1.15 and total > budget * 0.5:
                continue  # too big a step past the target: try the next one
            target = rootimg / part.relative_to("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["cp", "-a", str(part), str(target)], check=True)
            total += size
    return total


def warm(rootimg: Path) -> None:
    """Read every file once so that no figure pays for the disk."""
    subprocess.run(f"tar -C {rootimg} -cf - . | cat > /dev/null", shell=True, check=True)


def pipeline(rootimg: Path, out: Path) -> tuple[float, int]:
    started = time.perf_counter()
    subprocess.run(
        ["bash", "-o", "pipefail", "-c",
         f"cd {rootimg} && find . | cpio -H newc -o --quiet | pigz > {out}"],
        check=True, timeout=TIMEOUT,
    )  # fmt: skip
    return time.perf_counter() - started, out.stat().st_size


def main(tree: Path | None = None, size_mb: int = SIZE_MB, runs: int = 1, every: bool = False):
    with tempfile.TemporaryDirectory(prefix="xcatd-bench-pack-", dir="/var/tmp") as tmp:
        workdir = Path(tmp)
        imagedir = workdir / "image"
        if tree is None:
            print(f"copying about {size_mb} MiB of /usr into {imagedir}/rootimg ...", flush=True)
            copied = build_tree(imagedir / "rootimg", size_mb)
        else:
            imagedir.mkdir()
            print(f"copying {tree} into {imagedir}/rootimg ...", flush=True)
            subprocess.run(["cp", "-a", str(tree), str(imagedir / "rootimg")], check=True)
            copied = _size(imagedir / "rootimg")
        files = sum(len(f) + len(d) for _, d, f in os.walk(imagedir / "rootimg"))
        print(f"tree: {copied / 2**20:.0f} MiB in {files:,} entries; "
              f"{os.cpu_count()} cores", flush=True)  # fmt: skip
        warm(imagedir / "rootimg")
        with running_cluster() as cluster:
            return _measure(cluster, imagedir, workdir, runs, every)


def _measure(cluster, imagedir: Path, workdir: Path, runs: int, every: bool) -> bool:
    made = cluster.run("mkdef", "-t", "osimage", "-o", "bench", "provmethod=netboot",
                       f"rootimgdir={imagedir}")  # fmt: skip
    if made.returncode != 0:
        raise BenchmarkFailure(f"mkdef failed: {made.stderr}")
    assert cluster.process is not None
    sampler = MemorySampler(cluster.process.pid)
    sampler.start()
    idle_mib = status_kib(cluster.process.pid, "VmRSS") / 1024

    reference = [pipeline(imagedir / "rootimg", workdir / "pipeline.cpio.gz") for _ in range(runs)]
    (workdir / "pipeline.cpio.gz").unlink()
    base_time = statistics.median(t for t, _ in reference)
    base_size = reference[0][1]
    print(f"{'find | cpio -H newc -o | pigz':<30}{base_time:>9.1f} s     "
          f"{base_size / 2**20:.0f} MiB", flush=True)  # fmt: skip

    def pack(*options: str) -> tuple[float, int, float]:
        times, size, peak = [], 0, 0.0
        for _ in range(runs):
            sampler.phase()
            started = time.perf_counter()
            ran = cluster.run("packimage", *options, "bench", timeout=TIMEOUT)
            times.append(time.perf_counter() - started)
            peak = max(peak, sampler.phase() / 1024)
            if ran.returncode != 0:
                raise BenchmarkFailure(f"packimage {' '.join(options)}: {ran.stderr}")
            packed = Path(ran.stdout.splitlines()[-1].split()[1].rstrip(":"))
            size = packed.stat().st_size
        median = statistics.median(times)
        print(f"{'packimage ' + ' '.join(options):<30}{median:>9.1f} s     "
              f"{size / 2**20:.0f} MiB   daemon peak VmRSS {peak:.0f} MiB", flush=True)  # fmt: skip
        return median, size, peak

    gzip_time, gzip_size, gzip_peak = pack("-c", "gzip")
    zstd_time, zstd_size, zstd_peak = pack("-c", "zstd")
    peaks = [gzip_peak, zstd_peak]
    if every:
        others = [("-c", "xz"), ("-m", "tar", "-c", "zstd"), ("-m", "squashfs", "-c", "zstd")]
        peaks += [pack(*options)[2] for options in others]
    sampler.stop()
    hwm = status_kib(cluster.process.pid, "VmHWM") / 1024

    print()
    ok = report("gzip time / pipeline", 100 * gzip_time / base_time, "%", "<= 100 %",
                gzip_time <= base_time)  # fmt: skip
    ok &= report("gzip size / pipeline", 100 * gzip_size / base_size, "%", "<= 103 %",
                 gzip_size <= base_size * 1.03)  # fmt: skip
    ok &= report("zstd speed-up over pipeline", base_time / zstd_time, "x", ">= 4.0",
                 base_time / zstd_time >= 4)  # fmt: skip
    ok &= report("zstd size / pipeline", 100 * zstd_size / base_size, "%", "<= 100 %",
                 zstd_size <= base_size)  # fmt: skip
    peak = max(peaks)
    ok &= report("daemon peak VmRSS packing", peak, "MiB", f"< {MEMORY_LIMIT_MIB} MiB",
                 peak < MEMORY_LIMIT_MIB)  # fmt: skip
    ok &= report("daemon VmHWM (kernel's peak)", hwm, "MiB", f"< {MEMORY_LIMIT_MIB} MiB",
                 hwm < MEMORY_LIMIT_MIB)  # fmt: skip
    print(f"(daemon idle VmRSS {idle_mib:.0f} MiB)")
    return ok


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", type=Path, help="a root image to copy and pack")
    parser.add_argument("--size-mb", type=int, default=SIZE_MB, help="size of the /usr copy")
    parser.add_argument("--runs", type=int, default=1, help="runs of each; the median counts")
    parser.add_argument("--all", action="store_true", help="also xz, tar and squashfs")
    arguments = parser.parse_args()
    try:
        passed = main(arguments.tree, arguments.size_mb, arguments.runs, arguments.all)
    except BenchmarkFailure as failure:
        print(f"benchmark broken: {failure}", file=sys.stderr)
        sys.exit(2)
    sys.exit(0 if passed else 1)
