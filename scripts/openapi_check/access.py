"""Patient 2's access decisions and what professionals get under them: the médecin traitant,
preferences, emergency switches, the three lists (authorized, administrators, blocked, people
and organisations), then documents stored, read, masked, released, replaced and deleted by the
patient and by professionals, and blocks lifted and placed."""

from __future__ import annotations

import hashlib
import json
import os
import urllib.parse

from .common import (
    ACCESS, ACCESS_GET, ADMINISTRATOR, ATTENDING, ATTENDING_DOCTOR, ATTENDING_PUT, CONTENT, CONTENT_GET, DOC,
    DOC_DELETE, DOC_GET, DOCS, DOCS_GET, DOCS_POST, DOCTOR, DOSSIER, DOSSIER_GET, EMERGENCY, EMERGENCY_PATCH, FINESS,
    FINESS_CORSICA, INS1, INS2, INS3, INS_BAD_KEY, JSON_HEADERS, MASK, MASK_POST, MAX_DOCUMENT_BYTES, MEMBER,
    MEMBER_DELETE, MEMBER_PUT, PHARMACIST, PREFERENCES, PREFS_PATCH, RELEASE, RELEASE_POST, REPLACE, REPLACE_POST,
    STRANGER, UNKNOWN_ID, UNMASK, UNMASK_POST, Daemon, json_is, luhn_broken, pro_auth, stored_id,
)

# What getAccess answers for a new dossier.
DEFAULT_ACCESS = {
    "administrators": [], "authorized": [], "blocked": [], "blockedOrganizations": [],
    "emergency": {"brisDeGlace": True, "centre15": True, "masked": False},
    "preferences": {"maskNewDocuments": False, "notifyEveryAccess": False, "notifyNewDocuments": True},
}


def ids_of(reply_body) -> list[str]:
    return [d["id"] for d in reply_body["documents"]]


def exercise_access_and_professionals(d: Daemon):
    """Patient 2's dossier, empty so far: the access decisions first, then the documents, each
    scenario on what the ones before left."""
    get_access_of_a_new_dossier(d)
    set_attending_doctor(d)
    set_preferences(d)
    set_emergency_access(d)
    access_members(d)
    bio, report = read_by_professionals(d)
    hidden, prescription = hidden_and_released(d, bio, report)
    masking_and_emergency_switches(d, bio, report, prescription)
    unmasking(d, bio, report, prescription)
    masked_by_preference(d)
    bio2, bio3, prescription3 = new_versions(d, bio, hidden, prescription)
    deletion(d, bio2, bio3, report, hidden)
    blocking(d, report, prescription3)


def get_access_of_a_new_dossier(d: Daemon):
    """A new dossier's access decisions are the defaults, for the patient and the legal
    representative (patient 1)."""
    checker, send, issuer = d.checker, d.send, d.issuer
    p1, p2, p3 = (issuer.auth(i) for i in (INS1, INS2, INS3))
    rep2 = issuer.auth(INS1, role="representative", patient=INS2)  # patient 1, legal representative of patient 2
    checker.case("getAccess of a new dossier -> 200 defaults", ACCESS_GET, send("GET", ACCESS % INS2, headers=p2), 200,
                 extra=json_is(lambda b: b == DEFAULT_ACCESS))
    checker.case("getAccess by the patient's legal representative -> 200", ACCESS_GET,
                 send("GET", ACCESS % INS2, headers=rep2), 200, extra=json_is(lambda b: b == DEFAULT_ACCESS))
    checker.case("getAccess of another patient's dossier -> 403 access_denied", ACCESS_GET,
                 send("GET", ACCESS % INS2, headers=p1), 403, "access_denied")
    checker.case("getAccess without a dossier -> 404 dossier_not_found", ACCESS_GET,
                 send("GET", ACCESS % INS3, headers=p3), 404, "dossier_not_found")
    checker.case("getAccess invalid INS -> 400 invalid_ins", ACCESS_GET,
                 send("GET", ACCESS % INS_BAD_KEY, headers=p2), 400, "invalid_ins")
    checker.case("getAccess without assertion -> 401 assertion_missing", ACCESS_GET,
                 send("GET", ACCESS % INS2), 401, "assertion_missing")


def set_attending_doctor(d: Daemon):
    """The médecin traitant chosen by the patient, and setAttendingDoctor's refusals."""
    checker, send, send_json, issuer = d.checker, d.send, d.send_json, d.issuer
    p1, p2, p3 = (issuer.auth(i) for i in (INS1, INS2, INS3))
    attending = pro_auth(issuer, ATTENDING)
    checker.case("setAttendingDoctor -> 200", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, ATTENDING_DOCTOR % INS2, p2, {"rpps": ATTENDING, "profession": "10"}), 200,
                 extra=json_is(lambda b: b == {**DEFAULT_ACCESS, "attendingDoctor": ATTENDING}))
    checker.case("setAttendingDoctor Luhn-invalid RPPS -> 400 invalid_identifier", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, ATTENDING_DOCTOR % INS2, p2, {"rpps": luhn_broken(DOCTOR), "profession": "10"}), 400, "invalid_identifier")
    checker.case("setAttendingDoctor RPPS of 10 digits -> 400 invalid_identifier", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, ATTENDING_DOCTOR % INS2, p2, {"rpps": DOCTOR[:10], "profession": "10"}), 400, "invalid_identifier")
    checker.case("setAttendingDoctor an optician -> 400 invalid_metadata", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, ATTENDING_DOCTOR % INS2, p2, {"rpps": DOCTOR, "profession": "28"}), 400, "invalid_metadata")
    checker.case("setAttendingDoctor without profession -> 400 invalid_metadata", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, ATTENDING_DOCTOR % INS2, p2, {"rpps": DOCTOR}), 400, "invalid_metadata")
    checker.case("setAttendingDoctor profession not two digits -> 400 invalid_identifier", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, ATTENDING_DOCTOR % INS2, p2, {"rpps": DOCTOR, "profession": "1O"}), 400,
                 "invalid_identifier")
    checker.case("setAttendingDoctor without rpps -> 400 malformed_json", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, ATTENDING_DOCTOR % INS2, p2, {}), 400, "malformed_json")
    checker.case("setAttendingDoctor rpps as a number -> 400 malformed_json", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, ATTENDING_DOCTOR % INS2, p2, {"rpps": int(DOCTOR), "profession": "10"}), 400, "malformed_json")
    checker.case("setAttendingDoctor body not JSON -> 400 malformed_json", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, ATTENDING_DOCTOR % INS2, p2, b"rpps=" + DOCTOR.encode()), 400, "malformed_json")
    checker.case("setAttendingDoctor body over 64 KiB -> 413 payload_too_large", ATTENDING_PUT,
                 send("PUT", ATTENDING_DOCTOR % INS2, headers={**p2, **JSON_HEADERS},
                      body=b" " * (70 * 1024) + json.dumps({"rpps": DOCTOR, "profession": "10"}).encode()), 413, "payload_too_large")
    checker.case("setAttendingDoctor by the médecin traitant -> 403 access_denied", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, ATTENDING_DOCTOR % INS2, attending, {"rpps": DOCTOR, "profession": "10"}), 403, "access_denied")
    checker.case("setAttendingDoctor of another patient's dossier -> 403 access_denied", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, ATTENDING_DOCTOR % INS2, p1, {"rpps": DOCTOR, "profession": "10"}), 403, "access_denied")
    checker.case("setAttendingDoctor without a dossier -> 404 dossier_not_found", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, ATTENDING_DOCTOR % INS3, p3, {"rpps": DOCTOR, "profession": "10"}), 404, "dossier_not_found")
    checker.case("setAttendingDoctor invalid INS -> 400 invalid_ins", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, ATTENDING_DOCTOR % INS_BAD_KEY, p2, {"rpps": DOCTOR, "profession": "10"}), 400, "invalid_ins")
    checker.case("setAttendingDoctor without assertion -> 401 assertion_missing", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, ATTENDING_DOCTOR % INS2, {}, {"rpps": DOCTOR, "profession": "10"}), 401, "assertion_missing")
    checker.case("getAccess by the médecin traitant -> 403 access_denied", ACCESS_GET,
                 send("GET", ACCESS % INS2, headers=attending), 403, "access_denied")


