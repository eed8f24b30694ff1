#!/usr/bin/env python3
"""Crash drill: nothing acknowledged is ever lost, and a crash leaves nothing behind.

Usage: drills/crash.py BIN_DIR [--kills N] [--clients N] [--seed S]

Several clients store documents concurrently (raw HTTP over the socket, and one client using the
real `coffre doc put`), each recording the id and SHA-256 of every store the daemon
acknowledged (201). The daemon is killed with SIGKILL at a random moment while they run, then
restarted. After every restart:
  - every document ever acknowledged is fetched and must match its SHA-256 byte for byte;
  - `coffre admin verify` must be clean;
  - blobs/tmp must be empty and every blob must be named by an index row (no orphan).
Stores cut by the kill are fine either way (committed or not), but must not leave anything behind.
One more client changes a dossier's settings (an authorisation each time) while the others
store: after every restart every acknowledged change is there, and the dossier's trace holds
exactly one allowed `dossier.manage` entry per change made (a change and its entry commit in one
transaction, so no kill can leave one without the other).
First, `coffre doc put` faces a socket that accepts its probe and then refuses: what it sees when
the daemon dies between the two. It must give up (exit 69) within 15 s.
With --fetch-all-every N (the full run uses 20), the fetch of every document ever acknowledged
happens after every Nth kill and after the last; after the others, the documents acknowledged
since the previous kill and a random sample of the older ones are fetched. verify and the
leftover checks run after every kill (verify reading every blob on the full checks, as many
blobs as were fetched on the others).
"""

from __future__ import annotations

import argparse
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from coffre_drill import (Daemon, Figures, Vault, ins_of, index_document_ids, leftovers, random_document, sha256,
                          temporary_directory, winding_down, with_luhn)

PATIENTS = [ins_of("1%02d0575%06d" % (60 + n, 100 + n)) for n in range(4)]
CHANGES_PATIENT = ins_of("1%02d0575%06d" % (70, 200))
CHANGES_PER_ROUND = 60


class ChangeLedger:
    """The authorisations the daemon acknowledged on CHANGES_PATIENT's dossier."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acknowledged: set[str] = set()
        self.sent = 0

    def next_rpps(self) -> str:
        with self.lock:
            self.sent += 1
            return with_luhn("2%09d" % self.sent)

    def record(self, rpps: str):
        with self.lock:
            self.acknowledged.add(rpps)


def change_client(vault: Vault, changes: ChangeLedger, figures: Figures, stop: threading.Event):
    """Authorises one more professional at a time (up to CHANGES_PER_ROUND), until told to stop
    or the daemon goes away."""
    for _ in range(CHANGES_PER_ROUND):
        if stop.wait(0.01):
            return
        rpps = changes.next_rpps()
        try:
            reply = vault.send("PUT", "/v1/patients/%s/access/authorized/%s" % (CHANGES_PATIENT, rpps),
                               headers=vault.auth(CHANGES_PATIENT))
        except OSError as error:
            if not stop.is_set():
                figures.fail("a change failed while the daemon ran: %r" % error)
            return
        if reply.status != 200:
            figures.fail("a change answered %d %s (not a kill: a whole answer came back)" % (reply.status, reply.body[:200]))
            return
        changes.record(rpps)
        figures.add("changes acknowledged")


def check_changes_and_entries(vault: Vault, changes: ChangeLedger, figures: Figures, round_no: int):
    """Every acknowledged change is there, and each change made has exactly one entry."""
    ins = CHANGES_PATIENT
    access = vault.send("GET", "/v1/patients/%s/access" % ins, headers=vault.auth(ins))
    if access.status != 200:
        figures.fail("after kill %d: the access settings answered %d" % (round_no, access.status))
        return
    authorized = set(access.json()["authorized"])
    lost = changes.acknowledged - authorized
    if lost:
        figures.fail("after kill %d: %d acknowledged changes are gone: %s" % (round_no, len(lost), sorted(lost)[:5]))
    entries, after = 0, 0
    while True:
        page = vault.send("GET", "/v1/patients/%s/trace?after=%d" % (ins, after), headers=vault.auth(ins))
        if page.status != 200:
            figures.fail("after kill %d: the trace answered %d" % (round_no, page.status))
            return
        rows = page.json()["entries"]
        entries += sum(1 for e in rows if e["action"] == "dossier.manage" and e["outcome"] == "allowed")
        if len(rows) < 10_000:
            break
        after = rows[-1]["seq"]
    if entries != len(authorized):
        figures.fail("after kill %d: %d authorisations made but %d allowed dossier.manage entries" % (
            round_no, len(authorized), entries))
    figures["changes made, answer cut by a kill"] = len(authorized - changes.acknowledged)


class Ledger:
    """What the daemon acknowledged: id -> (patient, SHA-256, size)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.documents: dict[str, tuple[str, str, int]] = {}

    def record(self, document_id: str, ins: str, digest: str, size: int):
        with self.lock:
            self.documents[document_id] = (ins, digest, size)

    def snapshot(self) -> dict[str, tuple[str, str, int]]:
        with self.lock:
            return dict(self.documents)


