#!/usr/bin/env python3
"""Small documents only, Coffre only, for comparing builds while changing the request path.

Runs the 32 KiB store and fetch phases of the benchmark (`Coffre.small`) against one or more
builds, alternating between them round by round so that they share the machine's moods, and
prints ops/s, p50/p99 and the daemon's CPU per request for each. Not the benchmark of record
(that is `make bench`, which also runs the peers): a tool for a before/after.

Usage: bench/small.py --bin-dir DIR [--bin-dir DIR ...] --tools bench/out [--clients 1,8,32]
                      [--seconds 3] [--rounds 2] [--large-mib 256]

`--clients ""` with `--large-mib N` measures one large document only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from workloads import Coffre, Daemon


def measure(bin_dir: Path, tools: Path, clients: list[int], seconds: float, scratch: Path, large: Path | None) -> dict:
    work = Path(tempfile.mkdtemp(prefix="run-", dir=scratch))
    daemon = Daemon(bin_dir.resolve(), work / "coffre", work / "coffred.log")
    daemon.start()
    try:
        coffre = Coffre(daemon, tools.resolve() / "loadgen", work)
        if large:
            mib = large.stat().st_size / (1 << 20)
            # Each build starts with the page cache written back: otherwise the previous
            # round's dirty gigabyte is flushed during this one's fsync.
            os.sync()
            cpu = daemon.cpu_seconds()
            timing = coffre.large(large)
            print("large %-28s store %6.0f MiB/s  fetch %6.0f MiB/s  daemon CPU %.2f s" % (
                bin_dir, mib / timing["store_s"], mib / timing["fetch_s"], daemon.cpu_seconds() - cpu), flush=True)
        if not clients:
            return {}
        coffre.small(2, 1)  # warm up: dossiers, caches, the WAL file
        return {n: coffre.small(n, seconds) for n in clients}
    finally:
        daemon.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", required=True, type=Path, action="append")
    parser.add_argument("--tools", required=True, type=Path)
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--large-mib", type=int, default=0, help="also store and fetch one document this large")
    args = parser.parse_args()
    clients = [int(n) for n in args.clients.split(",") if n]
    # Scratch files are deleted only at the end: on an ext4 without a journal (this machine's),
    # the kernel skips inodes freed in the last 60 to 300 seconds when it allocates one, one by
    # one, so deleting a run's files would tax every file the next run creates.
    scratch = Path(tempfile.mkdtemp(prefix="coffre-small-"))
    large = None
    if args.large_mib:
        large = scratch / "large.bin"
        with open(large, "wb") as f:
            for _ in range(args.large_mib):
                f.write(os.urandom(1 << 20))
    try:
        run_rounds(args, clients, scratch, large)
    finally:
        subprocess.run(["rm", "-rf", str(scratch)])
    return 0


def run_rounds(args, clients: list[int], scratch: Path, large: Path | None) -> None:
    for round_number in range(1, args.rounds + 1):
        for bin_dir in args.bin_dir:
            results = measure(bin_dir, args.tools, clients, args.seconds, scratch, large)
            for n, phases in results.items():
                line = ["round %d  %-28s %2d clients" % (round_number, bin_dir, n)]
                for mode in ("store", "fetch"):
                    r = phases[mode]
                    line.append("%s %6.0f/s p50 %5.2f p99 %5.2f ms cpu %.2f ms" % (
                        mode, r["ops_per_s"], r["p50_ms"], r["p99_ms"], r["daemon_cpu_ms_per_op"]))
                print("  ".join(line), flush=True)


if __name__ == "__main__":
    sys.exit(main())
