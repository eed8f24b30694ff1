#!/usr/bin/env python3
"""Checks docs/openapi.yaml against a running coffred.

Usage: scripts/openapi_check.py BIN_DIR [--spec docs/openapi.yaml] [--verbose]

Starts `BIN_DIR/coffred --dev --state-dir TMP --max-document-bytes 100000` (rotating master keys
one dossier key per batch, resting 200 ms between two, so that a rotation can be seen running),
waits for its socket, then exercises every operation of the spec over the Unix socket, error cases
included, and checks each response against the spec: the status is documented for the operation,
the Content-Type is one of the documented media types, documented required headers are present
and valid, and JSON bodies validate (Draft 2020-12, $refs resolved) against the documented schema;
a newline-delimited JSON body (`application/x-ndjson`) line by line against its
`x-coffre-line-schema`. Each case also states the status (and problem code) the code is meant to
answer.

To make the trace unwritable (503 trace_unavailable) it holds the index's SQLite write lock from
this process for a moment; to check `verifyTrace` it changes one trace entry and puts it back.
It sets the development clock ahead to try the time rules, then back to the real time; it does
so again for the dossier lifecycle (the opposition window, the purge dates the retention job
acts on), on dossiers of their own, since purges cannot be undone. Near the end of the
development run come the master keys and dossier rekeys (rotations add key versions, and the
checker installs and retires some in the state's key directory). Last, it stops the development
daemon and starts a second one without --dev on the same state (through a configuration file
naming its keys, trust directory and retention user) for the production-only answers, then a
third one without --dev on a new vault of its own (a vault never rotated; two re-encrypting
rekeys at once).

Prints one line per case and ends with `openapi: N passed, M failed`; exits 1 if any failed.
The daemon is always stopped and the temporary directory removed.

Dependencies: PyYAML, jsonschema (with `referencing`), and `cryptography` to sign assertions.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

try:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
except ImportError:  # pragma: no cover - reported as a clear error below
    Ed25519PrivateKey = None

REPO = Path(__file__).resolve().parent.parent
SPEC_URI = "urn:coffre:openapi"
MAX_DOCUMENT_BYTES = 100_000
# Two valid INS (key = 97 - NIR mod 97) and two more for cases that need a fresh dossier.
INS1 = "184056312345658"
INS2 = "285027512345672"
INS3 = "199099912345763"  # never gets a dossier
INS4 = "2990175123456" + "%02d" % (97 - int("2990175123456") % 97)
INS_BAD_KEY = "184056312345600"
UNKNOWN_ID = "0" * 32


def ins_of(nir: str) -> str:
    """A 13-digit NIR completed with its INS key."""
    return nir + "%02d" % (97 - int(nir) % 97)


# Patients whose dossiers the lifecycle cases close, hold and purge (purges cannot be undone).
INS_CLOSE = ins_of("1850575123401")   # closed, reopened, closed with a deletion request: purged after 3 months
INS_OPPOSE = ins_of("1850575123402")  # opposed within the window: purged at once
INS_DEATH = ins_of("1850575123403")   # closed on death, held: purged after ten years once the hold is lifted
INS_LATE = ins_of("1850575123404")    # opposed too late, then closed: purged after ten years
INS_HELD = ins_of("1850575123405")    # held while active: cannot be opposed
INS_LOCKED = ins_of("1850575123406")  # closed, reopened, opposed while the trace cannot be written; held in production
INS_DIED = ins_of("1850575123407")    # no médecin traitant: the death recorded by an operator, in production
INS_NOBODY = ins_of("1850575123408")  # never has a dossier
assert len({INS1, INS2, INS3, INS4, INS_CLOSE, INS_OPPOSE, INS_DEATH, INS_LATE, INS_HELD, INS_LOCKED, INS_DIED,
            INS_NOBODY}) == 12


def luhn_sum(digits: list[int]) -> int:
    """The Luhn sum, as RPPS.luhnSum in Sources/CoffreDomain/Identifiers/RPPS.swift."""
    total = 0
    for offset, digit in enumerate(reversed(digits)):
        if offset % 2 == 1:
            digit *= 2
            total += digit - 9 if digit > 9 else digit
        else:
            total += digit
    return total


def with_luhn(prefix: str) -> str:
    """`prefix` (digits) completed with its Luhn check digit."""
    return next(prefix + str(c) for c in range(10) if luhn_sum([int(d) for d in prefix + str(c)]) % 10 == 0)


def luhn_broken(number: str) -> str:
    """The same number with a wrong check digit."""
    return number[:-1] + str((int(number[-1]) + 1) % 10)


# Professionals (RPPS: 11 digits, Luhn) and an organisation (FINESS: 9 digits, Luhn).
RPPS = with_luhn("1000000000")           # never authorised anywhere
DOCTOR = with_luhn("1000000001")         # authorised by patient 2, later blocked
ATTENDING = with_luhn("1000000002")      # patient 2's médecin traitant
ADMINISTRATOR = with_luhn("1000000003")  # an administrator of patient 2's dossier
PHARMACIST = with_luhn("1000000004")     # authorised by patient 2, profession 21
STRANGER = with_luhn("1000000005")       # never authorised: emergency modes only
FINESS = with_luhn("75071218")
FINESS_CORSICA = "2a" + with_luhn("20000001")[2:]  # 2A counts as 20 in the Luhn sum; lower case is accepted
assert luhn_broken(DOCTOR) != DOCTOR and len({RPPS, DOCTOR, ATTENDING, ADMINISTRATOR, PHARMACIST, STRANGER}) == 6

# Cases where the running code is known not to do what the spec (and the code's own intent) says.
# They are reported as XFAIL and not counted as failures; once the code is fixed they report
# XPASS, and the entry should be removed from here.
KNOWN_MISMATCHES: dict[str, str] = {}


# --------------------------------------------------------------------------------------------
# HTTP over the Unix socket


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over an AF_UNIX stream socket."""

    def __init__(self, path: str, timeout: float = 30.0):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


class Reply:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def media_type(self) -> str | None:
        value = self.headers.get("Content-Type")
        return value.split(";")[0].strip().lower() if value else None

    def json(self):
        return json.loads(self.body)

    @property
    def code(self) -> str | None:
        try:
            body = self.json()
        except ValueError:
            return None
        return body.get("code") if isinstance(body, dict) else None


def request(sock_path: str, method: str, path: str, headers: dict | None = None, body: bytes | None = None,
            chunked: bool = False, content_length: int | None = None, half_close: bool = False) -> Reply:
    """One request on a fresh connection. The body is sent after the headers; if the server
    answers early and closes, the send error is ignored and the answer read."""
    conn = UnixHTTPConnection(sock_path)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value.fresh() if isinstance(value, FreshAssertion) else value)
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        elif content_length is not None:
            conn.putheader("Content-Length", str(content_length))
        elif body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        try:
            if body is not None:
                if chunked:
                    for start in range(0, len(body), 16384):
                        piece = body[start:start + 16384]
                        conn.sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                    conn.sock.sendall(b"0\r\n\r\n")
                else:
                    conn.sock.sendall(body)
            if half_close:
                conn.sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = conn.getresponse()
        data = response.read()
        return Reply(response.status, response.headers, data)
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# Assertions, signed as SignedAssertion.swift does


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Issuer:
    def __init__(self, seed_hex: str, name: str = "dev"):
        self.key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed_hex.strip()))
        self.name = name

    def claims(self, sub: str, role: str = "patient", mode: str = "normal", lifetime: int = 300,
               iat: int | None = None, **extra) -> dict:
        now = int(time.time()) if iat is None else iat
        claims = {"iss": self.name, "sub": sub, "role": role, "mode": mode, "software": "openapi-check",
                  "iat": now, "exp": now + lifetime, "jti": os.urandom(16).hex()}
        claims.update(extra)
        return claims

    def sign_claims(self, claims: dict, key: "Ed25519PrivateKey | None" = None) -> str:
        payload = b64url(json.dumps(claims, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
        signature = (key or self.key).sign(("coffre-assertion.v1." + payload).encode("ascii"))
        return "v1.%s.%s" % (payload, b64url(signature))

    def token(self, sub: str, **kwargs) -> str:
        return self.sign_claims(self.claims(sub, **kwargs))

    def auth(self, sub: str, **kwargs) -> dict:
        """An Authorization header for `sub` that `request` signs afresh each time it is sent:
        the daemon accepts each assertion (each jti) once."""
        return {"Authorization": FreshAssertion(self, sub, kwargs)}


class FreshAssertion(str):
    """An Authorization value standing for "a new assertion with these claims": it survives
    dict merges as a string, and `request` replaces it with a newly signed token (new jti)."""

    def __new__(cls, issuer: "Issuer", sub: str, kwargs: dict):
        value = super().__new__(cls, "Coffre-Assertion " + issuer.token(sub, **kwargs))
        value.issuer, value.sub, value.kwargs = issuer, sub, kwargs
        return value

    def fresh(self) -> str:
        return "Coffre-Assertion " + self.issuer.token(self.sub, **self.kwargs)


# --------------------------------------------------------------------------------------------
# The spec


class Spec:
    def __init__(self, path: Path):
        with open(path, encoding="utf-8") as f:
            self.doc = yaml.safe_load(f)
        self.registry = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(self.doc))
        self.operations = {}  # (METHOD, template) -> (operation, pointer)
        for template, item in self.doc.get("paths", {}).items():
            for method, operation in item.items():
                if method in ("get", "put", "post", "delete", "patch", "head", "options", "trace"):
                    pointer = "/paths/%s/%s" % (escape(template), method)
                    self.operations[(method.upper(), template)] = (operation, pointer)

    def at(self, pointer: str):
        node = self.doc
        for part in pointer.split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def deref(self, node, pointer: str):
        """Follows OpenAPI-level `$ref`s (responses, parameters, headers) to the object."""
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                raise ValueError("only local references are supported: %s" % ref)
            pointer = ref[1:]
            node = self.at(pointer)
            seen += 1
            if seen > 20:
                raise ValueError("reference loop at %s" % ref)
        return node, pointer

    def validator(self, schema_pointer: str) -> Draft202012Validator:
        root = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": SPEC_URI + "#" + schema_pointer}
        return Draft202012Validator(root, registry=self.registry, format_checker=Draft202012Validator.FORMAT_CHECKER)

    def errors(self, schema_pointer: str, instance) -> list[str]:
        found = sorted(self.validator(schema_pointer).iter_errors(instance), key=lambda e: list(e.absolute_path))
        return ["%s: %s" % ("/".join(map(str, e.absolute_path)) or "(root)", e.message) for e in found]


def escape(text: str) -> str:
    return text.replace("~", "~0").replace("/", "~1")


def media_matches(documented: str, actual: str) -> bool:
    documented = documented.lower()
    if documented == "*/*":
        return True
    if documented.endswith("/*"):
        return actual.startswith(documented[:-1])
    return documented == actual


def is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def ndjson_lines(body: bytes) -> list:
    """The JSON values of a newline-delimited JSON body; every line, the last included, must end
    with a newline. Raises ValueError otherwise."""
    if not body.endswith(b"\n"):
        raise ValueError("the body does not end with a newline")
    return [json.loads(line) for line in body[:-1].split(b"\n")]


def check_response(spec: Spec, response_obj, response_pointer: str, reply: Reply) -> list[str]:
    """Checks a reply against one documented response object."""
    problems = []
    response_obj, response_pointer = spec.deref(response_obj, response_pointer)
    # Headers the spec says are always there.
    for name, header in (response_obj.get("headers") or {}).items():
        header, header_pointer = spec.deref(header, response_pointer + "/headers/" + escape(name))
        value = reply.headers.get(name)
        if value is None:
            if header.get("required"):
                problems.append("required header %s is missing" % name)
            continue
        if "schema" in header:
            instance = value
            schema, _ = spec.deref(header["schema"], header_pointer + "/schema")
            if schema.get("type") == "integer":
                try:
                    instance = int(value)
                except ValueError:
                    problems.append("header %s is not an integer: %r" % (name, value))
                    continue
            for error in spec.errors(header_pointer + "/schema", instance):
                problems.append("header %s: %s" % (name, error))
    content = response_obj.get("content") or {}
    if not content:
        if reply.body:
            problems.append("the spec documents no body, got %d bytes" % len(reply.body))
        return problems
    actual = reply.media_type
    if actual is None:
        problems.append("no Content-Type; documented: %s" % ", ".join(content))
        return problems
    matched = [m for m in content if media_matches(m, actual)]
    if not matched:
        problems.append("Content-Type %s is not documented (documented: %s)" % (actual, ", ".join(content)))
        return problems
    # The most specific documented media type wins.
    media = sorted(matched, key=lambda m: (m == "*/*", m.endswith("/*")))[0]
    media_obj = content[media]
    if "schema" in media_obj and is_json(actual):
        try:
            body = reply.json()
        except ValueError as error:
            problems.append("body is not JSON: %s" % error)
            return problems
        schema_pointer = "%s/content/%s/schema" % (response_pointer, escape(media))
        problems.extend("body %s" % e for e in spec.errors(schema_pointer, body))
    elif "x-coffre-line-schema" in media_obj:
        # A sequence of JSON values, one a line (OpenAPI 3.2's itemSchema): each line validates.
        try:
            lines = ndjson_lines(reply.body)
        except ValueError as error:
            problems.append("body is not newline-delimited JSON: %s" % error)
            return problems
        schema_pointer = "%s/content/%s/x-coffre-line-schema" % (response_pointer, escape(media))
        for number, line in enumerate(lines, 1):
            problems.extend("line %d %s" % (number, e) for e in spec.errors(schema_pointer, line))
    return problems


def check_against_operation(spec: Spec, method: str, template: str, reply: Reply) -> list[str]:
    key = (method, template)
    if key not in spec.operations:
        return ["operation %s %s is not in the spec" % key]
    operation, pointer = spec.operations[key]
    responses = operation.get("responses", {})
    status = str(reply.status)
    if status not in {str(k) for k in responses}:
        return ["status %s is not documented for %s %s (documented: %s)" % (
            status, method, template, ", ".join(sorted(str(k) for k in responses)))]
    response_key = next(k for k in responses if str(k) == status)
    return check_response(spec, responses[response_key], "%s/responses/%s" % (pointer, escape(str(response_key))), reply)


# --------------------------------------------------------------------------------------------
# The run


class Checker:
    def __init__(self, spec: Spec, verbose: bool):
        self.spec = spec
        self.verbose = verbose
        self.passed = 0
        self.failed = 0
        self.xfailed = 0
        self.skipped = 0
        self.covered: set[tuple[str, str]] = set()
        self.sent_json: list[tuple[tuple[str, str], bytes, int, str | None]] = []  # (op, body, status, code)

    def record(self, name: str, problems: list[str], detail: str = ""):
        known = KNOWN_MISMATCHES.get(name)
        if not problems:
            self.passed += 1
            if known:
                print("XPASS %s (known mismatch fixed? remove it from KNOWN_MISMATCHES)" % name)
            else:
                print("PASS  %s%s" % (name, " " + detail if detail and self.verbose else ""))
        elif known:
            self.xfailed += 1
            print("XFAIL %s: %s [known mismatch: %s]" % (name, "; ".join(problems), known))
        else:
            self.failed += 1
            print("FAIL  %s: %s" % (name, "; ".join(problems)))

    def skip(self, name: str, why: str):
        self.skipped += 1
        print("SKIP  %s: %s" % (name, why))

    def case(self, name: str, op: tuple[str, str] | None, send, expect_status: int,
             expect_code: str | None = None, extra=None, unmatched_response: str | None = None):
        """Runs `send()` (a Reply), checks it against operation `op` of the spec (or, for a
        request no operation serves, against components/responses/`unmatched_response`), the
        expected status and problem code, and then `extra(reply)` (more problems, or [])."""
        try:
            reply = send()
        except Exception as error:  # a crash of the request is a failure of the case
            self.record(name, ["request failed: %r" % error])
            return None
        problems = []
        if op is not None:
            problems += check_against_operation(self.spec, op[0], op[1], reply)
        else:
            pointer = "/components/responses/" + unmatched_response
            problems += check_response(self.spec, self.spec.at(pointer), pointer, reply)
        if reply.status != expect_status:
            problems.append("expected status %d, got %d (%s)" % (expect_status, reply.status, reply.code or reply.media_type))
        elif expect_code is not None and reply.code != expect_code:
            problems.append("expected code %s, got %s" % (expect_code, reply.code))
        if extra is not None and not problems:
            try:
                problems += extra(reply)
            except Exception as error:
                problems.append("check raised %r" % error)
        if op is not None and not problems:
            self.covered.add(op)
        self.record(name, problems, "[%d %s]" % (reply.status, reply.code or reply.media_type))
        return reply


def static_checks(checker: Checker):
    spec = checker.spec
    problems = []
    version = str(spec.doc.get("openapi", ""))
    if not version.startswith("3.1."):
        problems.append("openapi is %r, expected 3.1.x" % version)
    checker.record("spec: OpenAPI 3.1 document", problems)

    # Every schema is a valid 2020-12 schema and every $ref in the document resolves.
    problems = []
    for name, schema in spec.doc.get("components", {}).get("schemas", {}).items():
        try:
            Draft202012Validator.check_schema(schema)
        except Exception as error:
            problems.append("schema %s: %s" % (name, getattr(error, "message", error)))

    def walk(node, pointer):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                try:
                    spec.at(ref[1:]) if ref.startswith("#/") else problems.append("non-local $ref %s" % ref)
                except (KeyError, IndexError, ValueError):
                    problems.append("unresolved $ref %s at %s" % (ref, pointer))
            for key, value in node.items():
                walk(value, pointer + "/" + escape(str(key)))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, "%s/%d" % (pointer, index))
    walk(spec.doc, "")
    checker.record("spec: schemas valid, every $ref resolves", problems)

    # Error codes and classes are those of the Swift sources.
    sources = {
        "Problem.code lists every ErrorCode raw value": (
            REPO / "Sources/CoffreAPI/Errors/ErrorCode.swift", "/components/schemas/Problem/properties/code/enum"),
        "DocumentClass lists every DocumentClass raw value": (
            REPO / "Sources/CoffreDomain/Documents/DocumentClass.swift", "/components/schemas/DocumentClass/enum"),
    }
    for name, (source, pointer) in sources.items():
        if not source.exists():
            checker.skip("spec: " + name, "%s not found" % source)
            continue
        swift = set(re.findall(r'^\s*case\s+\w+\s*=\s*"([^"]+)"', source.read_text(encoding="utf-8"), re.M))
        documented = set(spec.at(pointer))
        problems = []
        if swift - documented:
            problems.append("missing from the spec: %s" % ", ".join(sorted(swift - documented)))
        if documented - swift:
            problems.append("not in %s: %s" % (source.name, ", ".join(sorted(documented - swift))))
        checker.record("spec: " + name, problems)

    # Every documented problem code is a Problem code.
    problems = []
    all_codes = set(spec.at("/components/schemas/Problem/properties/code/enum"))

    def codes(node, pointer):
        if isinstance(node, dict):
            if "code" in node and isinstance(node["code"], dict) and "enum" in node["code"]:
                unknown = set(node["code"]["enum"]) - all_codes
                if unknown:
                    problems.append("%s: unknown codes %s" % (pointer, ", ".join(sorted(unknown))))
            for key, value in node.items():
                codes(value, pointer + "/" + escape(str(key)))
    codes(spec.doc.get("paths", {}), "/paths")
    codes(spec.doc.get("components", {}).get("responses", {}), "/components/responses")
    checker.record("spec: every operation's error codes are Problem codes", problems)

    # Refusals every operation of a kind can answer: a person-level operation decides access and
    # traces the decision first (fail closed), an operator operation asks the kernel who calls.
    problems = []
    must = {"/v1/patients/": [("401", "assertion_missing"), ("403", "access_denied"), ("503", "trace_unavailable")],
            "/v1/admin/": [("403", "not_operator")], "/v1/retention/": [("403", "not_operator")]}
    for (method, template), (operation, pointer) in sorted(spec.operations.items()):
        needed = next((v for prefix, v in must.items() if template.startswith(prefix)), [])
        responses = {str(k): v for k, v in operation.get("responses", {}).items()}
        for status, code in needed:
            if status not in responses:
                problems.append("%s %s documents no %s" % (method, template, status))
                continue
            response, _ = spec.deref(responses[status], pointer + "/responses/" + status)
            try:
                enum = response["content"]["application/problem+json"]["schema"]["properties"]["code"]["enum"]
            except (KeyError, TypeError):
                enum = []
            if code not in enum:
                problems.append("%s %s: %s does not list %s" % (method, template, status, code))
    checker.record("spec: person-level operations document 401, 403 and 503 trace_unavailable; operator ones 403 "
                   "not_operator", problems)


