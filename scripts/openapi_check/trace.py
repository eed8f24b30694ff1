"""Patient 4's dossier: the notifications that accesses by professionals and new documents
give, their acknowledgement, the preferences that steer them, and the trace of it all with who
may read it; then fail closed: while the trace cannot be written, every person-level operation
answers 503 trace_unavailable and changes nothing."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from .common import (
    ACCESS, ACCESS_GET, ACK, ACK_POST, ADMINISTRATOR, ATTENDING, ATTENDING_PUT, CLOSE_POST, CONTENT_GET, DOC,
    DOC_DELETE, DOC_GET, DOCS, DOCS_GET, DOCS_POST, DOCTOR, DOSSIER, DOSSIER_GET, DOSSIER_POST, EMERGENCY_PATCH,
    EMERGENCY_REASON, INS1, INS3, INS4, INS_BAD_KEY, INS_LOCKED, JSON_HEADERS, MASK_POST, MEMBER, MEMBER_DELETE,
    MEMBER_PUT, NOTES, NOTES_GET, OPPOSE_POST, PATIENT, PHARMACIST, PREFS_PATCH, RELEASE, RELEASE_POST, REOPEN_POST,
    REPLACE, REPLACE_POST, STRANGER, TRACE, TRACE_GET, UNKNOWN_ID, UNMASK_POST, Daemon, json_is, near_now, notices,
    pro_auth, request, stored_id, trace_is,
)


@dataclass(frozen=True)
class Patient4Documents:
    """Patient 4's documents that later cases act on."""
    lab: str     # stored by the patient, read by the authorised doctor under the matrix
    hidden: str  # a new version of a document still hidden from the patient (time releases it: verify_clock)


def exercise_trace_and_notifications(d: Daemon) -> Patient4Documents:
    """Patient 4's new dossier: médecin traitant, administrator, authorised doctor; accesses by
    professionals and what they notify; acknowledgements; the preferences that steer notices;
    replacements of hidden documents; then the trace of it all and who may read it."""
    a_new_dossier_notices_nothing(d)
    lab, added, hidden1, hidden2 = professionals_at_work(d)
    patient_notices, medecin_notices = notifications_listed(d, added)
    acknowledgements(d, patient_notices, medecin_notices)
    preferences_steer_notices(d)
    hidden1_v2, hidden2_v2 = new_versions_of_hidden_documents(d, hidden1, hidden2)
    trace_read(d, lab, hidden1_v2)
    return Patient4Documents(lab=lab, hidden=hidden2_v2)


