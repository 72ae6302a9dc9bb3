"""Jobs on the server side: when each one ends and how.

Shared by the real aiohttp server (`sim.app`) and the modelled server (`sim.server`), so that
both answer a status request with the same rule: a job is `pending` until its finish time,
then `completed` or `error`.
"""

from __future__ import annotations

import heapq
import math
from array import array

import numpy as np

from sim.distributions import Distribution, Sampler

__all__ = ["JobTable", "PENDING", "COMPLETED", "ERROR", "STATES"]

PENDING = "pending"
COMPLETED = "completed"
ERROR = "error"
STATES = (PENDING, COMPLETED, ERROR)


class JobTable:
    """Every job created so far, as columns indexed by job number (the job id).

    Times are in seconds of whichever clock the owner passes in: the loop's monotonic clock in
    the real server, simulated time in the model.
    """

    def __init__(
        self,
        duration: Distribution,
        error_probability: float,
        duration_rng: np.random.Generator,
        outcome_rng: np.random.Generator,
        *,
        stuck_probability: float = 0.0,
        stuck_rng: np.random.Generator | None = None,
        idempotency_keys: bool = True,
        job_workers: int | None = None,
    ) -> None:
        self._duration = Sampler(duration, duration_rng)
        self._outcome_rng = outcome_rng
        self._outcome_draws: list[float] = []
        self._outcome_next = 0
        self._error_probability = error_probability
        self._stuck_probability = stuck_probability
        self._stuck_rng = stuck_rng
        self._keys: dict[str, int] | None = {} if idempotency_keys else None
        # With a finite job pool, jobs start FIFO on the worker that frees first. Each job's
        # work is drawn at creation, so its finish time can be fixed at creation too.
        self._pool: list[float] | None = [0.0] * job_workers if job_workers else None
        self.created_at = array("d")
        self.finishes_at = array("d")
        """When each job ends; infinite for a job that stays pending forever."""
        self.failed = bytearray()
        """1 where the job ends in error, else 0."""
        self.replayed = 0
        """Create requests that returned an existing job because their Idempotency-Key was known."""

    def __len__(self) -> int:
        return len(self.created_at)

    def create(self, now: float, key: str | None = None) -> int:
        """Start a job at time `now` and return its number.

        A create that carries an idempotency `key` already seen returns that key's job instead
        of starting a second one (unless the table ignores keys).
        """
        if key is not None and self._keys is not None:
            known = self._keys.get(key)
            if known is not None:
                self.replayed += 1
                return known

        number = len(self.created_at)
        self.created_at.append(now)
        duration = self._duration()
        if self._stuck_probability > 0 and self._stuck_rng.random() < self._stuck_probability:
            duration = math.inf
        begins = now
        if self._pool is not None:
            free = heapq.heappop(self._pool)
            begins = max(now, free)
            heapq.heappush(self._pool, begins + duration)
        self.finishes_at.append(begins + duration)
        self.failed.append(1 if self._draw_outcome() < self._error_probability else 0)
        if key is not None and self._keys is not None:
            self._keys[key] = number
        return number

    def state(self, number: int, now: float) -> str | None:
        """Return the job's state at time `now`, or None if no job has this number."""
        if not 0 <= number < len(self.created_at):
            return None
        if now < self.finishes_at[number]:
            return PENDING
        return ERROR if self.failed[number] else COMPLETED

    def retry_after(self, number: int, now: float) -> str | None:
        """Return a Retry-After value for a pending job: its remaining time rounded up, in seconds.

        None for a job that never finishes or has already finished.
        """
        remaining = self.finishes_at[number] - now
        if not 0 < remaining < math.inf:
            return None
        return str(math.ceil(remaining))

    def _draw_outcome(self) -> float:
        index = self._outcome_next
        if index == len(self._outcome_draws):
            self._outcome_draws = self._outcome_rng.random(4096).tolist()
            index = 0
        self._outcome_next = index + 1
        return self._outcome_draws[index]


def parse_job_id(text: str) -> int:
    """Return the job number in a job id, or -1 if the text is not one."""
    if text.isdigit() and text.isascii():
        return int(text)
    return -1
