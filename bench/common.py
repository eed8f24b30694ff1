"""Small helpers shared by the benchmark scripts: durable file moves, latency summaries, running
a program that prints JSON, and a description of the machine."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def durable_publish(tmp: Path, final: Path) -> None:
    """What Coffre does with a new blob: fsync the file, rename it into place, fsync the directory."""
    fsync_file(tmp)
    os.replace(tmp, final)
    fsync_directory(final.parent)


def latency_summary(samples: list[float], seconds: float, errors: int = 0) -> dict:
    """The same fields the C load generators print (bench/stats.h)."""
    ordered = sorted(samples)

    def quantile(q: float) -> float:
        return ordered[int(q * (len(ordered) - 1) + 0.5)] * 1e3 if ordered else 0.0

    return {"ops": len(ordered), "errors": errors, "seconds": round(seconds, 3),
            "ops_per_s": round(len(ordered) / seconds, 1) if seconds > 0 else 0.0,
            "p50_ms": round(quantile(0.50), 3), "p99_ms": round(quantile(0.99), 3)}


def run_json(command: list[str], **kwargs) -> dict:
    """Runs a program that prints one JSON object on stdout; fails loudly otherwise."""
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (command[0], result.returncode, result.stderr[-2000:]))
    if result.stderr.strip():
        print("  [%s] %s" % (Path(command[0]).name, result.stderr.strip()[-600:]), flush=True)
    return json.loads(result.stdout)


def machine(directory: Path) -> dict:
    """nproc, memory, kernel, CPU model, the disk under `directory`, the load when measured."""
    with open("/proc/meminfo") as f:
        mem_kib = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    df = subprocess.run(["df", "-hT", str(directory)], capture_output=True, text=True).stdout.splitlines()[-1].split()
    return {"nproc": os.cpu_count(), "memory_gib": round(mem_kib / 2**20, 1), "cpu": cpu,
            "kernel": platform.release(), "disk": "%s (%s, %s)" % (df[0], df[1], df[2]),
            "loadavg": open("/proc/loadavg").read().split()[:3]}
