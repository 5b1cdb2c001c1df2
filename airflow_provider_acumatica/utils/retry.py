"""The one retry policy of every loop that waits something out: requests, token grants, licence seats, long-running
actions, the SQLite switch to WAL and the payroll lock.

Each loop runs through tenacity with this policy's wait and stop; what counts as transient stays with the loop.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable
from typing import Any

import tenacity


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff, capped per wait, bounded in count and in total time.

    Retry number `attempt` (1-based) waits `base_seconds * 2 ** (attempt - 1)`, at most `cap_seconds`; with
    `jitter`, a random wait between half of that and all of it, so that clients refused together do not come back
    together (a loop waiting for something local needs none). A failure that carries `retry_after` (seconds the
    other side asked for, see `client.transport.retry_after`) waits that long instead, capped the same. A retry
    happens only within `max_retries` (None: no count) and if its wait ends within `max_seconds` of the first
    attempt and before the loop's `deadline`, if it has one.
    """

    max_retries: int | None
    max_seconds: float
    base_seconds: float
    cap_seconds: float = 60.0
    jitter: bool = True

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        if retry_after is not None:
            return min(retry_after, self.cap_seconds)
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling) if self.jitter else ceiling

    def allows(self, attempt: int, started: float, delay: float, deadline: float | None = None) -> bool:
        """Whether retry `attempt` may wait `delay` s: within the count and total time since `started`, and before
        `deadline` when there is one (both time.monotonic() instants)."""
        now = time.monotonic()
        return (
            (self.max_retries is None or attempt <= self.max_retries)
            and now - started + delay <= self.max_seconds
            and (deadline is None or now + delay < deadline)
        )

    def retrying(
        self,
        retry: tenacity.retry_base,
        *,
        deadline: float | None = None,
        before_sleep: Callable[[tenacity.RetryCallState], None] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> tenacity.Retrying:
        """A tenacity loop under this policy: `retry` says which outcomes are transient, `before_sleep` may say why it
        waits, `sleep` may wait in a way that can be cut short (time.sleep by default). When the policy gives up, the
        last error is raised as it is (a last unwanted result: tenacity.RetryError)."""
        options: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
        return tenacity.Retrying(
            retry=retry,
            wait=self._wait,
            stop=lambda state: not self.allows(state.attempt_number, state.start_time, state.upcoming_sleep, deadline),
            before_sleep=before_sleep,
            reraise=True,
            **options,
        )

    def _wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None and state.outcome.failed else None
        return self.delay(state.attempt_number, getattr(error, "retry_after", None))
