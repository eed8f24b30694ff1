"""What every part of the check shares: the identifiers of the run's patients and professionals,
HTTP over the daemon's Unix socket, assertions signed as SignedAssertion.swift does, the spec and
the check of an answer against it, the Checker that records each case, the daemon as the
scenarios see it (`Daemon`), and what they build their cases with: the operations and their
paths, and the `extra` checks of an answer's body."""

from __future__ import annotations

import base64
import datetime
import http.client
import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

try:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
except ImportError:  # pragma: no cover - reported as a clear error by main
    Ed25519PrivateKey = None

REPO = Path(__file__).resolve().parent.parent.parent
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
# Recording the cases


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


# --------------------------------------------------------------------------------------------
# The daemons

# Both daemons rewrap one dossier key per transaction and rest between two, so that a rotation
# runs long enough to be seen running, and its old version refused retirement meanwhile.
ROTATION_BATCH, ROTATION_PAUSE_MS = 1, 200


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


@dataclass(frozen=True)
class Daemon:
    """A running coffred as the scenarios see it: the checker that records their cases, the
    daemon's socket, the issuer whose assertions it trusts, and its state directory (read
    directly for what no answer says: the index, the blobs, the key files)."""
    checker: Checker
    sock: str
    issuer: Issuer
    state: Path

    def send(self, method: str, path: str, **kwargs):
        """A request made when the case runs it (see Checker.case)."""
        return lambda: request(self.sock, method, path, **kwargs)

    def send_json(self, op: tuple[str, str], path: str, headers: dict, body):
        """A JSON body (bytes are sent as they are) for operation `op`; remembered with the daemon's
        verdict, to check the request schema against it (see static.request_schemas_agree)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()

        def go():
            reply = request(self.sock, op[0], path, headers={**headers, **JSON_HEADERS}, body=data)
            self.checker.sent_json.append((op, data, reply.status, reply.code))
            return reply
        return go


# --------------------------------------------------------------------------------------------
# The operations (the spec's method and path template) and the paths the cases send them to

HEALTH_GET = ("GET", "/v1/health")
STATUS_GET = ("GET", "/v1/admin/status")
DOSSIER_POST = ("POST", "/v1/patients/{ins}/dossier")
DOSSIER_GET = ("GET", "/v1/patients/{ins}/dossier")
ATTENDING_PUT = ("PUT", "/v1/patients/{ins}/dossier/attending-doctor")
PREFS_PATCH = ("PATCH", "/v1/patients/{ins}/dossier/preferences")
CLOSE_POST = ("POST", "/v1/patients/{ins}/dossier/close")
REOPEN_POST = ("POST", "/v1/patients/{ins}/dossier/reopen")
OPPOSE_POST = ("POST", "/v1/patients/{ins}/dossier/oppose")
ACCESS_GET = ("GET", "/v1/patients/{ins}/access")
EMERGENCY_PATCH = ("PATCH", "/v1/patients/{ins}/access/emergency")
MEMBER_PUT = ("PUT", "/v1/patients/{ins}/access/{list}/{member}")
MEMBER_DELETE = ("DELETE", "/v1/patients/{ins}/access/{list}/{member}")
DOCS_POST = ("POST", "/v1/patients/{ins}/documents")
DOCS_GET = ("GET", "/v1/patients/{ins}/documents")
DOC_GET = ("GET", "/v1/patients/{ins}/documents/{id}")
DOC_DELETE = ("DELETE", "/v1/patients/{ins}/documents/{id}")
CONTENT_GET = ("GET", "/v1/patients/{ins}/documents/{id}/content")
REPLACE_POST = ("POST", "/v1/patients/{ins}/documents/{id}/replace")
MASK_POST = ("POST", "/v1/patients/{ins}/documents/{id}/mask")
UNMASK_POST = ("POST", "/v1/patients/{ins}/documents/{id}/unmask")
RELEASE_POST = ("POST", "/v1/patients/{ins}/documents/{id}/release")
TRACE_GET = ("GET", "/v1/patients/{ins}/trace")
NOTES_GET = ("GET", "/v1/patients/{ins}/notifications")
ACK_POST = ("POST", "/v1/patients/{ins}/notifications/ack")
VERIFY_POST = ("POST", "/v1/admin/verify")
CLOCK_GET = ("GET", "/v1/admin/clock")
CLOCK_POST = ("POST", "/v1/admin/clock")
HOLD_POST = ("POST", "/v1/admin/patients/{ins}/hold")
HOLD_DELETE = ("DELETE", "/v1/admin/patients/{ins}/hold")
DEATH_POST = ("POST", "/v1/admin/patients/{ins}/death")
DUE_GET = ("GET", "/v1/retention/due")
RUN_POST = ("POST", "/v1/retention/run")
KEYS_GET = ("GET", "/v1/admin/keys")
KEYS_RELOAD = ("POST", "/v1/admin/keys/reload")
KEYS_ROTATE = ("POST", "/v1/admin/keys/rotate")
KEYS_RETIRE = ("POST", "/v1/admin/keys/{version}/retire")
REKEY_POST = ("POST", "/v1/admin/patients/{ins}/rekey")

# Paths, `%`-formatted with the INS (then the document id, or the list and the member).
PATIENT = "/v1/patients/%s"
DOSSIER = PATIENT + "/dossier"
ATTENDING_DOCTOR, PREFERENCES = DOSSIER + "/attending-doctor", DOSSIER + "/preferences"
CLOSE, REOPEN, OPPOSE = DOSSIER + "/close", DOSSIER + "/reopen", DOSSIER + "/oppose"
ACCESS = PATIENT + "/access"
EMERGENCY, MEMBER = ACCESS + "/emergency", ACCESS + "/%s/%s"
DOCS = PATIENT + "/documents"
DOC = DOCS + "/%s"
CONTENT, REPLACE, MASK, UNMASK, RELEASE = DOC + "/content", DOC + "/replace", DOC + "/mask", DOC + "/unmask", DOC + "/release"
TRACE, NOTES, ACK = PATIENT + "/trace", PATIENT + "/notifications", PATIENT + "/notifications/ack"
HOLD, DEATH, REKEY = "/v1/admin/patients/%s/hold", "/v1/admin/patients/%s/death", "/v1/admin/patients/%s/rekey"
RETIRE = "/v1/admin/keys/%s/retire"
CLOCK = "/v1/admin/clock"
DUE, RUN = "/v1/retention/due", "/v1/retention/run"

JSON_HEADERS = {"Content-Type": "application/json"}
NDJSON = {"Accept": "application/x-ndjson"}
EMERGENCY_REASON = "patient inconscient aux urgences"


# --------------------------------------------------------------------------------------------
# Building cases


def auth(token: str) -> dict:
    """An Authorization header carrying `token` as it is, every time it is sent (unlike
    Issuer.auth): for assertions the daemon must refuse, or accept once."""
    return {"Authorization": "Coffre-Assertion " + token}


def pro_auth(issuer: "Issuer", rpps: str, profession: str = "10", mode: str = "normal", **extra) -> dict:
    """A professional's Authorization header (a written reason added for bris_de_glace)."""
    if mode == "bris_de_glace":
        extra.setdefault("reason", EMERGENCY_REASON)
    return issuer.auth(rpps, role="professional", profession=profession, mode=mode, **extra)


def stored_id(reply) -> str:
    """The id of a document (or dossier) a case created, or UNKNOWN_ID if it was not created."""
    return reply.json()["id"] if reply is not None and reply.status == 201 else UNKNOWN_ID


def json_is(check):
    """An `extra` check: `check(body)` must be true."""
    def extra(reply):
        body = reply.json()
        return [] if check(body) else ["unexpected body: %s" % json.dumps(body, ensure_ascii=False)[:400]]
    return extra


def json_is_ascii(check):
    """`json_is`, the unexpected body shown ASCII-escaped and cut at 300 characters: the system,
    dossier, assertion and patient 1 document cases report it so."""
    def extra(reply):
        body = reply.json()
        return [] if check(body) else ["unexpected body: %s" % json.dumps(body)[:300]]
    return extra


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
