#!/usr/bin/env python3
"""API fuzz: schemathesis drives docs/openapi.yaml against a live coffred; no 5xx, no crash.

Usage: drills/api_fuzz.py BIN_DIR [--max-examples N] [--max-time S] [--phases P] [--seed S]

coffred --dev serves its Unix socket; socat bridges a loopback TCP port to it (schemathesis speaks
TCP). Two patients get a dossier and documents, and one authorises a professional; the hooks in
drills/st_hooks.py point most generated calls at them with valid assertions (the rest stay
random). schemathesis runs with the `not_a_server_error` and `response_schema_conformance` checks
(every answer must be one the description allows). Independently, the daemon's own
log is searched for any answer with a 5xx status, and the daemon must still be running, answer
/v1/health and pass `coffre admin verify` at the end. Reports the number of test cases.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from coffre_drill import (INS1, INS2, REPO, RPPS, Daemon, Figures, Vault, temporary_directory, winding_down)

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bin_dir", type=Path)
    parser.add_argument("--max-examples", type=int, default=20, help="cases per operation and phase")
    parser.add_argument("--max-time", type=int, default=0, help="time budget in seconds (0: none)")
    parser.add_argument("--phases", default="examples,coverage,fuzzing")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    figures = Figures("api-fuzz")
    figures["seed"] = args.seed
    st = shutil.which("schemathesis") or shutil.which("st")
    if not st:
        figures.fail("schemathesis is not installed (python3 -m pip install schemathesis)")
        return figures.report()
    if not shutil.which("socat"):
        figures.fail("socat is not installed (apt-get install socat)")
        return figures.report()
    tmp = temporary_directory("coffre-fuzz-")
    daemon = Daemon(args.bin_dir.resolve(), tmp / "state", args=("--max-document-bytes", "1000000"))
    with winding_down(figures, tmp, daemon, graceful=True, kept="state, log and schemathesis output"):
        fuzz(daemon, figures, args, tmp, st)
    return figures.report()


def fuzz(daemon: Daemon, figures: Figures, args, tmp: Path, st: str):
    """Documents to aim at, the socat bridge, schemathesis, and the checks after it."""
    bridge = None
    try:
        daemon.start()
        vault = Vault(daemon)
        documents = []
        for ins in (INS1, INS2):
            assert vault.create_dossier(ins).status == 201
            for n in range(3):
                documents.append(vault.store(ins, b"document %d" % n, title="fuzz").json()["id"])
        assert vault.send("PUT", "/v1/patients/%s/access/authorized/%s" % (INS1, RPPS), headers=vault.auth(INS1)).status == 200
        port = free_port()
        bridge = subprocess.Popen(["socat", "TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr" % port, "UNIX-CONNECT:" + daemon.socket],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        env = dict(os.environ, SCHEMATHESIS_HOOKS=str(HERE / "st_hooks.py"), COFFRE_FUZZ_STATE=str(daemon.state),
                   COFFRE_FUZZ_PATIENTS="%s,%s" % (INS1, INS2), COFFRE_FUZZ_DOCUMENTS=",".join(documents),
                   COFFRE_FUZZ_RPPS=RPPS, COFFRE_FUZZ_SEED=str(args.seed), PYTHONPATH=str(HERE))
        report_dir = tmp / "report"
        command = [st, "run", str(REPO / "docs" / "openapi.yaml"), "--url", "http://127.0.0.1:%d" % port,
                   "--checks", "not_a_server_error,response_schema_conformance", "--phases", args.phases,
                   "--max-examples", str(args.max_examples),
                   "--seed", str(args.seed), "--workers", "1", "--request-timeout", "30", "--continue-on-failure",
                   "--report", "ndjson", "--report-dir", str(report_dir), "--no-color"]
        if args.max_time:
            command += ["--max-time", str(args.max_time)]
        print("  " + " ".join(command[:1] + command[1:]), flush=True)
        began = time.monotonic()
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=max(3600, args.max_time * 3),
                                cwd=tmp)  # its caches (.schemathesis, .hypothesis) go with the temporary directory
        figures["schemathesis seconds"] = round(time.monotonic() - began, 1)
        output = result.stdout + result.stderr
        (tmp / "schemathesis.txt").write_text(output)
        summary = [line for line in output.splitlines() if re.search(r"test cases|passed|failed|Operations|Seed", line)]
        for line in summary[-8:]:
            print("  st: " + line.strip()[:160])
        cases = count_cases(report_dir)
        if cases is None:
            match = re.search(r"(\d[\d,]*) test cases? generated", output) or re.search(r"(\d[\d,]*) generated", output)
            cases = int(match.group(1).replace(",", "")) if match else None
        figures["API test cases"] = cases
        figures["schemathesis exit status"] = result.returncode
        if result.returncode != 0:
            figures.fail("schemathesis reported failures (exit %d); its output is in %s" % (result.returncode, tmp / "schemathesis.txt"))
            for line in output.splitlines():
                if re.search(r"Server error|not_a_server_error|response_schema_conformance|Response violates|Runtime Error|^_{5,}",
                             line):
                    print("    " + line[:160])
        log = daemon.log.read_text(errors="replace")
        server_errors = [line for line in log.splitlines() if re.search(r"http\.status=5\d\d", line)]
        figures["daemon log: answers with a 5xx status"] = len(server_errors)
        for line in server_errors[:10]:
            figures.fail("daemon answered a 5xx: " + line[-200:])
        figures["daemon alive"] = daemon.alive()
        if not daemon.alive():
            figures.fail("coffred died during the fuzz run (exit %s)" % daemon.process.returncode)
        else:
            figures["health after"] = vault.health().status
            report = daemon.verify()
            figures["verify after: ok"] = report.get("ok")
            if not report.get("ok"):
                figures.fail("coffre admin verify after the fuzz run: %s" % report.get("problems"))
    finally:
        if bridge is not None:
            bridge.terminate()
            bridge.wait(timeout=10)


def count_cases(report_dir: Path) -> int | None:
    """The number of test cases schemathesis ran, from its NDJSON event stream."""
    files = list(report_dir.glob("*.ndjson")) if report_dir.is_dir() else []
    if not files:
        return None
    cases = 0
    seen = False
    for line in files[0].read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        for name, body in event.items():
            if name == "ScenarioFinished" and isinstance(body, dict):
                recorder = body.get("recorder") or {}
                cases += len(recorder.get("cases") or {})
                seen = True
    return cases if seen else None


if __name__ == "__main__":
    sys.exit(main())
