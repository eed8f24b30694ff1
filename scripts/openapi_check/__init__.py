"""Checks docs/openapi.yaml against a running coffred.

Usage: scripts/openapi_check.py BIN_DIR [--spec docs/openapi.yaml] [--verbose]

Starts `BIN_DIR/coffred --dev --state-dir TMP --max-document-bytes 100000` (rotating master keys
one dossier key per batch, resting 200 ms between two, so that a rotation can be seen running),
waits for its socket, then exercises every operation of the spec over the Unix socket, error cases
included, and checks each response against the spec: the status is documented for the operation,
the Content-Type is one of the documented media types, documented required headers are present
and valid, and JSON bodies validate (Draft 2020-12, $refs resolved) against the documented schema;
a newline-delimited JSON body (`application/x-ndjson`) line by line against its
`x-coffre-line-schema`. Each case also states the status (and problem code) the code is meant to
answer.

To make the trace unwritable (503 trace_unavailable) it holds the index's SQLite write lock from
this process for a moment; to check `verifyTrace` it changes one trace entry and puts it back.
It sets the development clock ahead to try the time rules, then back to the real time; it does
so again for the dossier lifecycle (the opposition window, the purge dates the retention job
acts on), on dossiers of their own, since purges cannot be undone. Near the end of the
development run come the master keys and dossier rekeys (rotations add key versions, and the
checker installs and retires some in the state's key directory). Last, it stops the development
daemon and starts a second one without --dev on the same state (through a configuration file
naming its keys, trust directory and retention user) for the production-only answers, then a
third one without --dev on a new vault of its own (a vault never rotated; two re-encrypting
rekeys at once).

Prints one line per case and ends with `openapi: N passed, M failed`; exits 1 if any failed.
The daemon is always stopped and the temporary directory removed.

Dependencies: PyYAML, jsonschema (with `referencing`), and `cryptography` to sign assertions.

The package, one module per part (each resource's cases in one file, as named scenarios):
- run.py: main, and the development run's order (the daemon's state evolves through it);
- common.py: identifiers, HTTP over the socket, Reply, Issuer, Spec, response validation, Checker,
  Daemon, the operations and paths, `extra` checks;
- static.py: the spec alone, before the run; request schemas and coverage, after it;
- system.py: health, the operator's status, routes no operation serves;
- dossier.py: dossiers (the client set-up included) and assertions;
- documents.py: patient 1's documents;
- access.py: access decisions and professionals (patient 2);
- trace.py: notifications and the trace (patient 4), and trace_unavailable;
- verify_clock.py: verifyTrace and the development clock;
- lifecycle.py: close, reopen, oppose, legal holds, the retention job;
- keys.py: master keys and rekeys (development, production and a new vault);
- production.py: the daemons without --dev;
- other_users.py: calls as `nobody` (as root).

The drills (drills/coffre_drill.py) import the HTTP, assertion and identifier helpers from here.
"""

from .common import (  # noqa: F401  (re-exported for the drills)
    INS1, INS2, Issuer, Reply, UnixHTTPConnection, ins_of, request, wait_for_socket, with_luhn,
)

__all__ = ["INS1", "INS2", "Issuer", "Reply", "UnixHTTPConnection", "ins_of", "request", "wait_for_socket", "with_luhn"]
