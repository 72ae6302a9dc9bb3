"""`sim.plots`: no interference with a notebook's backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SMALL = {
    "name": "small",
    "client": {"poll": {"initial": 1.0, "multiplier": 2.0, "maximum": 8.0, "jitter": "full"},
               "total_timeout": 120.0},
    "server": {"workers": 2, "service_time": 0.01, "queue_limit": 20,
               "job_duration": {"kind": "uniform", "low": 5.0, "high": 15.0}},
    "workload": {"clients": 100},
    "run": {"seed": 4},
}


# ----------------------------------------------------------------------------- backend


def test_import_keeps_backend() -> None:
    code = ("import matplotlib; matplotlib.use('svg'); import sim.plots, sim.results, sim.api; "
            "print(matplotlib.get_backend())")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert output.stdout.strip() == "svg"


def test_run_plots_written_without_pyplot(tmp_path: Path) -> None:
    # Results folders are written with Figure objects alone, so no backend or display is needed.
    code = ("import sys, sim; sim.run(" + repr(SMALL) + f", out={str(tmp_path / 'run')!r}); "
            "print('matplotlib.pyplot' in sys.modules)")
    headless = {name: value for name, value in os.environ.items()
                if name not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                            env=headless)
    assert output.stdout.strip() == "False"
    assert (tmp_path / "run" / "requests_per_second.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "run" / "latency.png").read_bytes().startswith(b"\x89PNG")
