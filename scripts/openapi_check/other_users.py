"""Calls as another user than the daemon's, whom the kernel names to it (SO_PEERCRED): as root,
a forked child drops to `nobody` and makes the request. Without --dev, `nobody` is the retention
job's user (production.py); in --dev it is no operator at all."""

from __future__ import annotations

import http.client
import json
import os
from pathlib import Path

from .common import (
    CLOCK_GET, CLOCK_POST, DEATH_POST, DUE_GET, HOLD_DELETE, HOLD_POST, INS1, INS_BAD_KEY, INS_HELD, KEYS_GET,
    KEYS_RELOAD, KEYS_RETIRE, KEYS_ROTATE, NDJSON, REKEY_POST, RUN_POST, VERIFY_POST, Checker, Reply, request,
)

NOBODY = 65534


def admin_as_other_user(checker: Checker, sock: str, state: Path, tmp: Path):
    """`not_operator`: a caller the kernel says is neither root, the operator group nor the
    daemon's user, on every operator operation (the retention ones included: the development
    daemon has no retention user). Needs root, to run the requests as `nobody` and open the
    socket to it."""
    hold = "/v1/admin/patients/%s/hold" % INS_HELD
    calls = [
        ("getAdminStatus", ("GET", "/v1/admin/status"), "/v1/admin/status", None, 403, "not_operator"),
        ("verifyTrace", VERIFY_POST, "/v1/admin/verify", None, 403, "not_operator"),
        ("getClock", CLOCK_GET, "/v1/admin/clock", None, 403, "not_operator"),
        ("setClock", CLOCK_POST, "/v1/admin/clock", b'{"now": "2030-01-01"}', 403, "not_operator"),
        ("placeLegalHold", HOLD_POST, hold, b'{"reason": "x"}', 403, "not_operator"),
        ("releaseLegalHold", HOLD_DELETE, hold, None, 403, "not_operator"),
        ("recordDeath", DEATH_POST, "/v1/admin/patients/%s/death" % INS_HELD, None, 403, "not_operator"),
        ("getRetentionDue", DUE_GET, "/v1/retention/due", None, 403, "not_operator"),
        ("runRetention", RUN_POST, "/v1/retention/run", b'{"dryRun": true}', 403, "not_operator"),
        ("verifyTrace streamed", VERIFY_POST, "/v1/admin/verify", None, 403, "not_operator", NDJSON),
        ("getMasterKeys", KEYS_GET, "/v1/admin/keys", None, 403, "not_operator"),
        ("reloadMasterKeys", KEYS_RELOAD, "/v1/admin/keys/reload", None, 403, "not_operator"),
        ("rotateMasterKey", KEYS_ROTATE, "/v1/admin/keys/rotate", None, 403, "not_operator"),
        ("retireMasterKey", KEYS_RETIRE, "/v1/admin/keys/1/retire", None, 403, "not_operator"),
        ("retireMasterKey of a bad version (the operator first)", KEYS_RETIRE, "/v1/admin/keys/x/retire", None, 403,
         "not_operator"),
        ("rekeyDossier", REKEY_POST, "/v1/admin/patients/%s/rekey" % INS1, b'{"reencrypt": true}', 403, "not_operator"),
        ("rekeyDossier invalid INS (the operator first)", REKEY_POST, "/v1/admin/patients/%s/rekey" % INS_BAD_KEY, b"{",
         403, "not_operator"),
    ]
    as_other_user(checker, sock, [tmp, state], "an unprivileged user", calls,
                  "needs root to connect as another user (the daemon's own user is an operator in --dev)")


def request_as_nobody(sock: str, method: str, path: str, body: bytes | None, extra_headers: dict) -> Reply:
    """One request made by a forked child that drops to nobody; the kernel records the
    credentials at connect(). The answer comes back through a pipe as JSON."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:  # the child never returns into the checker, whatever happens
            os.close(read_end)
            try:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                headers = {"Content-Type": "application/json"} if body is not None else {}
                headers.update(extra_headers)
                reply = request(sock, method, path, headers=headers, body=body)
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


def as_other_user(checker: Checker, sock: str, directories: list[Path], who: str, calls: list, why_skipped: str):
    """Runs each call `(operation, op, path, body, status, code[, headers])` as the user `nobody`,
    whom the kernel names to the daemon; needs root. The socket and the directories on its way
    are opened to it for the time of the calls."""
    if os.geteuid() != 0:
        for operation, _, _, _, status, code, *_ in calls:
            checker.skip("%s as %s -> %d%s" % (operation, who, status, " " + code if code else ""), why_skipped)
        return
    modes = {p: os.stat(p).st_mode & 0o7777 for p in [*directories, Path(sock)]}
    try:
        for directory in directories:
            os.chmod(directory, 0o711)
        os.chmod(sock, 0o666)
        for operation, op, path, body, status, code, *more in calls:
            checker.case("%s as %s -> %d%s" % (operation, who, status, " " + code if code else ""), op,
                         lambda: request_as_nobody(sock, op[0], path, body, more[0] if more else {}), status, code)
    finally:
        for path, mode in modes.items():
            try:
                os.chmod(path, mode)
            except OSError:
                pass
