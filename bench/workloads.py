"""Coffre's side of the benchmarks: a real `coffred --dev` (release build), driven by the real
`coffre` client for large documents and by `loadgen` (C, HTTP/1.1 keep-alive on the Unix
socket) for many small ones. Both mint a fresh actor assertion for every request, with the
development issuer key the daemon wrote in its state directory: assertions are single-use.

Start-to-READY is read the way systemd reads it: the daemon gets a `NOTIFY_SOCKET` (a datagram
socket bound here) and the time is taken from spawning `coffred` to its `READY=1`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from common import run_json

SMALL = 32 * 1024
PROBE_DOSSIERS = 10        # the dossiers that list and fetch are measured on
DOCS_PER_DOSSIER = 100     # every seeded dossier holds this many documents


def ins_of(n: int) -> str:
    """A valid INS (key = 97 - NIR mod 97) for patient number n."""
    nir = "1%012d" % n
    return nir + "%02d" % (97 - int(nir) % 97)


class Daemon:
    """`coffred --dev --state-dir STATE`, its socket in STATE."""

    def __init__(self, bin_dir: Path, state: Path, log: Path):
        self.bin_dir, self.state, self.log = bin_dir, state, log
        self.socket = state / "coffred.sock"
        self.process: subprocess.Popen | None = None

    def start(self) -> float:
        """Starts the daemon; returns the seconds from spawn to READY=1."""
        notify_path = self.state.parent / ("notify-%d" % os.getpid())
        if notify_path.exists():
            notify_path.unlink()
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(notify_path))
        notify.settimeout(1.0)
        env = dict(os.environ, NOTIFY_SOCKET=str(notify_path))
        env.pop("WATCHDOG_USEC", None)
        log = open(self.log, "ab")
        t0 = time.monotonic()
        self.process = subprocess.Popen([str(self.bin_dir / "coffred"), "--dev", "--state-dir", str(self.state),
                                         "--log-target", "stderr"], env=env, stdin=subprocess.DEVNULL,
                                        stdout=log, stderr=log, start_new_session=True)
        try:
            deadline = t0 + 3600
            while time.monotonic() < deadline:
                try:
                    message = notify.recv(4096).decode()
                except socket.timeout:
                    if self.process.poll() is not None:
                        raise RuntimeError("coffred exited with %s; see %s" % (self.process.returncode, self.log))
                    continue
                if "READY=1" in message.splitlines():
                    return time.monotonic() - t0
            raise RuntimeError("coffred never sent READY=1")
        finally:
            notify.close()
            notify_path.unlink()
            log.close()

    def stop(self, kill: bool = False) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            self.process.wait(timeout=120)
        self.process = None

    def status(self, field: str) -> int:
        """A /proc/PID/status field in KiB (VmHWM, VmRSS)."""
        with open("/proc/%d/status" % self.process.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise KeyError(field)

    def cpu_seconds(self) -> float:
        """User + system CPU time the daemon has used so far."""
        with open("/proc/%d/stat" % self.process.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def reset_peak(self) -> bool:
        """Resets VmHWM to the current RSS (Linux: write 5 to clear_refs); False if refused."""
        try:
            with open("/proc/%d/clear_refs" % self.process.pid, "w") as f:
                f.write("5")
            return True
        except OSError:
            return False


class Coffre:
    """The client and the load generator against one daemon."""

    ISSUER = "dev"  # the development issuer; its secret seed is STATE/dev-issuer.key

    def __init__(self, daemon: Daemon, loadgen: Path, work: Path):
        self.daemon, self.loadgen, self.work = daemon, loadgen, work
        self.next_patient = 0

    def cli(self, ins: str, *args: str, stdout=subprocess.PIPE) -> str:
        result = subprocess.run([str(self.daemon.bin_dir / "coffre"), "--socket", str(self.daemon.socket), "--as",
                                 "patient:" + ins, *args], stdout=stdout, stderr=subprocess.PIPE, text=True)
        if result.returncode != 0:
            raise RuntimeError("coffre %s failed (%d): %s" % (" ".join(args), result.returncode, result.stderr))
        return result.stdout.strip() if result.stdout else ""

    def new_patients(self, count: int) -> list[str]:
        """Creates `count` dossiers through the load generator; returns their INS."""
        patients = [ins_of(self.next_patient + i) for i in range(count)]
        self.next_patient += count
        targets = self.targets(patients)
        result = self.load("create", targets, clients=min(8, count), count=count)
        if result["result"]["errors"]:
            raise RuntimeError("dossier creation failed: %s" % result)
        return patients

    def targets(self, patients: list[str], name: str = "targets") -> Path:
        """A targets file for loadgen: one INS a line (it mints each request's assertion)."""
        path = self.work / name
        path.write_text("".join("%s\n" % ins for ins in patients))
        return path

    def load(self, mode: str, targets: Path, clients: int, seconds: float = 0, count: int = 0, size: int = SMALL,
             out: Path | None = None) -> dict:
        command = [str(self.loadgen), "-s", str(self.daemon.socket), "-m", mode, "-c", str(clients), "-i",
                   str(targets), "-k", str(self.daemon.state / "dev-issuer.key"), "-I", self.ISSUER, "-b", str(size)]
        command += ["-n", str(count)] if count else ["-t", str(seconds)]
        if out:
            command += ["-o", str(out)]
        return run_json(command)

    # -- workloads ------------------------------------------------------------------------

    def large(self, source: Path) -> dict:
        """Stores and fetches `source` through the real client (`doc put`, `doc get -o`)."""
        ins = self.new_patients(1)[0]
        out = self.work / "large.out"
        t0 = time.monotonic()
        doc = self.cli(ins, "doc", "put", str(source), "--class", "BIOLOGIE", "--title", "large")
        store = time.monotonic() - t0
        t0 = time.monotonic()
        self.cli(ins, "doc", "get", doc, "-o", str(out))
        fetch = time.monotonic() - t0
        if out.stat().st_size != source.stat().st_size:
            raise RuntimeError("fetched size differs")
        out.unlink()
        return {"store_s": store, "fetch_s": fetch}

    def small(self, clients: int, seconds: float) -> dict:
        """`clients` concurrent clients, each on its own patient's dossier: store 32 KiB
        documents for `seconds`, then fetch random ones of them for `seconds`."""
        patients = self.new_patients(clients)
        stored = self.work / ("small-%d" % clients)
        results = {}
        for mode, targets in (("store", self.targets(patients)), ("fetch", stored)):
            cpu = self.daemon.cpu_seconds()
            answer = self.load(mode, targets, clients, seconds=seconds, out=stored if mode == "store" else None)
            result = answer["result"]
            # What minting each request's assertion costs the client (Ed25519), in µs.
            result["client_mint_us_per_op"] = answer.get("mint_us_per_op")
            # What one request costs the daemon in CPU, whatever the clients and peers do meanwhile.
            result["daemon_cpu_ms_per_op"] = round((self.daemon.cpu_seconds() - cpu) * 1e3 / max(result["ops"], 1), 3)
            results[mode] = result
        return results

    def seed(self, documents: int, size: int, clients: int = 32) -> dict:
        """Adds `documents` documents of `size` bytes in new dossiers of DOCS_PER_DOSSIER each;
        returns the stored list (INS DOCID lines) and the rate."""
        out = self.work / ("seed-%d" % self.next_patient)
        t0 = time.monotonic()
        added, errors = 0, 0
        batch = 100_000  # each batch in new dossiers; requests lost to errors are made up by the next
        while added < documents:
            n = min(batch, documents - added)
            patients = self.new_patients(max(1, n // DOCS_PER_DOSSIER))
            result = self.load("store", self.targets(patients, "seed-targets"), clients, count=n, size=size, out=out)
            added += result["result"]["ops"]
            errors += result["result"]["errors"]
            if result["result"]["ops"] == 0:
                raise RuntimeError("seeding stored nothing: %s" % result)
        seconds = time.monotonic() - t0
        return {"documents": added, "errors": errors, "seconds": round(seconds, 1),
                "docs_per_s": round(added / seconds, 1), "list": out}

    def probe(self, listing: Path, seconds: float) -> dict:
        """One client lists the probe dossiers, then fetches their documents, at random."""
        patients = sorted({line.split()[0] for line in listing.read_text().splitlines()})
        listed = self.load("list", self.targets(patients, "probe-list"), 1, seconds=seconds)["result"]
        fetched = self.load("fetch", listing, 1, seconds=seconds)["result"]
        return {"list": listed, "fetch": fetched}

    def peak_memory(self, size_mib: int, source: Path) -> dict:
        """VmHWM growth while one document of `size_mib` MiB streams in through `coffre doc put`
        and back out through `coffre doc get` (to /dev/null)."""
        ins = self.new_patients(1)[0]
        result = {"size_mib": size_mib}
        reset = self.daemon.reset_peak()
        before = self.daemon.status("VmRSS" if reset else "VmHWM")
        doc = self.cli(ins, "doc", "put", str(source), "--class", "BIOLOGIE")
        result["store_growth_kib"] = self.daemon.status("VmHWM") - before
        reset = self.daemon.reset_peak() and reset
        before = self.daemon.status("VmRSS" if reset else "VmHWM")
        with open(os.devnull, "w") as sink:
            self.cli(ins, "doc", "get", doc, stdout=sink)
        result["fetch_growth_kib"] = self.daemon.status("VmHWM") - before
        result["peak_reset"] = reset
        result["rss_after_kib"] = self.daemon.status("VmRSS")
        return result
