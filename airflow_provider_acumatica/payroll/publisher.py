"""Sends checked activities to Acumatica as time entries, exactly once.

For each activity: its entry is looked up by `ExternalRefNbr` (in batches); none -> created insert-only, then
completed unless held; one that holds the same content -> left alone (completed if it should be); one that
differs -> updated (update-only) if still Open, reported `locked` if Completed. A write whose answer is lost is
never sent again blindly: the entry is looked up, and only when Acumatica has none is it created again. Every
outcome is written to the push log as soon as it is known. Callers hold the tenant's run lock around `publish`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from airflow_provider_acumatica.client.errors import AcumaticaApiError, AcumaticaError, AcumaticaValidationError
from airflow_provider_acumatica.client.queries import eq, or_
from airflow_provider_acumatica.payroll.entries import (
    COMPLETED,
    ENTITY,
    PublishSettings,
    external_ref,
    matches,
    payload_hash,
    time_entry,
)
from airflow_provider_acumatica.payroll.push_log import DONE, Outcome, PushLog
from airflow_provider_acumatica.payroll.rules import Activity

LOOKUP_BATCH = 40
"""External references looked up per request (the filter stays a few kilobytes)."""
COMPLETE_ACTION = "CompleteTimeEntry"
_LOOKUP_FIELDS = (
    "TimeEntryID",
    "ApprovalStatus",
    "ExternalRefNbr",
    "Employee",
    "Date",
    "ProjectID",
    "ProjectTaskID",
    "CostCode",
    "EarningType",
    "LaborItem",
    "TimeSpent",
    "BillableTime",
    "Billable",
    "Summary",
)


@dataclass(frozen=True)
class _Push:
    """One activity about to be pushed: its entry, external reference, payload hash and last logged outcome."""

    activity: Activity
    entry: dict[str, Any]
    ref: str
    hash: str
    previous: Outcome | None

    def outcome(self, status: str, time_entry_id: str | None = None, error: str | None = None) -> Outcome:
        return Outcome(self.activity.activity_id, status, self.ref, time_entry_id, self.hash, error)


class Publisher:
    """Pushes one tenant's activities through `hook` (an AcumaticaHook); `push_log` None in a dry run."""

    def __init__(
        self, hook: Any, settings: PublishSettings, push_log: PushLog | None, *, describe: str, logger: logging.Logger
    ) -> None:
        self.hook = hook
        self.settings = settings
        self.push_log = push_log
        self.dry_run = push_log is None
        self.describe = describe
        self.log = logger

    def publish(self, activities: Sequence[Activity]) -> list[Outcome]:
        """Push every activity (in parallel, within the connection's licence) and return how each ended."""
        previous = self.push_log.previous(a.activity_id for a in activities) if self.push_log else {}
        pushes = [self._plan(activity, previous.get(activity.activity_id)) for activity in activities]
        settled = [push.outcome("unchanged", push.previous.time_entry_id) for push in pushes if _settled(push)]
        pending = [push for push in pushes if not _settled(push)]
        self.log.info(
            "%s: %d activities; %d unchanged since their last push, %d to look up in Acumatica",
            self.describe,
            len(pushes),
            len(settled),
            len(pending),
        )
        found = self._look_up([push.ref for push in pending])
        progress = _Progress(self.log, self.describe, len(pending), "entries sent" if not self.dry_run else "checked")
        with ThreadPoolExecutor(self.hook.max_concurrent_requests, thread_name_prefix="acumatica-payroll") as pool:
            outcomes = list(
                pool.map(lambda push: progress.done(self._push_and_log(push, found.get(push.ref, []))), pending)
            )
        return settled + outcomes

    def _plan(self, activity: Activity, previous: Outcome | None) -> _Push:
        entry = time_entry(activity, self.settings)
        return _Push(activity, entry, external_ref(activity.activity_id), payload_hash(entry, self.settings), previous)

    # -- one activity ---------------------------------------------------------------------------------
    def _push_and_log(self, push: _Push, records: list[dict]) -> Outcome:
        try:
            outcome = self._push(push, records)
        except AcumaticaValidationError as error:
            outcome = push.outcome("rejected", error=_field_errors(error))
        except AcumaticaError as error:
            outcome = push.outcome("failed", error=str(error))
        if outcome.status not in DONE:
            self.log.warning(
                "%s: activity %r: %s: %s", self.describe, push.activity.activity_id, outcome.status, outcome.error
            )
        if self.push_log is not None:
            self.push_log.record(outcome)
        return outcome

    def _push(self, push: _Push, records: list[dict]) -> Outcome:
        if len(records) > 1:
            ids = ", ".join(str(record.get("TimeEntryID")) for record in records)
            return push.outcome(
                "failed",
                error=f"{len(records)} time entries in Acumatica carry ExternalRefNbr "
                f"{push.ref} ({ids}); delete all but one there, then run again",
            )
        if records:
            return self._reconcile(push, records[0])
        if self.dry_run:
            return push.outcome("pushed")
        return self._create(push)

    def _create(self, push: _Push) -> Outcome:
        """Insert the entry; an answer lost on the way is resolved by a look-up, and a create sent again only
        when Acumatica has no such entry (we hold the tenant's lock: nobody else creates it meanwhile)."""
        for attempt in (1, 2):
            try:
                record = self.hook.put_entity(ENTITY, push.entry, mode="insert")
            except AcumaticaApiError as error:
                if not _answer_may_be_lost(error):
                    raise
                self.log.warning(
                    "%s: activity %r: the answer to its create was lost (%s); looking it up",
                    self.describe,
                    push.activity.activity_id,
                    error,
                )
                records = self._look_up_one(push.ref)
                if records:
                    return self._reconcile(push, records[0], created=True)
                if attempt == 2:
                    raise
                continue
            return self._finish(push, record, "pushed")
        raise AssertionError("unreachable")  # pragma: no cover

    def _reconcile(self, push: _Push, record: dict, *, created: bool = False) -> Outcome:
        """An entry Acumatica already has for this activity: leave, complete, update or report it locked."""
        entry_id = _entry_id(record)
        if matches(record, push.entry):
            return self._finish(push, record, "pushed" if created else _status_of_match(push))
        if record.get("ApprovalStatus") == COMPLETED:
            changed = ", ".join(
                field for field in push.entry if not matches({field: record.get(field)}, {field: push.entry[field]})
            )
            return push.outcome(
                "locked",
                entry_id,
                f"time entry {entry_id} is Completed in Acumatica and the activity "
                f"changed ({changed}); reopen it there (Open action) to let the "
                "next run update it",
            )
        if self.dry_run:
            return push.outcome("updated", entry_id)
        try:
            updated = self.hook.put_entity(
                ENTITY, {**push.entry, "id": record["id"], "TimeEntryID": entry_id}, mode="update"
            )
        except AcumaticaApiError as error:
            if not _answer_may_be_lost(error):
                raise
            again = self._look_up_one(push.ref)
            if not (again and matches(again[0], push.entry)):
                raise
            updated = again[0]
        return self._finish(push, updated, "updated")

    def _finish(self, push: _Push, record: dict, status: str) -> Outcome:
        """Complete the entry when the settings say so and it is still Open; the outcome."""
        entry_id = _entry_id(record)
        if self.settings.hold or record.get("ApprovalStatus") == COMPLETED or self.dry_run:
            return push.outcome(status, entry_id)
        try:
            self.hook.invoke_action(ENTITY, COMPLETE_ACTION, {"id": record["id"]})
        except AcumaticaApiError as error:
            if not _is_completed(self._look_up_one(push.ref)):
                return push.outcome(
                    "failed",
                    entry_id,
                    f"saved as time entry {entry_id} but not completed ({error}); the next run completes it",
                )
        return push.outcome(status, entry_id)

    # -- look-ups -------------------------------------------------------------------------------------
    def _look_up(self, refs: list[str]) -> dict[str, list[dict]]:
        """Acumatica's entries for these external references, in batches read in parallel."""
        batches = [refs[start : start + LOOKUP_BATCH] for start in range(0, len(refs), LOOKUP_BATCH)]
        found: dict[str, list[dict]] = {}
        with ThreadPoolExecutor(self.hook.max_concurrent_requests, thread_name_prefix="acumatica-lookup") as pool:
            for records in pool.map(self._entries_with, batches):
                for record in records:
                    found.setdefault(record.get("ExternalRefNbr"), []).append(record)
        return found

    def _look_up_one(self, ref: str) -> list[dict]:
        return self._entries_with([ref])

    def _entries_with(self, refs: list[str]) -> list[dict]:
        if not refs:
            return []
        condition = eq("ExternalRefNbr", refs[0]) if len(refs) == 1 else or_(*(eq("ExternalRefNbr", r) for r in refs))
        return list(self.hook.iter_entity(ENTITY, filter=condition, select=_LOOKUP_FIELDS))