def set_preferences(d: Daemon):
    """setPreferences changes only the members sent; the legal representative may, a professional
    may not."""
    checker, send, send_json, issuer = d.checker, d.send, d.send_json, d.issuer
    p2, p3 = issuer.auth(INS2), issuer.auth(INS3)
    rep2 = issuer.auth(INS1, role="representative", patient=INS2)
    attending = pro_auth(issuer, ATTENDING)
    checker.case("setPreferences one member -> 200, the others unchanged", PREFS_PATCH,
                 send_json(PREFS_PATCH, PREFERENCES % INS2, p2, {"notifyEveryAccess": True}), 200,
                 extra=json_is(lambda b: b["preferences"] == {**DEFAULT_ACCESS["preferences"], "notifyEveryAccess": True}
                               and b["attendingDoctor"] == ATTENDING))
    checker.case("setPreferences {} -> 200 unchanged", PREFS_PATCH, send_json(PREFS_PATCH, PREFERENCES % INS2, p2, {}), 200,
                 extra=json_is(lambda b: b["preferences"] == {**DEFAULT_ACCESS["preferences"], "notifyEveryAccess": True}))
    checker.case("setPreferences by the legal representative -> 200", PREFS_PATCH,
                 send_json(PREFS_PATCH, PREFERENCES % INS2, rep2, {"notifyEveryAccess": False}), 200,
                 extra=json_is(lambda b: b["preferences"] == DEFAULT_ACCESS["preferences"]))
    checker.case("setPreferences member of the wrong type -> 400 malformed_json", PREFS_PATCH,
                 send_json(PREFS_PATCH, PREFERENCES % INS2, p2, {"maskNewDocuments": "yes"}), 400, "malformed_json")
    checker.case("setPreferences body an array -> 400 malformed_json", PREFS_PATCH,
                 send_json(PREFS_PATCH, PREFERENCES % INS2, p2, []), 400, "malformed_json")
    checker.case("setPreferences body over 64 KiB -> 413 payload_too_large", PREFS_PATCH,
                 send("PATCH", PREFERENCES % INS2, headers={**p2, **JSON_HEADERS}, body=b" " * (70 * 1024) + b"{}"),
                 413, "payload_too_large")
    checker.case("setPreferences by a professional -> 403 access_denied", PREFS_PATCH,
                 send_json(PREFS_PATCH, PREFERENCES % INS2, attending, {"notifyEveryAccess": True}), 403, "access_denied")
    checker.case("setPreferences without a dossier -> 404 dossier_not_found", PREFS_PATCH,
                 send_json(PREFS_PATCH, PREFERENCES % INS3, p3, {}), 404, "dossier_not_found")
    checker.case("setPreferences invalid INS -> 400 invalid_ins", PREFS_PATCH,
                 send_json(PREFS_PATCH, PREFERENCES % INS_BAD_KEY, p2, {}), 400, "invalid_ins")
    checker.case("setPreferences without assertion -> 401 assertion_missing", PREFS_PATCH,
                 send_json(PREFS_PATCH, PREFERENCES % INS2, {}, {}), 401, "assertion_missing")


def set_emergency_access(d: Daemon):
    """setEmergencyAccess changes only the switches sent; a professional, even in an emergency,
    may not."""
    checker, send_json, issuer = d.checker, d.send_json, d.issuer
    p2, p3 = issuer.auth(INS2), issuer.auth(INS3)
    checker.case("setEmergencyAccess two switches -> 200, the third unchanged", EMERGENCY_PATCH,
                 send_json(EMERGENCY_PATCH, EMERGENCY % INS2, p2, {"centre15": False, "masked": True}), 200,
                 extra=json_is(lambda b: b["emergency"] == {"brisDeGlace": True, "centre15": False, "masked": True}))
    checker.case("setEmergencyAccess member of the wrong type -> 400 malformed_json", EMERGENCY_PATCH,
                 send_json(EMERGENCY_PATCH, EMERGENCY % INS2, p2, {"brisDeGlace": 1}), 400, "malformed_json")
    checker.case("setEmergencyAccess body not JSON -> 400 malformed_json", EMERGENCY_PATCH,
                 send_json(EMERGENCY_PATCH, EMERGENCY % INS2, p2, b"{brisDeGlace: false}"), 400, "malformed_json")
    checker.case("setEmergencyAccess by a professional -> 403 access_denied", EMERGENCY_PATCH,
                 send_json(EMERGENCY_PATCH, EMERGENCY % INS2, pro_auth(issuer, STRANGER, mode="bris_de_glace"), {"masked": True}),
                 403, "access_denied")
    checker.case("setEmergencyAccess without a dossier -> 404 dossier_not_found", EMERGENCY_PATCH,
                 send_json(EMERGENCY_PATCH, EMERGENCY % INS3, p3, {}), 404, "dossier_not_found")
    checker.case("setEmergencyAccess invalid INS -> 400 invalid_ins", EMERGENCY_PATCH,
                 send_json(EMERGENCY_PATCH, EMERGENCY % "12345", p2, {}), 400, "invalid_ins")
    checker.case("setEmergencyAccess without assertion -> 401 assertion_missing", EMERGENCY_PATCH,
                 send_json(EMERGENCY_PATCH, EMERGENCY % INS2, {}, {}), 401, "assertion_missing")


