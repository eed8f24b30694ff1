#!/usr/bin/env python3
"""Crash drill, background jobs: SIGKILL in the middle of a master key rotation or a purge.

Usage: drills/crash_rotation_purge.py BIN_DIR [--rotation-kills N] [--purge-kills N] [--seed S]

coffred --dev runs with `--rotation-batch-size 1 --rotation-pause-ms P`, so that a rotation
takes a few seconds. The vault holds dossiers that stay (active ones, ones closed ten years
ahead, ones closed with a deletion request not yet due), each with documents whose id and
SHA-256 were recorded when the daemon acknowledged them. Rounds of two kinds, in a random order:

Rotation round: `coffre admin keys rotate --no-wait` (in --dev the daemon writes the next key
version itself) while clients store documents and create dossiers (at most --dossiers new ones
over the run); SIGKILL at a random moment of the rotation; restart. Then:
  - every acknowledged document is in the index and is fetched byte-exact (all of them, or those
    acknowledged since the last kill plus a sample; see --fetch-all-every), `coffre admin verify`
    is clean, no temporary or orphan blob (the crash drill's checks, reused);
  - the rotation resumes and finishes (`coffre admin keys status`: `finished`, nothing failed);
    every dossier key, archived key and vault key is under the newest version (read back from
    the status and from the index), and the older versions retire (`coffre admin keys retire`,
    refused while a version still wraps a key).

Purge round: new dossiers get documents and are closed with a deletion request; the development
clock moves past their purge date; `coffre retention run --batch B` starts (and, one round in
two, a rotation with it) while clients store into the dossiers that stay; SIGKILL once a random
number of the due dossiers have left the `closed` state (one round in five: at a random time);
restart. Then, for every dossier due for purge, from the index and the blob directory
read while the daemon was down, and from the API after the restart: it is entirely intact (the
row closed with its key, every row and blob there, every document fetched byte-exact) or
entirely unreadable (gone, or `purging` with its key destroyed: every document and the dossier
refused with 404) — never half. The documents of the dossiers that stay are checked as above.
Then `coffre retention run` finishes the work: every due dossier is gone (no row, no blob, 404),
no copy of a destroyed wrapped key is left in index.sqlite or its WAL, verify is clean, and the
rotation, if one ran, finishes as in a rotation round.

A job can slip past the aim: a purge of two dossiers between two looks at the index, or a
rotation that finished before a random moment. When none of a kind's kills landed in the middle
of its job, up to --aimed-rounds more rounds of that kind are played, each aimed at the middle
(a purge round that watches the index; a rotation round killed in the first half of its expected
time). Fails if still no kill landed in the middle of a rotation, or of a purge (the drill would
not be testing what it says).
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

from coffre_drill import (Daemon, Figures, Vault, ins_of, leftovers, random_document, sha256, temporary_directory,
                          winding_down)
from crash import Ledger, check_everything, check_index_holds, http_client, wind_down_clients

# The development clock: due dossiers are closed at CLOSE_AT with a deletion request (purge
# date 90 days later) and purged at PURGE_AT; the dossiers that stay were closed at CLOSE_AT
# without one (ten years) or at NOT_YET with one (purge date after PURGE_AT). The clock is set
# back to CLOSE_AT at every purge round, so those never fall due however many rounds run.
CLOSE_AT = "2030-01-01T12:00:00Z"
NOT_YET = "2030-03-01T12:00:00Z"
PURGE_AT = "2030-04-15T12:00:00Z"


def kept_patient(n: int) -> str:
    return ins_of("26%011d" % n)


def due_patient(n: int) -> str:
    return ins_of("27%011d" % n)


class DueDossier:
    """A dossier closed with a deletion request, due for purge this round."""

    def __init__(self, ins: str, dossier_id: str):
        self.ins = ins
        self.id = dossier_id
        self.documents: dict[str, tuple[str, int, bytes]] = {}  # id -> (SHA-256, size, content)
        self.wrapped_keys: set[bytes] = set()  # its wrapped dossier key, as read before the purge


class Run:
    """What the rounds share: the daemon, the vault, the ledger of documents that must stay."""

    def __init__(self, daemon: Daemon, figures: Figures, rng: random.Random, args):
        self.daemon = daemon
        self.figures = figures
        self.rng = rng
        self.args = args
        self.ledger = Ledger()
        self.lock = threading.Lock()
        self.writable: list[str] = []  # active dossiers that stay: stores go there
        self.due_documents: set[str] = set()  # documents of the dossiers due for purge (all rounds)
        self.next_patient = 0
        self.kill_no = 0
        self.restarted_at = 0.0
        self.purge_seconds_per_dossier = 0.04  # measured on every finishing run
        self.vault: Vault | None = None

    def new_patient(self, due: bool) -> str:
        with self.lock:
            self.next_patient += 1
            return due_patient(self.next_patient) if due else kept_patient(self.next_patient)

    def cli_json(self, *args: str, timeout: float = 120) -> tuple[int, object, str]:
        result = self.daemon.client("--json", *args, timeout=timeout)
        try:
            body = json.loads(result.stdout) if result.stdout.strip() else None
        except ValueError:
            body = None
        return result.returncode, body, result.stderr.decode(errors="replace")[-300:]

    def set_clock(self, when: str):
        result = self.daemon.client("admin", "clock", "set", when)
        if result.returncode != 0:
            raise RuntimeError("coffre admin clock set %s exited %d: %s" % (when, result.returncode, result.stderr[-300:]))

    def index(self) -> sqlite3.Connection:
        """The index, read-only (also while the daemon is down: nothing is checkpointed)."""
        return sqlite3.connect("file:%s?mode=ro" % (self.daemon.state / "index.sqlite"), uri=True, timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bin_dir", type=Path)
    parser.add_argument("--rotation-kills", type=int, default=2)
    parser.add_argument("--purge-kills", type=int, default=2)
    parser.add_argument("--dossiers", type=int, default=24, help="active dossiers that stay (the rotation's work)")
    parser.add_argument("--due", type=int, default=24, help="dossiers due for purge in each purge round")
    parser.add_argument("--rotation-pause-ms", type=int, default=60)
    parser.add_argument("--aimed-rounds", type=int, default=3,
                        help="rounds of a kind played, aimed at its job's middle, while none of its kills landed there")
    parser.add_argument("--fetch-all-every", type=int, default=1,
                        help="fetch every acknowledged document after every Nth kill (and after the last)")
    parser.add_argument("--sample", type=int, default=200, help="older documents fetched after the other kills")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    figures = Figures("crash-rotation-purge")
    figures["seed"] = args.seed
    tmp = temporary_directory("coffre-crashjob-")
    daemon = Daemon(args.bin_dir.resolve(), tmp / "state",
                    args=("--rotation-batch-size", "1", "--rotation-pause-ms", str(args.rotation_pause_ms)))
    with winding_down(figures, tmp, daemon):
        run = Run(daemon, figures, rng, args)
        set_up(run)
        rounds = ["rotation"] * args.rotation_kills + ["purge"] * args.purge_kills
        rng.shuffle(rounds)
        for kind in rounds:
            play(run, kind, aimed=False)
            if not figures.ok():
                break
        landed = {"rotation": "kills that landed mid-rotation", "purge": "kills that landed mid-purge"}
        for kind, planned in (("rotation", args.rotation_kills), ("purge", args.purge_kills)):
            for _ in range(args.aimed_rounds if planned else 0):
                if not figures.ok() or figures[landed[kind]]:
                    break
                figures.add("rounds aimed at the middle of a job, after kills that missed it")
                play(run, kind, aimed=True)
        if figures.ok() and args.rotation_kills and not figures["kills that landed mid-rotation"]:
            figures.fail("no kill landed in the middle of a rotation (lengthen --rotation-pause-ms)")
        if figures.ok() and args.purge_kills and not figures["kills that landed mid-purge"]:
            figures.fail("no kill landed in the middle of a retention run (raise --due)")
        figures["documents that stay, acknowledged"] = len(run.ledger.documents)
        figures["daemon starts"] = daemon.starts
    return figures.report()


def play(run: Run, kind: str, aimed: bool):
    run.kill_no += 1
    if kind == "rotation":
        rotation_round(run, aimed)
    else:
        purge_round(run, aimed)
    planned = run.args.rotation_kills + run.args.purge_kills
    if run.kill_no % 10 == 0 or run.kill_no >= planned:
        which = "%d/%d" % (run.kill_no, planned) if not aimed else "%d (a %s round aimed at the middle)" % (run.kill_no, kind)
        print("  kill %s: %d documents that stay, all intact so far; %d dossiers purged" % (
            which, len(run.ledger.documents), run.figures["dossiers purged (all rounds)"]), flush=True)


def set_up(run: Run):
    """Active dossiers with documents, and dossiers closed but not due (both must stay)."""
    daemon, figures = run.daemon, run.figures
    daemon.start()
    run.vault = vault = Vault(daemon)
    run.set_clock(CLOSE_AT)
    closed = []
    for n in range(run.args.dossiers + 8):
        ins = run.new_patient(due=False)
        reply = vault.create_dossier(ins)
        if reply.status != 201:
            raise RuntimeError("dossier create answered %d %s" % (reply.status, reply.body[:200]))
        for _ in range(2):
            store_one(run, ins)
        if n < run.args.dossiers:
            run.writable.append(ins)
        else:
            closed.append(ins)
    for n, ins in enumerate(closed):
        if n == 4:
            run.set_clock(NOT_YET)
        reply = vault.close_dossier(ins, delete=n >= 4)
        if reply.status != 200:
            raise RuntimeError("dossier close answered %d %s" % (reply.status, reply.body[:200]))
    figures["dossiers that stay: active / closed, not due"] = "%d / %d" % (len(run.writable), len(closed))


def store_one(run: Run, ins: str):
    data = random_document(run.rng, 20_000)
    reply = run.vault.store(ins, data, document_class="BIOLOGIE")
    if reply.status != 201:
        raise RuntimeError("store answered %d %s" % (reply.status, reply.body[:200]))
    run.ledger.record(reply.json()["id"], ins, sha256(data), len(data))


def dossier_creator(run: Run, stop: threading.Event):
    """Creates dossiers (each with one document, four a second) until told to stop: new keys
    while keys rotate. At most --dossiers over the whole run, so that rotations do not grow
    longer round after round."""
    rng = random.Random(run.rng.random())
    while not stop.wait(0.25):
        if run.figures["dossiers created during the rounds"] >= run.args.dossiers:
            return
        ins = run.new_patient(due=False)
        try:
            reply = run.vault.create_dossier(ins)
            if reply.status != 201:
                if not stop.is_set():
                    run.figures.fail("dossier create answered %d %s while the daemon ran" % (reply.status, reply.body[:200]))
                return
            with run.lock:
                run.writable.append(ins)
            run.figures.add("dossiers created during the rounds")
            data = random_document(rng, 5_000)
            reply = run.vault.store(ins, data)
        except OSError as error:
            if not stop.is_set():
                run.figures.fail("dossier create or store failed while the daemon ran: %r" % error)
            return
        if reply.status != 201:
            if not stop.is_set():
                run.figures.fail("store answered %d %s while the daemon ran" % (reply.status, reply.body[:200]))
            return
        run.ledger.record(reply.json()["id"], ins, sha256(data), len(data))
        run.figures.add("stores acknowledged during the rounds")


def start_clients(run: Run, stop: threading.Event) -> list[threading.Thread]:
    threads = []
    with run.lock:
        targets = run.rng.sample(run.writable, 2)
    counting = CountingLedger(run)
    for n, ins in enumerate(targets):
        threads.append(threading.Thread(target=http_client, name="HTTP client %d" % n, daemon=True,
                                        args=(run.vault, counting, run.figures, stop, ins, random.Random(run.rng.random()), 0.1)))
    threads.append(threading.Thread(target=dossier_creator, args=(run, stop), name="dossier creator", daemon=True))
    for thread in threads:
        thread.start()
    return threads


class CountingLedger:
    """The run's ledger, as crash.http_client records into it (its own counter aside)."""

    def __init__(self, run: Run):
        self.run = run

    def record(self, document_id: str, ins: str, digest: str, size: int):
        self.run.ledger.record(document_id, ins, digest, size)
        self.run.figures.add("stores acknowledged during the rounds")


