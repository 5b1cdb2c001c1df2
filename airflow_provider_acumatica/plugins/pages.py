"""The plugin's HTML pages: small, self-contained, every value escaped (none of them ever holds a secret)."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1a202c;max-width:72rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
.ok{color:#1c7c3c}.bad{color:#b42318}.muted{color:#667085}
.box{border:1px solid #d0d5dd;border-radius:8px;padding:1rem 1.25rem;margin:1rem 0}
.box.ok{border-color:#1c7c3c;background:#ecfdf3}.box.bad{border-color:#b42318;background:#fef3f2}
table{border-collapse:collapse;margin:.5rem 0}
th,td{border-bottom:1px solid #eaecf0;padding:.35rem .7rem;text-align:left}
th{background:#f9fafb;font-weight:600}code{background:#f2f4f7;padding:.1rem .3rem;border-radius:4px}
a.button{display:inline-block;background:#017cee;color:#fff;padding:.5rem 1rem;border-radius:6px;text-decoration:none}
"""


def page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def text(value: object) -> str:
    return html.escape("" if value is None else str(value))


def when(instant: datetime | float | None) -> str:
    """A UTC instant, to the second; '—' for none."""
    if instant is None or instant == 0:
        return "—"
    if not isinstance(instant, datetime):
        instant = datetime.fromtimestamp(float(instant), timezone.utc)
    return instant.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float | None) -> str:
    """A lag in the largest sensible units: '3 d 4 h', '2 h 5 min', '40 s'."""
    if seconds is None:
        return "—"
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else f"{secs} s"


def table(headers: Sequence[str] | None, rows: Iterable[Sequence[str]]) -> str:
    """An HTML table (no header row when `headers` is None); cells are already escaped markup."""
    head = "".join(f"<th>{html.escape(name)}</th>" for name in headers or ())
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table>{f'<thead><tr>{head}</tr></thead>' if head else ''}<tbody>{body}</tbody></table>"


def box(kind: str, markup: str) -> str:
    return f"<div class='box {kind}' id='outcome'>{markup}</div>"
