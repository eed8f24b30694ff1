"""Master keys and dossier rekeys: the key versions, their rotation (in development mode the
daemon writes the next key itself; without it an operator installs it), retirement and reload,
and rekeys with and without re-encryption, two at once included; refusals in the documented
order, and nothing done while the trace cannot be written. The development run's key cases come
near its end (rotations add key versions, which the production run then finds); the production
run's, and a new vault's, after."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .common import (
    DUE_GET, RUN_POST, STATUS_GET,
    DOCS_GET, INS1, INS3, INS4, INS_BAD_KEY, INS_CLOSE, INS_LOCKED, JSON_HEADERS, KEYS_GET, KEYS_RELOAD, KEYS_RETIRE,
    KEYS_ROTATE, MAX_DOCUMENT_BYTES, NDJSON, REKEY, REKEY_POST, RETIRE, TRACE_GET, UNKNOWN_ID, VERIFY_POST, Daemon,
    Reply, json_is, near_now, parse_time, request, trace_is,
)
from .verify_clock import verify_stream

# The vault's own keys a master key wraps: the INS look-up key, the trace signing seed, the key
# that seals who made a decision naming no dossier, and the key of the dossiers' seals.
VAULT_KEYS = 4


def version_of(body, number):
    """The MasterKeyVersionView of version `number`, or None."""
    return next((v for v in body["versions"] if v["version"] == number), None)


def keys_is(check):
    """An `extra` check of a MasterKeysView: what the schema cannot say (versions in increasing
    order, exactly one active and it is `activeVersion`, a rotation's target is the active
    version and its `done` at most its `total`, no version older than a purge before any
    purge, and no version recorded after the last purge said to be older), then `check(body)`."""
    def extra(reply):
        b = reply.json()
        numbers = [v["version"] for v in b["versions"]]
        purges = b.get("purges")

        def predates(v) -> bool | None:
            """What predatesLastPurge must be; None within the same second (times are sent to the second)."""
            if purges is None:
                return False
            added, last = parse_time(v["addedAt"]), parse_time(purges["lastAt"])
            return None if added == last else added < last
        wrong = [v["version"] for v in b["versions"] if predates(v) not in (None, v["predatesLastPurge"])]
        if wrong:
            return ["predatesLastPurge disagrees with addedAt and purges.lastAt for version(s) %s: %s" % (wrong, json.dumps(b)[:500])]
        active = [v["version"] for v in b["versions"] if v["state"] == "active"]
        rotation = b.get("rotation")
        if numbers != sorted(set(numbers)):
            return ["versions not in increasing order: %s" % numbers]
        if active != [b["activeVersion"]]:
            return ["activeVersion is %s, versions in state active: %s" % (b["activeVersion"], active)]
        if rotation and (rotation["targetVersion"] != b["activeVersion"] or rotation["done"] > rotation["total"]):
            return ["inconsistent rotation: %s" % json.dumps(rotation)]
        return [] if check(b) else ["unexpected body: %s" % json.dumps(b)[:700]]
    return extra


def index_query(state: Path, sql: str, *args) -> list:
    db = sqlite3.connect(str(state / "index.sqlite"), timeout=10)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def index_usage(state: Path) -> dict:
    """What the index says each master key version wraps: {version: (dossier keys, archived
    dossier keys, vault keys)}."""
    usage: dict[int, list[int]] = {}
    for column, sql in enumerate([
            "SELECT master_version, COUNT(*) FROM dossier WHERE master_version > 0 GROUP BY master_version",
            "SELECT master_version, COUNT(*) FROM dossier_key_archive GROUP BY master_version",
            "SELECT master_version, COUNT(*) FROM vault_key GROUP BY master_version"]):
        for version, count in index_query(state, sql):
            usage.setdefault(version, [0, 0, 0])[column] = count
    return {version: tuple(counts) for version, counts in usage.items()}


def wraps(v) -> tuple:
    return (v["dossierKeys"], v["archivedDossierKeys"], v["vaultKeys"])


def usage_agrees(b, usage: dict) -> bool:
    """Every version wraps what the index says, and no version the view leaves out wraps anything."""
    listed = {v["version"]: wraps(v) for v in b["versions"]}
    return all(listed.get(version) == counts for version, counts in usage.items()) and all(
        counts == (0, 0, 0) for version, counts in listed.items() if version not in usage)


def install_master_key(directory: Path, version: int) -> Path:
    """Writes a new random master key file, as `coffre admin keys new` does (mode 0400)."""
    path = directory / ("coffre-master-%d" % version)
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    try:
        os.write(fd, os.urandom(32))
    finally:
        os.close(fd)
    return path


def key_file_made(directory: Path, version: int):
    """An `extra` check: the daemon wrote `coffre-master-<version>`, 32 bytes, mode 0400."""
    def extra(reply):
        path = directory / ("coffre-master-%d" % version)
        if not path.exists():
            return ["%s was not written" % path.name]
        info = path.stat()
        if info.st_size != 32 or info.st_mode & 0o777 != 0o400:
            return ["%s: %d bytes, mode %o" % (path.name, info.st_size, info.st_mode & 0o777)]
        return []
    return extra


def all_of(*checks):
    """An `extra` check made of several, stopping at the first that finds problems."""
    def extra(reply):
        for check in checks:
            problems = check(reply)
            if problems:
                return problems
        return []
    return extra


def wait_for_rotation(sock: str, timeout: float = 90.0) -> Reply:
    """getMasterKeys until the rotation is finished (or there is none); the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        reply = request(sock, "GET", "/v1/admin/keys")
        rotation = reply.json().get("rotation") if reply.status == 200 else None
        if rotation is None or rotation["state"] == "finished" or time.monotonic() > deadline:
            return reply
        time.sleep(0.1)


