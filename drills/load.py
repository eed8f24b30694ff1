#!/usr/bin/env python3
"""Load drill: 64 concurrent clients mixing stores, fetches and lists for a fixed time.

Usage: drills/load.py BIN_DIR [--clients 64] [--seconds 20] [--processes 8]

The clients run as threads spread over several processes (so that Python's own lock does not
become the bottleneck). Each call is a fresh connection with a freshly signed assertion. The mix
is 30% stores (1 byte to 256 KiB), 50% fetches (checked byte-exact against the SHA-256 recorded
at store time) and 20% lists, over eight patients. Requires zero errors. Reports throughput,
latency percentiles per kind of call, and the daemon's open descriptors and resident memory
(VmRSS) when quiet before (after a warm-up run of a tenth of the time) and after, and at the peak. Fails
if the descriptors at the end exceed those at the start (connections to the index apart, which
GRDB's pools open on demand up to their sizes), or if the resident memory grew by more than half
(plus 32 MiB) between the two.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from coffre_drill import (INDEX_CONNECTIONS_MAX, Daemon, Figures, Vault, ins_of, percentile, sha256, temporary_directory,
                          winding_down)

PATIENTS = [ins_of("1%02d0275%06d" % (70 + n, 500 + n)) for n in range(8)]
SIZES = [1, 100, 1024, 4096, 16384, 65536, 65537, 131072, 262144]


def worker(state: str, bin_dir: str, patient: str, threads: int, seconds: float, seed: int, keep: int = 0) -> dict:
    """One process: `threads` clients on one patient's dossier until the time is up. With
    `keep`, a store beyond `keep` documents also deletes the oldest: the dossier's listing and
    what is fetched stay the same size, so memory that still grows is not the working set."""
    daemon = Daemon(Path(bin_dir), Path(state))
    vault = Vault(daemon)
    lock = threading.Lock()
    stored: list[tuple[str, str, int]] = []
    latencies: dict[str, list[float]] = {"store": [], "fetch": [], "list": []}
    errors: list[str] = []
    deadline = time.monotonic() + seconds

    def client(n: int):
        rng = random.Random(seed * 1000 + n)
        while time.monotonic() < deadline:
            roll = rng.random()
            with lock:
                have = len(stored)
            kind = "store" if roll < 0.3 or have == 0 else ("fetch" if roll < 0.8 else "list")
            began = time.monotonic()
            try:
                if kind == "store":
                    data = rng.randbytes(rng.choice(SIZES))
                    reply = vault.store(patient, data, document_class=rng.choice(["BIOLOGIE", "CPT_REND"]))
                    ok = reply.status == 201 and reply.json().get("sha256") == sha256(data)
                    if ok:
                        with lock:
                            stored.append((reply.json()["id"], sha256(data), len(data)))
                            oldest = stored.pop(0)[0] if keep and len(stored) > keep else None
                        if oldest:
                            deleted = vault.delete(patient, oldest)
                            ok = deleted.status == 200
                            reply = deleted
                elif kind == "fetch":
                    with lock:
                        document_id, digest, size = stored[rng.randrange(len(stored))]
                    reply = vault.fetch(patient, document_id)
                    ok = reply.status == 200 and len(reply.body) == size and sha256(reply.body) == digest
                else:
                    reply = vault.list(patient)
                    ok = reply.status == 200
                if not ok:
                    errors.append("%s answered %d %s" % (kind, reply.status, reply.body[:200]))
            except Exception as error:  # noqa: BLE001 - every failure counts and is reported
                errors.append("%s raised %r" % (kind, error))
            latencies[kind].append(time.monotonic() - began)

    pool = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return {"latencies": latencies, "errors": errors, "stored": len(stored)}


def run_clients(daemon: Daemon, args, seconds: float, seed: int) -> list[dict]:
    per_process = [args.clients // args.processes + (1 if n < args.clients % args.processes else 0)
                   for n in range(args.processes)]
    with ProcessPoolExecutor(args.processes) as pool:
        futures = [pool.submit(worker, str(daemon.state), str(daemon.bin_dir), PATIENTS[n % len(PATIENTS)], threads,
                               seconds, seed + n, args.keep) for n, threads in enumerate(per_process)]
        return [f.result() for f in futures]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bin_dir", type=Path)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--keep", type=int, default=0,
                        help="steady state: each client process keeps at most this many documents (a store deletes the oldest)")
    args = parser.parse_args()
    figures = Figures("load")
    figures["clients"] = args.clients
    if args.keep:
        figures["documents kept per client process (steady state)"] = args.keep
    figures["duration (s)"] = args.seconds
    tmp = temporary_directory("coffre-load-")
    daemon = Daemon(args.bin_dir.resolve(), tmp / "state")
    with winding_down(figures, tmp, daemon, graceful=True):
        daemon.start()
        vault = Vault(daemon)
        for ins in PATIENTS:
            assert vault.create_dossier(ins).status == 201
        # Warm-up: lazily created pools (SQLite readers, I/O threads) open their descriptors now,
        # so that the quiet counts before and after the measured run compare like with like.
        warm_up = max(2.0, args.seconds / 10)
        run_clients(daemon, args, warm_up, args.seed + 10_000)
        time.sleep(1)
        fds_start, rss_start = daemon.fd_count(), daemon.rss_kib()
        targets_start = daemon.fd_targets()
        figures["descriptors at start (quiet, after warm-up)"] = fds_start
        figures["VmRSS at start (MiB)"] = round(rss_start / 1024, 1)
        peak = {"fd": 0, "rss": 0}
        # VmRSS by tenth of the run: a cache fills and levels off, a leak keeps climbing.
        series: list[int] = []
        stop = threading.Event()

        def sample():
            began = time.monotonic()
            while not stop.wait(0.5):
                try:
                    rss = daemon.rss_kib()
                    peak["fd"] = max(peak["fd"], daemon.fd_count())
                    peak["rss"] = max(peak["rss"], rss)
                    if time.monotonic() - began >= len(series) * args.seconds / 10:
                        series.append(rss)
                except OSError:
                    pass

        sampler = threading.Thread(target=sample)
        sampler.start()
        began = time.monotonic()
        results = run_clients(daemon, args, args.seconds, args.seed)
        elapsed = time.monotonic() - began
        stop.set()
        sampler.join()
        time.sleep(1)  # the quiet figures: connections the clients just closed
        # The index's connections apart, every descriptor must come back to where it was:
        # connections the clients just closed are given 10 s more to close on the daemon's side.
        grown, index_end = daemon.descriptors_grown(targets_start)
        fds_end, rss_end = daemon.fd_count(), daemon.rss_kib()
        latencies = {k: [x for r in results for x in r["latencies"][k]] for k in ("store", "fetch", "list")}
        errors = [e for r in results for e in r["errors"]]
        total = sum(len(v) for v in latencies.values())
        figures["calls"] = total
        figures["calls per second"] = round(total / elapsed, 1)
        for kind, values in latencies.items():
            figures["%s: calls" % kind] = len(values)
            figures["%s: p50 / p90 / p99 / max (ms)" % kind] = " / ".join(
                "%.1f" % (1000 * v) for v in (percentile(values, 50), percentile(values, 90), percentile(values, 99),
                                              max(values, default=0)))
        figures["errors"] = len(errors)
        figures["descriptors at the peak"] = peak["fd"]
        figures["descriptors at the end (quiet)"] = fds_end
        figures["VmRSS at the peak (MiB)"] = round(peak["rss"] / 1024, 1)
        figures["VmRSS at the end (MiB)"] = round(rss_end / 1024, 1)
        figures["VmRSS by tenth of the run (MiB)"] = " ".join("%.0f" % (kib / 1024) for kib in series)
        if len(series) >= 10:
            figures["VmRSS growth, second half vs first half (MiB)"] = "%.1f vs %.1f" % (
                (series[-1] - series[len(series) // 2]) / 1024, (series[len(series) // 2] - series[0]) / 1024)
        for error in errors[:10]:
            figures.fail(error)
        if len(errors) > 10:
            figures.fail("... and %d more errors" % (len(errors) - 10))
        # The load may reach a concurrency of reads the warm-up did not: the index's
        # connections may grow up to the pools' sizes.
        index_start = sum(1 for t in targets_start if t.endswith("/index.sqlite"))
        figures["index connections at start / end (pool bound %d)" % INDEX_CONNECTIONS_MAX] = "%d / %d" % (
            index_start, index_end)
        if index_end > INDEX_CONNECTIONS_MAX:
            figures.fail("%d connections to the index at the end, more than its pools hold (%d)" % (
                index_end, INDEX_CONNECTIONS_MAX))
        if grown:
            figures.fail("descriptors grew (the index's connections apart), still open 10 s after the clients left: %s"
                         % grown)
        if rss_end > rss_start * 1.5 + 32 * 1024:
            figures.fail("resident memory grew from %d KiB at the start to %d KiB at the end" % (rss_start, rss_end))
        report = daemon.verify()
        figures["verify: documents checked"] = report.get("documentsChecked")
        if not report.get("ok"):
            figures.fail("coffre admin verify after the load: %s" % report.get("problems"))
    return figures.report()


if __name__ == "__main__":
    raise SystemExit(main())
