#!/usr/bin/python3
"""tools/bench/topic_scaling_report.py: the table maker of tools/bench/topic-scaling.

It reads the per-run records the script appended to runs.jsonl (one JSON object a line:
the point, the series, the run's sluice-bench --json object or null, sluiced's VmRSS and
VmHWM after the run, the topic creation time, the load average), takes the median of each
figure over the good runs of every point (a run is good when sluice-bench exited 0 with
no errors and saw every partition it asked for), and writes topic-scaling.csv (one row
per series and point), topic-scaling.json (settings, machine, every run, the points),
topic-scaling.dat (the gnuplot input: one data block per series, x = partitions) and
topic-scaling.gpvars (gnuplot variable assignments: the 1-topic baseline, which series
exist); it prints the summary table with each point's ratio to the 1-topic throughput
and issue 5's goals (10,000 topics >= 90 %, 100,000 partitions >= 80 %). It measures
nothing itself.

usage: topic_scaling_report.py RUNS_JSONL OUT_DIR [KEY=VALUE ...]
(the KEY=VALUE pairs go into the JSON's "settings").
"""

import json
import os
import platform
import statistics
import sys

SERIES_TITLES = {
    "full": "full batches (sluice-bench's round-robin, --batch-bytes for every point)",
    "linger": "lingered batches (records a partition gets in one linger at the model rate)",
    "bigreq": "reference: 1 topic, 1 MiB batches (requests as large as the full series "
              "sends to 100 and more partitions)",
}

CSV_COLUMNS = [
    "series", "topics", "partitions_per_topic", "partitions", "records_per_batch",
    "batch_bytes", "runs_ok", "runs", "msgs_per_sec", "mb_per_sec", "p50_us", "p99_us",
    "p999_us", "rss_mib", "hwm_mib", "create_s", "request_kib", "batches_per_request",
    "broker_records_per_batch", "busiest_shard_share", "ratio_to_1_topic",
    "ratio_to_1_topic_same_request", "goal", "meets_goal", "load1",
]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def goal_for(topics, partitions):
    """Issue 5's goal as a fraction of the 1-topic throughput, or None."""
    if partitions >= 100000:
        return 0.80
    if topics == 10000 and partitions == 10000:
        return 0.90
    return None


def run_ok(run):
    b = run.get("bench")
    return (
        run.get("rc") == 0
        and isinstance(b, dict)
        and b.get("errors") == 0
        and b.get("partitions") == run["topics"] * run["partitions_per_topic"]
        and b.get("msgs", 0) > 0
    )