def wait_for_socket(path: str, process: subprocess.Popen, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("coffred exited with status %s before serving" % process.returncode)
        if os.path.exists(path):
            try:
                if request(path, "GET", "/v1/health").status == 200:
                    return
            except OSError:
                pass
        time.sleep(0.1)
    raise RuntimeError("coffred did not serve on %s within %.0f s" % (path, timeout))


def run_client(bin_dir: Path, sock: str, *args: str) -> str:
    result = subprocess.run([str(bin_dir / "coffre"), "--socket", sock, *args],
                            capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError("coffre %s failed (%d): %s" % (" ".join(args), result.returncode, result.stderr.strip()))
    return result.stdout.strip()


def exercise(checker: Checker, bin_dir: Path, state: Path, sock: str, tmp: Path):
    issuer = Issuer((state / "dev-issuer.key").read_text())
    p1, p2, p3, p4 = (issuer.auth(i) for i in (INS1, INS2, INS3, INS4))
    json_hdr = {"Content-Type": "application/json"}

    def send(method, path, **kwargs):
        return lambda: request(sock, method, path, **kwargs)

    def json_is(check):
        def extra(reply):
            body = reply.json()
            return [] if check(body) else ["unexpected body: %s" % json.dumps(body)[:300]]
        return extra

    HEALTH = ("GET", "/v1/health")
    ADMIN = ("GET", "/v1/admin/status")
    DOSSIER_POST = ("POST", "/v1/patients/{ins}/dossier")
    DOSSIER_GET = ("GET", "/v1/patients/{ins}/dossier")
    DOCS_POST = ("POST", "/v1/patients/{ins}/documents")
    DOCS_GET = ("GET", "/v1/patients/{ins}/documents")
    DOC_GET = ("GET", "/v1/patients/{ins}/documents/{id}")
    CONTENT_GET = ("GET", "/v1/patients/{ins}/documents/{id}/content")
    dossier, docs = "/v1/patients/%s/dossier", "/v1/patients/%s/documents"

    # --- system
    checker.case("getHealth -> 200", HEALTH, send("GET", "/v1/health"), 200,
                 extra=json_is(lambda b: b["status"] == "ok" and b["developmentMode"] is True))
    checker.case("getAdminStatus as the daemon's user -> 200", ADMIN, send("GET", "/v1/admin/status"), 200,
                 extra=json_is(lambda b: b["activeMasterKeyVersion"] in b["installedMasterKeyVersions"]))
    checker.case("getAdminStatus ignores an Authorization header -> 200", ADMIN,
                 send("GET", "/v1/admin/status", headers={"Authorization": "Coffre-Assertion nonsense"}), 200)
    admin_as_other_user(checker, sock, state, tmp)

    # --- set-up through the client, as a user would
    try:
        run_client(bin_dir, sock, "--as", "patient:" + INS1, "dossier", "create")
        note = tmp / "note.txt"
        note.write_text("compte rendu\n", encoding="utf-8")
        client_doc = run_client(bin_dir, sock, "--as", "patient:" + INS1, "doc", "put", str(note),
                                "--class", "CPT_REND", "--title", "Compte rendu été", "--date", "2024-06-01")
        checker.record("setup: coffre dossier create, coffre doc put", [] if re.fullmatch(r"[0-9a-f]{32}", client_doc)
                       else ["doc put printed %r" % client_doc])
    except Exception as error:
        checker.record("setup: coffre dossier create, coffre doc put", [str(error)])
        client_doc = UNKNOWN_ID

    # --- dossier
    checker.case("createDossier with {} -> 201", DOSSIER_POST,
                 send("POST", dossier % INS2, headers={**p2, **json_hdr}, body=b"{}"), 201,
                 extra=json_is(lambda b: b["ins"] == INS2 and b["state"] == "active" and b["documentCount"] == 0))
    checker.case("createDossier again -> 409 dossier_exists", DOSSIER_POST,
                 send("POST", dossier % INS2, headers=p2), 409, "dossier_exists")
    checker.case("createDossier without assertion -> 401 assertion_missing", DOSSIER_POST,
                 send("POST", dossier % INS3), 401, "assertion_missing")
    checker.case("createDossier invalid INS -> 400 invalid_ins", DOSSIER_POST,
                 send("POST", dossier % INS_BAD_KEY, headers=p3), 400, "invalid_ins")
    checker.case("createDossier for another patient -> 403 access_denied", DOSSIER_POST,
                 send("POST", dossier % INS3, headers=p1), 403, "access_denied")
    checker.case("createDossier with invalid JSON -> 400 malformed_json", DOSSIER_POST,
                 send("POST", dossier % INS3, headers={**p3, **json_hdr}, body=b"{"), 400, "malformed_json")
    checker.case("createDossier: body over 64 KiB -> 413 payload_too_large", DOSSIER_POST,
                 send("POST", dossier % INS3, headers={**p3, **json_hdr}, body=b" " * (70 * 1024) + b"{}"),
                 413, "payload_too_large")
    checker.case("createDossier: JSON body that is not an object -> 400 malformed_json", DOSSIER_POST,
                 send("POST", dossier % INS4, headers={**p4, **json_hdr}, body=b'"x"'), 400, "malformed_json")
    checker.case("getDossier -> 200", DOSSIER_GET, send("GET", dossier % INS1, headers=p1), 200,
                 extra=json_is(lambda b: b["ins"] == INS1 and b["documentCount"] == 1))
    checker.case("getDossier with lower-case path INS is the same dossier -> 200", DOSSIER_GET,
                 send("GET", dossier % INS1.lower(), headers=p1), 200)
    checker.case("getDossier of a patient without one -> 404 dossier_not_found", DOSSIER_GET,
                 send("GET", dossier % INS3, headers=p3), 404, "dossier_not_found")
    checker.case("getDossier of another patient -> 403 access_denied", DOSSIER_GET,
                 send("GET", dossier % INS2, headers=p1), 403, "access_denied")
    checker.case("getDossier invalid INS -> 400 invalid_ins", DOSSIER_GET,
                 send("GET", dossier % "12345", headers=p1), 400, "invalid_ins")
    checker.case("getDossier INS with a wrong key -> 400 invalid_ins", DOSSIER_GET,
                 send("GET", dossier % INS_BAD_KEY, headers=p1), 400, "invalid_ins")

    # --- assertions (on getDossier)
    def auth(token):
        return {"Authorization": "Coffre-Assertion " + token}
    def padded(token):
        prefix, payload, signature = token.split(".")
        return "%s.%s=.%s" % (prefix, payload, signature)
    now = int(time.time())
    other_key = Ed25519PrivateKey.generate()
    no_mode = issuer.claims(INS1)
    del no_mode["mode"]
    assertion_cases = [
        ("no Authorization -> 401 assertion_missing", {}, "assertion_missing"),
        ("Bearer scheme -> 401 assertion_malformed", {"Authorization": "Bearer " + issuer.token(INS1)},
         "assertion_malformed"),
        ("two-part token -> 401 assertion_malformed", auth("v1.abc"), "assertion_malformed"),
        ("padded base64 claims -> 401 assertion_malformed", auth(padded(issuer.token(INS1))), "assertion_malformed"),
        ("token over 4096 bytes -> 401 assertion_malformed",
         auth(issuer.sign_claims(issuer.claims(INS1, software="x" * 4000))), "assertion_malformed"),
        ("claims without mode -> 401 assertion_malformed", auth(issuer.sign_claims(no_mode)), "assertion_malformed"),
        ("lifetime over an hour -> 401 assertion_malformed", auth(issuer.token(INS1, lifetime=3601)),
         "assertion_malformed"),
        ("subject not an INS -> 401 assertion_malformed", auth(issuer.token("12345")), "assertion_malformed"),
        ("bris_de_glace without reason -> 401 assertion_malformed",
         auth(issuer.token(RPPS, role="professional", mode="bris_de_glace", profession="10")), "assertion_malformed"),
        ("unknown issuer -> 401 assertion_unknown_issuer",
         auth(Issuer((state / "dev-issuer.key").read_text(), name="elsewhere").token(INS1)), "assertion_unknown_issuer"),
        ("signed by another key -> 401 assertion_bad_signature",
         auth(issuer.sign_claims(issuer.claims(INS1), key=other_key)), "assertion_bad_signature"),
        ("expired -> 401 assertion_expired", auth(issuer.token(INS1, iat=now - 4000, lifetime=3000)), "assertion_expired"),
        ("issued in the future -> 401 assertion_expired", auth(issuer.token(INS1, iat=now + 600)), "assertion_expired"),
        ("professional the patient did not authorise -> 403 access_denied",
         auth(issuer.token(RPPS, role="professional", profession="10")), "access_denied"),
        ("professional without profession -> 401 assertion_malformed",
         auth(issuer.token(RPPS, role="professional")), "assertion_malformed"),
        ("professional with a Luhn-invalid RPPS -> 401 assertion_malformed",
         auth(issuer.token(luhn_broken(RPPS), role="professional", profession="10")), "assertion_malformed"),
        ("representative of the patient -> 200", auth(issuer.token(INS2, role="representative", patient=INS1)), None),
        ("representative of another patient -> 403 access_denied",
         auth(issuer.token(INS1, role="representative", patient=INS2)), "access_denied"),
        ("representative without patient -> 401 assertion_malformed",
         auth(issuer.token(INS2, role="representative")), "assertion_malformed"),
        ("patient in centre_15 mode -> 403 access_denied", auth(issuer.token(INS1, mode="centre_15")), "access_denied"),
    ]
    for label, headers, code in assertion_cases:
        status = {"access_denied": 403, None: 200}.get(code, 401)
        checker.case("getDossier: " + label, DOSSIER_GET, send("GET", dossier % INS1, headers=headers), status, code)

    # Single-use: the same token a second time is a replay.
    replayed = auth(issuer.token(INS1))
    request(sock, "GET", dossier % INS1, headers=replayed)
    checker.case("getDossier: the same assertion twice -> 401 assertion_replayed", DOSSIER_GET,
                 send("GET", dossier % INS1, headers=replayed), 401, "assertion_replayed")
    checker.case("getDossier: a 40 KiB header block -> 431 headers_too_large", DOSSIER_GET,
                 send("GET", dossier % INS1, headers={**p1, "X-Padding": "a" * 40_000}), 431, "headers_too_large")

    # The AssertionClaims schema accepts what the daemon accepts and refuses a claim set without mode.
    accepted = issuer.claims(INS1, specialty="SM26", organization="750000001", reason="r")
    reply = request(sock, "GET", dossier % INS1, headers=auth(issuer.sign_claims(accepted)))
    problems = [] if reply.status == 200 else ["the daemon refused the claims: %d %s" % (reply.status, reply.code)]
    problems += checker.spec.errors("/components/schemas/AssertionClaims", accepted)
    if not checker.spec.errors("/components/schemas/AssertionClaims", no_mode):
        problems.append("the schema accepts claims without mode, which the daemon refuses")
    checker.record("AssertionClaims schema agrees with the daemon", problems)

    # --- documents: store
    content = "Hémoglobine 14 g/dL\n".encode("utf-8") * 10
    metadata = {
        "Coffre-Class": "BIOLOGIE",
        "Coffre-Title": urllib.parse.quote("Bilan sanguin été", safe=""),
        "Coffre-Type-Code": "11502-2",
        "Coffre-Care-Date": "2024-02-29",
        "Content-Type": "text/plain; charset=utf-8",
    }
    stored = checker.case(
        "storeDocument with every metadata header -> 201", DOCS_POST,
        send("POST", docs % INS1, headers={**p1, **metadata}, body=content), 201,
        extra=json_is(lambda b: b["class"] == "BIOLOGIE" and b["classCode"] == "10" and b["title"] == "Bilan sanguin été"
                      and b["typeCode"] == "11502-2" and b["careDate"] == "2024-02-29" and b["size"] == len(content)
                      and b["sha256"] == hashlib.sha256(content).hexdigest() and b["status"] == "current"
                      and b["hiddenFromRepresentatives"] is False and b["hiddenFromPatient"] is False
                      and b["masked"] is False and "releasedAt" not in b
                      and b["author"] == {"role": "patient", "id": INS1} and b["mediaType"] == metadata["Content-Type"]))
    doc_id = stored.json().get("id", UNKNOWN_ID) if stored is not None and stored.status == 201 else UNKNOWN_ID
    checker.case("storeDocument minimal (class only, no Content-Type, empty body) -> 201", DOCS_POST,
                 send("POST", docs % INS1, headers={**p1, "Coffre-Class": "AUTR_DOC"}, body=b""), 201,
                 extra=json_is(lambda b: b["size"] == 0 and b["mediaType"] == "application/octet-stream"
                               and b["classCode"] == "90"
                               and not {"title", "typeCode", "careDate", "replaces", "releasedAt"} & set(b)))
    checker.case("storeDocument chunked, no Content-Length -> 201", DOCS_POST,
                 send("POST", docs % INS1, headers={**p1, "Coffre-Class": "RADIO_SC", "Content-Type": "application/pdf"},
                      body=os.urandom(50_000), chunked=True), 201,
                 extra=json_is(lambda b: b["size"] == 50_000 and b["classCode"] == "31"))
    checker.case("storeDocument of exactly the size limit -> 201", DOCS_POST,
                 send("POST", docs % INS1, headers={**p1, "Coffre-Class": "SYNTHESE"}, body=os.urandom(MAX_DOCUMENT_BYTES)),
                 201, extra=json_is(lambda b: b["size"] == MAX_DOCUMENT_BYTES))
    bad_metadata = [
        ("without Coffre-Class -> 400 unknown_class", {}, "unknown_class"),
        ("unknown Coffre-Class -> 400 unknown_class", {"Coffre-Class": "NOPE"}, "unknown_class"),
        ("lower-case Coffre-Class -> 400 unknown_class", {"Coffre-Class": "biologie"}, "unknown_class"),
        ("impossible Coffre-Care-Date -> 400 invalid_metadata",
         {"Coffre-Class": "BIOLOGIE", "Coffre-Care-Date": "2023-02-29"}, "invalid_metadata"),
        ("Coffre-Hidden-From from the patient -> 400 invalid_metadata (a professional's call)",
         {"Coffre-Class": "BIOLOGIE", "Coffre-Hidden-From": "representatives"}, "invalid_metadata"),
        ("empty Coffre-Hidden-From from the patient -> 400 invalid_metadata",
         {"Coffre-Class": "BIOLOGIE", "Coffre-Hidden-From": ""}, "invalid_metadata"),
        ("Coffre-Type-Code with a space -> 400 invalid_metadata",
         {"Coffre-Class": "BIOLOGIE", "Coffre-Type-Code": "11502 2"}, "invalid_metadata"),
        ("badly percent-encoded Coffre-Title -> 400 invalid_metadata",
         {"Coffre-Class": "BIOLOGIE", "Coffre-Title": "%ZZ"}, "invalid_metadata"),
        ("Coffre-Title over 512 bytes -> 400 invalid_metadata",
         {"Coffre-Class": "BIOLOGIE", "Coffre-Title": "%C3%A9" * 257}, "invalid_metadata"),
        ("Content-Type without a slash -> 400 invalid_metadata",
         {"Coffre-Class": "BIOLOGIE", "Content-Type": "pdf"}, "invalid_metadata"),
    ]
    for label, headers, code in bad_metadata:
        checker.case("storeDocument " + label, DOCS_POST,
                     send("POST", docs % INS1, headers={**p1, **headers}, body=b"x"), 400, code)
    checker.case("storeDocument over the size limit (Content-Length) -> 413 payload_too_large", DOCS_POST,
                 send("POST", docs % INS1, headers={**p1, "Coffre-Class": "BIOLOGIE"},
                      body=os.urandom(MAX_DOCUMENT_BYTES + 50_000)), 413, "payload_too_large")
    checker.case("storeDocument over the size limit (chunked) -> 413 payload_too_large", DOCS_POST,
                 send("POST", docs % INS1, headers={**p1, "Coffre-Class": "BIOLOGIE"},
                      body=os.urandom(MAX_DOCUMENT_BYTES + 50_000), chunked=True), 413, "payload_too_large")
    checker.case("storeDocument cut short of Content-Length -> 400 upload_incomplete", DOCS_POST,
                 send("POST", docs % INS1, headers={**p1, "Coffre-Class": "BIOLOGIE"}, body=b"0123456789",
                      content_length=100, half_close=True), 400, "upload_incomplete")
    checker.case("storeDocument without a dossier -> 404 dossier_not_found", DOCS_POST,
                 send("POST", docs % INS3, headers={**p3, "Coffre-Class": "BIOLOGIE"}, body=b"x"), 404, "dossier_not_found")
    checker.case("storeDocument in another patient's dossier -> 403 access_denied", DOCS_POST,
                 send("POST", docs % INS2, headers={**p1, "Coffre-Class": "BIOLOGIE"}, body=b"x"), 403, "access_denied")
    checker.case("storeDocument without assertion -> 401 assertion_missing", DOCS_POST,
                 send("POST", docs % INS1, headers={"Coffre-Class": "BIOLOGIE"}, body=b"x"), 401, "assertion_missing")
    checker.case("storeDocument invalid INS -> 400 invalid_ins", DOCS_POST,
                 send("POST", docs % INS_BAD_KEY, headers={**p1, "Coffre-Class": "BIOLOGIE"}, body=b"x"), 400, "invalid_ins")

    # --- documents: list
    checker.case("listDocuments -> 200", DOCS_GET, send("GET", docs % INS1, headers=p1), 200,
                 extra=json_is(lambda b: len(b["documents"]) == 5 and doc_id in {d["id"] for d in b["documents"]}))
    checker.case("listDocuments ?class=BIOLOGIE&allVersions=true -> 200", DOCS_GET,
                 send("GET", docs % INS1 + "?class=BIOLOGIE&allVersions=true", headers=p1), 200,
                 extra=json_is(lambda b: [d["id"] for d in b["documents"]] == [doc_id]))
    checker.case("listDocuments ?class=DOC_ADM (none) -> 200 empty", DOCS_GET,
                 send("GET", docs % INS1 + "?class=DOC_ADM&allVersions=false", headers=p1), 200,
                 extra=json_is(lambda b: b == {"documents": []}))
    checker.case("listDocuments unknown class -> 400 unknown_class", DOCS_GET,
                 send("GET", docs % INS1 + "?class=NOPE", headers=p1), 400, "unknown_class")
    checker.case("listDocuments without a dossier -> 404 dossier_not_found", DOCS_GET,
                 send("GET", docs % INS3, headers=p3), 404, "dossier_not_found")
    checker.case("listDocuments of another patient -> 403 access_denied", DOCS_GET,
                 send("GET", docs % INS2, headers=p1), 403, "access_denied")
    checker.case("listDocuments invalid INS -> 400 invalid_ins", DOCS_GET,
                 send("GET", docs % "18405631234565X", headers=p1), 400, "invalid_ins")
    checker.case("listDocuments expired assertion -> 401 assertion_expired", DOCS_GET,
                 send("GET", docs % INS1, headers=auth(issuer.token(INS1, iat=now - 4000, lifetime=3000))),
                 401, "assertion_expired")

    # --- documents: metadata
    doc = docs + "/%s"
    checker.case("getDocument -> 200", DOC_GET, send("GET", doc % (INS1, doc_id), headers=p1), 200,
                 extra=json_is(lambda b: b["id"] == doc_id and b["title"] == "Bilan sanguin été"))
    checker.case("getDocument stored by the client -> 200", DOC_GET, send("GET", doc % (INS1, client_doc), headers=p1), 200,
                 extra=json_is(lambda b: b["title"] == "Compte rendu été" and b["class"] == "CPT_REND"
                               and b["careDate"] == "2024-06-01"))
    checker.case("getDocument malformed id -> 400 invalid_identifier", DOC_GET,
                 send("GET", doc % (INS1, doc_id.upper()), headers=p1), 400, "invalid_identifier")
    checker.case("getDocument unknown id -> 404 document_not_found", DOC_GET,
                 send("GET", doc % (INS1, UNKNOWN_ID), headers=p1), 404, "document_not_found")
    checker.case("getDocument without a dossier -> 404 dossier_not_found", DOC_GET,
                 send("GET", doc % (INS3, UNKNOWN_ID), headers=p3), 404, "dossier_not_found")
    checker.case("getDocument of another patient's dossier -> 403 access_denied", DOC_GET,
                 send("GET", doc % (INS1, doc_id), headers=p2), 403, "access_denied")
    checker.case("getDocument bad signature -> 401 assertion_bad_signature", DOC_GET,
                 send("GET", doc % (INS1, doc_id), headers=auth(issuer.sign_claims(issuer.claims(INS1), key=other_key))),
                 401, "assertion_bad_signature")
    checker.case("getDocument invalid INS -> 400 invalid_ins", DOC_GET,
                 send("GET", doc % (INS_BAD_KEY, doc_id), headers=p1), 400, "invalid_ins")

    # --- documents: content
    body_of = docs + "/%s/content"

    def same_content(reply):
        problems = []
        if reply.body != content:
            problems.append("content differs (%d bytes, expected %d)" % (len(reply.body), len(content)))
        if reply.headers.get("Coffre-Content-SHA256") != hashlib.sha256(content).hexdigest():
            problems.append("Coffre-Content-SHA256 is not the content's SHA-256")
        if reply.headers.get("Coffre-Document-Id") != doc_id:
            problems.append("Coffre-Document-Id is not the document's id")
        if reply.headers.get("Content-Type") != metadata["Content-Type"]:
            problems.append("Content-Type %r is not the stored media type" % reply.headers.get("Content-Type"))
        return problems
    checker.case("getDocumentContent -> 200 with the bytes stored", CONTENT_GET,
                 send("GET", body_of % (INS1, doc_id), headers=p1), 200, extra=same_content)
    checker.case("getDocumentContent unknown id -> 404 document_not_found", CONTENT_GET,
                 send("GET", body_of % (INS1, UNKNOWN_ID), headers=p1), 404, "document_not_found")
    checker.case("getDocumentContent malformed id -> 400 invalid_identifier", CONTENT_GET,
                 send("GET", body_of % (INS1, "not-an-id"), headers=p1), 400, "invalid_identifier")
    checker.case("getDocumentContent without a dossier -> 404 dossier_not_found", CONTENT_GET,
                 send("GET", body_of % (INS3, UNKNOWN_ID), headers=p3), 404, "dossier_not_found")
    checker.case("getDocumentContent of another patient's dossier -> 403 access_denied", CONTENT_GET,
                 send("GET", body_of % (INS1, doc_id), headers=p2), 403, "access_denied")
    checker.case("getDocumentContent without assertion -> 401 assertion_missing", CONTENT_GET,
                 send("GET", body_of % (INS1, doc_id)), 401, "assertion_missing")
    checker.case("getDocumentContent invalid INS -> 400 invalid_ins", CONTENT_GET,
                 send("GET", body_of % ("1" * 15, doc_id), headers=p1), 400, "invalid_ins")

    # --- access decisions, professionals, document versions (patient 2's dossier)
    exercise_access_and_professionals(checker, issuer, sock)

    # --- the trace and notifications (patient 4's dossier), fail closed, the operator's check
    docs4 = exercise_trace_and_notifications(checker, issuer, sock)
    exercise_trace_unavailable(checker, issuer, sock, state, docs4)
    exercise_verify(checker, sock, state)

    # --- the development clock and the time rules, last: it is set back to the real time
    exercise_clock(checker, issuer, sock, docs4)

    # --- the dossier lifecycle, legal holds and the retention job (the clock set back at the end)
    exercise_lifecycle(checker, issuer, sock)

    # --- master keys and rekeys, last: rotations add key versions (the production run finds them)
    exercise_keys(checker, issuer, sock, state)

    # --- what no operation serves
    for label, method, path in [
        ("unknown route GET /v1/nope", "GET", "/v1/nope"),
        ("unknown route under a patient", "GET", "/v1/patients/%s/nope" % INS1),
        ("unknown version GET /v2/health", "GET", "/v2/health"),
        ("wrong method DELETE /v1/health", "DELETE", "/v1/health"),
        ("wrong method PUT on a dossier", "PUT", dossier % INS1),
        ("unknown access list", "PUT", "/v1/patients/%s/access/friends/%s" % (INS1, DOCTOR)),
        ("access member without a list", "PUT", "/v1/patients/%s/access/%s" % (INS1, DOCTOR)),
        ("wrong method GET on an access member", "GET", "/v1/patients/%s/access/authorized/%s" % (INS1, DOCTOR)),
        ("wrong method POST on the attending doctor", "POST", "/v1/patients/%s/dossier/attending-doctor" % INS1),
        ("wrong method GET on mask", "GET", docs % INS1 + "/%s/mask" % UNKNOWN_ID),
        ("unknown document action", "POST", docs % INS1 + "/%s/archive" % UNKNOWN_ID),
        ("wrong method DELETE on the trace", "DELETE", "/v1/patients/%s/trace" % INS1),
        ("a trace entry is not a resource", "GET", "/v1/patients/%s/trace/1" % INS1),
        ("wrong method GET on the acknowledgement", "GET", "/v1/patients/%s/notifications/ack" % INS1),
        ("wrong method PUT on notifications", "PUT", "/v1/patients/%s/notifications" % INS1),
        ("wrong method GET on verify", "GET", "/v1/admin/verify"),
        ("wrong method PUT on the clock", "PUT", "/v1/admin/clock"),
        ("unknown operator path", "GET", "/v1/admin/nope"),
        ("wrong method GET on close", "GET", "/v1/patients/%s/dossier/close" % INS1),
        ("wrong method DELETE on reopen", "DELETE", "/v1/patients/%s/dossier/reopen" % INS1),
        ("unknown lifecycle action", "POST", "/v1/patients/%s/dossier/purge" % INS1),
        ("wrong method GET on a hold", "GET", "/v1/admin/patients/%s/hold" % INS1),
        ("wrong method PUT on a hold", "PUT", "/v1/admin/patients/%s/hold" % INS1),
        ("an operator path without a hold", "GET", "/v1/admin/patients/%s" % INS1),
        ("wrong method POST on due", "POST", "/v1/retention/due"),
        ("wrong method GET on run", "GET", "/v1/retention/run"),
        ("unknown retention path", "GET", "/v1/retention/nope"),
        ("wrong method DELETE on the keys", "DELETE", "/v1/admin/keys"),
        ("wrong method GET on rotate", "GET", "/v1/admin/keys/rotate"),
        ("wrong method GET on reload", "GET", "/v1/admin/keys/reload"),
        ("a key version is not a resource", "GET", "/v1/admin/keys/1"),
        ("wrong method GET on retire", "GET", "/v1/admin/keys/1/retire"),
        ("unknown key action", "POST", "/v1/admin/keys/1/destroy"),
        ("wrong method GET on rekey", "GET", "/v1/admin/patients/%s/rekey" % INS1),
        ("wrong method PUT on rekey", "PUT", "/v1/admin/patients/%s/rekey" % INS1),
    ]:
        checker.case(label + " -> 404 route_not_found", None,
                     send(method, path, headers=p1, body=b"" if method in ("PUT", "POST") else None), 404,
                     "route_not_found", unmatched_response="RouteNotFound")
    return issuer


def final_checks(checker: Checker):
    """After every run: the request schemas against the daemon's verdicts, and coverage."""
    request_schemas_agree(checker)
    missing = sorted("%s %s" % op for op in set(checker.spec.operations) - checker.covered)
    checker.record("coverage: every operation of the spec passed at least one case",
                   ["not exercised successfully: " + ", ".join(missing)] if missing else [])


def json_is(check):
    """An `extra` check: `check(body)` must be true."""
    def extra(reply):
        body = reply.json()
        return [] if check(body) else ["unexpected body: %s" % json.dumps(body, ensure_ascii=False)[:400]]
    return extra


def exercise_access_and_professionals(checker: Checker, issuer: "Issuer", sock: str):
    """The patient's access decisions and what professionals get under them, on patient 2's
    dossier (empty so far): médecin traitant, preferences, emergency switches, the three lists,
    then documents stored, read, masked, released, replaced and deleted by the patient and by
    professionals."""
    p1, p2, p3 = (issuer.auth(i) for i in (INS1, INS2, INS3))
    rep2 = issuer.auth(INS1, role="representative", patient=INS2)  # patient 1, legal representative of patient 2
    json_hdr = {"Content-Type": "application/json"}

    def pro(rpps, profession="10", mode="normal", **extra):
        if mode == "bris_de_glace":
            extra.setdefault("reason", "patient inconscient aux urgences")
        return issuer.auth(rpps, role="professional", profession=profession, mode=mode, **extra)
    doctor, attending, administrator = pro(DOCTOR), pro(ATTENDING), pro(ADMINISTRATOR)
    pharmacist = pro(PHARMACIST, "21")

    def send(method, path, **kwargs):
        return lambda: request(sock, method, path, **kwargs)

    def send_json(op, path, headers, body):
        """A JSON body; remembered, to check the request schema against the daemon's verdict."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()

        def go():
            reply = request(sock, op[0], path, headers={**headers, **json_hdr}, body=data)
            checker.sent_json.append((op, data, reply.status, reply.code))
            return reply
        return go

    ACCESS_GET = ("GET", "/v1/patients/{ins}/access")
    ATTENDING_PUT = ("PUT", "/v1/patients/{ins}/dossier/attending-doctor")
    PREFS_PATCH = ("PATCH", "/v1/patients/{ins}/dossier/preferences")
    EMERGENCY_PATCH = ("PATCH", "/v1/patients/{ins}/access/emergency")
    MEMBER_PUT = ("PUT", "/v1/patients/{ins}/access/{list}/{member}")
    MEMBER_DELETE = ("DELETE", "/v1/patients/{ins}/access/{list}/{member}")
    DOSSIER_GET = ("GET", "/v1/patients/{ins}/dossier")
    DOCS_POST = ("POST", "/v1/patients/{ins}/documents")
    DOCS_GET = ("GET", "/v1/patients/{ins}/documents")
    DOC_GET = ("GET", "/v1/patients/{ins}/documents/{id}")
    DOC_DELETE = ("DELETE", "/v1/patients/{ins}/documents/{id}")
    CONTENT_GET = ("GET", "/v1/patients/{ins}/documents/{id}/content")
    REPLACE = ("POST", "/v1/patients/{ins}/documents/{id}/replace")
    MASK = ("POST", "/v1/patients/{ins}/documents/{id}/mask")
    UNMASK = ("POST", "/v1/patients/{ins}/documents/{id}/unmask")
    RELEASE = ("POST", "/v1/patients/{ins}/documents/{id}/release")
    access, attending_path = "/v1/patients/%s/access", "/v1/patients/%s/dossier/attending-doctor"
    prefs, emergency = "/v1/patients/%s/dossier/preferences", "/v1/patients/%s/access/emergency"
    member = "/v1/patients/%s/access/%s/%s"
    dossier, docs = "/v1/patients/%s/dossier", "/v1/patients/%s/documents"
    doc, content_of = docs + "/%s", docs + "/%s/content"
    replace, mask, unmask, release = docs + "/%s/replace", docs + "/%s/mask", docs + "/%s/unmask", docs + "/%s/release"

    defaults = {
        "administrators": [], "authorized": [], "blocked": [], "blockedOrganizations": [],
        "emergency": {"brisDeGlace": True, "centre15": True, "masked": False},
        "preferences": {"maskNewDocuments": False, "notifyEveryAccess": False, "notifyNewDocuments": True},
    }

    def ids_of(reply_body):
        return [d["id"] for d in reply_body["documents"]]

    def stored_id(reply):
        return reply.json()["id"] if reply is not None and reply.status == 201 else UNKNOWN_ID

    # --- getAccess
    checker.case("getAccess of a new dossier -> 200 defaults", ACCESS_GET, send("GET", access % INS2, headers=p2), 200,
                 extra=json_is(lambda b: b == defaults))
    checker.case("getAccess by the patient's legal representative -> 200", ACCESS_GET,
                 send("GET", access % INS2, headers=rep2), 200, extra=json_is(lambda b: b == defaults))
    checker.case("getAccess of another patient's dossier -> 403 access_denied", ACCESS_GET,
                 send("GET", access % INS2, headers=p1), 403, "access_denied")
    checker.case("getAccess without a dossier -> 404 dossier_not_found", ACCESS_GET,
                 send("GET", access % INS3, headers=p3), 404, "dossier_not_found")
    checker.case("getAccess invalid INS -> 400 invalid_ins", ACCESS_GET,
                 send("GET", access % INS_BAD_KEY, headers=p2), 400, "invalid_ins")
    checker.case("getAccess without assertion -> 401 assertion_missing", ACCESS_GET,
                 send("GET", access % INS2), 401, "assertion_missing")

    # --- setAttendingDoctor
    checker.case("setAttendingDoctor -> 200", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, attending_path % INS2, p2, {"rpps": ATTENDING}), 200,
                 extra=json_is(lambda b: b == {**defaults, "attendingDoctor": ATTENDING}))
    checker.case("setAttendingDoctor Luhn-invalid RPPS -> 400 invalid_identifier", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, attending_path % INS2, p2, {"rpps": luhn_broken(DOCTOR)}), 400, "invalid_identifier")
    checker.case("setAttendingDoctor RPPS of 10 digits -> 400 invalid_identifier", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, attending_path % INS2, p2, {"rpps": DOCTOR[:10]}), 400, "invalid_identifier")
    checker.case("setAttendingDoctor without rpps -> 400 malformed_json", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, attending_path % INS2, p2, {}), 400, "malformed_json")
    checker.case("setAttendingDoctor rpps as a number -> 400 malformed_json", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, attending_path % INS2, p2, {"rpps": int(DOCTOR)}), 400, "malformed_json")
    checker.case("setAttendingDoctor body not JSON -> 400 malformed_json", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, attending_path % INS2, p2, b"rpps=" + DOCTOR.encode()), 400, "malformed_json")
    checker.case("setAttendingDoctor body over 64 KiB -> 413 payload_too_large", ATTENDING_PUT,
                 send("PUT", attending_path % INS2, headers={**p2, **json_hdr},
                      body=b" " * (70 * 1024) + json.dumps({"rpps": DOCTOR}).encode()), 413, "payload_too_large")
    checker.case("setAttendingDoctor by the médecin traitant -> 403 access_denied", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, attending_path % INS2, attending, {"rpps": DOCTOR}), 403, "access_denied")
    checker.case("setAttendingDoctor of another patient's dossier -> 403 access_denied", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, attending_path % INS2, p1, {"rpps": DOCTOR}), 403, "access_denied")
    checker.case("setAttendingDoctor without a dossier -> 404 dossier_not_found", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, attending_path % INS3, p3, {"rpps": DOCTOR}), 404, "dossier_not_found")
    checker.case("setAttendingDoctor invalid INS -> 400 invalid_ins", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, attending_path % INS_BAD_KEY, p2, {"rpps": DOCTOR}), 400, "invalid_ins")
    checker.case("setAttendingDoctor without assertion -> 401 assertion_missing", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, attending_path % INS2, {}, {"rpps": DOCTOR}), 401, "assertion_missing")
    checker.case("getAccess by the médecin traitant -> 403 access_denied", ACCESS_GET,
                 send("GET", access % INS2, headers=attending), 403, "access_denied")

    # --- setPreferences
    checker.case("setPreferences one member -> 200, the others unchanged", PREFS_PATCH,
                 send_json(PREFS_PATCH, prefs % INS2, p2, {"notifyEveryAccess": True}), 200,
                 extra=json_is(lambda b: b["preferences"] == {**defaults["preferences"], "notifyEveryAccess": True}
                               and b["attendingDoctor"] == ATTENDING))
    checker.case("setPreferences {} -> 200 unchanged", PREFS_PATCH, send_json(PREFS_PATCH, prefs % INS2, p2, {}), 200,
                 extra=json_is(lambda b: b["preferences"] == {**defaults["preferences"], "notifyEveryAccess": True}))
    checker.case("setPreferences by the legal representative -> 200", PREFS_PATCH,
                 send_json(PREFS_PATCH, prefs % INS2, rep2, {"notifyEveryAccess": False}), 200,
                 extra=json_is(lambda b: b["preferences"] == defaults["preferences"]))
    checker.case("setPreferences member of the wrong type -> 400 malformed_json", PREFS_PATCH,
                 send_json(PREFS_PATCH, prefs % INS2, p2, {"maskNewDocuments": "yes"}), 400, "malformed_json")
    checker.case("setPreferences body an array -> 400 malformed_json", PREFS_PATCH,
                 send_json(PREFS_PATCH, prefs % INS2, p2, []), 400, "malformed_json")
    checker.case("setPreferences body over 64 KiB -> 413 payload_too_large", PREFS_PATCH,
                 send("PATCH", prefs % INS2, headers={**p2, **json_hdr}, body=b" " * (70 * 1024) + b"{}"),
                 413, "payload_too_large")
    checker.case("setPreferences by a professional -> 403 access_denied", PREFS_PATCH,
                 send_json(PREFS_PATCH, prefs % INS2, attending, {"notifyEveryAccess": True}), 403, "access_denied")
    checker.case("setPreferences without a dossier -> 404 dossier_not_found", PREFS_PATCH,
                 send_json(PREFS_PATCH, prefs % INS3, p3, {}), 404, "dossier_not_found")
    checker.case("setPreferences invalid INS -> 400 invalid_ins", PREFS_PATCH,
                 send_json(PREFS_PATCH, prefs % INS_BAD_KEY, p2, {}), 400, "invalid_ins")
    checker.case("setPreferences without assertion -> 401 assertion_missing", PREFS_PATCH,
                 send_json(PREFS_PATCH, prefs % INS2, {}, {}), 401, "assertion_missing")

    # --- setEmergencyAccess
    checker.case("setEmergencyAccess two switches -> 200, the third unchanged", EMERGENCY_PATCH,
                 send_json(EMERGENCY_PATCH, emergency % INS2, p2, {"centre15": False, "masked": True}), 200,
                 extra=json_is(lambda b: b["emergency"] == {"brisDeGlace": True, "centre15": False, "masked": True}))
    checker.case("setEmergencyAccess member of the wrong type -> 400 malformed_json", EMERGENCY_PATCH,
                 send_json(EMERGENCY_PATCH, emergency % INS2, p2, {"brisDeGlace": 1}), 400, "malformed_json")
    checker.case("setEmergencyAccess body not JSON -> 400 malformed_json", EMERGENCY_PATCH,
                 send_json(EMERGENCY_PATCH, emergency % INS2, p2, b"{brisDeGlace: false}"), 400, "malformed_json")
    checker.case("setEmergencyAccess by a professional -> 403 access_denied", EMERGENCY_PATCH,
                 send_json(EMERGENCY_PATCH, emergency % INS2, pro(STRANGER, mode="bris_de_glace"), {"masked": True}),
                 403, "access_denied")
    checker.case("setEmergencyAccess without a dossier -> 404 dossier_not_found", EMERGENCY_PATCH,
                 send_json(EMERGENCY_PATCH, emergency % INS3, p3, {}), 404, "dossier_not_found")
    checker.case("setEmergencyAccess invalid INS -> 400 invalid_ins", EMERGENCY_PATCH,
                 send_json(EMERGENCY_PATCH, emergency % "12345", p2, {}), 400, "invalid_ins")
    checker.case("setEmergencyAccess without assertion -> 401 assertion_missing", EMERGENCY_PATCH,
                 send_json(EMERGENCY_PATCH, emergency % INS2, {}, {}), 401, "assertion_missing")

    # --- addAccessMember / removeAccessMember
    checker.case("addAccessMember authorized -> 200", MEMBER_PUT, send("PUT", member % (INS2, "authorized", DOCTOR), headers=p2),
                 200, extra=json_is(lambda b: b["authorized"] == [DOCTOR]))
    checker.case("addAccessMember authorized again -> 200 unchanged", MEMBER_PUT,
                 send("PUT", member % (INS2, "authorized", DOCTOR), headers=p2), 200,
                 extra=json_is(lambda b: b["authorized"] == [DOCTOR]))
    checker.case("addAccessMember authorized a pharmacist -> 200 sorted", MEMBER_PUT,
                 send("PUT", member % (INS2, "authorized", PHARMACIST), headers=p2), 200,
                 extra=json_is(lambda b: b["authorized"] == sorted([DOCTOR, PHARMACIST])))
    checker.case("addAccessMember administrators -> 200", MEMBER_PUT,
                 send("PUT", member % (INS2, "administrators", ADMINISTRATOR), headers=p2), 200,
                 extra=json_is(lambda b: b["administrators"] == [ADMINISTRATOR]))
    checker.case("addAccessMember blocked organisation (FINESS) -> 200", MEMBER_PUT,
                 send("PUT", member % (INS2, "blocked", FINESS), headers=p2), 200,
                 extra=json_is(lambda b: b["blockedOrganizations"] == [FINESS] and b["blocked"] == []))
    checker.case("addAccessMember blocked a lower-case Corsican FINESS -> 200, kept upper-case", MEMBER_PUT,
                 send("PUT", member % (INS2, "blocked", FINESS_CORSICA), headers=p2), 200,
                 extra=json_is(lambda b: b["blockedOrganizations"] == sorted([FINESS, FINESS_CORSICA.upper()])))
    checker.case("listDocuments by the authorised doctor for the blocked Corsican organisation -> 403 access_denied",
                 DOCS_GET, send("GET", docs % INS2, headers=pro(DOCTOR, organization=FINESS_CORSICA.upper())),
                 403, "access_denied")
    checker.case("listDocuments by the authorised doctor for the blocked Corsican organisation, written 2a... -> "
                 "403 access_denied", DOCS_GET,
                 send("GET", docs % INS2, headers=pro(DOCTOR, organization=FINESS_CORSICA)), 403, "access_denied")
    checker.case("removeAccessMember blocked a lower-case Corsican FINESS -> 200", MEMBER_DELETE,
                 send("DELETE", member % (INS2, "blocked", FINESS_CORSICA), headers=p2), 200,
                 extra=json_is(lambda b: b["blockedOrganizations"] == [FINESS]))
    checker.case("addAccessMember blocked the médecin traitant -> 403 access_denied", MEMBER_PUT,
                 send("PUT", member % (INS2, "blocked", ATTENDING), headers=p2), 403, "access_denied")
    checker.case("addAccessMember blocked an administrator -> 403 access_denied", MEMBER_PUT,
                 send("PUT", member % (INS2, "blocked", ADMINISTRATOR), headers=p2), 403, "access_denied")
    for label, lst, bad in [
        ("authorized Luhn-invalid RPPS", "authorized", luhn_broken(DOCTOR)),
        ("authorized a FINESS (only blocked takes one)", "authorized", FINESS),
        ("administrators not a number", "administrators", "dr-house"),
        ("blocked Luhn-invalid FINESS", "blocked", luhn_broken(FINESS)),
        ("blocked 10 digits", "blocked", DOCTOR[:10]),
    ]:
        checker.case("addAccessMember %s -> 400 invalid_identifier" % label, MEMBER_PUT,
                     send("PUT", member % (INS2, lst, bad), headers=p2), 400, "invalid_identifier")
    checker.case("addAccessMember by an authorised professional -> 403 access_denied", MEMBER_PUT,
                 send("PUT", member % (INS2, "authorized", STRANGER), headers=doctor), 403, "access_denied")
    checker.case("addAccessMember by the médecin traitant -> 403 access_denied", MEMBER_PUT,
                 send("PUT", member % (INS2, "administrators", ATTENDING), headers=attending), 403, "access_denied")
    checker.case("addAccessMember of another patient's dossier -> 403 access_denied", MEMBER_PUT,
                 send("PUT", member % (INS2, "authorized", STRANGER), headers=p1), 403, "access_denied")
    checker.case("addAccessMember without a dossier -> 404 dossier_not_found", MEMBER_PUT,
                 send("PUT", member % (INS3, "authorized", DOCTOR), headers=p3), 404, "dossier_not_found")
    checker.case("addAccessMember invalid INS -> 400 invalid_ins", MEMBER_PUT,
                 send("PUT", member % (INS_BAD_KEY, "authorized", DOCTOR), headers=p2), 400, "invalid_ins")
    checker.case("addAccessMember without assertion -> 401 assertion_missing", MEMBER_PUT,
                 send("PUT", member % (INS2, "authorized", DOCTOR)), 401, "assertion_missing")
    checker.case("removeAccessMember blocked organisation -> 200", MEMBER_DELETE,
                 send("DELETE", member % (INS2, "blocked", FINESS), headers=p2), 200,
                 extra=json_is(lambda b: b["blockedOrganizations"] == []))
    checker.case("removeAccessMember not a member -> 200 unchanged", MEMBER_DELETE,
                 send("DELETE", member % (INS2, "authorized", STRANGER), headers=p2), 200,
                 extra=json_is(lambda b: b["authorized"] == sorted([DOCTOR, PHARMACIST])))
    checker.case("removeAccessMember Luhn-invalid RPPS -> 400 invalid_identifier", MEMBER_DELETE,
                 send("DELETE", member % (INS2, "administrators", luhn_broken(ADMINISTRATOR)), headers=p2), 400,
                 "invalid_identifier")
    checker.case("removeAccessMember by a professional -> 403 access_denied", MEMBER_DELETE,
                 send("DELETE", member % (INS2, "blocked", DOCTOR), headers=doctor), 403, "access_denied")
    checker.case("removeAccessMember without a dossier -> 404 dossier_not_found", MEMBER_DELETE,
                 send("DELETE", member % (INS3, "authorized", DOCTOR), headers=p3), 404, "dossier_not_found")
    checker.case("removeAccessMember invalid INS -> 400 invalid_ins", MEMBER_DELETE,
                 send("DELETE", member % ("1" * 15, "authorized", DOCTOR), headers=p2), 400, "invalid_ins")
    checker.case("removeAccessMember without assertion -> 401 assertion_missing", MEMBER_DELETE,
                 send("DELETE", member % (INS2, "authorized", DOCTOR)), 401, "assertion_missing")
    checker.case("getAccess after the changes -> 200", ACCESS_GET, send("GET", access % INS2, headers=p2), 200,
                 extra=json_is(lambda b: b == {
                     "attendingDoctor": ATTENDING, "administrators": [ADMINISTRATOR],
                     "authorized": sorted([DOCTOR, PHARMACIST]), "blocked": [], "blockedOrganizations": [],
                     "emergency": {"brisDeGlace": True, "centre15": False, "masked": True},
                     "preferences": defaults["preferences"]}))

    # --- professionals: the patient's documents, read by those the patient let in
    stranger, stranger_bdg, stranger_c15 = pro(STRANGER), pro(STRANGER, mode="bris_de_glace"), pro(STRANGER, mode="centre_15")
    bio_content = "Glycémie 0,95 g/L\n".encode("utf-8")
    bio_meta = {"Coffre-Class": "BIOLOGIE", "Coffre-Title": urllib.parse.quote("Glycémie", safe=""),
                "Coffre-Type-Code": "2345-7", "Coffre-Care-Date": "2024-05-02", "Content-Type": "text/plain"}
    bio = stored_id(checker.case(
        "storeDocument by patient 2 (lab results) -> 201", DOCS_POST,
        send("POST", docs % INS2, headers={**p2, **bio_meta}, body=bio_content), 201,
        extra=json_is(lambda b: b["masked"] is False and b["author"] == {"role": "patient", "id": INS2})))
    report = stored_id(checker.case(
        "storeDocument by patient 2 (report) -> 201", DOCS_POST,
        send("POST", docs % INS2, headers={**p2, "Coffre-Class": "CPT_REND"}, body=b"compte rendu"), 201))

    checker.case("getDossier by a professional the patient did not authorise -> 403 access_denied", DOSSIER_GET,
                 send("GET", dossier % INS2, headers=stranger), 403, "access_denied")
    checker.case("listDocuments by a professional the patient did not authorise -> 403 access_denied", DOCS_GET,
                 send("GET", docs % INS2, headers=stranger), 403, "access_denied")
    checker.case("getDossier by the authorised doctor -> 200", DOSSIER_GET, send("GET", dossier % INS2, headers=doctor), 200,
                 extra=json_is(lambda b: b["ins"] == INS2 and b["documentCount"] == 2))
    checker.case("listDocuments by the authorised doctor -> 200, both documents", DOCS_GET,
                 send("GET", docs % INS2, headers=doctor), 200, extra=json_is(lambda b: ids_of(b) == [bio, report]))
    checker.case("getDocument by the authorised doctor -> 200", DOC_GET, send("GET", doc % (INS2, bio), headers=doctor), 200,
                 extra=json_is(lambda b: b["id"] == bio and b["title"] == "Glycémie"))
    checker.case("getDocumentContent by the authorised doctor -> 200", CONTENT_GET,
                 send("GET", content_of % (INS2, bio), headers=doctor), 200,
                 extra=lambda r: [] if r.body == bio_content else ["content differs"])
    checker.case("listDocuments by the authorised pharmacist -> 200, lab results only (matrix)", DOCS_GET,
                 send("GET", docs % INS2, headers=pharmacist), 200, extra=json_is(lambda b: ids_of(b) == [bio]))
    checker.case("getDocument report by the pharmacist -> 403 access_denied (matrix)", DOC_GET,
                 send("GET", doc % (INS2, report), headers=pharmacist), 403, "access_denied")
    checker.case("getDocumentContent report by the pharmacist -> 403 access_denied (matrix)", CONTENT_GET,
                 send("GET", content_of % (INS2, report), headers=pharmacist), 403, "access_denied")
    checker.case("listDocuments by an administrator, not authorised -> 200", DOCS_GET,
                 send("GET", docs % INS2, headers=administrator), 200, extra=json_is(lambda b: ids_of(b) == [bio, report]))

    # --- documents a professional stores, hidden from the patient, released
    hidden = stored_id(checker.case(
        "storeDocument by the authorised doctor, hidden from the patient -> 201", DOCS_POST,
        send("POST", docs % INS2, headers={**doctor, "Coffre-Class": "CPT_REND", "Coffre-Hidden-From": " patient , "},
             body=b"annonce"), 201,
        extra=json_is(lambda b: b["author"] == {"role": "professional", "id": DOCTOR, "profession": "10"}
                      and b["hiddenFromPatient"] is True and b["hiddenFromRepresentatives"] is False
                      and "releasedAt" not in b)))
    prescription = stored_id(checker.case(
        "storeDocument by the authorised doctor, hidden from representatives -> 201", DOCS_POST,
        send("POST", docs % INS2, headers={**doctor, "Coffre-Class": "ORD_SOIN", "Coffre-Hidden-From": "representatives"},
             body=b"ordonnance"), 201,
        extra=json_is(lambda b: b["hiddenFromPatient"] is False and b["hiddenFromRepresentatives"] is True)))
    checker.case("storeDocument by a professional, Coffre-Hidden-From with an unknown flag -> 400 invalid_metadata",
                 DOCS_POST, send("POST", docs % INS2, headers={**doctor, "Coffre-Class": "BIOLOGIE",
                                                                "Coffre-Hidden-From": "patient,doctors"}, body=b"x"),
                 400, "invalid_metadata")
    checker.case("storeDocument by patient 2 with Coffre-Hidden-From -> 400 invalid_metadata", DOCS_POST,
                 send("POST", docs % INS2, headers={**p2, "Coffre-Class": "BIOLOGIE", "Coffre-Hidden-From": "patient"},
                      body=b"x"), 400, "invalid_metadata")
    checker.case("storeDocument by a professional the patient did not authorise -> 403 access_denied", DOCS_POST,
                 send("POST", docs % INS2, headers={**stranger, "Coffre-Class": "BIOLOGIE"}, body=b"x"), 403, "access_denied")
    checker.case("listDocuments by patient 2: the hidden document is left out -> 200", DOCS_GET,
                 send("GET", docs % INS2, headers=p2), 200, extra=json_is(lambda b: ids_of(b) == [bio, report, prescription]))
    checker.case("listDocuments by the representative: hidden ones left out -> 200", DOCS_GET,
                 send("GET", docs % INS2, headers=rep2), 200, extra=json_is(lambda b: ids_of(b) == [bio, report]))
    checker.case("getDocument hidden from the patient, by the patient -> 403 access_denied", DOC_GET,
                 send("GET", doc % (INS2, hidden), headers=p2), 403, "access_denied")
    checker.case("getDocumentContent hidden from the patient, by the patient -> 403 access_denied", CONTENT_GET,
                 send("GET", content_of % (INS2, hidden), headers=p2), 403, "access_denied")
    checker.case("getDocument hidden from the patient, by the médecin traitant -> 200", DOC_GET,
                 send("GET", doc % (INS2, hidden), headers=attending), 200)
    checker.case("releaseDocument by the patient -> 403 access_denied", RELEASE,
                 send("POST", release % (INS2, hidden), headers=p2), 403, "access_denied")
    checker.case("releaseDocument by an authorised professional, not the author -> 403 access_denied", RELEASE,
                 send("POST", release % (INS2, hidden), headers=pharmacist), 403, "access_denied")
    checker.case("releaseDocument not hidden from the patient, by the médecin traitant -> 409 document_conflict", RELEASE,
                 send("POST", release % (INS2, bio), headers=attending), 409, "document_conflict")
    checker.case("releaseDocument not hidden from the patient, by its author -> 409 document_conflict", RELEASE,
                 send("POST", release % (INS2, prescription), headers=doctor), 409, "document_conflict")
    released = checker.case("releaseDocument by its author -> 200 with releasedAt", RELEASE,
                            send("POST", release % (INS2, hidden), headers=doctor), 200,
                            extra=json_is(lambda b: b["id"] == hidden and b["hiddenFromPatient"] is True
                                          and "releasedAt" in b and b["status"] == "current"))
    released_at = released.json().get("releasedAt") if released is not None and released.status == 200 else None
    checker.case("releaseDocument again, by the médecin traitant -> 200, releasedAt unchanged", RELEASE,
                 send("POST", release % (INS2, hidden), headers=attending), 200,
                 extra=json_is(lambda b: b.get("releasedAt") == released_at))
    checker.case("getDocument released, by the patient -> 200", DOC_GET, send("GET", doc % (INS2, hidden), headers=p2), 200,
                 extra=json_is(lambda b: b.get("releasedAt") == released_at))
    checker.case("releaseDocument unknown id -> 404 document_not_found", RELEASE,
                 send("POST", release % (INS2, UNKNOWN_ID), headers=doctor), 404, "document_not_found")
    checker.case("releaseDocument malformed id -> 400 invalid_identifier", RELEASE,
                 send("POST", release % (INS2, "Z" + hidden[1:]), headers=doctor), 400, "invalid_identifier")
    checker.case("releaseDocument without a dossier -> 404 dossier_not_found", RELEASE,
                 send("POST", release % (INS3, hidden), headers=doctor), 404, "dossier_not_found")
    checker.case("releaseDocument invalid INS -> 400 invalid_ins", RELEASE,
                 send("POST", release % (INS_BAD_KEY, hidden), headers=doctor), 400, "invalid_ins")
    checker.case("releaseDocument without assertion -> 401 assertion_missing", RELEASE,
                 send("POST", release % (INS2, hidden)), 401, "assertion_missing")

    # --- masking, and the emergency switches
    checker.case("maskDocument by the patient -> 200 masked", MASK, send("POST", mask % (INS2, bio), headers=p2), 200,
                 extra=json_is(lambda b: b["id"] == bio and b["masked"] is True))
    checker.case("maskDocument again -> 200 still masked", MASK, send("POST", mask % (INS2, bio), headers=p2), 200,
                 extra=json_is(lambda b: b["masked"] is True))
    checker.case("listDocuments by the authorised doctor: masked left out -> 200", DOCS_GET,
                 send("GET", docs % INS2, headers=doctor), 200,
                 extra=json_is(lambda b: bio not in ids_of(b) and report in ids_of(b)))
    checker.case("getDocument masked, by the authorised doctor -> 403 access_denied", DOC_GET,
                 send("GET", doc % (INS2, bio), headers=doctor), 403, "access_denied")
    checker.case("getDocument masked, by the médecin traitant -> 200", DOC_GET,
                 send("GET", doc % (INS2, bio), headers=attending), 200, extra=json_is(lambda b: b["masked"] is True))
    checker.case("getDocumentContent masked, by an administrator -> 200", CONTENT_GET,
                 send("GET", content_of % (INS2, bio), headers=administrator), 200)
    checker.case("getDocument masked, in bris_de_glace with masked shown in emergencies -> 200", DOC_GET,
                 send("GET", doc % (INS2, bio), headers=stranger_bdg), 200)
    checker.case("listDocuments in centre_15 while the patient refuses it -> 403 access_denied", DOCS_GET,
                 send("GET", docs % INS2, headers=stranger_c15), 403, "access_denied")
    checker.case("setEmergencyAccess allow centre_15, hide masked documents -> 200", EMERGENCY_PATCH,
                 send_json(EMERGENCY_PATCH, emergency % INS2, p2, {"centre15": True, "masked": False}), 200,
                 extra=json_is(lambda b: b["emergency"] == defaults["emergency"]))
    checker.case("listDocuments in centre_15, allowed -> 200 without the masked one", DOCS_GET,
                 send("GET", docs % INS2, headers=stranger_c15), 200,
                 extra=json_is(lambda b: bio not in ids_of(b) and report in ids_of(b)))
    checker.case("getDocument masked, in bris_de_glace, masked no longer shown -> 403 access_denied", DOC_GET,
                 send("GET", doc % (INS2, bio), headers=stranger_bdg), 403, "access_denied")
    checker.case("setEmergencyAccess refuse bris_de_glace -> 200", EMERGENCY_PATCH,
                 send_json(EMERGENCY_PATCH, emergency % INS2, p2, {"brisDeGlace": False}), 200,
                 extra=json_is(lambda b: b["emergency"]["brisDeGlace"] is False))
    checker.case("getDossier in bris_de_glace while the patient refuses it -> 403 access_denied", DOSSIER_GET,
                 send("GET", dossier % INS2, headers=stranger_bdg), 403, "access_denied")
    checker.case("setEmergencyAccess allow bris_de_glace again -> 200", EMERGENCY_PATCH,
                 send_json(EMERGENCY_PATCH, emergency % INS2, p2, {"brisDeGlace": True}), 200,
                 extra=json_is(lambda b: b["emergency"] == defaults["emergency"]))
    checker.case("maskDocument by the médecin traitant -> 403 access_denied", MASK,
                 send("POST", mask % (INS2, report), headers=attending), 403, "access_denied")
    checker.case("maskDocument by its professional author -> 403 access_denied", MASK,
                 send("POST", mask % (INS2, prescription), headers=doctor), 403, "access_denied")
    checker.case("maskDocument unknown id -> 404 document_not_found", MASK,
                 send("POST", mask % (INS2, UNKNOWN_ID), headers=p2), 404, "document_not_found")
    checker.case("maskDocument malformed id -> 400 invalid_identifier", MASK,
                 send("POST", mask % (INS2, "x" * 32), headers=p2), 400, "invalid_identifier")
    checker.case("maskDocument without a dossier -> 404 dossier_not_found", MASK,
                 send("POST", mask % (INS3, bio), headers=p3), 404, "dossier_not_found")
    checker.case("maskDocument of another patient's dossier -> 403 access_denied", MASK,
                 send("POST", mask % (INS2, bio), headers=p1), 403, "access_denied")
    checker.case("maskDocument invalid INS -> 400 invalid_ins", MASK,
                 send("POST", mask % (INS_BAD_KEY, bio), headers=p2), 400, "invalid_ins")
    checker.case("maskDocument without assertion -> 401 assertion_missing", MASK,
                 send("POST", mask % (INS2, bio)), 401, "assertion_missing")
    checker.case("unmaskDocument by the patient -> 200 unmasked", UNMASK, send("POST", unmask % (INS2, bio), headers=p2), 200,
                 extra=json_is(lambda b: b["id"] == bio and b["masked"] is False))
    checker.case("unmaskDocument not masked, by the representative -> 200", UNMASK,
                 send("POST", unmask % (INS2, report), headers=rep2), 200, extra=json_is(lambda b: b["masked"] is False))
    checker.case("getDocument unmasked, by the authorised doctor -> 200", DOC_GET,
                 send("GET", doc % (INS2, bio), headers=doctor), 200)
    checker.case("unmaskDocument by a professional -> 403 access_denied", UNMASK,
                 send("POST", unmask % (INS2, bio), headers=administrator), 403, "access_denied")
    checker.case("unmaskDocument hidden from the representative, by the representative -> 403 access_denied", UNMASK,
                 send("POST", unmask % (INS2, prescription), headers=rep2), 403, "access_denied")
    checker.case("unmaskDocument unknown id -> 404 document_not_found", UNMASK,
                 send("POST", unmask % (INS2, UNKNOWN_ID), headers=p2), 404, "document_not_found")
    checker.case("unmaskDocument malformed id -> 400 invalid_identifier", UNMASK,
                 send("POST", unmask % (INS2, bio[:31]), headers=p2), 400, "invalid_identifier")
    checker.case("unmaskDocument without a dossier -> 404 dossier_not_found", UNMASK,
                 send("POST", unmask % (INS3, bio), headers=p3), 404, "dossier_not_found")
    checker.case("unmaskDocument invalid INS -> 400 invalid_ins", UNMASK,
                 send("POST", unmask % (INS_BAD_KEY, bio), headers=p2), 400, "invalid_ins")
    checker.case("unmaskDocument without assertion -> 401 assertion_missing", UNMASK,
                 send("POST", unmask % (INS2, bio)), 401, "assertion_missing")
    checker.case("setPreferences maskNewDocuments -> 200", PREFS_PATCH,
                 send_json(PREFS_PATCH, prefs % INS2, p2, {"maskNewDocuments": True}), 200,
                 extra=json_is(lambda b: b["preferences"]["maskNewDocuments"] is True))
    auto_masked = stored_id(checker.case(
        "storeDocument with maskNewDocuments on -> 201 masked", DOCS_POST,
        send("POST", docs % INS2, headers={**p2, "Coffre-Class": "DOC_ADM"}, body=b"attestation"), 201,
        extra=json_is(lambda b: b["masked"] is True)))
    checker.case("getDocument masked by the preference, by the authorised doctor -> 403 access_denied", DOC_GET,
                 send("GET", doc % (INS2, auto_masked), headers=doctor), 403, "access_denied")
    checker.case("setPreferences maskNewDocuments off -> 200", PREFS_PATCH,
                 send_json(PREFS_PATCH, prefs % INS2, p2, {"maskNewDocuments": False}), 200,
                 extra=json_is(lambda b: b["preferences"] == defaults["preferences"]))

    # --- new versions
    bio2_content = "Glycémie 1,02 g/L\n".encode("utf-8")
    bio2 = stored_id(checker.case(
        "replaceDocument by its author without metadata -> 201, metadata carried over", REPLACE,
        send("POST", replace % (INS2, bio), headers=p2, body=bio2_content), 201,
        extra=json_is(lambda b: b["replaces"] == bio and b["status"] == "current" and b["class"] == "BIOLOGIE"
                      and b["title"] == "Glycémie" and b["typeCode"] == "2345-7" and b["careDate"] == "2024-05-02"
                      and b["mediaType"] == "text/plain" and b["size"] == len(bio2_content)
                      and b["sha256"] == hashlib.sha256(bio2_content).hexdigest() and b["masked"] is False
                      and b["author"] == {"role": "patient", "id": INS2})))
    checker.case("getDocument of the replaced version -> 200 superseded", DOC_GET,
                 send("GET", doc % (INS2, bio), headers=p2), 200, extra=json_is(lambda b: b["status"] == "superseded"))
    checker.case("replaceDocument of a superseded version -> 409 document_conflict", REPLACE,
                 send("POST", replace % (INS2, bio), headers=p2, body=b"again"), 409, "document_conflict")
    bio3 = stored_id(checker.case(
        "replaceDocument with new metadata, chunked -> 201", REPLACE,
        send("POST", replace % (INS2, bio2), headers={**p2, "Coffre-Class": "SYNTHESE", "Coffre-Title": "Synth%C3%A8se",
                                                      "Content-Type": "application/pdf"},
             body=b"%PDF-1.7" + os.urandom(30_000), chunked=True), 201,
        extra=json_is(lambda b: b["replaces"] == bio2 and b["class"] == "SYNTHESE" and b["classCode"] == "11"
                      and b["title"] == "Synthèse" and b["typeCode"] == "2345-7" and b["mediaType"] == "application/pdf"
                      and b["size"] == 30_008)))
    checker.case("listDocuments ?allVersions=true: the three versions -> 200", DOCS_GET,
                 send("GET", docs % INS2 + "?allVersions=true", headers=p2), 200,
                 extra=json_is(lambda b: [bio, bio2, bio3] == [i for i in ids_of(b) if i in (bio, bio2, bio3)]))
    checker.case("replaceDocument of the patient's document by a professional -> 403 access_denied", REPLACE,
                 send("POST", replace % (INS2, bio3), headers=attending, body=b"x"), 403, "access_denied")
    checker.case("replaceDocument of a professional's document by the patient -> 403 access_denied", REPLACE,
                 send("POST", replace % (INS2, hidden), headers=p2, body=b"x"), 403, "access_denied")
    checker.case("replaceDocument with Coffre-Hidden-From, by the patient -> 400 invalid_metadata", REPLACE,
                 send("POST", replace % (INS2, bio3), headers={**p2, "Coffre-Hidden-From": "representatives"}, body=b"x"),
                 400, "invalid_metadata")
    checker.case("replaceDocument unknown Coffre-Class -> 400 unknown_class", REPLACE,
                 send("POST", replace % (INS2, bio3), headers={**p2, "Coffre-Class": "NOPE"}, body=b"x"), 400, "unknown_class")
    checker.case("replaceDocument impossible Coffre-Care-Date -> 400 invalid_metadata", REPLACE,
                 send("POST", replace % (INS2, bio3), headers={**p2, "Coffre-Care-Date": "2024-13-01"}, body=b"x"),
                 400, "invalid_metadata")
    checker.case("replaceDocument over the size limit -> 413 payload_too_large", REPLACE,
                 send("POST", replace % (INS2, bio3), headers=p2, body=os.urandom(MAX_DOCUMENT_BYTES + 1)),
                 413, "payload_too_large")
    checker.case("replaceDocument cut short of Content-Length -> 400 upload_incomplete", REPLACE,
                 send("POST", replace % (INS2, bio3), headers=p2, body=b"0123456789", content_length=100, half_close=True),
                 400, "upload_incomplete")
    checker.case("replaceDocument unknown id -> 404 document_not_found", REPLACE,
                 send("POST", replace % (INS2, UNKNOWN_ID), headers=p2, body=b"x"), 404, "document_not_found")
    checker.case("replaceDocument malformed id -> 400 invalid_identifier", REPLACE,
                 send("POST", replace % (INS2, "abc"), headers=p2, body=b"x"), 400, "invalid_identifier")
    checker.case("replaceDocument without a dossier -> 404 dossier_not_found", REPLACE,
                 send("POST", replace % (INS3, bio3), headers=p3, body=b"x"), 404, "dossier_not_found")
    checker.case("replaceDocument in another patient's dossier -> 403 access_denied", REPLACE,
                 send("POST", replace % (INS2, bio3), headers=p1, body=b"x"), 403, "access_denied")
    checker.case("replaceDocument invalid INS -> 400 invalid_ins", REPLACE,
                 send("POST", replace % (INS_BAD_KEY, bio3), headers=p2, body=b"x"), 400, "invalid_ins")
    checker.case("replaceDocument without assertion -> 401 assertion_missing", REPLACE,
                 send("POST", replace % (INS2, bio3), body=b"x"), 401, "assertion_missing")
    checker.case("listDocuments: refused replacements stored nothing -> 200", DOCS_GET,
                 send("GET", docs % INS2 + "?allVersions=true", headers=p2), 200,
                 extra=json_is(lambda b: len([d for d in b["documents"] if d.get("replaces")]) == 2))
    prescription2 = stored_id(checker.case(
        "replaceDocument by its professional author -> 201, flags carried over", REPLACE,
        send("POST", replace % (INS2, prescription), headers=doctor, body=b"ordonnance v2"), 201,
        extra=json_is(lambda b: b["replaces"] == prescription and b["class"] == "ORD_SOIN"
                      and b["hiddenFromRepresentatives"] is True
                      and b["author"] == {"role": "professional", "id": DOCTOR, "profession": "10"})))
    prescription3 = stored_id(checker.case("replaceDocument by a professional, Coffre-Hidden-From replaces the flags -> 201", REPLACE,
                 send("POST", replace % (INS2, prescription2), headers={**doctor, "Coffre-Hidden-From": ""}, body=b"v3"), 201,
                 extra=json_is(lambda b: b["hiddenFromRepresentatives"] is False and b["hiddenFromPatient"] is False)))

    # --- deletion
    checker.case("deleteDocument by its author -> 200 deleted", DOC_DELETE, send("DELETE", doc % (INS2, bio3), headers=p2), 200,
                 extra=json_is(lambda b: b["id"] == bio3 and b["status"] == "deleted"))
    checker.case("deleteDocument of a superseded version -> 409 document_conflict", DOC_DELETE,
                 send("DELETE", doc % (INS2, bio2), headers=p2), 409, "document_conflict")
    checker.case("deleteDocument again, by the patient (its author) -> 409 document_conflict (deleted)", DOC_DELETE,
                 send("DELETE", doc % (INS2, bio3), headers=p2), 409, "document_conflict")
    checker.case("getDocument deleted, by the patient -> 200 status deleted", DOC_GET,
                 send("GET", doc % (INS2, bio3), headers=p2), 200, extra=json_is(lambda b: b["status"] == "deleted"))
    checker.case("getDocumentContent deleted, by the patient -> 403 access_denied", CONTENT_GET,
                 send("GET", content_of % (INS2, bio3), headers=p2), 403, "access_denied")
    checker.case("replaceDocument of a deleted version, by the patient (its author) -> 409 document_conflict", REPLACE,
                 send("POST", replace % (INS2, bio3), headers=p2, body=b"x"), 409, "document_conflict")
    checker.case("maskDocument deleted -> 403 access_denied", MASK,
                 send("POST", mask % (INS2, bio3), headers=p2), 403, "access_denied")
    checker.case("deleteDocument of the patient's document by the médecin traitant -> 403 access_denied", DOC_DELETE,
                 send("DELETE", doc % (INS2, report), headers=attending), 403, "access_denied")
    checker.case("deleteDocument of a professional's document by the patient -> 403 access_denied", DOC_DELETE,
                 send("DELETE", doc % (INS2, hidden), headers=p2), 403, "access_denied")
    checker.case("deleteDocument by its professional author -> 200 deleted", DOC_DELETE,
                 send("DELETE", doc % (INS2, hidden), headers=doctor), 200, extra=json_is(lambda b: b["status"] == "deleted"))
    checker.case("deleteDocument deleted, by its professional author -> 409 document_conflict", DOC_DELETE,
                 send("DELETE", doc % (INS2, hidden), headers=doctor), 409, "document_conflict")
    checker.case("replaceDocument deleted, by its professional author -> 409 document_conflict", REPLACE,
                 send("POST", replace % (INS2, hidden), headers=doctor, body=b"x"), 409, "document_conflict")
    checker.case("getDocumentContent deleted, by its professional author -> 404 document_not_found", CONTENT_GET,
                 send("GET", content_of % (INS2, hidden), headers=doctor), 404, "document_not_found")
    checker.case("deleteDocument unknown id -> 404 document_not_found", DOC_DELETE,
                 send("DELETE", doc % (INS2, UNKNOWN_ID), headers=p2), 404, "document_not_found")
    checker.case("deleteDocument malformed id -> 400 invalid_identifier", DOC_DELETE,
                 send("DELETE", doc % (INS2, "g" * 32), headers=p2), 400, "invalid_identifier")
    checker.case("deleteDocument without a dossier -> 404 dossier_not_found", DOC_DELETE,
                 send("DELETE", doc % (INS3, UNKNOWN_ID), headers=p3), 404, "dossier_not_found")
    checker.case("deleteDocument in another patient's dossier -> 403 access_denied", DOC_DELETE,
                 send("DELETE", doc % (INS2, report), headers=p1), 403, "access_denied")
    checker.case("deleteDocument invalid INS -> 400 invalid_ins", DOC_DELETE,
                 send("DELETE", doc % (INS_BAD_KEY, report), headers=p2), 400, "invalid_ins")
    checker.case("deleteDocument without assertion -> 401 assertion_missing", DOC_DELETE,
                 send("DELETE", doc % (INS2, report)), 401, "assertion_missing")
    checker.case("listDocuments after deletions: current versions only -> 200", DOCS_GET,
                 send("GET", docs % INS2, headers=p2), 200,
                 extra=json_is(lambda b: bio3 not in ids_of(b) and hidden not in ids_of(b) and report in ids_of(b)
                               and all(d["status"] == "current" for d in b["documents"])))
    checker.case("getDossier counts current documents -> 200", DOSSIER_GET, send("GET", dossier % INS2, headers=p2), 200,
                 extra=json_is(lambda b: b["documentCount"] == 3))  # report, prescription v3, auto_masked

    # --- blocking: the doctor the patient authorised, then blocked
    checker.case("addAccessMember blocked the authorised doctor -> 200", MEMBER_PUT,
                 send("PUT", member % (INS2, "blocked", DOCTOR), headers=p2), 200,
                 extra=json_is(lambda b: b["blocked"] == [DOCTOR] and DOCTOR in b["authorized"]))
    checker.case("listDocuments by the blocked doctor -> 403 access_denied", DOCS_GET,
                 send("GET", docs % INS2, headers=doctor), 403, "access_denied")
    checker.case("getDocument by the blocked doctor -> 403 access_denied", DOC_GET,
                 send("GET", doc % (INS2, report), headers=doctor), 403, "access_denied")
    checker.case("getDocumentContent of their own document by the blocked doctor -> 403 access_denied", CONTENT_GET,
                 send("GET", content_of % (INS2, prescription3), headers=doctor), 403, "access_denied")
    checker.case("getDossier by the blocked doctor in bris_de_glace -> 403 access_denied", DOSSIER_GET,
                 send("GET", dossier % INS2, headers=pro(DOCTOR, mode="bris_de_glace")), 403, "access_denied")
    checker.case("storeDocument by the blocked doctor -> 403 access_denied", DOCS_POST,
                 send("POST", docs % INS2, headers={**doctor, "Coffre-Class": "BIOLOGIE"}, body=b"x"), 403, "access_denied")
    checker.case("removeAccessMember blocked the doctor -> 200", MEMBER_DELETE,
                 send("DELETE", member % (INS2, "blocked", DOCTOR), headers=p2), 200,
                 extra=json_is(lambda b: b["blocked"] == []))
    checker.case("listDocuments by the unblocked doctor -> 200", DOCS_GET, send("GET", docs % INS2, headers=doctor), 200)
    checker.case("addAccessMember blocked the doctor's organisation -> 200", MEMBER_PUT,
                 send("PUT", member % (INS2, "blocked", FINESS), headers=p2), 200,
                 extra=json_is(lambda b: b["blockedOrganizations"] == [FINESS]))
    checker.case("listDocuments by the doctor acting for the blocked organisation -> 403 access_denied", DOCS_GET,
                 send("GET", docs % INS2, headers=pro(DOCTOR, organization=FINESS)), 403, "access_denied")
    checker.case("listDocuments by the doctor acting for no organisation -> 200", DOCS_GET,
                 send("GET", docs % INS2, headers=doctor), 200)
    checker.case("listDocuments by the médecin traitant of the blocked organisation -> 200", DOCS_GET,
                 send("GET", docs % INS2, headers=pro(ATTENDING, organization=FINESS)), 200)
    checker.case("removeAccessMember blocked organisation -> 200", MEMBER_DELETE,
                 send("DELETE", member % (INS2, "blocked", FINESS), headers=p2), 200,
                 extra=json_is(lambda b: b["blockedOrganizations"] == []))
    checker.case("addAccessMember blocked a stranger -> 200", MEMBER_PUT,
                 send("PUT", member % (INS2, "blocked", STRANGER), headers=p2), 200,
                 extra=json_is(lambda b: b["blocked"] == [STRANGER]))
    checker.case("setAttendingDoctor a blocked professional lifts the block -> 200", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, attending_path % INS2, p2, {"rpps": STRANGER}), 200,
                 extra=json_is(lambda b: b["attendingDoctor"] == STRANGER and b["blocked"] == []))
    checker.case("listDocuments by the former médecin traitant, not authorised -> 403 access_denied", DOCS_GET,
                 send("GET", docs % INS2, headers=attending), 403, "access_denied")
    checker.case("removeAccessMember authorized the doctor -> 200", MEMBER_DELETE,
                 send("DELETE", member % (INS2, "authorized", DOCTOR), headers=p2), 200,
                 extra=json_is(lambda b: b["authorized"] == [PHARMACIST]))
    checker.case("listDocuments by the doctor no longer authorised -> 403 access_denied", DOCS_GET,
                 send("GET", docs % INS2, headers=doctor), 403, "access_denied")
    checker.case("removeAccessMember administrators -> 200", MEMBER_DELETE,
                 send("DELETE", member % (INS2, "administrators", ADMINISTRATOR), headers=p2), 200,
                 extra=json_is(lambda b: b["administrators"] == []))
    checker.case("listDocuments by the former administrator -> 403 access_denied", DOCS_GET,
                 send("GET", docs % INS2, headers=administrator), 403, "access_denied")


# --------------------------------------------------------------------------------------------
# The trace, notifications, the operator calls and the development clock

TRACE_GET = ("GET", "/v1/patients/{ins}/trace")
NOTES_GET = ("GET", "/v1/patients/{ins}/notifications")
ACK_POST = ("POST", "/v1/patients/{ins}/notifications/ack")
VERIFY_POST = ("POST", "/v1/admin/verify")
CLOCK_GET = ("GET", "/v1/admin/clock")
CLOCK_POST = ("POST", "/v1/admin/clock")
EMERGENCY_REASON = "patient inconscient aux urgences"


def pro_auth(issuer: "Issuer", rpps: str, profession: str = "10", mode: str = "normal", **extra) -> dict:
    """A professional's Authorization header (a written reason added for bris_de_glace)."""
    if mode == "bris_de_glace":
        extra.setdefault("reason", EMERGENCY_REASON)
    return issuer.auth(rpps, role="professional", profession=profession, mode=mode, **extra)


def sender(sock: str):
    def send(method, path, **kwargs):
        return lambda: request(sock, method, path, **kwargs)
    return send


def json_sender(checker: Checker, sock: str):
    """`send_json(op, path, headers, body)`: a JSON body, remembered to check the request schema
    against the daemon's verdict (see request_schemas_agree)."""
    def send_json(op, path, headers, body):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()

        def go():
            reply = request(sock, op[0], path, headers={**headers, "Content-Type": "application/json"}, body=data)
            checker.sent_json.append((op, data, reply.status, reply.code))
            return reply
        return go
    return send_json


def parse_time(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 time."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def near_now(text: str, seconds: float = 120.0, offset: float = 0.0) -> bool:
    return abs(parse_time(text) - (time.time() + offset)) < seconds


def notices(body) -> list[tuple]:
    """(kind, recipient, actor id) of each notification."""
    return [(n["kind"], n["recipient"], n.get("actor", {}).get("id")) for n in body["notifications"]]


def trace_is(check):
    """An `extra` check of a TraceList: entries in increasing `seq` order, and `check(entries)`."""
    def extra(reply):
        entries = reply.json()["entries"]
        seqs = [e["seq"] for e in entries]
        if seqs != sorted(set(seqs)):
            return ["entries are not in increasing seq order: %s" % seqs]
        if not check(entries):
            return ["unexpected entries: %s" % json.dumps(entries, ensure_ascii=False)[-700:]]
        return []
    return extra


def exercise_trace_and_notifications(checker: Checker, issuer: "Issuer", sock: str) -> dict:
    """Patient 4's new dossier: médecin traitant, administrator, authorised doctor; accesses by
    professionals and what they notify; acknowledgements; the preferences that steer notices;
    replacements of hidden documents; then the trace of it all and who may read it."""
    p1, p3, p4 = (issuer.auth(i) for i in (INS1, INS3, INS4))
    p4_c15 = issuer.auth(INS4, mode="centre_15")
    rep4 = issuer.auth(INS1, role="representative", patient=INS4)  # patient 1, legal representative of patient 4
    doctor, attending, administrator = (pro_auth(issuer, r) for r in (DOCTOR, ATTENDING, ADMINISTRATOR))
    stranger_bdg = pro_auth(issuer, STRANGER, mode="bris_de_glace")
    send, send_json = sender(sock), json_sender(checker, sock)
    json_hdr = {"Content-Type": "application/json"}

    DOSSIER_POST = ("POST", "/v1/patients/{ins}/dossier")
    DOSSIER_GET = ("GET", "/v1/patients/{ins}/dossier")
    ATTENDING_PUT = ("PUT", "/v1/patients/{ins}/dossier/attending-doctor")
    PREFS_PATCH = ("PATCH", "/v1/patients/{ins}/dossier/preferences")
    MEMBER_PUT = ("PUT", "/v1/patients/{ins}/access/{list}/{member}")
    MEMBER_DELETE = ("DELETE", "/v1/patients/{ins}/access/{list}/{member}")
    DOCS_POST = ("POST", "/v1/patients/{ins}/documents")
    DOC_GET = ("GET", "/v1/patients/{ins}/documents/{id}")
    REPLACE = ("POST", "/v1/patients/{ins}/documents/{id}/replace")
    RELEASE = ("POST", "/v1/patients/{ins}/documents/{id}/release")
    base = "/v1/patients/%s"
    dossier, docs, member = base + "/dossier", base + "/documents", base + "/access/%s/%s"
    doc, replace, release = docs + "/%s", docs + "/%s/replace", docs + "/%s/release"
    trace, notes, ack = base + "/trace", base + "/notifications", base + "/notifications/ack"

    def stored_id(reply):
        return reply.json()["id"] if reply is not None and reply.status == 201 else UNKNOWN_ID

    # --- the dossier and the patient's decisions
    checker.case("createDossier for patient 4 -> 201", DOSSIER_POST, send("POST", dossier % INS4, headers=p4), 201)
    checker.case("setAttendingDoctor for patient 4 -> 200", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, base % INS4 + "/dossier/attending-doctor", p4, {"rpps": ATTENDING}), 200)
    checker.case("addAccessMember administrators for patient 4 -> 200", MEMBER_PUT,
                 send("PUT", member % (INS4, "administrators", ADMINISTRATOR), headers=p4), 200)
    checker.case("addAccessMember authorized for patient 4 -> 200", MEMBER_PUT,
                 send("PUT", member % (INS4, "authorized", DOCTOR), headers=p4), 200,
                 extra=json_is(lambda b: b["authorized"] == [DOCTOR] and b["administrators"] == [ADMINISTRATOR]
                               and b["attendingDoctor"] == ATTENDING))
    checker.case("addAccessMember blocked the pharmacist -> 200", MEMBER_PUT,
                 send("PUT", member % (INS4, "blocked", PHARMACIST), headers=p4), 200,
                 extra=json_is(lambda b: b["blocked"] == [PHARMACIST]))
    checker.case("addAccessMember administrators a blocked professional -> 200, the block lifted", MEMBER_PUT,
                 send("PUT", member % (INS4, "administrators", PHARMACIST), headers=p4), 200,
                 extra=json_is(lambda b: b["administrators"] == sorted([ADMINISTRATOR, PHARMACIST]) and b["blocked"] == []))
    checker.case("removeAccessMember administrators the pharmacist -> 200", MEMBER_DELETE,
                 send("DELETE", member % (INS4, "administrators", PHARMACIST), headers=p4), 200,
                 extra=json_is(lambda b: b["administrators"] == [ADMINISTRATOR]))
    checker.case("removeAccessMember blocked the pharmacist -> 200", MEMBER_DELETE,
                 send("DELETE", member % (INS4, "blocked", PHARMACIST), headers=p4), 200,
                 extra=json_is(lambda b: b["blocked"] == []))
    manage_calls = 7  # the dossier.manage decisions above

    # --- a new dossier: no notice, a trace from its creation
    checker.case("listNotifications of a new dossier -> 200 empty", NOTES_GET, send("GET", notes % INS4, headers=p4), 200,
                 extra=json_is(lambda b: b == {"notifications": []}))
    checker.case("getTrace by the patient -> 200, from the creation to this very read", TRACE_GET,
                 send("GET", trace % INS4, headers=p4), 200,
                 extra=trace_is(lambda es: es[0]["action"] == "dossier.create" and es[0]["rule"] == "dossier.created"
                                and es[0]["actor"] == {"role": "patient", "id": INS4} and es[0]["mode"] == "normal"
                                and [e["action"] for e in es[1:]]
                                == ["dossier.manage"] * manage_calls + ["notifications.read", "trace.read"]
                                and all(e["outcome"] == "allowed" and "errorCode" not in e for e in es)
                                and es[-1]["rule"] == "patient.own-dossier"))

    # --- professionals at work: first accesses, a document added, hidden ones, an emergency
    lab = stored_id(checker.case("storeDocument by patient 4 -> 201", DOCS_POST,
                                 send("POST", docs % INS4, headers={**p4, "Coffre-Class": "BIOLOGIE"}, body=b"glycemie"), 201))
    checker.case("getDossier by the authorised doctor, a first access -> 200", DOSSIER_GET,
                 send("GET", dossier % INS4, headers=doctor), 200)
    checker.case("getDocument by the authorised doctor, under the matrix -> 200", DOC_GET,
                 send("GET", doc % (INS4, lab), headers=doctor), 200)
    added = stored_id(checker.case("storeDocument by the authorised doctor -> 201", DOCS_POST,
                                   send("POST", docs % INS4, headers={**doctor, "Coffre-Class": "CPT_REND"}, body=b"cr"), 201))
    hidden1, hidden2 = (stored_id(checker.case(
        "storeDocument by the authorised doctor, hidden from the patient (%d) -> 201" % n, DOCS_POST,
        send("POST", docs % INS4, headers={**doctor, "Coffre-Class": "CPT_REND", "Coffre-Hidden-From": "patient"},
             body=b"annonce %d" % n), 201, extra=json_is(lambda b: b["hiddenFromPatient"] is True))) for n in (1, 2))
    checker.case("getDossier in bris_de_glace by a professional -> 200", DOSSIER_GET,
                 send("GET", dossier % INS4, headers=stranger_bdg), 200)

    patient_notices = [("professional_access", "patient", DOCTOR), ("document_added", "patient", DOCTOR),
                       ("emergency_access", "patient", STRANGER), ("professional_access", "patient", STRANGER)]
    checker.case("listNotifications by the patient -> 200: first accesses, the document added, the emergency", NOTES_GET,
                 send("GET", notes % INS4, headers=p4), 200,
                 extra=json_is(lambda b: notices(b) == patient_notices
                               and b["notifications"][1].get("documentId") == added
                               and EMERGENCY_REASON in b["notifications"][2]["message"]
                               and b["notifications"][0]["message"].startswith("Premier accès")
                               and all("acknowledgedAt" not in n for n in b["notifications"])))
    checker.case("listNotifications by the legal representative -> 200, the patient's", NOTES_GET,
                 send("GET", notes % INS4, headers=rep4), 200, extra=json_is(lambda b: notices(b) == patient_notices))
    medecin_notices = [("emergency_access", "medecin_traitant", STRANGER)]
    checker.case("listNotifications by the médecin traitant -> 200, the emergency", NOTES_GET,
                 send("GET", notes % INS4, headers=attending), 200, extra=json_is(lambda b: notices(b) == medecin_notices))
    checker.case("listNotifications by an administrator -> 200, the médecin traitant's", NOTES_GET,
                 send("GET", notes % INS4, headers=administrator), 200,
                 extra=json_is(lambda b: notices(b) == medecin_notices))
    checker.case("listNotifications by the authorised doctor -> 403 access_denied", NOTES_GET,
                 send("GET", notes % INS4, headers=doctor), 403, "access_denied")
    checker.case("listNotifications by a professional in bris_de_glace -> 403 access_denied", NOTES_GET,
                 send("GET", notes % INS4, headers=stranger_bdg), 403, "access_denied")
    checker.case("listNotifications by another patient -> 403 access_denied", NOTES_GET,
                 send("GET", notes % INS4, headers=p1), 403, "access_denied")
    checker.case("listNotifications by the patient in centre_15 mode -> 403 access_denied", NOTES_GET,
                 send("GET", notes % INS4, headers=p4_c15), 403, "access_denied")
    checker.case("listNotifications without a dossier -> 404 dossier_not_found", NOTES_GET,
                 send("GET", notes % INS3, headers=p3), 404, "dossier_not_found")
    checker.case("listNotifications invalid INS -> 400 invalid_ins", NOTES_GET,
                 send("GET", notes % INS_BAD_KEY, headers=p4), 400, "invalid_ins")
    checker.case("listNotifications without assertion -> 401 assertion_missing", NOTES_GET,
                 send("GET", notes % INS4), 401, "assertion_missing")

    # --- acknowledgements
    checker.case("acknowledgeNotifications all, by the médecin traitant -> 200, 1", ACK_POST,
                 send_json(ACK_POST, ack % INS4, attending, {"all": True}), 200,
                 extra=json_is(lambda b: b == {"acknowledged": 1}))
    checker.case("listNotifications by an administrator once acknowledged -> 200 empty", NOTES_GET,
                 send("GET", notes % INS4, headers=administrator), 200, extra=json_is(lambda b: b == {"notifications": []}))
    history = checker.case("listNotifications ?all=true by an administrator -> 200 with acknowledgedAt", NOTES_GET,
                           send("GET", notes % INS4 + "?all=true", headers=administrator), 200,
                           extra=json_is(lambda b: notices(b) == medecin_notices
                                         and near_now(b["notifications"][0]["acknowledgedAt"])))
    medecin_id = history.json()["notifications"][0]["id"] if history is not None and history.status == 200 else UNKNOWN_ID
    # The médecin traitant's and the administrator's reads were their first accesses.
    patient_notices += [("professional_access", "patient", ATTENDING), ("professional_access", "patient", ADMINISTRATOR)]
    listed = checker.case("listNotifications by the patient: the médecin traitant's and administrator's first accesses "
                          "-> 200", NOTES_GET, send("GET", notes % INS4, headers=p4), 200,
                          extra=json_is(lambda b: notices(b) == patient_notices))
    ids = ([n["id"] for n in listed.json()["notifications"]] if listed is not None and listed.status == 200 else [])
    ids += [UNKNOWN_ID] * (2 - len(ids))
    checker.case("acknowledgeNotifications one id -> 200, 1", ACK_POST, send_json(ACK_POST, ack % INS4, p4, {"ids": [ids[0]]}),
                 200, extra=json_is(lambda b: b == {"acknowledged": 1}))
    checker.case("acknowledgeNotifications the same id again -> 200, 0", ACK_POST,
                 send_json(ACK_POST, ack % INS4, p4, {"ids": [ids[0]]}), 200, extra=json_is(lambda b: b == {"acknowledged": 0}))
    checker.case("acknowledgeNotifications an unknown id and the médecin traitant's -> 200, 0", ACK_POST,
                 send_json(ACK_POST, ack % INS4, p4, {"ids": [UNKNOWN_ID, medecin_id, "nonsense"]}), 200,
                 extra=json_is(lambda b: b == {"acknowledged": 0}))
    checker.case("acknowledgeNotifications ids with all false -> 200, 1", ACK_POST,
                 send_json(ACK_POST, ack % INS4, p4, {"ids": [ids[1]], "all": False}), 200,
                 extra=json_is(lambda b: b == {"acknowledged": 1}))
    checker.case("listNotifications after acknowledgements -> 200, the pending ones", NOTES_GET,
                 send("GET", notes % INS4, headers=p4), 200, extra=json_is(lambda b: notices(b) == patient_notices[2:]))
    checker.case("listNotifications ?all=true -> 200, the acknowledged ones too", NOTES_GET,
                 send("GET", notes % INS4 + "?all=true", headers=p4), 200,
                 extra=json_is(lambda b: notices(b) == patient_notices
                               and ["acknowledgedAt" in n for n in b["notifications"]] == [True, True, False, False, False, False]))
    checker.case("acknowledgeNotifications all, by the legal representative -> 200, 4", ACK_POST,
                 send_json(ACK_POST, ack % INS4, rep4, {"all": True}), 200, extra=json_is(lambda b: b == {"acknowledged": 4}))
    checker.case("listNotifications once all acknowledged -> 200 empty", NOTES_GET, send("GET", notes % INS4, headers=p4), 200,
                 extra=json_is(lambda b: b == {"notifications": []}))
    for label, body in [("{}", {}), ("all false alone", {"all": False}), ("ids and all true", {"ids": [ids[0]], "all": True}),
                        ("ids not an array", {"ids": ids[0]}), ("all a string", {"all": "true"}),
                        ("an array", [ids[0]]), ("not JSON", b"all=true")]:
        checker.case("acknowledgeNotifications %s -> 400 malformed_json" % label, ACK_POST,
                     send_json(ACK_POST, ack % INS4, p4, body), 400, "malformed_json")
    checker.case("acknowledgeNotifications body over 64 KiB -> 413 payload_too_large", ACK_POST,
                 send("POST", ack % INS4, headers={**p4, **json_hdr}, body=b" " * (70 * 1024) + b'{"all": true}'),
                 413, "payload_too_large")
    checker.case("acknowledgeNotifications by the authorised doctor -> 403 access_denied", ACK_POST,
                 send_json(ACK_POST, ack % INS4, doctor, {"all": True}), 403, "access_denied")
    checker.case("acknowledgeNotifications by another patient -> 403 access_denied", ACK_POST,
                 send_json(ACK_POST, ack % INS4, p1, {"all": True}), 403, "access_denied")
    checker.case("acknowledgeNotifications without a dossier -> 404 dossier_not_found", ACK_POST,
                 send_json(ACK_POST, ack % INS3, p3, {"all": True}), 404, "dossier_not_found")
    checker.case("acknowledgeNotifications malformed, without a dossier -> 400 malformed_json (body first)", ACK_POST,
                 send_json(ACK_POST, ack % INS3, p3, {}), 400, "malformed_json")
    checker.case("acknowledgeNotifications invalid INS -> 400 invalid_ins", ACK_POST,
                 send_json(ACK_POST, ack % INS_BAD_KEY, p4, {"all": True}), 400, "invalid_ins")
    checker.case("acknowledgeNotifications without assertion -> 401 assertion_missing", ACK_POST,
                 send_json(ACK_POST, ack % INS4, {}, {"all": True}), 401, "assertion_missing")

    # --- the preferences that steer notices
    checker.case("setPreferences notifyEveryAccess on, notifyNewDocuments off -> 200", PREFS_PATCH,
                 send_json(PREFS_PATCH, base % INS4 + "/dossier/preferences", p4,
                           {"notifyEveryAccess": True, "notifyNewDocuments": False}), 200)
    checker.case("storeDocument by the doctor, new documents not notified -> 201", DOCS_POST,
                 send("POST", docs % INS4, headers={**doctor, "Coffre-Class": "ORD_SOIN"}, body=b"ordonnance"), 201)
    checker.case("listNotifications: the access notified, not the document -> 200", NOTES_GET,
                 send("GET", notes % INS4, headers=p4), 200,
                 extra=json_is(lambda b: notices(b) == [("professional_access", "patient", DOCTOR)]
                               and not b["notifications"][0]["message"].startswith("Premier")))
    checker.case("setPreferences notices back to the defaults -> 200", PREFS_PATCH,
                 send_json(PREFS_PATCH, base % INS4 + "/dossier/preferences", p4,
                           {"notifyEveryAccess": False, "notifyNewDocuments": True}), 200,
                 extra=json_is(lambda b: b["preferences"]["notifyEveryAccess"] is False))
    checker.case("acknowledgeNotifications all -> 200, 1", ACK_POST, send_json(ACK_POST, ack % INS4, p4, {"all": True}), 200,
                 extra=json_is(lambda b: b == {"acknowledged": 1}))

    # --- new versions of hidden documents: once released, not hidden again
    checker.case("releaseDocument hidden (1) by the médecin traitant -> 200", RELEASE,
                 send("POST", release % (INS4, hidden1), headers=attending), 200)
    hidden1_v2 = stored_id(checker.case(
        "replaceDocument of a released hidden document -> 201, not hidden again", REPLACE,
        send("POST", replace % (INS4, hidden1), headers=doctor, body=b"annonce 1, v2"), 201,
        extra=json_is(lambda b: b["replaces"] == hidden1 and b["hiddenFromPatient"] is False)))
    checker.case("getDocument of that new version, by the patient -> 200", DOC_GET,
                 send("GET", doc % (INS4, hidden1_v2), headers=p4), 200)
    hidden2_v2 = stored_id(checker.case(
        "replaceDocument of a document still hidden -> 201, still hidden", REPLACE,
        send("POST", replace % (INS4, hidden2), headers=doctor, body=b"annonce 2, v2"), 201,
        extra=json_is(lambda b: b["replaces"] == hidden2 and b["hiddenFromPatient"] is True)))
    checker.case("getDocument of that new version, by the patient -> 403 access_denied", DOC_GET,
                 send("GET", doc % (INS4, hidden2_v2), headers=p4), 403, "access_denied")
    checker.case("listNotifications: the visible new version notified, not the hidden one -> 200", NOTES_GET,
                 send("GET", notes % INS4, headers=p4), 200,
                 extra=json_is(lambda b: notices(b) == [("document_replaced", "patient", DOCTOR)]
                               and b["notifications"][0].get("documentId") == hidden1_v2))
    checker.case("acknowledgeNotifications all -> 200, 1 (the replacement)", ACK_POST,
                 send_json(ACK_POST, ack % INS4, p4, {"all": True}), 200, extra=json_is(lambda b: b == {"acknowledged": 1}))

    # --- the trace of all this
    def denied_notice_read(e):
        return (e["action"] == "notifications.read" and e["outcome"] == "denied" and e["actor"]["id"] == DOCTOR
                and e["rule"] == "professional.patient-or-medecin-traitant-only" and e["errorCode"] == "access_denied")

    def emergency(e):
        return (e["mode"] == "bris_de_glace" and e.get("reason") == EMERGENCY_REASON and e["actor"]["id"] == STRANGER
                and e["actor"]["role"] == "professional" and e["actor"]["profession"] == "10")

    def matrix_read(e):
        return (e["action"] == "document.metadata" and e.get("documentId") == lab and e["actor"]["id"] == DOCTOR
                and e["rule"].startswith("professional.authorized/") and "matrixVersion" in e)

    def replaced(e):
        return e["action"] == "document.replace" and e.get("documentId") == hidden1 and e["rule"] == "document.author"
    full = checker.case("getTrace by the patient -> 200: denials, the emergency, the matrix, replacements", TRACE_GET,
                        send("GET", trace % INS4, headers=p4), 200,
                        extra=trace_is(lambda es: any(map(denied_notice_read, es)) and any(map(emergency, es))
                                       and any(map(matrix_read, es)) and any(map(replaced, es))
                                       and es[0]["action"] == "dossier.create" and es[-1]["action"] == "trace.read"
                                       and all(near_now(e["at"]) for e in es)))
    last = full.json()["entries"][-1]["seq"] if full is not None and full.status == 200 else 0
    checker.case("getTrace ?after= the last seq -> 200, only this read", TRACE_GET,
                 send("GET", trace % INS4 + "?after=%d" % last, headers=p4), 200,
                 extra=trace_is(lambda es: len(es) == 1 and es[0]["seq"] > last and es[0]["action"] == "trace.read"))
    checker.case("getTrace ?after=0 -> 200, from the creation", TRACE_GET,
                 send("GET", trace % INS4 + "?after=0", headers=p4), 200,
                 extra=trace_is(lambda es: es[0]["action"] == "dossier.create" and len(es) >= 3))
    checker.case("getTrace by the legal representative -> 200", TRACE_GET, send("GET", trace % INS4, headers=rep4), 200,
                 extra=trace_is(lambda es: es[-1]["actor"] == {"role": "representative", "id": INS1}
                                and es[-1]["rule"] == "representative.of-patient"))
    checker.case("getTrace by the médecin traitant -> 200", TRACE_GET, send("GET", trace % INS4, headers=attending), 200,
                 extra=trace_is(lambda es: es[-1]["actor"]["id"] == ATTENDING and es[-1]["rule"] == "professional.medecin-traitant"))
    checker.case("getTrace by an administrator -> 200", TRACE_GET, send("GET", trace % INS4, headers=administrator), 200,
                 extra=trace_is(lambda es: es[-1]["rule"] == "professional.administrator"))
    checker.case("getTrace by the authorised doctor -> 403 access_denied", TRACE_GET,
                 send("GET", trace % INS4, headers=doctor), 403, "access_denied")
    checker.case("getTrace by a professional in bris_de_glace -> 403 access_denied", TRACE_GET,
                 send("GET", trace % INS4, headers=stranger_bdg), 403, "access_denied")
    checker.case("getTrace by another patient -> 403 access_denied", TRACE_GET,
                 send("GET", trace % INS4, headers=p1), 403, "access_denied")
    checker.case("getTrace by the patient in centre_15 mode -> 403 access_denied", TRACE_GET,
                 send("GET", trace % INS4, headers=p4_c15), 403, "access_denied")
    for bad in ["-1", "abc", "1.5", "", "99999999999999999999"]:
        checker.case("getTrace ?after=%s -> 400 malformed_request" % bad, TRACE_GET,
                     send("GET", trace % INS4 + "?after=" + bad, headers=p4), 400, "malformed_request")
    checker.case("getTrace bad after, without a dossier -> 400 malformed_request (after first)", TRACE_GET,
                 send("GET", trace % INS3 + "?after=x", headers=p3), 400, "malformed_request")
    checker.case("getTrace without a dossier -> 404 dossier_not_found", TRACE_GET,
                 send("GET", trace % INS3, headers=p3), 404, "dossier_not_found")
    checker.case("getTrace invalid INS -> 400 invalid_ins", TRACE_GET,
                 send("GET", trace % INS_BAD_KEY, headers=p4), 400, "invalid_ins")
    checker.case("getTrace without assertion -> 401 assertion_missing", TRACE_GET,
                 send("GET", trace % INS4), 401, "assertion_missing")
    checker.case("getTrace expired assertion -> 401 assertion_expired", TRACE_GET,
                 send("GET", trace % INS4, headers=issuer.auth(INS4, iat=int(time.time()) - 4000, lifetime=3000)),
                 401, "assertion_expired")
    return {"lab": lab, "hidden": hidden2_v2}


def exercise_trace_unavailable(checker: Checker, issuer: "Issuer", sock: str, state: Path, docs4: dict):
    """Fail closed: while another process holds the index's write lock, no decision can be
    traced, and every person-level operation answers 503 trace_unavailable, changing nothing."""
    p1, p3, p4 = (issuer.auth(i) for i in (INS1, INS3, INS4))
    doctor = pro_auth(issuer, DOCTOR)
    send, send_json = sender(sock), json_sender(checker, sock)
    base = "/v1/patients/%s"
    dossier, docs, access = base + "/dossier", base + "/documents", base + "/access"
    doc = docs + "/%s"
    lab, hidden = docs4["lab"], docs4["hidden"]
    ops = {name: op for name, op in [
        ("createDossier", ("POST", "/v1/patients/{ins}/dossier")), ("getDossier", ("GET", "/v1/patients/{ins}/dossier")),
        ("setAttendingDoctor", ("PUT", "/v1/patients/{ins}/dossier/attending-doctor")),
        ("setPreferences", ("PATCH", "/v1/patients/{ins}/dossier/preferences")),
        ("getAccess", ("GET", "/v1/patients/{ins}/access")),
        ("setEmergencyAccess", ("PATCH", "/v1/patients/{ins}/access/emergency")),
        ("addAccessMember", ("PUT", "/v1/patients/{ins}/access/{list}/{member}")),
        ("removeAccessMember", ("DELETE", "/v1/patients/{ins}/access/{list}/{member}")),
        ("storeDocument", ("POST", "/v1/patients/{ins}/documents")), ("listDocuments", ("GET", "/v1/patients/{ins}/documents")),
        ("getDocument", ("GET", "/v1/patients/{ins}/documents/{id}")),
        ("deleteDocument", ("DELETE", "/v1/patients/{ins}/documents/{id}")),
        ("getDocumentContent", ("GET", "/v1/patients/{ins}/documents/{id}/content")),
        ("replaceDocument", ("POST", "/v1/patients/{ins}/documents/{id}/replace")),
        ("maskDocument", ("POST", "/v1/patients/{ins}/documents/{id}/mask")),
        ("unmaskDocument", ("POST", "/v1/patients/{ins}/documents/{id}/unmask")),
        ("releaseDocument", ("POST", "/v1/patients/{ins}/documents/{id}/release")),
        ("getTrace", TRACE_GET), ("listNotifications", NOTES_GET), ("acknowledgeNotifications", ACK_POST),
        ("closeDossier", CLOSE_POST), ("reopenDossier", REOPEN_POST), ("opposeDossier", OPPOSE_POST)]}
    locked = issuer.auth(INS_LOCKED)
    cases = [
        ("createDossier", send("POST", dossier % INS3, headers=p3)),
        ("getDossier", send("GET", dossier % INS4, headers=p4)),
        ("getDossier by another patient (a denial)", send("GET", dossier % INS4, headers=p1)),
        ("setAttendingDoctor", send_json(ops["setAttendingDoctor"], dossier % INS4 + "/attending-doctor", p4, {"rpps": DOCTOR})),
        ("setPreferences", send_json(ops["setPreferences"], dossier % INS4 + "/preferences", p4, {"maskNewDocuments": True})),
        ("getAccess", send("GET", access % INS4, headers=p4)),
        ("setEmergencyAccess", send_json(ops["setEmergencyAccess"], access % INS4 + "/emergency", p4, {"brisDeGlace": False})),
        ("addAccessMember", send("PUT", access % INS4 + "/authorized/" + PHARMACIST, headers=p4)),
        ("removeAccessMember", send("DELETE", access % INS4 + "/authorized/" + DOCTOR, headers=p4)),
        ("storeDocument", send("POST", docs % INS4, headers={**p4, "Coffre-Class": "BIOLOGIE"}, body=b"x")),
        ("listDocuments", send("GET", docs % INS4, headers=p4)),
        ("getDocument", send("GET", doc % (INS4, lab), headers=p4)),
        ("deleteDocument", send("DELETE", doc % (INS4, lab), headers=p4)),
        ("getDocumentContent", send("GET", doc % (INS4, lab) + "/content", headers=p4)),
        ("replaceDocument", send("POST", doc % (INS4, lab) + "/replace", headers=p4, body=b"x")),
        ("maskDocument", send("POST", doc % (INS4, lab) + "/mask", headers=p4)),
        ("unmaskDocument", send("POST", doc % (INS4, lab) + "/unmask", headers=p4)),
        ("releaseDocument", send("POST", doc % (INS4, hidden) + "/release", headers=doctor)),
        ("getTrace", send("GET", base % INS4 + "/trace", headers=p4)),
        ("listNotifications", send("GET", base % INS4 + "/notifications", headers=p4)),
        ("acknowledgeNotifications", send_json(ACK_POST, base % INS4 + "/notifications/ack", p4, {"all": True})),
        # On a dossier of its own: were the lock not to hold, the opposition would purge it.
        ("closeDossier", send_json(CLOSE_POST, dossier % INS_LOCKED + "/close", locked, {"delete": True})),
        ("reopenDossier", send("POST", dossier % INS_LOCKED + "/reopen", headers=locked)),
        ("opposeDossier", send("POST", dossier % INS_LOCKED + "/oppose", headers=locked)),
    ]
    checker.case("createDossier for the lifecycle under a locked trace -> 201", ops["createDossier"],
                 send("POST", dossier % INS_LOCKED, headers=locked), 201)
    index = state / "index.sqlite"
    before = request(sock, "GET", dossier % INS4, headers=p4)
    count = before.json().get("documentCount") if before.status == 200 else None
    try:
        lock = sqlite3.connect(str(index), timeout=0, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as error:
        checker.record("trace_unavailable: hold the index's write lock", ["cannot lock %s: %s" % (index, error)])
        return
    try:
        for label, go in cases:
            checker.case("%s while the trace cannot be written -> 503 trace_unavailable" % label,
                         ops[label.split(" ")[0]], go, 503, "trace_unavailable")
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    checker.case("getDossier once the trace is writable: nothing was stored -> 200", ops["getDossier"],
                 send("GET", dossier % INS4, headers=p4), 200, extra=json_is(lambda b: b["documentCount"] == count))
    checker.case("getDossier whose closure and opposition were refused -> 200, still active", ops["getDossier"],
                 send("GET", dossier % INS_LOCKED, headers=locked), 200,
                 extra=json_is(lambda b: b["state"] == "active" and b["deletionRequested"] is False))
    checker.case("getDossier of patient 3, whose creation was refused -> 404 dossier_not_found", ops["getDossier"],
                 send("GET", dossier % INS3, headers=p3), 404, "dossier_not_found")
    checker.case("getAccess: the refused changes were not made -> 200", ops["getAccess"],
                 send("GET", access % INS4, headers=p4), 200,
                 extra=json_is(lambda b: b["attendingDoctor"] == ATTENDING and b["authorized"] == [DOCTOR]
                               and b["emergency"]["brisDeGlace"] is True and b["preferences"]["maskNewDocuments"] is False))
    checker.case("getDocument: the refused changes were not made -> 200", ops["getDocument"],
                 send("GET", doc % (INS4, lab), headers=p4), 200,
                 extra=json_is(lambda b: b["status"] == "current" and b["masked"] is False))


NDJSON = {"Accept": "application/x-ndjson"}


def verify_stream(check_report, progress: str = "some", sample: int | None = None):
    """An `extra` check of a streamed verifyTrace answer: `VerifyProgress` lines, `checked`
    increasing up to `total` (the last one at `total`), then the `VerifyReport` line, last, for
    which `check_report(report)` must hold. `progress`: "some" (at least one line), "none", or
    "sample" (exactly the first and the last: 1 then `sample`)."""
    def extra(reply):
        if reply.media_type != "application/x-ndjson":
            return ["not streamed: Content-Type %s" % reply.media_type]
        lines = ndjson_lines(reply.body)
        steps, report = lines[:-1], lines[-1]
        problems = []
        if not isinstance(report, dict) or "ok" not in report:
            return ["the last line is not a VerifyReport: %s" % json.dumps(report)[:300]]
        if any(set(step) != {"checked", "total"} for step in steps):
            problems.append("a line before the last is not a VerifyProgress")
        elif steps:
            checked = [step["checked"] for step in steps]
            totals = {step["total"] for step in steps}
            if checked != sorted(set(checked)) or checked[0] != 1 or len(totals) != 1:
                problems.append("progress lines out of order: %s" % json.dumps(steps)[:300])
            elif checked[-1] != steps[-1]["total"] or report["documentsChecked"] != steps[-1]["total"]:
                problems.append("the last progress line is not at the total the report checked: %s, %d documents"
                                % (json.dumps(steps[-1]), report["documentsChecked"]))
        if progress == "some" and not steps:
            problems.append("no progress line")
        if progress == "none" and steps:
            problems.append("progress lines where none was expected: %s" % json.dumps(steps)[:300])
        if progress == "sample" and [(s["checked"], s["total"]) for s in steps] != [(1, sample), (sample, sample)]:
            problems.append("expected progress 1/%d then %d/%d, got %s" % (sample, sample, sample, json.dumps(steps)))
        if not problems and not check_report(report):
            problems.append("unexpected report: %s" % json.dumps(report)[:400])
        return problems
    return extra


def exercise_verify(checker: Checker, sock: str, state: Path):
    """The operator's check of the whole trace, intact, then with an entry changed behind the
    daemon's back (and put back); whole, and streamed as NDJSON with progress lines."""
    send = sender(sock)
    checker.case("verifyTrace -> 200, the chain holds", VERIFY_POST, send("POST", "/v1/admin/verify"), 200,
                 extra=json_is(lambda b: b["ok"] is True and b["problems"] == [] and "firstBrokenTraceEntry" not in b
                               and b["traceEntriesChecked"] > 64 and b["traceCheckpointsChecked"] >= 1))
    checker.case("verifyTrace ignores an Authorization header -> 200", VERIFY_POST,
                 send("POST", "/v1/admin/verify", headers={"Authorization": "Coffre-Assertion nonsense"}), 200)
    checker.case("verifyTrace streamed (Accept: application/x-ndjson) -> 200, progress lines, then the report",
                 VERIFY_POST, send("POST", "/v1/admin/verify", headers=NDJSON), 200,
                 extra=verify_stream(lambda r: r["ok"] is True and r["problems"] == [] and r["documentsChecked"] > 10
                                     and r["traceEntriesChecked"] > 64 and "firstBrokenTraceEntry" not in r))
    checker.case("verifyTrace streamed, Accept naming JSON then NDJSON -> 200, streamed", VERIFY_POST,
                 send("POST", "/v1/admin/verify", headers={"Accept": "application/json, application/x-ndjson"}), 200,
                 extra=verify_stream(lambda r: r["ok"] is True))
    checker.case("verifyTrace with Accept: application/json -> 200, the report whole", VERIFY_POST,
                 send("POST", "/v1/admin/verify", headers={"Accept": "application/json"}), 200,
                 extra=lambda r: [] if r.media_type == "application/json" and r.json()["ok"] is True
                 else ["expected the whole report as JSON"])
    checker.case("verifyTrace streamed ?sample=2 -> 200, progress 1/2 and 2/2, then the report", VERIFY_POST,
                 send("POST", "/v1/admin/verify?sample=2", headers=NDJSON), 200,
                 extra=verify_stream(lambda r: r["ok"] is True and r["documentsChecked"] == 2, progress="sample", sample=2))
    checker.case("verifyTrace streamed ?sample=0 -> 200, the report line alone", VERIFY_POST,
                 send("POST", "/v1/admin/verify?sample=0", headers=NDJSON), 200,
                 extra=verify_stream(lambda r: r["ok"] is True and r["documentsChecked"] == 0, progress="none"))
    checker.case("verifyTrace ?sample=-1 -> 400 malformed_request", VERIFY_POST,
                 send("POST", "/v1/admin/verify?sample=-1"), 400, "malformed_request")
    checker.case("verifyTrace streamed ?sample=x -> 400 malformed_request, as problem+json", VERIFY_POST,
                 send("POST", "/v1/admin/verify?sample=x", headers=NDJSON), 400, "malformed_request")
    try:
        db = sqlite3.connect(str(state / "index.sqlite"), timeout=10, isolation_level=None)
        seq, action = db.execute("SELECT seq, action FROM trace_entry ORDER BY seq LIMIT 1 OFFSET 9").fetchone()
    except (sqlite3.Error, TypeError) as error:
        checker.record("verifyTrace of a changed entry: read the trace", [repr(error)])
        return
    try:
        db.execute("UPDATE trace_entry SET action = ? WHERE seq = ?", ("dossier.read", seq) if action != "dossier.read"
                   else ("document.list", seq))
        checker.case("verifyTrace with an entry changed -> 200, not ok, the entry named", VERIFY_POST,
                     send("POST", "/v1/admin/verify"), 200,
                     extra=json_is(lambda b: b["ok"] is False and b["firstBrokenTraceEntry"] == seq and b["problems"]))
        checker.case("verifyTrace streamed with an entry changed -> 200, the report line not ok, the entry named",
                     VERIFY_POST, send("POST", "/v1/admin/verify", headers=NDJSON), 200,
                     extra=verify_stream(lambda r: r["ok"] is False and r["firstBrokenTraceEntry"] == seq and r["problems"]))
    finally:
        db.execute("UPDATE trace_entry SET action = ? WHERE seq = ?", (action, seq))
        db.close()
    checker.case("verifyTrace with the entry put back -> 200, the chain holds", VERIFY_POST,
                 send("POST", "/v1/admin/verify"), 200, extra=json_is(lambda b: b["ok"] is True))


def exercise_clock(checker: Checker, issuer: "Issuer", sock: str, docs4: dict):
    """The development clock and the time rules it drives; set back to the real time at the end."""
    p4 = issuer.auth(INS4)
    send, send_json = sender(sock), json_sender(checker, sock)
    clock = "/v1/admin/clock"
    base = "/v1/patients/%s" % INS4
    DOC_GET = ("GET", "/v1/patients/{ins}/documents/{id}")
    DOCS_POST = ("POST", "/v1/patients/{ins}/documents")
    hidden = docs4["hidden"]
    checker.case("getClock in development mode -> 200, settable, the real time", CLOCK_GET, send("GET", clock), 200,
                 extra=json_is(lambda b: b["settable"] is True and near_now(b["now"])))
    for label, body in [("{}", {}), ("now a number", {"now": 20300101}), ("now a word", {"now": "tomorrow"}),
                        ("an impossible date", {"now": "2030-02-30"}), ("a date before 1900", {"now": "1899-12-31"}),
                        ("a time without a zone", {"now": "2030-01-01T08:00:00"}),
                        ("a time with a lower-case t", {"now": "2030-01-01t08:00:00Z"}), ("not JSON", b"now=2030-01-01")]:
        checker.case("setClock %s -> 400 malformed_json" % label, CLOCK_POST, send_json(CLOCK_POST, clock, {}, body),
                     400, "malformed_json")
    checker.case("setClock body over 64 KiB -> 413 payload_too_large", CLOCK_POST,
                 send("POST", clock, headers={"Content-Type": "application/json"},
                      body=b" " * (70 * 1024) + b'{"now": "2030-01-01"}'), 413, "payload_too_large")
    checker.case("getClock after refused changes -> 200, still the real time", CLOCK_GET, send("GET", clock), 200,
                 extra=json_is(lambda b: near_now(b["now"])))

    # Two weeks on: the document still hidden is noticed, once.
    day15 = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=15)).date().isoformat()
    checker.case("setClock a date two weeks on -> 200, midnight UTC", CLOCK_POST,
                 send_json(CLOCK_POST, clock, {}, {"now": day15}), 200,
                 extra=json_is(lambda b: b["settable"] is True and b["now"].startswith(day15 + "T00:00:0")))
    checker.case("getClock two weeks on -> 200", CLOCK_GET, send("GET", clock), 200,
                 extra=json_is(lambda b: b["now"].startswith(day15 + "T00:0")))

    def waiting(b):
        return (notices(b) == [("hidden_document_waiting", "patient", None)]
                and not {"documentId", "actor"} & set(b["notifications"][0]))
    checker.case("listNotifications two weeks on -> 200, the hidden document waiting", NOTES_GET,
                 send("GET", base + "/notifications", headers=p4), 200, extra=json_is(waiting))
    checker.case("listNotifications again -> 200, the notice stored once", NOTES_GET,
                 send("GET", base + "/notifications", headers=p4), 200, extra=json_is(waiting))
    checker.case("getDocument still hidden two weeks on, by the patient -> 403 access_denied", DOC_GET,
                 send("GET", base + "/documents/" + hidden, headers=p4), 403, "access_denied")

    # A month on: released by itself; uploads and the trace dated by the vault clock.
    month = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=31)
    local = (month + datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00")
    ahead = month.timestamp() - time.time()
    checker.case("setClock an RFC 3339 time with an offset, a month on -> 200, in UTC", CLOCK_POST,
                 send_json(CLOCK_POST, clock, {}, {"now": local}), 200,
                 extra=json_is(lambda b: b["now"].endswith("Z") and near_now(b["now"], 60, ahead)))
    checker.case("getDocument hidden a month ago, by the patient -> 200", DOC_GET,
                 send("GET", base + "/documents/" + hidden, headers=p4), 200,
                 extra=json_is(lambda b: b["hiddenFromPatient"] is True and "releasedAt" not in b))
    checker.case("storeDocument a month on -> 201, dated by the vault clock", DOCS_POST,
                 send("POST", base + "/documents", headers={**p4, "Coffre-Class": "DOC_ADM"}, body=b"attestation"), 201,
                 extra=json_is(lambda b: near_now(b["uploadedAt"], 60, ahead)))
    checker.case("getTrace a month on -> 200, entries dated by the vault clock", TRACE_GET,
                 send("GET", base + "/trace", headers=p4), 200,
                 extra=trace_is(lambda es: near_now(es[-1]["at"], 60, ahead) and not near_now(es[0]["at"], 86400, ahead)))

    # Back to the real time.
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    checker.case("setClock back to the real time -> 200", CLOCK_POST, send_json(CLOCK_POST, clock, {}, {"now": now}), 200,
                 extra=json_is(lambda b: near_now(b["now"], 10)))
    checker.case("getClock -> 200, the real time again", CLOCK_GET, send("GET", clock), 200,
                 extra=json_is(lambda b: b["settable"] is True and near_now(b["now"], 10)))


# --------------------------------------------------------------------------------------------
# The dossier lifecycle, legal holds and the retention job

DOSSIER_POST = ("POST", "/v1/patients/{ins}/dossier")
DOSSIER_GET = ("GET", "/v1/patients/{ins}/dossier")
CLOSE_POST = ("POST", "/v1/patients/{ins}/dossier/close")
REOPEN_POST = ("POST", "/v1/patients/{ins}/dossier/reopen")
OPPOSE_POST = ("POST", "/v1/patients/{ins}/dossier/oppose")
HOLD_POST = ("POST", "/v1/admin/patients/{ins}/hold")
HOLD_DELETE = ("DELETE", "/v1/admin/patients/{ins}/hold")
DEATH_POST = ("POST", "/v1/admin/patients/{ins}/death")
DUE_GET = ("GET", "/v1/retention/due")
RUN_POST = ("POST", "/v1/retention/run")
DAY = 86400.0
RETENTION_DAYS, DELETION_DAYS, OPPOSITION_DAYS = 3652.5, 90, 30


def active_view(b) -> bool:
    """A DossierView of an active dossier: no closure, no purge date."""
    return (b["state"] == "active" and b["deletionRequested"] is False
            and not {"closedAt", "closureReason", "purgeDate"} & set(b))


def closed_view(reason: str, deletion: bool, held: bool = False, ahead: float = 0.0):
    """A DossierView of a dossier closed just now (by the vault clock, `ahead` of the real time),
    its purge date the legal delay after the closure."""
    days = DELETION_DAYS if deletion else RETENTION_DAYS

    def check(b) -> bool:
        return (b["state"] == "closed" and b["closureReason"] == reason and b["deletionRequested"] is deletion
                and b["legalHold"] is held and near_now(b["closedAt"], 120, ahead)
                and abs(parse_time(b["purgeDate"]) - parse_time(b["closedAt"]) - days * DAY) < 1.5)
    return check


def set_clock(checker: Checker, send_json, label: str, ahead_days: float) -> float:
    """Sets the development clock `ahead_days` after the real time; returns the shift in seconds."""
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=ahead_days)
    ahead = when.timestamp() - time.time()
    checker.case("setClock %s -> 200" % label, CLOCK_POST,
                 send_json(CLOCK_POST, "/v1/admin/clock", {}, {"now": when.strftime("%Y-%m-%dT%H:%M:%SZ")}), 200,
                 extra=json_is(lambda b: near_now(b["now"], 10, ahead)))
    return ahead