def access_members(d: Daemon):
    """The three lists: members added (sorted, idempotent), organisations blocked (a Corsican
    FINESS in either case), what cannot be blocked, refusals, members removed."""
    checker, send, issuer = d.checker, d.send, d.issuer
    p1, p2, p3 = (issuer.auth(i) for i in (INS1, INS2, INS3))
    doctor, attending = pro_auth(issuer, DOCTOR), pro_auth(issuer, ATTENDING)
    checker.case("addAccessMember authorized -> 200", MEMBER_PUT, send("PUT", MEMBER % (INS2, "authorized", DOCTOR), headers=p2),
                 200, extra=json_is(lambda b: b["authorized"] == [DOCTOR]))
    checker.case("addAccessMember authorized again -> 200 unchanged", MEMBER_PUT,
                 send("PUT", MEMBER % (INS2, "authorized", DOCTOR), headers=p2), 200,
                 extra=json_is(lambda b: b["authorized"] == [DOCTOR]))
    checker.case("addAccessMember authorized a pharmacist -> 200 sorted", MEMBER_PUT,
                 send("PUT", MEMBER % (INS2, "authorized", PHARMACIST), headers=p2), 200,
                 extra=json_is(lambda b: b["authorized"] == sorted([DOCTOR, PHARMACIST])))
    checker.case("addAccessMember administrators not authorised first -> 400 invalid_metadata", MEMBER_PUT,
                 send("PUT", MEMBER % (INS2, "administrators", ADMINISTRATOR), headers=p2), 400, "invalid_metadata")
    checker.case("addAccessMember authorized the future administrator -> 200", MEMBER_PUT,
                 send("PUT", MEMBER % (INS2, "authorized", ADMINISTRATOR), headers=p2), 200,
                 extra=json_is(lambda b: b["authorized"] == sorted([ADMINISTRATOR, DOCTOR, PHARMACIST])))
    checker.case("addAccessMember administrators -> 200", MEMBER_PUT,
                 send("PUT", MEMBER % (INS2, "administrators", ADMINISTRATOR), headers=p2), 200,
                 extra=json_is(lambda b: b["administrators"] == [ADMINISTRATOR]))
    checker.case("addAccessMember blocked organisation (FINESS) -> 200", MEMBER_PUT,
                 send("PUT", MEMBER % (INS2, "blocked", FINESS), headers=p2), 200,
                 extra=json_is(lambda b: b["blockedOrganizations"] == [FINESS] and b["blocked"] == []))
    checker.case("addAccessMember blocked a lower-case Corsican FINESS -> 200, kept upper-case", MEMBER_PUT,
                 send("PUT", MEMBER % (INS2, "blocked", FINESS_CORSICA), headers=p2), 200,
                 extra=json_is(lambda b: b["blockedOrganizations"] == sorted([FINESS, FINESS_CORSICA.upper()])))
    checker.case("listDocuments by the authorised doctor for the blocked Corsican organisation -> 403 access_denied",
                 DOCS_GET, send("GET", DOCS % INS2, headers=pro_auth(issuer, DOCTOR, organization=FINESS_CORSICA.upper())),
                 403, "access_denied")
    checker.case("listDocuments by the authorised doctor for the blocked Corsican organisation, written 2a... -> "
                 "403 access_denied", DOCS_GET,
                 send("GET", DOCS % INS2, headers=pro_auth(issuer, DOCTOR, organization=FINESS_CORSICA)), 403, "access_denied")
    checker.case("removeAccessMember blocked a lower-case Corsican FINESS -> 200", MEMBER_DELETE,
                 send("DELETE", MEMBER % (INS2, "blocked", FINESS_CORSICA), headers=p2), 200,
                 extra=json_is(lambda b: b["blockedOrganizations"] == [FINESS]))
    checker.case("addAccessMember blocked the médecin traitant -> 403 access_denied", MEMBER_PUT,
                 send("PUT", MEMBER % (INS2, "blocked", ATTENDING), headers=p2), 403, "access_denied")
    checker.case("addAccessMember blocked an administrator -> 403 access_denied", MEMBER_PUT,
                 send("PUT", MEMBER % (INS2, "blocked", ADMINISTRATOR), headers=p2), 403, "access_denied")
    for label, lst, bad in [
        ("authorized Luhn-invalid RPPS", "authorized", luhn_broken(DOCTOR)),
        ("authorized a FINESS (only blocked takes one)", "authorized", FINESS),
        ("administrators not a number", "administrators", "dr-house"),
        ("blocked Luhn-invalid FINESS", "blocked", luhn_broken(FINESS)),
        ("blocked 10 digits", "blocked", DOCTOR[:10]),
    ]:
        checker.case("addAccessMember %s -> 400 invalid_identifier" % label, MEMBER_PUT,
                     send("PUT", MEMBER % (INS2, lst, bad), headers=p2), 400, "invalid_identifier")
    checker.case("addAccessMember by an authorised professional -> 403 access_denied", MEMBER_PUT,
                 send("PUT", MEMBER % (INS2, "authorized", STRANGER), headers=doctor), 403, "access_denied")
    checker.case("addAccessMember by the médecin traitant -> 403 access_denied", MEMBER_PUT,
                 send("PUT", MEMBER % (INS2, "administrators", ATTENDING), headers=attending), 403, "access_denied")
    checker.case("addAccessMember of another patient's dossier -> 403 access_denied", MEMBER_PUT,
                 send("PUT", MEMBER % (INS2, "authorized", STRANGER), headers=p1), 403, "access_denied")
    checker.case("addAccessMember without a dossier -> 404 dossier_not_found", MEMBER_PUT,
                 send("PUT", MEMBER % (INS3, "authorized", DOCTOR), headers=p3), 404, "dossier_not_found")
    checker.case("addAccessMember invalid INS -> 400 invalid_ins", MEMBER_PUT,
                 send("PUT", MEMBER % (INS_BAD_KEY, "authorized", DOCTOR), headers=p2), 400, "invalid_ins")
    checker.case("addAccessMember without assertion -> 401 assertion_missing", MEMBER_PUT,
                 send("PUT", MEMBER % (INS2, "authorized", DOCTOR)), 401, "assertion_missing")
    checker.case("removeAccessMember blocked organisation -> 200", MEMBER_DELETE,
                 send("DELETE", MEMBER % (INS2, "blocked", FINESS), headers=p2), 200,
                 extra=json_is(lambda b: b["blockedOrganizations"] == []))
    checker.case("removeAccessMember not a member -> 200 unchanged", MEMBER_DELETE,
                 send("DELETE", MEMBER % (INS2, "authorized", STRANGER), headers=p2), 200,
                 extra=json_is(lambda b: b["authorized"] == sorted([ADMINISTRATOR, DOCTOR, PHARMACIST])))
    checker.case("removeAccessMember Luhn-invalid RPPS -> 400 invalid_identifier", MEMBER_DELETE,
                 send("DELETE", MEMBER % (INS2, "administrators", luhn_broken(ADMINISTRATOR)), headers=p2), 400,
                 "invalid_identifier")
    checker.case("removeAccessMember by a professional -> 403 access_denied", MEMBER_DELETE,
                 send("DELETE", MEMBER % (INS2, "blocked", DOCTOR), headers=doctor), 403, "access_denied")
    checker.case("removeAccessMember without a dossier -> 404 dossier_not_found", MEMBER_DELETE,
                 send("DELETE", MEMBER % (INS3, "authorized", DOCTOR), headers=p3), 404, "dossier_not_found")
    checker.case("removeAccessMember invalid INS -> 400 invalid_ins", MEMBER_DELETE,
                 send("DELETE", MEMBER % ("1" * 15, "authorized", DOCTOR), headers=p2), 400, "invalid_ins")
    checker.case("removeAccessMember without assertion -> 401 assertion_missing", MEMBER_DELETE,
                 send("DELETE", MEMBER % (INS2, "authorized", DOCTOR)), 401, "assertion_missing")
    checker.case("getAccess after the changes -> 200", ACCESS_GET, send("GET", ACCESS % INS2, headers=p2), 200,
                 extra=json_is(lambda b: b == {
                     "attendingDoctor": ATTENDING, "administrators": [ADMINISTRATOR],
                     "authorized": sorted([ADMINISTRATOR, DOCTOR, PHARMACIST]), "blocked": [], "blockedOrganizations": [],
                     "emergency": {"brisDeGlace": True, "centre15": False, "masked": True},
                     "preferences": DEFAULT_ACCESS["preferences"]}))