def http_client(vault: Vault, ledger: Ledger, figures: Figures, stop: threading.Event, ins: str, rng: random.Random,
                pause: float = 0.0):
    """Stores until told to stop or the daemon goes away (resting `pause` seconds between two)."""
    while not stop.wait(pause):
        data = random_document(rng, 300_000)
        try:
            reply = vault.store(ins, data, document_class=rng.choice(["BIOLOGIE", "RADIO_SC"]), title="crash drill")
        except OSError as error:
            if not stop.is_set():
                figures.fail("store failed while the daemon ran: %r" % error)
            return  # the daemon was killed under us: no answer, nothing acknowledged
        if reply.status != 201:
            figures.fail("store answered %d %s (not a kill: a whole answer came back)" % (reply.status, reply.body[:200]))
            return
        body = reply.json()
        if body.get("sha256") != sha256(data) or body.get("size") != len(data):
            figures.fail("store of %d bytes acknowledged with size %s and sha256 %s" % (len(data), body.get("size"), body.get("sha256")))
        ledger.record(body["id"], ins, sha256(data), len(data))
        figures.add("stores acknowledged")


def cli_client(daemon: Daemon, ledger: Ledger, figures: Figures, stop: threading.Event, ins: str, rng: random.Random,
               workdir: Path):
    """The same with the real client, one `coffre doc put` process per document."""
    n = 0
    while not stop.is_set():
        data = random_document(rng, 100_000)
        path = workdir / ("doc-%d.bin" % n)
        n += 1
        path.write_bytes(data)
        result = daemon.client("--as", "patient:" + ins, "doc", "put", str(path), "--class", "CPT_REND")
        path.unlink()
        if result.returncode == 0:
            ledger.record(result.stdout.decode().strip(), ins, sha256(data), len(data))
            figures.add("stores acknowledged")
            figures.add("stores acknowledged (coffre CLI)")
            continue
        if not stop.is_set():  # `stop` is set before the kill: this failure was not the kill's
            figures.fail("coffre doc put exited %d while the daemon ran: %s" % (result.returncode, result.stderr[-300:]))
        elif result.returncode not in (69, 70, 74):
            figures.fail("coffre doc put cut by the kill exited %d (expected 69, 70 or 74): %s" % (
                result.returncode, result.stderr[-300:]))
        return


def check_everything(daemon: Daemon, vault: Vault, ledger: Ledger, figures: Figures, round_no: int,
                     fresh: set[str], everything: bool, rng: random.Random, sample: int):
    """Acknowledged documents byte-exact (all of them, or those acknowledged in the last round
    plus a random sample of older ones), verify clean, nothing left behind."""
    documents = ledger.snapshot()
    if not everything:
        older = sorted(set(documents) - fresh)
        keep = fresh | set(rng.sample(older, min(sample, len(older))))
        documents = {k: v for k, v in documents.items() if k in keep}

    def fetch(item):
        document_id, (ins, digest, size) = item
        try:
            reply = vault.fetch(ins, document_id)
        except OSError as error:
            return "fetch of %s failed: %r" % (document_id, error)
        if reply.status != 200:
            again = vault.fetch(ins, document_id)
            return "acknowledged document %s answered %d %s (fetched again a moment later: %d)" % (
                document_id, reply.status, reply.body[:200], again.status)
        if len(reply.body) != size or sha256(reply.body) != digest:
            return "acknowledged document %s came back with %d bytes, sha256 %s (stored %d, %s)" % (
                document_id, len(reply.body), sha256(reply.body), size, digest)
        return None

    with ThreadPoolExecutor(8) as pool:
        for problem in pool.map(fetch, documents.items()):
            if problem:
                figures.fail("after kill %d: %s" % (round_no, problem))
    figures.add("documents fetched and compared", len(documents))
    # verify reads every blob on full checks; otherwise as many as were fetched (keys, rows,
    # orphans and the trace chain are checked throughout either way).
    report = daemon.verify(None if everything else len(documents))
    if report["_exit"] != 0 or not report.get("ok"):
        figures.fail("after kill %d: coffre admin verify: exit %d, %s" % (round_no, report["_exit"], report.get("problems")))
    elif everything and report.get("documentsChecked", 0) < len(documents):
        figures.fail("after kill %d: verify checked %s documents, %d acknowledged" % (round_no, report.get("documentsChecked"), len(documents)))
    figures["verify: documents checked (last)"] = report.get("documentsChecked")
    figures["verify: trace entries checked (last)"] = report.get("traceEntriesChecked")
    for item in leftovers(daemon.state):
        figures.fail("after kill %d: %s" % (round_no, item))
    figures.add("leftover checks passed")


