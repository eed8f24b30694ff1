#!/usr/bin/env python3
"""Attack table: hostile calls are refused with their stable code and traced, and the daemon
stays healthy.

Usage: drills/attacks.py BIN_DIR [--slow-connections N] [--slow-seconds S] [--idle-timeout S] [--fd-limit N]

Each row of the table is one attack against a real `coffred --dev`: assertions forged, tampered,
expired, from the future, too long-lived, from an unknown issuer, replayed (the same `jti` twice,
and across a restart); another patient's INS; an unauthorised and a blocked professional; path
traversal and odd bytes in identifiers; huge headers and tokens, broken HTTP framing; a body
shorter than its Content-Length. For each it checks the status and the problem's `code`, and
that a new trace entry records the refusal (in the dossier's trace for access decisions, read
back with `coffre trace`; in the dossier-less part of the trace for refusals before any access
decision, read from the index). Every other request carries an assertion of its own (a fresh
`jti`): the daemon accepts each assertion once.

The daemon runs with `--idle-timeout-seconds` set to --idle-timeout. Then slow clients: N
connections that send a request line and trickle one header line per second for --slow-seconds
(longer than the idle timeout); meanwhile a fresh client must still get answers fast, and the
daemon must close every slow connection itself (the client reads EOF or a reset), as it must an
idle one and one left idle after a request; its descriptors must come back down while the slow
clients still hold their ends. Then, with the daemon's descriptor limit lowered to --fd-limit,
more idle connections than it can hold: it must serve again, first while they are still held
(the idle timeout frees its descriptors), then once they go. After everything: `/v1/health`
answers, `coffre admin verify` is clean, and the descriptor count is back to where it started.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import sqlite3
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coffre_drill import (INDEX_CONNECTIONS_MAX, INS1, INS2, RPPS, Daemon, Figures, Vault, temporary_directory, winding_down,
                          with_luhn)

STRANGER = with_luhn("1000000005")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def last_seq(state: Path) -> int:
    db = sqlite3.connect("file:%s?mode=ro" % (state / "index.sqlite"), uri=True, timeout=30)
    try:
        return db.execute("SELECT COALESCE(MAX(seq), 0) FROM trace_entry").fetchone()[0]
    finally:
        db.close()


def trace_since(state: Path, seq: int) -> list[tuple]:
    db = sqlite3.connect("file:%s?mode=ro" % (state / "index.sqlite"), uri=True, timeout=30)
    try:
        return db.execute("SELECT seq, dossier_id, action, outcome, detail FROM trace_entry WHERE seq > ? ORDER BY seq",
                          (seq,)).fetchall()
    finally:
        db.close()


def raw_exchange(sock_path: str, data: bytes, timeout: float = 10.0) -> bytes:
    """Sends raw bytes, half-closes, returns whatever comes back before the server closes. The
    server may answer and close before it has read everything (a header block over its limit):
    the send then fails, and what it answered is read all the same."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock_path)
    received = b""
    try:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            received += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    finally:
        s.close()
    return received


def status_and_code(raw: bytes) -> tuple[int | None, str | None, str | None]:
    """The first answer's status, problem code and media type."""
    if not raw.startswith(b"HTTP/1.1 "):
        return None, None, None
    status = int(raw[9:12])
    head, _, body = raw.partition(b"\r\n\r\n")
    fields = {line.split(b":", 1)[0].strip().lower(): line.split(b":", 1)[1].strip()
              for line in head.split(b"\r\n")[1:] if b":" in line}
    media_type = fields.get(b"content-type", b"").split(b";")[0].decode(errors="replace") or None
    length = int(fields.get(b"content-length", len(body)))
    body = body[:length]  # the first answer only (a second may follow when the connection is cut)
    try:
        return status, json.loads(body).get("code"), media_type
    except (ValueError, AttributeError):
        return status, None, media_type


