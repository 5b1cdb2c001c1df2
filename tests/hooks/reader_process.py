"""A worker process for the hook tests: reads through AcumaticaHook like a task would.

Usage: reader_process.py CONN_ID kill   -> stream TimeEntry; print "first-page" after the first page; on
                                           SIGTERM call hook.close() (as Airflow's on_kill does) and exit.
       reader_process.py CONN_ID SECONDS -> read pages for SECONDS seconds; print the number of pages.
"""

from __future__ import annotations

import signal
import sys
import time

from airflow_provider_acumatica.hooks.acumatica import AcumaticaHook


def stream_until_killed(hook: AcumaticaHook) -> None:
    def on_term(signum, frame):
        hook.close()
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, on_term)
    for index, _record in enumerate(hook.iter_entity("TimeEntry", page_size=5)):
        if index == 4:
            print("first-page", flush=True)
    print("finished-without-kill", flush=True)


def read_for(hook: AcumaticaHook, seconds: float) -> None:
    pages, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert len(hook.get_entity_page("Project", top=5, skip=pages % 3)) == 5
        pages += 1
    print(pages, flush=True)


if __name__ == "__main__":
    conn_id, mode = sys.argv[1], sys.argv[2]
    with AcumaticaHook(conn_id) as acumatica:
        if mode == "kill":
            stream_until_killed(acumatica)
        else:
            read_for(acumatica, float(mode))
