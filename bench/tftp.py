"""TFTP throughput: one 50 MB file over loopback from the daemon's TFTP server.

The server (`xcatd.boot.tftp.serve_tftp`) runs on this process's trio loop;
the client is atftp, a separate C program and one of the few that speak
RFC 7440 windowsize.  Each figure is the median over --runs transfers of the
file (already in the page cache), with the CPU time the server used for it:

- windowsize 16, blksize 1468: what a client that asks for windows gets, and
  the main figure;
- windowsize 1, blksize 1468: one ACK per block, the way most PXE ROMs and
  iPXE fetch.

There is no target: TFTP only carries boot loaders and their small files
here; kernels and images go over HTTP.  Needs atftp (apt package atftp).

    .venv/bin/python -m bench.tftp [--size-mb N] [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

from xcatd.boot.tftp import serve_tftp

from .common import report

SIZE_MB = 50
RUNS = 3
CASES = [("windowsize 16, blksize 1468", 16, 1468), ("windowsize 1, blksize 1468", 1, 1468)]


class BenchmarkFailure(Exception):
    pass


async def _fetch(port: int, remote: str, local: Path, windowsize: int, blksize: int) -> None:
    result = await trio.run_process(
        ["atftp", "--option", f"windowsize {windowsize}", "--option", f"blksize {blksize}",
         "-g", "-r", remote, "-l", str(local), "127.0.0.1", str(port)],
        check=False, capture_stdout=True, capture_stderr=True,
    )  # fmt: skip
    if result.returncode != 0:
        raise BenchmarkFailure(f"atftp failed: {result.stderr.decode().strip()}")


async def _measure(root: Path, size: int, runs: int) -> None:
    local = root.parent / "received"
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_tftp, root, "127.0.0.1", 0)
        for label, windowsize, blksize in CASES:
            rates, cpu = [], []
            for _ in range(runs):
                started, cpu_started = time.perf_counter(), time.process_time()
                await _fetch(port, "image", local, windowsize, blksize)
                rates.append(size / 1e6 / (time.perf_counter() - started))
                cpu.append(time.process_time() - cpu_started)
                if local.stat().st_size != size:
                    raise BenchmarkFailure(f"received {local.stat().st_size} of {size} bytes")
            report(label, statistics.median(rates), "MB/s")
            print(f"{'  server CPU per transfer':<30}{statistics.median(cpu):>9.2f} s", flush=True)
        nursery.cancel_scope.cancel()


def main(size_mb: int = SIZE_MB, runs: int = RUNS) -> bool:
    if shutil.which("atftp") is None:
        raise BenchmarkFailure("atftp is not installed (apt package atftp)")
    with tempfile.TemporaryDirectory(prefix="xcatd-bench-tftp-") as tmp:
        root = Path(tmp) / "tftpboot"
        root.mkdir()
        size = size_mb * 1_000_000
        (root / "image").write_bytes(os.urandom(size))
        print(f"one {size_mb} MB file over loopback, atftp as the client, {os.cpu_count()} cores")
        trio.run(_measure, root, size, runs)
    return True


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=SIZE_MB, help="size of the file")
    parser.add_argument(
        "--runs", type=int, default=RUNS, help="transfers of each; the median counts"
    )
    arguments = parser.parse_args()
    try:
        main(arguments.size_mb, arguments.runs)
    except BenchmarkFailure as failure:
        print(f"benchmark broken: {failure}", file=sys.stderr)
        sys.exit(2)
