"""The system operations (health, the operator's status, refused to a caller who is no
operator) and the requests no operation serves."""

from __future__ import annotations

from pathlib import Path

from .common import (
    DOCS, DOCTOR, DOSSIER, HEALTH_GET, INS1, STATUS_GET, UNKNOWN_ID, Daemon, json_is_ascii,
)
from .other_users import admin_as_other_user


def check_system(d: Daemon, tmp: Path):
    """The first cases of the development run: the daemon is up, in development mode, and its own
    user is an operator; another user is not (as root only)."""
    checker, send = d.checker, d.send
    checker.case("getHealth -> 200", HEALTH_GET, send("GET", "/v1/health"), 200,
                 extra=json_is_ascii(lambda b: b["status"] == "ok" and b["developmentMode"] is True))
    checker.case("getAdminStatus as the daemon's user -> 200", STATUS_GET, send("GET", "/v1/admin/status"), 200,
                 extra=json_is_ascii(lambda b: b["activeMasterKeyVersion"] in b["installedMasterKeyVersions"]))
    checker.case("getAdminStatus ignores an Authorization header -> 200", STATUS_GET,
                 send("GET", "/v1/admin/status", headers={"Authorization": "Coffre-Assertion nonsense"}), 200)
    admin_as_other_user(checker, d.sock, d.state, tmp)


def route_not_found(d: Daemon):
    """Unknown routes, versions and methods, at the end of the development run: each answers the
    RouteNotFound response, whatever the dossier's state."""
    checker, send = d.checker, d.send
    p1 = d.issuer.auth(INS1)
    for label, method, path in [
        ("unknown route GET /v1/nope", "GET", "/v1/nope"),
        ("unknown route under a patient", "GET", "/v1/patients/%s/nope" % INS1),
        ("unknown version GET /v2/health", "GET", "/v2/health"),
        ("wrong method DELETE /v1/health", "DELETE", "/v1/health"),
        ("wrong method PUT on a dossier", "PUT", DOSSIER % INS1),
        ("unknown access list", "PUT", "/v1/patients/%s/access/friends/%s" % (INS1, DOCTOR)),
        ("access member without a list", "PUT", "/v1/patients/%s/access/%s" % (INS1, DOCTOR)),
        ("wrong method GET on an access member", "GET", "/v1/patients/%s/access/authorized/%s" % (INS1, DOCTOR)),
        ("wrong method POST on the attending doctor", "POST", "/v1/patients/%s/dossier/attending-doctor" % INS1),
        ("wrong method GET on mask", "GET", DOCS % INS1 + "/%s/mask" % UNKNOWN_ID),
        ("unknown document action", "POST", DOCS % INS1 + "/%s/archive" % UNKNOWN_ID),
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
