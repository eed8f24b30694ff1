"""Every person-level operation the spec describes leaves exactly one entry in the dossier's
trace, whoever calls and whatever the answer: called by a professional nobody authorised
(refused) and by the patient (allowed, or refused by the dossier's state), each call adds one
entry, which the patient reads back. The operations come from the spec itself, so one added
there without a request here fails the check."""

from __future__ import annotations

from .common import DOCTOR, STRANGER, TRACE_GET, Daemon, ins_of, pro_auth

INS_TRACED = ins_of("1850575123410")  # every operation once as a stranger, once as the patient
PATIENTS = "/v1/patients/{ins}"

# What each operation sends, and what the patient's call must answer (the stranger's is 403).
# The operations on one document each get a document of their own (see `documents`).
REQUESTS = {
    "createDossier": (None, None, 409),
    "getDossier": (None, None, 200),
    "getAccess": (None, None, 200),
    "setAttendingDoctor": ({"rpps": DOCTOR, "profession": "10"}, None, 200),
    "setPreferences": ({"notifyEveryAccess": True}, None, 200),
    "setEmergencyAccess": ({"centre15": False}, None, 200),
    "addAccessMember": (None, None, 200),
    "removeAccessMember": (None, None, 200),
    "listDocuments": (None, None, 200),
    "storeDocument": (b"une ordonnance", {"Coffre-Class": "ORD_SOIN", "Content-Type": "text/plain"}, 201),
    "getDocument": (None, None, 200),
    "getDocumentContent": (None, None, 200),
    "replaceDocument": (b"version 2", {"Content-Type": "text/plain"}, 201),
    "deleteDocument": (None, None, 200),
    "maskDocument": (None, None, 200),
    "unmaskDocument": (None, None, 200),
    "releaseDocument": (None, None, 403),  # a professional's act: the patient is refused
    "getTrace": (None, None, 200),
    "listNotifications": (None, None, 200),
    "acknowledgeNotifications": ({"all": True}, None, 200),
    "closeDossier": ({}, None, 200),
    "reopenDossier": (None, None, 200),
    "opposeDossier": (None, None, None),  # the patient's would destroy the dossier: the stranger's only
}
# The patient's calls run in this order; the others before them.
LAST = ["closeDossier", "reopenDossier", "opposeDossier"]


def person_level_operations(spec) -> list[tuple[str, str, str]]:
    """(operationId, method, path template) of every operation under /v1/patients/{ins}."""
    operations = []
    for template, item in spec.doc["paths"].items():
        if not template.startswith(PATIENTS):
            continue
        for method in ("get", "post", "put", "patch", "delete"):
            if method in item:
                operations.append((item[method]["operationId"], method.upper(), template))
    return operations


def every_operation_leaves_one_entry(d: Daemon):
    checker, issuer = d.checker, d.issuer
    patient, stranger = issuer.auth(INS_TRACED), pro_auth(issuer, STRANGER)
    operations = person_level_operations(checker.spec)
    unknown = sorted(op for op, _, _ in operations if op not in REQUESTS)
    checker.record("one entry: every person-level operation of the spec has a request here",
                   ["no request for %s" % ", ".join(unknown)] if unknown else [])
    base = PATIENTS.format(ins=INS_TRACED)
    created = d.send("POST", base + "/dossier", headers=patient)()
    checker.record("one entry: the dossier to trace", [] if created.status == 201 else ["create answered %d" % created.status])
    documents = {}
    for op, _, template in operations:
        if "{id}" in template:
            stored = d.send("POST", base + "/documents", headers={**patient, "Coffre-Class": "BIOLOGIE"}, body=b"resultat")()
            documents[op] = stored.json()["id"] if stored.status == 201 else "0" * 32

    def last_seq() -> int:
        entries = d.send("GET", base + "/trace", headers=patient)().json()["entries"]
        return entries[-1]["seq"]

    def traced_once(op: str, who: str, actor_id: str, outcome: str):
        """The patient reads exactly two new entries: the call's, then this read's."""
        def extra(reply, since=last_seq()):
            entries = d.send("GET", base + "/trace?after=%d" % since, headers=patient)().json()["entries"]
            problems = []
            if len(entries) != 2 or entries[-1]["action"] != "trace.read":
                problems.append("%d new entries, expected the call's and this read's: %s" % (
                    len(entries), [(e["action"], e["outcome"]) for e in entries]))
            elif entries[0].get("actor", {}).get("id") != actor_id or entries[0]["outcome"] != outcome:
                problems.append("the entry names %s, outcome %s; expected %s, %s" % (
                    entries[0].get("actor", {}).get("id"), entries[0]["outcome"], actor_id, outcome))
            return problems
        return extra

    def call(op: str, method: str, template: str, headers: dict, who: str, actor_id: str, expected: int):
        body, extra_headers, _ = REQUESTS[op]
        path = template.replace("{ins}", INS_TRACED).replace("{list}", "authorized").replace("{member}", DOCTOR)
        path = path.replace("{id}", documents.get(op, "0" * 32))
        headers = {**headers, **(extra_headers or {})}
        send = d.send_json((method, template), path, headers, body) if isinstance(body, dict) else \
            d.send(method, path, headers=headers, body=body)
        outcome = "denied" if who == "a stranger" else "allowed" if expected < 400 else "refused"
        if op == "releaseDocument" and who == "the patient":
            outcome = "denied"
        checker.case("one entry: %s by %s -> %d, one entry in the trace" % (op, who, expected), (method, template), send,
                     expected, extra=traced_once(op, who, actor_id, outcome))

    order = sorted(operations, key=lambda o: (o[0] in LAST, LAST.index(o[0]) if o[0] in LAST else 0))
    for op, method, template in order:
        if op not in REQUESTS:
            continue
        call(op, method, template, stranger, "a stranger", STRANGER, 403)
        expected = REQUESTS[op][2]
        if expected is not None:
            call(op, method, template, patient, "the patient", INS_TRACED, expected)
    checker.case("one entry: the trace read back after it all -> 200", TRACE_GET,
                 d.send("GET", base + "/trace", headers=patient), 200)
