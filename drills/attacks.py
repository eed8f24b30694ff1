#!/usr/bin/env python3
"""Attack table: hostile calls are refused with their stable code and traced, and the daemon
stays healthy.

Usage: drills/attacks.py BIN_DIR [--slow-connections N] [--slow-seconds S] [--fd-limit N]

Each row of the table is one attack against a real `coffred --dev`: assertions forged, tampered,
expired, from the future, too long-lived, from an unknown issuer, replayed; another patient's
INS; an unauthorised and a blocked professional; path traversal and odd bytes in identifiers;
huge headers and tokens; a body shorter than its Content-Length. For each it checks the status
and the problem's `code`, and that a new trace entry records the refusal (in the dossier's trace
for access decisions, read back with `coffre trace`; in the dossier-less part of the trace for
refusals before any access decision, read from the index). Every other request carries an
assertion of its own (a fresh `jti`): the daemon accepts each assertion once.

Then slow clients: N connections that send a request line and trickle one header line per
second; meanwhile a fresh client must still get answers fast. Then, with the daemon's descriptor
limit lowered to --fd-limit, more idle connections than it can hold: it must keep serving once
they go. After everything: `/v1/health` answers, `coffre admin verify` is clean, and the
descriptor count is back to where it started.
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

from coffre_drill import (INS1, INS2, RPPS, Daemon, Figures, Vault, remove_tree, temporary_directory, with_luhn)

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
    """Sends raw bytes, half-closes, returns whatever comes back before the server closes."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock_path)
    received = b""
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            received += chunk
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        pass
    finally:
        s.close()
    return received


def status_and_code(raw: bytes) -> tuple[int | None, str | None]:
    if not raw.startswith(b"HTTP/1.1 "):
        return None, None
    status = int(raw[9:12])
    head, _, body = raw.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), len(body))
    body = body[:length]  # the first answer only (a second may follow when the connection is cut)
    try:
        return status, json.loads(body).get("code")
    except ValueError:
        return status, None


def traced_refusal(state: Path, seq: int, code: str, wait: float = 3.0) -> bool:
    """Whether a dossier-less `refused` entry naming `code` was traced after `seq`. Refusals of
    HTTP framing are traced just after the answer: wait for it a moment."""
    deadline = time.monotonic() + wait
    while True:
        if any(r[1] is None and r[3] == "refused" and code in (r[4] or "") for r in trace_since(state, seq)):
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
    parser.add_argument("--slow-seconds", type=int, default=5)
    parser.add_argument("--fd-limit", type=int, default=256)
    args = parser.parse_args()
    figures = Figures("attacks")
    table = Table(figures)
    tmp = temporary_directory("coffre-attack-")
    daemon = Daemon(args.bin_dir.resolve(), tmp / "state")
    try:
        daemon.start()
        attack_table(daemon, table, figures)
        slow_clients(daemon, table, figures, args.slow_connections, args.slow_seconds)
        daemon.stop()
        # The same daemon state, under a low descriptor limit: more connections than it can hold.
        limited = Daemon(args.bin_dir.resolve(), tmp / "state", prefix=("prlimit", "--nofile=%d" % args.fd_limit, "--"))
        limited.start()
        fd_exhaustion(limited, table, figures, args.fd_limit)
        report = limited.verify()
        if not report.get("ok"):
            figures.fail("coffre admin verify after the attacks: %s" % report.get("problems"))
        figures["verify after: trace entries checked"] = report.get("traceEntriesChecked")
        limited.stop()
        print("attack table:")
        table.print()
    finally:
        daemon.kill()
        if figures.ok():
            remove_tree(tmp)
        else:
            print("state kept for inspection in %s" % tmp)
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
            ok = any(r[1] is None and r[3] == "refused" and want_code in (r[4] or "") for r in rows)
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
        rows = trace_since(state, before)
        ok = (reply.status, reply.code) in ((400, "invalid_identifier"), (404, "route_not_found"))
        traced = any(r[3] == "refused" for r in rows)
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
    # Huge headers and a lying Content-Length, on raw sockets.
    huge_value = b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"
    many = b"GET /v1/health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(20000)) + b"\r\n"
    for label, data in [("one 1 MiB header", huge_value), ("20,000 headers", many)]:
        raw = raw_exchange(daemon.socket, data)
        status, code = status_and_code(raw)
        ok = status is None or 400 <= status < 500
        table.row(label, "4xx or connection closed", "%s %s" % (status or "closed", code or ""),
                  "refused (connection closed)" if status is None and ok else ("refused" if ok else "NOT REFUSED"))
    big_title = vault.auth(INS1) | {"Coffre-Class": "BIOLOGIE", "Coffre-Title": "t" * 60_000}
    check("60 KB title header", "POST", docs, big_title, 400, "invalid_metadata", "anonymous", body=b"x")
    # Past NIO's limit on the header block (80 KiB) the request never reaches Coffre's code: the
    # HTTP decoder answers a bare 400 and closes, without a problem document or a trace entry.
    huge = vault.auth(INS1) | {"Coffre-Class": "BIOLOGIE", "Coffre-Title": "t" * 100_000}
    reply = vault.send("POST", docs, headers=huge, body=b"x")
    figures["100 KB header block: answer"] = "%d %s" % (reply.status, reply.code or "(no problem document)")
    table.row("100 KB header block", "4xx", "%d %s" % (reply.status, reply.code or "(bare, no code)"),
              "refused (no stable code: NIO's header limit)" if 400 <= reply.status < 500 else "NOT REFUSED")
    declared = vault.auth(INS1) | {"Coffre-Class": "BIOLOGIE", "Content-Length": str(10 ** 13)}
    raw = raw_exchange(daemon.socket, ("POST %s HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n" % (
        docs, "\r\n".join("%s: %s" % kv for kv in declared.items()))).encode())
    status, code = status_and_code(raw)
    table.row("declared body of 10 TB (Content-Length)", "413 payload_too_large", "%s %s" % (status, code),
              "refused" if (status, code) == (413, "payload_too_large") else "NOT REFUSED AS EXPECTED")
    head = ("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nCoffre-Class: BIOLOGIE\r\nContent-Length: 100000\r\n\r\n"
            % (docs, vault.auth(INS1)["Authorization"])).encode()
    raw = raw_exchange(daemon.socket, head + b"short")
    status, code = status_and_code(raw)
    ok = (status, code) in ((400, "upload_incomplete"), (None, None))
    table.row("body shorter than Content-Length", "400 upload_incomplete or closed", "%s %s" % (status or "closed", code or ""),
              "refused" if ok else "NOT REFUSED AS EXPECTED")
    time.sleep(0.5)
    left = os.listdir(state / "blobs" / "tmp")
    if left:
        figures.fail("temporary blobs left after the cut upload: %s" % left)
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
    if got == "403 not_operator" and not any(r[3] == "refused" for r in trace_since(state, before)):
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


