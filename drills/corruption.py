#!/usr/bin/env python3
"""Corruption drill: nothing wrong is ever served, and `coffre admin verify` names the damage.

Usage: drills/corruption.py BIN_DIR [--rounds N] [--documents N] [--damage N] [--seed S]

Each round stores new documents, stops the daemon (SIGTERM), damages some undamaged items at
random, and starts it again:
  blobs:      flip a bit (anywhere, in the header, in the last record), truncate (anywhere, the
              last record), append bytes, swap two blobs, copy one over another, delete;
              round 1 always appends to a 64 KiB document, flips the last record of a
              128 KiB one and changes the chunk size in the header of a 1,000-byte one (known
              bugs: see docs/reliability.md, Findings);
  index rows: flip a byte of a document's wrapped key or sealed record, change a clear column
              (size, class, media type, upload time, status, key generation, dossier), swap
              wrapped keys or sealed records between documents, delete a row (its blob becomes an
              orphan), change a trace entry, damage a dossier's wrapped key (all its documents).
              A row deleted, or moved to another dossier, changes the rows its dossier's seal
              counts: those two damages hit two dossiers made for them each round, which the
              daemon then refuses whole.
Then every document is fetched:
  - a damaged one must fail: `500 integrity_error` before any byte, or a stream cut short whose
    bytes are a prefix of the original (each record is authenticated before it is sent). Every
    document of a dossier whose rows no longer match its seal fails the same way, the deleted or
    moved one included. Never wrong bytes, never the whole content. A sample is also fetched
    with the real `coffre doc get -o`: exit 76, and no output or partial file left.
  - an undamaged one must come back byte-exact;
  - `coffre admin verify` must name every damaged item (document, dossier, orphan blob, trace
    entry) and nothing else.
Blob times are set two minutes back before each start, so that verify counts orphans (it leaves
blobs younger than a minute alone, as stores in flight).
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import sqlite3
import time
from pathlib import Path

from coffre_drill import (Daemon, Figures, Vault, ins_of, random_document, sha256, temporary_directory,
                          winding_down)

PATIENTS = [ins_of("2%02d0175%06d" % (50 + n, 300 + n)) for n in range(3)]
SACRIFICE = ins_of("2990175000999")  # its dossier key is damaged once, taking all its documents with it
# A row deleted or moved changes the set of rows a dossier's seal counts: the dossier is refused
# whole. Each round makes two dossiers for those damages, never stored into again.
SET_DAMAGE = ("delete-row", "other-dossier")


def set_patients(round_no: int) -> tuple[str, str]:
    return ins_of("2990175%06d" % (800 + 2 * round_no)), ins_of("2990175%06d" % (801 + 2 * round_no))

BLOB_DAMAGE = ["flip", "flip-header", "flip-final-record", "truncate", "truncate-last-record", "append", "swap",
               "copy-over", "delete-blob"]
ROW_DAMAGE = ["wrapped-key-byte", "sealed-byte", "size", "class", "media-type", "uploaded-at", "status",
              "key-generation", "other-dossier", "swap-wrapped-keys", "swap-sealed", "delete-row"]


class Document:
    def __init__(self, document_id: str, ins: str, data: bytes, dossier_id: str):
        self.id = document_id
        self.ins = ins
        self.data = data
        self.dossier_id = dossier_id
        self.damage: str | None = None
        self.moved_to: str | None = None  # the patient whose dossier the row was moved into
        self.header_byte: int | None = None  # which header byte a flip-header changed


def blob_path(state: Path, document_id: str) -> Path:
    return state / "blobs" / document_id[:2] / document_id


def flip_byte(data: bytes, rng: random.Random, start: int = 0) -> bytes:
    at = rng.randrange(start, len(data))
    return data[:at] + bytes([data[at] ^ (1 << rng.randrange(8))]) + data[at + 1:]


def damage_one(state: Path, db: sqlite3.Connection, rng: random.Random, kind: str, doc: Document,
               other: Document | None, documents: dict[str, Document]) -> list[Document]:
    """Applies `kind` to `doc` (and `other` for the two-document kinds); returns the damaged."""
    path = blob_path(state, doc.id)
    if kind == "flip":
        path.write_bytes(flip_byte(path.read_bytes(), rng, 34))
    elif kind == "flip-header":
        blob = path.read_bytes()
        flipped = flip_byte(blob[:34], rng)
        doc.header_byte = next(i for i in range(34) if flipped[i] != blob[i])
        path.write_bytes(flipped + blob[34:])
    elif kind == "flip-chunk-size":
        # The header's chunk size, 65536 (00 01 00 00 at bytes 6-9), becomes 196608 (00 03 00 00).
        blob = bytearray(path.read_bytes())
        blob[7] ^= 0x02
        doc.header_byte = 7
        path.write_bytes(bytes(blob))
    elif kind == "truncate":
        blob = path.read_bytes()
        path.write_bytes(blob[:rng.randrange(0, len(blob))])
    elif kind == "truncate-last-record":
        blob = path.read_bytes()
        path.write_bytes(blob[:len(blob) - 17 - (len(doc.data) % 65536)])
    elif kind == "flip-final-record":
        blob = path.read_bytes()
        path.write_bytes(flip_byte(blob, rng, len(blob) - 17))
    elif kind == "append":
        with open(path, "ab") as f:
            f.write(os.urandom(rng.choice([1, 17, 100, 70000])))
    elif kind in ("swap", "copy-over"):
        other_path = blob_path(state, other.id)
        a, b = path.read_bytes(), other_path.read_bytes()
        path.write_bytes(b)
        if kind == "swap":
            other_path.write_bytes(a)
            return [doc, other]
    elif kind == "delete-blob":
        path.unlink()
    elif kind == "wrapped-key-byte" or kind == "sealed-byte":
        column = "wrapped_key" if kind == "wrapped-key-byte" else "sealed"
        (value,) = db.execute("SELECT %s FROM document WHERE id = ?" % column, (doc.id,)).fetchone()
        db.execute("UPDATE document SET %s = ? WHERE id = ?" % column, (flip_byte(value, rng), doc.id))
    elif kind == "size":
        db.execute("UPDATE document SET size = size + ? WHERE id = ?", (rng.choice([-1, 1, 65536]) if doc.data else 1, doc.id))
    elif kind == "class":
        db.execute("UPDATE document SET class = CASE class WHEN 'BIOLOGIE' THEN 'RADIO_SC' ELSE 'BIOLOGIE' END WHERE id = ?", (doc.id,))
    elif kind == "media-type":
        db.execute("UPDATE document SET media_type = 'text/html' WHERE id = ?", (doc.id,))
    elif kind == "uploaded-at":
        db.execute("UPDATE document SET uploaded_at = uploaded_at - 86400000 WHERE id = ?", (doc.id,))
    elif kind == "status":
        db.execute("UPDATE document SET status = 'superseded' WHERE id = ?", (doc.id,))
    elif kind == "key-generation":
        db.execute("UPDATE document SET key_generation = key_generation + 1 WHERE id = ?", (doc.id,))
    elif kind == "other-dossier":
        db.execute("UPDATE document SET dossier_id = ? WHERE id = ?", (other.dossier_id, doc.id))
        doc.moved_to = other.ins
    elif kind in ("swap-wrapped-keys", "swap-sealed"):
        column = "wrapped_key" if kind == "swap-wrapped-keys" else "sealed"
        (a,) = db.execute("SELECT %s FROM document WHERE id = ?" % column, (doc.id,)).fetchone()
        (b,) = db.execute("SELECT %s FROM document WHERE id = ?" % column, (other.id,)).fetchone()
        db.execute("UPDATE document SET %s = ? WHERE id = ?" % column, (b, doc.id))
        db.execute("UPDATE document SET %s = ? WHERE id = ?" % column, (a, other.id))
        return [doc, other]
    elif kind == "delete-row":
        db.execute("DELETE FROM document WHERE id = ?", (doc.id,))
    else:
        raise ValueError(kind)
    return [doc]


def fetch_outcome(vault: Vault, doc: Document) -> tuple[str, str]:
    """('exact' | 'integrity_error' | 'cut-prefix' | 'not_found' | 'WRONG', detail)."""
    try:
        reply = vault.fetch(doc.ins, doc.id)
        body = reply.body
    except http.client.IncompleteRead as cut:
        body = cut.partial
        if doc.data.startswith(body) and len(body) < len(doc.data):
            return "cut-prefix", "%d of %d bytes, all correct" % (len(body), len(doc.data))
        return "WRONG", "a cut stream of %d bytes that is not a prefix of the content" % len(body)
    if reply.status == 200:
        if body == doc.data:
            return "exact", ""
        return "WRONG", "200 with %d bytes, sha256 %s (stored %d, %s)" % (len(body), sha256(body), len(doc.data), sha256(doc.data))
    if reply.status == 500 and reply.code == "integrity_error":
        return "integrity_error", ""
    if reply.status == 404 and reply.code == "document_not_found":
        return "not_found", ""
    return "other", "%d %s" % (reply.status, body[:200])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bin_dir", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--documents", type=int, default=25, help="documents stored per round")
    parser.add_argument("--damage", type=int, default=8, help="damages per round")
    parser.add_argument("--cli-sample", type=int, default=4, help="damaged documents fetched with coffre doc get per round")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    figures = Figures("corruption")
    figures["seed"] = args.seed
    tmp = temporary_directory("coffre-corrupt-")
    daemon = Daemon(args.bin_dir.resolve(), tmp / "state")
    with winding_down(figures, tmp, daemon, graceful=True):
        damage_rounds(daemon, figures, rng, args, tmp)
    return figures.report()


def damage_rounds(daemon: Daemon, figures: Figures, rng: random.Random, args, tmp: Path):
    """Store, stop, damage, start, check: `args.rounds` times."""
    documents: dict[str, Document] = {}
    dossiers: dict[str, str] = {}
    damaged_dossiers: set[str] = set()
    damaged_trace: set[int] = set()
    orphans: set[str] = set()
    unsealed: set[str] = set()  # patients whose dossier's rows no longer match its seal
    kinds = BLOB_DAMAGE + ROW_DAMAGE
    daemon.start()
    vault = Vault(daemon)
    for ins in PATIENTS + [SACRIFICE]:
        reply = vault.create_dossier(ins)
        if reply.status != 201:
            figures.fail("dossier create answered %d" % reply.status)
            return
        dossiers[ins] = reply.json()["id"]
    for round_no in range(1, args.rounds + 1):
        for n in range(args.documents):
            ins = SACRIFICE if (round_no == 1 and n < 3) else rng.choice(PATIENTS)
            data = random_document(rng, 200_000)
            reply = vault.store(ins, data, document_class=rng.choice(["BIOLOGIE", "RADIO_SC"]))
            if reply.status != 201:
                figures.fail("store answered %d %s" % (reply.status, reply.body[:200]))
                return
            documents[reply.json()["id"]] = Document(reply.json()["id"], ins, data, dossiers[ins])
            figures.add("documents stored")
        set_docs: list[Document] = []
        for ins in set_patients(round_no):
            dossiers[ins] = vault.create_dossier(ins).json()["id"]
            for _ in range(2):
                data = random_document(rng, 50_000)
                reply = vault.store(ins, data)
                doc = Document(reply.json()["id"], ins, data, dossiers[ins])
                documents[doc.id] = doc
                set_docs.append(doc)
                figures.add("documents stored")
        set_a, set_b = set_patients(round_no)
        targeted = []
        if round_no == 1:
            # Sizes that are whole multiples of the 64 KiB record: the last record is an
            # empty FINAL one that comes after every byte of content has been sent.
            for size in (65536, 131072, 1000):
                data = rng.randbytes(size)
                reply = vault.store(PATIENTS[0], data)
                doc = Document(reply.json()["id"], PATIENTS[0], data, dossiers[PATIENTS[0]])
                documents[doc.id] = doc
                targeted.append(doc)
                figures.add("documents stored")
        daemon.stop()
        db = sqlite3.connect(str(daemon.state / "index.sqlite"), isolation_level=None)
        db.execute("PRAGMA foreign_keys = OFF")
        for doc, kind in zip(targeted, ("append", "flip-final-record", "flip-chunk-size")):
            damage_one(daemon.state, db, rng, kind, doc, None, documents)
            doc.damage = kind
            figures.add("damages applied")
            figures.add("damage: %s (%d-byte document)" % (kind, len(doc.data)))
        intact = [d for d in documents.values() if d.damage is None and d.ins in PATIENTS]
        rng.shuffle(intact)
        for _ in range(min(args.damage, len(intact) // 2)):
            if len(intact) < 2:
                break
            kind = kinds[(figures["damages applied"]) % len(kinds)] if round_no == 1 else rng.choice(kinds)
            if kind in SET_DAMAGE:
                candidates = [d for d in set_docs if d.ins == set_a and d.damage is None]
                targets = [d for d in set_docs if d.ins == set_b]
                if not candidates:
                    kind = "size"
                else:
                    doc = candidates[0]
                    for hit in damage_one(daemon.state, db, rng, kind, doc, targets[0], documents):
                        hit.damage = kind
                    unsealed.update({set_a, set_b} if kind == "other-dossier" else {set_a})
                    if kind == "delete-row":
                        orphans.add(doc.id)
                    figures.add("damages applied")
                    figures.add("damage: " + kind)
                    continue
            doc = intact.pop()
            if kind in ("flip", "truncate-last-record", "flip-header", "truncate") and not doc.data and kind != "truncate":
                kind = "flip-header"
            other = next((d for d in intact if d.ins != doc.ins), None) if kind == "other-dossier" else intact.pop()
            if kind == "other-dossier" and other is None:
                kind, other = "size", None
            if kind not in ("swap", "copy-over", "other-dossier", "swap-wrapped-keys", "swap-sealed") and other is not None:
                intact.append(other)
            for hit in damage_one(daemon.state, db, rng, kind, doc, other, documents):
                hit.damage = kind
            if kind == "delete-row":
                orphans.add(doc.id)
            figures.add("damages applied")
            figures.add("damage: " + kind)
        if round_no == 1:
            (value,) = db.execute("SELECT wrapped_key FROM dossier WHERE id = ?", (dossiers[SACRIFICE],)).fetchone()
            db.execute("UPDATE dossier SET wrapped_key = ? WHERE id = ?", (flip_byte(value, rng), dossiers[SACRIFICE]))
            damaged_dossiers.add(dossiers[SACRIFICE])
            for d in documents.values():
                if d.ins == SACRIFICE:
                    d.damage = d.damage or "dossier-key"
            figures.add("damages applied")
            figures.add("damage: dossier-key")
            seq = db.execute("SELECT seq FROM trace_entry ORDER BY random() LIMIT 1").fetchone()[0]
            db.execute("UPDATE trace_entry SET at = at + 1 WHERE seq = ?", (seq,))
            damaged_trace.add(seq)
            figures.add("damages applied")
            figures.add("damage: trace-entry")
        for d in documents.values():
            if d.ins in unsealed and d.damage is None:
                d.damage = "dossier-unsealed"
        for ins in unsealed:
            damaged_dossiers.add(dossiers[ins])
        db.close()
        past = time.time() - 120
        for root, _, files in os.walk(daemon.state / "blobs"):
            for name in files:
                os.utime(os.path.join(root, name), (past, past))
        daemon.start()
        check_round(daemon, vault, documents, damaged_dossiers, damaged_trace, orphans, unsealed, figures, args.cli_sample, rng,
                    tmp)
        print("  round %d/%d: %d documents, %d damaged, all checks %s" % (
            round_no, args.rounds, len(documents), sum(1 for d in documents.values() if d.damage),
            "passed" if figures.ok() else "NOT passed (%d regression failures)" % sum(
                f.startswith("REGRESSION") for f in figures.failures)), flush=True)
        if any(not f.startswith("REGRESSION") for f in figures.failures):
            break  # a new failure: stop here and keep the state (regressions of fixed bugs do not stop the rounds)


def known_bug(doc: Document) -> str:
    """Damage this drill once found served or unnoticed, tried first in every run: damage after
    the last byte of content of a document whose size is a whole number of 64 KiB records (found
    only after the whole body had gone out, fixed by holding each record back until the next is
    checked), and a changed chunk size in a one-record blob (fixed by blob format 2, which binds
    the header into every record). See docs/reliability.md."""
    if doc.data and len(doc.data) % 65536 == 0 and doc.damage in ("append", "flip-final-record"):
        return "REGRESSION (fixed bug: damage after the last content byte of a 64 KiB-multiple document went unreported): "
    if doc.damage in ("flip-header", "flip-chunk-size") and doc.header_byte in (6, 7, 8, 9) and len(doc.data) < 65536:
        return "REGRESSION (fixed bug: a changed chunk size in a one-record blob went unnoticed): "
    return ""


def check_round(daemon: Daemon, vault: Vault, documents: dict[str, Document], damaged_dossiers: set[str],
                damaged_trace: set[int], orphans: set[str], unsealed: set[str], figures: Figures, cli_sample: int,
                rng: random.Random, tmp: Path):
    damaged = [d for d in documents.values() if d.damage]
    for doc in documents.values():
        outcome, detail = fetch_outcome(vault, doc)
        figures.add("fetches")
        if doc.damage is None:
            if outcome != "exact":
                figures.fail("undamaged document %s: %s %s" % (doc.id, outcome, detail))
            else:
                figures.add("undamaged documents served byte-exact")
            continue
        # A deleted row, or a row moved to another dossier, leaves its dossier (and the one it
        # was moved into) short of its seal: every document there is refused before any byte.
        expected = ("integrity_error",) if doc.ins in unsealed else ("integrity_error", "cut-prefix")
        if outcome in expected:
            figures.add("damaged fetches refused (%s)" % outcome)
        else:
            figures.fail("%sdocument %s (%d bytes) damaged by %s: fetch gave %s %s" % (
                known_bug(doc), doc.id, len(doc.data), doc.damage, outcome, detail))
        if doc.moved_to:
            moved = Document(doc.id, doc.moved_to, doc.data, "")
            outcome, detail = fetch_outcome(vault, moved)
            if outcome in ("integrity_error", "cut-prefix"):
                figures.add("damaged fetches refused (%s)" % outcome)
            else:
                figures.fail("document %s moved into another dossier: fetch there gave %s %s" % (doc.id, outcome, detail))
    for ins in sorted({d.ins for d in documents.values()}):
        reply = vault.list(ins)
        spoilt = ins in unsealed or any(
            d.damage and d.damage not in ("delete-row", "delete-blob") and (d.ins == ins or d.moved_to == ins)
            for d in documents.values())
        if reply.status == 200:
            figures.add("lists served")
        elif reply.status == 500 and reply.code == "integrity_error" and spoilt:
            # Observed: one row that fails to open refuses the whole listing (fail-closed).
            figures.add("lists refused whole (a damaged row in the dossier)")
        else:
            figures.fail("list of a dossier answered %d %s" % (reply.status, reply.body[:200]))
    out_dir = tmp / "out"
    out_dir.mkdir(exist_ok=True)
    targeted = [d for d in damaged if known_bug(d)]
    others = [d for d in damaged if not known_bug(d)]
    for doc in targeted + rng.sample(others, min(cli_sample, len(others))):
        target = out_dir / "copy.bin"
        result = daemon.client("--as", "patient:" + doc.ins, "doc", "get", doc.id, "-o", str(target))
        want = 76
        left = os.listdir(out_dir)
        if result.returncode != want or left:
            figures.fail("%scoffre doc get %s (%d bytes, damaged by %s): exit %d (want %d), left %s; %s" % (
                known_bug(doc), doc.id, len(doc.data), doc.damage, result.returncode, want, left, result.stderr[-200:]))
            for name in left:
                os.unlink(out_dir / name)
        else:
            figures.add("coffre doc get refused a damaged document (exit %d, nothing written)" % want)
    report = daemon.verify()
    problems = report.get("problems", [])
    text = "\n".join(problems)
    for doc in damaged:
        if doc.id in text:
            figures.add("damaged documents named by verify (all rounds)")
        elif doc.dossier_id in damaged_dossiers and doc.dossier_id in text:
            figures.add("damaged documents named by verify (all rounds)")
        else:
            figures.fail("%sverify does not name %s (%d bytes, damaged by %s)" % (known_bug(doc), doc.id, len(doc.data), doc.damage))
    for dossier_id in damaged_dossiers:
        if dossier_id not in text:
            figures.fail("verify does not name dossier %s (its wrapped key was damaged)" % dossier_id)
    if damaged_trace and report.get("firstBrokenTraceEntry") not in damaged_trace and not any(
            ("entry %d" % s) in text or ("%d" % s) in text for s in damaged_trace):
        figures.fail("verify does not name trace entry %s (firstBrokenTraceEntry %s)" % (
            sorted(damaged_trace), report.get("firstBrokenTraceEntry")))
    if report.get("orphanBlobs", 0) != len(orphans):
        figures.fail("verify counts %s orphan blobs, %d rows were deleted" % (report.get("orphanBlobs"), len(orphans)))
    known = {d.id for d in damaged} | damaged_dossiers
    for problem in problems:
        if not any(k in problem for k in known) and "trace" not in problem.lower():
            figures.fail("verify names something undamaged: %s" % problem)
    if report.get("ok") or report["_exit"] == 0:
        figures.fail("verify says ok (exit %d) with %d damaged documents" % (report["_exit"], len(damaged)))
    figures["verify: problems reported (last)"] = len(problems)
    figures["verify: exit status (last)"] = report["_exit"]
    figures["damaged documents (total)"] = len(damaged)
    figures["health after"] = vault.health().status


if __name__ == "__main__":
    raise SystemExit(main())