def read_by_professionals(d: Daemon) -> tuple[str, str]:
    """The patient's documents (lab results and a report, whose ids are returned), read by those
    the patient let in, as far as the matrix lets each profession."""
    checker, send, issuer = d.checker, d.send, d.issuer
    p2 = issuer.auth(INS2)
    doctor, administrator = pro_auth(issuer, DOCTOR), pro_auth(issuer, ADMINISTRATOR)
    pharmacist = pro_auth(issuer, PHARMACIST, "21")
    stranger = pro_auth(issuer, STRANGER)
    bio_content = "Glycémie 0,95 g/L\n".encode("utf-8")
    bio_meta = {"Coffre-Class": "BIOLOGIE", "Coffre-Title": urllib.parse.quote("Glycémie", safe=""),
                "Coffre-Type-Code": "2345-7", "Coffre-Care-Date": "2024-05-02", "Content-Type": "text/plain"}
    bio = stored_id(checker.case(
        "storeDocument by patient 2 (lab results) -> 201", DOCS_POST,
        send("POST", DOCS % INS2, headers={**p2, **bio_meta}, body=bio_content), 201,
        extra=json_is(lambda b: b["masked"] is False and b["author"] == {"role": "patient", "id": INS2})))
    report = stored_id(checker.case(
        "storeDocument by patient 2 (report) -> 201", DOCS_POST,
        send("POST", DOCS % INS2, headers={**p2, "Coffre-Class": "CPT_REND"}, body=b"compte rendu"), 201))

    checker.case("getDossier by a professional the patient did not authorise -> 403 access_denied", DOSSIER_GET,
                 send("GET", DOSSIER % INS2, headers=stranger), 403, "access_denied")
    checker.case("listDocuments by a professional the patient did not authorise -> 403 access_denied", DOCS_GET,
                 send("GET", DOCS % INS2, headers=stranger), 403, "access_denied")
    checker.case("getDossier by the authorised doctor -> 200", DOSSIER_GET, send("GET", DOSSIER % INS2, headers=doctor), 200,
                 extra=json_is(lambda b: b["ins"] == INS2 and b["documentCount"] == 2))
    checker.case("listDocuments by the authorised doctor -> 200, both documents", DOCS_GET,
                 send("GET", DOCS % INS2, headers=doctor), 200, extra=json_is(lambda b: ids_of(b) == [bio, report]))
    checker.case("getDocument by the authorised doctor -> 200", DOC_GET, send("GET", DOC % (INS2, bio), headers=doctor), 200,
                 extra=json_is(lambda b: b["id"] == bio and b["title"] == "Glycémie"))
    checker.case("getDocumentContent by the authorised doctor -> 200", CONTENT_GET,
                 send("GET", CONTENT % (INS2, bio), headers=doctor), 200,
                 extra=lambda r: [] if r.body == bio_content else ["content differs"])
    checker.case("listDocuments by the authorised pharmacist -> 200, lab results only (matrix)", DOCS_GET,
                 send("GET", DOCS % INS2, headers=pharmacist), 200, extra=json_is(lambda b: ids_of(b) == [bio]))
    checker.case("getDocument report by the pharmacist -> 403 access_denied (matrix)", DOC_GET,
                 send("GET", DOC % (INS2, report), headers=pharmacist), 403, "access_denied")
    checker.case("getDocumentContent report by the pharmacist -> 403 access_denied (matrix)", CONTENT_GET,
                 send("GET", CONTENT % (INS2, report), headers=pharmacist), 403, "access_denied")
    checker.case("listDocuments by an administrator, not authorised -> 200", DOCS_GET,
                 send("GET", DOCS % INS2, headers=administrator), 200, extra=json_is(lambda b: ids_of(b) == [bio, report]))
    return bio, report


def hidden_and_released(d: Daemon, bio: str, report: str) -> tuple[str, str]:
    """Documents a professional stores hidden from the patient or from representatives (their
    ids returned), who sees them, and the release of the one hidden from the patient."""
    checker, send, issuer = d.checker, d.send, d.issuer
    p2 = issuer.auth(INS2)
    rep2 = issuer.auth(INS1, role="representative", patient=INS2)
    doctor, attending = pro_auth(issuer, DOCTOR), pro_auth(issuer, ATTENDING)
    pharmacist = pro_auth(issuer, PHARMACIST, "21")
    stranger = pro_auth(issuer, STRANGER)
    hidden = stored_id(checker.case(
        "storeDocument by the authorised doctor, hidden from the patient -> 201", DOCS_POST,
        send("POST", DOCS % INS2, headers={**doctor, "Coffre-Class": "CPT_REND", "Coffre-Hidden-From": " patient , "},
             body=b"annonce"), 201,
        extra=json_is(lambda b: b["author"] == {"role": "professional", "id": DOCTOR, "profession": "10"}
                      and b["hiddenFromPatient"] is True and b["hiddenFromRepresentatives"] is False
                      and "releasedAt" not in b)))
    prescription = stored_id(checker.case(
        "storeDocument by the authorised doctor, hidden from representatives -> 201", DOCS_POST,
        send("POST", DOCS % INS2, headers={**doctor, "Coffre-Class": "ORD_SOIN", "Coffre-Hidden-From": "representatives"},
             body=b"ordonnance"), 201,
        extra=json_is(lambda b: b["hiddenFromPatient"] is False and b["hiddenFromRepresentatives"] is True)))
    checker.case("storeDocument by a professional, Coffre-Hidden-From with an unknown flag -> 400 invalid_metadata",
                 DOCS_POST, send("POST", DOCS % INS2, headers={**doctor, "Coffre-Class": "BIOLOGIE",
                                                                "Coffre-Hidden-From": "patient,doctors"}, body=b"x"),
                 400, "invalid_metadata")
    checker.case("storeDocument by patient 2 with Coffre-Hidden-From -> 400 invalid_metadata", DOCS_POST,
                 send("POST", DOCS % INS2, headers={**p2, "Coffre-Class": "BIOLOGIE", "Coffre-Hidden-From": "patient"},
                      body=b"x"), 400, "invalid_metadata")
    checker.case("storeDocument by a professional the patient did not authorise -> 403 access_denied", DOCS_POST,
                 send("POST", DOCS % INS2, headers={**stranger, "Coffre-Class": "BIOLOGIE"}, body=b"x"), 403, "access_denied")
    checker.case("listDocuments by patient 2: the hidden document is left out -> 200", DOCS_GET,
                 send("GET", DOCS % INS2, headers=p2), 200, extra=json_is(lambda b: ids_of(b) == [bio, report, prescription]))
    checker.case("listDocuments by the representative: hidden ones left out -> 200", DOCS_GET,
                 send("GET", DOCS % INS2, headers=rep2), 200, extra=json_is(lambda b: ids_of(b) == [bio, report]))
    checker.case("getDocument hidden from the patient, by the patient -> 403 access_denied", DOC_GET,
                 send("GET", DOC % (INS2, hidden), headers=p2), 403, "access_denied")
    checker.case("getDocumentContent hidden from the patient, by the patient -> 403 access_denied", CONTENT_GET,
                 send("GET", CONTENT % (INS2, hidden), headers=p2), 403, "access_denied")
    checker.case("getDocument hidden from the patient, by the médecin traitant -> 200", DOC_GET,
                 send("GET", DOC % (INS2, hidden), headers=attending), 200)
    checker.case("releaseDocument by the patient -> 403 access_denied", RELEASE_POST,
                 send("POST", RELEASE % (INS2, hidden), headers=p2), 403, "access_denied")
    checker.case("releaseDocument by an authorised professional, not the author -> 403 access_denied", RELEASE_POST,
                 send("POST", RELEASE % (INS2, hidden), headers=pharmacist), 403, "access_denied")
    checker.case("releaseDocument not hidden from the patient, by the médecin traitant -> 409 document_conflict", RELEASE_POST,
                 send("POST", RELEASE % (INS2, bio), headers=attending), 409, "document_conflict")
    checker.case("releaseDocument not hidden from the patient, by its author -> 409 document_conflict", RELEASE_POST,
                 send("POST", RELEASE % (INS2, prescription), headers=doctor), 409, "document_conflict")
    released = checker.case("releaseDocument by its author -> 200 with releasedAt", RELEASE_POST,
                            send("POST", RELEASE % (INS2, hidden), headers=doctor), 200,
                            extra=json_is(lambda b: b["id"] == hidden and b["hiddenFromPatient"] is True
                                          and "releasedAt" in b and b["status"] == "current"))
    released_at = released.json().get("releasedAt") if released is not None and released.status == 200 else None
    checker.case("releaseDocument again, by the médecin traitant -> 200, releasedAt unchanged", RELEASE_POST,
                 send("POST", RELEASE % (INS2, hidden), headers=attending), 200,
                 extra=json_is(lambda b: b.get("releasedAt") == released_at))
    checker.case("getDocument released, by the patient -> 200", DOC_GET, send("GET", DOC % (INS2, hidden), headers=p2), 200,
                 extra=json_is(lambda b: b.get("releasedAt") == released_at))
    checker.case("releaseDocument unknown id -> 404 document_not_found", RELEASE_POST,
                 send("POST", RELEASE % (INS2, UNKNOWN_ID), headers=doctor), 404, "document_not_found")
    checker.case("releaseDocument malformed id -> 400 invalid_identifier", RELEASE_POST,
                 send("POST", RELEASE % (INS2, "Z" + hidden[1:]), headers=doctor), 400, "invalid_identifier")
    # A professional who may not act on patient 3's dossier learns nothing of whether it exists.
    checker.case("releaseDocument without a dossier, by a professional -> 403 access_denied (existence not told)",
                 RELEASE_POST, send("POST", RELEASE % (INS3, hidden), headers=doctor), 403, "access_denied")
    checker.case("releaseDocument invalid INS -> 400 invalid_ins", RELEASE_POST,
                 send("POST", RELEASE % (INS_BAD_KEY, hidden), headers=doctor), 400, "invalid_ins")
    checker.case("releaseDocument without assertion -> 401 assertion_missing", RELEASE_POST,
                 send("POST", RELEASE % (INS2, hidden)), 401, "assertion_missing")
    return hidden, prescription


