"""Stopping and racing runs: folders stay whole, workers stop, and the output stays short.

The sweep tests run a real sweep in a child process, in its own process group, and signal it
as a terminal (Ctrl-C goes to the whole group) or a supervisor (SIGTERM to one process) would.
Every process the child starts inherits a marker in its environment, so the test can find
worker processes left behind by reading /proc.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
import yaml

import sim
from sim.engine import simulate
from sim.results import move_into_place

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "thundering-herd.yaml"

# About a dozen runs of a second or two each on 2 workers: long enough that the sweep is busy
# when the signal arrives.
SWEEP_SCRIPT = textwrap.dedent(f"""
    import sim
    if __name__ == "__main__":
        sim.sweep({str(EXAMPLE)!r}, {{"client.poll.maximum": [5.0, 10.0, 20.0, 40.0]}}, seeds=3,
                  processes=2, progress=False, results_root="results")
""")


def test_move_into_place_takes_next_free_name(tmp_path: Path) -> None:
    # Another run took the name while this one was writing its files.
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "summary.json").write_text("{}")
    partial = tmp_path / ".run.partial-1"
    partial.mkdir()
    (partial / "summary.json").write_text('{"mine": true}')

    folder = move_into_place(partial, tmp_path / "run")

    assert folder == tmp_path / "run-2"
    assert (folder / "summary.json").read_text() == '{"mine": true}'
    assert (tmp_path / "run" / "summary.json").read_text() == "{}"
    assert not partial.exists()


def test_move_into_place_uses_the_name_when_free(tmp_path: Path) -> None:
    partial = tmp_path / ".run.partial-1"
    partial.mkdir()

    assert move_into_place(partial, tmp_path / "run") == tmp_path / "run"


def test_runs_started_together_keep_own_folders(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys, sim
        if __name__ == "__main__":
            result = sim.run({str(EXAMPLE)!r}, {{"workload.clients": 300}}, seed=int(sys.argv[1]),
                             out="results/same-second")
            print(result.folder)
    """)
    (tmp_path / "run.py").write_text(script)

    children = [subprocess.Popen([sys.executable, "run.py", str(seed)], cwd=tmp_path,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for seed in (1, 2, 3)]
    outputs = [child.communicate(timeout=120) for child in children]

    for child, (_, stderr) in zip(children, outputs):
        assert child.returncode == 0, stderr
    folders = sorted(path.name for path in (tmp_path / "results").iterdir())
    assert folders == ["same-second", "same-second-2", "same-second-3"]
    seeds = sorted(yaml.safe_load((tmp_path / "results" / name / "config.yaml").read_text())["run"]["seed"]
                   for name in folders)
    assert seeds == [1, 2, 3]


def _start_sweep(folder: Path, marker: str) -> subprocess.Popen[bytes]:
    (folder / "sweep.py").write_text(SWEEP_SCRIPT)
    child = subprocess.Popen([sys.executable, "sweep.py"], cwd=folder, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True,
                             env={**os.environ, "HERDSIM_TEST_MARKER": marker})
    # Wait until the sweep has made its partial folder, then give the workers time to start.
    deadline = time.monotonic() + 60
    while not list((folder / "results").glob(".*partial*")):
        assert child.poll() is None, child.communicate()[1].decode()
        assert time.monotonic() < deadline, "the sweep did not start within 60 s"
        time.sleep(0.1)
    time.sleep(3.0)
    assert child.poll() is None, "the sweep finished before it could be interrupted"
    return child


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                environment = Path(f"/proc/{entry}/environ").read_bytes()
            except OSError:
                continue
            if f"HERDSIM_TEST_MARKER={marker}".encode() in environment:
                found.append(int(entry))
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc to find processes")
@pytest.mark.parametrize("how", ["sigterm", "ctrl_c"])
def test_stopped_sweep_leaves_nothing_running(tmp_path: Path, how: str) -> None:
    marker = uuid.uuid4().hex
    child = _start_sweep(tmp_path, marker)

    started = time.monotonic()
    if how == "sigterm":
        child.send_signal(signal.SIGTERM)
    else:
        os.killpg(child.pid, signal.SIGINT)
    _, stderr = child.communicate(timeout=60)
    took = time.monotonic() - started
    time.sleep(0.5)

    assert child.returncode != 0
    assert took < 15, f"the sweep took {took:.1f} s to stop"
    assert _processes_with(marker) == []
    assert list((tmp_path / "results").iterdir()) == []
    text = stderr.decode()
    assert "Task was destroyed" not in text
    assert "VirtualTimeLoop is closed" not in text
    assert len(text.splitlines()) < 60


def test_interrupted_simulation_logs_no_pending_tasks(caplog: pytest.LogCaptureFixture) -> None:
    config = sim.load(EXAMPLE)

    def interrupt(now: float, done: int, total: int) -> None:
        raise KeyboardInterrupt

    with caplog.at_level(logging.ERROR), pytest.raises(KeyboardInterrupt):
        simulate(config, progress=interrupt)
    gc.collect()

    assert [record.getMessage() for record in caplog.records] == []