def finished_rotation(target: int, retired_before: set[int] | None = None):
    """The check of a finished rotation to `target`: every key under it, every other version
    wrapping nothing (the keys that failed aside: none here)."""
    def check(b):
        rotation = b.get("rotation") or {}
        target_view = version_of(b, target) or {}
        return (b["activeVersion"] == target and rotation.get("state") == "finished" and "finishedAt" in rotation
                and rotation["done"] == rotation["total"] and rotation["failed"] == 0
                and target_view.get("vaultKeys") == VAULT_KEYS
                and all(wraps(v) == (0, 0, 0) for v in b["versions"] if v["version"] != target))
    return check


def keys_traced(state: Path, actions: set[str]) -> tuple[list[str], list[str]]:
    """The trace entries of key operations (in no dossier's trace, so read from the index):
    problems with their presence, and with their naming the operator."""
    rows = index_query(state, "SELECT action, outcome, dossier_id, detail FROM trace_entry WHERE action LIKE 'keys.%'")
    found = {action for action, outcome, dossier, _ in rows if outcome == "allowed" and dossier is None}
    presence = ["no allowed %s entry in the trace" % a for a in sorted(actions - found)]
    naming = []
    for action, outcome, _, detail in rows:
        if outcome != "allowed":
            continue
        fields = json.loads(detail or "{}")
        if fields.get("actorRole") != "operator" or fields.get("actorID") != "uid %d" % os.geteuid():
            naming.append("%s: detail %s names no operator uid" % (action, detail))
    return presence, naming[:3]


def blob_files(state: Path) -> set[str]:
    return {name for _, _, names in os.walk(state) for name in names}


def two_at_once(sock: str, path: str, body: bytes, tries: int) -> tuple[list, int]:
    """Sends the same JSON request twice at once, up to `tries` times, until one answer is 200
    and the other 409: those two (200 first), or [] if they never overlapped; and how many
    requests were sent."""
    sent = 0
    for _ in range(tries):
        replies: list = [None, None]

        def go(i):
            replies[i] = request(sock, "POST", path, headers={"Content-Type": "application/json"}, body=body)
        threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        sent += 2
        if all(r is not None for r in replies) and sorted(r.status for r in replies) == [200, 409]:
            return sorted(replies, key=lambda r: r.status), sent
    return [], sent


def rekeyed_trace(count: int):
    """The check of patient 1's trace after `count` rekeys: every entry read (whatever key
    generation wrote it), the rekeys allowed to an operator named by uid."""
    uid = "uid %d" % os.geteuid()

    def check(es):
        rekeys = [e for e in es if e["action"] == "dossier.rekey"]
        return (len(rekeys) == count and es[0]["action"] == "dossier.create" and es[0]["actor"]["id"] == INS1
                and all("actor" in e and "rule" in e for e in es)
                and all(e["outcome"] == "allowed" and e["rule"] == "operator"
                        and e["actor"] == {"role": "operator", "id": uid} and "mode" not in e for e in rekeys))
    return check


@dataclass(frozen=True)
class KeyCases:
    """What the development run's key cases share: the daemon, and patient 1's and 4's dossiers
    (patient 1's is rekeyed, and its documents read back after each change of keys)."""
    d: Daemon
    id1: str
    id4: str
    versions1: int  # patient 1's document versions: a document key each to rewrap, a blob each to re-encrypt

    @classmethod
    def start(cls, d: Daemon) -> "KeyCases":
        def dossier_id(ins: str) -> str:
            reply = request(d.sock, "GET", "/v1/patients/%s/dossier" % ins, headers=d.issuer.auth(ins))
            return reply.json()["id"] if reply.status == 200 else UNKNOWN_ID

        id1, id4 = dossier_id(INS1), dossier_id(INS4)
        versions1 = index_query(d.state, "SELECT COUNT(*) FROM document WHERE dossier_id = ?", id1)[0][0]
        return cls(d, id1, id4, versions1)

    def generation(self, dossier: str):
        rows = index_query(self.d.state, "SELECT key_generation FROM dossier WHERE id = ?", dossier)
        return rows[0][0] if rows else None

    def same_contents(self, reply) -> list[str]:
        """Every current document of the listing: its content is what its metadata says."""
        problems = []
        p1 = self.d.issuer.auth(INS1)
        for d in reply.json()["documents"]:
            got = request(self.d.sock, "GET", "/v1/patients/%s/documents/%s/content" % (INS1, d["id"]), headers=p1)
            if got.status != 200 or hashlib.sha256(got.body).hexdigest() != d["sha256"] or len(got.body) != d["size"]:
                problems.append("document %s: %d, %d bytes" % (d["id"], got.status, len(got.body)))
        return problems or ([] if len(reply.json()["documents"]) >= 4 else ["too few documents listed"])


