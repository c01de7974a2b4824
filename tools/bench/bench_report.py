#!/usr/bin/python3
"""tools/bench/bench_report.py: the bookkeeping half of `make bench` (tools/bench/run-bench
does the running). It parses the raw output of each measured run (fio and iperf3 JSON,
sluice-bench's --json line, rdkafka_performance's last table row, redis-benchmark's CSV)
into a few named figures and appends them as one JSON line to a results file; it prints
medians for the script's own use (the e2e rate); it gathers the machine's facts (CPU,
cores, memory, kernel, load, the data directory's disk and file system); and at the end
it prints the one table of the run, each figure's median beside the limit that bounds it
(fio, iperf3), the peer (Redis Streams) and the goal of issue 5, and writes the same,
with every run's raw figures, as JSON. Standard library only (Debian's /usr/bin/python3).

  bench_report.py record RESULTS KIND NAME RUN FILE [KEY=VALUE ...]
  bench_report.py median RESULTS NAME FIELD
  bench_report.py facts DATA_DIR OUT_JSON [SOURCE_DIR]
  bench_report.py report RESULTS FACTS_JSON OUT_JSON [KEY=VALUE ...]
"""

import json
import os
import platform
import statistics
import subprocess
import sys
import time

# Goals of issue 5 (on this 2-core machine, client and broker together).
GOAL_100B_ACKS1_MSGS = 4_000_000
GOAL_100B_ACKSALL_MSGS = 3_000_000
GOAL_ACKSALL_FIO_SHARE = 0.90  # 1 KiB and larger, acks=-1, of fio's O_DIRECT write
GOAL_TAIL_IPERF_SHARE = 0.60  # consume from the tail cache, of iperf3 loopback
GOAL_E2E_P99_US = 2000.0  # end-to-end p99 at 50 % of the maximum rate

SIZES = ((100, "100 B"), (1024, "1 KiB"), (16384, "16 KiB"))
ACKS = ((1, "1"), (-1, "-1"))


class ParseError(Exception):
    pass


# ---- parsing one run's raw output ----


def parse_fio(text):
    o = json.loads(text[text.index("{"):])
    job = o["jobs"][0]
    if job.get("error"):
        raise ParseError("fio job error %s" % job["error"])
    w = job["write"]
    figures = {
        "mb_per_sec": w["bw_bytes"] / 1e6,
        "iops": w["iops"],
        "seconds": job.get("job_runtime", 0) / 1e3,
        "write_lat_p99_us": w.get("clat_ns", {}).get("percentile", {}).get("99.000000", 0) / 1e3,
    }
    sync = job.get("sync", {}).get("lat_ns", {})
    if sync.get("N"):
        figures["fdatasync_mean_us"] = sync["mean"] / 1e3
        figures["fdatasyncs"] = sync["N"]
    return figures


def parse_iperf3(text):
    o = json.loads(text)
    if "error" in o:
        raise ParseError("iperf3: %s" % o["error"])
    end = o["end"]
    return {
        "mb_per_sec": end["sum_received"]["bits_per_second"] / 8e6,
        "sent_mb_per_sec": end["sum_sent"]["bits_per_second"] / 8e6,
        "seconds": end["sum_received"]["seconds"],
        "cpu_sender_pct": end.get("cpu_utilization_percent", {}).get("host_total", 0),
        "cpu_receiver_pct": end.get("cpu_utilization_percent", {}).get("remote_total", 0),
    }


def parse_sluice_bench(text):
    lines = [ln for ln in text.splitlines() if ln.startswith("{")]
    if not lines:
        raise ParseError("no JSON line from sluice-bench")
    o = json.loads(lines[-1])
    keep = ("msgs_per_sec", "mb_per_sec", "msgs", "bytes", "seconds", "errors", "requests",
            "samples", "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "partitions",
            "brokers", "consumed")
    return {k: o[k] for k in keep if k in o}


def parse_rdkafka(text):
    """The last row of rdkafka_performance -u's table: | elapsed | msgs | ... |."""
    header = None
    row = None
    for ln in text.splitlines():
        if not ln.startswith("|"):
            continue
        cells = [c.strip() for c in ln.strip().strip("|").split("|")]
        if "elapsed" in cells:
            header = cells
        elif header and len(cells) == len(header):
            row = cells
    if not header or not row:
        raise ParseError("no table row from rdkafka_performance")
    r = dict(zip(header, row))
    return {
        "msgs_per_sec": float(r["dr_m/s"]),
        "mb_per_sec": float(r["dr_MB/s"]),  # payload bytes
        "delivered": int(r["dr"]),
        "seconds": int(r["elapsed"]) / 1e3,
        "errors": int(r["dr_err"]),  # failed deliveries
        "backpressure": int(r["tx_err"]),  # produce() calls refused: local queue full
    }


