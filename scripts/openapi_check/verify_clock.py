"""The operator's check of the trace (verifyTrace, whole and streamed as NDJSON, intact and with
an entry changed behind the daemon's back) and the development clock with the time rules it
drives (a hidden document noticed, then released; uploads and the trace dated by the vault
clock)."""

from __future__ import annotations

import datetime
import json
import sqlite3
import time

from .common import (
    CLOCK, CLOCK_GET, CLOCK_POST, DOC_GET, DOCS_POST, INS4, NDJSON, NOTES_GET, PATIENT, TRACE_GET, VERIFY_POST, Daemon,
    json_is, ndjson_lines, near_now, notices, trace_is,
)
from .trace import Patient4Documents


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


def exercise_verify(d: Daemon):
    """The operator's check of the whole trace, intact, then with an entry changed behind the
    daemon's back (and put back); whole, and streamed as NDJSON with progress lines."""
    verify_the_chain(d)
    verify_a_changed_entry(d)


def verifications(d: Daemon) -> int:
    """How many `vault.verify` entries the trace holds."""
    with sqlite3.connect("file:%s?mode=ro" % (d.state / "index.sqlite"), uri=True) as index:
        return index.execute("SELECT count(*) FROM trace_entry WHERE action = 'vault.verify'").fetchone()[0]


def verify_the_chain(d: Daemon):
    """The chain holds, whole and streamed (as Accept asks), sampled or not; bad samples refused."""
    checker, send = d.checker, d.send
    checker.case("verifyTrace -> 200, the chain holds", VERIFY_POST, send("POST", "/v1/admin/verify"), 200,
                 extra=json_is(lambda b: b["ok"] is True and b["problems"] == [] and "firstBrokenTraceEntry" not in b
                               and b["traceEntriesChecked"] > 64 and b["traceCheckpointsChecked"] >= 1))
    checker.case("verifyTrace ignores an Authorization header -> 200", VERIFY_POST,
                 send("POST", "/v1/admin/verify", headers={"Authorization": "Coffre-Assertion nonsense"}), 200)
    checker.case("verifyTrace streamed (Accept: application/x-ndjson) -> 200, progress lines, then the report",
                 VERIFY_POST, send("POST", "/v1/admin/verify", headers=NDJSON), 200,
                 extra=verify_stream(lambda r: r["ok"] is True and r["problems"] == [] and r["documentsChecked"] > 10
                                     and r["traceEntriesChecked"] > 64 and "firstBrokenTraceEntry" not in r))
    recorded = verifications(d)
    checker.case("verifyTrace streamed -> 200, one vault.verify entry for the check", VERIFY_POST,
                 send("POST", "/v1/admin/verify", headers=NDJSON), 200,
                 extra=lambda r: [] if verifications(d) == recorded + 1
                 else ["expected one vault.verify entry, found %d" % (verifications(d) - recorded)])
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


def verify_a_changed_entry(d: Daemon):
    """An entry changed in the index: verifyTrace names it, whole and streamed; put back, the
    chain holds again."""
    checker, send, state = d.checker, d.send, d.state
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


def exercise_clock(d: Daemon, docs4: Patient4Documents):
    """The development clock and the time rules it drives; set back to the real time at the end."""
    clock_refusals(d)
    two_weeks_on(d, docs4.hidden)
    a_month_on(d, docs4.hidden)
    back_to_the_real_time(d)


def clock_refusals(d: Daemon):
    """getClock in development mode; setClock's refusals change nothing."""
    checker, send, send_json = d.checker, d.send, d.send_json
    checker.case("getClock in development mode -> 200, settable, the real time", CLOCK_GET, send("GET", CLOCK), 200,
                 extra=json_is(lambda b: b["settable"] is True and near_now(b["now"])))
    for label, body in [("{}", {}), ("now a number", {"now": 20300101}), ("now a word", {"now": "tomorrow"}),
                        ("an impossible date", {"now": "2030-02-30"}), ("a date before 1900", {"now": "1899-12-31"}),
                        ("a time without a zone", {"now": "2030-01-01T08:00:00"}),
                        ("a time with a lower-case t", {"now": "2030-01-01t08:00:00Z"}), ("not JSON", b"now=2030-01-01")]:
        checker.case("setClock %s -> 400 malformed_json" % label, CLOCK_POST, send_json(CLOCK_POST, CLOCK, {}, body),
                     400, "malformed_json")
    checker.case("setClock body over 64 KiB -> 413 payload_too_large", CLOCK_POST,
                 send("POST", CLOCK, headers={"Content-Type": "application/json"},
                      body=b" " * (70 * 1024) + b'{"now": "2030-01-01"}'), 413, "payload_too_large")
    checker.case("getClock after refused changes -> 200, still the real time", CLOCK_GET, send("GET", CLOCK), 200,
                 extra=json_is(lambda b: near_now(b["now"])))


def two_weeks_on(d: Daemon, hidden: str):
    """Two weeks on: the document still hidden is noticed, once."""
    checker, send, send_json = d.checker, d.send, d.send_json
    p4 = d.issuer.auth(INS4)
    base = PATIENT % INS4
    day15 = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=15)).date().isoformat()
    checker.case("setClock a date two weeks on -> 200, midnight UTC", CLOCK_POST,
                 send_json(CLOCK_POST, CLOCK, {}, {"now": day15}), 200,
                 extra=json_is(lambda b: b["settable"] is True and b["now"].startswith(day15 + "T00:00:0")))
    checker.case("getClock two weeks on -> 200", CLOCK_GET, send("GET", CLOCK), 200,
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


def a_month_on(d: Daemon, hidden: str):
    """A month on: released by itself; uploads and the trace dated by the vault clock."""
    checker, send, send_json = d.checker, d.send, d.send_json
    p4 = d.issuer.auth(INS4)
    base = PATIENT % INS4
    month = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=31)
    local = (month + datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00")
    ahead = month.timestamp() - time.time()
    checker.case("setClock an RFC 3339 time with an offset, a month on -> 200, in UTC", CLOCK_POST,
                 send_json(CLOCK_POST, CLOCK, {}, {"now": local}), 200,
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


def back_to_the_real_time(d: Daemon):
    """The clock set back to the real time, for what follows."""
    checker, send, send_json = d.checker, d.send, d.send_json
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    checker.case("setClock back to the real time -> 200", CLOCK_POST, send_json(CLOCK_POST, CLOCK, {}, {"now": now}), 200,
                 extra=json_is(lambda b: near_now(b["now"], 10)))
    checker.case("getClock -> 200, the real time again", CLOCK_GET, send("GET", CLOCK), 200,
                 extra=json_is(lambda b: b["settable"] is True and near_now(b["now"], 10)))
