"""Benchmark: a sweep in worker processes against the same sweep in one process.

    python benchmarks/sweep_parallel.py                 # 3 x 3 grid points x 3 seeds, 2 rounds
    python benchmarks/sweep_parallel.py --clients 500   # smaller runs

Sweeps the thundering-herd example over 3 poll caps x 3 jitter kinds x 3 seeds (27 runs) with
`processes=1` and with one process per CPU, alternating the two for `--rounds` rounds. It
checks that every sweep gives the same table. It prints the wall time of each sweep,
the median speed-up and the machine. The wall time includes starting the worker processes,
which import numpy, pandas and aiohttp, so small runs show less speed-up than large ones.
Results folders go to a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

import sim

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "thundering-herd.yaml"
GRID = {"client.poll.maximum": [10.0, 30.0, 60.0], "client.poll.jitter": ["none", "full", "equal"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1500, help="clients per run (default: 1500)")
    parser.add_argument("--seeds", type=int, default=3, help="replications per grid point (default: 3)")
    parser.add_argument("--rounds", type=int, default=2, help="serial and parallel sweeps each (default: 2)")
    args = parser.parse_args()

    base = sim.load(EXAMPLE, {"workload.clients": args.clients})
    cpus = os.cpu_count() or 1
    runs = len(GRID["client.poll.maximum"]) * len(GRID["client.poll.jitter"]) * args.seeds
    print(f"{runs} runs of {args.clients:,} clients; python {sys.version.split()[0]}, "
          f"{platform.platform()}, {cpus} CPUs")

    tables: list[pd.DataFrame] = []
    walls: dict[int, list[float]] = {1: [], cpus: []}
    with tempfile.TemporaryDirectory() as root:
        for round_number in range(args.rounds):
            for processes in (1, cpus):
                out = Path(root) / f"round{round_number}-processes{processes}"
                started = time.perf_counter()
                table = sim.sweep(base, GRID, seeds=args.seeds, out=out, processes=processes, progress=False)
                wall = time.perf_counter() - started
                walls[processes].append(wall)
                tables.append(table)
                print(f"round {round_number + 1}, {processes} process{'es' if processes > 1 else ''}: "
                      f"{wall:.1f} s wall")

    for table in tables[1:]:
        pd.testing.assert_frame_equal(table, tables[0])
    print(f"all {len(tables)} sweeps gave the same table ({len(tables[0])} rows)")
    serial = statistics.median(walls[1])
    parallel = statistics.median(walls[cpus])
    print(f"median: serial {serial:.1f} s, {cpus} processes {parallel:.1f} s, speed-up {serial / parallel:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
