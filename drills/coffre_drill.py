"""What the drills share: a real `coffred --dev` on a private socket, HTTP over that socket,
signed assertions (a fresh one for every request: the daemon accepts each `jti` once), the checks
every drill ends with (every acknowledged document byte-exact, `coffre admin verify` clean,
nothing left behind in the state directory), and the way each drill winds down.

The HTTP, assertion and identifier helpers are scripts/openapi_check.py's, imported from there.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The index's pools: the writer, GRDB's default 5 readers, and the 4 look-up readers (VaultIndex).
INDEX_CONNECTIONS_MAX = 1 + 5 + 4
INDEX_FILES = ("/index.sqlite", "/index.sqlite-wal")
sys.path.insert(0, str(REPO / "scripts"))

# Re-exported for the drills: the INS and RPPS helpers, HTTP over the socket, assertions.
from openapi_check import (  # noqa: E402,F401  (the path above must come first)
    INS1,
    INS2,
    Issuer,
    Reply,
    UnixHTTPConnection,
    ins_of,
    request,
    wait_for_socket,
    with_luhn,
)


# What the drills import from here (the re-exports above included, which pyflakes would
# otherwise report as unused).
__all__ = [
    "INS1", "INS2", "Issuer", "Reply", "UnixHTTPConnection", "ins_of", "request", "wait_for_socket", "with_luhn",
    "REPO", "RPPS", "CLASSES", "sha256", "percentile", "bin_dir_from_argv", "Daemon", "assertion_jti", "AssertionReused",
    "Vault", "index_document_ids", "leftovers", "Figures", "winding_down", "temporary_directory", "remove_tree",
    "random_document",
]

RPPS = "10003123451"
CLASSES = ["BIOLOGIE", "RADIO_SC", "CPT_REND", "ORD_SOIN"]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(p / 100.0 * (len(ordered) - 1)))))
    return ordered[index]


def bin_dir_from_argv(usage: str) -> tuple[Path, list[str]]:
    """The first argument is the directory holding coffred and coffre; the rest is returned."""
    if len(sys.argv) < 2 or not (Path(sys.argv[1]) / "coffred").exists():
        sys.exit("usage: " + usage)
    return Path(sys.argv[1]).resolve(), sys.argv[2:]


class Daemon:
    """`coffred --dev` on a state directory of its own, started, killed and restarted at will.
    The daemon's stderr goes to `log` (appended across restarts)."""

    def __init__(self, bin_dir: Path, state: Path, args: tuple[str, ...] = (), env: dict | None = None,
                 prefix: tuple[str, ...] = ()):
        self.bin_dir = bin_dir
        self.state = state
        self.socket = str(state / "coffred.sock")
        self.args = args
        self.env = env
        self.prefix = prefix
        self.log = state.parent / (state.name + ".log")
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout: float = 60.0):
        env = dict(os.environ)
        env.update(self.env or {})
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [*self.prefix, str(self.bin_dir / "coffred"), "--dev", "--state-dir", str(self.state), *self.args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
        wait_for_socket(self.socket, self.process, timeout)
        self.starts += 1

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self):
        """SIGKILL, and reap it."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=30)

    def stop(self):
        """SIGTERM (the graceful stop); SIGKILL if it takes longer than 120 s, said on stderr,
        since the next start then recovers from an unclean stop (drills that count orphans
        depend on which)."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                print("  coffred did not stop within 120 s of SIGTERM: killed", file=sys.stderr, flush=True)
                self.kill()

    def fd_count(self) -> int:
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def fd_targets(self) -> list[str]:
        """What each open descriptor points at (for a diff when the count grows)."""
        base = "/proc/%d/fd" % self.pid
        targets = []
        for name in os.listdir(base):
            try:
                targets.append(os.readlink(os.path.join(base, name)))
            except OSError:
                pass
        return sorted(targets)

    def descriptors_grown(self, before: list[str], settle: float = 10.0) -> tuple[list[str], int]:
        """Compares the open descriptors with `before` (from `fd_targets`): the descriptors, the
        index's connections apart, that are open beyond their number in `before` (empty when
        there are no more than then), and how many connections to the index are open (the
        larger of its database descriptors and its WAL's less the trace syncer's own). GRDB
        opens a reader connection when every open one is busy and keeps it, so these may grow up
        to INDEX_CONNECTIONS_MAX. A socket a client just closed can take a moment to close on
        the daemon's side: the others are given up to `settle` seconds to come back."""
        others_before = [t for t in before if not t.endswith(INDEX_FILES)]
        deadline = time.monotonic() + settle
        while True:
            now = self.fd_targets()
            others = [t for t in now if not t.endswith(INDEX_FILES)]
            index = max(sum(1 for t in now if t.endswith("/index.sqlite")),
                        sum(1 for t in now if t.endswith("/index.sqlite-wal")) - 1)
            if len(others) <= len(others_before):
                return [], index
            if time.monotonic() >= deadline:
                grown = list(others)
                for target in others_before:
                    if target in grown:
                        grown.remove(target)
                return grown, index
            time.sleep(0.1)

    def rss_kib(self) -> int:
        for line in Path("/proc/%d/status" % self.pid).read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def client(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """The real `coffre` client on this daemon's socket."""
        return subprocess.run([str(self.bin_dir / "coffre"), "--socket", self.socket, *args],
                              capture_output=True, timeout=timeout)

    def verify(self, sample: int | None = None) -> dict:
        """`coffre --json admin verify [--sample N]`, parsed (exit status kept in `_exit`)."""
        result = self.client("--json", "admin", "verify", *(("--sample", str(sample)) if sample is not None else ()),
                             timeout=600)
        try:
            report = json.loads(result.stdout)
        except ValueError:
            report = {"ok": False, "problems": ["coffre admin verify printed no JSON: %r %r"
                                                 % (result.stdout[-300:], result.stderr[-300:])]}
        report["_exit"] = result.returncode
        return report


def assertion_jti(authorization: str) -> str | None:
    """The `jti` of a `Coffre-Assertion` header value, or None if it does not parse."""
    try:
        payload = authorization.split(" ", 1)[1].split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return claims.get("jti") if isinstance(claims, dict) else None
    except (IndexError, ValueError, TypeError):
        return None


class AssertionReused(AssertionError):
    """A drill was about to send an assertion it had sent before: a bug in the drill, since the
    daemon refuses the second use (`401 assertion_replayed`)."""


class Vault:
    """Person-level calls over raw HTTP, each on a fresh connection, with assertions signed by the
    development issuer found in the state directory.

    Every request must carry an assertion of its own: `auth()` signs a new one (new `jti`) each
    time it is called, so call it for each request, never keep its answer for a second one.
    `send` checks this for every Vault of the process (the drill, not the daemon, is then at
    fault) unless told `replay=True`, as the replay attack is."""

    _sent_lock = threading.Lock()
    _sent_jtis: set[str] = set()

    def __init__(self, daemon: Daemon):
        self.daemon = daemon
        self.issuer = Issuer((daemon.state / "dev-issuer.key").read_text())

    def auth(self, sub: str, **kwargs) -> dict:
        """An Authorization header with a newly signed assertion (for one request)."""
        return {"Authorization": "Coffre-Assertion " + self.issuer.token(sub, **kwargs)}

    def send(self, method: str, path: str, replay: bool = False, **kwargs) -> Reply:
        jti = assertion_jti(str((kwargs.get("headers") or {}).get("Authorization", "")))
        if jti is not None and not replay:
            with Vault._sent_lock:
                if jti in Vault._sent_jtis:
                    raise AssertionReused("the drill sent assertion %s twice (%s %s); call auth() for every request"
                                          % (jti, method, path))
                Vault._sent_jtis.add(jti)
        return request(self.daemon.socket, method, path, **kwargs)

    def create_dossier(self, ins: str) -> Reply:
        return self.send("POST", "/v1/patients/%s/dossier" % ins, headers=self.auth(ins))

    def close_dossier(self, ins: str, delete: bool = False) -> Reply:
        body = json.dumps({"delete": True} if delete else {}).encode()
        return self.send("POST", "/v1/patients/%s/dossier/close" % ins, headers=self.auth(ins) | {"Content-Type": "application/json"},
                         body=body)

    def show_dossier(self, ins: str) -> Reply:
        return self.send("GET", "/v1/patients/%s/dossier" % ins, headers=self.auth(ins))

    def store(self, ins: str, data: bytes, document_class: str = "BIOLOGIE", title: str | None = None,
              media_type: str = "application/octet-stream") -> Reply:
        headers = self.auth(ins)
        headers["Coffre-Class"] = document_class
        headers["Content-Type"] = media_type
        if title:
            headers["Coffre-Title"] = urllib.parse.quote(title)
        return self.send("POST", "/v1/patients/%s/documents" % ins, headers=headers, body=data)

    def fetch(self, ins: str, document_id: str) -> Reply:
        return self.send("GET", "/v1/patients/%s/documents/%s/content" % (ins, document_id), headers=self.auth(ins))

    def list(self, ins: str) -> Reply:
        return self.send("GET", "/v1/patients/%s/documents" % ins, headers=self.auth(ins))

    def delete(self, ins: str, document_id: str) -> Reply:
        return self.send("DELETE", "/v1/patients/%s/documents/%s" % (ins, document_id), headers=self.auth(ins))

    def health(self) -> Reply:
        return self.send("GET", "/v1/health")


def index_document_ids(state: Path) -> set[str]:
    """Every document id in the index, read from SQLite directly (read-only)."""
    db = sqlite3.connect("file:%s?mode=ro" % (state / "index.sqlite"), uri=True, timeout=30)
    try:
        return {row[0] for row in db.execute("SELECT id FROM document")}
    finally:
        db.close()


def leftovers(state: Path) -> list[str]:
    """Temporary blobs, and committed blobs that no index row names. Call it while no store is
    in flight (after a restart and before new stores, or at the end)."""
    found = []
    blobs = state / "blobs"
    tmp = blobs / "tmp"
    if tmp.is_dir():
        found += ["temporary file blobs/tmp/%s" % name for name in sorted(os.listdir(tmp))]
    known = index_document_ids(state)
    for shard in sorted(os.listdir(blobs)) if blobs.is_dir() else []:
        if shard == "tmp" or not (blobs / shard).is_dir():
            continue
        for name in sorted(os.listdir(blobs / shard)):
            if name not in known:
                found.append("orphan blob blobs/%s/%s" % (shard, name))
    for name in os.listdir(state):
        if ".coffre-partial" in name or name.endswith(".tmp"):
            found.append("stray file %s" % name)
    return found


class Figures:
    """Counts a drill reports at the end, and the failures it found (each with enough detail to
    reproduce). `ok()` is False once anything failed."""

    def __init__(self, name: str):
        self.name = name
        self.values: dict[str, object] = {}
        self.failures: list[str] = []
        self.started = time.monotonic()

    def __setitem__(self, key, value):
        self.values[key] = value

    def __getitem__(self, key):
        return self.values.get(key, 0)

    def add(self, key: str, amount: int = 1):
        self.values[key] = self.values.get(key, 0) + amount

    def fail(self, message: str):
        self.failures.append(message)
        print("  FAIL: " + message, flush=True)

    def ok(self) -> bool:
        return not self.failures

    def report(self) -> int:
        self.values["seconds"] = round(time.monotonic() - self.started, 1)
        print("%s drill figures:" % self.name)
        for key, value in self.values.items():
            print("  %-34s %s" % (key, value))
        print("  %-34s %d" % ("failures", len(self.failures)))
        passed = 0 if self.failures else 1
        print("%s: %d passed, %d failed" % (self.name, passed, 1 - passed))
        return 0 if passed else 1


@contextlib.contextmanager
def winding_down(figures: Figures, tmp: Path, *daemons: Daemon, graceful: bool = False, kept: str = "state"):
    """The end every drill shares. Runs the drill's body; an exception out of it is printed with
    its traceback and counted as a failure (so that the figures are still printed). Then stops
    the daemons (SIGTERM with `graceful`, else SIGKILL; the body may add daemons it starts later
    to the list this yields), and removes `tmp` if every check passed, or else prints the last
    lines of each daemon's log and keeps `tmp` for inspection, saying where.

        with winding_down(figures, tmp, daemon) as daemons:
            ...
        return figures.report()
    """
    stopping = list(daemons)
    try:
        yield stopping
    except Exception as error:  # noqa: BLE001 - reported as the drill's failure, figures still printed
        traceback.print_exc()
        figures.fail("the drill stopped on an unexpected error: %r" % error)
    finally:
        for daemon in stopping:
            if graceful:
                daemon.stop()
            else:
                daemon.kill()
        if figures.ok():
            remove_tree(tmp)
        else:
            for daemon in stopping:
                print("--- last lines of the daemon's log (%s):\n%s" % (daemon.log, daemon.tail()))
            print("%s kept for inspection in %s" % (kept, tmp))


def temporary_directory(prefix: str) -> Path:
    """A short path (Unix socket paths are limited to 107 bytes)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def remove_tree(path: Path):
    shutil.rmtree(path, ignore_errors=True)


def random_document(rng: random.Random, largest: int) -> bytes:
    """A document of random size (weighted toward small ones, sometimes several 64 KiB records)."""
    size = rng.choice([0, 1, 17, 1000, 4096, 65535, 65536, 65537, 200_000, rng.randrange(0, largest + 1)])
    return rng.randbytes(min(size, largest))