def exercise_lifecycle(checker: Checker, issuer: "Issuer", sock: str):
    """Close, reopen, oppose; a closed dossier read-only; legal holds; the retention job, with
    the development clock past the opposition window and the purge dates (set back to the real
    time at the end). Each story has a patient of its own: purges cannot be undone."""
    send, send_json = sender(sock), json_sender(checker, sock)
    json_hdr = {"Content-Type": "application/json"}
    p1, p3 = issuer.auth(INS1), issuer.auth(INS3)
    pat = {ins: issuer.auth(ins) for ins in (INS_CLOSE, INS_OPPOSE, INS_DEATH, INS_LATE, INS_HELD)}
    rep_close = issuer.auth(INS1, role="representative", patient=INS_CLOSE)
    doctor, attending, administrator = (pro_auth(issuer, r) for r in (DOCTOR, ATTENDING, ADMINISTRATOR))
    base = "/v1/patients/%s"
    dossier, docs, access = base + "/dossier", base + "/documents", base + "/access"
    close, reopen, oppose = dossier + "/close", dossier + "/reopen", dossier + "/oppose"
    doc = docs + "/%s"
    hold = "/v1/admin/patients/%s/hold"
    due, run = "/v1/retention/due", "/v1/retention/run"
    ops = {
        "setAttendingDoctor": ("PUT", "/v1/patients/{ins}/dossier/attending-doctor"),
        "setPreferences": ("PATCH", "/v1/patients/{ins}/dossier/preferences"),
        "getAccess": ("GET", "/v1/patients/{ins}/access"),
        "setEmergencyAccess": ("PATCH", "/v1/patients/{ins}/access/emergency"),
        "addAccessMember": ("PUT", "/v1/patients/{ins}/access/{list}/{member}"),
        "removeAccessMember": ("DELETE", "/v1/patients/{ins}/access/{list}/{member}"),
        "storeDocument": ("POST", "/v1/patients/{ins}/documents"),
        "listDocuments": ("GET", "/v1/patients/{ins}/documents"),
        "getDocument": ("GET", "/v1/patients/{ins}/documents/{id}"),
        "deleteDocument": ("DELETE", "/v1/patients/{ins}/documents/{id}"),
        "getDocumentContent": ("GET", "/v1/patients/{ins}/documents/{id}/content"),
        "replaceDocument": ("POST", "/v1/patients/{ins}/documents/{id}/replace"),
        "maskDocument": ("POST", "/v1/patients/{ins}/documents/{id}/mask"),
        "unmaskDocument": ("POST", "/v1/patients/{ins}/documents/{id}/unmask"),
        "releaseDocument": ("POST", "/v1/patients/{ins}/documents/{id}/release"),
    }

    def stored_id(reply):
        return reply.json()["id"] if reply is not None and reply.status == 201 else UNKNOWN_ID

    # --- one dossier per story
    ids = {}
    for label, ins in [("to close", INS_CLOSE), ("to oppose", INS_OPPOSE), ("to close on death", INS_DEATH),
                       ("to oppose too late", INS_LATE), ("to hold", INS_HELD)]:
        reply = checker.case("createDossier %s -> 201, active, no hold" % label, DOSSIER_POST,
                             send("POST", dossier % ins, headers=pat[ins]), 201,
                             extra=json_is(lambda b: active_view(b) and b["legalHold"] is False))
        ids[ins] = reply.json()["id"] if reply is not None and reply.status == 201 else UNKNOWN_ID
    checker.case("addAccessMember authorized the doctor, dossier to close -> 200", ops["addAccessMember"],
                 send("PUT", access % INS_CLOSE + "/authorized/" + DOCTOR, headers=pat[INS_CLOSE]), 200)
    own = stored_id(checker.case("storeDocument by the patient, dossier to close -> 201", ops["storeDocument"],
                                 send("POST", docs % INS_CLOSE, headers={**pat[INS_CLOSE], "Coffre-Class": "BIOLOGIE"},
                                      body=b"ferritine"), 201))
    hidden = stored_id(checker.case(
        "storeDocument by the doctor, hidden from the patient, dossier to close -> 201", ops["storeDocument"],
        send("POST", docs % INS_CLOSE, headers={**doctor, "Coffre-Class": "CPT_REND", "Coffre-Hidden-From": "patient"},
             body=b"annonce"), 201))
    checker.case("setAttendingDoctor, dossier to close on death -> 200", ops["setAttendingDoctor"],
                 send_json(ops["setAttendingDoctor"], dossier % INS_DEATH + "/attending-doctor", pat[INS_DEATH],
                           {"rpps": ATTENDING}), 200)
    checker.case("addAccessMember administrators, dossier to close on death -> 200", ops["addAccessMember"],
                 send("PUT", access % INS_DEATH + "/administrators/" + ADMINISTRATOR, headers=pat[INS_DEATH]), 200)
    checker.case("addAccessMember authorized the doctor, dossier to close on death -> 200", ops["addAccessMember"],
                 send("PUT", access % INS_DEATH + "/authorized/" + DOCTOR, headers=pat[INS_DEATH]), 200,
                 extra=json_is(lambda b: b["attendingDoctor"] == ATTENDING and b["administrators"] == [ADMINISTRATOR]))
    checker.case("storeDocument by the patient, dossier to oppose -> 201", ops["storeDocument"],
                 send("POST", docs % INS_OPPOSE, headers={**pat[INS_OPPOSE], "Coffre-Class": "DOC_ADM"}, body=b"x"), 201)

    # --- closeDossier: refusals, in the documented order; nothing changes
    pc = pat[INS_CLOSE]
    for label, body in [("an empty body", b""), ("not JSON", b"delete=true"), ("an array", [True]),
                        ("delete a string", {"delete": "yes"}), ("death a number", {"death": 1})]:
        checker.case("closeDossier %s -> 400 malformed_json" % label, CLOSE_POST,
                     send_json(CLOSE_POST, close % INS_CLOSE, pc, body), 400, "malformed_json")
    checker.case("closeDossier body over 64 KiB -> 413 payload_too_large", CLOSE_POST,
                 send("POST", close % INS_CLOSE, headers={**pc, **json_hdr}, body=b" " * (70 * 1024) + b"{}"),
                 413, "payload_too_large")
    checker.case("closeDossier malformed, without a dossier -> 400 malformed_json (body first)", CLOSE_POST,
                 send_json(CLOSE_POST, close % INS3, p3, b"{"), 400, "malformed_json")
    checker.case("closeDossier without a dossier -> 404 dossier_not_found", CLOSE_POST,
                 send_json(CLOSE_POST, close % INS3, p3, {}), 404, "dossier_not_found")
    checker.case("closeDossier invalid INS -> 400 invalid_ins", CLOSE_POST,
                 send_json(CLOSE_POST, close % INS_BAD_KEY, pc, {}), 400, "invalid_ins")
    checker.case("closeDossier without assertion -> 401 assertion_missing", CLOSE_POST,
                 send_json(CLOSE_POST, close % INS_CLOSE, {}, {}), 401, "assertion_missing")
    checker.case("closeDossier of another patient's dossier -> 403 access_denied", CLOSE_POST,
                 send_json(CLOSE_POST, close % INS_CLOSE, p1, {}), 403, "access_denied")
    checker.case("closeDossier by the patient in centre_15 mode -> 403 access_denied", CLOSE_POST,
                 send_json(CLOSE_POST, close % INS_CLOSE, issuer.auth(INS_CLOSE, mode="centre_15"), {}), 403, "access_denied")
    checker.case("closeDossier by an authorised doctor -> 403 access_denied", CLOSE_POST,
                 send_json(CLOSE_POST, close % INS_CLOSE, doctor, {}), 403, "access_denied")
    checker.case("closeDossier on death by an authorised doctor -> 403 access_denied", CLOSE_POST,
                 send_json(CLOSE_POST, close % INS_DEATH, doctor, {"death": True}), 403, "access_denied")
    checker.case("closeDossier by the médecin traitant without death -> 403 access_denied", CLOSE_POST,
                 send_json(CLOSE_POST, close % INS_DEATH, attending, {}), 403, "access_denied")
    checker.case("closeDossier by an administrator, death false, delete true -> 403 access_denied", CLOSE_POST,
                 send_json(CLOSE_POST, close % INS_DEATH, administrator, {"death": False, "delete": True}), 403,
                 "access_denied")
    checker.case("closeDossier on death by the patient -> 403 access_denied (a death is the médecin traitant's to record)", CLOSE_POST,
                 send_json(CLOSE_POST, close % INS_CLOSE, pc, {"death": True}), 403, "access_denied")
    checker.case("closeDossier on death by the legal representative -> 403 access_denied", CLOSE_POST,
                 send_json(CLOSE_POST, close % INS_CLOSE, rep_close, {"death": True, "delete": False}), 403,
                 "access_denied")
    checker.case("closeDossier on death with a deletion request -> 400 invalid_metadata", CLOSE_POST,
                 send_json(CLOSE_POST, close % INS_DEATH, attending, {"death": True, "delete": True}), 400, "invalid_metadata")
    for ins in (INS_CLOSE, INS_DEATH):
        checker.case("getDossier after the refused closures -> 200, still active", DOSSIER_GET,
                     send("GET", dossier % ins, headers=pat[ins]), 200, extra=json_is(active_view))
    checker.case("getTrace after the refused closures -> 200, each refusal traced as denied", TRACE_GET,
                 send("GET", base % INS_DEATH + "/trace", headers=pat[INS_DEATH]), 200,
                 extra=trace_is(lambda es: len(refused := [(e["outcome"], e.get("errorCode")) for e in es
                                                           if e["action"] in ("dossier.close", "dossier.close-on-death")]) >= 2
                                and all(r == ("denied", "access_denied") for r in refused)))

    # --- a dossier closed by the patient: read-only
    checker.case("closeDossier by the patient -> 200, closed, purge in ten years", CLOSE_POST,
                 send_json(CLOSE_POST, close % INS_CLOSE, pc, {"ignored": 1}), 200,
                 extra=json_is(lambda b: closed_view("patient_request", False)(b) and b["id"] == ids[INS_CLOSE]
                               and b["documentCount"] == 2 and b["ins"] == INS_CLOSE))
    checker.case("closeDossier again -> 409 illegal_transition", CLOSE_POST,
                 send_json(CLOSE_POST, close % INS_CLOSE, pc, {"delete": True}), 409, "illegal_transition")
    checker.case("getDossier closed, by the patient -> 200, closed", DOSSIER_GET,
                 send("GET", dossier % INS_CLOSE, headers=pc), 200, extra=json_is(closed_view("patient_request", False)))
    checker.case("getDossier closed, by the authorised doctor -> 200", DOSSIER_GET,
                 send("GET", dossier % INS_CLOSE, headers=doctor), 200, extra=json_is(lambda b: b["state"] == "closed"))
    checker.case("listDocuments closed -> 200", ops["listDocuments"], send("GET", docs % INS_CLOSE, headers=pc), 200,
                 extra=json_is(lambda b: [d["id"] for d in b["documents"]] == [own]))
    checker.case("getDocument closed -> 200", ops["getDocument"], send("GET", doc % (INS_CLOSE, own), headers=pc), 200)
    checker.case("getDocumentContent closed -> 200", ops["getDocumentContent"],
                 send("GET", doc % (INS_CLOSE, own) + "/content", headers=pc), 200,
                 extra=lambda r: [] if r.body == b"ferritine" else ["content differs"])
    checker.case("listNotifications closed -> 200", NOTES_GET, send("GET", base % INS_CLOSE + "/notifications", headers=pc),
                 200)
    checker.case("acknowledgeNotifications closed (a read) -> 200", ACK_POST,
                 send_json(ACK_POST, base % INS_CLOSE + "/notifications/ack", pc, {"all": True}), 200)
    checker.case("getAccess closed (a read) -> 200", ops["getAccess"], send("GET", access % INS_CLOSE, headers=pc), 200,
                 extra=json_is(lambda b: b["authorized"] == [DOCTOR]))
    writes = [
        ("storeDocument by the patient", "storeDocument",
         send("POST", docs % INS_CLOSE, headers={**pc, "Coffre-Class": "BIOLOGIE"}, body=b"x")),
        ("storeDocument by the authorised doctor", "storeDocument",
         send("POST", docs % INS_CLOSE, headers={**doctor, "Coffre-Class": "CPT_REND"}, body=b"x")),
        ("replaceDocument by its author", "replaceDocument",
         send("POST", doc % (INS_CLOSE, own) + "/replace", headers=pc, body=b"x")),
        ("deleteDocument by its author", "deleteDocument", send("DELETE", doc % (INS_CLOSE, own), headers=pc)),
        ("maskDocument", "maskDocument", send("POST", doc % (INS_CLOSE, own) + "/mask", headers=pc)),
        ("unmaskDocument", "unmaskDocument", send("POST", doc % (INS_CLOSE, own) + "/unmask", headers=pc)),
        ("releaseDocument by its author", "releaseDocument",
         send("POST", doc % (INS_CLOSE, hidden) + "/release", headers=doctor)),
        ("setAttendingDoctor", "setAttendingDoctor",
         send_json(ops["setAttendingDoctor"], dossier % INS_CLOSE + "/attending-doctor", pc, {"rpps": ATTENDING})),
        ("setPreferences", "setPreferences",
         send_json(ops["setPreferences"], dossier % INS_CLOSE + "/preferences", pc, {"maskNewDocuments": True})),
        ("setEmergencyAccess", "setEmergencyAccess",
         send_json(ops["setEmergencyAccess"], access % INS_CLOSE + "/emergency", pc, {"brisDeGlace": False})),
        ("addAccessMember", "addAccessMember", send("PUT", access % INS_CLOSE + "/authorized/" + PHARMACIST, headers=pc)),
        ("removeAccessMember", "removeAccessMember",
         send("DELETE", access % INS_CLOSE + "/authorized/" + DOCTOR, headers=pc)),
    ]
    for label, name, go in writes:
        checker.case("%s on a closed dossier -> 403 access_denied" % label, ops[name], go, 403, "access_denied")
    # The refused release names a document hidden from the patient: the patient's trace leaves
    # such entries out (the médecin traitant's shows them).
    written = {"document.add", "document.replace", "document.delete", "document.mask", "dossier.manage"}

    def read_only(es):
        refused = [e for e in es if e.get("rule") == "dossier.closed-read-only"]
        return ({e["action"] for e in refused} == written and len(refused) >= len(writes) - 1
                and all(e["outcome"] == "denied" and e["errorCode"] == "access_denied" for e in refused)
                and any(e["action"] == "dossier.close" and e["rule"] == "patient.own-dossier" for e in es))
    checker.case("getTrace closed -> 200: the closure, the changes refused under dossier.closed-read-only", TRACE_GET,
                 send("GET", base % INS_CLOSE + "/trace", headers=pc), 200, extra=trace_is(read_only))
    checker.case("getDocument after the refused changes -> 200, unchanged", ops["getDocument"],
                 send("GET", doc % (INS_CLOSE, own), headers=pc), 200,
                 extra=json_is(lambda b: b["status"] == "current" and b["masked"] is False))
    # documentCount counts what the caller may see: the patient does not count the document
    # still hidden from them.
    checker.case("getDossier after the refused changes -> 200, nothing stored", DOSSIER_GET,
                 send("GET", dossier % INS_CLOSE, headers=pc), 200, extra=json_is(lambda b: b["documentCount"] == 1))

    # --- reopenDossier
    checker.case("reopenDossier of an active dossier -> 409 illegal_transition", REOPEN_POST,
                 send("POST", reopen % INS_LATE, headers=pat[INS_LATE]), 409, "illegal_transition")
    checker.case("reopenDossier by the authorised doctor -> 403 access_denied", REOPEN_POST,
                 send("POST", reopen % INS_CLOSE, headers=doctor), 403, "access_denied")
    checker.case("reopenDossier of another patient's dossier -> 403 access_denied", REOPEN_POST,
                 send("POST", reopen % INS_CLOSE, headers=p1), 403, "access_denied")
    checker.case("reopenDossier by the patient in centre_15 mode -> 403 access_denied", REOPEN_POST,
                 send("POST", reopen % INS_CLOSE, headers=issuer.auth(INS_CLOSE, mode="centre_15")), 403, "access_denied")
    checker.case("reopenDossier without a dossier -> 404 dossier_not_found", REOPEN_POST,
                 send("POST", reopen % INS3, headers=p3), 404, "dossier_not_found")
    checker.case("reopenDossier invalid INS -> 400 invalid_ins", REOPEN_POST,
                 send("POST", reopen % INS_BAD_KEY, headers=pc), 400, "invalid_ins")
    checker.case("reopenDossier without assertion -> 401 assertion_missing", REOPEN_POST,
                 send("POST", reopen % INS_CLOSE), 401, "assertion_missing")
    checker.case("reopenDossier by the legal representative -> 200, active again, everything kept", REOPEN_POST,
                 send("POST", reopen % INS_CLOSE, headers=rep_close), 200,
                 extra=json_is(lambda b: active_view(b) and b["id"] == ids[INS_CLOSE] and b["documentCount"] == 2))
    checker.case("storeDocument once reopened -> 201", ops["storeDocument"],
                 send("POST", docs % INS_CLOSE, headers={**pc, "Coffre-Class": "BIOLOGIE"}, body=b"ferritine 2"), 201)
    checker.case("getTrace once reopened -> 200, the reopening by the representative", TRACE_GET,
                 send("GET", base % INS_CLOSE + "/trace", headers=pc), 200,
                 extra=trace_is(lambda es: any(e["action"] == "dossier.reopen" and e["outcome"] == "allowed"
                                               and e["actor"] == {"role": "representative", "id": INS1} for e in es)))
    checker.case("closeDossier with a deletion request, by the legal representative -> 200, purge in three months",
                 CLOSE_POST, send_json(CLOSE_POST, close % INS_CLOSE, rep_close, {"delete": True, "death": False}), 200,
                 extra=json_is(lambda b: closed_view("patient_request", True)(b) and b["documentCount"] == 3))

    # --- opposeDossier
    checker.case("opposeDossier of a closed dossier -> 409 illegal_transition", OPPOSE_POST,
                 send("POST", oppose % INS_CLOSE, headers=pc), 409, "illegal_transition")
    checker.case("opposeDossier by the médecin traitant -> 403 access_denied", OPPOSE_POST,
                 send("POST", oppose % INS_DEATH, headers=attending), 403, "access_denied")
    checker.case("opposeDossier of another patient's dossier -> 403 access_denied", OPPOSE_POST,
                 send("POST", oppose % INS_OPPOSE, headers=p1), 403, "access_denied")
    checker.case("opposeDossier by the patient in centre_15 mode -> 403 access_denied", OPPOSE_POST,
                 send("POST", oppose % INS_OPPOSE, headers=issuer.auth(INS_OPPOSE, mode="centre_15")), 403, "access_denied")
    checker.case("opposeDossier without a dossier -> 404 dossier_not_found", OPPOSE_POST,
                 send("POST", oppose % INS3, headers=p3), 404, "dossier_not_found")
    checker.case("opposeDossier invalid INS -> 400 invalid_ins", OPPOSE_POST,
                 send("POST", oppose % INS_BAD_KEY, headers=p3), 400, "invalid_ins")
    checker.case("opposeDossier without assertion -> 401 assertion_missing", OPPOSE_POST,
                 send("POST", oppose % INS_OPPOSE), 401, "assertion_missing")
    checker.case("getDossier after the refused oppositions -> 200, still active", DOSSIER_GET,
                 send("GET", dossier % INS_OPPOSE, headers=pat[INS_OPPOSE]), 200,
                 extra=json_is(lambda b: active_view(b) and b["documentCount"] == 1))
    checker.case("opposeDossier within the window, by the patient -> 200, purged", OPPOSE_POST,
                 send("POST", oppose % INS_OPPOSE, headers=pat[INS_OPPOSE]), 200,
                 extra=json_is(lambda b: b == {"id": ids[INS_OPPOSE], "state": "purged"}))
    for label, op, method, path in [("getDossier", DOSSIER_GET, "GET", dossier), ("listDocuments", ops["listDocuments"], "GET", docs),
                                    ("getTrace", TRACE_GET, "GET", base + "/trace"),
                                    ("opposeDossier", OPPOSE_POST, "POST", oppose), ("reopenDossier", REOPEN_POST, "POST", reopen)]:
        checker.case("%s of the opposed dossier -> 404 dossier_not_found" % label, op,
                     send(method, path % INS_OPPOSE, headers=pat[INS_OPPOSE]), 404, "dossier_not_found")

    # --- a closure on death, by the médecin traitant
    checker.case("closeDossier on death by the médecin traitant -> 200, closed, purge in ten years", CLOSE_POST,
                 send_json(CLOSE_POST, close % INS_DEATH, attending, {"death": True}), 200,
                 extra=json_is(closed_view("death", False)))
    checker.case("closeDossier on death by an administrator, already closed -> 409 illegal_transition", CLOSE_POST,
                 send_json(CLOSE_POST, close % INS_DEATH, administrator, {"death": True}), 409, "illegal_transition")
    checker.case("closeDossier by the patient, already closed on death -> 409 illegal_transition", CLOSE_POST,
                 send_json(CLOSE_POST, close % INS_DEATH, pat[INS_DEATH], {}), 409, "illegal_transition")
    checker.case("reopenDossier closed on death -> 409 illegal_transition", REOPEN_POST,
                 send("POST", reopen % INS_DEATH, headers=pat[INS_DEATH]), 409, "illegal_transition")
    checker.case("getDossier closed on death, by the médecin traitant -> 200", DOSSIER_GET,
                 send("GET", dossier % INS_DEATH, headers=attending), 200, extra=json_is(closed_view("death", False)))

    # --- legal holds, for operators
    reason = "réquisition judiciaire n° 2026-114"
    checker.case("placeLegalHold on a dossier closed on death -> 200, held", HOLD_POST,
                 send_json(HOLD_POST, hold % INS_DEATH, {}, {"reason": reason}), 200,
                 extra=json_is(lambda b: closed_view("death", False, held=True)(b) and b["id"] == ids[INS_DEATH]))
    checker.case("placeLegalHold again, another reason -> 200, still held", HOLD_POST,
                 send_json(HOLD_POST, hold % INS_DEATH, {}, {"reason": reason + " (bis)", "ignored": True}), 200,
                 extra=json_is(lambda b: b["legalHold"] is True))
    for label, body in [("an empty reason", {"reason": ""}), ("a blank reason", {"reason": " \t "})]:
        checker.case("placeLegalHold %s -> 409 illegal_transition" % label, HOLD_POST,
                     send_json(HOLD_POST, hold % INS_LATE, {}, body), 409, "illegal_transition")
    for label, body in [("{}", {}), ("reason a number", {"reason": 114}), ("not JSON", b"reason=x"), ("an empty body", b""),
                        ("an array", [reason])]:
        checker.case("placeLegalHold %s -> 400 malformed_json" % label, HOLD_POST,
                     send_json(HOLD_POST, hold % INS_LATE, {}, body), 400, "malformed_json")
    checker.case("placeLegalHold body over 64 KiB -> 413 payload_too_large", HOLD_POST,
                 send("POST", hold % INS_LATE, headers=json_hdr, body=b" " * (70 * 1024) + b'{"reason": "x"}'),
                 413, "payload_too_large")
    checker.case("placeLegalHold malformed, without a dossier -> 400 malformed_json (body first)", HOLD_POST,
                 send_json(HOLD_POST, hold % INS3, {}, {}), 400, "malformed_json")
    checker.case("placeLegalHold without a dossier -> 404 dossier_not_found", HOLD_POST,
                 send_json(HOLD_POST, hold % INS3, {}, {"reason": reason}), 404, "dossier_not_found")
    checker.case("placeLegalHold invalid INS -> 400 invalid_ins", HOLD_POST,
                 send_json(HOLD_POST, hold % INS_BAD_KEY, {}, {"reason": reason}), 400, "invalid_ins")
    checker.case("getDossier after the refused holds -> 200, not held", DOSSIER_GET,
                 send("GET", dossier % INS_LATE, headers=pat[INS_LATE]), 200,
                 extra=json_is(lambda b: active_view(b) and b["legalHold"] is False))
    checker.case("releaseLegalHold of a dossier not held -> 409 illegal_transition", HOLD_DELETE,
                 send("DELETE", hold % INS_LATE), 409, "illegal_transition")
    checker.case("releaseLegalHold without a dossier -> 404 dossier_not_found", HOLD_DELETE,
                 send("DELETE", hold % INS3), 404, "dossier_not_found")
    checker.case("releaseLegalHold invalid INS -> 400 invalid_ins", HOLD_DELETE,
                 send("DELETE", hold % "12345"), 400, "invalid_ins")
    checker.case("getTrace of the held dossier, by the patient -> 200, the holds by an operator", TRACE_GET,
                 send("GET", base % INS_DEATH + "/trace", headers=pat[INS_DEATH]), 200,
                 extra=trace_is(lambda es: len([e for e in es if e["action"] == "dossier.hold"]) == 2
                                and all(e["outcome"] == "allowed" and e["rule"] == "operator"
                                        and e["actor"] == {"role": "operator", "id": "uid %d" % os.geteuid()}
                                        and "mode" not in e and reason not in json.dumps(e, ensure_ascii=False)
                                        for e in es if e["action"] == "dossier.hold")
                                and any(e["action"] == "dossier.close-on-death" and e["actor"]["id"] == ATTENDING
                                        and e["rule"] == "professional.closes-on-death" for e in es)))
    checker.case("placeLegalHold on an active dossier, ignoring an Authorization header -> 200, held", HOLD_POST,
                 send_json(HOLD_POST, hold % INS_HELD, {"Authorization": "Coffre-Assertion nonsense"}, {"reason": reason}), 200,
                 extra=json_is(lambda b: active_view(b) and b["legalHold"] is True))
    checker.case("opposeDossier under legal hold -> 409 illegal_transition", OPPOSE_POST,
                 send("POST", oppose % INS_HELD, headers=pat[INS_HELD]), 409, "illegal_transition")

    # --- the retention job at the real time: nothing due yet
    def batch(checked, purged=0, held=0, failed=0, done=True, dry=False, cursor=None, items=None):
        def check(b):
            return (b["checked"] == checked == len(b["items"]) and b["purged"] == purged and b["held"] == held
                    and b["failed"] == failed and b["done"] is done and b["dryRun"] is dry
                    and (cursor is None or b["cursor"] == cursor)
                    and [i["dossierId"] for i in b["items"]] == sorted(i["dossierId"] for i in b["items"])
                    and (items is None or [(i["dossierId"], i["verdict"], i["reason"]) for i in b["items"]] == items))
        return json_is(check)
    checker.case("getRetentionDue -> 200, none due", DUE_GET, send("GET", due), 200, extra=json_is(lambda b: b == {"due": 0}))
    checker.case("runRetention {} -> 200, nothing to do", RUN_POST, send_json(RUN_POST, run, {}, {}), 200,
                 extra=batch(0, cursor=""))
    checker.case("runRetention a dry run -> 200, nothing to do", RUN_POST, send_json(RUN_POST, run, {}, {"dryRun": True}), 200,
                 extra=batch(0, dry=True, cursor=""))
    checker.case("runRetention after a dossier id -> 200, the cursor kept", RUN_POST,
                 send_json(RUN_POST, run, {}, {"after": ids[INS_CLOSE], "limit": 10}), 200, extra=batch(0, cursor=ids[INS_CLOSE]))
    for label, body in [("after not an id", {"after": "xyz"}), ("after upper-case", {"after": ids[INS_CLOSE].upper()}),
                        ("after an id too long", {"after": ids[INS_CLOSE] + "0"})]:
        checker.case("runRetention %s -> 400 invalid_identifier" % label, RUN_POST, send_json(RUN_POST, run, {}, body),
                     400, "invalid_identifier")
    for label, body in [("an empty body", b""), ("not JSON", b"dryRun=true"), ("an array", []),
                        ("limit a string", {"limit": "5"}), ("dryRun a string", {"dryRun": "yes"}), ("after a number", {"after": 5})]:
        checker.case("runRetention %s -> 400 malformed_json" % label, RUN_POST, send_json(RUN_POST, run, {}, body),
                     400, "malformed_json")
    checker.case("runRetention body over 64 KiB -> 413 payload_too_large", RUN_POST,
                 send("POST", run, headers=json_hdr, body=b" " * (70 * 1024) + b"{}"), 413, "payload_too_large")
    checker.case("getRetentionDue ignores an Authorization header -> 200", DUE_GET,
                 send("GET", due, headers={"Authorization": "Coffre-Assertion nonsense"}), 200)

    # --- a month on: the opposition window is over
    ahead = set_clock(checker, send_json, "31 days on, past the opposition window", OPPOSITION_DAYS + 1)
    checker.case("opposeDossier after the window -> 409 illegal_transition", OPPOSE_POST,
                 send("POST", oppose % INS_LATE, headers=pat[INS_LATE]), 409, "illegal_transition")
    checker.case("getDossier after the late opposition -> 200, still active", DOSSIER_GET,
                 send("GET", dossier % INS_LATE, headers=pat[INS_LATE]), 200, extra=json_is(active_view))
    checker.case("closeDossier a month on -> 200, dated by the vault clock", CLOSE_POST,
                 send_json(CLOSE_POST, close % INS_LATE, pat[INS_LATE], {}), 200,
                 extra=json_is(closed_view("patient_request", False, ahead=ahead)))
    checker.case("getRetentionDue a month on -> 200, none due", DUE_GET, send("GET", due), 200,
                 extra=json_is(lambda b: b["due"] == 0))

    # --- three months on: the dossier closed with a deletion request is due
    set_clock(checker, send_json, "91 days on, past the deletion delay", DELETION_DAYS + 1)
    gone = [(ids[INS_CLOSE], "purge", "deletion-request")]
    checker.case("getRetentionDue three months on -> 200, one due", DUE_GET, send("GET", due), 200,
                 extra=json_is(lambda b: b["due"] == 1))
    checker.case("runRetention a dry run three months on -> 200, one would be purged", RUN_POST,
                 send_json(RUN_POST, run, {}, {"dryRun": True}), 200,
                 extra=batch(1, purged=1, dry=True, cursor=ids[INS_CLOSE], items=gone))
    checker.case("getDossier after the dry run -> 200, still there", DOSSIER_GET,
                 send("GET", dossier % INS_CLOSE, headers=pc), 200, extra=json_is(lambda b: b["state"] == "closed"))
    checker.case("runRetention three months on -> 200, one purged", RUN_POST, send_json(RUN_POST, run, {}, {"dryRun": False}),
                 200, extra=batch(1, purged=1, cursor=ids[INS_CLOSE], items=gone))
    # Backups from before these purges hold the destroyed keys: the versions of that time open them.
    checker.case("getMasterKeys after the purges -> 200, the last purge recorded, every version older", KEYS_GET,
                 send("GET", "/v1/admin/keys"), 200,
                 extra=keys_is(lambda b: b.get("purges", {}).get("dossiers", 0) >= 2
                               and all(v["predatesLastPurge"] for v in b["versions"])))
    for label, op, method, path in [("getDossier", DOSSIER_GET, "GET", dossier), ("listDocuments", ops["listDocuments"], "GET", docs),
                                    ("getDocumentContent", ops["getDocumentContent"], "GET", doc % ("%s", own) + "/content"),
                                    ("reopenDossier", REOPEN_POST, "POST", reopen)]:
        checker.case("%s of the purged dossier -> 404 dossier_not_found" % label, op,
                     send(method, path % INS_CLOSE, headers=pc), 404, "dossier_not_found")
    checker.case("placeLegalHold on the purged dossier -> 404 dossier_not_found", HOLD_POST,
                 send_json(HOLD_POST, hold % INS_CLOSE, {}, {"reason": reason}), 404, "dossier_not_found")
    checker.case("getRetentionDue after the purge -> 200, none due", DUE_GET, send("GET", due), 200,
                 extra=json_is(lambda b: b["due"] == 0))
    checker.case("runRetention again -> 200, nothing to do", RUN_POST, send_json(RUN_POST, run, {}, {}), 200, extra=batch(0))

    # --- ten years on: the other closed dossiers are due, one of them held
    ahead = set_clock(checker, send_json, "ten years on, past the retention", RETENTION_DAYS + OPPOSITION_DAYS + 7)
    first, second = sorted([ids[INS_DEATH], ids[INS_LATE]])
    verdicts = sorted([(ids[INS_DEATH], "held", "legal hold"), (ids[INS_LATE], "purge", "retention-over")])
    checker.case("getRetentionDue ten years on -> 200, two due", DUE_GET, send("GET", due), 200,
                 extra=json_is(lambda b: b["due"] == 2))
    checker.case("runRetention a dry run, limit 0 taken as 1 -> 200, one looked at", RUN_POST,
                 send_json(RUN_POST, run, {}, {"dryRun": True, "limit": 0}), 200,
                 extra=batch(1, purged=int(first == ids[INS_LATE]), held=int(first == ids[INS_DEATH]), done=False, dry=True,
                             cursor=first))
    checker.case("runRetention a dry run, limit 5000 taken as 2000 -> 200, one purge and one hold", RUN_POST,
                 send_json(RUN_POST, run, {}, {"dryRun": True, "limit": 5000}), 200,
                 extra=batch(2, purged=1, held=1, dry=True, cursor=second, items=verdicts))
    checker.case("runRetention limit 1 -> 200, the first batch", RUN_POST, send_json(RUN_POST, run, {}, {"limit": 1}), 200,
                 extra=batch(1, purged=int(first == ids[INS_LATE]), held=int(first == ids[INS_DEATH]), done=False, cursor=first,
                             items=verdicts[:1]))
    checker.case("runRetention after the cursor, limit 1 -> 200, the second batch", RUN_POST,
                 send_json(RUN_POST, run, {}, {"after": first, "limit": 1}), 200,
                 extra=batch(1, purged=int(second == ids[INS_LATE]), held=int(second == ids[INS_DEATH]), done=False,
                             cursor=second, items=verdicts[1:]))
    checker.case("runRetention after the last cursor -> 200, done", RUN_POST,
                 send_json(RUN_POST, run, {}, {"after": second}), 200, extra=batch(0, cursor=second))
    checker.case("getDossier purged after ten years -> 404 dossier_not_found", DOSSIER_GET,
                 send("GET", dossier % INS_LATE, headers=pat[INS_LATE]), 404, "dossier_not_found")
    checker.case("getDossier held past its purge date -> 200, kept", DOSSIER_GET,
                 send("GET", dossier % INS_DEATH, headers=attending), 200,
                 extra=json_is(lambda b: b["state"] == "closed" and b["legalHold"] is True
                               and parse_time(b["purgeDate"]) < time.time() + ahead))
    checker.case("getRetentionDue with the held dossier -> 200, still due", DUE_GET, send("GET", due), 200,
                 extra=json_is(lambda b: b["due"] == 1))
    checker.case("releaseLegalHold -> 200, not held", HOLD_DELETE, send("DELETE", hold % INS_DEATH), 200,
                 extra=json_is(lambda b: b["state"] == "closed" and b["legalHold"] is False and b["id"] == ids[INS_DEATH]))
    checker.case("releaseLegalHold again -> 409 illegal_transition", HOLD_DELETE, send("DELETE", hold % INS_DEATH), 409,
                 "illegal_transition")
    checker.case("getTrace once the hold is lifted -> 200, the release by an operator", TRACE_GET,
                 send("GET", base % INS_DEATH + "/trace", headers=attending), 200,
                 extra=trace_is(lambda es: any(e["action"] == "dossier.release-hold" and e["rule"] == "operator"
                                               and e["actor"]["role"] == "operator" for e in es)))
    checker.case("runRetention once the hold is lifted -> 200, purged", RUN_POST, send_json(RUN_POST, run, {}, {}), 200,
                 extra=batch(1, purged=1, cursor=ids[INS_DEATH], items=[(ids[INS_DEATH], "purge", "retention-over")]))
    checker.case("getDossier of the dossier purged after its hold -> 404 dossier_not_found", DOSSIER_GET,
                 send("GET", dossier % INS_DEATH, headers=attending), 404, "dossier_not_found")
    checker.case("releaseLegalHold of a purged dossier -> 404 dossier_not_found", HOLD_DELETE,
                 send("DELETE", hold % INS_DEATH), 404, "dossier_not_found")
    checker.case("getRetentionDue after the purges -> 200, none due", DUE_GET, send("GET", due), 200,
                 extra=json_is(lambda b: b["due"] == 0))

    # --- back to the real time; the trace still holds after the purges
    set_clock(checker, send_json, "back to the real time", 0)
    checker.case("getClock -> 200, the real time again", CLOCK_GET, send("GET", "/v1/admin/clock"), 200,
                 extra=json_is(lambda b: b["settable"] is True and near_now(b["now"], 10)))
    checker.case("getDossier of patient 4, untouched by the retention runs -> 200, active", DOSSIER_GET,
                 send("GET", dossier % INS4, headers=issuer.auth(INS4)), 200, extra=json_is(active_view))
    checker.case("verifyTrace after the purges -> 200, the chain holds", VERIFY_POST, send("POST", "/v1/admin/verify"), 200,
                 extra=json_is(lambda b: b["ok"] is True and b["problems"] == []))