def exercise_keys(d: Daemon):
    """The master key versions, their rotation (in development mode, which writes the next key
    itself), retirement and reload, and dossier rekeys; refusals in the documented order, and
    nothing done while the trace cannot be written. Near the end of the development run: a
    rotation adds key versions, which the production run then finds."""
    k = KeyCases.start(d)
    versions_at_the_start(d)
    retire_refusals(d)
    key_operations_fail_closed(d, k)
    rekey_refusals(d, k)
    rekeys(d, k)
    traced_rekeys = rekeys_at_once(d, k)
    rotation_in_development_mode(d)
    retirement_and_reload(d, k, traced_rekeys)
    a_version_installed_by_hand(d)
    key_operations_traced(d)


def versions_at_the_start(d: Daemon):
    """Version 1, active, wrapping every key; never rotated; a reload with no new file changes
    nothing."""
    checker, send, state = d.checker, d.send, d.state
    usage = index_usage(state)
    checker.case("getMasterKeys -> 200, version 1 active and wrapping every key, never rotated", KEYS_GET,
                 send("GET", "/v1/admin/keys"), 200,
                 extra=keys_is(lambda b: b["activeVersion"] == 1 and "rotation" not in b and len(b["versions"]) == 1
                               and b["versions"][0]["installed"] is True and b["versions"][0]["vaultKeys"] == VAULT_KEYS
                               and b["versions"][0]["dossierKeys"] >= 5 and usage_agrees(b, usage)
                               and near_now(b["versions"][0]["addedAt"], 3600)))
    checker.case("getMasterKeys ignores an Authorization header -> 200", KEYS_GET,
                 send("GET", "/v1/admin/keys", headers={"Authorization": "Coffre-Assertion nonsense"}), 200)
    checker.case("reloadMasterKeys with no new file -> 200, nothing changed", KEYS_RELOAD,
                 send("POST", "/v1/admin/keys/reload"), 200,
                 extra=keys_is(lambda b: b["activeVersion"] == 1 and len(b["versions"]) == 1 and "rotation" not in b))


def retire_refusals(d: Daemon):
    """retireMasterKey of a version that is no version, never was one, or is active."""
    checker, send = d.checker, d.send
    for label, version in [("0", "0"), ("a word", "abc"), ("above 4294967295", "4294967296"), ("negative", "-1"),
                           ("a decimal", "1.5"), ("'rotate'", "rotate")]:
        checker.case("retireMasterKey version %s -> 400 invalid_identifier" % label, KEYS_RETIRE,
                     send("POST", RETIRE % version), 400, "invalid_identifier")
    for version in ("7", "4294967295"):
        checker.case("retireMasterKey of version %s, never known -> 404 key_version_not_found" % version, KEYS_RETIRE,
                     send("POST", RETIRE % version), 404, "key_version_not_found")
    checker.case("retireMasterKey of the active version -> 409 key_in_use", KEYS_RETIRE,
                 send("POST", RETIRE % 1), 409, "key_in_use")


