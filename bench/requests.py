"""Daemon throughput and latency for small requests.

A small request is `lsxcatd -v`, signed afresh each time (the replay guard
refuses a nonce seen before), on a connection kept open.  The load is a
closed loop: CONNECTIONS connections, each with DEPTH requests in flight
(1 by default: send, wait for its `done`, send the next).  Requests whose
`done` arrives in the DURATION seconds after a WARMUP are counted.  Target:
at least 2,000 requests/s over 8 connections; p50 and p99 latency (send to
`done`) are printed beside it.

The daemon is single-threaded trio and the machine has 2 cores, so the load
comes from PROCESSES separate processes (threads within each, one per
connection) using the real client's `Connection` with stdlib ssl; the CPU
each side used is printed so that a saturated load generator shows.

    .venv/bin/python -m bench.requests [--duration S] [--warmup S] [--depth N]
"""

from __future__ import annotations

import argparse
import getpass
import multiprocessing
import os
import statistics
import sys
import threading
import time

from xcat_client.connection import Connection
from xcat_client.credentials import Credentials, Target
from xcat_protocol.messages import Done

from .common import percentile, report, running_cluster

PROCESSES = 2
CONNECTIONS = 8
TIMEOUT = 10  # seconds any single receive may take before the run is declared broken


class Load:
    """One load process's share: its connections, and what they measured."""

    def __init__(self, env: dict[str, str], connections: int, depth: int) -> None:
        self.env, self.connections, self.depth = env, connections, depth
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.cpu_seconds = 0.0

    def run(self, begin: float, measure_from: float, end: float) -> Load:
        """Drive the connections from `begin` to `end` (time.monotonic, which on
        Linux is one clock for every process); keep what completed after `measure_from`."""
        threads = [
            threading.Thread(target=self._drive, args=(begin, measure_from, end))
            for _ in range(self.connections)
        ]
        for thread in threads:
            thread.start()
        time.sleep(max(0.0, measure_from - time.monotonic()))
        cpu = time.process_time()
        time.sleep(max(0.0, end - time.monotonic()))
        self.cpu_seconds = time.process_time() - cpu
        for thread in threads:
            thread.join(TIMEOUT * 2)
        return self

    def _drive(self, begin: float, measure_from: float, end: float) -> None:
        try:
            connection = Connection(
                Target.from_environment(self.env), Credentials.from_environment(self.env)
            )
        except Exception as exc:
            self.failures.append(f"connect: {exc}")
            return
        connection.sock.settimeout(TIMEOUT)
        sent: dict[int, float] = {}
        cwd, user = os.getcwd(), getpass.getuser()
        time.sleep(max(0.0, begin - time.monotonic()))
        try:
            while True:
                while len(sent) < self.depth and time.monotonic() < end:
                    request_id = connection.request("lsxcatd", ["-v"], user=user, cwd=cwd, env={})
                    sent[request_id] = time.monotonic()
                if not sent:
                    return
                message = connection.receive()
                if isinstance(message, Done):
                    now = time.monotonic()
                    started = sent.pop(message.id)
                    if message.rc != 0:
                        self.failures.append(f"request {message.id}: rc {message.rc}")
                    elif measure_from <= now < end:
                        self.latencies.append(now - started)
        except Exception as exc:
            self.failures.append(f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()


def _run_load(args: tuple[Load, float, float, float]) -> Load:
    load, *schedule = args
    return load.run(*schedule)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(duration: float = 10.0, warmup: float = 1.0, depth: int = 1) -> bool:
    with running_cluster() as cluster:
        assert cluster.process is not None
        per_process = CONNECTIONS // PROCESSES
        begin = time.monotonic() + 1.0  # time for the processes to start and connect
        measure_from, end = begin + warmup, begin + warmup + duration
        schedule = (begin, measure_from, end)
        loads = [(Load(cluster.env, per_process, depth), *schedule) for _ in range(PROCESSES)]
        with multiprocessing.Pool(PROCESSES) as pool:
            pending = pool.map_async(_run_load, loads)
            time.sleep(max(0.0, measure_from - time.monotonic()))
            daemon_cpu = cpu_seconds(cluster.process.pid)
            time.sleep(max(0.0, end - time.monotonic()))
            daemon_cpu = cpu_seconds(cluster.process.pid) - daemon_cpu
            results = pending.get(timeout=TIMEOUT * 3)
    latencies = [t * 1000 for load in results for t in load.latencies]
    failures = [failure for load in results for failure in load.failures]
    load_cpu = sum(load.cpu_seconds for load in results)
    print(
        f"{CONNECTIONS} connections ({PROCESSES} processes x {per_process}), closed loop, "
        f"{depth} request(s) in flight each, {duration:g} s after {warmup:g} s warm-up",
        flush=True,
    )
    for failure in failures[:5]:
        print(f"  failed: {failure}", file=sys.stderr)
    if not latencies:
        print("no request completed", file=sys.stderr)
        return False
    rate = len(latencies) / duration
    ok = report("requests/s", rate, "req/s", ">= 2000 req/s", rate >= 2000 and not failures)
    report("latency p50", statistics.median(latencies), "ms")
    report("latency p99", percentile(latencies, 99), "ms")
    report("daemon CPU", 100 * daemon_cpu / duration, "% core")
    report("load generator CPU", 100 * load_cpu / duration, "% core")
    return ok


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.requests", description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--depth", type=int, default=1, help="requests in flight per connection")
    return parser.parse_args()


if __name__ == "__main__":
    options = _arguments()
    sys.exit(0 if main(options.duration, options.warmup, options.depth) else 1)