def parse_redis(text, value_bytes=100):
    """redis-benchmark --csv: a header line, then "COMMAND","rps",... ."""
    for ln in text.splitlines():
        cells = [c.strip('"') for c in ln.strip().split('","')]
        if len(cells) >= 2 and cells[1] != "rps":
            try:
                ops = float(cells[1])
            except ValueError:
                continue
            figures = {"msgs_per_sec": ops, "mb_per_sec": ops * value_bytes / 1e6}
            if len(cells) >= 5:
                figures["p50_ms"] = float(cells[4])
            if len(cells) >= 7:
                figures["p99_ms"] = float(cells[6])
            return figures
    raise ParseError("no CSV result from redis-benchmark")


PARSERS = {
    "fio": parse_fio,
    "iperf3": parse_iperf3,
    "sluice-bench": parse_sluice_bench,
    "rdkafka": parse_rdkafka,
    "redis": parse_redis,
}


def summary(figures):
    parts = []
    for k in ("msgs_per_sec", "mb_per_sec", "p50_us", "p99_us", "p999_us", "errors",
              "backpressure"):
        if k in figures:
            v = figures[k]
            parts.append("%s %s" % (k, ("%.0f" % v) if k == "msgs_per_sec" else ("%.1f" % v)
                                    if isinstance(v, float) else v))
    return ", ".join(parts)


def cmd_record(args):
    results, kind, name, run, path = args[:5]
    extra = dict(a.split("=", 1) for a in args[5:])
    with open(path, errors="replace") as f:
        text = f.read()
    try:
        figures = PARSERS[kind](text)
    except (ParseError, ValueError, KeyError, IndexError) as e:
        print("    %s run %s: no figures (%s: %s)" % (name, run, type(e).__name__, e))
        return 1
    rec = {"kind": kind, "name": name, "run": int(run), "figures": figures, "extra": extra,
           "time": time.time(), "loadavg": " ".join(read("/proc/loadavg").split()[:3])}
    with open(results, "a") as f:
        f.write(json.dumps(rec) + "\n")
    print("    %s run %s: %s" % (name, run, summary(figures)))
    return 0


# ---- medians ----


def load_results(path):
    runs = {}
    if os.path.exists(path):
        with open(path) as f:
            for ln in f:
                ln = ln.strip()
                if ln:
                    rec = json.loads(ln)
                    runs.setdefault(rec["name"], []).append(rec)
    return runs


def medians(runs):
    out = {}
    for name, recs in runs.items():
        fields = {}
        for r in recs:
            for k, v in r["figures"].items():
                if isinstance(v, (int, float)):
                    fields.setdefault(k, []).append(v)
        out[name] = {k: statistics.median(v) for k, v in fields.items()}
        out[name]["runs"] = len(recs)
        out[name]["extra"] = recs[-1].get("extra", {})
    return out


def cmd_median(args):
    results, name, field = args
    m = medians(load_results(results)).get(name, {})
    if field in m:
        print("%.3f" % m[field])
        return 0
    return 1


# ---- machine facts ----


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (subprocess.SubprocessError, OSError):
        return ""