def a_new_dossier_notices_nothing(d: Daemon):
    """The dossier and the patient's decisions (a blocked professional made administrator: the
    block lifted); no notice yet, and a trace from the creation to this very read."""
    checker, send, send_json, issuer = d.checker, d.send, d.send_json, d.issuer
    p4 = issuer.auth(INS4)
    checker.case("createDossier for patient 4 -> 201", DOSSIER_POST, send("POST", DOSSIER % INS4, headers=p4), 201)
    checker.case("setAttendingDoctor for patient 4 -> 200", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, PATIENT % INS4 + "/dossier/attending-doctor", p4, {"rpps": ATTENDING, "profession": "10"}), 200)
    checker.case("addAccessMember authorized the administrator for patient 4 -> 200", MEMBER_PUT,
                 send("PUT", MEMBER % (INS4, "authorized", ADMINISTRATOR), headers=p4), 200)
    checker.case("addAccessMember administrators for patient 4 -> 200", MEMBER_PUT,
                 send("PUT", MEMBER % (INS4, "administrators", ADMINISTRATOR), headers=p4), 200)
    checker.case("addAccessMember authorized for patient 4 -> 200", MEMBER_PUT,
                 send("PUT", MEMBER % (INS4, "authorized", DOCTOR), headers=p4), 200,
                 extra=json_is(lambda b: b["authorized"] == sorted([ADMINISTRATOR, DOCTOR]) and b["administrators"] == [ADMINISTRATOR]
                               and b["attendingDoctor"] == ATTENDING))
    checker.case("addAccessMember blocked the pharmacist -> 200", MEMBER_PUT,
                 send("PUT", MEMBER % (INS4, "blocked", PHARMACIST), headers=p4), 200,
                 extra=json_is(lambda b: b["blocked"] == [PHARMACIST]))
    checker.case("addAccessMember authorized the blocked pharmacist -> 200", MEMBER_PUT,
                 send("PUT", MEMBER % (INS4, "authorized", PHARMACIST), headers=p4), 200,
                 extra=json_is(lambda b: b["blocked"] == [PHARMACIST] and PHARMACIST in b["authorized"]))
    checker.case("addAccessMember administrators a blocked professional -> 200, the block lifted", MEMBER_PUT,
                 send("PUT", MEMBER % (INS4, "administrators", PHARMACIST), headers=p4), 200,
                 extra=json_is(lambda b: b["administrators"] == sorted([ADMINISTRATOR, PHARMACIST]) and b["blocked"] == []))
    checker.case("removeAccessMember administrators the pharmacist -> 200", MEMBER_DELETE,
                 send("DELETE", MEMBER % (INS4, "administrators", PHARMACIST), headers=p4), 200,
                 extra=json_is(lambda b: b["administrators"] == [ADMINISTRATOR]))
    checker.case("removeAccessMember blocked the pharmacist -> 200", MEMBER_DELETE,
                 send("DELETE", MEMBER % (INS4, "blocked", PHARMACIST), headers=p4), 200,
                 extra=json_is(lambda b: b["blocked"] == []))
    manage_calls = 9  # the dossier.manage decisions above

    # --- a new dossier: no notice, a trace from its creation
    checker.case("listNotifications of a new dossier -> 200 empty", NOTES_GET, send("GET", NOTES % INS4, headers=p4), 200,
                 extra=json_is(lambda b: b == {"notifications": []}))
    checker.case("getTrace by the patient -> 200, from the creation to this very read", TRACE_GET,
                 send("GET", TRACE % INS4, headers=p4), 200,
                 extra=trace_is(lambda es: es[0]["action"] == "dossier.create" and es[0]["rule"] == "patient.own-dossier"
                                and es[0]["actor"] == {"role": "patient", "id": INS4} and es[0]["mode"] == "normal"
                                and [e["action"] for e in es[1:]]
                                == ["dossier.manage"] * manage_calls + ["notifications.read", "trace.read"]
                                and all(e["outcome"] == "allowed" and "errorCode" not in e for e in es)
                                and es[-1]["rule"] == "patient.own-dossier"))


def professionals_at_work(d: Daemon) -> tuple[str, str, str, str]:
    """First accesses, a document added, two hidden from the patient, an emergency access.
    Returns the ids of the patient's lab results, the document added and the two hidden ones."""
    checker, send, issuer = d.checker, d.send, d.issuer
    p4, doctor = issuer.auth(INS4), pro_auth(issuer, DOCTOR)
    stranger_bdg = pro_auth(issuer, STRANGER, mode="bris_de_glace")
    lab = stored_id(checker.case("storeDocument by patient 4 -> 201", DOCS_POST,
                                 send("POST", DOCS % INS4, headers={**p4, "Coffre-Class": "BIOLOGIE"}, body=b"glycemie"), 201))
    checker.case("getDossier by the authorised doctor, a first access -> 200", DOSSIER_GET,
                 send("GET", DOSSIER % INS4, headers=doctor), 200)
    checker.case("getDocument by the authorised doctor, under the matrix -> 200", DOC_GET,
                 send("GET", DOC % (INS4, lab), headers=doctor), 200)
    added = stored_id(checker.case("storeDocument by the authorised doctor -> 201", DOCS_POST,
                                   send("POST", DOCS % INS4, headers={**doctor, "Coffre-Class": "CPT_REND"}, body=b"cr"), 201))
    hidden1, hidden2 = (stored_id(checker.case(
        "storeDocument by the authorised doctor, hidden from the patient (%d) -> 201" % n, DOCS_POST,
        send("POST", DOCS % INS4, headers={**doctor, "Coffre-Class": "CPT_REND", "Coffre-Hidden-From": "patient"},
             body=b"annonce %d" % n), 201, extra=json_is(lambda b: b["hiddenFromPatient"] is True))) for n in (1, 2))
    checker.case("getDossier in bris_de_glace by a professional -> 200", DOSSIER_GET,
                 send("GET", DOSSIER % INS4, headers=stranger_bdg), 200)
    return lab, added, hidden1, hidden2


