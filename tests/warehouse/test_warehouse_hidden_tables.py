"""The lock that tells a live load's hidden table from one a killed load left behind: real files, a real process."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

from airflow_provider_acumatica.warehouse.hidden_tables import HiddenTableLock, drop_left_behind

HOLDER = textwrap.dedent("""
    import sys
    from airflow_provider_acumatica.warehouse.hidden_tables import HiddenTableLock
    lock = HiddenTableLock.acquire(sys.argv[1])
    print("held" if lock else "refused", flush=True)
    sys.stdin.read()  # until killed
""")


def test_a_held_lock_is_refused_to_anyone_else_until_released(tmp_path):
    path = str(tmp_path / "warehouse.db-_acumatica_new_t_0.lock")
    held = HiddenTableLock.acquire(path)
    assert held is not None
    assert HiddenTableLock.acquire(path) is None, "another open of the file, in this very process, is refused"
    held.release()
    assert not (tmp_path / "warehouse.db-_acumatica_new_t_0.lock").exists()
    again = HiddenTableLock.acquire(path)
    assert again is not None
    again.release()
    again.release()  # a second release is a no-op


def test_a_killed_holder_frees_its_lock_but_leaves_its_file(tmp_path):
    """What a SIGKILL leaves: the file, no longer locked, which the next load takes (then removes)."""
    path = str(tmp_path / "lock")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == "held\n"
        assert HiddenTableLock.acquire(path) is None
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (tmp_path / "lock").exists()
    taken = HiddenTableLock.acquire(path)
    assert taken is not None
    taken.release()
    assert not (tmp_path / "lock").exists()


def test_only_hidden_tables_whose_lock_is_free_are_dropped_each_under_its_lock(tmp_path, caplog):
    """A leftover (its file unlocked) is dropped while its lock is held, then its file is gone; a live load's table
    (its lock held) and one without a lock file (a database in memory) stay."""
    caplog.set_level("INFO", logger="airflow_provider_acumatica.warehouse")
    leftover, live = str(tmp_path / "db-leftover.lock"), str(tmp_path / "db-live.lock")
    open(leftover, "wb").close()  # what a killed load leaves: the file, unlocked
    held = HiddenTableLock.acquire(live)
    dropped = []

    def drop(name):
        assert HiddenTableLock.acquire(leftover) is None, "the lock is held while the table is dropped"
        dropped.append(name)

    try:
        drop_left_behind({"leftover": leftover, "live": live, "in_memory": None}, drop, "Table t, tenant 'C'")
    finally:
        held.release()
    assert dropped == ["leftover"]
    assert not (tmp_path / "db-leftover.lock").exists()
    assert "Table t, tenant 'C': dropping 'leftover', left by a load that did not finish" in caplog.text
    assert "Table t, tenant 'C': 'live' belongs to a load still running" in caplog.text
    assert "'in_memory' belongs to a load still running" in caplog.text