def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def cmd_facts(args):
    data_dir, out = args[:2]
    src = args[2] if len(args) > 2 else ""
    cpu = ""
    for ln in read("/proc/cpuinfo").splitlines():
        if ln.startswith("model name"):
            cpu = ln.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for ln in read("/proc/meminfo").splitlines():
        if ln.startswith("MemTotal:"):
            mem_kib = int(ln.split()[1])
    mount = sh("findmnt -n -o SOURCE,FSTYPE,OPTIONS -T '%s'" % data_dir).split()
    source = mount[0] if mount else ""
    disk = os.path.basename(source)
    # A partition's queue settings are its parent disk's.
    parent = sh("lsblk -n -o PKNAME '%s' 2>/dev/null" % source) if source else ""
    qdisk = parent.splitlines()[0] if parent else disk
    sched = read("/sys/block/%s/queue/scheduler" % qdisk)
    if "[" in sched:  # "none [mq-deadline] kyber": the bracketed one is in use
        sched = sched.split("[", 1)[1].split("]", 1)[0]
    facts = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": platform.node(),
        "cpu_model": cpu,
        "cpus": os.cpu_count(),
        "hypervisor": sh("lscpu | sed -n 's/^Hypervisor vendor: *//p'"),
        "memory_gib": round(mem_kib / 1048576, 1),
        "kernel": platform.release(),
        "os": sh(". /etc/os-release 2>/dev/null && echo \"$PRETTY_NAME\""),
        "data_dir": data_dir,
        "data_device": source,
        "data_fs": mount[1] if len(mount) > 1 else "",
        "data_mount_options": mount[2] if len(mount) > 2 else "",
        "data_disk_scheduler": sched,
        "data_disk_rotational": read("/sys/block/%s/queue/rotational" % qdisk),
        "data_disk_max_sectors_kb": read("/sys/block/%s/queue/max_sectors_kb" % qdisk),
        "thp": read("/sys/kernel/mm/transparent_hugepage/enabled"),
        "nr_hugepages": read("/proc/sys/vm/nr_hugepages"),
        "loadavg_start": read("/proc/loadavg"),
        "git_head": sh("git -C '%s' rev-parse --short HEAD" % src) if src else "",
        # Uncommitted changes the measured binaries were built with (read-only diff).
        "git_modified": sh("git -C '%s' diff --name-only HEAD" % src).split() if src else [],
        "versions": {
            "gcc": sh("gcc --version | head -1"),
            "fio": sh("fio --version"),
            "iperf3": sh("iperf3 --version | head -1"),
            "redis": sh("redis-server --version"),
            "librdkafka": sh("pkg-config --modversion rdkafka"),
        },
    }
    with open(out, "w") as f:
        json.dump(facts, f, indent=1)
    return 0


# ---- the table ----


def fmt(v, unit):
    if v is None:
        return "-"
    if unit in ("msgs/s", "ops/s"):
        return "{:,.0f}".format(v)
    if unit == "us":
        return "{:,.0f}".format(v) if v >= 100 else "%.1f" % v
    return "{:,.1f}".format(v)


def pct(a, b):
    return "%.0f %%" % (100.0 * a / b) if a is not None and b else None


def times(a, b):
    return "%.1fx" % (a / b) if a is not None and b else None


def goal_text(ok, what):
    if ok is None:
        return "%s: no figure" % what
    return "%s: %s" % (what, "met" if ok else "not met")