def masking_and_emergency_switches(d: Daemon, bio: str, report: str, prescription: str):
    """A document masked by the patient: left out for the authorised doctor, shown to the
    médecin traitant, administrators and, as the switches say, in emergencies; maskDocument's
    refusals."""
    checker, send, send_json, issuer = d.checker, d.send, d.send_json, d.issuer
    p1, p2, p3 = (issuer.auth(i) for i in (INS1, INS2, INS3))
    doctor, attending, administrator = (pro_auth(issuer, r) for r in (DOCTOR, ATTENDING, ADMINISTRATOR))
    stranger_bdg, stranger_c15 = pro_auth(issuer, STRANGER, mode="bris_de_glace"), pro_auth(issuer, STRANGER, mode="centre_15")
    checker.case("maskDocument by the patient -> 200 masked", MASK_POST, send("POST", MASK % (INS2, bio), headers=p2), 200,
                 extra=json_is(lambda b: b["id"] == bio and b["masked"] is True))
    checker.case("maskDocument again -> 200 still masked", MASK_POST, send("POST", MASK % (INS2, bio), headers=p2), 200,
                 extra=json_is(lambda b: b["masked"] is True))
    checker.case("listDocuments by the authorised doctor: masked left out -> 200", DOCS_GET,
                 send("GET", DOCS % INS2, headers=doctor), 200,
                 extra=json_is(lambda b: bio not in ids_of(b) and report in ids_of(b)))
    checker.case("getDocument masked, by the authorised doctor -> 403 access_denied", DOC_GET,
                 send("GET", DOC % (INS2, bio), headers=doctor), 403, "access_denied")
    checker.case("getDocument masked, by the médecin traitant -> 200", DOC_GET,
                 send("GET", DOC % (INS2, bio), headers=attending), 200, extra=json_is(lambda b: b["masked"] is True))
    checker.case("getDocumentContent masked, by an administrator -> 200", CONTENT_GET,
                 send("GET", CONTENT % (INS2, bio), headers=administrator), 200)
    checker.case("getDocument masked, in bris_de_glace with masked shown in emergencies -> 200", DOC_GET,
                 send("GET", DOC % (INS2, bio), headers=stranger_bdg), 200)
    checker.case("listDocuments in centre_15 while the patient refuses it -> 403 access_denied", DOCS_GET,
                 send("GET", DOCS % INS2, headers=stranger_c15), 403, "access_denied")
    checker.case("setEmergencyAccess allow centre_15, hide masked documents -> 200", EMERGENCY_PATCH,
                 send_json(EMERGENCY_PATCH, EMERGENCY % INS2, p2, {"centre15": True, "masked": False}), 200,
                 extra=json_is(lambda b: b["emergency"] == DEFAULT_ACCESS["emergency"]))
    checker.case("listDocuments in centre_15, allowed -> 200 without the masked one", DOCS_GET,
                 send("GET", DOCS % INS2, headers=stranger_c15), 200,
                 extra=json_is(lambda b: bio not in ids_of(b) and report in ids_of(b)))
    checker.case("getDocument masked, in bris_de_glace, masked no longer shown -> 403 access_denied", DOC_GET,
                 send("GET", DOC % (INS2, bio), headers=stranger_bdg), 403, "access_denied")
    checker.case("setEmergencyAccess refuse bris_de_glace -> 200", EMERGENCY_PATCH,
                 send_json(EMERGENCY_PATCH, EMERGENCY % INS2, p2, {"brisDeGlace": False}), 200,
                 extra=json_is(lambda b: b["emergency"]["brisDeGlace"] is False))
    checker.case("getDossier in bris_de_glace while the patient refuses it -> 403 access_denied", DOSSIER_GET,
                 send("GET", DOSSIER % INS2, headers=stranger_bdg), 403, "access_denied")
    checker.case("setEmergencyAccess allow bris_de_glace again -> 200", EMERGENCY_PATCH,
                 send_json(EMERGENCY_PATCH, EMERGENCY % INS2, p2, {"brisDeGlace": True}), 200,
                 extra=json_is(lambda b: b["emergency"] == DEFAULT_ACCESS["emergency"]))
    checker.case("maskDocument by the médecin traitant -> 403 access_denied", MASK_POST,
                 send("POST", MASK % (INS2, report), headers=attending), 403, "access_denied")
    checker.case("maskDocument by its professional author -> 403 access_denied", MASK_POST,
                 send("POST", MASK % (INS2, prescription), headers=doctor), 403, "access_denied")
    checker.case("maskDocument unknown id -> 404 document_not_found", MASK_POST,
                 send("POST", MASK % (INS2, UNKNOWN_ID), headers=p2), 404, "document_not_found")
    checker.case("maskDocument malformed id -> 400 invalid_identifier", MASK_POST,
                 send("POST", MASK % (INS2, "x" * 32), headers=p2), 400, "invalid_identifier")
    checker.case("maskDocument without a dossier -> 404 dossier_not_found", MASK_POST,
                 send("POST", MASK % (INS3, bio), headers=p3), 404, "dossier_not_found")
    checker.case("maskDocument of another patient's dossier -> 403 access_denied", MASK_POST,
                 send("POST", MASK % (INS2, bio), headers=p1), 403, "access_denied")
    checker.case("maskDocument invalid INS -> 400 invalid_ins", MASK_POST,
                 send("POST", MASK % (INS_BAD_KEY, bio), headers=p2), 400, "invalid_ins")
    checker.case("maskDocument without assertion -> 401 assertion_missing", MASK_POST,
                 send("POST", MASK % (INS2, bio)), 401, "assertion_missing")


