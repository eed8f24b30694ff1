#!/usr/bin/env python3
"""Where coffred spends its CPU: perf samples of the daemon (release build) during three phases,
32 KiB stores and fetches by 8 clients, and one 256 MiB document stored and fetched through
`coffre`. valgrind 3.19 (Debian 12) cannot run the Swift runtime here (it crashes in
libdispatch), so this uses `perf record -e cpu-clock` (a software event: works in a VM).

Usage: bench/profile.py --bin-dir DIR --tools DIR [--seconds 8] [--clients 8] [--phases store,fetch,large]
                        [--out DIR]

Prints, per phase, the share of the daemon's samples by library, the heaviest Coffre, GRDB and
Foundation functions (inclusive), and libsodium's share split by the nearest exported symbol
below each address (libsodium's internal functions have no symbols: the SHA-256 block
function, for instance, sits between crypto_hash_sha256_statebytes and crypto_hash_sha256_init).
The perf.data files stay in --out for `perf report -i`.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workloads import Coffre, Daemon  # noqa: E402

SODIUM = "/usr/lib/x86_64-linux-gnu/libsodium.so.23"


def report(data: Path, *args: str) -> str:
    return subprocess.run(["perf", "report", "-i", str(data), "--stdio", "-g", "none", *args], capture_output=True,
                          text=True).stdout


def percent_lines(text: str) -> list[tuple[float, str]]:
    rows = []
    for line in text.splitlines():
        match = re.match(r"\s*([\d.]+)%\s+(?:[\d.]+%\s+)?(.*)$", line)
        if match and not line.lstrip().startswith("#"):
            rows.append((float(match.group(1)), match.group(2).strip()))
    return rows


def sodium_split(data: Path) -> collections.Counter:
    symbols = sorted((int(a, 16), name) for a, _, name in
                     (line.split() for line in subprocess.run(["nm", "-D", "--defined-only", SODIUM], capture_output=True,
                                                              text=True).stdout.splitlines()))
    addresses = [a for a, _ in symbols]
    split = collections.Counter()
    for share, rest in percent_lines(report(data, "--no-children", "--sort", "symbol", "--dsos", Path(SODIUM).resolve().name)):
        match = re.search(r"0x([0-9a-f]+)", rest)
        if match:
            i = bisect.bisect_right(addresses, int(match.group(1), 16)) - 1
            split["after " + symbols[i][1] if i >= 0 else "?"] += share
        else:
            split[rest.split()[-1]] += share
    return split


def summarize(name: str, data: Path) -> None:
    print("\n=== %s" % name)
    print("by library (share of the daemon's CPU samples):")
    for share, dso in percent_lines(report(data, "--no-children", "--sort", "dso"))[:6]:
        print("  %5.1f%%  %s" % (share, dso))
    print("heaviest Coffre / GRDB / Foundation functions, inclusive:")
    demangled = subprocess.run(["swift", "demangle", "--simplified"], input=report(data, "--children", "--sort", "symbol"),
                               capture_output=True, text=True).stdout
    seen = 0
    for share, symbol in percent_lines(demangled):
        symbol = re.sub(r"^\[.\]\s*", "", symbol).rstrip(" -")
        if re.search(r"Vault|Coffre|Gatekeeper|Routes|Middleware|Trace|Blob|GRDB|JSON(De|En)coder|SignedAssertion", symbol) \
                and not symbol.startswith(("partial apply", "protocol witness")):
            print("  %5.1f%%  %s" % (share, symbol[:150]))
            seen += 1
            if seen == 15:
                break
    split = sodium_split(data)
    if split:
        print("libsodium, by nearest exported symbol below the sampled address:")
        for where, share in split.most_common(4):
            print("  %5.1f%%  %s" % (share, where))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", required=True, type=Path)
    parser.add_argument("--tools", required=True, type=Path)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--phases", default="store,fetch,large")
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="coffre-profile-")))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="coffre-profile-work-"))
    daemon = Daemon(args.bin_dir.resolve(), work / "coffre", work / "coffred.log")
    daemon.start()
    coffre = Coffre(daemon, args.tools.resolve() / "loadgen", work)
    clients = args.clients
    patients = coffre.new_patients(clients)
    targets, stored = coffre.targets(patients), work / "stored"
    coffre.load("store", targets, clients, count=200, out=stored)  # warm up

    def phase(name: str, action) -> None:
        if name not in args.phases.split(","):
            return
        data = args.out / ("perf.%s.data" % name)
        perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "999", "-g", "-o", str(data), "-p",
                                 str(daemon.process.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        cpu = daemon.cpu_seconds()
        result = action()
        used = daemon.cpu_seconds() - cpu
        perf.send_signal(signal.SIGINT)
        perf.wait()
        print("\n%s: %s; daemon CPU %.2f s" % (name, result, used))
        summarize(name, data)

    try:
        phase("store", lambda: coffre.load("store", targets, clients, seconds=args.seconds, out=stored)["result"])
        phase("fetch", lambda: coffre.load("fetch", stored, clients, seconds=args.seconds)["result"])
        if "large" in args.phases.split(","):
            big = work / "large.bin"
            with open(big, "wb") as f:
                for _ in range(256):
                    f.write(os.urandom(1 << 20))
            phase("large", lambda: coffre.large(big))
    finally:
        daemon.stop()
        subprocess.run(["rm", "-rf", str(work)])
    print("\nperf data: %s" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
