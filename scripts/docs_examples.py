"""Keep the code blocks of the docs equal to the tested files they show.

A block preceded by ``<!-- example: docs/examples/sync_dag.py#dag -->`` shows that file's lines between
``# [START dag]`` and ``# [END dag]``, dedented (the whole file without ``#region``). Tests run the files, so the
docs show code that works. ``--check`` (run by the tests) lists the blocks that differ; without it the blocks are
rewritten from the files.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^<!-- example: (?P<path>[^#\s]+)(?:#(?P<region>[\w-]+))? -->\n(?P<fence>```\w*\n)", re.M)


def region(path: str, name: str | None) -> str:
    """The lines of `path` the docs show: the region `name`, dedented, or the whole file."""
    text = (ROOT / path).read_text(encoding="utf-8")
    if name is None:
        return text
    found = re.search(rf"^[ \t]*# \[START {name}\]\n(.*?)^[ \t]*# \[END {name}\]\n", text, re.S | re.M)
    if found is None:
        raise SystemExit(f"{path}: no region {name!r} (# [START {name}] ... # [END {name}])")
    return textwrap.dedent(found.group(1))


def refreshed(document: Path) -> str:
    """`document` with each example block replaced by the current text of its file."""
    text = document.read_text(encoding="utf-8")
    parts, position = [], 0
    for marker in MARKER.finditer(text):
        body_start = marker.end()
        body_end = text.index("```\n", body_start)
        parts += [text[position:body_start], region(marker["path"], marker["region"])]
        position = body_end
    return "".join(parts) + text[position:]


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="list the blocks that differ; change nothing")
    args = parser.parse_args(argv)
    stale = []
    for document in documents():
        text = refreshed(document)
        if text != document.read_text(encoding="utf-8"):
            stale.append(document.relative_to(ROOT))
            if not args.check:
                document.write_text(text, encoding="utf-8")
    if args.check and stale:
        names = ", ".join(map(str, stale))
        print(f"Code blocks differ from the files they show in: {names}. Run: python scripts/docs_examples.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