def notifications_listed(d: Daemon, added: str) -> tuple[list, list]:
    """Who gets which notices (the patient and the representative; the médecin traitant and the
    administrators), and who may not list them. Returns the patient's and the médecin traitant's
    notices so far."""
    checker, send, issuer = d.checker, d.send, d.issuer
    p1, p3, p4 = (issuer.auth(i) for i in (INS1, INS3, INS4))
    p4_c15 = issuer.auth(INS4, mode="centre_15")
    rep4 = issuer.auth(INS1, role="representative", patient=INS4)  # patient 1, legal representative of patient 4
    doctor, attending, administrator = (pro_auth(issuer, r) for r in (DOCTOR, ATTENDING, ADMINISTRATOR))
    stranger_bdg = pro_auth(issuer, STRANGER, mode="bris_de_glace")
    patient_notices = [("professional_access", "patient", DOCTOR), ("document_added", "patient", DOCTOR),
                       ("emergency_access", "patient", STRANGER), ("professional_access", "patient", STRANGER)]
    checker.case("listNotifications by the patient -> 200: first accesses, the document added, the emergency", NOTES_GET,
                 send("GET", NOTES % INS4, headers=p4), 200,
                 extra=json_is(lambda b: notices(b) == patient_notices
                               and b["notifications"][1].get("documentId") == added
                               and EMERGENCY_REASON in b["notifications"][2]["message"]
                               and b["notifications"][0]["message"].startswith("Premier accès")
                               and all("acknowledgedAt" not in n for n in b["notifications"])))
    checker.case("listNotifications by the legal representative -> 200, the patient's", NOTES_GET,
                 send("GET", NOTES % INS4, headers=rep4), 200, extra=json_is(lambda b: notices(b) == patient_notices))
    medecin_notices = [("emergency_access", "medecin_traitant", STRANGER)]
    checker.case("listNotifications by the médecin traitant -> 200, the emergency", NOTES_GET,
                 send("GET", NOTES % INS4, headers=attending), 200, extra=json_is(lambda b: notices(b) == medecin_notices))
    checker.case("listNotifications by an administrator -> 200, the médecin traitant's", NOTES_GET,
                 send("GET", NOTES % INS4, headers=administrator), 200,
                 extra=json_is(lambda b: notices(b) == medecin_notices))
    checker.case("listNotifications by the authorised doctor -> 403 access_denied", NOTES_GET,
                 send("GET", NOTES % INS4, headers=doctor), 403, "access_denied")
    checker.case("listNotifications by a professional in bris_de_glace -> 403 access_denied", NOTES_GET,
                 send("GET", NOTES % INS4, headers=stranger_bdg), 403, "access_denied")
    checker.case("listNotifications by another patient -> 403 access_denied", NOTES_GET,
                 send("GET", NOTES % INS4, headers=p1), 403, "access_denied")
    checker.case("listNotifications by the patient in centre_15 mode -> 403 access_denied", NOTES_GET,
                 send("GET", NOTES % INS4, headers=p4_c15), 403, "access_denied")
    checker.case("listNotifications without a dossier -> 404 dossier_not_found", NOTES_GET,
                 send("GET", NOTES % INS3, headers=p3), 404, "dossier_not_found")
    checker.case("listNotifications invalid INS -> 400 invalid_ins", NOTES_GET,
                 send("GET", NOTES % INS_BAD_KEY, headers=p4), 400, "invalid_ins")
    checker.case("listNotifications without assertion -> 401 assertion_missing", NOTES_GET,
                 send("GET", NOTES % INS4), 401, "assertion_missing")
    return patient_notices, medecin_notices


