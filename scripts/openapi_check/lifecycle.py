"""The dossier lifecycle: close, reopen, oppose; a closed dossier read-only; closure on death;
legal holds, placed and released by operators; the retention job, with the development clock
past the opposition window and the purge dates (set back to the real time at the end). Each
story has a patient of its own: purges cannot be undone."""

from __future__ import annotations

import datetime
import json
import os
import time
from dataclasses import dataclass

from .common import (
    ACCESS, ACK_POST, ADMINISTRATOR, ATTENDING, CLOCK_GET, CLOCK_POST, CLOSE, CLOSE_POST, DOC, DOCS, DOCTOR, DOSSIER,
    DOSSIER_GET, DOSSIER_POST, DUE, DUE_GET, HOLD, HOLD_DELETE, HOLD_POST, INS1, INS3, INS4, INS_BAD_KEY, INS_CLOSE,
    INS_DEATH, INS_HELD, INS_LATE, INS_OPPOSE, JSON_HEADERS, KEYS_GET, NOTES_GET, OPPOSE, OPPOSE_POST, PATIENT, PHARMACIST,
    REOPEN, REOPEN_POST, RUN, RUN_POST, TRACE_GET, UNKNOWN_ID, VERIFY_POST, Checker, Daemon, Issuer, json_is, near_now,
    parse_time, pro_auth, stored_id, trace_is,
)
from .keys import keys_is

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