def build_rows(m):
    """One row per figure: name, value, unit, vs limit, vs peer, goal."""

    def get(name, field):
        return m.get(name, {}).get(field)

    fio = get("fio_write_1m", "mb_per_sec")
    fio_sync = get("fio_fdatasync_256k", "mb_per_sec")
    fio_sync4 = get("fio_fdatasync_4m", "mb_per_sec")
    fio_sync4_net = get("fio_fdatasync_4m_net", "mb_per_sec")
    ip_default = get("iperf3_default", "mb_per_sec")
    ip_best_name, ip_best = None, None
    for n in ("iperf3_default", "iperf3_1m_2streams"):
        v = get(n, "mb_per_sec")
        if v is not None and (ip_best is None or v > ip_best):
            ip_best_name, ip_best = n, v
    ip_label = {"iperf3_default": "iperf3 default", "iperf3_1m_2streams": "iperf3 1M x2"}.get(
        ip_best_name, "iperf3")
    redis = {"1": get("redis_everysec", "msgs_per_sec"), "-1": get("redis_always", "msgs_per_sec")}
    peer_label = {"1": "Redis everysec", "-1": "Redis always"}

    rows = []

    def row(fig, value, unit, limit=None, peer=None, goal=None, name=None):
        rows.append({"figure": fig, "value": value, "unit": unit, "vs_limit": limit,
                     "vs_peer": peer, "goal": goal, "name": name,
                     "runs": m.get(name, {}).get("runs") if name else None})

    row("fio seq write, O_DIRECT, 1 MiB, io_uring", fio, "MB/s", "(disk limit)",
        name="fio_write_1m")
    row("fio seq write, 256 KiB + fdatasync each", fio_sync, "MB/s", "(fsync limit)",
        name="fio_fdatasync_256k")
    row("fio seq write, 4 MiB + fdatasync each, a writer per shard", fio_sync4, "MB/s",
        "(durable-append limit)",
        name="fio_fdatasync_4m")
    row("the same beside ~2 GB/s of iperf3 loopback traffic", fio_sync4_net, "MB/s",
        "(durable limit under network load)", name="fio_fdatasync_4m_net")
    row("iperf3 loopback, 1 stream, 128 KiB writes", ip_default, "MB/s", "(network limit)",
        name="iperf3_default")
    row("iperf3 loopback, 2 streams, 1 MiB writes", get("iperf3_1m_2streams", "mb_per_sec"),
        "MB/s", "(network limit)", name="iperf3_1m_2streams")
    for mode, label in (("everysec", "Redis Streams XADD 100 B, -P 64, appendfsync everysec"),
                        ("always", "Redis Streams XADD 100 B, -P 64, appendfsync always")):
        n = "redis_" + mode
        row(label, get(n, "msgs_per_sec"), "ops/s", peer="(peer)", name=n)
        row(label, get(n, "mb_per_sec"), "MB/s", peer="(peer)", name=n)

    for size, slabel in SIZES:
        for acks, alabel in ACKS:
            n = "produce_%d_acks%d" % (size, acks)
            msgs, mb = get(n, "msgs_per_sec"), get(n, "mb_per_sec")
            goal = None
            if size == 100 and acks == 1:
                goal = goal_text(None if msgs is None else msgs >= GOAL_100B_ACKS1_MSGS,
                                 ">= 4 M msgs/s")
            elif size == 100:
                goal = goal_text(None if msgs is None else msgs >= GOAL_100B_ACKSALL_MSGS,
                                 ">= 3 M msgs/s")
            fig = "sluice-bench produce %s acks=%s" % (slabel, alabel)
            peer = None  # the peer ran 100 B records only
            if size == 100 and times(msgs, redis[alabel]):
                peer = "%s %s" % (times(msgs, redis[alabel]), peer_label[alabel])
            row(fig, msgs, "msgs/s", peer=peer, goal=goal, name=n)
            if acks == 1:
                limit = pct(mb, ip_best) and "%s of %s" % (pct(mb, ip_best), ip_label)
                goal = None
            else:
                limit = pct(mb, fio) and "%s of fio, %s / %s of the durable limit alone / loaded" % (
                    pct(mb, fio), pct(mb, fio_sync4) or "?", pct(mb, fio_sync4_net) or "?")
                goal = None
                if size >= 1024:
                    goal = goal_text(None if mb is None or not fio else
                                     mb >= GOAL_ACKSALL_FIO_SHARE * fio, ">= 90 % of fio")
            row(fig, mb, "MB/s", limit, goal=goal, name=n)
            row(fig + " p99", get(n, "p99_us"), "us", name=n)

    for n, label in (("consume_tail", "sluice-bench consume 1 KiB, tail cache"),
                     ("consume_disk", "sluice-bench consume 1 KiB, from disk after restart")):
        msgs, mb = get(n, "msgs_per_sec"), get(n, "mb_per_sec")
        row(label, msgs, "msgs/s", name=n)
        goal = None
        if n == "consume_tail":
            goal = goal_text(None if mb is None or not ip_best else
                             mb >= GOAL_TAIL_IPERF_SHARE * ip_best, ">= 60 % of iperf3")
        row(label, mb, "MB/s", pct(mb, ip_best) and "%s of %s" % (pct(mb, ip_best), ip_label),
            goal=goal, name=n)

    for acks in ("1", "-1"):
        n = "e2e_acks" + acks
        rate = m.get(n, {}).get("extra", {}).get("rate")
        label = "sluice-bench e2e 1 KiB acks=%s at %s msgs/s" % (
            acks, "{:,}".format(int(float(rate))) if rate else "?")
        disk_p99 = get("fio_e2e_latency", "write_lat_p99_us") if acks == "1" else None
        if disk_p99:
            row("fio 512 KiB writes at that rate, a writer per shard, beside its network "
                "traffic: write p99", disk_p99, "us", "(disk latency under that load)",
                name="fio_e2e_latency")
        for field, pname in (("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9")):
            goal = None
            limit = None
            v = get(n, field)
            if field == "p99_us":
                goal = goal_text(None if v is None else v <= GOAL_E2E_P99_US, "<= 2 ms")
                if v is not None and disk_p99:
                    limit = "%.1fx the disk's write p99 (a record waits for 1-2 writes)" % (
                        v / disk_p99)
            row("%s %s" % (label, pname), v, "us", limit, goal=goal, name=n)

    for acks in ("1", "-1"):
        n = "rdkafka_acks" + acks
        msgs, mb = get(n, "msgs_per_sec"), get(n, "mb_per_sec")
        fig = "rdkafka_performance -P 100 B acks=%s" % acks
        row(fig, msgs, "msgs/s",
            peer=times(msgs, redis[acks]) and "%s %s" % (times(msgs, redis[acks]),
                                                         peer_label[acks]), name=n)
        if acks == "1":
            limit = pct(mb, ip_best) and "%s of %s" % (pct(mb, ip_best), ip_label)
        else:
            limit = pct(mb, fio) and "%s of fio" % pct(mb, fio)
        row(fig + " (payload)", mb, "MB/s", limit, name=n)
    return rows