def acknowledgements(d: Daemon, patient_notices: list, medecin_notices: list):
    """acknowledgeNotifications, all or by id (each recipient its own), what listNotifications
    then shows, and its refusals."""
    checker, send, send_json, issuer = d.checker, d.send, d.send_json, d.issuer
    p1, p3, p4 = (issuer.auth(i) for i in (INS1, INS3, INS4))
    rep4 = issuer.auth(INS1, role="representative", patient=INS4)
    doctor, attending, administrator = (pro_auth(issuer, r) for r in (DOCTOR, ATTENDING, ADMINISTRATOR))
    checker.case("acknowledgeNotifications all, by the médecin traitant -> 200, 1", ACK_POST,
                 send_json(ACK_POST, ACK % INS4, attending, {"all": True}), 200,
                 extra=json_is(lambda b: b == {"acknowledged": 1}))
    checker.case("listNotifications by an administrator once acknowledged -> 200 empty", NOTES_GET,
                 send("GET", NOTES % INS4, headers=administrator), 200, extra=json_is(lambda b: b == {"notifications": []}))
    history = checker.case("listNotifications ?all=true by an administrator -> 200 with acknowledgedAt", NOTES_GET,
                           send("GET", NOTES % INS4 + "?all=true", headers=administrator), 200,
                           extra=json_is(lambda b: notices(b) == medecin_notices
                                         and near_now(b["notifications"][0]["acknowledgedAt"])))
    medecin_id = history.json()["notifications"][0]["id"] if history is not None and history.status == 200 else UNKNOWN_ID
    # The médecin traitant's and the administrator's reads were their first accesses.
    patient_notices += [("professional_access", "patient", ATTENDING), ("professional_access", "patient", ADMINISTRATOR)]
    listed = checker.case("listNotifications by the patient: the médecin traitant's and administrator's first accesses "
                          "-> 200", NOTES_GET, send("GET", NOTES % INS4, headers=p4), 200,
                          extra=json_is(lambda b: notices(b) == patient_notices))
    ids = ([n["id"] for n in listed.json()["notifications"]] if listed is not None and listed.status == 200 else [])
    ids += [UNKNOWN_ID] * (2 - len(ids))
    checker.case("acknowledgeNotifications one id -> 200, 1", ACK_POST, send_json(ACK_POST, ACK % INS4, p4, {"ids": [ids[0]]}),
                 200, extra=json_is(lambda b: b == {"acknowledged": 1}))
    checker.case("acknowledgeNotifications the same id again -> 200, 0", ACK_POST,
                 send_json(ACK_POST, ACK % INS4, p4, {"ids": [ids[0]]}), 200, extra=json_is(lambda b: b == {"acknowledged": 0}))
    checker.case("acknowledgeNotifications an unknown id and the médecin traitant's -> 200, 0", ACK_POST,
                 send_json(ACK_POST, ACK % INS4, p4, {"ids": [UNKNOWN_ID, medecin_id, "nonsense"]}), 200,
                 extra=json_is(lambda b: b == {"acknowledged": 0}))
    checker.case("acknowledgeNotifications ids with all false -> 200, 1", ACK_POST,
                 send_json(ACK_POST, ACK % INS4, p4, {"ids": [ids[1]], "all": False}), 200,
                 extra=json_is(lambda b: b == {"acknowledged": 1}))
    checker.case("listNotifications after acknowledgements -> 200, the pending ones", NOTES_GET,
                 send("GET", NOTES % INS4, headers=p4), 200, extra=json_is(lambda b: notices(b) == patient_notices[2:]))
    checker.case("listNotifications ?all=true -> 200, the acknowledged ones too", NOTES_GET,
                 send("GET", NOTES % INS4 + "?all=true", headers=p4), 200,
                 extra=json_is(lambda b: notices(b) == patient_notices
                               and ["acknowledgedAt" in n for n in b["notifications"]] == [True, True, False, False, False, False]))
    checker.case("acknowledgeNotifications all, by the legal representative -> 200, 4", ACK_POST,
                 send_json(ACK_POST, ACK % INS4, rep4, {"all": True}), 200, extra=json_is(lambda b: b == {"acknowledged": 4}))
    checker.case("listNotifications once all acknowledged -> 200 empty", NOTES_GET, send("GET", NOTES % INS4, headers=p4), 200,
                 extra=json_is(lambda b: b == {"notifications": []}))
    for label, body in [("{}", {}), ("all false alone", {"all": False}), ("ids and all true", {"ids": [ids[0]], "all": True}),
                        ("ids not an array", {"ids": ids[0]}), ("all a string", {"all": "true"}),
                        ("an array", [ids[0]]), ("not JSON", b"all=true")]:
        checker.case("acknowledgeNotifications %s -> 400 malformed_json" % label, ACK_POST,
                     send_json(ACK_POST, ACK % INS4, p4, body), 400, "malformed_json")
    checker.case("acknowledgeNotifications body over 64 KiB -> 413 payload_too_large", ACK_POST,
                 send("POST", ACK % INS4, headers={**p4, **JSON_HEADERS}, body=b" " * (70 * 1024) + b'{"all": true}'),
                 413, "payload_too_large")
    checker.case("acknowledgeNotifications by the authorised doctor -> 403 access_denied", ACK_POST,
                 send_json(ACK_POST, ACK % INS4, doctor, {"all": True}), 403, "access_denied")
    checker.case("acknowledgeNotifications by another patient -> 403 access_denied", ACK_POST,
                 send_json(ACK_POST, ACK % INS4, p1, {"all": True}), 403, "access_denied")
    checker.case("acknowledgeNotifications without a dossier -> 404 dossier_not_found", ACK_POST,
                 send_json(ACK_POST, ACK % INS3, p3, {"all": True}), 404, "dossier_not_found")
    checker.case("acknowledgeNotifications malformed, without a dossier -> 400 malformed_json (body first)", ACK_POST,
                 send_json(ACK_POST, ACK % INS3, p3, {}), 400, "malformed_json")
    checker.case("acknowledgeNotifications invalid INS -> 400 invalid_ins", ACK_POST,
                 send_json(ACK_POST, ACK % INS_BAD_KEY, p4, {"all": True}), 400, "invalid_ins")
    checker.case("acknowledgeNotifications without assertion -> 401 assertion_missing", ACK_POST,
                 send_json(ACK_POST, ACK % INS4, {}, {"all": True}), 401, "assertion_missing")


