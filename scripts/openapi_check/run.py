"""Checks docs/openapi.yaml against a running coffred.

The run itself: the spec loaded, the development daemon started and exercised resource by
resource in the order its state needs, stopped, then the production runs (production.py), the
checks after the run (static.py), and the closing line."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

from .access import exercise_access_and_professionals
from .common import (
    MAX_DOCUMENT_BYTES, REPO, ROTATION_BATCH, ROTATION_PAUSE_MS, Checker, Daemon, Ed25519PrivateKey, Issuer, Spec,
    wait_for_socket,
)
from .documents import exercise_documents
from .dossier import exercise_dossiers
from .keys import exercise_keys
from .lifecycle import exercise_lifecycle
from .one_entry import every_operation_leaves_one_entry
from .production import exercise_new_vault_production, exercise_production
from .static import final_checks, static_checks
from .system import check_system, route_not_found
from .trace import exercise_trace_and_notifications, exercise_trace_unavailable
from .verify_clock import exercise_clock, exercise_verify


def development_run(checker: Checker, bin_dir: Path, state: Path, sock: str, tmp: Path) -> Issuer:
    """The development daemon's cases. Their order matters: each part leaves the dossiers,
    documents, clock and keys as the parts after it expect. Returns the development issuer, which
    the production runs trust too."""
    issuer = Issuer((state / "dev-issuer.key").read_text())
    d = Daemon(checker, sock, issuer, state)
    check_system(d, tmp)
    # --- dossiers (set up through the client), assertions, patient 1's documents
    client_doc = exercise_dossiers(d, bin_dir, tmp)
    exercise_documents(d, client_doc)
    # --- access decisions, professionals, document versions (patient 2's dossier)
    exercise_access_and_professionals(d)
    # --- the trace and notifications (patient 4's dossier), fail closed, the operator's check
    docs4 = exercise_trace_and_notifications(d)
    exercise_trace_unavailable(d, docs4)
    exercise_verify(d)
    # --- the development clock and the time rules, last: it is set back to the real time
    exercise_clock(d, docs4)
    # --- the dossier lifecycle, legal holds and the retention job (the clock set back at the end)
    exercise_lifecycle(d)
    # --- master keys and rekeys, last: rotations add key versions (the production run finds them)
    exercise_keys(d)
    # --- every person-level operation of the spec, once refused and once by the patient: one entry each
    every_operation_leaves_one_entry(d)
    # --- what no operation serves
    route_not_found(d)
    return issuer


def stop(process: subprocess.Popen) -> int:
    """SIGTERM, then SIGKILL if the daemon has not exited within 15 s; its exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bin_dir", help="directory holding coffred and coffre (e.g. .build/debug)")
    parser.add_argument("--spec", default=str(REPO / "docs" / "openapi.yaml"))
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()

    if Ed25519PrivateKey is None:
        print("openapi: the Python package `cryptography` is needed to sign assertions", file=sys.stderr)
        print("openapi: 0 passed, 1 failed")
        return 1
    bin_dir = Path(args.bin_dir).resolve()
    for binary in ("coffred", "coffre"):
        if not os.access(bin_dir / binary, os.X_OK):
            print("FAIL  %s is not an executable: build first (swift build)" % (bin_dir / binary))
            print("openapi: 0 passed, 1 failed")
            return 1
    try:
        spec = Spec(Path(args.spec))
    except Exception as error:
        print("FAIL  spec: %s does not load: %s" % (args.spec, error))
        print("openapi: 0 passed, 1 failed")
        return 1
    checker = Checker(spec, args.verbose)

    # SIGTERM/SIGHUP stop the run like Ctrl-C, so that `finally` stops the daemon.
    def interrupted(signum, frame):
        raise KeyboardInterrupt()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupted)

    tmp = Path(tempfile.mkdtemp(prefix="coffre-openapi-"))
    state = tmp / "state"
    sock = str(state / "coffred.sock")
    log_path = tmp / "coffred.log"
    processes: list[subprocess.Popen] = []

    try:
        static_checks(checker)
        with open(log_path, "wb") as log:
            processes.append(subprocess.Popen(
                [str(bin_dir / "coffred"), "--dev", "--state-dir", str(state),
                 "--max-document-bytes", str(MAX_DOCUMENT_BYTES), "--log-level", "notice",
                 "--rotation-batch-size", str(ROTATION_BATCH), "--rotation-pause-ms", str(ROTATION_PAUSE_MS)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=str(tmp)))
        try:
            wait_for_socket(sock, processes[0])
        except Exception as error:
            checker.record("daemon: coffred --dev serves on its socket", [str(error)])
        else:
            issuer = development_run(checker, bin_dir, state, sock, tmp)
            # The same state without --dev, once the development daemon has stopped cleanly.
            status = stop(processes[0])
            checker.record("daemon: coffred --dev stops cleanly on SIGTERM", [] if status == 0 else ["exit status %s" % status])
            production = exercise_production(checker, bin_dir, state, tmp, issuer)
            if production is not None:
                processes.append(production)
            new_vault = exercise_new_vault_production(checker, bin_dir, state, tmp, issuer)
            if new_vault is not None:
                processes.append(new_vault)
        final_checks(checker)
    except KeyboardInterrupt:
        checker.record("run: interrupted", ["interrupted"])
    except Exception as error:
        traceback.print_exc()
        checker.record("run: unexpected error", [repr(error)])
    finally:
        for process in processes:
            stop(process)
        for path in (log_path, tmp / "coffred-production.log", tmp / "coffred-new-vault.log"):
            if checker.failed and path.exists():
                tail = path.read_text(errors="replace").splitlines()[-20:]
                print("--- last lines of %s:" % path.name)
                for line in tail:
                    print("    " + line)
        shutil.rmtree(tmp, ignore_errors=True)
    if checker.xfailed:
        print("known mismatches (code to fix, not counted): %d" % checker.xfailed)
    if checker.skipped:
        print("skipped: %d" % checker.skipped)
    print("openapi: %d passed, %d failed" % (checker.passed, checker.failed))
    return 1 if checker.failed else 0