def client_facing_a_dead_daemon(daemon: Daemon, figures: Figures, tmp: Path, limit: float = 15.0, tries: int = 5):
    """`coffre doc put` against a socket that accepts one connection (the client's probe) and then
    refuses: what the client sees when the daemon dies between its probe and its request. It must
    give up with exit 69 within `limit` seconds. Whether the client's second connection comes
    before or after the listener closes is a race, so this is tried up to `tries` times."""
    import socket
    import subprocess
    document = tmp / "one-shot.txt"
    document.write_text("bilan")
    env = dict(os.environ, COFFRE_ISSUER_KEY=str(daemon.state / "dev-issuer.key"))
    for attempt in range(tries):
        path = tmp / ("one-shot-%d.sock" % attempt)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(1)

        def accept_once(listener=listener):
            connection, _ = listener.accept()
            listener.close()  # the socket file stays, nothing listens: connect() is refused
            time.sleep(limit + 5)
            connection.close()

        threading.Thread(target=accept_once, daemon=True).start()
        began = time.monotonic()
        try:
            result = subprocess.run([str(daemon.bin_dir / "coffre"), "--socket", str(path), "--as", "patient:" + PATIENTS[0],
                                     "doc", "put", str(document), "--class", "BIOLOGIE"],
                                    capture_output=True, timeout=limit, env=env)
        except subprocess.TimeoutExpired:
            figures["coffre facing a daemon dead after its probe"] = "still waiting after %.0f s (try %d)" % (limit, attempt + 1)
            figures.fail("REGRESSION (fixed bug: coffre retried a refused connection for ~90 s): coffre doc "
                         "put against a daemon that died after the socket probe was still waiting after %.0f s" % limit)
            return
        figures["coffre facing a daemon dead after its probe"] = "exit %d after %.1f s (%d tries)" % (
            result.returncode, time.monotonic() - began, attempt + 1)
        if result.returncode != 69:
            figures.fail("coffre facing a daemon dead after its probe exited %d: %s" % (result.returncode, result.stderr[-200:]))
            return


def holders(state: Path) -> list[str]:
    """Other processes with a file of the state directory open (there should be none while the
    daemon is down)."""
    found = []
    prefix = str(state)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == os.getpid():
            continue
        try:
            for fd in os.listdir("/proc/%s/fd" % pid):
                target = os.readlink("/proc/%s/fd/%s" % (pid, fd))
                if target.startswith(prefix):
                    comm = Path("/proc/%s/comm" % pid).read_text().strip()
                    found.append("process %s (%s) holds %s" % (pid, comm, target))
                    break
        except OSError:
            continue
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bin_dir", type=Path)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--longest", type=float, default=2.0, help="longest run between start and kill, in seconds")
    parser.add_argument("--fetch-all-every", type=int, default=1,
                        help="fetch every acknowledged document after every Nth kill (and after the last); after the "
                             "others, those acknowledged since the previous kill and a random sample of the rest")
    parser.add_argument("--sample", type=int, default=300, help="older documents fetched after the other kills")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    figures = Figures("crash")
    figures["seed"] = args.seed
    figures["clients"] = args.clients
    tmp = temporary_directory("coffre-crash-")
    daemon = Daemon(args.bin_dir.resolve(), tmp / "state")
    with winding_down(figures, tmp, daemon):
        kill_while_storing(daemon, figures, tmp, rng, args)
    return figures.report()


