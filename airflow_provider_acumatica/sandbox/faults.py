"""Injected faults: 500, 503, dropped connection, slow answer, truncated body, login limit, a mutation
applied right before answering a matching request (a change in the middle of a client's paging), a
long-running action, and $skip ignored.

`long_running` makes a matching action a long operation, as Acumatica runs e.g. releases: the POST answers
202 with a `Location` of its status, which answers 202 for `polls` checks; the next check applies the action
and answers 204 (or the action's error, if it is no longer allowed then).

`ignore_skip` answers a matching list request (REST entity or OData) as if it had no $skip: every page
is the first page, as behind some misconfigured proxies or customizations. Real Acumatica honours $skip:
this fault exists only to test how a client copes with a hostile server.

`phase: "after"` fires a `drop`, `500` or `503` once the request has been carried out: a write is applied and
then its answer is lost, as when a connection breaks after Acumatica saved a record (the crash a client must
resolve by looking the record up, never by writing again)."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

from airflow_provider_acumatica.sandbox.errors import ApiError, number_field

KINDS = ("500", "503", "drop", "slow", "truncate", "login_limit", "mutate", "long_running", "ignore_skip")
PHASES = ("before", "after")
AFTER_KINDS = ("500", "503", "drop")


@dataclass
class Fault:
    """One armed fault: fires on `count` matching requests, or on each with probability `rate`."""

    kind: str
    count: int | None = 1
    rate: float | None = None
    path_contains: str | None = None
    delay_ms: int = 2000
    mutation: dict | None = None
    polls: int = 2
    """For `long_running`: status checks answered 202 before the action is applied."""
    method: str | None = None
    """Only requests of this HTTP method match (e.g. PUT: a write, not the look-ups around it)."""
    phase: str = "before"
    """`after`: the request is carried out, then the fault replaces its answer (drop, 500, 503 only)."""
    id: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def matches(self, method: str, path: str, is_login: bool) -> bool:
        if self.kind == "login_limit" and not is_login:
            return False
        if self.method is not None and self.method != method:
            return False
        return self.path_contains is None or self.path_contains in path


def fault_from_options(options: dict, seed: int, fault_id: int) -> Fault:
    """A Fault from the control API's JSON; ApiError(400) naming the bad option."""
    kind = str(options.get("kind"))
    if kind not in KINDS:
        raise ApiError(400, f"faults: unknown kind {options.get('kind')!r}; kinds are {list(KINDS)}")
    unknown = set(options) - {
        "kind",
        "count",
        "rate",
        "path_contains",
        "delay_ms",
        "mutation",
        "polls",
        "phase",
        "method",
    }
    if unknown:
        raise ApiError(400, f"faults: unknown option(s) {sorted(unknown)}")
    rate = None if options.get("rate") is None else number_field(options, "rate", None, float, "faults")
    if rate is not None and not 0 < rate <= 1:
        raise ApiError(400, f"faults: rate must be in (0, 1], got {rate!r}")
    count = None if rate is not None else number_field(options, "count", 1, int, "faults")
    mutation = options.get("mutation")
    if kind == "mutate" and not (isinstance(mutation, dict) and {"tenant", "entity", "op"} <= set(mutation)):
        raise ApiError(
            400, "faults: kind 'mutate' needs mutation {tenant, entity, op: insert|update|delete, random: N}"
        )
    polls = number_field(options, "polls", 2, int, "faults")
    if polls < 0:
        raise ApiError(400, f"faults: polls must be 0 or more, got {polls}")
    delay_ms = number_field(options, "delay_ms", 2000, int, "faults")
    phase = options.get("phase", "before")
    if phase not in PHASES or (phase == "after" and kind not in AFTER_KINDS):
        raise ApiError(
            400,
            f"faults: phase {phase!r} is not allowed for kind {kind!r}; "
            f"phases are {list(PHASES)}, and 'after' goes with kinds {list(AFTER_KINDS)}",
        )
    method = options.get("method")
    if method is not None and method not in ("GET", "PUT", "POST", "DELETE"):
        raise ApiError(400, f"faults: method {method!r} is not one of GET, PUT, POST, DELETE")
    fault = Fault(kind, count, rate, options.get("path_contains"), delay_ms, mutation, polls, method, phase, fault_id)
    fault.rng = random.Random(f"{seed}:fault:{fault_id}")
    return fault


class FaultBook:
    """The armed faults; `take` picks those that fire for one request."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._held = 0  # requests sleeping in a slow fault now
        self._held_changed = threading.Condition(self._lock)
        self._added = 0

    def add(self, options: dict) -> int:
        """Arm a fault; ids (and so the seeded rate draws) count from 1 in each sandbox."""
        with self._lock:
            self._added += 1
            fault = fault_from_options(options, self.seed, self._added)
            self._faults.append(fault)
        return fault.id

    def clear(self) -> None:
        """Disarm every fault and wake requests sleeping in a slow fault."""
        with self._lock:
            self._faults.clear()
            released, self._released = self._released, threading.Event()
        released.set()

    def hold(self, delay_ms: int) -> None:
        """Sleep in a slow fault until `delay_ms` pass or `clear` wakes the request (counted for `wait_held`)."""
        with self._lock:
            released = self._released
            self._held += 1
            self._held_changed.notify_all()
        try:
            released.wait(delay_ms / 1000)
        finally:
            with self._lock:
                self._held -= 1
                self._held_changed.notify_all()

    def wait_held(self, count: int, timeout: float) -> int:
        """Wait until at least `count` requests sleep in a slow fault, at most `timeout` s; how many do.
        Tests use it to act while a request is surely held, with no sleep and no polling."""
        with self._held_changed:
            self._held_changed.wait_for(lambda: self._held >= count, timeout)
            return self._held

    def take(self, method: str, path: str, is_login: bool) -> list[Fault]:
        """The faults firing for this request (each spends one of its `count`)."""
        fired = []
        with self._lock:
            for fault in list(self._faults):
                if not fault.matches(method, path, is_login):
                    continue
                if fault.rate is not None:
                    if fault.rng.random() < fault.rate:
                        fired.append(fault)
                    continue
                fault.count -= 1
                fired.append(fault)
                if fault.count <= 0:
                    self._faults.remove(fault)
        return fired
