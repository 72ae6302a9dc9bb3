"""herdsim's simulator: thousands of real polling clients against a modelled server.

`python -m sim run CONFIG.yaml` runs a config and writes a results folder; see `sim.cli`.
The pieces, in the order a request meets them: `sim.config` (the YAML schema), `sim.engine`
(the run), `sim.loop` (virtual time), `sim.session` (the client's stand-in session),
`sim.server` (the modelled server), `sim.recorder` and `sim.tables` (the data),
`sim.summary`, `sim.plots` and `sim.results` (the output).
"""

__version__ = "0.1.0"