def kill_and_restart(run: Run, stop: threading.Event, threads: list[threading.Thread], before: set[str],
                     inspect=None) -> object:
    """SIGKILL; the clients wind down; `inspect()` looks at the state while the daemon is down;
    restart; the crash drill's checks of every document that stays."""
    stop.set()
    run.daemon.kill()
    wind_down_clients(run.daemon, run.figures, threads, run.kill_no)
    run.figures.add("kills survived")
    seen = inspect() if inspect else None
    began = time.monotonic()
    run.daemon.start()
    run.restarted_at = time.monotonic()
    run.figures["restart seconds (last)"] = round(run.restarted_at - began, 2)
    check_index_holds(run.daemon, run.ledger, run.figures, run.kill_no, frozenset(run.due_documents))
    everything = run.kill_no % run.args.fetch_all_every == 0 or run.kill_no >= run.args.rotation_kills + run.args.purge_kills
    check_everything(run.daemon, run.vault, run.ledger, run.figures, run.kill_no, set(run.ledger.snapshot()) - before,
                     everything, run.rng, run.args.sample)
    if everything:
        run.figures.add("full checks (every document that stays)")
    return seen


# -------------------------------------------------------------------------------------------
# Rotation


def start_rotation(run: Run) -> tuple[int, int]:
    """`coffre admin keys rotate --no-wait`: (target version, keys to rewrap)."""
    status, body, err = run.cli_json("admin", "keys", "rotate", "--no-wait")
    if status != 0 or not isinstance(body, dict) or "rotation" not in body:
        raise RuntimeError("coffre admin keys rotate --no-wait exited %d: %r %s" % (status, body, err))
    run.figures.add("rotations started")
    return body["activeVersion"], body["rotation"]["total"]


