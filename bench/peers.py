"""The peers: what a site would pick instead of Coffre, doing the same work on the same files.

- `age`: encrypt to a file (then fsync, rename, fsync the directory, as Coffre does), decrypt.
  One `age` process per document.
- `restic`: a local repository; backup of the file, restore (large) or `dump` (small). One
  `restic` process per document.
- PostgreSQL 15 + pgcrypto: a private cluster (initdb/pg_ctl as the `postgres` user) on its own
  Unix socket, durable commits; `pgp_sym_encrypt_bytea` into a bytea row and back, through
  `pgload` (C, libpq, one persistent connection per client).

Every function returns plain dicts of figures; nothing here prints tables.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import durable_publish, fsync_file, latency_summary, run_json

SMALL = 32 * 1024


# --------------------------------------------------------------------------------------------
# age


class Age:
    def __init__(self, work: Path):
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.identity = work / "key.txt"
        subprocess.run(["age-keygen", "-o", str(self.identity)], check=True, capture_output=True)
        self.recipient = subprocess.run(["age-keygen", "-y", str(self.identity)], check=True, capture_output=True,
                                        text=True).stdout.strip()

    def encrypt(self, source: Path, target: Path) -> None:
        tmp = target.with_name(target.name + ".tmp")
        subprocess.run(["age", "-e", "-r", self.recipient, "-o", str(tmp), str(source)], check=True)
        durable_publish(tmp, target)

    def decrypt_to_file(self, source: Path, target: Path) -> None:
        tmp = target.with_name(target.name + ".tmp")
        subprocess.run(["age", "-d", "-i", str(self.identity), "-o", str(tmp), str(source)], check=True)
        durable_publish(tmp, target)

    def decrypt(self, source: Path) -> bytes:
        return subprocess.run(["age", "-d", "-i", str(self.identity), str(source)], check=True,
                              capture_output=True).stdout

    def large(self, source: Path) -> dict:
        enc, out = self.work / "large.age", self.work / "large.out"
        t0 = time.monotonic()
        self.encrypt(source, enc)
        store = time.monotonic() - t0
        t0 = time.monotonic()
        self.decrypt_to_file(enc, out)
        fetch = time.monotonic() - t0
        out.unlink()
        enc.unlink()
        return {"store_s": store, "fetch_s": fetch}

    def small(self, source: Path, clients: int, seconds: float) -> dict:
        directory = self.work / ("small-%d" % clients)
        directory.mkdir()
        counter = iter(range(10**9))
        lock = threading.Lock()

        def store(_):
            with lock:
                n = next(counter)
            self.encrypt(source, directory / ("%d.age" % n))

        store_result = closed_loop(clients, seconds, store)
        stored = sorted(directory.glob("*.age"))
        fetch_result = closed_loop(clients, seconds, lambda rng: self.decrypt(rng.choice(stored)))
        # Kept until the run ends, as the limit's: see small_documents in run.py.
        return {"store": store_result, "fetch": fetch_result}


# --------------------------------------------------------------------------------------------
# restic


class Restic:
    def __init__(self, work: Path):
        self.work = work
        self.repo = work / "repo"
        work.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ, RESTIC_REPOSITORY=str(self.repo), RESTIC_PASSWORD="coffre-bench",
                        RESTIC_CACHE_DIR=str(work / "cache"))
        self.run("init")

    def run(self, *args: str, stdin: bytes | None = None) -> bytes:
        return subprocess.run(["restic", "--quiet", *args], env=self.env, input=stdin, check=True,
                              capture_output=True).stdout

    def backup_stdin(self, name: str, data: bytes) -> str:
        out = self.run("backup", "--json", "--stdin", "--stdin-filename", name, stdin=data)
        for line in out.decode().splitlines():
            message = json.loads(line)
            if message.get("message_type") == "summary":
                return message["snapshot_id"]
        raise RuntimeError("restic printed no snapshot id")

    def large(self, source: Path) -> dict:
        target = self.work / "restore"
        t0 = time.monotonic()
        self.run("backup", str(source))
        store = time.monotonic() - t0
        t0 = time.monotonic()
        self.run("restore", "latest", "--target", str(target))
        restored = target / str(source).lstrip("/")
        fsync_file(restored)
        fetch = time.monotonic() - t0
        shutil.rmtree(target)
        return {"store_s": store, "fetch_s": fetch}

    def small(self, clients: int, seconds: float) -> dict:
        snapshots: list[tuple[str, str]] = []
        lock = threading.Lock()
        counter = iter(range(10**9))

        def store(rng):
            with lock:
                name = "doc-%d-%d" % (clients, next(counter))
            # Fresh content per document: restic would deduplicate a repeated file.
            snapshot = self.backup_stdin(name, rng.randbytes(SMALL))
            with lock:
                snapshots.append((snapshot, name))

        store_result = closed_loop(clients, seconds, store)

        def fetch(rng):
            snapshot, name = rng.choice(snapshots)
            self.run("dump", snapshot, "/" + name)

        return {"store": store_result, "fetch": closed_loop(clients, seconds, fetch)}


# --------------------------------------------------------------------------------------------
# PostgreSQL + pgcrypto


class Postgres:
    """A private cluster in `work`, run by the `postgres` system user, reachable only through
    its Unix socket in `work`."""

    def __init__(self, work: Path, pgload: Path):
        self.work = work
        self.pgload = pgload
        self.data = work / "data"
        self.bin = Path(subprocess.run(["pg_config", "--bindir"], check=True, capture_output=True,
                                       text=True).stdout.strip())
        if not (self.bin / "initdb").exists():  # Debian: the server binaries live under /usr/lib/postgresql/N/bin
            self.bin = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
        work.mkdir(parents=True, exist_ok=True)
        shutil.chown(work, "postgres", "postgres")
        os.chmod(work, 0o755)
        self.port = 54000 + os.getpid() % 1000
        self.conninfo = "host=%s port=%d dbname=bench user=postgres" % (work, self.port)

    def as_postgres(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, cwd=self.work)

    def start(self) -> "Postgres":
        self.as_postgres(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-E", "UTF8", "--no-locale")
        options = "-k %s -p %d -c listen_addresses='' -c fsync=on -c synchronous_commit=on -c full_page_writes=on " \
                  "-c max_connections=100 -c shared_buffers=256MB" % (self.work, self.port)
        self.as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-w", "-l",
                         str(self.work / "log"), "start")
        self.psql("postgres", "CREATE DATABASE bench")
        self.psql("bench", "CREATE EXTENSION pgcrypto; CREATE TABLE doc (id bigserial PRIMARY KEY, data bytea NOT NULL)")
        return self

    def psql(self, db: str, sql: str) -> None:
        subprocess.run([str(self.bin / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(self.work), "-p",
                        str(self.port), "-U", "postgres", "-d", db, "-c", sql], check=True, capture_output=True)

    def stop(self) -> None:
        if self.data.exists():
            subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin / "pg_ctl"), "-D", str(self.data), "-m",
                            "fast", "-w", "stop"], capture_output=True)

    def large(self, source: Path) -> dict:
        out = self.work / "large.out"
        result = run_json([str(self.pgload), self.conninfo, "large", str(source), str(out)])
        out.unlink()
        self.psql("bench", "TRUNCATE doc")
        return {"store_s": result["store_s"], "fetch_s": result["fetch_s"]}

    def small(self, clients: int, seconds: float) -> dict:
        result = run_json([str(self.pgload), self.conninfo, "small", str(clients), str(seconds)])
        return {"store": result["store"], "fetch": result["fetch"]}


# --------------------------------------------------------------------------------------------


def closed_loop(clients: int, seconds: float, operation) -> dict:
    """`clients` threads each call `operation(rng)` back to back for `seconds`; the latency of
    every completed call is kept. For the one-process-per-document peers."""
    deadline = time.monotonic() + seconds
    samples: list[list[float]] = [[] for _ in range(clients)]

    def client(index: int) -> None:
        rng = random.Random(index)
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            operation(rng)
            samples[index].append(time.monotonic() - t0)

    start = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return latency_summary([s for per in samples for s in per], time.monotonic() - start)