class _Progress:
    """Logs entries done of the total and the rate, about twenty times a run."""

    def __init__(self, log: logging.Logger, describe: str, total: int, what: str) -> None:
        self.log, self.describe, self.total, self.what = log, describe, total, what
        self.count = 0
        self.every = max(1, total // 20)
        self.started = time.monotonic()
        self.lock = threading.Lock()

    def done(self, outcome: Outcome) -> Outcome:
        with self.lock:
            self.count += 1
            if self.count % self.every == 0 or self.count == self.total:
                rate = self.count / max(time.monotonic() - self.started, 1e-9)
                self.log.info("%s: %d of %d %s (%.1f/s)", self.describe, self.count, self.total, self.what, rate)
        return outcome


def _settled(push: _Push) -> bool:
    """Pushed before with the same payload: nothing to do, not even a look-up."""
    return push.previous is not None and push.previous.status in DONE and push.previous.payload_hash == push.hash


def _status_of_match(push: _Push) -> str:
    """Acumatica already holds this payload: whose push was it? Unrecorded -> pushed; recorded with another
    payload -> updated (the update went through, its log line did not); else unchanged."""
    previous = push.previous
    if previous is None or previous.status not in DONE:
        return "pushed"
    return "unchanged" if previous.payload_hash == push.hash else "updated"


def _answer_may_be_lost(error: AcumaticaApiError) -> bool:
    """No answer, or a server error: the write may have been carried out."""
    return error.status is None or error.status >= 500


def _is_completed(records: list[dict]) -> bool:
    return len(records) == 1 and records[0].get("ApprovalStatus") == COMPLETED


def _entry_id(record: dict) -> str | None:
    value = record.get("TimeEntryID") or record.get("id")
    return None if value is None else str(value)


def _field_errors(error: AcumaticaValidationError) -> str:
    """Acumatica's 422 as `Field: error` pairs (its message when it names no field)."""
    if error.field_errors:
        return "; ".join(f"{field}: {message}" for field, message in error.field_errors.items())
    return error.message