def rotation_at_kill(run: Run) -> tuple[int, int, bool]:
    """The rotation's row as the kill left it: (done, total, finished)."""
    db = run.index()
    try:
        done, total, finished = db.execute("SELECT done, total, finished_at FROM key_rotation WHERE id = 1").fetchone()
    finally:
        db.close()
    return done, total, finished is not None


def rotation_round(run: Run, aimed: bool):
    before = set(run.ledger.snapshot())
    stop = threading.Event()
    threads = start_clients(run, stop)
    target, total = start_rotation(run)
    expected = total * (run.args.rotation_pause_ms / 1000 + 0.01)
    time.sleep(run.rng.uniform(0.05, max(0.1, (0.5 if aimed else 0.8) * expected)))
    done, total, finished = kill_and_restart(run, stop, threads, before, lambda: rotation_at_kill(run))
    note_rotation_kill(run, done, total, finished)
    rotation_finishes(run, target)


def note_rotation_kill(run: Run, done: int, total: int, finished: bool):
    if finished:
        run.figures.add("rotation kills after the rotation had finished")
        return
    run.figures.add("kills that landed mid-rotation")
    where = run.figures["mid-rotation kills: keys rewrapped / to rewrap"] or ""
    if len(where) < 200:
        run.figures["mid-rotation kills: keys rewrapped / to rewrap"] = (where + ", " if where else "") + "%d/%d" % (done, total)


