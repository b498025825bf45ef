#!/usr/bin/env python3
"""Peer comparison: empty-task throughput and submit->running latency on local Ray.

Starts a single-node Ray cluster in this process (``ray.init(num_cpus=...)``, no
dashboard, quiet logging, usage stats off) and measures two things:

1. Empty-task throughput. ``noop.remote()`` is called N times (``--tasks``), then
   ``ray.get`` waits for all N results; tasks/s = N / (time from first submit to
   last result). A warm-up batch runs first so that worker processes are already
   started and imported. Several rounds (``--rounds``) are run; the best and the
   median are reported.

2. Submit->running latency. M single tasks (``--latency-samples``) are run one
   after another (submit, wait, next). The driver reads ``time.monotonic_ns()``
   immediately before ``.remote()``, and the task body reads
   ``time.monotonic_ns()`` as its first statement and returns it. On Linux
   CLOCK_MONOTONIC is system-wide, so the two readings from different processes
   on this machine are directly comparable. p50 and p99 are reported in
   microseconds. The measured span includes argument-free task spec creation,
   scheduling by the raylet/local lease, and dispatch to an already-running
   worker; it excludes returning the result.

Caveat for the comparison: Ray does NOT record these tasks durably. Task specs,
state and (small) results live in memory (owner process, raylet, GCS; the GCS is
in-memory unless Redis fault tolerance is configured, and even then task events
are not persisted per task). A crash loses them. The system this is compared with
(iog) records every task durably in SQLite, which is extra work per task that Ray
does not do. Treat Ray's figures as an upper bound for "in-memory" scheduling.

Usage:
    python scripts/peer/ray_tasks.py [--tasks 10000] [--rounds 5]
        [--latency-samples 1000] [--cpus 2] [--json]

With ``--json`` the single JSON object goes to stdout and the human summary to
stderr; without it the summary goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time

# Keep Ray quiet and offline before it is imported.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

import ray  # noqa: E402


@ray.remote
def noop():
    return None


@ray.remote
def started_at():
    # First statement: timestamp on the system-wide monotonic clock.
    return time.monotonic_ns()


def percentile(sorted_values, q):
    """Nearest-rank percentile (q in [0, 100]) of an already-sorted list."""
    if not sorted_values:
        raise ValueError("no samples")
    rank = max(1, int(-(-q * len(sorted_values) // 100)))  # ceil(q*n/100)
    return sorted_values[min(rank, len(sorted_values)) - 1]


def throughput_round(n):
    t0 = time.perf_counter()
    refs = [noop.remote() for _ in range(n)]
    ray.get(refs)
    return n / (time.perf_counter() - t0)


def latency_samples(m):
    out = []
    for _ in range(m):
        t0 = time.monotonic_ns()
        ref = started_at.remote()
        t1 = ray.get(ref)
        out.append((t1 - t0) / 1000.0)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=10000, help="tasks per throughput round (default 10000)")
    p.add_argument("--rounds", type=int, default=5, help="throughput rounds after warm-up (default 5)")
    p.add_argument("--warmup", type=int, default=2000, help="warm-up tasks before measuring (default 2000)")
    p.add_argument("--latency-samples", type=int, default=1000, help="sequential single tasks (default 1000)")
    p.add_argument("--cpus", type=int, default=2, help="num_cpus for ray.init (default 2)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = p.parse_args(argv)
    if args.tasks < 1 or args.rounds < 1 or args.latency_samples < 1:
        p.error("--tasks, --rounds and --latency-samples must be >= 1")

    ray.init(
        num_cpus=args.cpus,
        include_dashboard=False,
        logging_level=logging.ERROR,
        log_to_driver=False,
        configure_logging=True,
    )
    try:
        cpus = int(ray.cluster_resources().get("CPU", args.cpus))

        # Warm-up: start worker processes and import the functions in them.
        ray.get([noop.remote() for _ in range(args.warmup)])
        ray.get([started_at.remote() for _ in range(max(1, min(args.warmup, 200)))])

        rates = [throughput_round(args.tasks) for _ in range(args.rounds)]
        lat = sorted(latency_samples(args.latency_samples))
    finally:
        ray.shutdown()

    result = {
        "ray_version": ray.__version__,
        "tasks": args.tasks,
        "tasks_per_s_best": round(max(rates), 1),
        "tasks_per_s_median": round(statistics.median(rates), 1),
        "latency_samples": args.latency_samples,
        "submit_to_running_p50_us": round(percentile(lat, 50), 1),
        "submit_to_running_p99_us": round(percentile(lat, 99), 1),
        "cpus": cpus,
    }

    summary = sys.stderr if args.json else sys.stdout
    print(f"ray {result['ray_version']}, local cluster, num_cpus={cpus} (host cpu_count={os.cpu_count()})", file=summary)
    print(
        f"empty-task throughput: {args.tasks} tasks x {args.rounds} rounds (after {args.warmup} warm-up): "
        f"best {result['tasks_per_s_best']:.0f} tasks/s, median {result['tasks_per_s_median']:.0f} tasks/s "
        f"(all rounds: {', '.join(f'{r:.0f}' for r in rates)})",
        file=summary,
    )
    print(
        f"submit->running latency: {args.latency_samples} sequential tasks: "
        f"p50 {result['submit_to_running_p50_us']:.1f} us, p99 {result['submit_to_running_p99_us']:.1f} us "
        f"(min {lat[0]:.1f}, max {lat[-1]:.1f})",
        file=summary,
    )
    print("note: Ray keeps task state in memory; nothing is recorded durably.", file=summary)
    summary.flush()
    if args.json:
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