def unmasking(d: Daemon, bio: str, report: str, prescription: str):
    """unmaskDocument by the patient or the representative, and its refusals."""
    checker, send, issuer = d.checker, d.send, d.issuer
    p2, p3 = issuer.auth(INS2), issuer.auth(INS3)
    rep2 = issuer.auth(INS1, role="representative", patient=INS2)
    doctor, administrator = pro_auth(issuer, DOCTOR), pro_auth(issuer, ADMINISTRATOR)
    checker.case("unmaskDocument by the patient -> 200 unmasked", UNMASK_POST, send("POST", UNMASK % (INS2, bio), headers=p2), 200,
                 extra=json_is(lambda b: b["id"] == bio and b["masked"] is False))
    checker.case("unmaskDocument not masked, by the representative -> 200", UNMASK_POST,
                 send("POST", UNMASK % (INS2, report), headers=rep2), 200, extra=json_is(lambda b: b["masked"] is False))
    checker.case("getDocument unmasked, by the authorised doctor -> 200", DOC_GET,
                 send("GET", DOC % (INS2, bio), headers=doctor), 200)
    checker.case("unmaskDocument by a professional -> 403 access_denied", UNMASK_POST,
                 send("POST", UNMASK % (INS2, bio), headers=administrator), 403, "access_denied")
    checker.case("unmaskDocument hidden from the representative, by the representative -> 403 access_denied", UNMASK_POST,
                 send("POST", UNMASK % (INS2, prescription), headers=rep2), 403, "access_denied")
    checker.case("unmaskDocument unknown id -> 404 document_not_found", UNMASK_POST,
                 send("POST", UNMASK % (INS2, UNKNOWN_ID), headers=p2), 404, "document_not_found")
    checker.case("unmaskDocument malformed id -> 400 invalid_identifier", UNMASK_POST,
                 send("POST", UNMASK % (INS2, bio[:31]), headers=p2), 400, "invalid_identifier")
    checker.case("unmaskDocument without a dossier -> 404 dossier_not_found", UNMASK_POST,
                 send("POST", UNMASK % (INS3, bio), headers=p3), 404, "dossier_not_found")
    checker.case("unmaskDocument invalid INS -> 400 invalid_ins", UNMASK_POST,
                 send("POST", UNMASK % (INS_BAD_KEY, bio), headers=p2), 400, "invalid_ins")
    checker.case("unmaskDocument without assertion -> 401 assertion_missing", UNMASK_POST,
                 send("POST", UNMASK % (INS2, bio)), 401, "assertion_missing")


def masked_by_preference(d: Daemon):
    """maskNewDocuments masks what is stored while it is on."""
    checker, send, send_json, issuer = d.checker, d.send, d.send_json, d.issuer
    p2, doctor = issuer.auth(INS2), pro_auth(issuer, DOCTOR)
    checker.case("setPreferences maskNewDocuments -> 200", PREFS_PATCH,
                 send_json(PREFS_PATCH, PREFERENCES % INS2, p2, {"maskNewDocuments": True}), 200,
                 extra=json_is(lambda b: b["preferences"]["maskNewDocuments"] is True))
    auto_masked = stored_id(checker.case(
        "storeDocument with maskNewDocuments on -> 201 masked", DOCS_POST,
        send("POST", DOCS % INS2, headers={**p2, "Coffre-Class": "DOC_ADM"}, body=b"attestation"), 201,
        extra=json_is(lambda b: b["masked"] is True)))
    checker.case("getDocument masked by the preference, by the authorised doctor -> 403 access_denied", DOC_GET,
                 send("GET", DOC % (INS2, auto_masked), headers=doctor), 403, "access_denied")
    checker.case("setPreferences maskNewDocuments off -> 200", PREFS_PATCH,
                 send_json(PREFS_PATCH, PREFERENCES % INS2, p2, {"maskNewDocuments": False}), 200,
                 extra=json_is(lambda b: b["preferences"] == DEFAULT_ACCESS["preferences"]))


