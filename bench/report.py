"""Turns one run's results (bench/run.py) into the table of figures, ratios and goals."""

from __future__ import annotations

import re
from pathlib import Path

PEERS = ["age", "restic", "postgres"]


def fmt(value: float) -> str:
    if value >= 100:
        return "{:,.0f}".format(value)
    if value >= 10:
        return "%.1f" % value
    return "%.2f" % value


def count(n: int) -> str:
    return "1M" if n == 1_000_000 else ("%dk" % (n // 1000) if n % 1000 == 0 and n >= 1000 else str(n))


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def render(r: dict) -> str:
    m = r["machine"]
    lines = [
        "Run: `%s`, %s, %.0f s. Machine: %d cores (%s), %.1f GiB, kernel %s, disk %s; load average %s before, %s after." % (
            r["command"], r["date"], r.get("seconds", 0), m["nproc"], m["cpu"], m["memory_gib"], m["kernel"], m["disk"],
            " ".join(m["loadavg"]), " ".join(m.get("loadavg_after", ["?"]))),
        "",
    ]
    reps = r.get("settings", {}).get("small_reps", 1)
    if reps > 1:
        lines += ["32 KiB rows: Coffre and PostgreSQL took turns %d times per concurrency; each figure is the "
                  "run of median throughput." % reps, ""]
    lines += [
        "| Measure | Coffre | limit | age | restic | PostgreSQL | Ratio | Goal | |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |",
    ]
    goals = []

    def row(measure, coffre, limit, peers, ratio, goal, ok):
        cells = [measure, coffre, limit] + [peers.get(p, "") for p in PEERS] + [ratio, goal, "" if ok is None else verdict(ok)]
        lines.append("| " + " | ".join(cells) + " |")
        if ok is not None:
            goals.append(ok)

    large = r.get("large")
    if large:
        mib = large["bytes"] / 2**20
        for op in ("store", "fetch"):
            rate = {name: mib / large[name][op + "_s"] for name in ["coffre", "limit"] + PEERS}
            ratio = rate["coffre"] / rate["limit"]
            row("%d MiB %s, MiB/s" % (mib, op), fmt(rate["coffre"]), fmt(rate["limit"]),
                {p: fmt(rate[p]) for p in PEERS}, "%.2f of limit" % ratio, "≥ 0.8 of limit", ratio >= 0.8)

    for clients, by in (r.get("small") or {}).items():
        for op in ("store", "fetch"):
            def cell(name):
                if name not in by:
                    return "not run"
                x = by[name][op]
                return "%s (%s / %s)" % (fmt(x["ops_per_s"]), fmt(x["p50_ms"]), fmt(x["p99_ms"]))
            best_peer = max((p for p in PEERS if p in by), key=lambda p: by[p][op]["ops_per_s"])
            peer_rate = by[best_peer][op]["ops_per_s"]
            coffre_rate = by["coffre"][op]["ops_per_s"]
            ratio = coffre_rate / peer_rate if peer_rate else float("inf")
            errors = by["coffre"][op].get("errors", 0)
            label = "32 KiB %s, %s client%s, ops/s (p50 / p99 ms)%s" % (
                op, clients, "" if str(clients) == "1" else "s", ", %d errors" % errors if errors else "")
            row(label, cell("coffre"), cell("limit"), {p: cell(p) for p in PEERS},
                "%.2f × best peer (%s); %.2f of limit" % (ratio, best_peer, coffre_rate / by["limit"][op]["ops_per_s"]),
                "> 1 × every peer", ratio > 1 and errors == 0)

    small = r.get("small") or {}
    if small and all("daemon_cpu_ms_per_op" in by["coffre"]["store"] for by in small.values()):
        per = lambda op: " / ".join("%.2f" % by["coffre"][op]["daemon_cpu_ms_per_op"] for by in small.values())
        row("daemon CPU per 32 KiB request at %s clients, ms: store; fetch" % " / ".join(str(c) for c in small),
            "%s; %s" % (per("store"), per("fetch")), "", {}, "", "", None)

    prim = r.get("primitives")
    if prim:
        row("libsodium on this CPU, in memory, MB/s: SHA-256; BLAKE2b; secretstream (64 KiB chunks)",
            "%s; %s; %s" % (fmt(prim["sha256_mb_s"]), fmt(prim["blake2b_mb_s"]), fmt(prim["secretstream_mb_s"])),
            "", {}, "", "", None)

    mem = r.get("memory")
    if mem:
        growth = max(mem["store_growth_kib"], mem["fetch_growth_kib"]) / 1024
        row("daemon peak memory growth, %d MiB document in / out, MiB" % mem["size_mib"],
            "%.1f / %.1f" % (mem["store_growth_kib"] / 1024, mem["fetch_growth_kib"] / 1024), "", {}, "%.1f MiB" % growth,
            "≤ 16 MiB", growth <= 16)

    sc = r.get("scale")
    if sc and len(sc["sizes"]) >= 2:
        sizes = sorted(sc["sizes"], key=int)
        small, big = sc["sizes"][sizes[0]], sc["sizes"][sizes[-1]]
        span = "%s → %s documents" % (count(int(sizes[0])), count(int(sizes[-1])))
        for op, what in (("list", "list a 100-document dossier"), ("fetch", "fetch one document")):
            a, b = small[op]["p50_ms"], big[op]["p50_ms"]
            row("%s, %s, p50 ms" % (what, span), "%s → %s" % (fmt(a), fmt(b)), "", {}, "%.2f ×" % (b / a),
                "≤ 1.5 ×", b / a <= 1.5)
        e = sc["empty_start_s"] * 1e3
        row("start to READY: empty, %s, %s documents, ms" % (count(int(sizes[0])), count(int(sizes[-1]))),
            "%s, %s, %s" % (fmt(e), fmt(small["ready_clean_s"] * 1e3), fmt(big["ready_clean_s"] * 1e3)), "", {},
            "%.2f × empty" % (big["ready_clean_s"] * 1e3 / e), "≤ 2 × empty", big["ready_clean_s"] * 1e3 / e <= 2)
        row("start to READY after kill -9 (reconciliation), %s documents, ms" % count(int(sizes[-1])),
            fmt(big["ready_after_kill_s"] * 1e3), "", {}, "%.2f × empty" % (big["ready_after_kill_s"] * 1e3 / e), "", None)
        for seeded in sc["seeding"]:
            row("seeding: %d documents of 4 KiB, 32 clients, docs/s" % seeded["documents"], fmt(seeded["docs_per_s"]),
                "", {}, "", "", None)

    lines += ["", "Goals met: %d of %d." % (sum(goals), len(goals))]
    return "\n".join(lines)


def write_doc(path: Path, mode: str, text: str) -> None:
    """Replaces the text between `<!-- bench:MODE:begin -->` and `<!-- bench:MODE:end -->`."""
    begin, end = "<!-- bench:%s:begin -->" % mode, "<!-- bench:%s:end -->" % mode
    doc = path.read_text() if path.exists() else ""
    block = "%s\n%s\n%s" % (begin, text, end)
    if begin in doc and end in doc:
        doc = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, doc, flags=re.S)
    else:
        doc += "\n" + block + "\n"
    path.write_text(doc)
