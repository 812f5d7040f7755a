"""How fast MedDL answers before any work: ``meddl --help``, ``meddl init tabular`` and a config mistake in
``meddl train`` (a typo in the experiment file), each the median wall time of a few fresh processes. The issue's
goal is under 1 s for each.

    python benchmarks/startup.py [--repeats 5]        # prints one JSON line
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_S = 1.0


def _timed(args: list[str], cwd: Path, repeats: int) -> dict:
    times, codes = [], set()
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "meddl", *args], cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        codes.add(done.returncode)
    return {"median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3), "exit_codes": sorted(codes)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        (cwd / "exp.yaml").write_text("task: binary\ndata:\n  path: x.csv\n  target: y\ntrain:\n  epoch: 3\n")
        figures = {
            "help": _timed(["--help"], cwd, args.repeats),
            "init": _timed(["init", "tabular"], cwd, args.repeats),
            "config_error": _timed(["train", "exp.yaml"], cwd, args.repeats),
        }
    figures["meets_goal"] = all(entry["median_s"] < GOAL_S for entry in figures.values())  # type: ignore[union-attr]
    print(json.dumps({"benchmark": "startup", "goal_s": GOAL_S, **figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