def new_versions(d: Daemon, bio: str, hidden: str, prescription: str) -> tuple[str, str, str]:
    """replaceDocument by the patient and by a professional, metadata and flags carried over or
    replaced; its refusals, which store nothing. Returns the ids of the lab results' second and
    third versions and of the prescription's third."""
    checker, send, issuer = d.checker, d.send, d.issuer
    p1, p2, p3 = (issuer.auth(i) for i in (INS1, INS2, INS3))
    doctor, attending = pro_auth(issuer, DOCTOR), pro_auth(issuer, ATTENDING)
    bio2_content = "Glycémie 1,02 g/L\n".encode("utf-8")
    bio2 = stored_id(checker.case(
        "replaceDocument by its author without metadata -> 201, metadata carried over", REPLACE_POST,
        send("POST", REPLACE % (INS2, bio), headers=p2, body=bio2_content), 201,
        extra=json_is(lambda b: b["replaces"] == bio and b["status"] == "current" and b["class"] == "BIOLOGIE"
                      and b["title"] == "Glycémie" and b["typeCode"] == "2345-7" and b["careDate"] == "2024-05-02"
                      and b["mediaType"] == "text/plain" and b["size"] == len(bio2_content)
                      and b["sha256"] == hashlib.sha256(bio2_content).hexdigest() and b["masked"] is False
                      and b["author"] == {"role": "patient", "id": INS2})))
    checker.case("getDocument of the replaced version -> 200 superseded", DOC_GET,
                 send("GET", DOC % (INS2, bio), headers=p2), 200, extra=json_is(lambda b: b["status"] == "superseded"))
    checker.case("replaceDocument of a superseded version -> 409 document_conflict", REPLACE_POST,
                 send("POST", REPLACE % (INS2, bio), headers=p2, body=b"again"), 409, "document_conflict")
    bio3 = stored_id(checker.case(
        "replaceDocument with new metadata, chunked -> 201", REPLACE_POST,
        send("POST", REPLACE % (INS2, bio2), headers={**p2, "Coffre-Class": "SYNTHESE", "Coffre-Title": "Synth%C3%A8se",
                                                      "Content-Type": "application/pdf"},
             body=b"%PDF-1.7" + os.urandom(30_000), chunked=True), 201,
        extra=json_is(lambda b: b["replaces"] == bio2 and b["class"] == "SYNTHESE" and b["classCode"] == "11"
                      and b["title"] == "Synthèse" and b["typeCode"] == "2345-7" and b["mediaType"] == "application/pdf"
                      and b["size"] == 30_008)))
    checker.case("listDocuments ?allVersions=true: the three versions -> 200", DOCS_GET,
                 send("GET", DOCS % INS2 + "?allVersions=true", headers=p2), 200,
                 extra=json_is(lambda b: [bio, bio2, bio3] == [i for i in ids_of(b) if i in (bio, bio2, bio3)]))
    checker.case("replaceDocument of the patient's document by a professional -> 403 access_denied", REPLACE_POST,
                 send("POST", REPLACE % (INS2, bio3), headers=attending, body=b"x"), 403, "access_denied")
    checker.case("replaceDocument of a professional's document by the patient -> 403 access_denied", REPLACE_POST,
                 send("POST", REPLACE % (INS2, hidden), headers=p2, body=b"x"), 403, "access_denied")
    checker.case("replaceDocument with Coffre-Hidden-From, by the patient -> 400 invalid_metadata", REPLACE_POST,
                 send("POST", REPLACE % (INS2, bio3), headers={**p2, "Coffre-Hidden-From": "representatives"}, body=b"x"),
                 400, "invalid_metadata")
    checker.case("replaceDocument unknown Coffre-Class -> 400 unknown_class", REPLACE_POST,
                 send("POST", REPLACE % (INS2, bio3), headers={**p2, "Coffre-Class": "NOPE"}, body=b"x"), 400, "unknown_class")
    checker.case("replaceDocument impossible Coffre-Care-Date -> 400 invalid_metadata", REPLACE_POST,
                 send("POST", REPLACE % (INS2, bio3), headers={**p2, "Coffre-Care-Date": "2024-13-01"}, body=b"x"),
                 400, "invalid_metadata")
    checker.case("replaceDocument over the size limit -> 413 payload_too_large", REPLACE_POST,
                 send("POST", REPLACE % (INS2, bio3), headers=p2, body=os.urandom(MAX_DOCUMENT_BYTES + 1)),
                 413, "payload_too_large")
    checker.case("replaceDocument cut short of Content-Length -> 400 upload_incomplete", REPLACE_POST,
                 send("POST", REPLACE % (INS2, bio3), headers=p2, body=b"0123456789", content_length=100, half_close=True),
                 400, "upload_incomplete")
    checker.case("replaceDocument unknown id -> 404 document_not_found", REPLACE_POST,
                 send("POST", REPLACE % (INS2, UNKNOWN_ID), headers=p2, body=b"x"), 404, "document_not_found")
    checker.case("replaceDocument malformed id -> 400 invalid_identifier", REPLACE_POST,
                 send("POST", REPLACE % (INS2, "abc"), headers=p2, body=b"x"), 400, "invalid_identifier")
    checker.case("replaceDocument without a dossier -> 404 dossier_not_found", REPLACE_POST,
                 send("POST", REPLACE % (INS3, bio3), headers=p3, body=b"x"), 404, "dossier_not_found")
    checker.case("replaceDocument in another patient's dossier -> 403 access_denied", REPLACE_POST,
                 send("POST", REPLACE % (INS2, bio3), headers=p1, body=b"x"), 403, "access_denied")
    checker.case("replaceDocument invalid INS -> 400 invalid_ins", REPLACE_POST,
                 send("POST", REPLACE % (INS_BAD_KEY, bio3), headers=p2, body=b"x"), 400, "invalid_ins")
    checker.case("replaceDocument without assertion -> 401 assertion_missing", REPLACE_POST,
                 send("POST", REPLACE % (INS2, bio3), body=b"x"), 401, "assertion_missing")
    checker.case("listDocuments: refused replacements stored nothing -> 200", DOCS_GET,
                 send("GET", DOCS % INS2 + "?allVersions=true", headers=p2), 200,
                 extra=json_is(lambda b: len([d for d in b["documents"] if d.get("replaces")]) == 2))
    prescription2 = stored_id(checker.case(
        "replaceDocument by its professional author -> 201, flags carried over", REPLACE_POST,
        send("POST", REPLACE % (INS2, prescription), headers=doctor, body=b"ordonnance v2"), 201,
        extra=json_is(lambda b: b["replaces"] == prescription and b["class"] == "ORD_SOIN"
                      and b["hiddenFromRepresentatives"] is True
                      and b["author"] == {"role": "professional", "id": DOCTOR, "profession": "10"})))
    prescription3 = stored_id(checker.case(
        "replaceDocument by a professional, Coffre-Hidden-From replaces the flags -> 201", REPLACE_POST,
        send("POST", REPLACE % (INS2, prescription2), headers={**doctor, "Coffre-Hidden-From": ""}, body=b"v3"), 201,
        extra=json_is(lambda b: b["hiddenFromRepresentatives"] is False and b["hiddenFromPatient"] is False)))
    return bio2, bio3, prescription3


def deletion(d: Daemon, bio2: str, bio3: str, report: str, hidden: str):
    """deleteDocument by each author; what a deleted or superseded version still answers; its
    refusals; what listDocuments and documentCount then count."""
    checker, send, issuer = d.checker, d.send, d.issuer
    p1, p2, p3 = (issuer.auth(i) for i in (INS1, INS2, INS3))
    doctor, attending = pro_auth(issuer, DOCTOR), pro_auth(issuer, ATTENDING)
    checker.case("deleteDocument by its author -> 200 deleted", DOC_DELETE, send("DELETE", DOC % (INS2, bio3), headers=p2), 200,
                 extra=json_is(lambda b: b["id"] == bio3 and b["status"] == "deleted"))
    checker.case("deleteDocument of a superseded version -> 409 document_conflict", DOC_DELETE,
                 send("DELETE", DOC % (INS2, bio2), headers=p2), 409, "document_conflict")
    checker.case("deleteDocument again, by the patient (its author) -> 409 document_conflict (deleted)", DOC_DELETE,
                 send("DELETE", DOC % (INS2, bio3), headers=p2), 409, "document_conflict")
    checker.case("getDocument deleted, by the patient -> 200 status deleted", DOC_GET,
                 send("GET", DOC % (INS2, bio3), headers=p2), 200, extra=json_is(lambda b: b["status"] == "deleted"))
    checker.case("getDocumentContent deleted, by the patient -> 403 access_denied", CONTENT_GET,
                 send("GET", CONTENT % (INS2, bio3), headers=p2), 403, "access_denied")
    checker.case("replaceDocument of a deleted version, by the patient (its author) -> 409 document_conflict", REPLACE_POST,
                 send("POST", REPLACE % (INS2, bio3), headers=p2, body=b"x"), 409, "document_conflict")
    checker.case("maskDocument deleted -> 403 access_denied", MASK_POST,
                 send("POST", MASK % (INS2, bio3), headers=p2), 403, "access_denied")
    checker.case("deleteDocument of the patient's document by the médecin traitant -> 403 access_denied", DOC_DELETE,
                 send("DELETE", DOC % (INS2, report), headers=attending), 403, "access_denied")
    checker.case("deleteDocument of a professional's document by the patient -> 403 access_denied", DOC_DELETE,
                 send("DELETE", DOC % (INS2, hidden), headers=p2), 403, "access_denied")
    checker.case("deleteDocument by its professional author -> 200 deleted", DOC_DELETE,
                 send("DELETE", DOC % (INS2, hidden), headers=doctor), 200, extra=json_is(lambda b: b["status"] == "deleted"))
    checker.case("deleteDocument deleted, by its professional author -> 409 document_conflict", DOC_DELETE,
                 send("DELETE", DOC % (INS2, hidden), headers=doctor), 409, "document_conflict")
    checker.case("replaceDocument deleted, by its professional author -> 409 document_conflict", REPLACE_POST,
                 send("POST", REPLACE % (INS2, hidden), headers=doctor, body=b"x"), 409, "document_conflict")
    checker.case("getDocumentContent deleted, by its professional author -> 404 document_not_found", CONTENT_GET,
                 send("GET", CONTENT % (INS2, hidden), headers=doctor), 404, "document_not_found")
    checker.case("deleteDocument unknown id -> 404 document_not_found", DOC_DELETE,
                 send("DELETE", DOC % (INS2, UNKNOWN_ID), headers=p2), 404, "document_not_found")
    checker.case("deleteDocument malformed id -> 400 invalid_identifier", DOC_DELETE,
                 send("DELETE", DOC % (INS2, "g" * 32), headers=p2), 400, "invalid_identifier")
    checker.case("deleteDocument without a dossier -> 404 dossier_not_found", DOC_DELETE,
                 send("DELETE", DOC % (INS3, UNKNOWN_ID), headers=p3), 404, "dossier_not_found")
    checker.case("deleteDocument in another patient's dossier -> 403 access_denied", DOC_DELETE,
                 send("DELETE", DOC % (INS2, report), headers=p1), 403, "access_denied")
    checker.case("deleteDocument invalid INS -> 400 invalid_ins", DOC_DELETE,
                 send("DELETE", DOC % (INS_BAD_KEY, report), headers=p2), 400, "invalid_ins")
    checker.case("deleteDocument without assertion -> 401 assertion_missing", DOC_DELETE,
                 send("DELETE", DOC % (INS2, report)), 401, "assertion_missing")
    checker.case("listDocuments after deletions: current versions only -> 200", DOCS_GET,
                 send("GET", DOCS % INS2, headers=p2), 200,
                 extra=json_is(lambda b: bio3 not in ids_of(b) and hidden not in ids_of(b) and report in ids_of(b)
                               and all(d["status"] == "current" for d in b["documents"])))
    checker.case("getDossier counts current documents -> 200", DOSSIER_GET, send("GET", DOSSIER % INS2, headers=p2), 200,
                 extra=json_is(lambda b: b["documentCount"] == 3))  # report, prescription v3, auto_masked