def preferences_steer_notices(d: Daemon):
    """notifyEveryAccess and notifyNewDocuments decide what the patient is told."""
    checker, send, send_json, issuer = d.checker, d.send, d.send_json, d.issuer
    p4, doctor = issuer.auth(INS4), pro_auth(issuer, DOCTOR)
    checker.case("setPreferences notifyEveryAccess on, notifyNewDocuments off -> 200", PREFS_PATCH,
                 send_json(PREFS_PATCH, PATIENT % INS4 + "/dossier/preferences", p4,
                           {"notifyEveryAccess": True, "notifyNewDocuments": False}), 200)
    checker.case("storeDocument by the doctor, new documents not notified -> 201", DOCS_POST,
                 send("POST", DOCS % INS4, headers={**doctor, "Coffre-Class": "ORD_SOIN"}, body=b"ordonnance"), 201)
    checker.case("listNotifications: the access notified, not the document -> 200", NOTES_GET,
                 send("GET", NOTES % INS4, headers=p4), 200,
                 extra=json_is(lambda b: notices(b) == [("professional_access", "patient", DOCTOR)]
                               and not b["notifications"][0]["message"].startswith("Premier")))
    checker.case("setPreferences notices back to the defaults -> 200", PREFS_PATCH,
                 send_json(PREFS_PATCH, PATIENT % INS4 + "/dossier/preferences", p4,
                           {"notifyEveryAccess": False, "notifyNewDocuments": True}), 200,
                 extra=json_is(lambda b: b["preferences"]["notifyEveryAccess"] is False))
    checker.case("acknowledgeNotifications all -> 200, 1", ACK_POST, send_json(ACK_POST, ACK % INS4, p4, {"all": True}), 200,
                 extra=json_is(lambda b: b == {"acknowledged": 1}))


def new_versions_of_hidden_documents(d: Daemon, hidden1: str, hidden2: str) -> tuple[str, str]:
    """A new version of a released document is not hidden again; one of a document still hidden
    stays hidden, and is not notified. Returns the ids of the new versions (released, hidden)."""
    checker, send, send_json, issuer = d.checker, d.send, d.send_json, d.issuer
    p4 = issuer.auth(INS4)
    doctor, attending = pro_auth(issuer, DOCTOR), pro_auth(issuer, ATTENDING)
    checker.case("releaseDocument hidden (1) by the médecin traitant -> 200", RELEASE_POST,
                 send("POST", RELEASE % (INS4, hidden1), headers=attending), 200)
    hidden1_v2 = stored_id(checker.case(
        "replaceDocument of a released hidden document -> 201, not hidden again", REPLACE_POST,
        send("POST", REPLACE % (INS4, hidden1), headers=doctor, body=b"annonce 1, v2"), 201,
        extra=json_is(lambda b: b["replaces"] == hidden1 and b["hiddenFromPatient"] is False)))
    checker.case("getDocument of that new version, by the patient -> 200", DOC_GET,
                 send("GET", DOC % (INS4, hidden1_v2), headers=p4), 200)
    hidden2_v2 = stored_id(checker.case(
        "replaceDocument of a document still hidden -> 201, still hidden", REPLACE_POST,
        send("POST", REPLACE % (INS4, hidden2), headers=doctor, body=b"annonce 2, v2"), 201,
        extra=json_is(lambda b: b["replaces"] == hidden2 and b["hiddenFromPatient"] is True)))
    checker.case("getDocument of that new version, by the patient -> 403 access_denied", DOC_GET,
                 send("GET", DOC % (INS4, hidden2_v2), headers=p4), 403, "access_denied")
    checker.case("listNotifications: the release, and the visible new version, not the hidden one -> 200", NOTES_GET,
                 send("GET", NOTES % INS4, headers=p4), 200,
                 extra=json_is(lambda b: notices(b) == [("document_released", "patient", ATTENDING),
                                                        ("document_replaced", "patient", DOCTOR)]
                               and b["notifications"][0].get("documentId") == hidden1
                               and b["notifications"][1].get("documentId") == hidden1_v2))
    checker.case("acknowledgeNotifications all -> 200, 2 (the release and the replacement)", ACK_POST,
                 send_json(ACK_POST, ACK % INS4, p4, {"all": True}), 200, extra=json_is(lambda b: b == {"acknowledged": 2}))
    return hidden1_v2, hidden2_v2


