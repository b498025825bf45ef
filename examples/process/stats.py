#!/usr/bin/env python3
"""Summarises one CSV shard of sensor readings: an iog `process` task.

Each task sees the job's files and its own shard read-only in /in, and
writes its result into /out (its working directory). IOG_TASK_INDEX and
IOG_N_TASKS say which task it is. Only the standard library is used, so any
worker that offers python3 can run it.
"""
import csv
import json
import os
import statistics
import sys

task = int(os.environ["IOG_TASK_INDEX"])
shards = sorted(name for name in os.listdir("/in") if name.endswith(".csv"))
if len(shards) != 1:
    sys.exit(f"expected one shard in /in, found {shards}")

by_sensor = {}
with open(os.path.join("/in", shards[0]), newline="") as f:
    for row in csv.DictReader(f):
        by_sensor.setdefault(row["sensor"], []).append(float(row["celsius"]))

summary = {
    "task": task,
    "shard": shards[0],
    "sensors": {
        name: {
            "n": len(values),
            "mean": round(statistics.fmean(values), 6),
            "min": min(values),
            "max": max(values),
        }
        for name, values in sorted(by_sensor.items())
    },
}
with open("stats.json", "w") as out:
    json.dump(summary, out, indent=2, sort_keys=True)
    out.write("\n")
print(f"{shards[0]}: {sum(len(v) for v in by_sensor.values())} readings from {len(by_sensor)} sensors")
