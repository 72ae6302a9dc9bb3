"""herdsim's simulator: thousands of real polling clients against a modelled server.

From Python (notebooks, scripts):

    import sim

    result = sim.run("examples/thundering-herd.yaml", {"client.poll.jitter": "none"})
    table = sim.sweep("examples/thundering-herd.yaml", {"client.poll.maximum": [10, 30]}, seeds=3)

From the shell, `python -m sim run CONFIG.yaml` runs a config and writes a results folder; see
`sim.cli`. The pieces, in the order a request meets them: `sim.config` (the YAML schema),
`sim.engine` (the run), `sim.loop` (virtual time), `sim.session` (the client's stand-in
session), `sim.server` (the modelled server), `sim.recorder` and `sim.tables` (the data),
`sim.summary`, `sim.plots` and `sim.results` (the output), `sim.api` and `sim.sweeps` (the
Python API).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = ["Config", "ConfigError", "HEADLINE", "RunResult", "load", "override", "run", "sweep"]

# Names exported lazily, so that `python -m sim serve` and `import sim.config` do not pay for
# pandas and matplotlib.
_EXPORTS = {
    "Config": "sim.config",
    "ConfigError": "sim.config",
    "override": "sim.config",
    "HEADLINE": "sim.summary",
    "RunResult": "sim.results",
    "load": "sim.api",
    "run": "sim.api",
    "sweep": "sim.sweeps",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'sim' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