def traced_refusal(state: Path, seq: int, code: str | None = None, wait: float = 30.0) -> bool:
    """Whether a dossier-less `refused` entry (naming `code`, if given) was traced after `seq`.
    Refusals before any decision are counted and written once a second, one entry per kind with
    its count: wait for it (about a second; the bound is for a loaded machine, and is spent only
    when the entry never comes)."""
    deadline = time.monotonic() + wait
    while True:
        if any(r[1] is None and r[3] == "refused" and (code is None or code in (r[4] or "")) for r in trace_since(state, seq)):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


class Table:
    def __init__(self, figures: Figures):
        self.figures = figures
        self.rows: list[tuple[str, str, str, str]] = []

    def row(self, attack: str, expected: str, got: str, verdict: str):
        self.rows.append((attack, expected, got, verdict))
        if verdict.startswith("refused"):
            self.figures.add("attacks refused")
        elif verdict.startswith("KNOWN LIMIT"):
            self.figures.add("attacks accepted (known limit)")
        else:
            self.figures.fail("%s: expected %s, got %s (%s)" % (attack, expected, got, verdict))

    def print(self):
        widths = [max(len(r[i]) for r in self.rows + [("attack", "expected", "got", "verdict")]) for i in range(4)]
        line = "  " + " | ".join("%-*s" % (widths[i], h) for i, h in enumerate(("attack", "expected", "got", "verdict")))
        print(line)
        print("  " + "-+-".join("-" * w for w in widths))
        for r in self.rows:
            print("  " + " | ".join("%-*s" % (widths[i], r[i]) for i in range(4)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bin_dir", type=Path)
    parser.add_argument("--slow-connections", type=int, default=64)
    parser.add_argument("--slow-seconds", type=int, default=5, help="how long slow clients trickle (longer than --idle-timeout)")
    parser.add_argument("--idle-timeout", type=int, default=2, help="the daemon's --idle-timeout-seconds")
    parser.add_argument("--fd-limit", type=int, default=256)
    args = parser.parse_args()
    figures = Figures("attacks")
    figures["daemon idle timeout (s)"] = args.idle_timeout
    table = Table(figures)
    tmp = temporary_directory("coffre-attack-")
    options = ("--idle-timeout-seconds", str(args.idle_timeout))
    daemon = Daemon(args.bin_dir.resolve(), tmp / "state", args=options)
    with winding_down(figures, tmp, daemon) as daemons:
        daemon.start()
        replayed_later = attack_table(daemon, table, figures)
        slow_clients(daemon, table, figures, args.slow_connections, args.slow_seconds, args.idle_timeout)
        daemon.stop()
        # The same daemon state, under a low descriptor limit: more connections than it can hold.
        limited = Daemon(args.bin_dir.resolve(), tmp / "state", args=options,
                         prefix=("prlimit", "--nofile=%d" % args.fd_limit, "--"))
        daemons.append(limited)
        limited.start()
        replay_across_restart(limited, table, replayed_later)
        fd_exhaustion(limited, table, figures, args.fd_limit, args.idle_timeout)
        report = limited.verify()
        if not report.get("ok"):
            figures.fail("coffre admin verify after the attacks: %s" % report.get("problems"))
        figures["verify after: trace entries checked"] = report.get("traceEntriesChecked")
        limited.stop()
        print("attack table:")
        table.print()
    return figures.report()


def attack_table(daemon: Daemon, table: Table, figures: Figures):
    vault = Vault(daemon)
    issuer = vault.issuer
    state = daemon.state
    for ins in (INS1, INS2):
        assert vault.create_dossier(ins).status == 201
    stored = vault.store(INS1, b"compte rendu", title="cible")
    assert stored.status == 201, stored.body
    doc_id = stored.json()["id"]
    docs = "/v1/patients/%s/documents" % INS1
    content = "%s/%s/content" % (docs, doc_id)
    # Patient 1 authorises, then blocks, RPPS; STRANGER is never authorised.
    assert vault.send("PUT", "/v1/patients/%s/access/authorized/%s" % (INS1, RPPS), headers=vault.auth(INS1)).status == 200
    assert vault.send("PUT", "/v1/patients/%s/access/blocked/%s" % (INS1, RPPS), headers=vault.auth(INS1)).status == 200
    fds_before = daemon.fd_count()
    figures["daemon descriptors before"] = fds_before

    def signed(claims: dict, key=None) -> dict:
        return {"Authorization": "Coffre-Assertion " + issuer.sign_claims(claims, key)}

    def check(attack: str, method: str, path: str, headers: dict, want_status: int, want_code: str, traced: str,
              body: bytes | None = None):
        """traced: 'dossier' (an access decision in the dossier's trace), 'anonymous' (a refusal
        before any decision, without a dossier), or 'none'."""
        before = last_seq(state)
        reply = vault.send(method, path, headers=headers, body=body)
        got = "%d %s" % (reply.status, reply.code)
        expected = "%d %s" % (want_status, want_code)
        if (reply.status, reply.code) != (want_status, want_code):
            table.row(attack, expected, got, "NOT REFUSED AS EXPECTED")
            return
        rows = trace_since(state, before)
        if traced == "dossier":
            ok = any(r[1] is not None and r[3] == "denied" for r in rows)
        elif traced == "anonymous":
            ok = traced_refusal(state, before, want_code)
        else:
            ok = True
        table.row(attack, expected, got, ("refused, traced" if traced != "none" else "refused") if ok
                  else "refused but NOT TRACED (%s)" % rows)

    now = int(time.time())
    other_key = Ed25519PrivateKey.generate()
    check("forged signature (another key, iss=dev)", "GET", docs, signed(issuer.claims(INS1), other_key), 401,
          "assertion_bad_signature", "anonymous")
    token = issuer.token(INS2)
    version, payload, signature = token.split(".")
    swapped = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    swapped["sub"] = INS1
    tampered = "v1.%s.%s" % (b64url(json.dumps(swapped, sort_keys=True, separators=(",", ":")).encode()), signature)
    check("claims changed after signing (sub)", "GET", docs, {"Authorization": "Coffre-Assertion " + tampered}, 401,
          "assertion_bad_signature", "anonymous")
    check("expired assertion", "GET", docs, signed(issuer.claims(INS1, iat=now - 3600, lifetime=600)), 401,
          "assertion_expired", "anonymous")
    check("assertion from the future (iat + 10 min)", "GET", docs, signed(issuer.claims(INS1, iat=now + 600)), 401,
          "assertion_expired", "anonymous")
    check("lifetime over 60 minutes", "GET", docs, signed(issuer.claims(INS1, lifetime=7200)), 401,
          "assertion_malformed", "anonymous")
    check("wrong issuer (unknown iss)", "GET", docs, signed(issuer.claims(INS1) | {"iss": "evil"}, other_key), 401,
          "assertion_unknown_issuer", "anonymous")
    check("issuer path traversal (iss=../dev)", "GET", docs, signed(issuer.claims(INS1) | {"iss": "../trust/dev"}), 401,
          "assertion_unknown_issuer", "anonymous")
    check("no assertion", "GET", docs, {}, 401, "assertion_missing", "anonymous")
    check("unsigned token (empty signature)", "GET", docs,
          {"Authorization": "Coffre-Assertion v1.%s." % b64url(json.dumps(issuer.claims(INS1)).encode())}, 401,
          "assertion_bad_signature", "anonymous")
    check("token over 4096 bytes", "GET", docs, signed(issuer.claims(INS1) | {"software": "x" * 5000}), 401,
          "assertion_malformed", "anonymous")
    check("bris_de_glace without a reason", "GET", docs,
          signed(issuer.claims(STRANGER, role="professional", profession="10", mode="bris_de_glace")), 401,
          "assertion_malformed", "anonymous")
    check("another patient's INS (list)", "GET", docs, vault.auth(INS2), 403, "access_denied", "dossier")
    check("another patient's INS (content)", "GET", content, vault.auth(INS2), 403, "access_denied", "dossier")
    check("another patient's INS (store)", "POST", docs, vault.auth(INS2) | {"Coffre-Class": "BIOLOGIE"}, 403,
          "access_denied", "dossier", body=b"intrus")
    check("unauthorised professional", "GET", docs, vault.auth(STRANGER, role="professional", profession="10"), 403,
          "access_denied", "dossier")
    check("blocked professional", "GET", content, vault.auth(RPPS, role="professional", profession="10"), 403,
          "access_denied", "dossier")
    check("blocked professional in bris_de_glace", "GET", content,
          vault.auth(RPPS, role="professional", profession="10", mode="bris_de_glace", reason="urgence"), 403,
          "access_denied", "dossier")
    # The patient reads their own trace with the real client: the refusals above are there.
    result = daemon.client("--as", "patient:" + INS1, "--json", "trace")
    try:  # one JSON object a line
        entries = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        denied = [e for e in entries if e.get("outcome") == "denied"]
    except ValueError:
        denied = []
    actors = {e.get("actor", {}).get("id") for e in denied}
    if result.returncode == 0 and len(denied) >= 6 and {INS2, STRANGER, RPPS} <= actors:
        table.row("the patient reads those denials (coffre trace)", "6 denied, with the actors", "%d denied" % len(denied),
                  "refused, traced")
    else:
        table.row("the patient reads those denials (coffre trace)", "6 denied, with the actors",
                  "exit %d, %d denied, actors %s" % (result.returncode, len(denied), sorted(a for a in actors if a)), "NOT TRACED")
    # Identifiers: path traversal and odd bytes (each request with an assertion of its own).
    for label, raw_id in [("../../etc/passwd", "..%2F..%2F..%2Fetc%2Fpasswd"), ("../ in the path", "../../../../etc/passwd"),
                          ("upper-case id", doc_id.upper()), ("33 hex digits", doc_id + "0"),
                          ("NUL byte", doc_id[:31] + "%00"), ("dot-dot id", ".." + doc_id[2:])]:
        before = last_seq(state)
        reply = vault.send("GET", "%s/%s/content" % (docs, raw_id), headers=vault.auth(INS1))
        ok = (reply.status, reply.code) in ((400, "invalid_identifier"), (404, "route_not_found"))
        traced = traced_refusal(state, before)
        table.row("document id: " + label, "400 invalid_identifier or 404 route_not_found",
                  "%d %s" % (reply.status, reply.code),
                  ("refused, traced" if traced else "refused but NOT TRACED") if ok else "NOT REFUSED AS EXPECTED")
    check("INS path traversal", "GET", "/v1/patients/..%2F..%2Fetc/documents", vault.auth(INS1), 400, "invalid_ins", "anonymous")
    check("INS with a wrong key", "GET", "/v1/patients/%s/documents" % (INS1[:-2] + "00"), vault.auth(INS1), 400, "invalid_ins",
          "anonymous")
    # Replay: the same assertion twice. Each is single-use: the second is refused and traced.
    token = issuer.token(INS1)
    first = vault.send("GET", docs, headers={"Authorization": "Coffre-Assertion " + token})
    before = last_seq(state)
    second = vault.send("GET", docs, headers={"Authorization": "Coffre-Assertion " + token}, replay=True)
    figures["replayed assertion: first use, second use"] = "%d, %d %s" % (first.status, second.status, second.code)
    got = "%d then %d %s" % (first.status, second.status, second.code)
    if first.status != 200 or (second.status, second.code) != (401, "assertion_replayed"):
        table.row("replayed assertion (same jti twice)", "200 then 401 assertion_replayed", got, "NOT REFUSED AS EXPECTED")
    else:
        table.row("replayed assertion (same jti twice)", "200 then 401 assertion_replayed", got,
                  "refused, traced" if traced_refusal(state, before, "assertion_replayed") else "refused but NOT TRACED")
    # One used now and kept for after the restart (replay_across_restart).
    replayed_later = issuer.token(INS1)
    used = vault.send("GET", docs, headers={"Authorization": "Coffre-Assertion " + replayed_later})
    if used.status != 200:
        figures.fail("an assertion's first use answered %d %s" % (used.status, used.code))
    # Huge headers and broken framing, on raw sockets. A header block over 32 KiB is answered
    # 431 headers_too_large, any other framing error 400 malformed_request: a problem document,
    # traced as a refusal before any access decision.
    def titled(size: int) -> bytes:
        fields = vault.auth(INS1) | {"Coffre-Class": "BIOLOGIE", "Coffre-Title": "t" * size, "Content-Length": "1"}
        return ("POST %s HTTP/1.1\r\nHost: x\r\n%s\r\n\r\nx" % (docs, "".join("%s: %s\r\n" % kv for kv in fields.items()))).encode()

    huge_value = b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"
    many = b"GET /v1/health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(20000)) + b"\r\n"
    for label, data, want_status, want_code in [
            ("one 1 MiB header", huge_value, 431, "headers_too_large"),
            ("20,000 headers", many, 431, "headers_too_large"),
            ("60 KB title header", titled(60_000), 431, "headers_too_large"),
            ("100 KB header block", titled(100_000), 431, "headers_too_large"),
            ("garbage request line", b"\x16\x03\x01 HELLO\r\n\r\n", 400, "malformed_request"),
            ("header line without a colon", b"GET /v1/health HTTP/1.1\r\nHost x\r\n\r\n", 400, "malformed_request"),
            ("Content-Length not a number", b"POST /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", 400,
             "malformed_request")]:
        before = last_seq(state)
        status, code, media_type = status_and_code(raw_exchange(daemon.socket, data))
        expected = "%d %s (problem+json)" % (want_status, want_code)
        got = "%s %s %s" % (status or "closed", code or "(no code)", media_type or "")
        if (status, code, media_type) != (want_status, want_code, "application/problem+json"):
            table.row(label, expected, got.strip(), "NOT REFUSED AS EXPECTED")
        else:
            table.row(label, expected, "%d %s" % (status, code),
                      "refused, traced" if traced_refusal(state, before, want_code) else "refused but NOT TRACED")
    # A title over its 512 bytes, in a header block under the limit: the route's own refusal.
    check("20 KB title header (block under 32 KiB)", "POST", docs,
          vault.auth(INS1) | {"Coffre-Class": "BIOLOGIE", "Coffre-Title": "t" * 20_000}, 400, "invalid_metadata", "anonymous",
          body=b"x")
    declared = vault.auth(INS1) | {"Coffre-Class": "BIOLOGIE", "Content-Length": str(10 ** 13)}
    raw = raw_exchange(daemon.socket, ("POST %s HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n" % (
        docs, "\r\n".join("%s: %s" % kv for kv in declared.items()))).encode())
    status, code, _ = status_and_code(raw)
    table.row("declared body of 10 TB (Content-Length)", "413 payload_too_large", "%s %s" % (status, code),
              "refused" if (status, code) == (413, "payload_too_large") else "NOT REFUSED AS EXPECTED")
    head = ("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nCoffre-Class: BIOLOGIE\r\nContent-Length: 100000\r\n\r\n"
            % (docs, vault.auth(INS1)["Authorization"])).encode()
    raw = raw_exchange(daemon.socket, head + b"short")
    status, code, _ = status_and_code(raw)
    ok = (status, code) in ((400, "upload_incomplete"), (None, None))
    table.row("body shorter than Content-Length", "400 upload_incomplete or closed", "%s %s" % (status or "closed", code or ""),
              "refused" if ok else "NOT REFUSED AS EXPECTED")
    # The daemon removes the temporary file once it sees the cut: give it up to 10 s.
    deadline = time.monotonic() + 10
    while (left := os.listdir(state / "blobs" / "tmp")) and time.monotonic() < deadline:
        time.sleep(0.05)
    if left:
        figures.fail("temporary blobs left 10 s after the cut upload: %s" % left)
    # Operator routes from a non-operator uid: the kernel's SO_PEERCRED says who calls.
    shared = Path(daemon.socket)
    os.chmod(state.parent, 0o711)
    os.chmod(state, 0o711)
    os.chmod(shared, 0o777)
    probe = ("import json, socket; s = socket.socket(socket.AF_UNIX); s.connect(%r);"
             "s.sendall(b'POST /v1/admin/verify HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n');"
             "d = b''.join(iter(lambda: s.recv(65536), b''));"
             "print(d[9:12].decode(), json.loads(d.split(b'\\r\\n\\r\\n', 1)[1])['code'])" % str(shared))
    before = last_seq(state)
    got = subprocess_run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", probe])
    if got == "403 not_operator" and not traced_refusal(state, before, "not_operator"):
        got += " (not traced)"
    table.row("admin verify as uid 65534 (nobody)", "403 not_operator", got,
              "refused" if got == "403 not_operator" else "NOT REFUSED AS EXPECTED")
    os.chmod(state, 0o700)
    os.chmod(state.parent, 0o700)
    os.chmod(shared, 0o600)
    health = vault.health().status
    figures["health after the table"] = health
    if health != 200:
        figures.fail("health after the attack table: %d" % health)
    time.sleep(1)
    figures["daemon descriptors after the table"] = daemon.fd_count()
    return replayed_later


def replay_across_restart(daemon: Daemon, table: Table, token: str):
    """An assertion used once before a restart is refused after it: the daemon does not know
    what it accepted before, so it refuses assertions issued before it started."""
    vault = Vault(daemon)
    before = last_seq(daemon.state)
    reply = vault.send("GET", "/v1/patients/%s/documents" % INS1, headers={"Authorization": "Coffre-Assertion " + token},
                       replay=True)
    got = "%d %s" % (reply.status, reply.code)
    if (reply.status, reply.code) != (401, "assertion_replayed"):
        table.row("assertion used before a restart, replayed after it", "401 assertion_replayed", got, "NOT REFUSED AS EXPECTED")
    else:
        table.row("assertion used before a restart, replayed after it", "401 assertion_replayed", got,
                  "refused, traced" if traced_refusal(daemon.state, before, "assertion_replayed") else "refused but NOT TRACED")


def subprocess_run(argv: list[str]) -> str:
    import subprocess
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return (result.stdout + result.stderr).strip()


class Watched:
    """One connection the slow-client part holds, and how the daemon ended it."""

    def __init__(self, kind: str, sock: socket.socket):
        self.kind = kind  # "slow" (trickles a header line a second), "idle", "idle after a request"
        self.sock = sock
        self.opened = time.monotonic()
        self.closed_after: float | None = None
        self.how = ""
        self.answer = b""

    def closed(self, how: str):
        if self.closed_after is None:
            self.closed_after = time.monotonic() - self.opened
            self.how = how


def slow_clients(daemon: Daemon, table: Table, figures: Figures, count: int, seconds: int, idle_timeout: int):
    """Slowloris: `count` connections trickle a header line a second for `seconds`, longer than
    the daemon's idle timeout, beside one connection that sends nothing and one left idle after a
    request. The daemon must close every one itself within about its idle timeout, keep serving
    others meanwhile, and give its descriptors back while the clients still hold their ends."""
    vault = Vault(daemon)
    fds_before = daemon.fd_targets()
    seq_before = last_seq(daemon.state)
    watched = []
    for _ in range(count):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(daemon.socket)
        s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
        watched.append(Watched("slow", s))
    idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    idle.connect(daemon.socket)
    watched.append(Watched("idle", idle))
    kept = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    kept.connect(daemon.socket)
    kept.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
    kept.settimeout(10)
    head = kept.recv(65536)
    if not head.startswith(b"HTTP/1.1 200"):
        figures.fail("health on a kept-alive connection answered %r" % head[:40])
    watched.append(Watched("idle after a request", kept))
    figures["daemon descriptors with slow clients (at the start)"] = daemon.fd_count()
    latencies = []
    began = time.monotonic()
    second = 0
    while time.monotonic() - began < seconds:
        if time.monotonic() - began >= second:
            for w in watched:
                if w.kind == "slow" and w.closed_after is None:
                    try:
                        w.sock.sendall(b"X-Slow-%d: y\r\n" % second)
                    except OSError as error:
                        w.closed(error.__class__.__name__)
            second += 1
            probe_began = time.monotonic()
            status = vault.health().status
            latencies.append(time.monotonic() - probe_began)
            if status != 200:
                figures.fail("health answered %d while slow clients held connections" % status)
            reply = vault.list(INS1)
            if reply.status != 200:
                figures.fail("list answered %d while slow clients held connections" % reply.status)
        read_what_came(watched, 0.2)
    read_what_came(watched, 0.5)
    # Every connection was closed by now (checked below): its descriptor must be back, the
    # index's connections apart (a reader GRDB opened under the probes' load stays open).
    held_grown, held_index = daemon.descriptors_grown(fds_before, settle=5.0)
    figures["daemon descriptors while the clients still hold their ends"] = daemon.fd_count()
    worst = max(latencies)
    figures["slow connections held"] = count
    figures["slow seconds"] = seconds
    figures["health latency under slowloris, worst (ms)"] = round(worst * 1000, 1)
    table.row("slowloris: %d connections x %d s" % (count, seconds), "others still served", "worst health %.0f ms" % (worst * 1000),
              "refused (others served)" if worst < 2.0 else "NOT SERVED IN TIME")
    for kind in ("slow", "idle", "idle after a request"):
        group = [w for w in watched if w.kind == kind]
        closed = [w for w in group if w.closed_after is not None]
        latest = max((w.closed_after for w in closed), default=0.0)
        hows = {}
        for w in closed:
            how = w.how + (" after an answer %s" % w.answer[9:12].decode(errors="replace") if w.answer else "")
            hows[how] = hows.get(how, 0) + 1
        label = {"slow": "slow connections", "idle": "idle connection"}.get(kind, "connection " + kind)
        figures["%s closed by the daemon" % label] = "%d of %d, the last after %.1f s (%s)" % (
            len(closed), len(group), latest, ", ".join("%s x%d" % kv for kv in sorted(hows.items())) or "-")
        ok = len(closed) == len(group) and latest <= idle_timeout + 3
        table.row("%s held past the %d s idle timeout" % (label, idle_timeout), "closed by the daemon",
                  "%d of %d closed, last after %.1f s" % (len(closed), len(group), latest),
                  "refused (closed)" if ok else "NOT CLOSED IN TIME")
    # A connection closed inside its request head made no request: nothing to trace (else any
    # local peer could add an entry per connection per timeout).
    refusals: dict[str, int] = {}
    for r in trace_since(daemon.state, seq_before):
        if r[1] is None and r[3] == "refused":
            refusals[r[4] or ""] = refusals.get(r[4] or "", 0) + 1
    figures["refusals traced while the daemon closed them"] = ", ".join("%s x%d" % kv for kv in refusals.items()) or "none"
    if refusals:
        figures.fail("closing slow connections added trace entries: %s" % refusals)
    if held_grown or held_index > INDEX_CONNECTIONS_MAX:
        figures.fail("descriptors beyond those open before the slow clients, once the daemon should have closed them all "
                     "(clients still holding their ends): %s, %d index connections" % (held_grown, held_index))
    for w in watched:
        w.sock.close()
    grown, index = daemon.descriptors_grown(fds_before)
    figures["daemon descriptors after slow clients left"] = daemon.fd_count()
    if grown or index > INDEX_CONNECTIONS_MAX:
        figures.fail("descriptors beyond those open before the slow clients, after they left: %s, %d index connections"
                     % (grown, index))


def read_what_came(watched: list[Watched], timeout: float):
    """Reads whatever the daemon sent on the watched connections still open (an answer, EOF, a
    reset), waiting up to `timeout`."""
    import select
    open_ones = {w.sock: w for w in watched if w.closed_after is None}
    if not open_ones:
        time.sleep(timeout)
        return
    readable, _, _ = select.select(list(open_ones), [], [], timeout)
    for sock in readable:
        w = open_ones[sock]
        try:
            chunk = sock.recv(65536, socket.MSG_DONTWAIT)
        except BlockingIOError:
            continue
        except OSError as error:
            w.closed(error.__class__.__name__)
            continue
        if chunk:
            w.answer += chunk
        else:
            w.closed("EOF")


def fd_exhaustion(daemon: Daemon, table: Table, figures: Figures, limit: int, idle_timeout: int):
    """More idle connections than the daemon's descriptor limit. With its idle timeout it must
    serve again while they are still held (it closes them itself), and again once they go."""
    conns = []
    refused = 0
    for _ in range(limit + 64):
        # A full listen queue refuses at once (EAGAIN): try again for a moment, so that the
        # daemon's accept loop, not this one, sets the pace.
        give_up = time.monotonic() + 2
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(2)
            try:
                s.connect(daemon.socket)
                conns.append(s)
                break
            except OSError:
                s.close()
                if time.monotonic() > give_up:
                    refused += 1
                    break
                time.sleep(0.01)
    held_since = time.monotonic()
    time.sleep(0.5)
    figures["fd limit: daemon descriptors at the peak"] = daemon.fd_count() if daemon.alive() else "dead"
    figures["fd limit: connections attempted / refused at connect"] = "%d / %d" % (limit + 64, refused)
    cpu_before = cpu_seconds(daemon.pid)
    # Every descriptor is taken: a new client waits in the listen queue until the idle timeout
    # frees some (the queued connections ahead of it are accepted first, and time out in turn).
    served_after = None
    deadline = held_since + 4 * idle_timeout + 20
    while time.monotonic() < deadline and daemon.alive():
        try:
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            probe.settimeout(max(1.0, deadline - time.monotonic()))
            probe.connect(daemon.socket)
            probe.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = probe.recv(64)
            probe.close()
        except OSError:
            answer = b""
        if answer.startswith(b"HTTP/1.1 200"):
            served_after = time.monotonic() - held_since
            break
        time.sleep(0.5)
    figures["fd limit: daemon CPU seconds while held"] = round(cpu_seconds(daemon.pid) - cpu_before, 2) if daemon.alive() else "dead"
    figures["fd limit: health while every client still holds its connection"] = (
        "200 after %.1f s" % served_after if served_after is not None else "no answer")
    alive_during = daemon.alive()
    for s in conns:
        s.close()
    time.sleep(1)
    vault = Vault(daemon)
    try:
        status = vault.health().status if daemon.alive() else None
    except OSError as error:
        status = repr(error)
    figures["fd limit: health after they left"] = status
    ok = alive_during and served_after is not None and status == 200
    table.row("%d idle connections, descriptor limit %d" % (limit + 64, limit), "serves again while they are held, and after",
              "health 200 after %s s held, %s after" % ("%.1f" % served_after if served_after is not None else "never", status),
              "refused (serves again)" if ok else "DAEMON DID NOT RECOVER")
    if daemon.alive() and status == 200:
        stored = vault.store(INS1, b"after the flood")
        if stored.status != 201:
            figures.fail("store after the descriptor flood answered %d %s" % (stored.status, stored.body[:200]))


def cpu_seconds(pid: int) -> float:
    fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    raise SystemExit(main())
