"""Benchmark: wall time and simulated requests per wall second of one example config.

    python benchmarks/run_example.py examples/thundering-herd.yaml --repeat 3

Runs the simulation only (no tables, plots or files) `--repeat` times in this process and
prints each run's figures and the median. The machine is shared, so compare figures measured
side by side in one invocation rather than across days.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from sim.config import load_config
from sim.engine import simulate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    config = load_config(args.config)
    print(f"{config.name}: {config.workload.clients} clients, seed {config.run.seed}")
    print(f"python {sys.version.split()[0]}, {platform.platform()}, {os.cpu_count()} CPUs")
    walls, rates = [], []
    for index in range(args.repeat):
        started = time.perf_counter()
        data = simulate(config)
        wall = time.perf_counter() - started
        requests = data.recorder.request_count
        walls.append(wall)
        rates.append(requests / wall)
        print(f"run {index + 1}: {requests:,} requests, {data.end_time:,.1f} s simulated, "
              f"{wall:.2f} s wall, {requests / wall:,.0f} simulated requests per wall second")
    print(f"median: {statistics.median(walls):.2f} s wall, "
          f"{statistics.median(rates):,.0f} simulated requests per wall second")
    return 0


if __name__ == "__main__":
    sys.exit(main())