# --------------------------------------------------------------------------------------------
# Master keys and dossier rekeys

KEYS_GET = ("GET", "/v1/admin/keys")
KEYS_RELOAD = ("POST", "/v1/admin/keys/reload")
KEYS_ROTATE = ("POST", "/v1/admin/keys/rotate")
KEYS_RETIRE = ("POST", "/v1/admin/keys/{version}/retire")
REKEY_POST = ("POST", "/v1/admin/patients/{ins}/rekey")
# Both daemons rewrap one dossier key per transaction and rest between two, so that a rotation
# runs long enough to be seen running, and its old version refused retirement meanwhile.
ROTATION_BATCH, ROTATION_PAUSE_MS = 1, 200


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
                and target_view.get("vaultKeys") == 2
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


def exercise_keys(checker: Checker, issuer: "Issuer", sock: str, state: Path):
    """The master key versions, their rotation (in development mode, which writes the next key
    itself), retirement and reload, and dossier rekeys; refusals in the documented order, and
    nothing done while the trace cannot be written. Near the end of the development run: a
    rotation adds key versions, which the production run then finds."""
    send, send_json = sender(sock), json_sender(checker, sock)
    json_hdr = {"Content-Type": "application/json"}
    keys_dir = state / "keys"
    rekey, retire = "/v1/admin/patients/%s/rekey", "/v1/admin/keys/%s/retire"
    p1 = issuer.auth(INS1)
    uid = "uid %d" % os.geteuid()
    DOCS_GET = ("GET", "/v1/patients/{ins}/documents")

    def dossier_id(ins: str) -> str:
        reply = request(sock, "GET", "/v1/patients/%s/dossier" % ins, headers=issuer.auth(ins))
        return reply.json()["id"] if reply.status == 200 else UNKNOWN_ID

    def generation(dossier: str):
        rows = index_query(state, "SELECT key_generation FROM dossier WHERE id = ?", dossier)
        return rows[0][0] if rows else None

    id1, id4 = dossier_id(INS1), dossier_id(INS4)
    versions1 = index_query(state, "SELECT COUNT(*) FROM document WHERE dossier_id = ?", id1)[0][0]

    def same_contents(reply):
        """Every current document of the listing: its content is what its metadata says."""
        problems = []
        for d in reply.json()["documents"]:
            got = request(sock, "GET", "/v1/patients/%s/documents/%s/content" % (INS1, d["id"]), headers=p1)
            if got.status != 200 or hashlib.sha256(got.body).hexdigest() != d["sha256"] or len(got.body) != d["size"]:
                problems.append("document %s: %d, %d bytes" % (d["id"], got.status, len(got.body)))
        return problems or ([] if len(reply.json()["documents"]) >= 4 else ["too few documents listed"])

    # --- the versions at the start: version 1, active, wrapping every key; never rotated
    usage = index_usage(state)
    checker.case("getMasterKeys -> 200, version 1 active and wrapping every key, never rotated", KEYS_GET,
                 send("GET", "/v1/admin/keys"), 200,
                 extra=keys_is(lambda b: b["activeVersion"] == 1 and "rotation" not in b and len(b["versions"]) == 1
                               and b["versions"][0]["installed"] is True and b["versions"][0]["vaultKeys"] == 2
                               and b["versions"][0]["dossierKeys"] >= 5 and usage_agrees(b, usage)
                               and near_now(b["versions"][0]["addedAt"], 3600)))
    checker.case("getMasterKeys ignores an Authorization header -> 200", KEYS_GET,
                 send("GET", "/v1/admin/keys", headers={"Authorization": "Coffre-Assertion nonsense"}), 200)
    checker.case("reloadMasterKeys with no new file -> 200, nothing changed", KEYS_RELOAD,
                 send("POST", "/v1/admin/keys/reload"), 200,
                 extra=keys_is(lambda b: b["activeVersion"] == 1 and len(b["versions"]) == 1 and "rotation" not in b))

    # --- retireMasterKey refusals
    for label, version in [("0", "0"), ("a word", "abc"), ("above 4294967295", "4294967296"), ("negative", "-1"),
                           ("a decimal", "1.5"), ("'rotate'", "rotate")]:
        checker.case("retireMasterKey version %s -> 400 invalid_identifier" % label, KEYS_RETIRE,
                     send("POST", retire % version), 400, "invalid_identifier")
    for version in ("7", "4294967295"):
        checker.case("retireMasterKey of version %s, never known -> 404 key_version_not_found" % version, KEYS_RETIRE,
                     send("POST", retire % version), 404, "key_version_not_found")
    checker.case("retireMasterKey of the active version -> 409 key_in_use", KEYS_RETIRE,
                 send("POST", retire % 1), 409, "key_in_use")

    # --- fail closed: while the trace cannot be written, no key operation is done
    try:
        lock = sqlite3.connect(str(state / "index.sqlite"), timeout=0, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as error:
        checker.record("key operations: hold the index's write lock", [repr(error)])
    else:
        try:
            for label, op, go, status, code in [
                ("rotateMasterKey", KEYS_ROTATE, send("POST", "/v1/admin/keys/rotate"), 500, "storage_failure"),
                ("reloadMasterKeys", KEYS_RELOAD, send("POST", "/v1/admin/keys/reload"), 500, "storage_failure"),
                ("retireMasterKey of the active version (the trace before the 409)", KEYS_RETIRE,
                 send("POST", retire % 1), 500, "storage_failure"),
                ("retireMasterKey of an unknown version (the trace before the 404)", KEYS_RETIRE,
                 send("POST", retire % 7), 500, "storage_failure"),
                ("retireMasterKey of a bad version (the version before the trace)", KEYS_RETIRE,
                 send("POST", retire % "x"), 400, "invalid_identifier"),
                ("rekeyDossier", REKEY_POST, send_json(REKEY_POST, rekey % INS1, {}, {"reencrypt": True}), 500,
                 "storage_failure"),
                ("rekeyDossier without a dossier (its existence before the trace)", REKEY_POST,
                 send_json(REKEY_POST, rekey % INS3, {}, {}), 404, "dossier_not_found"),
                ("getMasterKeys (not traced)", KEYS_GET, send("GET", "/v1/admin/keys"), 200, None),
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

    # --- rekeyDossier refusals, in the documented order
    checker.case("rekeyDossier invalid INS -> 400 invalid_ins", REKEY_POST,
                 send_json(REKEY_POST, rekey % INS_BAD_KEY, {}, {}), 400, "invalid_ins")
    checker.case("rekeyDossier invalid INS, malformed body -> 400 invalid_ins (the INS first)", REKEY_POST,
                 send_json(REKEY_POST, rekey % "12345", {}, b"{"), 400, "invalid_ins")
    for label, body in [("not JSON", b"{"), ("reencrypt a string", {"reencrypt": "yes"}), ("reencrypt a number", {"reencrypt": 1}),
                        ("an array", [True]), ("a string", "reencrypt"), ("an empty body", b"")]:
        checker.case("rekeyDossier %s -> 400 malformed_json" % label, REKEY_POST,
                     send_json(REKEY_POST, rekey % INS1, {}, body), 400, "malformed_json")
    checker.case("rekeyDossier body over 64 KiB -> 413 payload_too_large", REKEY_POST,
                 send("POST", rekey % INS1, headers=json_hdr, body=b" " * (70 * 1024) + b"{}"), 413, "payload_too_large")
    checker.case("rekeyDossier malformed, without a dossier -> 400 malformed_json (the body first)", REKEY_POST,
                 send_json(REKEY_POST, rekey % INS3, {}, {"reencrypt": "no"}), 400, "malformed_json")
    checker.case("rekeyDossier without a dossier -> 404 dossier_not_found", REKEY_POST,
                 send_json(REKEY_POST, rekey % INS3, {}, {}), 404, "dossier_not_found")
    checker.case("rekeyDossier of a purged dossier -> 404 dossier_not_found", REKEY_POST,
                 send_json(REKEY_POST, rekey % INS_CLOSE, {}, {"reencrypt": True}), 404, "dossier_not_found")
    checker.record("rekeyDossier refusals changed nothing (key generation 1)",
                   [] if generation(id1) == 1 else ["patient 1's key generation is %s" % generation(id1)])

    # --- rekeyDossier, with and without re-encryption
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
                 send_json(REKEY_POST, rekey % INS1, {"Authorization": "Coffre-Assertion nonsense"}, {"reencrypt": True}), 200,
                 extra=all_of(json_is(lambda b: b == {"dossierId": id1, "keyGeneration": 2, "documentKeysRewrapped": versions1,
                                                      "blobsReencrypted": versions1} and versions1 >= 5),
                              blobs_renamed))
    checker.case("listDocuments after the re-encryption, every content read back -> 200, the same bytes", DOCS_GET,
                 send("GET", "/v1/patients/%s/documents" % INS1, headers=p1), 200, extra=same_contents)
    checker.case("rekeyDossier with {} -> 200, generation 3, document keys rewrapped, no blob re-encrypted", REKEY_POST,
                 send_json(REKEY_POST, rekey % INS1, {}, {}), 200,
                 extra=json_is(lambda b: b == {"dossierId": id1, "keyGeneration": 3, "documentKeysRewrapped": versions1,
                                               "blobsReencrypted": 0}))
    checker.case("rekeyDossier of patient 4, reencrypt false, another member ignored -> 200, generation 2", REKEY_POST,
                 send_json(REKEY_POST, rekey % INS4, {}, {"reencrypt": False, "reason": "ignored"}), 200,
                 extra=json_is(lambda b: b["dossierId"] == id4 and b["keyGeneration"] == 2 and b["blobsReencrypted"] == 0
                               and b["documentKeysRewrapped"] >= 3))

    def rekeyed_trace(count):
        def check(es):
            rekeys = [e for e in es if e["action"] == "dossier.rekey"]
            return (len(rekeys) == count and es[0]["action"] == "dossier.create" and es[0]["actor"]["id"] == INS1
                    and all("actor" in e and "rule" in e for e in es)
                    and all(e["outcome"] == "allowed" and e["rule"] == "operator"
                            and e["actor"] == {"role": "operator", "id": uid} and "mode" not in e for e in rekeys))
        return check
    checker.case("getTrace after two rekeys, by the patient -> 200, entries of every key generation read, the rekeys "
                 "by an operator", TRACE_GET, send("GET", "/v1/patients/%s/trace" % INS1, headers=p1), 200,
                 extra=trace_is(rekeyed_trace(2)))

    # Two rekeys of one dossier at once (without re-encryption: see exercise_new_vault_production
    # for two with it): the one that commits second finds the generation changed, changes nothing.
    pair, sent = two_at_once(sock, rekey % INS1, b"{}", 20)
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

    # --- rotation in development mode: the daemon writes the next key itself
    usage = index_usage(state)
    dossier_keys, archived = usage[1][0], usage[1][1]
    first = checker.case(
        "rotateMasterKey in --dev -> 202, version 2 written and active, the rotation running", KEYS_ROTATE,
        send("POST", "/v1/admin/keys/rotate"), 202,
        extra=all_of(key_file_made(keys_dir, 2), keys_is(
            lambda b: b["activeVersion"] == 2 and [v["version"] for v in b["versions"]] == [1, 2]
            and version_of(b, 2)["installed"] is True and wraps(version_of(b, 2)) == (0, 0, 2)
            and version_of(b, 2)["state"] == "active" and near_now(version_of(b, 2)["addedAt"], 120)
            and version_of(b, 1)["state"] == "available" and version_of(b, 1)["installed"] is True
            and wraps(version_of(b, 1)) == (dossier_keys, archived, 0)
            and {k: v for k, v in b["rotation"].items() if k != "startedAt"}
            == {"targetVersion": 2, "state": "running", "done": 0, "total": dossier_keys + archived, "failed": 0}
            and near_now(b["rotation"]["startedAt"], 120))))
    checker.case("retireMasterKey of the version the rotation moves away from -> 409 key_in_use", KEYS_RETIRE,
                 send("POST", retire % 1), 409, "key_in_use")
    started = (first.json().get("rotation") or {}).get("startedAt") if first is not None and first.status == 202 else None
    checker.case("rotateMasterKey in --dev while a rotation runs -> 202, version 3 written, the rotation to it", KEYS_ROTATE,
                 send("POST", "/v1/admin/keys/rotate"), 202,
                 extra=all_of(key_file_made(keys_dir, 3), keys_is(
                     lambda b: b["activeVersion"] == 3 and [v["version"] for v in b["versions"]] == [1, 2, 3]
                     and version_of(b, 2)["state"] == "available" and wraps(version_of(b, 3))[2] == 2
                     and b["rotation"]["targetVersion"] == 3 and b["rotation"]["state"] == "running"
                     and b["rotation"]["startedAt"] >= (started or "")
                     and b["rotation"]["total"] == dossier_keys + archived)))
    checker.case("getMasterKeys once the rotation finished -> 200, version 3 wraps every key", KEYS_GET,
                 lambda: wait_for_rotation(sock), 200,
                 extra=keys_is(lambda b: finished_rotation(3)(b) and wraps(version_of(b, 3)) == (dossier_keys, archived, 2)))
    checker.case("retireMasterKey of version 1, wrapping nothing -> 200, retired", KEYS_RETIRE, send("POST", retire % 1), 200,
                 extra=keys_is(lambda b: version_of(b, 1)["state"] == "retired" and version_of(b, 1)["installed"] is False
                               and near_now(version_of(b, 1)["retiredAt"], 120) and "retiredAt" not in version_of(b, 2)))
    retired_at = {}

    def remember(b):
        retired_at.update({v["version"]: v.get("retiredAt") for v in b["versions"]})
        return True
    checker.case("retireMasterKey of version 2 -> 200, retired", KEYS_RETIRE, send("POST", retire % 2), 200,
                 extra=keys_is(lambda b: version_of(b, 2)["state"] == "retired" and version_of(b, 2)["installed"] is False
                               and remember(b)))
    checker.case("retireMasterKey of version 1 again -> 200, unchanged", KEYS_RETIRE, send("POST", retire % 1), 200,
                 extra=keys_is(lambda b: version_of(b, 1)["state"] == "retired" and version_of(b, 1)["retiredAt"] == retired_at.get(1)))
    checker.case("retireMasterKey of the new active version -> 409 key_in_use", KEYS_RETIRE, send("POST", retire % 3), 409,
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

    # --- a version installed by hand, taken in by a reload, retired unused
    install_master_key(keys_dir, 4)
    checker.case("reloadMasterKeys with coffre-master-4 installed -> 200, version 4 available, wrapping nothing",
                 KEYS_RELOAD, send("POST", "/v1/admin/keys/reload"), 200,
                 extra=keys_is(lambda b: b["activeVersion"] == 3 and version_of(b, 4) is not None
                               and version_of(b, 4)["state"] == "available" and version_of(b, 4)["installed"] is True
                               and wraps(version_of(b, 4)) == (0, 0, 0) and near_now(version_of(b, 4)["addedAt"], 120)))
    checker.case("retireMasterKey of version 4, available and unused -> 200, retired", KEYS_RETIRE,
                 send("POST", retire % 4), 200,
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

    # --- every key operation traced, naming the operator
    presence, naming = keys_traced(state, {"keys.reload", "keys.rotate", "keys.retire"})
    checker.record("trace: key operations written to the trace (keys.reload, keys.rotate, keys.retire), in no dossier's",
                   presence)
    checker.record("trace: key operations name the operator by uid", naming)


def exercise_production_keys(checker: Checker, issuer: "Issuer", sock: str, state: Path):
    """Master keys without --dev, on the state the development run left: no key is ever written
    by the daemon, so rotating with nothing newer installed is refused; an operator installs the
    next version, reloads and rotates (the daemon also rewraps one key per batch, resting
    between two), and the rotation's old version is retired once the rotation finished."""
    send, send_json = sender(sock), json_sender(checker, sock)
    keys_dir = state / "keys"
    retire = "/v1/admin/keys/%s/retire"
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
        extra=keys_is(lambda b: b["activeVersion"] == new and wraps(version_of(b, new)) == (0, 0, 2)
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
                 KEYS_RETIRE, send("POST", retire % active), 409, "key_in_use")
    checker.case("getMasterKeys without --dev once the rotation finished -> 200, version %d wraps every key" % new, KEYS_GET,
                 lambda: wait_for_rotation(sock), 200,
                 extra=keys_is(lambda b: finished_rotation(new)(b) and b["rotation"]["startedAt"] == started
                               and wraps(version_of(b, new)) == (dossier_keys, archived, 2)))
    checker.case("rotateMasterKey without --dev after a completed rotation -> 409 no_newer_key", KEYS_ROTATE,
                 send("POST", "/v1/admin/keys/rotate"), 409, "no_newer_key")
    checker.case("retireMasterKey without --dev of the version rotated away from -> 200, retired", KEYS_RETIRE,
                 send("POST", retire % active), 200,
                 extra=keys_is(lambda b: version_of(b, active)["state"] == "retired" and "retiredAt" in version_of(b, active)))
    checker.case("rekeyDossier without --dev -> 200", REKEY_POST,
                 send_json(REKEY_POST, "/v1/admin/patients/%s/rekey" % INS_LOCKED, {}, {"reencrypt": True}), 200,
                 extra=json_is(lambda b: b["keyGeneration"] == 2))
    checker.case("verifyTrace streamed without --dev after the rotation and the rekey -> 200, the report ok", VERIFY_POST,
                 send("POST", "/v1/admin/verify", headers=NDJSON), 200,
                 extra=verify_stream(lambda r: r["ok"] is True and r["problems"] == []))


def exercise_new_vault_production(checker: Checker, bin_dir: Path, state: Path, tmp: Path,
                                  issuer: "Issuer") -> "subprocess.Popen | None":
    """A third daemon, without --dev, on a new vault with one master key that has never rotated:
    nothing newer is installed and version 1 wraps every key, so there is nothing to rotate.
    Then two re-encrypting rekeys of one dossier at once, on this vault of its own (it trusts the
    development issuer). Returns the process, for main to stop."""
    root = tmp / "new-vault"
    keys, trust = root / "keys", root / "trust"
    for directory in (keys, trust):
        directory.mkdir(parents=True)
    install_master_key(keys, 1)
    shutil.copy(state / "trust" / "dev.pub", trust / "dev.pub")
    sock = str(root / "coffred.sock")
    config = root / "coffred.json"
    config.write_text(json.dumps({
        "stateDirectory": str(root / "state"), "socket": sock, "keyDirectories": [str(keys)],
        "trustDirectory": str(trust), "operatorGroup": str(os.getgid())}), encoding="utf-8")
    with open(tmp / "coffred-new-vault.log", "wb") as log:
        process = subprocess.Popen([str(bin_dir / "coffred"), "--config", str(config), "--log-level", "notice"],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=str(tmp))
    try:
        wait_for_socket(sock, process)
    except Exception as error:
        checker.record("daemon: coffred without --dev serves a new vault", [str(error)])
        return process
    send = sender(sock)
    checker.case("getMasterKeys of a new vault without --dev -> 200, version 1 wraps the vault's keys, never rotated",
                 KEYS_GET, send("GET", "/v1/admin/keys"), 200,
                 extra=keys_is(lambda b: b["activeVersion"] == 1 and len(b["versions"]) == 1 and "rotation" not in b
                               and wraps(b["versions"][0]) == (0, 0, 2)))
    checker.case("rotateMasterKey of a vault never rotated, without --dev, no newer key -> 409 no_newer_key", KEYS_ROTATE,
                 send("POST", "/v1/admin/keys/rotate"), 409, "no_newer_key")
    wait_for_rotation(sock)
    checker.case("rotateMasterKey of the new vault again -> 409 no_newer_key", KEYS_ROTATE,
                 send("POST", "/v1/admin/keys/rotate"), 409, "no_newer_key")

    # Two re-encrypting rekeys at once: the second to commit is refused and changes nothing, so
    # every document still reads back, whichever won.
    p1 = issuer.auth(INS1)
    documents = "/v1/patients/%s/documents" % INS1
    created = request(sock, "POST", "/v1/patients/%s/dossier" % INS1, headers=p1)
    stored = [request(sock, "POST", documents, headers={**p1, "Coffre-Class": "BIOLOGIE"}, body=os.urandom(MAX_DOCUMENT_BYTES))
              for _ in range(4)]
    if created.status != 201 or any(r.status != 201 for r in stored):
        checker.record("new vault: a dossier and documents to rekey", ["%d, %s" % (created.status, [r.status for r in stored])])
        return process
    pair, _ = two_at_once(sock, "/v1/admin/patients/%s/rekey" % INS1, b'{"reencrypt": true}', 10)
    if not pair:
        checker.skip("rekeyDossier with reencrypt, two at once -> 200 and 409 document_conflict", "they never overlapped")
        return process
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
    return process


def exercise_production(checker: Checker, bin_dir: Path, state: Path, tmp: Path, issuer: "Issuer") -> "subprocess.Popen | None":
    """A second daemon, without --dev, on the state the development run left (its keys and
    trust directory named in a configuration file): the clock cannot be set, and the trace,
    signed at the clean stop, still holds. Returns the process, for main to stop."""
    sock = str(tmp / "production.sock")
    config = tmp / "coffred-production.json"
    config.write_text(json.dumps({
        "stateDirectory": str(state), "socket": sock, "keyDirectories": [str(state / "keys")],
        "trustDirectory": str(state / "trust"), "operatorGroup": str(os.getgid()),
        "retentionUser": str(NOBODY), "rotationBatchSize": ROTATION_BATCH,
        "rotationPauseMilliseconds": ROTATION_PAUSE_MS}), encoding="utf-8")
    with open(tmp / "coffred-production.log", "wb") as log:
        process = subprocess.Popen([str(bin_dir / "coffred"), "--config", str(config), "--log-level", "notice"],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=str(tmp))
    try:
        wait_for_socket(sock, process)
    except Exception as error:
        checker.record("daemon: coffred without --dev serves on the same state", [str(error)])
        return process
    send, send_json = sender(sock), json_sender(checker, sock)
    clock = "/v1/admin/clock"
    checker.case("getHealth without --dev -> 200, developmentMode false", ("GET", "/v1/health"), send("GET", "/v1/health"), 200,
                 extra=json_is(lambda b: b["developmentMode"] is False))
    checker.case("getAdminStatus without --dev, as a member of the operator group -> 200", ("GET", "/v1/admin/status"),
                 send("GET", "/v1/admin/status"), 200)
    checker.case("getClock without --dev -> 200, not settable, the real time", CLOCK_GET, send("GET", clock), 200,
                 extra=json_is(lambda b: b["settable"] is False and near_now(b["now"], 10)))
    checker.case("setClock without --dev -> 403 development_only", CLOCK_POST,
                 send_json(CLOCK_POST, clock, {}, {"now": "2030-01-01"}), 403, "development_only")
    checker.case("setClock without --dev, an RFC 3339 time -> 403 development_only", CLOCK_POST,
                 send_json(CLOCK_POST, clock, {}, {"now": "2030-01-01T08:00:00Z"}), 403, "development_only")
    checker.case("setClock without --dev, a malformed body -> 400 malformed_json (the body first)", CLOCK_POST,
                 send_json(CLOCK_POST, clock, {}, {"when": "2030-01-01"}), 400, "malformed_json")
    checker.case("getClock without --dev after the refusals -> 200, the real time", CLOCK_GET, send("GET", clock), 200,
                 extra=json_is(lambda b: near_now(b["now"], 10)))
    checker.case("verifyTrace after a clean stop and a restart -> 200, the chain and its checkpoints hold", VERIFY_POST,
                 send("POST", "/v1/admin/verify"), 200,
                 extra=json_is(lambda b: b["ok"] is True and b["traceCheckpointsChecked"] >= 1 and b["traceEntriesChecked"] > 64))
    checker.case("getTrace without --dev -> 200, the trace kept across the restart", TRACE_GET,
                 send("GET", "/v1/patients/%s/trace" % INS4, headers=issuer.auth(INS4)), 200,
                 extra=trace_is(lambda es: es[0]["action"] == "dossier.create" and len(es) > 20
                                and es[-1]["action"] == "trace.read"))
    checker.case("getRetentionDue without --dev, as an operator -> 200, none due", DUE_GET, send("GET", "/v1/retention/due"),
                 200, extra=json_is(lambda b: b == {"due": 0}))
    hold = "/v1/admin/patients/%s/hold" % INS_LOCKED
    checker.case("placeLegalHold without --dev, as an operator -> 200, held", HOLD_POST,
                 json_sender(checker, sock)(HOLD_POST, hold, {}, {"reason": "contentieux"}), 200,
                 extra=json_is(lambda b: b["state"] == "active" and b["legalHold"] is True))
    # The retention job's user: the retention operations, and nothing else.
    as_other_user(checker, sock, [tmp], "the retention user", [
        ("getRetentionDue", DUE_GET, "/v1/retention/due", None, 200, None),
        ("runRetention", RUN_POST, "/v1/retention/run", b'{"dryRun": true}', 200, None),
        ("runRetention", RUN_POST, "/v1/retention/run", b'{"after": "x"}', 400, "invalid_identifier"),
        ("getAdminStatus", ("GET", "/v1/admin/status"), "/v1/admin/status", None, 403, "not_operator"),
        ("verifyTrace", VERIFY_POST, "/v1/admin/verify", None, 403, "not_operator"),
        ("getClock", CLOCK_GET, "/v1/admin/clock", None, 403, "not_operator"),
        ("placeLegalHold", HOLD_POST, hold, b'{"reason": "x"}', 403, "not_operator"),
        ("releaseLegalHold", HOLD_DELETE, hold, None, 403, "not_operator"),
        ("recordDeath", DEATH_POST, "/v1/admin/patients/%s/death" % INS_LOCKED, None, 403, "not_operator"),
        ("getMasterKeys", KEYS_GET, "/v1/admin/keys", None, 403, "not_operator"),
        ("reloadMasterKeys", KEYS_RELOAD, "/v1/admin/keys/reload", None, 403, "not_operator"),
        ("rotateMasterKey", KEYS_ROTATE, "/v1/admin/keys/rotate", None, 403, "not_operator"),
        ("retireMasterKey", KEYS_RETIRE, "/v1/admin/keys/1/retire", None, 403, "not_operator"),
        ("rekeyDossier", REKEY_POST, "/v1/admin/patients/%s/rekey" % INS_LOCKED, b"{}", 403, "not_operator"),
    ], "needs root to connect as the retention user (nobody)")
    checker.case("getDossier without --dev, after the retention user's refused calls -> 200, still held", DOSSIER_GET,
                 send("GET", "/v1/patients/%s/dossier" % INS_LOCKED, headers=issuer.auth(INS_LOCKED)), 200,
                 extra=json_is(lambda b: b["state"] == "active" and b["legalHold"] is True))
    checker.case("releaseLegalHold without --dev, as an operator -> 200", HOLD_DELETE, send("DELETE", hold), 200,
                 extra=json_is(lambda b: b["legalHold"] is False))
    # --- a death recorded by the site, for a patient with no médecin traitant
    died, died_auth = "/v1/admin/patients/%s/death", issuer.auth(INS_DIED)
    checker.case("createDossier without --dev, a patient with no médecin traitant -> 201", DOSSIER_POST,
                 send("POST", "/v1/patients/%s/dossier" % INS_DIED, headers=died_auth), 201)
    checker.case("recordDeath without --dev, as an operator -> 200, closed on death, kept ten years", DEATH_POST,
                 send("POST", died % INS_DIED), 200, extra=json_is(closed_view("death", False)))
    checker.case("recordDeath again -> 409 illegal_transition", DEATH_POST, send("POST", died % INS_DIED), 409,
                 "illegal_transition")
    checker.case("recordDeath without a dossier -> 404 dossier_not_found", DEATH_POST, send("POST", died % INS_NOBODY), 404,
                 "dossier_not_found")
    checker.case("recordDeath invalid INS -> 400 invalid_ins", DEATH_POST, send("POST", died % INS_BAD_KEY), 400, "invalid_ins")
    checker.case("reopenDossier after a death recorded by an operator -> 409 illegal_transition", REOPEN_POST,
                 send("POST", "/v1/patients/%s/dossier/reopen" % INS_DIED, headers=issuer.auth(INS_DIED)), 409,
                 "illegal_transition")
    checker.case("getTrace after a death recorded by an operator -> 200, the closure named with the operator", TRACE_GET,
                 send("GET", "/v1/patients/%s/trace" % INS_DIED, headers=issuer.auth(INS_DIED)), 200,
                 extra=trace_is(lambda es: any(e["action"] == "dossier.close-on-death" and e["rule"] == "operator"
                                               and e["actor"] == {"role": "operator", "id": "uid %d" % os.geteuid()}
                                               for e in es)))
    exercise_production_keys(checker, issuer, sock, state)
    return process


def request_schemas_agree(checker: Checker):
    """Every JSON body sent: the daemon accepted it (2xx) iff the operation's request schema does,
    and a body refused as malformed_json is refused by the schema too."""
    problems = []
    for op, data, status, code in checker.sent_json:
        operation, pointer = checker.spec.operations[op]
        if "requestBody" not in operation:
            problems.append("%s %s has no requestBody" % op)
            continue
        try:
            body = json.loads(data)
        except ValueError:
            body = None
        errors = ["not JSON"] if body is None else checker.spec.errors(
            pointer + "/requestBody/content/application~1json/schema", body)
        if 200 <= status < 300 and errors:
            problems.append("%s %s: the daemon accepted %s, the schema refuses it (%s)"
                            % (op[0], op[1], data[:80], "; ".join(errors)))
        if code == "malformed_json" and not errors:
            problems.append("%s %s: the daemon refused %s as malformed_json, the schema accepts it" % (op[0], op[1], data[:80]))
    checker.record("request schemas agree with the daemon (%d JSON bodies)" % len(checker.sent_json), problems)


NOBODY = 65534


def admin_as_other_user(checker: Checker, sock: str, state: Path, tmp: Path):
    """`not_operator`: a caller the kernel says is neither root, the operator group nor the
    daemon's user, on every operator operation (the retention ones included: the development
    daemon has no retention user). Needs root, to run the requests as `nobody` and open the
    socket to it."""
    hold = "/v1/admin/patients/%s/hold" % INS_HELD
    calls = [
        ("getAdminStatus", ("GET", "/v1/admin/status"), "/v1/admin/status", None, 403, "not_operator"),
        ("verifyTrace", VERIFY_POST, "/v1/admin/verify", None, 403, "not_operator"),
        ("getClock", CLOCK_GET, "/v1/admin/clock", None, 403, "not_operator"),
        ("setClock", CLOCK_POST, "/v1/admin/clock", b'{"now": "2030-01-01"}', 403, "not_operator"),
        ("placeLegalHold", HOLD_POST, hold, b'{"reason": "x"}', 403, "not_operator"),
        ("releaseLegalHold", HOLD_DELETE, hold, None, 403, "not_operator"),
        ("recordDeath", DEATH_POST, "/v1/admin/patients/%s/death" % INS_HELD, None, 403, "not_operator"),
        ("getRetentionDue", DUE_GET, "/v1/retention/due", None, 403, "not_operator"),
        ("runRetention", RUN_POST, "/v1/retention/run", b'{"dryRun": true}', 403, "not_operator"),
        ("verifyTrace streamed", VERIFY_POST, "/v1/admin/verify", None, 403, "not_operator", NDJSON),
        ("getMasterKeys", KEYS_GET, "/v1/admin/keys", None, 403, "not_operator"),
        ("reloadMasterKeys", KEYS_RELOAD, "/v1/admin/keys/reload", None, 403, "not_operator"),
        ("rotateMasterKey", KEYS_ROTATE, "/v1/admin/keys/rotate", None, 403, "not_operator"),
        ("retireMasterKey", KEYS_RETIRE, "/v1/admin/keys/1/retire", None, 403, "not_operator"),
        ("retireMasterKey of a bad version (the operator first)", KEYS_RETIRE, "/v1/admin/keys/x/retire", None, 403,
         "not_operator"),
        ("rekeyDossier", REKEY_POST, "/v1/admin/patients/%s/rekey" % INS1, b'{"reencrypt": true}', 403, "not_operator"),
        ("rekeyDossier invalid INS (the operator first)", REKEY_POST, "/v1/admin/patients/%s/rekey" % INS_BAD_KEY, b"{",
         403, "not_operator"),
    ]
    as_other_user(checker, sock, [tmp, state], "an unprivileged user", calls,
                  "needs root to connect as another user (the daemon's own user is an operator in --dev)")


def as_other_user(checker: Checker, sock: str, directories: list[Path], who: str, calls: list, why_skipped: str):
    """Runs each call `(operation, op, path, body, status, code[, headers])` as the user `nobody`,
    whom the kernel names to the daemon; needs root. The socket and the directories on its way
    are opened to it for the time of the calls."""
    if os.geteuid() != 0:
        for operation, _, _, _, status, code, *_ in calls:
            checker.skip("%s as %s -> %d%s" % (operation, who, status, " " + code if code else ""), why_skipped)
        return
    modes = {p: os.stat(p).st_mode & 0o7777 for p in [*directories, Path(sock)]}
    try:
        for directory in directories:
            os.chmod(directory, 0o711)
        os.chmod(sock, 0o666)

        def send(method, path, body, extra_headers):
            # A forked child drops to nobody and makes the request; the kernel records the
            # credentials at connect(). The answer comes back through a pipe as JSON.
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:
                try:  # the child never returns into the checker, whatever happens
                    os.close(read_end)
                    try:
                        os.setgroups([])
                        os.setgid(NOBODY)
                        os.setuid(NOBODY)
                        headers = {"Content-Type": "application/json"} if body is not None else {}
                        headers.update(extra_headers)
                        reply = request(sock, method, path, headers=headers, body=body)
                        out = {"status": reply.status, "headers": list(reply.headers.items()),
                               "body": reply.body.decode("utf-8", "replace")}
                    except BaseException as error:
                        out = {"error": repr(error)}
                    with os.fdopen(write_end, "w") as pipe:
                        pipe.write(json.dumps(out))
                finally:
                    os._exit(0)
            os.close(write_end)
            with os.fdopen(read_end) as pipe:
                text = pipe.read()
            os.waitpid(pid, 0)
            out = json.loads(text)
            if "error" in out:
                raise RuntimeError("as nobody: " + out["error"])
            message = http.client.HTTPMessage()
            for key, value in out["headers"]:
                message[key] = value
            return Reply(out["status"], message, out["body"].encode())
        for operation, op, path, body, status, code, *more in calls:
            checker.case("%s as %s -> %d%s" % (operation, who, status, " " + code if code else ""), op,
                         lambda: send(op[0], path, body, more[0] if more else {}), status, code)
    finally:
        for path, mode in modes.items():
            try:
                os.chmod(path, mode)
            except OSError:
                pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bin_dir", help="directory holding coffred and coffre (e.g. .build/debug)")
    parser.add_argument("--spec", default=str(REPO / "docs" / "openapi.yaml"))
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()

    if Ed25519PrivateKey is None:
        print("openapi: the Python package `cryptography` is needed to sign assertions", file=sys.stderr)
        print("openapi: 0 passed, 1 failed")
        return 1
    bin_dir = Path(args.bin_dir).resolve()
    for binary in ("coffred", "coffre"):
        if not os.access(bin_dir / binary, os.X_OK):
            print("FAIL  %s is not an executable: build first (swift build)" % (bin_dir / binary))
            print("openapi: 0 passed, 1 failed")
            return 1
    try:
        spec = Spec(Path(args.spec))
    except Exception as error:
        print("FAIL  spec: %s does not load: %s" % (args.spec, error))
        print("openapi: 0 passed, 1 failed")
        return 1
    checker = Checker(spec, args.verbose)

    # SIGTERM/SIGHUP stop the run like Ctrl-C, so that `finally` stops the daemon.
    def interrupted(signum, frame):
        raise KeyboardInterrupt()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupted)

    tmp = Path(tempfile.mkdtemp(prefix="coffre-openapi-"))
    state = tmp / "state"
    sock = str(state / "coffred.sock")
    log_path = tmp / "coffred.log"
    processes: list[subprocess.Popen] = []

    def stop(process: subprocess.Popen) -> int:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode
    try:
        static_checks(checker)
        with open(log_path, "wb") as log:
            processes.append(subprocess.Popen(
                [str(bin_dir / "coffred"), "--dev", "--state-dir", str(state),
                 "--max-document-bytes", str(MAX_DOCUMENT_BYTES), "--log-level", "notice",
                 "--rotation-batch-size", str(ROTATION_BATCH), "--rotation-pause-ms", str(ROTATION_PAUSE_MS)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=str(tmp)))
        try:
            wait_for_socket(sock, processes[0])
        except Exception as error:
            checker.record("daemon: coffred --dev serves on its socket", [str(error)])
        else:
            issuer = exercise(checker, bin_dir, state, sock, tmp)
            # The same state without --dev, once the development daemon has stopped cleanly.
            status = stop(processes[0])
            checker.record("daemon: coffred --dev stops cleanly on SIGTERM", [] if status == 0 else ["exit status %s" % status])
            production = exercise_production(checker, bin_dir, state, tmp, issuer)
            if production is not None:
                processes.append(production)
            new_vault = exercise_new_vault_production(checker, bin_dir, state, tmp, issuer)
            if new_vault is not None:
                processes.append(new_vault)
        final_checks(checker)
    except KeyboardInterrupt:
        checker.record("run: interrupted", ["interrupted"])
    except Exception as error:
        traceback.print_exc()
        checker.record("run: unexpected error", [repr(error)])
    finally:
        for process in processes:
            stop(process)
        for path in (log_path, tmp / "coffred-production.log", tmp / "coffred-new-vault.log"):
            if checker.failed and path.exists():
                tail = path.read_text(errors="replace").splitlines()[-20:]
                print("--- last lines of %s:" % path.name)
                for line in tail:
                    print("    " + line)
        shutil.rmtree(tmp, ignore_errors=True)
    if checker.xfailed:
        print("known mismatches (code to fix, not counted): %d" % checker.xfailed)
    if checker.skipped:
        print("skipped: %d" % checker.skipped)
    print("openapi: %d passed, %d failed" % (checker.passed, checker.failed))
    return 1 if checker.failed else 0


if __name__ == "__main__":
    sys.exit(main())