def subprocess_run(argv: list[str]) -> str:
    import subprocess
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return (result.stdout + result.stderr).strip()


def slow_clients(daemon: Daemon, table: Table, figures: Figures, count: int, seconds: int):
    """Slowloris: `count` connections trickle a header line a second for `seconds`."""
    vault = Vault(daemon)
    fds_before = daemon.fd_count()
    conns = []
    for _ in range(count):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(daemon.socket)
        s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
        conns.append(s)
    latencies = []
    closed_by_server = 0
    for second in range(seconds):
        for s in conns:
            try:
                s.sendall(b"X-Slow-%d: y\r\n" % second)
            except OSError:
                closed_by_server += 1
        began = time.monotonic()
        status = vault.health().status
        latencies.append(time.monotonic() - began)
        if status != 200:
            figures.fail("health answered %d while slow clients held connections" % status)
        reply = vault.list(INS1)
        if reply.status != 200:
            figures.fail("list answered %d while slow clients held connections" % reply.status)
        time.sleep(1)
    worst = max(latencies)
    figures["slow connections held"] = count
    figures["slow seconds"] = seconds
    figures["daemon descriptors with slow clients"] = daemon.fd_count()
    figures["health latency under slowloris, worst (ms)"] = round(worst * 1000, 1)
    figures["slow sends refused by the server"] = closed_by_server
    table.row("slowloris: %d connections x %d s" % (count, seconds), "others still served", "worst health %.0f ms" % (worst * 1000),
              "refused (others served)" if worst < 2.0 else "NOT SERVED IN TIME")
    # An idle connection that never sends anything: does the daemon ever close it?
    idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    idle.connect(daemon.socket)
    idle.settimeout(3)
    try:
        closed = idle.recv(1) == b""
    except socket.timeout:
        closed = False
    figures["idle connection closed by the daemon within 3 s"] = closed
    idle.close()
    for s in conns:
        s.close()
    time.sleep(1)
    after = daemon.fd_count()
    figures["daemon descriptors after slow clients left"] = after
    if after > fds_before + 2:
        figures.fail("descriptors %d before the slow clients, %d after they left" % (fds_before, after))


def fd_exhaustion(daemon: Daemon, table: Table, figures: Figures, limit: int):
    """More idle connections than the daemon's descriptor limit, then all closed: it serves again."""
    conns = []
    refused = 0
    for _ in range(limit + 64):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect(daemon.socket)
            conns.append(s)
        except OSError:
            refused += 1
            s.close()
    time.sleep(1)
    figures["fd limit: daemon descriptors at the peak"] = daemon.fd_count() if daemon.alive() else "dead"
    alive_during = daemon.alive()
    # While every descriptor is taken, can anyone else get an answer? (There is no idle timeout,
    # so held connections stay until their clients go.) And does the accept loop spin?
    cpu_before = cpu_seconds(daemon.pid)
    try:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(3)
        probe.connect(daemon.socket)
        probe.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = probe.recv(64)
        probe.close()
        during = answer[:12].decode(errors="replace") if answer else "closed"
    except OSError as error:
        during = "no answer (%s)" % error.__class__.__name__
    time.sleep(2)
    figures["fd limit: health while every descriptor is held"] = during
    figures["fd limit: daemon CPU seconds over ~5 s held"] = round(cpu_seconds(daemon.pid) - cpu_before, 2)
    for s in conns:
        s.close()
    time.sleep(2)
    vault = Vault(daemon)
    try:
        status = vault.health().status if daemon.alive() else None
    except OSError as error:
        status = repr(error)
    figures["fd limit: connections attempted"] = limit + 64
    figures["fd limit: health after they left"] = status
    ok = alive_during and status == 200
    table.row("%d idle connections, descriptor limit %d" % (limit + 64, limit), "serves again after", "alive, health %s" % status,
              "refused (serves again)" if ok else "DAEMON DID NOT RECOVER")
    if ok:
        stored = vault.store(INS1, b"after the flood")
        if stored.status != 201:
            figures.fail("store after the descriptor flood answered %d %s" % (stored.status, stored.body[:200]))


def cpu_seconds(pid: int) -> float:
    fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    raise SystemExit(main())