def trace_read(d: Daemon, lab: str, hidden1_v2: str):
    """The trace of all this (denials, the emergency and its reason, the matrix, replacements),
    paged with ?after=, and who may read it."""
    checker, send, issuer = d.checker, d.send, d.issuer
    p1, p3, p4 = (issuer.auth(i) for i in (INS1, INS3, INS4))
    p4_c15 = issuer.auth(INS4, mode="centre_15")
    rep4 = issuer.auth(INS1, role="representative", patient=INS4)
    doctor, attending, administrator = (pro_auth(issuer, r) for r in (DOCTOR, ATTENDING, ADMINISTRATOR))
    stranger_bdg = pro_auth(issuer, STRANGER, mode="bris_de_glace")
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
        # A replacement's entry names the new version.
        return e["action"] == "document.replace" and e.get("documentId") == hidden1_v2 and e["rule"] == "document.author"
    full = checker.case("getTrace by the patient -> 200: denials, the emergency, the matrix, replacements", TRACE_GET,
                        send("GET", TRACE % INS4, headers=p4), 200,
                        extra=trace_is(lambda es: any(map(denied_notice_read, es)) and any(map(emergency, es))
                                       and any(map(matrix_read, es)) and any(map(replaced, es))
                                       and es[0]["action"] == "dossier.create" and es[-1]["action"] == "trace.read"
                                       and all(near_now(e["at"]) for e in es)))
    last = full.json()["entries"][-1]["seq"] if full is not None and full.status == 200 else 0
    checker.case("getTrace ?after= the last seq -> 200, only this read", TRACE_GET,
                 send("GET", TRACE % INS4 + "?after=%d" % last, headers=p4), 200,
                 extra=trace_is(lambda es: len(es) == 1 and es[0]["seq"] > last and es[0]["action"] == "trace.read"))
    checker.case("getTrace ?after=0 -> 200, from the creation", TRACE_GET,
                 send("GET", TRACE % INS4 + "?after=0", headers=p4), 200,
                 extra=trace_is(lambda es: es[0]["action"] == "dossier.create" and len(es) >= 3))
    checker.case("getTrace by the legal representative -> 200", TRACE_GET, send("GET", TRACE % INS4, headers=rep4), 200,
                 extra=trace_is(lambda es: es[-1]["actor"] == {"role": "representative", "id": INS1}
                                and es[-1]["rule"] == "representative.of-patient"))
    checker.case("getTrace by the médecin traitant -> 200", TRACE_GET, send("GET", TRACE % INS4, headers=attending), 200,
                 extra=trace_is(lambda es: es[-1]["actor"]["id"] == ATTENDING and es[-1]["rule"] == "professional.medecin-traitant"))
    checker.case("getTrace by an administrator -> 200", TRACE_GET, send("GET", TRACE % INS4, headers=administrator), 200,
                 extra=trace_is(lambda es: es[-1]["rule"] == "professional.administrator"))
    checker.case("getTrace by the authorised doctor -> 403 access_denied", TRACE_GET,
                 send("GET", TRACE % INS4, headers=doctor), 403, "access_denied")
    checker.case("getTrace by a professional in bris_de_glace -> 403 access_denied", TRACE_GET,
                 send("GET", TRACE % INS4, headers=stranger_bdg), 403, "access_denied")
    checker.case("getTrace by another patient -> 403 access_denied", TRACE_GET,
                 send("GET", TRACE % INS4, headers=p1), 403, "access_denied")
    checker.case("getTrace by the patient in centre_15 mode -> 403 access_denied", TRACE_GET,
                 send("GET", TRACE % INS4, headers=p4_c15), 403, "access_denied")
    for bad in ["-1", "abc", "1.5", "", "99999999999999999999"]:
        checker.case("getTrace ?after=%s -> 400 malformed_request" % bad, TRACE_GET,
                     send("GET", TRACE % INS4 + "?after=" + bad, headers=p4), 400, "malformed_request")
    checker.case("getTrace bad after, without a dossier -> 400 malformed_request (after first)", TRACE_GET,
                 send("GET", TRACE % INS3 + "?after=x", headers=p3), 400, "malformed_request")
    checker.case("getTrace without a dossier -> 404 dossier_not_found", TRACE_GET,
                 send("GET", TRACE % INS3, headers=p3), 404, "dossier_not_found")
    checker.case("getTrace invalid INS -> 400 invalid_ins", TRACE_GET,
                 send("GET", TRACE % INS_BAD_KEY, headers=p4), 400, "invalid_ins")
    checker.case("getTrace without assertion -> 401 assertion_missing", TRACE_GET,
                 send("GET", TRACE % INS4), 401, "assertion_missing")
    checker.case("getTrace expired assertion -> 401 assertion_expired", TRACE_GET,
                 send("GET", TRACE % INS4, headers=issuer.auth(INS4, iat=int(time.time()) - 4000, lifetime=3000)),
                 401, "assertion_expired")