def kill_while_storing(daemon: Daemon, figures: Figures, tmp: Path, rng: random.Random, args):
    ledger = Ledger()
    changes = ChangeLedger()
    daemon.start()
    client_facing_a_dead_daemon(daemon, figures, tmp)
    vault = Vault(daemon)
    for ins in PATIENTS + [CHANGES_PATIENT]:
        reply = vault.create_dossier(ins)
        if reply.status != 201:
            figures.fail("dossier create answered %d %s" % (reply.status, reply.body[:200]))
            return
    for round_no in range(1, args.kills + 1):
        before = set(ledger.snapshot())
        stop = threading.Event()
        threads = []
        for n in range(args.clients):
            ins = PATIENTS[n % len(PATIENTS)]
            client_rng = random.Random(rng.random())
            if n == 0:
                target, extra = cli_client, (daemon, ledger, figures, stop, ins, client_rng, tmp)
            else:
                target, extra = http_client, (vault, ledger, figures, stop, ins, client_rng)
            threads.append(threading.Thread(target=target, args=extra, daemon=True,
                                            name="%s client %d" % ("coffre CLI" if n == 0 else "HTTP", n)))
        threads.append(threading.Thread(target=change_client, args=(vault, changes, figures, stop), daemon=True,
                                        name="settings client"))
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(0.05, args.longest))
        stop.set()  # first, so that a client seeing its connection cut knows why
        daemon.kill()
        wind_down_clients(daemon, figures, threads, round_no)
        figures.add("kills survived")
        began = time.monotonic()
        daemon.start()
        figures["restart seconds (last)"] = round(time.monotonic() - began, 2)
        check_index_holds(daemon, ledger, figures, round_no)
        check_changes_and_entries(vault, changes, figures, round_no)
        began = time.monotonic()
        everything = round_no % args.fetch_all_every == 0 or round_no == args.kills
        check_everything(daemon, vault, ledger, figures, round_no, set(ledger.snapshot()) - before, everything,
                         rng, args.sample)
        if everything:
            figures.add("full checks (every acknowledged document)")
        figures["check seconds (last)"] = round(time.monotonic() - began, 2)
        if round_no % 10 == 0 or round_no == args.kills:
            print("  kill %d/%d: %d documents acknowledged, all intact so far" % (
                round_no, args.kills, len(ledger.documents)), flush=True)
        if not figures.ok():
            break
    figures["documents acknowledged"] = len(ledger.documents)
    figures["daemon starts"] = daemon.starts


def wind_down_clients(daemon: Daemon, figures: Figures, threads: list[threading.Thread], round_no: int):
    """After a kill: the clients must notice and stop, and nothing may hold the state directory."""
    began = time.monotonic()
    slow = []
    for thread in threads:
        thread.join(timeout=120)
        if time.monotonic() - began > 10:
            slow.append("%s after %.0f s" % (thread.name, time.monotonic() - began))
    figures["client wind-down seconds (max)"] = max(figures["client wind-down seconds (max)"],
                                                    round(time.monotonic() - began, 2))
    if slow:
        # Not a failure by itself (see docs/reliability.md, Findings); printed to help
        # explain what follows.
        figures.add("slow client wind-downs (a client still running 10 s after the kill)")
        print("  kill %d: slow client wind-down: %s; holders of the state directory: %s" % (
            round_no, ", ".join(slow), holders(daemon.state) or "none"), flush=True)
    for holder in holders(daemon.state):
        figures.fail("after kill %d the daemon was reaped, yet %s" % (round_no, holder))


def check_index_holds(daemon: Daemon, ledger: Ledger, figures: Figures, round_no: int,
                      elsewhere: frozenset[str] = frozenset()):
    """Right after a restart: every acknowledged id is in the index. `elsewhere`: ids the
    caller accounts for otherwise (not counted as answers cut by a kill)."""
    in_index = index_document_ids(daemon.state) - elsewhere
    lost = set(ledger.snapshot()) - in_index
    if lost:
        figures.fail("after kill %d: %d acknowledged documents are not in the index: %s" % (round_no, len(lost), sorted(lost)[:5]))
    figures["documents committed, answer cut by a kill"] = len(in_index - set(ledger.snapshot()))


if __name__ == "__main__":
    raise SystemExit(main())
