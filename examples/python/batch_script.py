# SPDX-License-Identifier: Apache-2.0
"""examples/python/batch_script.py: a short job that caches, counts, and
reports its metrics at the end: printed, and pushed to a Pushgateway when
PUSHGATEWAY_URL is set ("pushgateway://127.0.0.1:9091/metrics/job/batch").

    python3 examples/python/batch_script.py
"""
import os

import cachemeter

reg = cachemeter.Registry(prefix="batch_")
processed = reg.counter("items_processed", "Items processed.", labels=("kind",))
push = os.environ.get("PUSHGATEWAY_URL")
exporter = reg.export(push, interval=0) if push else None  # the final push happens at stop()

with cachemeter.Cache("memory://?max_entries=10000", "lookups", registry=reg) as lookups:
    for i in range(1000):
        key = f"customer:{i % 50}"  # 50 customers, each looked up 20 times
        lookups.get_or_load(key, lambda k: b"profile of " + k.encode())
        processed.labels("order").inc()
    stats = lookups.stats()
    print(f"lookups: {stats['hits']} hits, {stats['misses']} misses, hit ratio {stats['hit_ratio']:.2f}")
    for line in reg.render().splitlines():
        if line.startswith(("items_processed_total", "batch_cache_hits_total")):  # prefix: ours only
            print(line)
    if exporter is not None:
        exporter.stop()  # while the cache is open: its series are in the final push