def machine_facts():
    facts = {"kernel": platform.release(), "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    facts["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            facts["mem_total"] = f.readline().split(":", 1)[1].strip()
    except OSError:
        pass
    return facts


def summarize(runs):
    """Groups the runs by (series, topics, partitions_per_topic) in first-seen order and
    returns one dict of medians per group."""
    groups = {}
    for run in runs:
        key = (run["series"], run["topics"], run["partitions_per_topic"])
        groups.setdefault(key, []).append(run)
    points = []
    for (series, topics, ppt), group in groups.items():
        good = [r for r in group if run_ok(r)]
        benches = [r["bench"] for r in good]
        p = {
            "series": series,
            "topics": topics,
            "partitions_per_topic": ppt,
            "partitions": topics * ppt,
            "records_per_batch": group[0].get("records_per_batch"),
            "batch_bytes": group[0].get("batch_bytes"),
            "runs_ok": len(good),
            "runs": len(group),
            "msgs_per_sec": median([b["msgs_per_sec"] for b in benches]),
            "mb_per_sec": median([b["mb_per_sec"] for b in benches]),
            "p50_us": median([b["p50_us"] for b in benches]),
            "p99_us": median([b["p99_us"] for b in benches]),
            "p999_us": median([b["p999_us"] for b in benches]),
            "rss_mib": median([r.get("rss_kib") and r["rss_kib"] / 1024 for r in good]),
            "hwm_mib": median([r.get("hwm_kib") and r["hwm_kib"] / 1024 for r in good]),
            "create_s": median([r.get("create_s") for r in group if r.get("create_rc") == 0]),
            "request_kib": median(
                [b["bytes"] / b["requests"] / 1024 for b in benches if b.get("requests")]),
            "batches_per_request": median(
                [b["msgs"] / r["records_per_batch"] / r["bench"]["requests"]
                 for r, b in zip(good, benches)
                 if b.get("requests") and r.get("records_per_batch")]),
            # From sluiced's exit-time stats: records per batch the shards appended
            # (the creation's 1-record batch counted too) and the busiest shard's share.
            "broker_records_per_batch": median(
                [(b["msgs"] + 1) / sum(r["shard_batches"]) for r, b in zip(good, benches)
                 if r.get("shard_batches") and sum(r["shard_batches"]) > 0]),
            "busiest_shard_share": median(
                [max(r["shard_batches"]) / sum(r["shard_batches"]) for r in good
                 if r.get("shard_batches") and sum(r["shard_batches"]) > 0]),
            "load1": median([r.get("load1") for r in group]),
        }
        points.append(p)
    # Every series is compared with the full-batch 1-topic point: a 1-topic producer
    # fills its batches in any linger, so the two series share that configuration.
    base = next((p for p in points
                 if p["series"] == "full" and p["partitions"] == 1 and p["msgs_per_sec"]), None)
    # The same comparison at equal request size: points whose requests are about 1 MiB
    # (sluice-bench's request limit) against the 1-topic 1 MiB-batch reference.
    bigreq = next((p for p in points if p["series"] == "bigreq" and p["msgs_per_sec"]), None)
    for p in points:
        p["ratio_to_1_topic_same_request"] = (
            p["msgs_per_sec"] / bigreq["msgs_per_sec"]
            if bigreq and p["msgs_per_sec"] is not None and p["series"] != "bigreq" and
            (p["request_kib"] or 0) >= 512 else None)
        goal = goal_for(p["topics"], p["partitions"]) if p["series"] != "bigreq" else None
        ratio = (p["msgs_per_sec"] / base["msgs_per_sec"]
                 if base and p["msgs_per_sec"] is not None else None)
        p["ratio_to_1_topic"] = ratio
        p["goal"] = goal
        p["meets_goal"] = (None if goal is None or ratio is None
                           else ("yes" if ratio >= goal else "no"))
    return points, base


def fmt(v, spec):
    if v is None:
        return ""
    return format(v, spec)


def write_csv(points, path):
    specs = {"msgs_per_sec": ".0f", "mb_per_sec": ".1f", "p50_us": ".1f", "p99_us": ".1f",
             "p999_us": ".1f", "rss_mib": ".1f", "hwm_mib": ".1f", "create_s": ".3f",
             "request_kib": ".1f", "batches_per_request": ".1f",
             "broker_records_per_batch": ".2f", "busiest_shard_share": ".2f",
             "ratio_to_1_topic": ".3f", "ratio_to_1_topic_same_request": ".3f",
             "goal": ".2f", "load1": ".2f"}
    with open(path, "w") as f:
        f.write(",".join(CSV_COLUMNS) + "\n")
        for p in points:
            cells = []
            for c in CSV_COLUMNS:
                v = p.get(c)
                cells.append(fmt(v, specs[c]) if c in specs else ("" if v is None else str(v)))
            f.write(",".join(cells) + "\n")


def write_gnuplot_data(points, base, dat_path, vars_path):
    """One data block per series (gnuplot 'index' 0 = full, 1 = linger, 2 = bigreq), x =
    partitions."""
    blocks = []
    for series in ("full", "linger", "bigreq"):
        rows = [p for p in points if p["series"] == series and p["msgs_per_sec"] is not None]
        if series == "linger" and rows:
            # Where a partition's linger fills a whole batch the lingered producer sends
            # what the full series measured (the script runs no separate point there):
            # the line follows the full series up to where batches start to shrink.
            have = {p["partitions"] for p in rows}
            rows = rows + [p for p in points if p["series"] == "full" and
                           p["msgs_per_sec"] is not None and p["partitions"] not in have and
                           p["partitions"] < min(have)]
        rows.sort(key=lambda p: p["partitions"])
        blocks.append((series, rows))
    with open(dat_path, "w") as f:
        f.write("# partitions topics mb_per_sec msgs_per_sec_millions p99_ms ratio rss_mib\n")
        for i, (series, rows) in enumerate(blocks):
            if i:
                f.write("\n\n")
            f.write("# series %s\n" % series)
            if not rows:
                f.write("1 1 NaN NaN NaN NaN NaN\n")  # keeps the block index valid
            for p in rows:
                f.write("%d %d %.3f %.4f %.3f %.4f %.1f\n" % (
                    p["partitions"], p["topics"], p["mb_per_sec"], p["msgs_per_sec"] / 1e6,
                    p["p99_us"] / 1e3, p["ratio_to_1_topic"] or 0, p["rss_mib"] or 0))
    has_bigreq = 1 if any(p["series"] == "bigreq" and p["msgs_per_sec"] is not None
                          for p in points) else 0
    has_linger = 1 if any(p["series"] == "linger" and p["partitions"] != 1 and
                          p["msgs_per_sec"] is not None for p in points) else 0
    xmax = max([p["partitions"] for p in points] + [10])
    ymax = max([p["mb_per_sec"] for p in points if p["mb_per_sec"] is not None] + [1])
    with open(vars_path, "w") as f:
        f.write("base_mbs = %.3f\n" % (base["mb_per_sec"] if base else 0))
        f.write("has_base = %d\n" % (1 if base else 0))
        f.write("has_linger = %d\n" % has_linger)
        f.write("has_bigreq = %d\n" % has_bigreq)
        f.write("xmax = %d\n" % xmax)
        f.write("ymax = %.3f\n" % ymax)


def print_table(points, base):
    print()
    print("topic-count scaling: medians of the good runs; ratio = msgs/s / full-batch 1 topic"
          + (" (%.0f msgs/s)" % base["msgs_per_sec"] if base else " (no baseline)"))
    head = ("%-6s %6s %5s %7s %4s %8s %7s %7s %7s %6s %7s %5s %5s %5s %5s %7s %s" % (
        "series", "topics", "p/t", "parts", "rec", "msgs/s", "MB/s", "p99 ms", "RSS MiB",
        "create", "req KiB", "b/req", "shard", "ratio", "r/big", "goal", "runs"))
    print(head)
    print("-" * len(head))
    for p in points:
        goal = ""
        if p["goal"] is not None:
            goal = "%d%%%s" % (round(p["goal"] * 100), "" if p["meets_goal"] is None else
                               (" ok" if p["meets_goal"] == "yes" else " MISS"))
        print("%-6s %6d %5d %7d %4s %8s %7s %7s %7s %6s %7s %5s %5s %5s %5s %7s %d/%d" % (
            p["series"], p["topics"], p["partitions_per_topic"], p["partitions"],
            p["records_per_batch"] if p["records_per_batch"] is not None else "?",
            fmt(p["msgs_per_sec"], ".0f"), fmt(p["mb_per_sec"], ".1f"),
            fmt(p["p99_us"] and p["p99_us"] / 1e3, ".2f"), fmt(p["rss_mib"], ".0f"),
            fmt(p["create_s"], ".2f") + ("s" if p["create_s"] is not None else ""),
            fmt(p["request_kib"], ".0f"), fmt(p["batches_per_request"], ".1f"),
            fmt(p["busiest_shard_share"], ".2f"), fmt(p["ratio_to_1_topic"], ".2f"),
            fmt(p["ratio_to_1_topic_same_request"], ".2f"), goal, p["runs_ok"], p["runs"]))
    print("series: " + "; ".join("%s = %s" % kv for kv in SERIES_TITLES.items()))
    print("p/t = partitions per topic, rec = records per batch, create = sluice-bench "
          "bootstrap time to create the topics, req KiB / b/req = mean Produce request size "
          "and batches (partitions) per request, shard = the busiest shard's share of the "
          "appended batches, r/big = ratio to the 1-topic reference with requests of the "
          "same size (1 MiB batches), for points sending ~1 MiB requests")


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    runs_path, out_dir = argv[1], argv[2]
    settings = dict(kv.split("=", 1) for kv in argv[3:] if "=" in kv)
    runs = []
    with open(runs_path) as f:
        for line in f:
            line = line.strip()
            if line:
                runs.append(json.loads(line))
    points, base = summarize(runs)
    write_csv(points, os.path.join(out_dir, "topic-scaling.csv"))
    write_gnuplot_data(points, base, os.path.join(out_dir, "topic-scaling.dat"),
                       os.path.join(out_dir, "topic-scaling.gpvars"))
    with open(os.path.join(out_dir, "topic-scaling.json"), "w") as f:
        json.dump({"settings": settings, "machine": machine_facts(), "series": SERIES_TITLES,
                   "reference": {"kafka_alibaba_rocketmq_comparison":
                                 "Kafka's throughput fell about 98 % going from 64 to 256 "
                                 "topics (other hardware)"},
                   "points": points, "runs": runs}, f, indent=1)
        f.write("\n")
    print_table(points, base)
    bad = [r for r in runs if not run_ok(r)]
    if bad:
        print("failed runs: %d (see runs.jsonl and raw/)" % len(bad))
    return 1 if not base else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
