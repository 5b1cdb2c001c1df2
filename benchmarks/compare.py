"""Run the benchmarks at two commits side by side, to check that a change made nothing slower.

Each benchmark runs at the base commit (a git worktree with its own venv, made by `make install`) and at this
tree, alternately and `--rounds` times, at the quick sizes of QUICK. Printed per benchmark: the best wall time of
each side and their ratio (this tree / base; over 1.05 is flagged), then each line of the benchmark's own output
that carries a ratio ("1.62x"), base beside this tree. Full outputs go to `--output`.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICK: dict[str, list[str]] = {
    "bench_commit.py": ["--rows", "200000"],
    "bench_dag_parse.py": [],
    "bench_extract_load.py": ["--sizes", "200000", "--latency-rows", "0"],
    "bench_hook.py": [],
    "bench_payroll.py": ["--entries", "300"],
    "bench_read_plan.py": ["--sizes", "20000", "--floor-rows", "0"],
    "bench_sandbox.py": ["--rows", "200000"],
    "bench_warehouse.py": ["--rows", "200000", "--staging-batches", "200"],
}
RATIO = re.compile(r"\d+\.\d+x\b")
TOLERANCE = 1.05


def base_tree(commit: str, path: Path) -> Path:
    """A worktree of `commit` at `path` with its own venv (the package is installed editable, per tree)."""
    if not path.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(path), commit], cwd=ROOT, check=True)
    installed = subprocess.run(["make", "install"], cwd=path, capture_output=True, text=True)
    if installed.returncode:
        raise SystemExit(f"make install failed in {path}:\n{installed.stderr[-2000:]}")
    return path


def run(tree: Path, bench: str, output: Path) -> float:
    """Wall seconds of one benchmark run in `tree`; its output appended to `output`."""
    started = time.perf_counter()
    with output.open("a", encoding="utf-8") as sink:
        done = subprocess.run(
            [str(tree / ".venv" / "bin" / "python"), f"benchmarks/{bench}", *QUICK[bench]],
            cwd=tree,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    if done.returncode:
        raise SystemExit(f"{bench} failed in {tree} (see {output})")
    return time.perf_counter() - started


def ratio_lines(output: Path) -> list[str]:
    return [line.strip() for line in output.read_text(encoding="utf-8").splitlines() if RATIO.search(line)]


def main() -> int:
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--base", default="HEAD~1", help="the commit to compare with (default: the previous one)")
    cli.add_argument("--base-tree", type=Path, default=Path("/tmp/acumatica-bench-base"))
    cli.add_argument("--rounds", type=int, default=2)
    cli.add_argument("--output", type=Path, default=ROOT / ".benchmarks")
    cli.add_argument("benches", nargs="*", default=sorted(QUICK))
    args = cli.parse_args()
    base = base_tree(args.base, args.base_tree)
    args.output.mkdir(exist_ok=True)
    worse = []
    for bench in args.benches:
        walls = {"base": [], "head": []}
        outputs = {side: args.output / f"{bench}.{side}.txt" for side in walls}
        for path in outputs.values():
            path.unlink(missing_ok=True)
        for _ in range(args.rounds):
            for side, tree in (("base", base), ("head", ROOT)):
                walls[side].append(run(tree, bench, outputs[side]))
        ratio = min(walls["head"]) / min(walls["base"])
        flag = "  WORSE" if ratio > TOLERANCE else ""
        print(f"{bench}: base {min(walls['base']):.1f} s, this tree {min(walls['head']):.1f} s, {ratio:.2f}x{flag}")
        for before, after in zip(ratio_lines(outputs["base"]), ratio_lines(outputs["head"])):
            print(f"    base: {before}\n    this: {after}")
        if flag:
            worse.append(bench)
    print(f"worse by more than {TOLERANCE - 1:.0%}: {', '.join(worse) or 'none'}")
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main())