def rotation_finishes(run: Run, target: int, timeout: float = 300):
    """After a restart: the rotation to `target` resumes and finishes; then nothing is left under
    another version, and every older version retires."""
    figures = run.figures
    began = time.monotonic()
    while True:
        status, body, err = run.cli_json("admin", "keys", "status")
        rotation = body.get("rotation", {}) if isinstance(body, dict) else {}
        if status == 0 and rotation.get("state") == "finished":
            break
        if time.monotonic() - began > timeout:
            figures.fail("after kill %d: the rotation to version %d did not finish within %.0f s of the restart: exit %d %r %s" % (
                run.kill_no, target, timeout, status, body, err))
            return
        time.sleep(0.2)
    figures.add("rotations resumed and finished after a kill")
    figures["seconds from restart to a finished rotation (max)"] = max(
        figures["seconds from restart to a finished rotation (max)"], round(time.monotonic() - run.restarted_at, 1))
    figures.add("keys rewrapped by rotations", rotation.get("done", 0))
    problems = []
    if body.get("activeVersion") != target or rotation.get("targetVersion") != target:
        problems.append("active version %s, rotation target %s (expected %d)" % (
            body.get("activeVersion"), rotation.get("targetVersion"), target))
    if rotation.get("failed") or rotation.get("done", 0) > rotation.get("total", 0):
        problems.append("rotation done %s of %s, failed %s" % (rotation.get("done"), rotation.get("total"), rotation.get("failed")))
    for version in body.get("versions", []):
        if version["version"] != target and (version["dossierKeys"] or version["archivedDossierKeys"] or version["vaultKeys"]):
            problems.append("version %d still wraps %d dossier keys, %d archived, %d vault keys" % (
                version["version"], version["dossierKeys"], version["archivedDossierKeys"], version["vaultKeys"]))
    db = run.index()
    try:
        for table, extra in (("dossier", " AND master_version != 0"), ("dossier_key_archive", ""), ("vault_key", "")):
            (count,) = db.execute("SELECT COUNT(*) FROM %s WHERE master_version != ?%s" % (table, extra), (target,)).fetchone()
            if count:
                problems.append("the index has %d %s rows under another version than %d" % (count, table, target))
    finally:
        db.close()
    for problem in problems:
        figures.fail("after kill %d, once the rotation finished: %s" % (run.kill_no, problem))
    for version in body.get("versions", []):
        if version["state"] == "available":
            result = run.daemon.client("admin", "keys", "retire", str(version["version"]))
            if result.returncode != 0:
                figures.fail("after kill %d: coffre admin keys retire %d exited %d: %s" % (
                    run.kill_no, version["version"], result.returncode, result.stderr[-300:]))
            else:
                figures.add("older key versions retired")


