"""The runs without --dev, as a site runs coffred (a configuration file naming its keys, trust
directory and operator group): a second daemon on the state the development run left, for the
production-only answers (the clock cannot be set, the trace still holds after a clean stop, the
retention job's own user, a death recorded by an operator, the master keys an operator
installs), then a third on a new vault of its own (never rotated; two re-encrypting rekeys at
once)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from .common import (
    CLOCK, CLOCK_GET, CLOCK_POST, DEATH, DEATH_POST, DOSSIER_GET, DOSSIER_POST, DUE_GET, HOLD_DELETE, HOLD_POST,
    INS4, INS_BAD_KEY, INS_DIED, INS_LOCKED, INS_NOBODY, KEYS_GET, KEYS_RELOAD, KEYS_RETIRE, KEYS_ROTATE, REKEY_POST,
    REOPEN_POST, ROTATION_BATCH, ROTATION_PAUSE_MS, RUN_POST, TRACE_GET, VERIFY_POST, Checker, Daemon, Issuer, json_is,
    near_now, trace_is, wait_for_socket,
)
from .keys import exercise_production_keys, install_master_key, new_vault_never_rotated, new_vault_rekeys_at_once
from .lifecycle import closed_view
from .other_users import NOBODY, as_other_user


# A scope file that lets an issuer vouch for every role, mode and profession.
ALL_SCOPES = '{"roles": ["patient", "representative", "professional"], "modes": ["normal", "bris_de_glace", "centre_15"], "professions": ["*"]}\n'


def start_with_config(bin_dir: Path, config: Path, log_path: Path, cwd: Path) -> subprocess.Popen:
    """coffred without --dev, everything named by its configuration file; its output to `log_path`."""
    with open(log_path, "wb") as log:
        return subprocess.Popen([str(bin_dir / "coffred"), "--config", str(config), "--log-level", "notice"],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=str(cwd))


def exercise_production(checker: Checker, bin_dir: Path, state: Path, tmp: Path, issuer: Issuer) -> subprocess.Popen | None:
    """A second daemon, without --dev, on the state the development run left (its keys and
    trust directory named in a configuration file): the clock cannot be set, and the trace,
    signed at the clean stop, still holds. Returns the process, for main to stop."""
    sock = str(tmp / "production.sock")
    config = tmp / "coffred-production.json"
    # Outside --dev an issuer needs a scope file; the operator grants the development issuer all.
    (state / "trust" / "dev.scope").write_text(ALL_SCOPES, encoding="utf-8")
    config.write_text(json.dumps({
        "stateDirectory": str(state), "socket": sock, "keyDirectories": [str(state / "keys")],
        "trustDirectory": str(state / "trust"), "operatorGroup": str(os.getgid()),
        "retentionUser": str(NOBODY), "rotationBatchSize": ROTATION_BATCH,
        "rotationPauseMilliseconds": ROTATION_PAUSE_MS}), encoding="utf-8")
    process = start_with_config(bin_dir, config, tmp / "coffred-production.log", tmp)
    try:
        wait_for_socket(sock, process)
    except Exception as error:
        checker.record("daemon: coffred without --dev serves on the same state", [str(error)])
        return process
    d = Daemon(checker, sock, issuer, state)
    clock_and_trace_without_dev(d)
    retention_user_and_holds(d, tmp)
    death_recorded_by_an_operator(d)
    exercise_production_keys(d)
    return process


def clock_and_trace_without_dev(d: Daemon):
    """Health and status without --dev; the clock cannot be set (the body is still read first);
    the trace, signed at the clean stop, still holds and reads; nothing is due."""
    checker, send, send_json, issuer = d.checker, d.send, d.send_json, d.issuer
    checker.case("getHealth without --dev -> 200, developmentMode false", ("GET", "/v1/health"), send("GET", "/v1/health"), 200,
                 extra=json_is(lambda b: b["developmentMode"] is False))
    checker.case("getAdminStatus without --dev, as a member of the operator group -> 200", ("GET", "/v1/admin/status"),
                 send("GET", "/v1/admin/status"), 200)
    checker.case("getClock without --dev -> 200, not settable, the real time", CLOCK_GET, send("GET", CLOCK), 200,
                 extra=json_is(lambda b: b["settable"] is False and near_now(b["now"], 10)))
    checker.case("setClock without --dev -> 403 development_only", CLOCK_POST,
                 send_json(CLOCK_POST, CLOCK, {}, {"now": "2030-01-01"}), 403, "development_only")
    checker.case("setClock without --dev, an RFC 3339 time -> 403 development_only", CLOCK_POST,
                 send_json(CLOCK_POST, CLOCK, {}, {"now": "2030-01-01T08:00:00Z"}), 403, "development_only")
    checker.case("setClock without --dev, a malformed body -> 400 malformed_json (the body first)", CLOCK_POST,
                 send_json(CLOCK_POST, CLOCK, {}, {"when": "2030-01-01"}), 400, "malformed_json")
    checker.case("getClock without --dev after the refusals -> 200, the real time", CLOCK_GET, send("GET", CLOCK), 200,
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


def retention_user_and_holds(d: Daemon, tmp: Path):
    """A legal hold placed by an operator; the retention job's user may run the retention
    operations and nothing else (as root only); the hold released."""
    checker, send, send_json, sock, issuer = d.checker, d.send, d.send_json, d.sock, d.issuer
    hold = "/v1/admin/patients/%s/hold" % INS_LOCKED
    checker.case("placeLegalHold without --dev, as an operator -> 200, held", HOLD_POST,
                 send_json(HOLD_POST, hold, {}, {"reason": "contentieux"}), 200,
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


def death_recorded_by_an_operator(d: Daemon):
    """A death recorded by the site, for a patient with no médecin traitant: closed on death, kept
    ten years, never reopened, traced naming the operator."""
    checker, send, issuer = d.checker, d.send, d.issuer
    died_auth = issuer.auth(INS_DIED)
    checker.case("createDossier without --dev, a patient with no médecin traitant -> 201", DOSSIER_POST,
                 send("POST", "/v1/patients/%s/dossier" % INS_DIED, headers=died_auth), 201)
    checker.case("recordDeath without --dev, as an operator -> 200, closed on death, kept ten years", DEATH_POST,
                 send("POST", DEATH % INS_DIED), 200, extra=json_is(closed_view("death", False)))
    checker.case("recordDeath again -> 409 illegal_transition", DEATH_POST, send("POST", DEATH % INS_DIED), 409,
                 "illegal_transition")
    checker.case("recordDeath without a dossier -> 404 dossier_not_found", DEATH_POST, send("POST", DEATH % INS_NOBODY), 404,
                 "dossier_not_found")
    checker.case("recordDeath invalid INS -> 400 invalid_ins", DEATH_POST, send("POST", DEATH % INS_BAD_KEY), 400, "invalid_ins")
    checker.case("reopenDossier after a death recorded by an operator -> 409 illegal_transition", REOPEN_POST,
                 send("POST", "/v1/patients/%s/dossier/reopen" % INS_DIED, headers=issuer.auth(INS_DIED)), 409,
                 "illegal_transition")
    checker.case("getTrace after a death recorded by an operator -> 200, the closure named with the operator", TRACE_GET,
                 send("GET", "/v1/patients/%s/trace" % INS_DIED, headers=issuer.auth(INS_DIED)), 200,
                 extra=trace_is(lambda es: any(e["action"] == "dossier.close-on-death" and e["rule"] == "operator"
                                               and e["actor"] == {"role": "operator", "id": "uid %d" % os.geteuid()}
                                               for e in es)))


def exercise_new_vault_production(checker: Checker, bin_dir: Path, state: Path, tmp: Path,
                                  issuer: Issuer) -> subprocess.Popen | None:
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
    (trust / "dev.scope").write_text(ALL_SCOPES, encoding="utf-8")
    sock = str(root / "coffred.sock")
    config = root / "coffred.json"
    config.write_text(json.dumps({
        "stateDirectory": str(root / "state"), "socket": sock, "keyDirectories": [str(keys)],
        "trustDirectory": str(trust), "operatorGroup": str(os.getgid())}), encoding="utf-8")
    process = start_with_config(bin_dir, config, tmp / "coffred-new-vault.log", tmp)
    try:
        wait_for_socket(sock, process)
    except Exception as error:
        checker.record("daemon: coffred without --dev serves a new vault", [str(error)])
        return process
    d = Daemon(checker, sock, issuer, root / "state")
    new_vault_never_rotated(d)
    new_vault_rekeys_at_once(d)
    return process