def key_operations_fail_closed(d: Daemon, k: KeyCases):
    """While the trace cannot be written, no key operation is done (the checks that come before
    the trace still answer), and no key file is written."""
    checker, send, send_json, state = d.checker, d.send, d.send_json, d.state
    keys_dir, id1, generation = state / "keys", k.id1, k.generation
    try:
        lock = sqlite3.connect(str(state / "index.sqlite"), timeout=0, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as error:
        checker.record("key operations: hold the index's write lock", [repr(error)])
    else:
        try:
            for label, op, go, status, code in [
                ("rotateMasterKey", KEYS_ROTATE, send("POST", "/v1/admin/keys/rotate"), 503, "trace_unavailable"),
                ("reloadMasterKeys", KEYS_RELOAD, send("POST", "/v1/admin/keys/reload"), 503, "trace_unavailable"),
                ("retireMasterKey of the active version (the trace before the 409)", KEYS_RETIRE,
                 send("POST", RETIRE % 1), 503, "trace_unavailable"),
                ("retireMasterKey of an unknown version (the trace before the 404)", KEYS_RETIRE,
                 send("POST", RETIRE % 7), 503, "trace_unavailable"),
                ("retireMasterKey of a bad version (the version before the trace)", KEYS_RETIRE,
                 send("POST", RETIRE % "x"), 400, "invalid_identifier"),
                ("rekeyDossier", REKEY_POST, send_json(REKEY_POST, REKEY % INS1, {}, {"reencrypt": True}), 503,
                 "trace_unavailable"),
                ("rekeyDossier without a dossier (its refusal is traced too)", REKEY_POST,
                 send_json(REKEY_POST, REKEY % INS3, {}, {}), 503, "trace_unavailable"),
                ("getMasterKeys (an operator's read, traced too)", KEYS_GET, send("GET", "/v1/admin/keys"), 503,
                 "trace_unavailable"),
                ("getAdminStatus", STATUS_GET, send("GET", "/v1/admin/status"), 503, "trace_unavailable"),
                ("getRetentionDue", DUE_GET, send("GET", "/v1/retention/due"), 503, "trace_unavailable"),
                ("runRetention (nothing purged)", RUN_POST, send_json(RUN_POST, "/v1/retention/run", {}, {"dryRun": False}), 503,
                 "trace_unavailable"),
                ("verifyTrace (nothing read)", VERIFY_POST, send("POST", "/v1/admin/verify"), 503, "trace_unavailable"),
                ("verifyTrace streamed (refused before the status line)", VERIFY_POST,
                 send("POST", "/v1/admin/verify", headers=NDJSON), 503, "trace_unavailable"),
            ]:
                checker.case("%s while the trace cannot be written -> %d%s" % (label, status, " " + code if code else ""),
                             op, go, status, code)
        finally:
            lock.execute("ROLLBACK")
            lock.close()
    checker.case("getMasterKeys after the refused key operations -> 200, nothing changed, no key file written",
                 KEYS_GET, send("GET", "/v1/admin/keys"), 200,
                 extra=keys_is(lambda b: b["activeVersion"] == 1 and len(b["versions"]) == 1 and "rotation" not in b
                               and not (keys_dir / "coffre-master-2").exists() and generation(id1) == 1))


def rekey_refusals(d: Daemon, k: KeyCases):
    """rekeyDossier's refusals, in the documented order; none changes the key generation."""
    checker, send, send_json = d.checker, d.send, d.send_json
    id1, generation = k.id1, k.generation
    checker.case("rekeyDossier invalid INS -> 400 invalid_ins", REKEY_POST,
                 send_json(REKEY_POST, REKEY % INS_BAD_KEY, {}, {}), 400, "invalid_ins")
    checker.case("rekeyDossier invalid INS, malformed body -> 400 invalid_ins (the INS first)", REKEY_POST,
                 send_json(REKEY_POST, REKEY % "12345", {}, b"{"), 400, "invalid_ins")
    for label, body in [("not JSON", b"{"), ("reencrypt a string", {"reencrypt": "yes"}), ("reencrypt a number", {"reencrypt": 1}),
                        ("an array", [True]), ("a string", "reencrypt"), ("an empty body", b"")]:
        checker.case("rekeyDossier %s -> 400 malformed_json" % label, REKEY_POST,
                     send_json(REKEY_POST, REKEY % INS1, {}, body), 400, "malformed_json")
    checker.case("rekeyDossier body over 64 KiB -> 413 payload_too_large", REKEY_POST,
                 send("POST", REKEY % INS1, headers=JSON_HEADERS, body=b" " * (70 * 1024) + b"{}"), 413, "payload_too_large")
    checker.case("rekeyDossier malformed, without a dossier -> 400 malformed_json (the body first)", REKEY_POST,
                 send_json(REKEY_POST, REKEY % INS3, {}, {"reencrypt": "no"}), 400, "malformed_json")
    checker.case("rekeyDossier without a dossier -> 404 dossier_not_found", REKEY_POST,
                 send_json(REKEY_POST, REKEY % INS3, {}, {}), 404, "dossier_not_found")
    checker.case("rekeyDossier of a purged dossier -> 404 dossier_not_found", REKEY_POST,
                 send_json(REKEY_POST, REKEY % INS_CLOSE, {}, {"reencrypt": True}), 404, "dossier_not_found")
    checker.record("rekeyDossier refusals changed nothing (key generation 1)",
                   [] if generation(id1) == 1 else ["patient 1's key generation is %s" % generation(id1)])


def rekeys(d: Daemon, k: KeyCases):
    """rekeyDossier with re-encryption (every blob renamed, every content read back), without,
    and of another dossier; the trace read across key generations."""
    checker, send, send_json, state = d.checker, d.send, d.send_json, d.state
    p1 = d.issuer.auth(INS1)
    id1, id4, versions1, same_contents = k.id1, k.id4, k.versions1, k.same_contents
    before = blob_files(state)
    names1 = [(row[0], row[1]) for row in index_query(state, "SELECT id, blob_version FROM document WHERE dossier_id = ?", id1)]

    def blobs_renamed(reply):
        after = blob_files(state)
        stale = [i for i, v in names1 if (i if v == 0 else "%s.%d" % (i, v)) in after]
        missing = [i for i, v in names1 if "%s.%d" % (i, v + 1) not in after]
        if not names1 or stale or missing or not before:
            return ["old blobs left: %s; new blobs missing: %s" % (stale, missing)]
        return []
    checker.case("rekeyDossier with reencrypt, ignoring an Authorization header -> 200, generation 2, every version "
                 "re-encrypted", REKEY_POST,
                 send_json(REKEY_POST, REKEY % INS1, {"Authorization": "Coffre-Assertion nonsense"}, {"reencrypt": True}), 200,
                 extra=all_of(json_is(lambda b: b == {"dossierId": id1, "keyGeneration": 2, "documentKeysRewrapped": versions1,
                                                      "blobsReencrypted": versions1} and versions1 >= 5),
                              blobs_renamed))
    checker.case("listDocuments after the re-encryption, every content read back -> 200, the same bytes", DOCS_GET,
                 send("GET", "/v1/patients/%s/documents" % INS1, headers=p1), 200, extra=same_contents)
    checker.case("rekeyDossier with {} -> 200, generation 3, document keys rewrapped, no blob re-encrypted", REKEY_POST,
                 send_json(REKEY_POST, REKEY % INS1, {}, {}), 200,
                 extra=json_is(lambda b: b == {"dossierId": id1, "keyGeneration": 3, "documentKeysRewrapped": versions1,
                                               "blobsReencrypted": 0}))
    checker.case("rekeyDossier of patient 4, reencrypt false, another member ignored -> 200, generation 2", REKEY_POST,
                 send_json(REKEY_POST, REKEY % INS4, {}, {"reencrypt": False, "reason": "ignored"}), 200,
                 extra=json_is(lambda b: b["dossierId"] == id4 and b["keyGeneration"] == 2 and b["blobsReencrypted"] == 0
                               and b["documentKeysRewrapped"] >= 3))
    checker.case("getTrace after two rekeys, by the patient -> 200, entries of every key generation read, the rekeys "
                 "by an operator", TRACE_GET, send("GET", "/v1/patients/%s/trace" % INS1, headers=p1), 200,
                 extra=trace_is(rekeyed_trace(2)))


def rekeys_at_once(d: Daemon, k: KeyCases) -> int:
    """Two rekeys of one dossier at once (without re-encryption: see new_vault_rekeys_at_once for
    two with it): the one that commits second finds the generation changed, changes nothing.
    Returns how many rekeys patient 1's trace now holds."""
    checker, send, sock, state = d.checker, d.send, d.sock, d.state
    p1 = d.issuer.auth(INS1)
    id1, generation, same_contents = k.id1, k.generation, k.same_contents
    pair, sent = two_at_once(sock, REKEY % INS1, b"{}", 20)
    traced_rekeys = 2 + sent  # each request is traced before it is tried, the refused one too
    if pair:
        checker.case("rekeyDossier, two at once: one -> 200", REKEY_POST, lambda: pair[0], 200,
                     extra=json_is(lambda b: b["dossierId"] == id1 and b["blobsReencrypted"] == 0))
        checker.case("rekeyDossier, two at once: the other -> 409 document_conflict", REKEY_POST, lambda: pair[1], 409,
                     "document_conflict")
    else:
        checker.skip("rekeyDossier, two at once -> 200 and 409 document_conflict", "the two rekeys never overlapped")
    generation1 = generation(id1)
    checker.case("listDocuments after the rekeys at once, every content read back -> 200, the same bytes", DOCS_GET,
                 send("GET", "/v1/patients/%s/documents" % INS1, headers=p1), 200, extra=same_contents)
    usage = index_usage(state)
    checker.case("getMasterKeys after the rekeys -> 200, the earlier generations wrapped by version 1", KEYS_GET,
                 send("GET", "/v1/admin/keys"), 200,
                 extra=keys_is(lambda b: usage_agrees(b, usage)
                               and b["versions"][0]["archivedDossierKeys"] == (generation1 - 1) + 1 >= 3))
    checker.case("verifyTrace after the rekeys -> 200, every earlier key generation unwraps", VERIFY_POST,
                 send("POST", "/v1/admin/verify"), 200,
                 extra=json_is(lambda b: b["ok"] is True and b["problems"] == []))
    return traced_rekeys


def rotation_in_development_mode(d: Daemon):
    """In development mode the daemon writes the next key itself: a rotation, another while it
    runs (to a third version), the first one's version refused retirement meanwhile, then
    retired once the rotation finished."""
    checker, send, sock, state = d.checker, d.send, d.sock, d.state
    keys_dir = state / "keys"
    usage = index_usage(state)
    dossier_keys, archived = usage[1][0], usage[1][1]
    first = checker.case(
        "rotateMasterKey in --dev -> 202, version 2 written and active, the rotation running", KEYS_ROTATE,
        send("POST", "/v1/admin/keys/rotate"), 202,
        extra=all_of(key_file_made(keys_dir, 2), keys_is(
            lambda b: b["activeVersion"] == 2 and [v["version"] for v in b["versions"]] == [1, 2]
            and version_of(b, 2)["installed"] is True and wraps(version_of(b, 2)) == (0, 0, VAULT_KEYS)
            and version_of(b, 2)["state"] == "active" and near_now(version_of(b, 2)["addedAt"], 120)
            and version_of(b, 1)["state"] == "available" and version_of(b, 1)["installed"] is True
            and wraps(version_of(b, 1)) == (dossier_keys, archived, 0)
            and {k: v for k, v in b["rotation"].items() if k != "startedAt"}
            == {"targetVersion": 2, "state": "running", "done": 0, "total": dossier_keys + archived, "failed": 0}
            and near_now(b["rotation"]["startedAt"], 120))))
    checker.case("retireMasterKey of the version the rotation moves away from -> 409 key_in_use", KEYS_RETIRE,
                 send("POST", RETIRE % 1), 409, "key_in_use")
    started = (first.json().get("rotation") or {}).get("startedAt") if first is not None and first.status == 202 else None
    checker.case("rotateMasterKey in --dev while a rotation runs -> 202, version 3 written, the rotation to it", KEYS_ROTATE,
                 send("POST", "/v1/admin/keys/rotate"), 202,
                 extra=all_of(key_file_made(keys_dir, 3), keys_is(
                     lambda b: b["activeVersion"] == 3 and [v["version"] for v in b["versions"]] == [1, 2, 3]
                     and version_of(b, 2)["state"] == "available" and wraps(version_of(b, 3))[2] == VAULT_KEYS
                     and b["rotation"]["targetVersion"] == 3 and b["rotation"]["state"] == "running"
                     and b["rotation"]["startedAt"] >= (started or "")
                     and b["rotation"]["total"] == dossier_keys + archived)))
    checker.case("getMasterKeys once the rotation finished -> 200, version 3 wraps every key", KEYS_GET,
                 lambda: wait_for_rotation(sock), 200,
                 extra=keys_is(lambda b: finished_rotation(3)(b) and wraps(version_of(b, 3)) == (dossier_keys, archived, VAULT_KEYS)))
    checker.case("retireMasterKey of version 1, wrapping nothing -> 200, retired", KEYS_RETIRE, send("POST", RETIRE % 1), 200,
                 extra=keys_is(lambda b: version_of(b, 1)["state"] == "retired" and version_of(b, 1)["installed"] is False
                               and near_now(version_of(b, 1)["retiredAt"], 120) and "retiredAt" not in version_of(b, 2)))


def retirement_and_reload(d: Daemon, k: KeyCases, traced_rekeys: int):
    """Retired versions stay retired (and unloaded, their files kept) across a reload; the active
    one cannot be retired; every content, the trace and its check still read after the rotation."""
    checker, send = d.checker, d.send
    keys_dir, p1, same_contents = d.state / "keys", d.issuer.auth(INS1), k.same_contents
    retired_at = {}

    def remember(b):
        retired_at.update({v["version"]: v.get("retiredAt") for v in b["versions"]})
        return True
    checker.case("retireMasterKey of version 2 -> 200, retired", KEYS_RETIRE, send("POST", RETIRE % 2), 200,
                 extra=keys_is(lambda b: version_of(b, 2)["state"] == "retired" and version_of(b, 2)["installed"] is False
                               and remember(b)))
    checker.case("retireMasterKey of version 1 again -> 200, unchanged", KEYS_RETIRE, send("POST", RETIRE % 1), 200,
                 extra=keys_is(lambda b: version_of(b, 1)["state"] == "retired" and version_of(b, 1)["retiredAt"] == retired_at.get(1)))
    checker.case("retireMasterKey of the new active version -> 409 key_in_use", KEYS_RETIRE, send("POST", RETIRE % 3), 409,
                 "key_in_use")
    checker.case("reloadMasterKeys with the retired files still there -> 200, they stay retired, not loaded", KEYS_RELOAD,
                 send("POST", "/v1/admin/keys/reload"), 200,
                 extra=keys_is(lambda b: b["activeVersion"] == 3 and all(version_of(b, n)["state"] == "retired"
                                                                         and version_of(b, n)["installed"] is False
                                                                         for n in (1, 2))
                               and (keys_dir / "coffre-master-1").exists()))
    checker.case("getAdminStatus after the rotation -> 200, version 3 active and the only one held", ("GET", "/v1/admin/status"),
                 send("GET", "/v1/admin/status"), 200,
                 extra=json_is(lambda b: b["activeMasterKeyVersion"] == 3 and b["installedMasterKeyVersions"] == [3]))
    checker.case("listDocuments after the rotation, every content read back -> 200, the same bytes", DOCS_GET,
                 send("GET", "/v1/patients/%s/documents" % INS1, headers=p1), 200, extra=same_contents)
    checker.case("getTrace after the rotation -> 200, entries of every key generation still read", TRACE_GET,
                 send("GET", "/v1/patients/%s/trace" % INS1, headers=p1), 200,
                 extra=trace_is(rekeyed_trace(traced_rekeys)))
    checker.case("verifyTrace streamed after the rotation -> 200, the report ok", VERIFY_POST,
                 send("POST", "/v1/admin/verify", headers=NDJSON), 200,
                 extra=verify_stream(lambda r: r["ok"] is True and r["problems"] == []))


def a_version_installed_by_hand(d: Daemon):
    """A version installed by hand, taken in by a reload, retired unused; the next rotation in
    development mode then writes the version after it."""
    checker, send, sock = d.checker, d.send, d.sock
    keys_dir = d.state / "keys"
    install_master_key(keys_dir, 4)
    checker.case("reloadMasterKeys with coffre-master-4 installed -> 200, version 4 available, wrapping nothing",
                 KEYS_RELOAD, send("POST", "/v1/admin/keys/reload"), 200,
                 extra=keys_is(lambda b: b["activeVersion"] == 3 and version_of(b, 4) is not None
                               and version_of(b, 4)["state"] == "available" and version_of(b, 4)["installed"] is True
                               and wraps(version_of(b, 4)) == (0, 0, 0) and near_now(version_of(b, 4)["addedAt"], 120)))
    checker.case("retireMasterKey of version 4, available and unused -> 200, retired", KEYS_RETIRE,
                 send("POST", RETIRE % 4), 200,
                 extra=keys_is(lambda b: b["activeVersion"] == 3 and version_of(b, 4)["state"] == "retired"
                               and version_of(b, 4)["installed"] is False))
    # No installed version is newer than the active one: in --dev, the next key (5: version 4
    # was used, if only to be retired) is written and rotated to.
    dev_rotation = checker.case(
        "rotateMasterKey in --dev, only a retired version above the active one -> 202, version 5 written",
        KEYS_ROTATE, send("POST", "/v1/admin/keys/rotate"), 202,
        extra=all_of(key_file_made(keys_dir, 5), keys_is(lambda b: b["activeVersion"] == 5)))
    if dev_rotation is not None and dev_rotation.status == 202:
        checker.case("getMasterKeys once the rotation to version 5 finished -> 200", KEYS_GET, lambda: wait_for_rotation(sock),
                     200, extra=keys_is(finished_rotation(5)))


def key_operations_traced(d: Daemon):
    """Every key operation traced (in no dossier's trace: read from the index), naming the
    operator."""
    checker, state = d.checker, d.state
    presence, naming = keys_traced(state, {"keys.reload", "keys.rotate", "keys.retire"})
    checker.record("trace: key operations written to the trace (keys.reload, keys.rotate, keys.retire), in no dossier's",
                   presence)
    checker.record("trace: key operations name the operator by uid", naming)


def exercise_production_keys(d: Daemon):
    """Master keys without --dev, on the state the development run left: no key is ever written
    by the daemon, so rotating with nothing newer installed is refused; an operator installs the
    next version, reloads and rotates (the daemon also rewraps one key per batch, resting
    between two), and the rotation's old version is retired once the rotation finished."""
    checker, send, send_json, sock, state = d.checker, d.send, d.send_json, d.sock, d.state
    keys_dir = state / "keys"
    usage = index_usage(state)
    start = checker.case(
        "getMasterKeys without --dev -> 200, the development run's rotation finished, its retired versions not loaded",
        KEYS_GET, send("GET", "/v1/admin/keys"), 200,
        extra=keys_is(lambda b: (b.get("rotation") or {}).get("state") == "finished" and usage_agrees(b, usage)
                      and all(v["installed"] is (v["state"] != "retired") for v in b["versions"])
                      and {1, 2, 4} <= {v["version"] for v in b["versions"] if v["state"] == "retired"}))
    if start is None or start.status != 200:
        return
    before = start.json()
    active = before["activeVersion"]
    new = max(v["version"] for v in before["versions"]) + 1
    checker.case("rotateMasterKey without --dev, no newer key installed -> 409 no_newer_key, no key file written",
                 KEYS_ROTATE, send("POST", "/v1/admin/keys/rotate"), 409, "no_newer_key",
                 extra=lambda r: ["coffre-master-%d was written" % new] if (keys_dir / ("coffre-master-%d" % new)).exists()
                 else [])
    checker.case("getMasterKeys after the refused rotation -> 200, unchanged", KEYS_GET, send("GET", "/v1/admin/keys"), 200,
                 extra=keys_is(lambda b: b == before))
    install_master_key(keys_dir, new)
    checker.case("reloadMasterKeys without --dev, coffre-master-%d installed -> 200, available, wrapping nothing" % new,
                 KEYS_RELOAD, send("POST", "/v1/admin/keys/reload"), 200,
                 extra=keys_is(lambda b: b["activeVersion"] == active and version_of(b, new) is not None
                               and version_of(b, new)["state"] == "available" and version_of(b, new)["installed"] is True
                               and wraps(version_of(b, new)) == (0, 0, 0)))
    dossier_keys, archived, _ = usage.get(active, (0, 0, 0))
    rotation = checker.case(
        "rotateMasterKey without --dev, version %d installed -> 202, active at once, the rotation running" % new, KEYS_ROTATE,
        send("POST", "/v1/admin/keys/rotate"), 202,
        extra=keys_is(lambda b: b["activeVersion"] == new and wraps(version_of(b, new)) == (0, 0, VAULT_KEYS)
                      and version_of(b, active)["state"] == "available"
                      and wraps(version_of(b, active)) == (dossier_keys, archived, 0)
                      and b["rotation"]["targetVersion"] == new and b["rotation"]["state"] == "running"
                      and b["rotation"]["done"] == 0 and b["rotation"]["total"] == dossier_keys + archived >= 5
                      and "finishedAt" not in b["rotation"] and near_now(b["rotation"]["startedAt"], 120)))
    started = rotation.json()["rotation"]["startedAt"] if rotation is not None and rotation.status == 202 else None
    checker.case("rotateMasterKey without --dev while the rotation runs -> 202, the same rotation, no key written",
                 KEYS_ROTATE, send("POST", "/v1/admin/keys/rotate"), 202,
                 extra=keys_is(lambda b: b["activeVersion"] == new and b["rotation"]["targetVersion"] == new
                               and b["rotation"]["startedAt"] == started and b["rotation"]["total"] == dossier_keys + archived
                               and not (keys_dir / ("coffre-master-%d" % (new + 1))).exists()))
    checker.case("retireMasterKey without --dev of the version the rotation moves away from -> 409 key_in_use",
                 KEYS_RETIRE, send("POST", RETIRE % active), 409, "key_in_use")
    checker.case("getMasterKeys without --dev once the rotation finished -> 200, version %d wraps every key" % new, KEYS_GET,
                 lambda: wait_for_rotation(sock), 200,
                 extra=keys_is(lambda b: finished_rotation(new)(b) and b["rotation"]["startedAt"] == started
                               and wraps(version_of(b, new)) == (dossier_keys, archived, VAULT_KEYS)))
    checker.case("rotateMasterKey without --dev after a completed rotation -> 409 no_newer_key", KEYS_ROTATE,
                 send("POST", "/v1/admin/keys/rotate"), 409, "no_newer_key")
    checker.case("retireMasterKey without --dev of the version rotated away from -> 200, retired", KEYS_RETIRE,
                 send("POST", RETIRE % active), 200,
                 extra=keys_is(lambda b: version_of(b, active)["state"] == "retired" and "retiredAt" in version_of(b, active)))
    checker.case("rekeyDossier without --dev -> 200", REKEY_POST,
                 send_json(REKEY_POST, "/v1/admin/patients/%s/rekey" % INS_LOCKED, {}, {"reencrypt": True}), 200,
                 extra=json_is(lambda b: b["keyGeneration"] == 2))
    checker.case("verifyTrace streamed without --dev after the rotation and the rekey -> 200, the report ok", VERIFY_POST,
                 send("POST", "/v1/admin/verify", headers=NDJSON), 200,
                 extra=verify_stream(lambda r: r["ok"] is True and r["problems"] == []))


def new_vault_never_rotated(d: Daemon):
    """A new vault without --dev: version 1 wraps the vault's keys and nothing newer is installed,
    so there is nothing to rotate to."""
    checker, send, sock = d.checker, d.send, d.sock
    checker.case("getMasterKeys of a new vault without --dev -> 200, version 1 wraps the vault's keys, never rotated",
                 KEYS_GET, send("GET", "/v1/admin/keys"), 200,
                 extra=keys_is(lambda b: b["activeVersion"] == 1 and len(b["versions"]) == 1 and "rotation" not in b
                               and wraps(b["versions"][0]) == (0, 0, VAULT_KEYS)))
    checker.case("rotateMasterKey of a vault never rotated, without --dev, no newer key -> 409 no_newer_key", KEYS_ROTATE,
                 send("POST", "/v1/admin/keys/rotate"), 409, "no_newer_key")
    wait_for_rotation(sock)
    checker.case("rotateMasterKey of the new vault again -> 409 no_newer_key", KEYS_ROTATE,
                 send("POST", "/v1/admin/keys/rotate"), 409, "no_newer_key")


def new_vault_rekeys_at_once(d: Daemon):
    """Two re-encrypting rekeys at once: the second to commit is refused and changes nothing, so
    every document still reads back, whichever won."""
    checker, send, sock, issuer = d.checker, d.send, d.sock, d.issuer
    p1 = issuer.auth(INS1)
    documents = "/v1/patients/%s/documents" % INS1
    created = request(sock, "POST", "/v1/patients/%s/dossier" % INS1, headers=p1)
    stored = [request(sock, "POST", documents, headers={**p1, "Coffre-Class": "BIOLOGIE"}, body=os.urandom(MAX_DOCUMENT_BYTES))
              for _ in range(4)]
    if created.status != 201 or any(r.status != 201 for r in stored):
        checker.record("new vault: a dossier and documents to rekey", ["%d, %s" % (created.status, [r.status for r in stored])])
        return
    pair, _ = two_at_once(sock, "/v1/admin/patients/%s/rekey" % INS1, b'{"reencrypt": true}', 10)
    if not pair:
        checker.skip("rekeyDossier with reencrypt, two at once -> 200 and 409 document_conflict", "they never overlapped")
        return
    checker.case("rekeyDossier with reencrypt, two at once: one -> 200, every blob re-encrypted", REKEY_POST,
                 lambda: pair[0], 200, extra=json_is(lambda b: b["blobsReencrypted"] == 4))
    checker.case("rekeyDossier with reencrypt, two at once: the other -> 409 document_conflict", REKEY_POST,
                 lambda: pair[1], 409, "document_conflict")

    def same_contents(reply):
        problems = []
        for d in reply.json()["documents"]:
            got = request(sock, "GET", documents + "/%s/content" % d["id"], headers=p1)
            if got.status != 200 or hashlib.sha256(got.body).hexdigest() != d["sha256"]:
                problems.append("document %s: %d %s" % (d["id"], got.status, got.code or "%d bytes" % len(got.body)))
        if problems:  # what the operator's check says of it
            report = request(sock, "POST", "/v1/admin/verify")
            problems.append("verifyTrace: %s" % "; ".join(report.json()["problems"][:2] if report.status == 200 else
                                                         [str(report.status)]))
        return problems
    checker.case("listDocuments after two re-encrypting rekeys at once, every content read back -> 200, the same bytes",
                 ("GET", "/v1/patients/{ins}/documents"), send("GET", documents, headers=p1), 200, extra=same_contents)
