"""Does bf16 autocast keep the demo's test metrics? Each demo experiment trained twice on the same split and seed,
``train.precision: 32`` and ``bf16-mixed``; the bf16 run's main metric must fall inside the fp32 run's bootstrap CI
(what ``train.precision: auto`` relies on), and the training time of each is reported.

``motifs-seed_attention`` (the founding document's attention model on the motif data) is compared with ``auto``
instead: its LSTM stays fp32 and only its attention runs in bf16 while it trains.

On a CPU without AVX-512 BF16 or AMX, bf16 autocast is emulated and slow: the script says so and measures anyway.

    python benchmarks/precision.py [--quick]      # prints one JSON line
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from _demo_runs import demo_runs  # benchmarks/_demo_runs.py, beside this script

from meddl import Experiment
from meddl.evaluate import higher_is_better, main_metric
from meddl.train.runtime import bf16_supported

ATTENTION_RUN = "motifs-seed_attention"  # the motif experiment with model.arch: seed_attention, 32 against auto


def _experiments(folder: Path, quick: bool, only: list[str] | None) -> list[tuple[str, Path]]:
    # only the data the asked runs need is written (the attention run is the motif data's)
    wanted = ["tables", "images", "genomics", "signals", "ehr"] if only is None else only
    runs = demo_runs(folder, quick, ["genomics" if name == ATTENTION_RUN else name for name in wanted])
    motifs = next((path for name, path in runs if name.startswith("motifs-")), None)
    if motifs is not None:
        attention = motifs.with_name("seed_attention.yaml")
        raw = yaml.safe_load(motifs.read_text())
        raw["model"] = {"arch": "seed_attention"}
        raw.setdefault("preprocess", {}).update(encoding="kmer", k=3)  # tokens, as the template says for this model
        attention.write_text(yaml.safe_dump(raw))
        runs.append((ATTENTION_RUN, attention))
    return [(name, path) for name, path in runs if only is None or name in only]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the demo's quick sizes and epochs")
    parser.add_argument("--only", nargs="+", help="these runs only (e.g. motifs-seed_attention)")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in _experiments(Path(tmp), args.quick, args.only):
            base = yaml.safe_load(path.read_text())
            base.setdefault("evaluate", {}).update(robustness=False)
            base["train"]["progress"] = False
            row: dict[str, Any] = {}
            low_precision = "auto" if name == ATTENTION_RUN else "bf16-mixed"
            for precision in ("32", low_precision):
                experiment = copy.deepcopy(base)
                experiment["train"]["precision"] = precision
                result = Experiment.from_dict(experiment, base_dir=path.parent).run(
                    Path(tmp) / "runs" / name / precision
                )
                metric = main_metric(result.record["task"])
                figure = result.metrics["test"][metric]
                row[precision] = {
                    "metric": metric,
                    "value": round(figure["value"], 4),
                    "ci": [round(v, 4) for v in figure["ci"]],
                    "precision_note": result.record["training"].get("precision_note"),
                    "train_seconds": result.record["training"]["seconds"],
                    "epochs": result.record["training"]["epochs_run"],
                }
            fp32, bf16 = row["32"], row[low_precision]
            low, high = fp32["ci"]
            row["bf16_inside_fp32_ci"] = bool(low <= bf16["value"] <= high)
            better = 1 if higher_is_better(fp32["metric"]) else -1
            row["bf16_minus_fp32"] = round(better * (bf16["value"] - fp32["value"]), 4)
            row["time_ratio_fp32_over_bf16"] = round(fp32["train_seconds"] / max(bf16["train_seconds"], 1e-9), 3)
            results[name] = row
    print(
        json.dumps(
            {
                "benchmark": "precision",
                "cpu_bf16_hardware": bf16_supported("cpu"),
                "all_inside": all(r["bf16_inside_fp32_ci"] for r in results.values()),
                "runs": results,
            }
        )
    )


if __name__ == "__main__":
    main()
