"""The hook's calls as docs/hook.md shows them; tests/dags/test_doc_examples.py runs `tour` against the sandbox."""

from __future__ import annotations

from typing import Any


def tour(entry: dict[str, Any]) -> dict[str, Any]:
    """Read each way the hook offers, then create, complete, reopen and delete `entry` (a TimeEntry)."""
    # [START hook]
    import pendulum

    from airflow_provider_acumatica.client.queries import and_, eq, ge
    from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook

    with AcumaticaHook("acumatica_company") as hook:  # signs out on exit
        since = pendulum.datetime(2026, 1, 1, tz="America/New_York")
        active = list(
            hook.iter_entity(
                "Project", filter=and_(ge("LastModifiedDateTime", since), eq("Status", "Active")), expand=["Tasks"]
            )
        )
        page = hook.get_entity_page("TimeEntry", select=["TimeEntryID", "TimeSpent"], top=500, skip=0)
        batch = hook.get_entity_batch("TimeEntry", top=2000, skip=0)  # the same page held by field (see below)
        stamps = hook.get_entity_values("TimeEntry", "LastModifiedDateTime", top=50_000)  # one field, no records
        tasks = list(hook.iter_odata("PMTask", kind="dac", filter=ge("LastModifiedDateTime", since)))
        sets = hook.get_odata_metadata()  # {"PMTask": ODataEntitySet(key=..., properties={col: Edm type}, ...)}

        created = hook.put_entity("TimeEntry", entry, mode="insert")  # upsert | insert | update
        hook.invoke_action("TimeEntry", "CompleteTimeEntry", {"id": created["id"]})
        hook.invoke_action("TimeEntry", "OpenTimeEntry", {"id": created["id"]})  # reopened, it may be deleted
        hook.delete_entity("TimeEntry", created["id"])
        deleted = list(hook.iter_deleted_records("PMTask", since=since))  # tracked DACs: {"RefNoteID", "DeleteDate"}
    # [END hook]
    return {
        "active": active,
        "page": page,
        "batch": batch,
        "stamps": stamps,
        "tasks": tasks,
        "sets": sets,
        "created": created,
        "deleted": deleted,
    }