# The operations the lifecycle cases name, by operationId.
OPS = {
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

# One patient per story (purges cannot be undone), and the reason of the legal holds.
STORY_PATIENTS = (INS_CLOSE, INS_OPPOSE, INS_DEATH, INS_LATE, INS_HELD)
HOLD_REASON = "réquisition judiciaire n° 2026-114"


def story_patients(issuer: Issuer) -> dict:
    """Each story's patient's Authorization header, by INS."""
    return {ins: issuer.auth(ins) for ins in STORY_PATIENTS}


@dataclass(frozen=True)
class Stories:
    """The lifecycle's dossiers, and what the later cases need of them."""
    ids: dict    # the dossier id of each story's patient, by INS
    own: str     # stored by the patient in the dossier to close
    hidden: str  # stored by the doctor in the dossier to close, hidden from the patient


def exercise_lifecycle(d: Daemon):
    """Close, reopen, oppose; a closed dossier read-only; legal holds; the retention job, with
    the development clock past the opposition window and the purge dates (set back to the real
    time at the end). Each story has a patient of its own: purges cannot be undone."""
    stories = one_dossier_per_story(d)
    close_refusals(d)
    closed_read_only(d, stories)
    reopen(d, stories)
    oppose(d, stories)
    close_on_death(d)
    legal_holds(d, stories)
    retention_at_the_real_time(d, stories)
    a_month_on(d)
    three_months_on(d, stories)
    ten_years_on(d, stories)
    back_to_the_real_time(d)


def one_dossier_per_story(d: Daemon) -> Stories:
    """A dossier per story, all active and not held; the one to close gets an authorised doctor
    and two documents, the one to close on death a médecin traitant and an administrator."""
    checker, send, send_json, issuer = d.checker, d.send, d.send_json, d.issuer
    pat, doctor = story_patients(issuer), pro_auth(issuer, DOCTOR)
    ids = {}
    for label, ins in [("to close", INS_CLOSE), ("to oppose", INS_OPPOSE), ("to close on death", INS_DEATH),
                       ("to oppose too late", INS_LATE), ("to hold", INS_HELD)]:
        reply = checker.case("createDossier %s -> 201, active, no hold" % label, DOSSIER_POST,
                             send("POST", DOSSIER % ins, headers=pat[ins]), 201,
                             extra=json_is(lambda b: active_view(b) and b["legalHold"] is False))
        ids[ins] = reply.json()["id"] if reply is not None and reply.status == 201 else UNKNOWN_ID
    checker.case("addAccessMember authorized the doctor, dossier to close -> 200", OPS["addAccessMember"],
                 send("PUT", ACCESS % INS_CLOSE + "/authorized/" + DOCTOR, headers=pat[INS_CLOSE]), 200)
    own = stored_id(checker.case("storeDocument by the patient, dossier to close -> 201", OPS["storeDocument"],
                                 send("POST", DOCS % INS_CLOSE, headers={**pat[INS_CLOSE], "Coffre-Class": "BIOLOGIE"},
                                      body=b"ferritine"), 201))
    hidden = stored_id(checker.case(
        "storeDocument by the doctor, hidden from the patient, dossier to close -> 201", OPS["storeDocument"],
        send("POST", DOCS % INS_CLOSE, headers={**doctor, "Coffre-Class": "CPT_REND", "Coffre-Hidden-From": "patient"},
             body=b"annonce"), 201))
    checker.case("setAttendingDoctor, dossier to close on death -> 200", OPS["setAttendingDoctor"],
                 send_json(OPS["setAttendingDoctor"], DOSSIER % INS_DEATH + "/attending-doctor", pat[INS_DEATH],
                           {"rpps": ATTENDING, "profession": "10"}), 200)
    checker.case("addAccessMember authorized the administrator, dossier to close on death -> 200", OPS["addAccessMember"],
                 send("PUT", ACCESS % INS_DEATH + "/authorized/" + ADMINISTRATOR, headers=pat[INS_DEATH]), 200)
    checker.case("addAccessMember administrators, dossier to close on death -> 200", OPS["addAccessMember"],
                 send("PUT", ACCESS % INS_DEATH + "/administrators/" + ADMINISTRATOR, headers=pat[INS_DEATH]), 200)
    checker.case("addAccessMember authorized the doctor, dossier to close on death -> 200", OPS["addAccessMember"],
                 send("PUT", ACCESS % INS_DEATH + "/authorized/" + DOCTOR, headers=pat[INS_DEATH]), 200,
                 extra=json_is(lambda b: b["attendingDoctor"] == ATTENDING and b["administrators"] == [ADMINISTRATOR]))
    checker.case("storeDocument by the patient, dossier to oppose -> 201", OPS["storeDocument"],
                 send("POST", DOCS % INS_OPPOSE, headers={**pat[INS_OPPOSE], "Coffre-Class": "DOC_ADM"}, body=b"x"), 201)
    return Stories(ids, own, hidden)


def close_refusals(d: Daemon):
    """closeDossier's refusals, in the documented order (a death is the médecin traitant's or an
    administrator's to record, and asks for no deletion); each traced, nothing changes."""
    checker, send, send_json, issuer = d.checker, d.send, d.send_json, d.issuer
    p1, p3, pat = issuer.auth(INS1), issuer.auth(INS3), story_patients(issuer)
    rep_close = issuer.auth(INS1, role="representative", patient=INS_CLOSE)
    doctor, attending, administrator = (pro_auth(issuer, r) for r in (DOCTOR, ATTENDING, ADMINISTRATOR))
    pc = pat[INS_CLOSE]
    for label, body in [("an empty body", b""), ("not JSON", b"delete=true"), ("an array", [True]),
                        ("delete a string", {"delete": "yes"}), ("death a number", {"death": 1})]:
        checker.case("closeDossier %s -> 400 malformed_json" % label, CLOSE_POST,
                     send_json(CLOSE_POST, CLOSE % INS_CLOSE, pc, body), 400, "malformed_json")
    checker.case("closeDossier body over 64 KiB -> 413 payload_too_large", CLOSE_POST,
                 send("POST", CLOSE % INS_CLOSE, headers={**pc, **JSON_HEADERS}, body=b" " * (70 * 1024) + b"{}"),
                 413, "payload_too_large")
    checker.case("closeDossier malformed, without a dossier -> 400 malformed_json (body first)", CLOSE_POST,
                 send_json(CLOSE_POST, CLOSE % INS3, p3, b"{"), 400, "malformed_json")
    checker.case("closeDossier without a dossier -> 404 dossier_not_found", CLOSE_POST,
                 send_json(CLOSE_POST, CLOSE % INS3, p3, {}), 404, "dossier_not_found")
    checker.case("closeDossier invalid INS -> 400 invalid_ins", CLOSE_POST,
                 send_json(CLOSE_POST, CLOSE % INS_BAD_KEY, pc, {}), 400, "invalid_ins")
    checker.case("closeDossier without assertion -> 401 assertion_missing", CLOSE_POST,
                 send_json(CLOSE_POST, CLOSE % INS_CLOSE, {}, {}), 401, "assertion_missing")
    checker.case("closeDossier of another patient's dossier -> 403 access_denied", CLOSE_POST,
                 send_json(CLOSE_POST, CLOSE % INS_CLOSE, p1, {}), 403, "access_denied")
    checker.case("closeDossier by the patient in centre_15 mode -> 403 access_denied", CLOSE_POST,
                 send_json(CLOSE_POST, CLOSE % INS_CLOSE, issuer.auth(INS_CLOSE, mode="centre_15"), {}), 403, "access_denied")
    checker.case("closeDossier by an authorised doctor -> 403 access_denied", CLOSE_POST,
                 send_json(CLOSE_POST, CLOSE % INS_CLOSE, doctor, {}), 403, "access_denied")
    checker.case("closeDossier on death by an authorised doctor -> 403 access_denied", CLOSE_POST,
                 send_json(CLOSE_POST, CLOSE % INS_DEATH, doctor, {"death": True}), 403, "access_denied")
    checker.case("closeDossier by the médecin traitant without death -> 403 access_denied", CLOSE_POST,
                 send_json(CLOSE_POST, CLOSE % INS_DEATH, attending, {}), 403, "access_denied")
    checker.case("closeDossier by an administrator, death false, delete true -> 403 access_denied", CLOSE_POST,
                 send_json(CLOSE_POST, CLOSE % INS_DEATH, administrator, {"death": False, "delete": True}), 403,
                 "access_denied")
    checker.case("closeDossier on death by the patient -> 403 access_denied (a death is the médecin traitant's to record)", CLOSE_POST,
                 send_json(CLOSE_POST, CLOSE % INS_CLOSE, pc, {"death": True}), 403, "access_denied")
    checker.case("closeDossier on death by the legal representative -> 403 access_denied", CLOSE_POST,
                 send_json(CLOSE_POST, CLOSE % INS_CLOSE, rep_close, {"death": True, "delete": False}), 403,
                 "access_denied")
    checker.case("closeDossier on death with a deletion request -> 400 invalid_metadata", CLOSE_POST,
                 send_json(CLOSE_POST, CLOSE % INS_DEATH, attending, {"death": True, "delete": True}), 400, "invalid_metadata")
    for ins in (INS_CLOSE, INS_DEATH):
        checker.case("getDossier after the refused closures -> 200, still active", DOSSIER_GET,
                     send("GET", DOSSIER % ins, headers=pat[ins]), 200, extra=json_is(active_view))
    # Each refused closure is one entry: denied by the rules, or (the death with a deletion
    # request, allowed to the médecin traitant) refused for its form.
    checker.case("getTrace after the refused closures -> 200, each refusal traced once", TRACE_GET,
                 send("GET", PATIENT % INS_DEATH + "/trace", headers=pat[INS_DEATH]), 200,
                 extra=trace_is(lambda es: len(refused := [(e["outcome"], e.get("errorCode")) for e in es
                                                           if e["action"] in ("dossier.close", "dossier.close-on-death")]) >= 3
                                and ("refused", "invalid_metadata") in refused
                                and all(r in (("denied", "access_denied"), ("refused", "invalid_metadata")) for r in refused)))


def closed_read_only(d: Daemon, stories: Stories):
    """The dossier closed by the patient (kept ten years): reads answer, every change is refused
    under dossier.closed-read-only and traced, nothing changes."""
    checker, send, send_json, issuer = d.checker, d.send, d.send_json, d.issuer
    pc, doctor = issuer.auth(INS_CLOSE), pro_auth(issuer, DOCTOR)
    ids, own, hidden = stories.ids, stories.own, stories.hidden
    checker.case("closeDossier by the patient -> 200, closed, purge in ten years", CLOSE_POST,
                 send_json(CLOSE_POST, CLOSE % INS_CLOSE, pc, {"ignored": 1}), 200,
                 # The count is what the caller may see, as getDossier's: not the doctor's document
                 # still hidden from the patient.
                 extra=json_is(lambda b: closed_view("patient_request", False)(b) and b["id"] == ids[INS_CLOSE]
                               and b["documentCount"] == 1 and b["ins"] == INS_CLOSE))
    checker.case("closeDossier again -> 409 illegal_transition", CLOSE_POST,
                 send_json(CLOSE_POST, CLOSE % INS_CLOSE, pc, {"delete": True}), 409, "illegal_transition")
    checker.case("getDossier closed, by the patient -> 200, closed", DOSSIER_GET,
                 send("GET", DOSSIER % INS_CLOSE, headers=pc), 200, extra=json_is(closed_view("patient_request", False)))
    checker.case("getDossier closed, by the authorised doctor -> 403 access_denied (its holder's alone)", DOSSIER_GET,
                 send("GET", DOSSIER % INS_CLOSE, headers=doctor), 403, "access_denied")
    checker.case("getDossier closed, by its holder -> 200", DOSSIER_GET,
                 send("GET", DOSSIER % INS_CLOSE, headers=pc), 200, extra=json_is(lambda b: b["state"] == "closed"))
    checker.case("listDocuments closed -> 200", OPS["listDocuments"], send("GET", DOCS % INS_CLOSE, headers=pc), 200,
                 extra=json_is(lambda b: [d["id"] for d in b["documents"]] == [own]))
    checker.case("getDocument closed -> 200", OPS["getDocument"], send("GET", DOC % (INS_CLOSE, own), headers=pc), 200)
    checker.case("getDocumentContent closed -> 200", OPS["getDocumentContent"],
                 send("GET", DOC % (INS_CLOSE, own) + "/content", headers=pc), 200,
                 extra=lambda r: [] if r.body == b"ferritine" else ["content differs"])
    checker.case("listNotifications closed -> 200", NOTES_GET, send("GET", PATIENT % INS_CLOSE + "/notifications", headers=pc),
                 200)
    checker.case("acknowledgeNotifications closed (a read) -> 200", ACK_POST,
                 send_json(ACK_POST, PATIENT % INS_CLOSE + "/notifications/ack", pc, {"all": True}), 200)
    checker.case("getAccess closed (a read) -> 200", OPS["getAccess"], send("GET", ACCESS % INS_CLOSE, headers=pc), 200,
                 extra=json_is(lambda b: b["authorized"] == [DOCTOR]))
    writes = [
        ("storeDocument by the patient", "storeDocument",
         send("POST", DOCS % INS_CLOSE, headers={**pc, "Coffre-Class": "BIOLOGIE"}, body=b"x")),
        ("storeDocument by the authorised doctor", "storeDocument",
         send("POST", DOCS % INS_CLOSE, headers={**doctor, "Coffre-Class": "CPT_REND"}, body=b"x")),
        ("replaceDocument by its author", "replaceDocument",
         send("POST", DOC % (INS_CLOSE, own) + "/replace", headers=pc, body=b"x")),
        ("deleteDocument by its author", "deleteDocument", send("DELETE", DOC % (INS_CLOSE, own), headers=pc)),
        ("maskDocument", "maskDocument", send("POST", DOC % (INS_CLOSE, own) + "/mask", headers=pc)),
        ("unmaskDocument", "unmaskDocument", send("POST", DOC % (INS_CLOSE, own) + "/unmask", headers=pc)),
        ("releaseDocument by its author", "releaseDocument",
         send("POST", DOC % (INS_CLOSE, hidden) + "/release", headers=doctor)),
        ("setAttendingDoctor", "setAttendingDoctor",
         send_json(OPS["setAttendingDoctor"], DOSSIER % INS_CLOSE + "/attending-doctor", pc, {"rpps": ATTENDING, "profession": "10"})),
        ("setPreferences", "setPreferences",
         send_json(OPS["setPreferences"], DOSSIER % INS_CLOSE + "/preferences", pc, {"maskNewDocuments": True})),
        ("setEmergencyAccess", "setEmergencyAccess",
         send_json(OPS["setEmergencyAccess"], ACCESS % INS_CLOSE + "/emergency", pc, {"brisDeGlace": False})),
        ("addAccessMember", "addAccessMember", send("PUT", ACCESS % INS_CLOSE + "/authorized/" + PHARMACIST, headers=pc)),
        ("removeAccessMember", "removeAccessMember",
         send("DELETE", ACCESS % INS_CLOSE + "/authorized/" + DOCTOR, headers=pc)),
    ]
    for label, name, go in writes:
        checker.case("%s on a closed dossier -> 403 access_denied" % label, OPS[name], go, 403, "access_denied")
    # The doctor's two are refused as professionals' (a closed dossier is its holder's alone),
    # the patient's as changes to a read-only dossier. The refused release names a document
    # hidden from the patient: the patient's trace leaves such entries out.
    written = {"document.add", "document.replace", "document.delete", "document.mask", "dossier.manage"}

    def read_only(es):
        refused = [e for e in es if e.get("rule") == "dossier.closed-read-only"]
        professionals = [e for e in es if e.get("rule") == "dossier.closed-holder-only"]
        return ({e["action"] for e in refused} == written and len(refused) == len(writes) - 2
                and any(e["action"] == "document.add" for e in professionals)
                and all(e["outcome"] == "denied" and e["errorCode"] == "access_denied" for e in refused + professionals)
                and any(e["action"] == "dossier.close" and e["rule"] == "patient.own-dossier" for e in es))
    checker.case("getTrace closed -> 200: the closure, the changes refused under dossier.closed-read-only", TRACE_GET,
                 send("GET", PATIENT % INS_CLOSE + "/trace", headers=pc), 200, extra=trace_is(read_only))
    checker.case("getDocument after the refused changes -> 200, unchanged", OPS["getDocument"],
                 send("GET", DOC % (INS_CLOSE, own), headers=pc), 200,
                 extra=json_is(lambda b: b["status"] == "current" and b["masked"] is False))
    # documentCount counts what the caller may see: the patient does not count the document
    # still hidden from them.
    checker.case("getDossier after the refused changes -> 200, nothing stored", DOSSIER_GET,
                 send("GET", DOSSIER % INS_CLOSE, headers=pc), 200, extra=json_is(lambda b: b["documentCount"] == 1))


def reopen(d: Daemon, stories: Stories):
    """reopenDossier's refusals, then by the legal representative (everything kept); the dossier
    closed again, with a deletion request (purged three months on)."""
    checker, send, send_json, issuer = d.checker, d.send, d.send_json, d.issuer
    p1, p3, pat = issuer.auth(INS1), issuer.auth(INS3), story_patients(issuer)
    pc, doctor = pat[INS_CLOSE], pro_auth(issuer, DOCTOR)
    rep_close = issuer.auth(INS1, role="representative", patient=INS_CLOSE)
    ids = stories.ids
    checker.case("reopenDossier of an active dossier -> 409 illegal_transition", REOPEN_POST,
                 send("POST", REOPEN % INS_LATE, headers=pat[INS_LATE]), 409, "illegal_transition")
    checker.case("reopenDossier by the authorised doctor -> 403 access_denied", REOPEN_POST,
                 send("POST", REOPEN % INS_CLOSE, headers=doctor), 403, "access_denied")
    checker.case("reopenDossier of another patient's dossier -> 403 access_denied", REOPEN_POST,
                 send("POST", REOPEN % INS_CLOSE, headers=p1), 403, "access_denied")
    checker.case("reopenDossier by the patient in centre_15 mode -> 403 access_denied", REOPEN_POST,
                 send("POST", REOPEN % INS_CLOSE, headers=issuer.auth(INS_CLOSE, mode="centre_15")), 403, "access_denied")
    checker.case("reopenDossier without a dossier -> 404 dossier_not_found", REOPEN_POST,
                 send("POST", REOPEN % INS3, headers=p3), 404, "dossier_not_found")
    checker.case("reopenDossier invalid INS -> 400 invalid_ins", REOPEN_POST,
                 send("POST", REOPEN % INS_BAD_KEY, headers=pc), 400, "invalid_ins")
    checker.case("reopenDossier without assertion -> 401 assertion_missing", REOPEN_POST,
                 send("POST", REOPEN % INS_CLOSE), 401, "assertion_missing")
    checker.case("reopenDossier by the legal representative -> 200, active again, everything kept", REOPEN_POST,
                 send("POST", REOPEN % INS_CLOSE, headers=rep_close), 200,
                 extra=json_is(lambda b: active_view(b) and b["id"] == ids[INS_CLOSE] and b["documentCount"] == 1))
    checker.case("storeDocument once reopened -> 201", OPS["storeDocument"],
                 send("POST", DOCS % INS_CLOSE, headers={**pc, "Coffre-Class": "BIOLOGIE"}, body=b"ferritine 2"), 201)
    checker.case("getTrace once reopened -> 200, the reopening by the representative", TRACE_GET,
                 send("GET", PATIENT % INS_CLOSE + "/trace", headers=pc), 200,
                 extra=trace_is(lambda es: any(e["action"] == "dossier.reopen" and e["outcome"] == "allowed"
                                               and e["actor"] == {"role": "representative", "id": INS1} for e in es)))
    checker.case("closeDossier with a deletion request, by the legal representative -> 200, purge in three months",
                 CLOSE_POST, send_json(CLOSE_POST, CLOSE % INS_CLOSE, rep_close, {"delete": True, "death": False}), 200,
                 extra=json_is(lambda b: closed_view("patient_request", True)(b) and b["documentCount"] == 2))


def oppose(d: Daemon, stories: Stories):
    """opposeDossier's refusals, then by the patient within the window: purged at once."""
    checker, send, issuer = d.checker, d.send, d.issuer
    p1, p3, pat = issuer.auth(INS1), issuer.auth(INS3), story_patients(issuer)
    pc, attending = pat[INS_CLOSE], pro_auth(issuer, ATTENDING)
    ids = stories.ids
    checker.case("opposeDossier of a closed dossier -> 409 illegal_transition", OPPOSE_POST,
                 send("POST", OPPOSE % INS_CLOSE, headers=pc), 409, "illegal_transition")
    checker.case("opposeDossier by the médecin traitant -> 403 access_denied", OPPOSE_POST,
                 send("POST", OPPOSE % INS_DEATH, headers=attending), 403, "access_denied")
    checker.case("opposeDossier of another patient's dossier -> 403 access_denied", OPPOSE_POST,
                 send("POST", OPPOSE % INS_OPPOSE, headers=p1), 403, "access_denied")
    checker.case("opposeDossier by the patient in centre_15 mode -> 403 access_denied", OPPOSE_POST,
                 send("POST", OPPOSE % INS_OPPOSE, headers=issuer.auth(INS_OPPOSE, mode="centre_15")), 403, "access_denied")
    checker.case("opposeDossier without a dossier -> 404 dossier_not_found", OPPOSE_POST,
                 send("POST", OPPOSE % INS3, headers=p3), 404, "dossier_not_found")
    checker.case("opposeDossier invalid INS -> 400 invalid_ins", OPPOSE_POST,
                 send("POST", OPPOSE % INS_BAD_KEY, headers=p3), 400, "invalid_ins")
    checker.case("opposeDossier without assertion -> 401 assertion_missing", OPPOSE_POST,
                 send("POST", OPPOSE % INS_OPPOSE), 401, "assertion_missing")
    checker.case("getDossier after the refused oppositions -> 200, still active", DOSSIER_GET,
                 send("GET", DOSSIER % INS_OPPOSE, headers=pat[INS_OPPOSE]), 200,
                 extra=json_is(lambda b: active_view(b) and b["documentCount"] == 1))
    checker.case("opposeDossier within the window, by the patient -> 200, purged", OPPOSE_POST,
                 send("POST", OPPOSE % INS_OPPOSE, headers=pat[INS_OPPOSE]), 200,
                 extra=json_is(lambda b: b == {"id": ids[INS_OPPOSE], "state": "purged"}))
    for label, op, method, path in [("getDossier", DOSSIER_GET, "GET", DOSSIER), ("listDocuments", OPS["listDocuments"], "GET", DOCS),
                                    ("getTrace", TRACE_GET, "GET", PATIENT + "/trace"),
                                    ("opposeDossier", OPPOSE_POST, "POST", OPPOSE), ("reopenDossier", REOPEN_POST, "POST", REOPEN)]:
        checker.case("%s of the opposed dossier -> 404 dossier_not_found" % label, op,
                     send(method, path % INS_OPPOSE, headers=pat[INS_OPPOSE]), 404, "dossier_not_found")


def close_on_death(d: Daemon):
    """A closure on death, by the médecin traitant: kept ten years, never reopened."""
    checker, send, send_json, issuer = d.checker, d.send, d.send_json, d.issuer
    pat = story_patients(issuer)
    attending, administrator = pro_auth(issuer, ATTENDING), pro_auth(issuer, ADMINISTRATOR)
    checker.case("closeDossier on death by the médecin traitant -> 200, closed, purge in ten years", CLOSE_POST,
                 send_json(CLOSE_POST, CLOSE % INS_DEATH, attending, {"death": True}), 200,
                 extra=json_is(closed_view("death", False)))
    checker.case("closeDossier on death by an administrator, already closed -> 403 access_denied (its holder's alone)",
                 CLOSE_POST, send_json(CLOSE_POST, CLOSE % INS_DEATH, administrator, {"death": True}), 403, "access_denied")
    checker.case("closeDossier by the patient, already closed on death -> 409 illegal_transition", CLOSE_POST,
                 send_json(CLOSE_POST, CLOSE % INS_DEATH, pat[INS_DEATH], {}), 409, "illegal_transition")
    checker.case("reopenDossier closed on death -> 409 illegal_transition", REOPEN_POST,
                 send("POST", REOPEN % INS_DEATH, headers=pat[INS_DEATH]), 409, "illegal_transition")
    checker.case("getDossier closed on death, by the médecin traitant -> 403 access_denied (its holder's alone)", DOSSIER_GET,
                 send("GET", DOSSIER % INS_DEATH, headers=attending), 403, "access_denied")
    checker.case("getDossier closed on death, by its holder's assertion -> 200", DOSSIER_GET,
                 send("GET", DOSSIER % INS_DEATH, headers=pat[INS_DEATH]), 200, extra=json_is(closed_view("death", False)))


def legal_holds(d: Daemon, stories: Stories):
    """placeLegalHold and releaseLegalHold, for operators: on a closed dossier, again, refused,
    traced without their reason; a held active dossier cannot be opposed."""
    checker, send, send_json, issuer = d.checker, d.send, d.send_json, d.issuer
    pat = story_patients(issuer)
    ids = stories.ids
    checker.case("placeLegalHold on a dossier closed on death -> 200, held", HOLD_POST,
                 send_json(HOLD_POST, HOLD % INS_DEATH, {}, {"reason": HOLD_REASON}), 200,
                 extra=json_is(lambda b: closed_view("death", False, held=True)(b) and b["id"] == ids[INS_DEATH]))
    checker.case("placeLegalHold again, another reason -> 200, still held", HOLD_POST,
                 send_json(HOLD_POST, HOLD % INS_DEATH, {}, {"reason": HOLD_REASON + " (bis)", "ignored": True}), 200,
                 extra=json_is(lambda b: b["legalHold"] is True))
    for label, body in [("an empty reason", {"reason": ""}), ("a blank reason", {"reason": " \t "})]:
        checker.case("placeLegalHold %s -> 409 illegal_transition" % label, HOLD_POST,
                     send_json(HOLD_POST, HOLD % INS_LATE, {}, body), 409, "illegal_transition")
    for label, body in [("{}", {}), ("reason a number", {"reason": 114}), ("not JSON", b"reason=x"), ("an empty body", b""),
                        ("an array", [HOLD_REASON])]:
        checker.case("placeLegalHold %s -> 400 malformed_json" % label, HOLD_POST,
                     send_json(HOLD_POST, HOLD % INS_LATE, {}, body), 400, "malformed_json")
    checker.case("placeLegalHold body over 64 KiB -> 413 payload_too_large", HOLD_POST,
                 send("POST", HOLD % INS_LATE, headers=JSON_HEADERS, body=b" " * (70 * 1024) + b'{"reason": "x"}'),
                 413, "payload_too_large")
    checker.case("placeLegalHold malformed, without a dossier -> 400 malformed_json (body first)", HOLD_POST,
                 send_json(HOLD_POST, HOLD % INS3, {}, {}), 400, "malformed_json")
    checker.case("placeLegalHold without a dossier -> 404 dossier_not_found", HOLD_POST,
                 send_json(HOLD_POST, HOLD % INS3, {}, {"reason": HOLD_REASON}), 404, "dossier_not_found")
    checker.case("placeLegalHold invalid INS -> 400 invalid_ins", HOLD_POST,
                 send_json(HOLD_POST, HOLD % INS_BAD_KEY, {}, {"reason": HOLD_REASON}), 400, "invalid_ins")
    checker.case("getDossier after the refused holds -> 200, not held", DOSSIER_GET,
                 send("GET", DOSSIER % INS_LATE, headers=pat[INS_LATE]), 200,
                 extra=json_is(lambda b: active_view(b) and b["legalHold"] is False))
    checker.case("releaseLegalHold of a dossier not held -> 409 illegal_transition", HOLD_DELETE,
                 send("DELETE", HOLD % INS_LATE), 409, "illegal_transition")
    checker.case("releaseLegalHold without a dossier -> 404 dossier_not_found", HOLD_DELETE,
                 send("DELETE", HOLD % INS3), 404, "dossier_not_found")
    checker.case("releaseLegalHold invalid INS -> 400 invalid_ins", HOLD_DELETE,
                 send("DELETE", HOLD % "12345"), 400, "invalid_ins")
    checker.case("getTrace of the held dossier, by the patient -> 200, the holds by an operator", TRACE_GET,
                 send("GET", PATIENT % INS_DEATH + "/trace", headers=pat[INS_DEATH]), 200,
                 extra=trace_is(lambda es: len([e for e in es if e["action"] == "dossier.hold"]) == 2
                                and all(e["outcome"] == "allowed" and e["rule"] == "operator"
                                        and e["actor"] == {"role": "operator", "id": "uid %d" % os.geteuid()}
                                        and "mode" not in e and HOLD_REASON not in json.dumps(e, ensure_ascii=False)
                                        for e in es if e["action"] == "dossier.hold")
                                and any(e["action"] == "dossier.close-on-death" and e["actor"]["id"] == ATTENDING
                                        and e["rule"] == "professional.closes-on-death" for e in es)))
    checker.case("placeLegalHold on an active dossier, ignoring an Authorization header -> 200, held", HOLD_POST,
                 send_json(HOLD_POST, HOLD % INS_HELD, {"Authorization": "Coffre-Assertion nonsense"}, {"reason": HOLD_REASON}), 200,
                 extra=json_is(lambda b: active_view(b) and b["legalHold"] is True))
    checker.case("opposeDossier under legal hold -> 409 illegal_transition", OPPOSE_POST,
                 send("POST", OPPOSE % INS_HELD, headers=pat[INS_HELD]), 409, "illegal_transition")


def batch(checked, purged=0, held=0, failed=0, done=True, dry=False, cursor=None, items=None):
    """An `extra` check of a RetentionBatch: its counts, flags, cursor and (when given) its items,
    in dossier id order."""
    def check(b):
        return (b["checked"] == checked == len(b["items"]) and b["purged"] == purged and b["held"] == held
                and b["failed"] == failed and b["done"] is done and b["dryRun"] is dry
                and (cursor is None or b["cursor"] == cursor)
                and [i["dossierId"] for i in b["items"]] == sorted(i["dossierId"] for i in b["items"])
                and (items is None or [(i["dossierId"], i["verdict"], i["reason"]) for i in b["items"]] == items))
    return json_is(check)


def retention_at_the_real_time(d: Daemon, stories: Stories):
    """The retention job at the real time: nothing due yet; runRetention's refusals."""
    checker, send, send_json = d.checker, d.send, d.send_json
    ids = stories.ids
    checker.case("getRetentionDue -> 200, none due", DUE_GET, send("GET", DUE), 200, extra=json_is(lambda b: b == {"due": 0}))
    checker.case("runRetention {} -> 200, nothing to do", RUN_POST, send_json(RUN_POST, RUN, {}, {}), 200,
                 extra=batch(0, cursor=""))
    checker.case("runRetention a dry run -> 200, nothing to do", RUN_POST, send_json(RUN_POST, RUN, {}, {"dryRun": True}), 200,
                 extra=batch(0, dry=True, cursor=""))
    checker.case("runRetention after a dossier id -> 200, the cursor kept", RUN_POST,
                 send_json(RUN_POST, RUN, {}, {"after": ids[INS_CLOSE], "limit": 10}), 200, extra=batch(0, cursor=ids[INS_CLOSE]))
    for label, body in [("after not an id", {"after": "xyz"}), ("after upper-case", {"after": ids[INS_CLOSE].upper()}),
                        ("after an id too long", {"after": ids[INS_CLOSE] + "0"})]:
        checker.case("runRetention %s -> 400 invalid_identifier" % label, RUN_POST, send_json(RUN_POST, RUN, {}, body),
                     400, "invalid_identifier")
    for label, body in [("an empty body", b""), ("not JSON", b"dryRun=true"), ("an array", []),
                        ("limit a string", {"limit": "5"}), ("dryRun a string", {"dryRun": "yes"}), ("after a number", {"after": 5})]:
        checker.case("runRetention %s -> 400 malformed_json" % label, RUN_POST, send_json(RUN_POST, RUN, {}, body),
                     400, "malformed_json")
    checker.case("runRetention body over 64 KiB -> 413 payload_too_large", RUN_POST,
                 send("POST", RUN, headers=JSON_HEADERS, body=b" " * (70 * 1024) + b"{}"), 413, "payload_too_large")
    checker.case("getRetentionDue ignores an Authorization header -> 200", DUE_GET,
                 send("GET", DUE, headers={"Authorization": "Coffre-Assertion nonsense"}), 200)


def a_month_on(d: Daemon):
    """A month on: the opposition window is over; a closure is dated by the vault clock."""
    checker, send, send_json = d.checker, d.send, d.send_json
    pat = story_patients(d.issuer)
    ahead = set_clock(checker, send_json, "31 days on, past the opposition window", OPPOSITION_DAYS + 1)
    checker.case("opposeDossier after the window -> 409 illegal_transition", OPPOSE_POST,
                 send("POST", OPPOSE % INS_LATE, headers=pat[INS_LATE]), 409, "illegal_transition")
    checker.case("getDossier after the late opposition -> 200, still active", DOSSIER_GET,
                 send("GET", DOSSIER % INS_LATE, headers=pat[INS_LATE]), 200, extra=json_is(active_view))
    checker.case("closeDossier a month on -> 200, dated by the vault clock", CLOSE_POST,
                 send_json(CLOSE_POST, CLOSE % INS_LATE, pat[INS_LATE], {}), 200,
                 extra=json_is(closed_view("patient_request", False, ahead=ahead)))
    checker.case("getRetentionDue a month on -> 200, none due", DUE_GET, send("GET", DUE), 200,
                 extra=json_is(lambda b: b["due"] == 0))


def three_months_on(d: Daemon, stories: Stories):
    """Three months on: the dossier closed with a deletion request is due, and purged (a dry run
    first); the key versions of that time are said older than the purge."""
    checker, send, send_json = d.checker, d.send, d.send_json
    pc = d.issuer.auth(INS_CLOSE)
    ids, own = stories.ids, stories.own
    set_clock(checker, send_json, "91 days on, past the deletion delay", DELETION_DAYS + 1)
    gone = [(ids[INS_CLOSE], "purge", "deletion-request")]
    checker.case("getRetentionDue three months on -> 200, one due", DUE_GET, send("GET", DUE), 200,
                 extra=json_is(lambda b: b["due"] == 1))
    checker.case("runRetention a dry run three months on -> 200, one would be purged", RUN_POST,
                 send_json(RUN_POST, RUN, {}, {"dryRun": True}), 200,
                 extra=batch(1, purged=1, dry=True, cursor=ids[INS_CLOSE], items=gone))
    checker.case("getDossier after the dry run -> 200, still there", DOSSIER_GET,
                 send("GET", DOSSIER % INS_CLOSE, headers=pc), 200, extra=json_is(lambda b: b["state"] == "closed"))
    checker.case("runRetention three months on -> 200, one purged", RUN_POST, send_json(RUN_POST, RUN, {}, {"dryRun": False}),
                 200, extra=batch(1, purged=1, cursor=ids[INS_CLOSE], items=gone))
    # Backups from before these purges hold the destroyed keys: the versions of that time open them.
    checker.case("getMasterKeys after the purges -> 200, the last purge recorded, every version older", KEYS_GET,
                 send("GET", "/v1/admin/keys"), 200,
                 extra=keys_is(lambda b: b.get("purges", {}).get("dossiers", 0) >= 2
                               and all(v["predatesLastPurge"] for v in b["versions"])))
    for label, op, method, path in [("getDossier", DOSSIER_GET, "GET", DOSSIER), ("listDocuments", OPS["listDocuments"], "GET", DOCS),
                                    ("getDocumentContent", OPS["getDocumentContent"], "GET", DOC % ("%s", own) + "/content"),
                                    ("reopenDossier", REOPEN_POST, "POST", REOPEN)]:
        checker.case("%s of the purged dossier -> 404 dossier_not_found" % label, op,
                     send(method, path % INS_CLOSE, headers=pc), 404, "dossier_not_found")
    checker.case("placeLegalHold on the purged dossier -> 404 dossier_not_found", HOLD_POST,
                 send_json(HOLD_POST, HOLD % INS_CLOSE, {}, {"reason": HOLD_REASON}), 404, "dossier_not_found")
    checker.case("getRetentionDue after the purge -> 200, none due", DUE_GET, send("GET", DUE), 200,
                 extra=json_is(lambda b: b["due"] == 0))
    checker.case("runRetention again -> 200, nothing to do", RUN_POST, send_json(RUN_POST, RUN, {}, {}), 200, extra=batch(0))


def ten_years_on(d: Daemon, stories: Stories):
    """Ten years on: the other closed dossiers are due, one of them held; batches and cursors;
    the held one kept until its hold is lifted."""
    checker, send, send_json, issuer = d.checker, d.send, d.send_json, d.issuer
    pat, attending = story_patients(issuer), pro_auth(issuer, ATTENDING)
    ids = stories.ids
    ahead = set_clock(checker, send_json, "ten years on, past the retention", RETENTION_DAYS + OPPOSITION_DAYS + 7)
    first, second = sorted([ids[INS_DEATH], ids[INS_LATE]])
    verdicts = sorted([(ids[INS_DEATH], "held", "legal hold"), (ids[INS_LATE], "purge", "retention-over")])
    checker.case("getRetentionDue ten years on -> 200, two due", DUE_GET, send("GET", DUE), 200,
                 extra=json_is(lambda b: b["due"] == 2))
    checker.case("runRetention a dry run, limit 0 taken as 1 -> 200, one looked at", RUN_POST,
                 send_json(RUN_POST, RUN, {}, {"dryRun": True, "limit": 0}), 200,
                 extra=batch(1, purged=int(first == ids[INS_LATE]), held=int(first == ids[INS_DEATH]), done=False, dry=True,
                             cursor=first))
    checker.case("runRetention a dry run, limit 5000 taken as 2000 -> 200, one purge and one hold", RUN_POST,
                 send_json(RUN_POST, RUN, {}, {"dryRun": True, "limit": 5000}), 200,
                 extra=batch(2, purged=1, held=1, dry=True, cursor=second, items=verdicts))
    checker.case("runRetention limit 1 -> 200, the first batch", RUN_POST, send_json(RUN_POST, RUN, {}, {"limit": 1}), 200,
                 extra=batch(1, purged=int(first == ids[INS_LATE]), held=int(first == ids[INS_DEATH]), done=False, cursor=first,
                             items=verdicts[:1]))
    checker.case("runRetention after the cursor, limit 1 -> 200, the second batch", RUN_POST,
                 send_json(RUN_POST, RUN, {}, {"after": first, "limit": 1}), 200,
                 extra=batch(1, purged=int(second == ids[INS_LATE]), held=int(second == ids[INS_DEATH]), done=False,
                             cursor=second, items=verdicts[1:]))
    checker.case("runRetention after the last cursor -> 200, done", RUN_POST,
                 send_json(RUN_POST, RUN, {}, {"after": second}), 200, extra=batch(0, cursor=second))
    checker.case("getDossier purged after ten years -> 404 dossier_not_found", DOSSIER_GET,
                 send("GET", DOSSIER % INS_LATE, headers=pat[INS_LATE]), 404, "dossier_not_found")
    checker.case("getDossier held past its purge date -> 200, kept", DOSSIER_GET,
                 send("GET", DOSSIER % INS_DEATH, headers=pat[INS_DEATH]), 200,
                 extra=json_is(lambda b: b["state"] == "closed" and b["legalHold"] is True
                               and parse_time(b["purgeDate"]) < time.time() + ahead))
    checker.case("getRetentionDue with the held dossier -> 200, still due", DUE_GET, send("GET", DUE), 200,
                 extra=json_is(lambda b: b["due"] == 1))
    checker.case("releaseLegalHold -> 200, not held", HOLD_DELETE, send("DELETE", HOLD % INS_DEATH), 200,
                 extra=json_is(lambda b: b["state"] == "closed" and b["legalHold"] is False and b["id"] == ids[INS_DEATH]))
    checker.case("releaseLegalHold again -> 409 illegal_transition", HOLD_DELETE, send("DELETE", HOLD % INS_DEATH), 409,
                 "illegal_transition")
    checker.case("getTrace once the hold is lifted -> 200, the release by an operator", TRACE_GET,
                 send("GET", PATIENT % INS_DEATH + "/trace", headers=pat[INS_DEATH]), 200,
                 extra=trace_is(lambda es: any(e["action"] == "dossier.release-hold" and e["rule"] == "operator"
                                               and e["actor"]["role"] == "operator" for e in es)))
    checker.case("runRetention once the hold is lifted -> 200, purged", RUN_POST, send_json(RUN_POST, RUN, {}, {}), 200,
                 extra=batch(1, purged=1, cursor=ids[INS_DEATH], items=[(ids[INS_DEATH], "purge", "retention-over")]))
    # The former médecin traitant learns nothing more than any professional; the patient learns it is gone.
    checker.case("getDossier of the dossier purged after its hold, by its médecin traitant -> 403 access_denied",
                 DOSSIER_GET, send("GET", DOSSIER % INS_DEATH, headers=attending), 403, "access_denied")
    checker.case("getDossier of the dossier purged after its hold, by the patient -> 404 dossier_not_found", DOSSIER_GET,
                 send("GET", DOSSIER % INS_DEATH, headers=pat[INS_DEATH]), 404, "dossier_not_found")
    checker.case("releaseLegalHold of a purged dossier -> 404 dossier_not_found", HOLD_DELETE,
                 send("DELETE", HOLD % INS_DEATH), 404, "dossier_not_found")
    checker.case("getRetentionDue after the purges -> 200, none due", DUE_GET, send("GET", DUE), 200,
                 extra=json_is(lambda b: b["due"] == 0))


def back_to_the_real_time(d: Daemon):
    """Back to the real time; the trace still holds after the purges."""
    checker, send, send_json, issuer = d.checker, d.send, d.send_json, d.issuer
    set_clock(checker, send_json, "back to the real time", 0)
    checker.case("getClock -> 200, the real time again", CLOCK_GET, send("GET", "/v1/admin/clock"), 200,
                 extra=json_is(lambda b: b["settable"] is True and near_now(b["now"], 10)))
    checker.case("getDossier of patient 4, untouched by the retention runs -> 200, active", DOSSIER_GET,
                 send("GET", DOSSIER % INS4, headers=issuer.auth(INS4)), 200, extra=json_is(active_view))
    checker.case("verifyTrace after the purges -> 200, the chain holds", VERIFY_POST, send("POST", "/v1/admin/verify"), 200,
                 extra=json_is(lambda b: b["ok"] is True and b["problems"] == []))