def blocking(d: Daemon, report: str, prescription3: str):
    """The doctor the patient authorised, then blocked (even in bris_de_glace, even for their own
    document), unblocked; an organisation blocked; a block lifted by naming the professional
    médecin traitant; members removed."""
    checker, send, send_json, issuer = d.checker, d.send, d.send_json, d.issuer
    p2 = issuer.auth(INS2)
    doctor, attending, administrator = (pro_auth(issuer, r) for r in (DOCTOR, ATTENDING, ADMINISTRATOR))
    checker.case("addAccessMember blocked the authorised doctor -> 200", MEMBER_PUT,
                 send("PUT", MEMBER % (INS2, "blocked", DOCTOR), headers=p2), 200,
                 extra=json_is(lambda b: b["blocked"] == [DOCTOR] and DOCTOR in b["authorized"]))
    checker.case("listDocuments by the blocked doctor -> 403 access_denied", DOCS_GET,
                 send("GET", DOCS % INS2, headers=doctor), 403, "access_denied")
    checker.case("getDocument by the blocked doctor -> 403 access_denied", DOC_GET,
                 send("GET", DOC % (INS2, report), headers=doctor), 403, "access_denied")
    checker.case("getDocumentContent of their own document by the blocked doctor -> 403 access_denied", CONTENT_GET,
                 send("GET", CONTENT % (INS2, prescription3), headers=doctor), 403, "access_denied")
    checker.case("getDossier by the blocked doctor in bris_de_glace -> 403 access_denied", DOSSIER_GET,
                 send("GET", DOSSIER % INS2, headers=pro_auth(issuer, DOCTOR, mode="bris_de_glace")), 403, "access_denied")
    checker.case("storeDocument by the blocked doctor -> 403 access_denied", DOCS_POST,
                 send("POST", DOCS % INS2, headers={**doctor, "Coffre-Class": "BIOLOGIE"}, body=b"x"), 403, "access_denied")
    checker.case("removeAccessMember blocked the doctor -> 200", MEMBER_DELETE,
                 send("DELETE", MEMBER % (INS2, "blocked", DOCTOR), headers=p2), 200,
                 extra=json_is(lambda b: b["blocked"] == []))
    checker.case("listDocuments by the unblocked doctor -> 200", DOCS_GET, send("GET", DOCS % INS2, headers=doctor), 200)
    checker.case("addAccessMember blocked the doctor's organisation -> 200", MEMBER_PUT,
                 send("PUT", MEMBER % (INS2, "blocked", FINESS), headers=p2), 200,
                 extra=json_is(lambda b: b["blockedOrganizations"] == [FINESS]))
    checker.case("listDocuments by the doctor acting for the blocked organisation -> 403 access_denied", DOCS_GET,
                 send("GET", DOCS % INS2, headers=pro_auth(issuer, DOCTOR, organization=FINESS)), 403, "access_denied")
    checker.case("listDocuments by the doctor acting for no organisation -> 200", DOCS_GET,
                 send("GET", DOCS % INS2, headers=doctor), 200)
    checker.case("listDocuments by the médecin traitant of the blocked organisation -> 200", DOCS_GET,
                 send("GET", DOCS % INS2, headers=pro_auth(issuer, ATTENDING, organization=FINESS)), 200)
    checker.case("removeAccessMember blocked organisation -> 200", MEMBER_DELETE,
                 send("DELETE", MEMBER % (INS2, "blocked", FINESS), headers=p2), 200,
                 extra=json_is(lambda b: b["blockedOrganizations"] == []))
    checker.case("addAccessMember blocked a stranger -> 200", MEMBER_PUT,
                 send("PUT", MEMBER % (INS2, "blocked", STRANGER), headers=p2), 200,
                 extra=json_is(lambda b: b["blocked"] == [STRANGER]))
    checker.case("setAttendingDoctor a blocked professional lifts the block -> 200", ATTENDING_PUT,
                 send_json(ATTENDING_PUT, ATTENDING_DOCTOR % INS2, p2, {"rpps": STRANGER, "profession": "10"}), 200,
                 extra=json_is(lambda b: b["attendingDoctor"] == STRANGER and b["blocked"] == []))
    checker.case("listDocuments by the former médecin traitant, not authorised -> 403 access_denied", DOCS_GET,
                 send("GET", DOCS % INS2, headers=attending), 403, "access_denied")
    checker.case("removeAccessMember authorized the doctor -> 200", MEMBER_DELETE,
                 send("DELETE", MEMBER % (INS2, "authorized", DOCTOR), headers=p2), 200,
                 extra=json_is(lambda b: b["authorized"] == sorted([ADMINISTRATOR, PHARMACIST])))
    checker.case("listDocuments by the doctor no longer authorised -> 403 access_denied", DOCS_GET,
                 send("GET", DOCS % INS2, headers=doctor), 403, "access_denied")
    checker.case("removeAccessMember administrators -> 200", MEMBER_DELETE,
                 send("DELETE", MEMBER % (INS2, "administrators", ADMINISTRATOR), headers=p2), 200,
                 extra=json_is(lambda b: b["administrators"] == []))
    checker.case("listDocuments by the former administrator, still authorised -> 200", DOCS_GET,
                 send("GET", DOCS % INS2, headers=administrator), 200)
    checker.case("removeAccessMember authorized the former administrator -> 200", MEMBER_DELETE,
                 send("DELETE", MEMBER % (INS2, "authorized", ADMINISTRATOR), headers=p2), 200,
                 extra=json_is(lambda b: b["authorized"] == [PHARMACIST] and b["administrators"] == []))
    checker.case("listDocuments by the former administrator, no longer authorised -> 403 access_denied", DOCS_GET,
                 send("GET", DOCS % INS2, headers=administrator), 403, "access_denied")
