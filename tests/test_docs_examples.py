"""The docs' code blocks are the tested files they name (scripts/docs_examples.py), so examples cannot drift."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_example_block_of_the_docs_equals_the_file_it_shows():
    checked = subprocess.run(
        [sys.executable, "scripts/docs_examples.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_changed_example_file_is_reported(tmp_path):
    """The check fails when a block differs (run on a copy of the tree's docs and a changed example)."""
    copy = tmp_path / "tree"
    (copy / "scripts").mkdir(parents=True)
    (copy / "docs" / "examples").mkdir(parents=True)
    (copy / "scripts" / "docs_examples.py").write_bytes((ROOT / "scripts" / "docs_examples.py").read_bytes())
    (copy / "README.md").write_text("# x\n", encoding="utf-8")
    (copy / "docs" / "guide.md").write_text(
        "<!-- example: docs/examples/a.py#call -->\n```python\nrun(1)\n```\n", encoding="utf-8"
    )
    (copy / "docs" / "examples" / "a.py").write_text(
        "def f():\n    # [START call]\n    run(2)\n    # [END call]\n", encoding="utf-8"
    )
    script = [sys.executable, "scripts/docs_examples.py"]
    checked = subprocess.run([*script, "--check"], cwd=copy, capture_output=True, text=True)
    assert checked.returncode == 1 and "docs/guide.md" in checked.stdout
    assert subprocess.run(script, cwd=copy).returncode == 0
    assert (copy / "docs" / "guide.md").read_text(encoding="utf-8").endswith("```python\nrun(2)\n```\n")
