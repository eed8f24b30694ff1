#!/usr/bin/env python3
"""Start to READY after a crash (`kill -9`) on a vault of many documents, for comparing builds.

After an unclean stop the daemon compares every blob on disk with the index before it serves.
Seeding a million real documents through the daemon takes most of an hour (`make bench`), so
this builds a vault the quick way: one real document stored through the daemon, then its index
row copied N times under new ids (SQLite, in one transaction) and its blob file hard-linked
under each new name in its shard. The copies do not decrypt (their ids are bound to the blob
by its authentication), which the reconciliation does not look at: it only compares names.
`coffre admin verify` on this vault would rightly fail. A few orphans and one missing blob are
planted; the first, untimed start removes the orphans.

Then, for each build in turn (alternating, `--rounds` times): time a start to READY=1 after a
`kill -9`, read the daemon's peak memory (VmHWM), and `kill -9` it again.

Usage: bench/reconcile.py --bin-dir DIR [--bin-dir DIR ...] --tools bench/out [--documents 1000000] [--rounds 3]
                          [--keep]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workloads import Coffre, Daemon  # noqa: E402


def build_vault(bin_dir: Path, tools: Path, work: Path, documents: int) -> Path:
    state = work / "coffre"
    daemon = Daemon(bin_dir.resolve(), state, work / "build.log")
    daemon.start()
    try:
        coffre = Coffre(daemon, tools.resolve() / "loadgen", work)
        patients = coffre.new_patients(1)
        listing = work / "stored"
        coffre.load("store", coffre.targets(patients), 1, count=1, size=4096, out=listing)
    finally:
        daemon.stop()
    original = listing.read_text().split()[1]
    blob = state / "blobs" / original[:2] / original
    index = sqlite3.connect(state / "index.sqlite")
    columns = [row[1] for row in index.execute("PRAGMA table_info(document)")]
    others = ", ".join(c for c in columns if c != "id")
    t0 = time.monotonic()
    ids = [secrets.token_hex(16) for _ in range(documents - 1)]
    with index:
        index.executemany("INSERT INTO document (id, %s) SELECT ?, %s FROM document WHERE id = ?" % (others, others),
                          ((new, original) for new in ids))
    index.close()
    # ext4 allows 65,000 links to a file: each copy of the blob serves 60,000 names.
    sources = []
    for number, new in enumerate(ids + [secrets.token_hex(16) for _ in range(3)]):
        if number % 60_000 == 0:
            sources.append(work / ("blob-%d" % len(sources)))
            shutil.copyfile(blob, sources[-1])
        os.link(sources[-1], state / "blobs" / new[:2] / new)
    # The last three are orphans (linked, never committed); one row loses its blob.
    os.unlink(state / "blobs" / ids[0][:2] / ids[0])
    os.sync()
    print("vault of %d documents built in %.0f s" % (documents, time.monotonic() - t0), flush=True)
    return state


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", required=True, type=Path, action="append")
    parser.add_argument("--tools", required=True, type=Path)
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the vault (its path is printed)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="coffre-reconcile-"))
    try:
        state = build_vault(args.bin_dir[0], args.tools, work, args.documents)
        times: dict[Path, list[float]] = {b: [] for b in args.bin_dir}
        peaks: dict[Path, list[int]] = {b: [] for b in args.bin_dir}
        # The vault was stopped cleanly: one untimed start (which removes the orphans), then a
        # crash, so that every timed start comes after a kill -9.
        first = Daemon(args.bin_dir[0].resolve(), state, work / "daemon.log")
        first.start()
        first.stop(kill=True)
        for round_number in range(1, args.rounds + 1):
            for bin_dir in args.bin_dir:
                daemon = Daemon(bin_dir.resolve(), state, work / "daemon.log")
                seconds = daemon.start()
                peak = daemon.status("VmHWM")
                daemon.stop(kill=True)
                times[bin_dir].append(seconds)
                peaks[bin_dir].append(peak)
                print("round %d  %-50s READY after kill -9 %7.2f s  peak %6.0f MiB" % (
                    round_number, bin_dir, seconds, peak / 1024), flush=True)
        print()
        for bin_dir in args.bin_dir:
            print("%-50s median %.2f s, peak %.0f MiB" % (
                bin_dir, statistics.median(times[bin_dir]), statistics.median(peaks[bin_dir]) / 1024))
        log = (work / "daemon.log").read_text()
        print("last recovery:", [line for line in log.splitlines() if "vault recovered" in line][-1][:300])
    finally:
        if args.keep:
            print("vault kept: %s" % (work / "coffre"))
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
