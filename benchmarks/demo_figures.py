"""The README's demo figures, from an actual run: every demo part's test metrics with CIs, its time, and the
machine it ran on, as one JSON line (``make figures``). It runs the demo as ``meddl demo`` does: parts side by side
in lanes, each in its own process on a fixed share of the cores, so a part's figures do not depend on which lane
ran it, and they reproduce on one machine (a test runs two parts twice). CPU kernels and the share of cores
differ between machines, so another machine may give slightly different numbers — compare with the machine and
the lanes recorded here.

    python benchmarks/demo_figures.py [--quick] [--lanes N] [--out runs/demo-figures]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from meddl.demo import DEMO_PARTS, demo_lanes, run_demo


def _machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "system": f"{platform.system()} {platform.release()}",
    }


def _headline(entry: dict) -> dict:
    return {"value": round(entry["value"], 3), "ci": [round(c, 3) for c in entry["ci"]]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the demo's quick mode (a smoke run)")
    parser.add_argument("--out", type=Path, default=Path("runs/demo-figures"))
    parser.add_argument("--lanes", type=int, default=None, help="as `meddl demo --lanes` (default: one per core)")
    args = parser.parse_args(argv)
    lanes, threads = demo_lanes(len(DEMO_PARTS), args.lanes)
    started = time.perf_counter()
    rows = run_demo(args.out, quick=args.quick, lanes=args.lanes, log=lambda m: print(m, file=sys.stderr))
    total = time.perf_counter() - started
    parts: dict = {}
    for row in rows:
        test = row["metrics"]["test"]
        main_metric = next(iter(test))
        for name in ("auroc", "c_index", "dice", "mae", "rmse"):
            if name in test:
                main_metric = name
                break
        entry = parts.setdefault(row["part"], {"seconds": row["part_seconds"], "runs": []})
        entry["runs"].append(
            {"dataset": row["dataset"], "model": row["model"], main_metric: _headline(test[main_metric])}
        )
    record = {
        "benchmark": "demo_figures",
        "quick": args.quick,
        "machine": _machine(),
        "lanes": lanes,
        "threads_per_lane": threads,
        "total_seconds": round(total, 1),
        "parts": parts,
    }
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