# -------------------------------------------------------------------------------------------
# Purge


def make_due(run: Run) -> list[DueDossier]:
    """New dossiers with documents, closed with a deletion request at CLOSE_AT; the clock then
    moves to PURGE_AT, past their purge date."""
    run.set_clock(CLOSE_AT)
    vault = run.vault
    due = []
    for _ in range(run.args.due):
        ins = run.new_patient(due=True)
        reply = vault.create_dossier(ins)
        if reply.status != 201:
            raise RuntimeError("dossier create answered %d %s" % (reply.status, reply.body[:200]))
        dossier = DueDossier(ins, reply.json()["id"])
        for _ in range(run.rng.choice([1, 2, 3])):
            data = random_document(run.rng, 20_000)
            reply = vault.store(ins, data, document_class="CPT_REND")
            if reply.status != 201:
                raise RuntimeError("store answered %d %s" % (reply.status, reply.body[:200]))
            dossier.documents[reply.json()["id"]] = (sha256(data), len(data), data)
            run.due_documents.add(reply.json()["id"])
        reply = vault.close_dossier(ins, delete=True)
        if reply.status != 200:
            raise RuntimeError("dossier close answered %d %s" % (reply.status, reply.body[:200]))
        due.append(dossier)
    run.set_clock(PURGE_AT)
    return due


def read_wrapped_keys(run: Run, due: list[DueDossier]):
    db = run.index()
    try:
        for dossier in due:
            row = db.execute("SELECT wrapped_key FROM dossier WHERE id = ?", (dossier.id,)).fetchone()
            if row and row[0]:
                dossier.wrapped_keys.add(bytes(row[0]))
    finally:
        db.close()


def blob_exists(state: Path, document_id: str) -> bool:
    return (state / "blobs" / document_id[:2] / document_id).exists()


