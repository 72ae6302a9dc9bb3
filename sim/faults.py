"""Injected faults: answer some requests with an error status instead of serving them.

Shared by the real server and the modelled one, so that a contract test sees the same answers
from both. Rules are checked in config order and the first that fires decides.
"""

from __future__ import annotations

import numpy as np

from sim.config import FaultRule

__all__ = ["FaultPlan"]


class FaultPlan:
    """Decides, request by request, whether a fault rule answers instead of the server."""

    def __init__(self, rules: tuple[FaultRule, ...], rng: np.random.Generator) -> None:
        self._rules = rules
        self._matched = [0] * len(rules)
        self._rng = rng

    def __bool__(self) -> bool:
        return bool(self._rules)

    def status_for(self, endpoint: str) -> int | None:
        """Return the status to answer a request to `endpoint` with, or None to serve it.

        `endpoint` is "create" or "status". Call once per request that reaches the server.
        """
        for index, rule in enumerate(self._rules):
            if rule.endpoint != "any" and rule.endpoint != endpoint:
                continue
            self._matched[index] += 1
            if rule.first is not None:
                if self._matched[index] <= rule.first:
                    return rule.status
            elif self._rng.random() < rule.probability:
                return rule.status
        return None
