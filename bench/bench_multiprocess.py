#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench/bench_multiprocess.py: shared registries (docs/multiprocess.md, issue 15)
side by side with prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR),
same workload, one run:

  inc        Counter.inc() on a shared registry vs prometheus_client's
             multiprocess Counter.inc()                      (target: >= 20x faster)
  scrape     16 worker slots x 1k series (counters, gauges, 11-bucket histograms):
             our render vs MultiProcessCollector + generate_latest
                                                             (target: >= 20x faster)
             and vs our single-process render of as many series (target: <= 2x)
  restarts   after 1000 worker restarts: files in the directory and scrape time,
             ours and prometheus_client's                   (target: ours flat, <= 1.2x)
  footprint  64 workers x 10k series: disk blocks of the directory; memory per
             series per slot

prometheus_client picks its multiprocess value class when it is imported, so
this script re-runs itself with PROMETHEUS_MULTIPROC_DIR set for each part.
Run: PYTHONPATH=<build>/bindings/python /usr/bin/python3 bench/bench_multiprocess.py
     [--quick] [--json FILE]
Debian packages: python3-prometheus-client.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import timeit

SERIES = 1000        # per worker, for the scrape
WORKERS = 16
BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]  # 11 bounds


def dir_stats(path):
    files = [os.path.join(path, f) for f in os.listdir(path)]
    blocks = sum(os.stat(f).st_blocks * 512 for f in files if os.path.isfile(f))
    return len(files), blocks


def best(fn, rounds):
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def fork_workers(n, body):
    """Runs body(i) in n sequential child processes (each exits after)."""
    for i in range(n):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                body(i)
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"worker {i} failed")


def start_live_workers(n, body):
    """Forks n children that run body(i) and stay alive (holding their slots)
    until stop_workers(); returns once every one has run body."""
    pids = []
    for i in range(n):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            code = 1
            try:
                body(i)
                os.write(w, b"x")
                code = 0
                import signal
                signal.pause()  # until stop_workers' SIGKILL
            finally:
                os._exit(code)
        os.close(w)
        if os.read(r, 1) != b"x":
            raise SystemExit(f"live worker {i} failed")
        os.close(r)
        pids.append(pid)
    return pids


def stop_workers(pids):
    import signal
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


# ---- the parts, each run in a fresh interpreter with PROMETHEUS_MULTIPROC_DIR set
def part_inc(ours_dir, rounds):
    import prometheus_client
    import cachemeter
    reg = cachemeter.Registry(shared=ours_dir)
    ours = reg.counter("events", "Events.")
    ours_local = cachemeter.Registry().counter("events", "Events.")
    prom = prometheus_client.Counter("events", "Events.", registry=prometheus_client.CollectorRegistry())
    n = 200000
    cases = {"ours_shared": ours, "ours_in_process": ours_local, "prometheus_client_multiprocess": prom}
    res = {k: float("inf") for k in cases}
    for _ in range(rounds):  # interleaved
        for k, c in cases.items():
            res[k] = min(res[k], timeit.timeit("c.inc()", globals={"c": c}, number=n) / n)
    return {k + "_ns": v * 1e9 for k, v in res.items()}


def fill(c, g, h, i):
    """The scrape's 1000 series of worker i, through either library's families
    (the same calls: labels(), inc, set, observe)."""
    third = SERIES // 3
    for k in range(third):
        c.labels(str(k)).inc(i + 1)
        g.labels(str(k)).set(k)
        h.labels(str(k)).observe(0.02 * (k % 50))
    for k in range(third, SERIES - 2 * third):
        c.labels(str(k)).inc()


def populate_ours(reg, i):
    fill(reg.counter("req", "Requests.", labels=["k"]), reg.gauge("inflight", "In flight.", labels=["k"]),
         reg.histogram("lat_seconds", "Latency.", labels=["k"], buckets=BUCKETS), i)


def populate_prom(i):
    import prometheus_client
    reg = prometheus_client.CollectorRegistry()
    fill(prometheus_client.Counter("req", "Requests.", ["k"], registry=reg),
         prometheus_client.Gauge("inflight", "In flight.", ["k"], registry=reg, multiprocess_mode="sum"),
         prometheus_client.Histogram("lat_seconds", "Latency.", ["k"], registry=reg, buckets=BUCKETS), i)


