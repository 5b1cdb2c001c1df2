"""Payroll publishing: approved time activities in the warehouse become Acumatica time entries, exactly once.

`source` selects a tenant's approved activities of a pay period, `rules` checks them, `entries` maps them to
time entries, `push_log` and `run_lock` remember and guard what was sent, and `publisher` sends them.
"""
