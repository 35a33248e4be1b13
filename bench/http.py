"""Boot-file HTTP serving against nginx, side by side on one file in one run.

The file is --file (a real packed image, say), else --size-mb MiB of random
bytes made in a temporary directory and read once so that both servers find
it in the page cache.  CLIENTS downloads of it run at once, each a real
`curl -o /dev/null`, first from the daemon's server (serve_http, in this
process) and then from nginx (nginx-light, its own process: sendfile on,
worker_processes auto), both on loopback, at the same URL: the file's
absolute path, xCAT's convention.  With --runs N they alternate N times and
the medians count.

Target (issue 7): aggregate throughput at least 70 % of nginx's.

    .venv/bin/python -m bench.http [--file PATH] [--size-mb N] [--clients N] [--runs N]
"""

from __future__ import annotations

import argparse
import getpass
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import trio

from xcatd.boot.http import serve_http

from .common import report

SIZE_MB = 512
CLIENTS = 50
TARGET = 0.70
TIMEOUT = 600  # seconds one round of downloads may take before the run is broken
NGINX_START = 10  # seconds nginx gets to start listening

NGINX_CONF = """\
user {user};
worker_processes auto;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    server {{
        listen 127.0.0.1:{port};
        root /;
    }}
}}
"""


class BenchmarkFailure(Exception):
    pass


def make_file(path: Path, size_mb: int) -> None:
    with path.open("wb") as out:
        for _ in range(size_mb):
            out.write(os.urandom(1 << 20))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def download_all(url: str, clients: int, size: int) -> float:
    """Seconds for `clients` curls fetching url at once; each must get size bytes."""
    sizes: list[int] = []

    async def one() -> None:
        done = await trio.run_process(
            ["curl", "-sS", "-o", "/dev/null", "-w", "%{size_download}", url],
            capture_stdout=True, capture_stderr=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise BenchmarkFailure(f"curl {url}: {done.stderr.decode().strip()}")
        sizes.append(int(done.stdout))

    started = time.perf_counter()
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            for _ in range(clients):
                nursery.start_soon(one)
    elapsed = time.perf_counter() - started
    if sizes != [size] * clients:
        raise BenchmarkFailure(f"{url}: downloads of {sorted(set(sizes))} bytes, not {size}")
    return elapsed


async def start_nginx(nursery: trio.Nursery, prefix: Path) -> int:
    """nginx serving / on a free loopback port, a child of `nursery` (stopped with it)."""
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(user=getpass.getuser(), prefix=prefix, port=port))
    command = ["nginx", "-c", str(conf), "-p", str(prefix), "-g", "daemon off;"]
    nursery.start_soon(partial(trio.run_process, command, stderr=subprocess.DEVNULL))
    with trio.move_on_after(NGINX_START):
        while True:
            try:
                await (await trio.open_tcp_stream("127.0.0.1", port)).aclose()
                return port
            except OSError:
                await trio.sleep(0.05)
    raise BenchmarkFailure(f"nginx did not listen: see {prefix}/error.log")


async def measure(path: Path, clients: int, runs: int, prefix: Path) -> tuple[float, float]:
    """Median seconds of a round of downloads from serve_http, then from nginx."""
    size = path.stat().st_size
    ours, theirs = [], []
    async with trio.open_nursery() as nursery:
        xcatd_port = await nursery.start(serve_http, [path.parent], "127.0.0.1", 0)
        nginx_port = await start_nginx(nursery, prefix)
        for _ in range(runs):
            ours.append(await download_all(f"http://127.0.0.1:{xcatd_port}{path}", clients, size))
            theirs.append(await download_all(f"http://127.0.0.1:{nginx_port}{path}", clients, size))
        nursery.cancel_scope.cancel()
    return statistics.median(ours), statistics.median(theirs)


def main(file: Path | None = None, size_mb: int = SIZE_MB, clients: int = CLIENTS, runs: int = 1):
    with tempfile.TemporaryDirectory(prefix="xcatd-bench-http-", dir="/var/tmp") as tmp:
        workdir = Path(tmp)
        os.chmod(workdir, 0o755)  # nginx's workers may run as another user
        if file is None:
            file = workdir / "rootimg.cpio.gz"
            print(f"writing {size_mb} MiB of random bytes to {file} ...", flush=True)
            make_file(file, size_mb)
        file = file.resolve()
        subprocess.run(["cat", str(file)], stdout=subprocess.DEVNULL, check=True)  # page cache
        size = file.stat().st_size
        print(f"{clients} parallel downloads of {size / 2**20:.0f} MiB each; "
              f"{os.cpu_count()} cores", flush=True)  # fmt: skip
        ours, theirs = trio.run(measure, file, clients, runs, workdir)
    total_mib = clients * size / 2**20
    report("xcatd HTTP (serve_http)", total_mib / ours, "MiB/s")
    report("nginx (sendfile on)", total_mib / theirs, "MiB/s")
    ratio = theirs / ours
    return report("xcatd / nginx", 100 * ratio, "%", f">= {TARGET:.0%}", ratio >= TARGET)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--file", type=Path, help="a file to serve (e.g. a packed image)")
    parser.add_argument("--size-mb", type=int, default=SIZE_MB, help="size of the made file")
    parser.add_argument("--clients", type=int, default=CLIENTS, help="parallel downloads")
    parser.add_argument("--runs", type=int, default=1, help="rounds of each; medians count")
    arguments = parser.parse_args()
    try:
        passed = main(arguments.file, arguments.size_mb, arguments.clients, arguments.runs)
    except* BenchmarkFailure as failures:  # raised inside nurseries: in a group
        print(f"benchmark broken: {failures.exceptions[0]}", file=sys.stderr)
        sys.exit(2)
    sys.exit(0 if passed else 1)