# The person-level operations, by the operationId the labels below start with.
OPS = {
    "createDossier": DOSSIER_POST, "getDossier": DOSSIER_GET, "setAttendingDoctor": ATTENDING_PUT,
    "setPreferences": PREFS_PATCH, "getAccess": ACCESS_GET, "setEmergencyAccess": EMERGENCY_PATCH,
    "addAccessMember": MEMBER_PUT, "removeAccessMember": MEMBER_DELETE, "storeDocument": DOCS_POST,
    "listDocuments": DOCS_GET, "getDocument": DOC_GET, "deleteDocument": DOC_DELETE, "getDocumentContent": CONTENT_GET,
    "replaceDocument": REPLACE_POST, "maskDocument": MASK_POST, "unmaskDocument": UNMASK_POST,
    "releaseDocument": RELEASE_POST, "getTrace": TRACE_GET, "listNotifications": NOTES_GET,
    "acknowledgeNotifications": ACK_POST, "closeDossier": CLOSE_POST, "reopenDossier": REOPEN_POST,
    "opposeDossier": OPPOSE_POST,
}


def refused_while_locked(d: Daemon, docs4: Patient4Documents) -> list:
    """One call of each person-level operation, each of which must answer 503 while the trace
    cannot be written: (label, request)."""
    send, send_json, issuer = d.send, d.send_json, d.issuer
    p1, p3, p4 = (issuer.auth(i) for i in (INS1, INS3, INS4))
    doctor = pro_auth(issuer, DOCTOR)
    lab, hidden = docs4.lab, docs4.hidden
    locked = issuer.auth(INS_LOCKED)
    cases = [
        ("createDossier", send("POST", DOSSIER % INS3, headers=p3)),
        ("getDossier", send("GET", DOSSIER % INS4, headers=p4)),
        ("getDossier by another patient (a denial)", send("GET", DOSSIER % INS4, headers=p1)),
        ("setAttendingDoctor", send_json(OPS["setAttendingDoctor"], DOSSIER % INS4 + "/attending-doctor", p4, {"rpps": DOCTOR, "profession": "10"})),
        ("setPreferences", send_json(OPS["setPreferences"], DOSSIER % INS4 + "/preferences", p4, {"maskNewDocuments": True})),
        ("getAccess", send("GET", ACCESS % INS4, headers=p4)),
        ("setEmergencyAccess", send_json(OPS["setEmergencyAccess"], ACCESS % INS4 + "/emergency", p4, {"brisDeGlace": False})),
        ("addAccessMember", send("PUT", ACCESS % INS4 + "/authorized/" + PHARMACIST, headers=p4)),
        ("removeAccessMember", send("DELETE", ACCESS % INS4 + "/authorized/" + DOCTOR, headers=p4)),
        ("storeDocument", send("POST", DOCS % INS4, headers={**p4, "Coffre-Class": "BIOLOGIE"}, body=b"x")),
        ("listDocuments", send("GET", DOCS % INS4, headers=p4)),
        ("getDocument", send("GET", DOC % (INS4, lab), headers=p4)),
        ("deleteDocument", send("DELETE", DOC % (INS4, lab), headers=p4)),
        ("getDocumentContent", send("GET", DOC % (INS4, lab) + "/content", headers=p4)),
        ("replaceDocument", send("POST", DOC % (INS4, lab) + "/replace", headers=p4, body=b"x")),
        ("maskDocument", send("POST", DOC % (INS4, lab) + "/mask", headers=p4)),
        ("unmaskDocument", send("POST", DOC % (INS4, lab) + "/unmask", headers=p4)),
        ("releaseDocument", send("POST", DOC % (INS4, hidden) + "/release", headers=doctor)),
        ("getTrace", send("GET", PATIENT % INS4 + "/trace", headers=p4)),
        ("listNotifications", send("GET", PATIENT % INS4 + "/notifications", headers=p4)),
        ("acknowledgeNotifications", send_json(ACK_POST, PATIENT % INS4 + "/notifications/ack", p4, {"all": True})),
        # On a dossier of its own: were the lock not to hold, the opposition would purge it.
        ("closeDossier", send_json(CLOSE_POST, DOSSIER % INS_LOCKED + "/close", locked, {"delete": True})),
        ("reopenDossier", send("POST", DOSSIER % INS_LOCKED + "/reopen", headers=locked)),
        ("opposeDossier", send("POST", DOSSIER % INS_LOCKED + "/oppose", headers=locked)),
    ]
    return cases


