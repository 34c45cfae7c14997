#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Turns Google Benchmark JSON output of the bench_* programs into the
markdown tables of RESULTS.md: medians, cachemeter next to prometheus-cpp and
the ratio, from one run.

usage: summarize.py RESULT.json [--static STATIC.json]
  RESULT.json   --benchmark_out of a run with --benchmark_repetitions=N
                (aggregates: the "median" rows are used)
  --static      the same run of bench_metrics_static, shown as a column
"""
import argparse
import json

UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
OURS, THEIRS = "/cachemeter", "/prometheus_cpp"
COUNTERS = ("out_bytes", "out_samples", "alloc_bytes", "alloc_calls")


def medians(path):
    """run_name -> median row, with real_time converted to ns."""
    with open(path) as f:
        rows = json.load(f)["benchmarks"]
    out = {}
    for r in rows:
        if r.get("run_type") == "aggregate" and r.get("aggregate_name") == "median":
            r["ns"] = r["real_time"] * UNIT_NS[r["time_unit"]]
            r["cpu_ns"] = r["cpu_time"] * UNIT_NS[r["time_unit"]]
            out[r["run_name"]] = r
    return out


def fmt_time(ns):
    for unit, scale in (("ms", 1e6), ("us", 1e3)):
        if ns >= scale * 10:
            return f"{ns / scale:.2f} {unit}"
    return f"{ns:.2f} ns"


def per_thread(r):
    return f"{fmt_time(r['ns'] * r['threads'])} / {fmt_time(r['cpu_ns'])}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("result")
    ap.add_argument("--static")
    args = ap.parse_args()
    res = medians(args.result)
    static = medians(args.static) if args.static else {}

    # Wall time / total ops is the inverse of aggregate throughput; times the
    # thread count it is one thread's time per op, which the CPU time per op
    # should match unless a thread was descheduled (a noisy-machine warning).
    head = ["benchmark", "threads", "cachemeter", "prometheus-cpp", "ratio (prom/ours)",
            "cachemeter per thread: wall x N / CPU", "prometheus-cpp per thread: wall x N / CPU"]
    if static:
        head.append("cachemeter static")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, ours in res.items():
        if OURS not in name:
            continue
        theirs = res.get(name.replace(OURS, THEIRS))
        bench = name.split(OURS)[0]
        t = ours["threads"]
        cells = [bench, str(t), fmt_time(ours["ns"]),
                 fmt_time(theirs["ns"]) if theirs else "n/a",
                 f"{theirs['ns'] / ours['ns']:.1f}x" if theirs else "n/a",
                 per_thread(ours), per_thread(theirs) if theirs else "n/a"]
        if static:
            s = static.get(name)
            cells.append(fmt_time(s["ns"]) if s else "n/a")
        print("| " + " | ".join(cells) + " |")
    # Rows that have no cachemeter counterpart (extra baseline variants).
    for name, r in res.items():
        if THEIRS in name and name.replace(THEIRS, OURS) not in res:
            print(f"| {name} | {r['threads']} | | {fmt_time(r['ns'])} | | | {per_thread(r)} |")

    extra = [(n, r) for n, r in res.items() if all(c in r for c in COUNTERS)]
    if extra:
        print()
        print("| benchmark | output bytes | sample lines | bytes allocated / render"
              " | allocations / render |")
        print("|---|---|---|---|---|")
        for n, r in extra:
            print(f"| {n} | {r['out_bytes']:.0f} | {r['out_samples']:.0f} |"
                  f" {r['alloc_bytes']:.0f} | {r['alloc_calls']:.0f} |")


if __name__ == "__main__":
    main()