def purge_state(run: Run, due: list[DueDossier]) -> dict[str, tuple[str, str]]:
    """With the daemon down: each due dossier's state, from its row, its document rows and its
    blobs: ('intact' | 'purging' | 'gone' | 'HALF', detail)."""
    db = run.index()
    found = {}
    try:
        for dossier in due:
            row = db.execute("SELECT state, length(wrapped_key), master_version FROM dossier WHERE id = ?",
                             (dossier.id,)).fetchone()
            rows = {r[0] for r in db.execute("SELECT id FROM document WHERE dossier_id = ?", (dossier.id,))}
            blobs = {d for d in dossier.documents if blob_exists(run.daemon.state, d)}
            count = len(dossier.documents)
            detail = "row %s, %d of %d document rows, %d of %d blobs" % (row, len(rows), count, len(blobs), count)
            if row is None:
                verdict = "gone" if not rows and not blobs else "HALF"
            elif row[0] == "purging":
                # Key destroyed first; its blobs, then its rows, go after.
                verdict = "purging" if row[1] == 0 and row[2] == 0 else "HALF"
            elif row[0] == "closed" and row[1] > 0 and rows == set(dossier.documents) and blobs == set(dossier.documents):
                verdict = "intact"
            else:
                verdict = "HALF"
            found[dossier.id] = (verdict, detail)
    finally:
        db.close()
    return found