def cmd_report(args):
    results, facts_path, out = args[:3]
    meta = dict(a.split("=", 1) for a in args[3:])
    runs = load_results(results)
    m = medians(runs)
    facts = {}
    if os.path.exists(facts_path):
        with open(facts_path) as f:
            facts = json.load(f)
    facts["loadavg_end"] = read("/proc/loadavg")
    rows = build_rows(m)

    doctor = []
    if meta.get("doctor") and os.path.exists(meta["doctor"]):
        with open(meta["doctor"], errors="replace") as f:
            doctor = [ln.rstrip("\n") for ln in f if ln.strip()]

    print()
    print("sluice make bench: %s, %s CPUs, %s GiB, Linux %s; data on %s (%s, %s)" % (
        facts.get("cpu_model"), facts.get("cpus"), facts.get("memory_gib"), facts.get("kernel"),
        facts.get("data_device"), facts.get("data_fs"), facts.get("data_disk_scheduler")))
    print("load average at start: %s; at end: %s" % (facts.get("loadavg_start"),
                                                       facts.get("loadavg_end")))
    if facts.get("git_head"):
        print("source: %s, %d files modified since" % (facts["git_head"],
                                                      len(facts.get("git_modified", []))))
    for k in ("build", "runs", "produce_opts", "e2e_opts", "elapsed_s", "status"):
        if k in meta:
            print("%s: %s" % (k, meta[k]))
    print("values are medians of the runs column; produce/consume MB/s count Kafka batch bytes")
    print()
    head = ("figure", "value", "unit", "runs", "vs limit", "vs peer", "goal (issue 5)")
    table = [head]
    for r in rows:
        table.append((r["figure"], fmt(r["value"], r["unit"]), r["unit"],
                      str(r["runs"] or "-"), r["vs_limit"] or "", r["vs_peer"] or "",
                      r["goal"] or ""))
    widths = [max(len(t[i]) for t in table) for i in range(len(head))]
    for i, t in enumerate(table):
        cells = []
        for j, c in enumerate(t):
            cells.append(c.rjust(widths[j]) if j in (1, 3) and i else c.ljust(widths[j]))
        print("| " + " | ".join(cells) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")

    doc = {
        "facts": facts,
        "meta": meta,
        "doctor": doctor,
        "goals": {
            "produce_100B_acks1_msgs_per_sec": GOAL_100B_ACKS1_MSGS,
            "produce_100B_acksall_msgs_per_sec": GOAL_100B_ACKSALL_MSGS,
            "produce_acksall_1KiB_up_share_of_fio": GOAL_ACKSALL_FIO_SHARE,
            "consume_tail_share_of_iperf3": GOAL_TAIL_IPERF_SHARE,
            "e2e_p99_us": GOAL_E2E_P99_US,
        },
        "table": rows,
        "medians": m,
        "runs": runs,
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
    print()
    print("JSON: %s" % out)
    return 0


def main(argv):
    cmds = {"record": (cmd_record, 5), "median": (cmd_median, 3), "facts": (cmd_facts, 2),
            "report": (cmd_report, 3)}
    if len(argv) < 2 or argv[1] not in cmds or len(argv) - 2 < cmds[argv[1]][1]:
        sys.stderr.write(__doc__)
        return 2
    fn, _ = cmds[argv[1]]
    return fn(argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
