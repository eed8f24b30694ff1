"""Dossiers created and read, first through the `coffre` client as a user would, then over
HTTP with the refusals of createDossier and getDossier; and the assertions every person-level
call carries, each way of getting one wrong tried on getDossier."""

from __future__ import annotations

import re
import time
from pathlib import Path

from .common import (
    DOSSIER, DOSSIER_GET, DOSSIER_POST, INS1, INS2, INS3, INS4, INS_BAD_KEY, JSON_HEADERS, RPPS, UNKNOWN_ID, Daemon,
    Ed25519PrivateKey, Issuer, auth, json_is_ascii, luhn_broken, request, run_client,
)


def exercise_dossiers(d: Daemon, bin_dir: Path, tmp: Path) -> str:
    """Patient 1's dossier and first document through the client, then the dossier and assertion
    cases; returns the id of the document the client stored."""
    client_doc = set_up_with_client(d, bin_dir, tmp)
    create_and_get_dossiers(d)
    assertions_on_get_dossier(d)
    assertion_claims_schema(d)
    return client_doc


def set_up_with_client(d: Daemon, bin_dir: Path, tmp: Path) -> str:
    """`coffre dossier create` and `coffre doc put` for patient 1: the client and the daemon agree
    (the document is read back over HTTP in documents.get_document)."""
    checker, sock = d.checker, d.sock
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
    return client_doc


def create_and_get_dossiers(d: Daemon):
    """Patient 2's dossier created (patient 1's was, by the client); createDossier's and
    getDossier's refusals, in the documented order."""
    checker, send = d.checker, d.send
    p1, p2, p3, p4 = (d.issuer.auth(i) for i in (INS1, INS2, INS3, INS4))
    checker.case("createDossier with {} -> 201", DOSSIER_POST,
                 send("POST", DOSSIER % INS2, headers={**p2, **JSON_HEADERS}, body=b"{}"), 201,
                 extra=json_is_ascii(lambda b: b["ins"] == INS2 and b["state"] == "active" and b["documentCount"] == 0))
    checker.case("createDossier again -> 409 dossier_exists", DOSSIER_POST,
                 send("POST", DOSSIER % INS2, headers=p2), 409, "dossier_exists")
    checker.case("createDossier without assertion -> 401 assertion_missing", DOSSIER_POST,
                 send("POST", DOSSIER % INS3), 401, "assertion_missing")
    checker.case("createDossier invalid INS -> 400 invalid_ins", DOSSIER_POST,
                 send("POST", DOSSIER % INS_BAD_KEY, headers=p3), 400, "invalid_ins")
    checker.case("createDossier for another patient -> 403 access_denied", DOSSIER_POST,
                 send("POST", DOSSIER % INS3, headers=p1), 403, "access_denied")
    checker.case("createDossier with invalid JSON -> 400 malformed_json", DOSSIER_POST,
                 send("POST", DOSSIER % INS3, headers={**p3, **JSON_HEADERS}, body=b"{"), 400, "malformed_json")
    checker.case("createDossier: body over 64 KiB -> 413 payload_too_large", DOSSIER_POST,
                 send("POST", DOSSIER % INS3, headers={**p3, **JSON_HEADERS}, body=b" " * (70 * 1024) + b"{}"),
                 413, "payload_too_large")
    checker.case("createDossier: JSON body that is not an object -> 400 malformed_json", DOSSIER_POST,
                 send("POST", DOSSIER % INS4, headers={**p4, **JSON_HEADERS}, body=b'"x"'), 400, "malformed_json")
    checker.case("getDossier -> 200", DOSSIER_GET, send("GET", DOSSIER % INS1, headers=p1), 200,
                 extra=json_is_ascii(lambda b: b["ins"] == INS1 and b["documentCount"] == 1))
    checker.case("getDossier with lower-case path INS is the same dossier -> 200", DOSSIER_GET,
                 send("GET", DOSSIER % INS1.lower(), headers=p1), 200)
    checker.case("getDossier of a patient without one -> 404 dossier_not_found", DOSSIER_GET,
                 send("GET", DOSSIER % INS3, headers=p3), 404, "dossier_not_found")
    checker.case("getDossier of another patient -> 403 access_denied", DOSSIER_GET,
                 send("GET", DOSSIER % INS2, headers=p1), 403, "access_denied")
    checker.case("getDossier invalid INS -> 400 invalid_ins", DOSSIER_GET,
                 send("GET", DOSSIER % "12345", headers=p1), 400, "invalid_ins")
    checker.case("getDossier INS with a wrong key -> 400 invalid_ins", DOSSIER_GET,
                 send("GET", DOSSIER % INS_BAD_KEY, headers=p1), 400, "invalid_ins")


def padded(token: str) -> str:
    """The token with its claims' base64 padded (`=`), which the daemon refuses."""
    prefix, payload, signature = token.split(".")
    return "%s.%s=.%s" % (prefix, payload, signature)


def assertions_on_get_dossier(d: Daemon):
    """Every way an assertion can be wrong (scheme, shape, claims, issuer, signature, times,
    roles), each with its code; single use (a replay); a header block too large."""
    checker, send, sock, issuer, state = d.checker, d.send, d.sock, d.issuer, d.state
    p1 = issuer.auth(INS1)
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
        checker.case("getDossier: " + label, DOSSIER_GET, send("GET", DOSSIER % INS1, headers=headers), status, code)

    # Single-use: the same token a second time is a replay.
    replayed = auth(issuer.token(INS1))
    request(sock, "GET", DOSSIER % INS1, headers=replayed)
    checker.case("getDossier: the same assertion twice -> 401 assertion_replayed", DOSSIER_GET,
                 send("GET", DOSSIER % INS1, headers=replayed), 401, "assertion_replayed")
    checker.case("getDossier: a 40 KiB header block -> 431 headers_too_large", DOSSIER_GET,
                 send("GET", DOSSIER % INS1, headers={**p1, "X-Padding": "a" * 40_000}), 431, "headers_too_large")


def assertion_claims_schema(d: Daemon):
    """The AssertionClaims schema accepts what the daemon accepts and refuses a claim set without
    mode."""
    checker, sock, issuer = d.checker, d.sock, d.issuer
    no_mode = issuer.claims(INS1)
    del no_mode["mode"]
    accepted = issuer.claims(INS1, specialty="SM26", organization="750000001", reason="r")
    reply = request(sock, "GET", DOSSIER % INS1, headers=auth(issuer.sign_claims(accepted)))
    problems = [] if reply.status == 200 else ["the daemon refused the claims: %d %s" % (reply.status, reply.code)]
    problems += checker.spec.errors("/components/schemas/AssertionClaims", accepted)
    if not checker.spec.errors("/components/schemas/AssertionClaims", no_mode):
        problems.append("the schema accepts claims without mode, which the daemon refuses")
    checker.record("AssertionClaims schema agrees with the daemon", problems)
