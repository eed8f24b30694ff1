"""Schemathesis hooks for drills/api_fuzz.py (loaded through SCHEMATHESIS_HOOKS).

Random INS, ids and tokens alone would be refused at the door (401, 400) and never reach the
routes' deeper code. So before each call, most of the time: the path's INS becomes one of the
patients that have a dossier, a document id becomes one that exists, and the call carries a
freshly signed assertion (the patient, or a professional they authorised). The rest of the time
the generated values go through untouched, so the door is fuzzed too.

The daemon accepts each assertion (each `jti`) once, so every call that carries one of ours
carries a new one: the hook signs afresh for every call, and a case sent again (schemathesis
re-sends a case to confirm a failure) never goes out with an assertion it sent before.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import schemathesis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from coffre_drill import Issuer  # noqa: E402

STATE = Path(os.environ["COFFRE_FUZZ_STATE"])
PATIENTS = os.environ["COFFRE_FUZZ_PATIENTS"].split(",")
DOCUMENTS = os.environ.get("COFFRE_FUZZ_DOCUMENTS", "").split(",")
PROFESSIONAL = os.environ["COFFRE_FUZZ_RPPS"]
ISSUER = Issuer((STATE / "dev-issuer.key").read_text(), name="dev")
RNG = random.Random(int(os.environ.get("COFFRE_FUZZ_SEED", "0")))
SIGNED: set[str] = set()  # Authorization values this hook has put on a call


def sign(sub: str, **kwargs) -> str:
    value = "Coffre-Assertion " + ISSUER.token(sub, **kwargs)
    SIGNED.add(value)
    return value


@schemathesis.hook
def before_call(context, case, kwargs):
    # The spec documents Content-Length as a header of uploads, so schemathesis generates one
    # that does not match the body it sends; the daemon then waits for bytes that never come
    # (the attack drill covers a short body on its own). Let the HTTP library set it.
    if case.headers:
        case.headers = {k: v for k, v in case.headers.items() if k.lower() != "content-length"}
    params = case.path_parameters or {}
    if "ins" in params and RNG.random() < 0.8:
        params["ins"] = RNG.choice(PATIENTS)
    if "id" in params and DOCUMENTS and RNG.random() < 0.6:
        params["id"] = RNG.choice(DOCUMENTS)
    headers = dict(case.headers or {})
    ours = headers.get("Authorization") in SIGNED  # already sent once: never again
    if "ins" in params and (ours or RNG.random() < 0.85):
        ins = str(params["ins"])
        who = RNG.random()
        if who < 0.75 or ins not in PATIENTS:
            headers["Authorization"] = sign(ins if ins.isdigit() and len(ins) == 15 else RNG.choice(PATIENTS))
        else:
            headers["Authorization"] = sign(PROFESSIONAL, role="professional", profession="10")
        case.headers = headers
    elif ours:
        del headers["Authorization"]
        case.headers = headers