def purge_round(run: Run, aimed: bool):
    figures = run.figures
    due = make_due(run)
    read_wrapped_keys(run, due)
    target = start_rotation(run)[0] if run.rng.random() < 0.5 else None
    before = set(run.ledger.snapshot())
    stop = threading.Event()
    threads = start_clients(run, stop)
    batch = run.rng.choice([1, 1, 2, 5])
    retention = subprocess.Popen([str(run.daemon.bin_dir / "coffre"), "--socket", run.daemon.socket, "--json", "retention", "run",
                                  "--batch", str(batch)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_to_kill_mid_purge(run, due, retention, aimed)

    def inspect():
        retention.communicate(timeout=60)
        return purge_state(run, due), rotation_at_kill(run) if target else None

    states, rotation = kill_and_restart(run, stop, threads, before, inspect)
    figures["retention run cut by the kill: exit status (last)"] = retention.returncode
    if rotation is not None:
        note_rotation_kill(run, *rotation)
    verdicts = [v for v, _ in states.values()]
    for verdict in ("intact", "purging", "gone"):
        figures.add("due dossiers at a kill: %s" % verdict, verdicts.count(verdict))
    if "purging" in verdicts or ("gone" in verdicts and "intact" in verdicts):
        figures.add("kills that landed mid-purge")
    for dossier in due:
        verdict, detail = states[dossier.id]
        if verdict == "HALF":
            figures.fail("after kill %d: dossier %s is half purged: %s" % (run.kill_no, dossier.id, detail))
        else:
            check_due_dossier(run, dossier, readable=verdict == "intact", when="after kill %d (%s)" % (run.kill_no, verdict))
    finish_retention(run, due)
    if target is not None:
        rotation_finishes(run, target)


def wait_to_kill_mid_purge(run: Run, due: list[DueDossier], retention: subprocess.Popen, aimed: bool):
    """Most rounds (and every aimed one): waits until a random number of the due dossiers (at
    least one, not all) have left the `closed` state, watching the index every millisecond
    through one read-only connection, so that the kill lands in the middle of the run whatever
    its pace, at whatever step of a dossier's purge the daemon is then. One round in five: a
    random time from the job's start, which may land before its first purge or after its last."""
    if not aimed and run.rng.random() < 0.2:
        time.sleep(run.rng.uniform(0.05, 0.2 + len(due) * run.purge_seconds_per_dossier))
        return
    ids = [d.id for d in due]
    # Still closed when the kill comes: at least two, so that a purge of two dossiers between
    # two looks does not take the run past its last one.
    leave = len(ids) - run.rng.randint(1, max(1, len(ids) - 2))
    query = "SELECT COUNT(*) FROM dossier WHERE state = 'closed' AND id IN (%s)" % ",".join("?" * len(ids))
    deadline = time.monotonic() + 60
    db = run.index()
    try:
        while retention.poll() is None and time.monotonic() < deadline:
            (untouched,) = db.execute(query, ids).fetchone()
            if untouched <= leave:
                return
            time.sleep(0.001)
    finally:
        db.close()


def check_due_dossier(run: Run, dossier: DueDossier, readable: bool, when: str):
    """Through the API: every document byte-exact and the dossier shown, or all of it refused."""
    figures, vault = run.figures, run.vault
    shown = vault.show_dossier(dossier.ins)
    outcomes = []
    for document_id, (digest, size, _) in dossier.documents.items():
        reply = vault.fetch(dossier.ins, document_id)
        if reply.status == 200:
            outcomes.append("exact" if sha256(reply.body) == digest and len(reply.body) == size else "WRONG")
        else:
            outcomes.append("%d %s" % (reply.status, reply.code))
    if readable:
        ok = shown.status == 200 and all(o == "exact" for o in outcomes)
    else:
        ok = shown.status == 404 and all(o.startswith("404") for o in outcomes)
    if ok:
        figures.add("due dossiers checked whole through the API (%s)" % ("intact" if readable else "refused"))
    else:
        figures.fail("%s: dossier %s should be %s: dossier %d %s, documents %s" % (
            when, dossier.id, "intact" if readable else "entirely refused", shown.status, shown.code, outcomes))


def finish_retention(run: Run, due: list[DueDossier]):
    """`coffre retention run` to the end: every due dossier gone, nothing of it left."""
    figures = run.figures
    began = time.monotonic()
    status, summary, err = run.cli_json("retention", "run", timeout=600)
    elapsed = time.monotonic() - began
    if status != 0 or not isinstance(summary, dict) or summary.get("failed"):
        figures.fail("after kill %d: the finishing coffre retention run exited %d: %r %s" % (run.kill_no, status, summary, err))
        return
    if summary.get("purged", 0) >= 5:
        run.purge_seconds_per_dossier = elapsed / summary["purged"]
    figures.add("dossiers purged by the finishing runs", summary.get("purged", 0))
    db = run.index()
    try:
        for dossier in due:
            row = db.execute("SELECT state FROM dossier WHERE id = ?", (dossier.id,)).fetchone()
            (rows,) = db.execute("SELECT COUNT(*) FROM document WHERE dossier_id = ?", (dossier.id,)).fetchone()
            blobs = [d for d in dossier.documents if blob_exists(run.daemon.state, d)]
            if row is not None or rows or blobs:
                figures.fail("after kill %d and a finishing retention run: dossier %s still has row %s, %d document rows, blobs %s"
                             % (run.kill_no, dossier.id, row, rows, blobs))
            else:
                figures.add("dossiers purged (all rounds)")
            (traced,) = db.execute("SELECT COUNT(*) FROM trace_entry WHERE dossier_id = ? AND action = 'dossier.purge' "
                                   "AND outcome = 'allowed'", (dossier.id,)).fetchone()
            if not traced:
                figures.fail("after kill %d: the purge of dossier %s is not in the trace" % (run.kill_no, dossier.id))
    finally:
        db.close()
    for dossier in due:
        check_due_dossier(run, dossier, readable=False, when="after kill %d and a finishing retention run" % run.kill_no)
    copies = destroyed_key_copies(run.daemon.state, due)
    figures["destroyed wrapped keys checked for copies in the index files"] = (
        figures["destroyed wrapped keys checked for copies in the index files"] + sum(len(d.wrapped_keys) for d in due))
    for where in copies:
        figures.fail("after kill %d: a destroyed dossier key still has a copy in %s" % (run.kill_no, where))
    report = run.daemon.verify()
    if report["_exit"] != 0 or not report.get("ok"):
        figures.fail("after kill %d and a finishing retention run: coffre admin verify: exit %d, %s" % (
            run.kill_no, report["_exit"], report.get("problems")))
    for item in leftovers(run.daemon.state):
        figures.fail("after kill %d and a finishing retention run: %s" % (run.kill_no, item))


def destroyed_key_copies(state: Path, due: list[DueDossier]) -> list[str]:
    """Where a purged dossier's wrapped key still appears in the index's files (it must not:
    secure_delete and a TRUNCATE checkpoint)."""
    found = []
    for name in ("index.sqlite", "index.sqlite-wal"):
        path = state / name
        if not path.exists():
            continue
        data = path.read_bytes()
        for dossier in due:
            for key in dossier.wrapped_keys:
                if key in data:
                    found.append("%s (dossier %s, at byte %d)" % (name, dossier.id, data.index(key)))
    return found


if __name__ == "__main__":
    raise SystemExit(main())