def exercise_trace_unavailable(d: Daemon, docs4: Patient4Documents):
    """Fail closed: while another process holds the index's write lock, no decision can be
    traced, and every person-level operation answers 503 trace_unavailable, changing nothing."""
    checker, send, sock, state, issuer = d.checker, d.send, d.sock, d.state, d.issuer
    p3, p4 = issuer.auth(INS3), issuer.auth(INS4)
    lab = docs4.lab
    locked = issuer.auth(INS_LOCKED)
    cases = refused_while_locked(d, docs4)
    checker.case("createDossier for the lifecycle under a locked trace -> 201", OPS["createDossier"],
                 send("POST", DOSSIER % INS_LOCKED, headers=locked), 201)
    index = state / "index.sqlite"
    before = request(sock, "GET", DOSSIER % INS4, headers=p4)
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
                         OPS[label.split(" ")[0]], go, 503, "trace_unavailable")
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    checker.case("getDossier once the trace is writable: nothing was stored -> 200", OPS["getDossier"],
                 send("GET", DOSSIER % INS4, headers=p4), 200, extra=json_is(lambda b: b["documentCount"] == count))
    checker.case("getDossier whose closure and opposition were refused -> 200, still active", OPS["getDossier"],
                 send("GET", DOSSIER % INS_LOCKED, headers=locked), 200,
                 extra=json_is(lambda b: b["state"] == "active" and b["deletionRequested"] is False))
    checker.case("getDossier of patient 3, whose creation was refused -> 404 dossier_not_found", OPS["getDossier"],
                 send("GET", DOSSIER % INS3, headers=p3), 404, "dossier_not_found")
    checker.case("getAccess: the refused changes were not made -> 200", OPS["getAccess"],
                 send("GET", ACCESS % INS4, headers=p4), 200,
                 extra=json_is(lambda b: b["attendingDoctor"] == ATTENDING
                               and b["authorized"] == sorted([ADMINISTRATOR, DOCTOR, PHARMACIST])
                               and b["emergency"]["brisDeGlace"] is True and b["preferences"]["maskNewDocuments"] is False))
    checker.case("getDocument: the refused changes were not made -> 200", OPS["getDocument"],
                 send("GET", DOC % (INS4, lab), headers=p4), 200,
                 extra=json_is(lambda b: b["status"] == "current" and b["masked"] is False))