def part_scrape(ours_dir, prom_dir, rounds, restarts):
    import prometheus_client
    from prometheus_client import multiprocess
    import cachemeter

    def ours_worker(i):
        populate_ours(cachemeter.Registry(shared=ours_dir, max_workers=64, gauge_mode="sum"), i)

    # Live workers: 16 slots in the directory, as in a running pool.
    live = start_live_workers(WORKERS, ours_worker)
    live += start_live_workers(WORKERS, populate_prom)
    view = cachemeter.Registry(shared=ours_dir, shared_readonly=True)

    def prom_scrape():
        r = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(r)
        return prometheus_client.generate_latest(r)

    ours_text = view.render()
    prom_text = prom_scrape().decode()
    # One registry holding what the aggregate shows, and one holding as many
    # series as all the slots together.
    single_1k = cachemeter.Registry()
    populate_ours(single_1k, 0)
    single_16k = cachemeter.Registry(max_series=WORKERS * SERIES + 10)
    for i in range(WORKERS):
        c = single_16k.counter(f"req{i}", "Requests.", labels=["k"])
        g = single_16k.gauge(f"inflight{i}", "In flight.", labels=["k"])
        h = single_16k.histogram(f"lat{i}_seconds", "Latency.", labels=["k"], buckets=BUCKETS)
        third = SERIES // 3
        for k in range(third):
            c.labels(str(k)).inc()
            g.labels(str(k)).set(k)
            h.labels(str(k)).observe(0.02)
        for k in range(third, SERIES - 2 * third):
            c.labels(str(k)).inc()
    res = {k: float("inf") for k in ("ours", "prom", "single_1k", "single_16k")}
    for _ in range(rounds):
        res["ours"] = min(res["ours"], best(view.render, 1))
        res["prom"] = min(res["prom"], best(prom_scrape, 1))
        res["single_1k"] = min(res["single_1k"], best(single_1k.render, 1))
        res["single_16k"] = min(res["single_16k"], best(single_16k.render, 1))
    out = {"scrape_" + k + "_ms": v * 1e3 for k, v in res.items()}
    out["ours_bytes"] = len(ours_text)
    out["prom_bytes"] = len(prom_text)
    out["ours_files"], out["ours_disk_bytes"] = dir_stats(ours_dir)
    out["prom_files"], out["prom_disk_bytes"] = dir_stats(prom_dir)

    # Restarts: short-lived workers, each touching 100 of the series.
    def ours_restart(i):
        r = cachemeter.Registry(shared=ours_dir, max_workers=64, gauge_mode="sum")
        c = r.counter("req", "Requests.", labels=["k"])
        for k in range(100):
            c.labels(str(k)).inc()

    def prom_restart(i):
        r = prometheus_client.CollectorRegistry()
        c = prometheus_client.Counter("req", "Requests.", ["k"], registry=r)
        for k in range(100):
            c.labels(str(k)).inc()

    t0 = time.perf_counter()
    fork_workers(restarts, ours_restart)
    out["restart_ours_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    fork_workers(restarts, prom_restart)
    out["restart_prom_s"] = time.perf_counter() - t0
    res2 = {"ours": float("inf"), "prom": float("inf")}
    for _ in range(rounds):
        res2["ours"] = min(res2["ours"], best(view.render, 1))
        res2["prom"] = min(res2["prom"], best(prom_scrape, 1))
    out["after_restarts_scrape_ours_ms"] = res2["ours"] * 1e3
    out["after_restarts_scrape_prom_ms"] = res2["prom"] * 1e3
    out["after_restarts_ours_files"], out["after_restarts_ours_disk_bytes"] = dir_stats(ours_dir)
    out["after_restarts_prom_files"], out["after_restarts_prom_disk_bytes"] = dir_stats(prom_dir)
    stop_workers(live)
    # The counter a scrape shows must be exact: 16 workers x (i + 1) on k=0, then +1 per restart.
    want = sum(i + 1 for i in range(WORKERS)) + restarts
    line = 'req_total{k="0"} '
    got = [float(l[len(line):]) for l in view.render().splitlines() if l.startswith(line)]
    if got != [want]:
        raise SystemExit(f"ours: req_total{{k=0}} is {got}, expected {want}")
    return out


def part_footprint(ours_dir, workers, series):
    import cachemeter

    def worker(i):
        r = cachemeter.Registry(shared=ours_dir, max_workers=64, max_series=series + 10)
        c = r.counter("req", "Requests.", labels=["k"])
        for k in range(series):
            c.labels(str(k)).inc()

    live = start_live_workers(workers, worker)  # all alive: one slot each
    files, disk = dir_stats(ours_dir)
    stop_workers(live)
    return {"footprint_workers": workers, "footprint_series": series, "footprint_files": files,
            "footprint_disk_bytes": disk, "footprint_bytes_per_series_per_slot": disk / (workers * series)}


def run_part(name, args):
    """Runs one part in a fresh interpreter with its own directories."""
    base = tempfile.mkdtemp(prefix="cm-bench-mp-")
    try:
        ours_dir = os.path.join(base, "ours")
        prom_dir = os.path.join(base, "prom")
        os.mkdir(prom_dir)
        env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=prom_dir)
        cmd = [sys.executable, __file__, "--part", name, "--ours", ours_dir, "--prom", prom_dir,
               "--rounds", str(args.rounds), "--restarts", str(args.restarts),
               "--fp-workers", str(args.fp_workers), "--fp-series", str(args.fp_series)]
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--part")
    ap.add_argument("--ours")
    ap.add_argument("--prom")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--restarts", type=int, default=1000)
    ap.add_argument("--fp-workers", type=int, default=64)
    ap.add_argument("--fp-series", type=int, default=10000)
    ap.add_argument("--quick", action="store_true", help="fewer rounds, 100 restarts, 8 x 1k footprint")
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.part:
        if args.part == "inc":
            res = part_inc(args.ours, args.rounds)
        elif args.part == "scrape":
            res = part_scrape(args.ours, args.prom, args.rounds, args.restarts)
        else:
            res = part_footprint(args.ours, args.fp_workers, args.fp_series)
        print(json.dumps(res))
        return
    if args.quick:
        args.rounds, args.restarts, args.fp_workers, args.fp_series = 2, 100, 8, 1000
    res = {}
    for part in ("inc", "scrape", "footprint"):
        res.update(run_part(part, args))
    inc_ratio = res["prometheus_client_multiprocess_ns"] / res["ours_shared_ns"]
    print(f"inc(): ours shared {res['ours_shared_ns']:.0f} ns, in-process {res['ours_in_process_ns']:.0f} ns, "
          f"prometheus_client multiprocess {res['prometheus_client_multiprocess_ns']:.0f} ns: {inc_ratio:.1f}x faster")
    print(f"scrape {WORKERS} x {SERIES} series: ours {res['scrape_ours_ms']:.2f} ms, MultiProcessCollector + "
          f"generate_latest {res['scrape_prom_ms']:.2f} ms: {res['scrape_prom_ms'] / res['scrape_ours_ms']:.1f}x faster; "
          f"single-process render of {SERIES} series {res['scrape_single_1k_ms']:.2f} ms "
          f"({res['scrape_ours_ms'] / res['scrape_single_1k_ms']:.2f}x), of {WORKERS * SERIES} "
          f"{res['scrape_single_16k_ms']:.2f} ms ({res['scrape_ours_ms'] / res['scrape_single_16k_ms']:.2f}x)")
    print(f"after {args.restarts} restarts: ours {res['ours_files']} -> {res['after_restarts_ours_files']} files, "
          f"scrape {res['scrape_ours_ms']:.2f} -> {res['after_restarts_scrape_ours_ms']:.2f} ms "
          f"({res['after_restarts_scrape_ours_ms'] / res['scrape_ours_ms']:.2f}x); prometheus_client "
          f"{res['prom_files']} -> {res['after_restarts_prom_files']} files, scrape {res['scrape_prom_ms']:.2f} -> "
          f"{res['after_restarts_scrape_prom_ms']:.2f} ms ({res['after_restarts_scrape_prom_ms'] / res['scrape_prom_ms']:.2f}x)")
    print(f"footprint {res['footprint_workers']} workers x {res['footprint_series']} series: "
          f"{res['footprint_files']} files, {res['footprint_disk_bytes'] / 2**20:.1f} MiB on disk, "
          f"{res['footprint_bytes_per_series_per_slot']:.0f} B per series per slot")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
