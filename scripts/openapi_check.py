#!/usr/bin/env python3
"""Checks docs/openapi.yaml against a running coffred.

Usage: scripts/openapi_check.py BIN_DIR [--spec docs/openapi.yaml] [--verbose]

Starts `BIN_DIR/coffred --dev --state-dir TMP --max-document-bytes 100000`, waits for its socket,
then exercises every operation of the spec over the Unix socket, error cases included, and checks
each response against the spec: the status is documented for the operation, the Content-Type is
one of the documented media types, documented required headers are present and valid, and JSON
bodies validate (Draft 2020-12, $refs resolved) against the documented schema. Each case also
states the status (and problem code) the code is meant to answer.

Prints one line per case and ends with `openapi: N passed, M failed`; exits 1 if any failed.
The daemon is always stopped and the temporary directory removed.

Dependencies: PyYAML, jsonschema (with `referencing`), and `cryptography` to sign assertions.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
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
RPPS = "10000000009"  # 11 digits, Luhn-valid
UNKNOWN_ID = "0" * 32

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
            conn.putheader(name, value)
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
        return {"Authorization": "Coffre-Assertion " + self.token(sub, **kwargs)}


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
        ("professional -> 403 access_denied", auth(issuer.token(RPPS, role="professional", profession="10")),
         "access_denied"),
        ("representative -> 403 access_denied", auth(issuer.token(INS2, role="representative", patient=INS1)),
         "access_denied"),
        ("patient in centre_15 mode -> 403 access_denied", auth(issuer.token(INS1, mode="centre_15")), "access_denied"),
    ]
    for label, headers, code in assertion_cases:
        status = {"access_denied": 403}.get(code, 401)
        checker.case("getDossier: " + label, DOSSIER_GET, send("GET", dossier % INS1, headers=headers), status, code)

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
        "Coffre-Hidden-From": "representatives",
        "Content-Type": "text/plain; charset=utf-8",
    }
    stored = checker.case(
        "storeDocument with every metadata header -> 201", DOCS_POST,
        send("POST", docs % INS1, headers={**p1, **metadata}, body=content), 201,
        extra=json_is(lambda b: b["class"] == "BIOLOGIE" and b["classCode"] == "10" and b["title"] == "Bilan sanguin été"
                      and b["typeCode"] == "11502-2" and b["careDate"] == "2024-02-29" and b["size"] == len(content)
                      and b["sha256"] == hashlib.sha256(content).hexdigest() and b["status"] == "current"
                      and b["hiddenFromRepresentatives"] is True and b["hiddenFromPatient"] is False
                      and b["author"] == {"role": "patient", "id": INS1} and b["mediaType"] == metadata["Content-Type"]))
    doc_id = stored.json().get("id", UNKNOWN_ID) if stored is not None and stored.status == 201 else UNKNOWN_ID
    checker.case("storeDocument minimal (class only, no Content-Type, empty body) -> 201", DOCS_POST,
                 send("POST", docs % INS1, headers={**p1, "Coffre-Class": "AUTR_DOC"}, body=b""), 201,
                 extra=json_is(lambda b: b["size"] == 0 and b["mediaType"] == "application/octet-stream"
                               and b["classCode"] == "90" and not {"title", "typeCode", "careDate", "replaces"} & set(b)))
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
        ("Coffre-Hidden-From with an unknown flag -> 400 invalid_metadata",
         {"Coffre-Class": "BIOLOGIE", "Coffre-Hidden-From": "patient,doctors"}, "invalid_metadata"),
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

    # --- what no operation serves
    for label, method, path in [
        ("unknown route GET /v1/nope", "GET", "/v1/nope"),
        ("unknown route under a patient", "GET", "/v1/patients/%s/nope" % INS1),
        ("unknown version GET /v2/health", "GET", "/v2/health"),
        ("wrong method DELETE /v1/health", "DELETE", "/v1/health"),
        ("wrong method PUT on a dossier", "PUT", dossier % INS1),
    ]:
        checker.case(label + " -> 404 route_not_found", None,
                     send(method, path, headers=p1, body=b"" if method in ("PUT",) else None), 404, "route_not_found",
                     unmatched_response="RouteNotFound")

    # --- coverage
    missing = sorted("%s %s" % op for op in set(checker.spec.operations) - checker.covered)
    checker.record("coverage: every operation of the spec passed at least one case",
                   ["not exercised successfully: " + ", ".join(missing)] if missing else [])


def admin_as_other_user(checker: Checker, sock: str, state: Path, tmp: Path):
    """`not_operator`: a caller the kernel says is neither root, the operator group nor the
    daemon's user. Needs root, to run the request as `nobody` and open the socket to it."""
    name = "getAdminStatus as an unprivileged user -> 403 not_operator"
    if os.geteuid() != 0:
        checker.skip(name, "needs root to connect as another user (the daemon's own user is an operator in --dev)")
        return
    modes = {p: os.stat(p).st_mode & 0o7777 for p in (tmp, state, sock)}
    try:
        os.chmod(tmp, 0o711)
        os.chmod(state, 0o711)
        os.chmod(sock, 0o666)

        def send():
            # A forked child drops to nobody and makes the request; the kernel records the
            # credentials at connect(). The answer comes back through a pipe as JSON.
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:
                try:  # the child never returns into the checker, whatever happens
                    os.close(read_end)
                    try:
                        os.setgroups([])
                        os.setgid(65534)
                        os.setuid(65534)
                        reply = request(sock, "GET", "/v1/admin/status")
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
        checker.case(name, ("GET", "/v1/admin/status"), send, 403, "not_operator")
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
    process = None
    try:
        static_checks(checker)
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [str(bin_dir / "coffred"), "--dev", "--state-dir", str(state),
                 "--max-document-bytes", str(MAX_DOCUMENT_BYTES), "--log-level", "notice"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=str(tmp))
        try:
            wait_for_socket(sock, process)
        except Exception as error:
            checker.record("daemon: coffred --dev serves on its socket", [str(error)])
        else:
            exercise(checker, bin_dir, state, sock, tmp)
    except KeyboardInterrupt:
        checker.record("run: interrupted", ["interrupted"])
    except Exception as error:
        traceback.print_exc()
        checker.record("run: unexpected error", [repr(error)])
    finally:
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if checker.failed and log_path.exists():
                tail = log_path.read_text(errors="replace").splitlines()[-20:]
                print("--- last lines of the coffred log:")
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
