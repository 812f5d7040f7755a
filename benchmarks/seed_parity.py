"""The founding document's three Keras models against MedDL's ``seed_cnn``, ``seed_lstm`` and ``seed_attention``:
training throughput (samples/s, steady: after one warm-up epoch), each side in its own process, alternating, the same
thread count, synthetic data of the seed's shapes, batch 32.

    A  Conv2D(32/64/128) + pools → Dense(512) → Dense(1, sigmoid)   on 224×224×3 images (binary cross-entropy)
    B  LSTM(64, return_sequences) ×2 → LSTM(64) → Dense(1)           on 100 steps × 1 channel (MSE)
    C  Embedding(65, 64) → LSTM(64, return_sequences) → Attention →   on 200 tokens (binary cross-entropy)
       global average pool → Dense(1, sigmoid)  (the document's model made runnable: its attention needs the
       sequence, so the LSTM returns it, and a pool turns the attended sequence into one vector)

MedDL trains with its own ``Trainer`` as ``meddl train`` does (``train.precision``: ``auto`` by default here, i.e.
bf16 where the CPU has AVX-512 BF16 or AMX). For model A the script also prints the share of the arithmetic limit
each side reaches: training FLOPs per sample (3 × the forward pass, counted layer by layer) times samples/s, over
the measured peak of a large fp32 (and bf16) matmul on the same threads.

TensorFlow is never a MedDL dependency. The script runs Keras in a throw-away virtual environment:

    python3 -m venv /tmp/keras-env && /tmp/keras-env/bin/pip install tensorflow-cpu
    .venv/bin/python benchmarks/seed_parity.py --keras-python /tmp/keras-env/bin/python [--pairs 3] [--threads 2]

``--meddl-threads auto`` lets MedDL choose its threads (beside busy neighbours it takes only the idle
cores). ``--busy N`` adds N busy neighbours (processes spinning on the CPU) for the whole measurement; after
each MedDL run a control then runs beside the same neighbours: a bare loop of fixed work per step (matmuls, no
autograd, no trainer) on MedDL's threads, its fastest steps as long as MedDL's, as many steps. Its share of steps
over 2× the median is what the operating system's scheduling alone gives. MedDL's steps are also timed in the
process's CPU time, which a step waiting for a shared core does not add to: its share of steps over 2× the median
counts the slow steps of the trainer's own making. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from typing import Any

SHAPES = {"A": {"n": 256, "epochs": 2}, "B": {"n": 2048, "epochs": 3}, "C": {"n": 2048, "epochs": 3}}

KERAS_CHILD = r"""
import json, os, sys, time
threads = int(sys.argv[2])
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(threads)
tf.config.threading.set_inter_op_parallelism_threads(threads)
from tensorflow.keras import layers
model_name, n, epochs = sys.argv[1], int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(0)
if model_name == "A":
    x = rng.normal(size=(n, 224, 224, 3)).astype("float32"); y = rng.integers(0, 2, size=(n, 1)).astype("float32")
    model = tf.keras.Sequential([layers.Input((224, 224, 3)),
        layers.Conv2D(32, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2)),
        layers.Conv2D(128, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2)),
        layers.Flatten(), layers.Dense(512, activation="relu"), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
elif model_name == "B":
    x = rng.normal(size=(n, 100, 1)).astype("float32"); y = rng.normal(size=(n, 1)).astype("float32")
    model = tf.keras.Sequential([layers.Input((100, 1)), layers.LSTM(64, return_sequences=True),
        layers.LSTM(64, return_sequences=True), layers.LSTM(64), layers.Dense(1)])
    model.compile(optimizer="adam", loss="mean_squared_error")
else:
    class Attention(layers.Layer):
        def call(self, inputs):
            score = tf.nn.softmax(tf.matmul(inputs, inputs, transpose_b=True))
            return tf.matmul(score, inputs)
    x = rng.integers(1, 65, size=(n, 200)).astype("int32"); y = rng.integers(0, 2, size=(n, 1)).astype("float32")
    model = tf.keras.Sequential([layers.Input((200,), dtype="int32"), layers.Embedding(65, 64),
        layers.LSTM(64, return_sequences=True), Attention(), layers.GlobalAveragePooling1D(),
        layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
class Steps(tf.keras.callbacks.Callback):  # step times within each epoch, as MedDL's side counts them
    def __init__(self):
        super().__init__(); self.steps, self.last = [], None
    def on_epoch_begin(self, epoch, logs=None):
        self.last = None
    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if self.last is not None:
            self.steps.append(now - self.last)
        self.last = now
val = (x[:32], y[:32])  # the founding document's fit validates every epoch; so does MedDL's
model.fit(x, y, epochs=1, batch_size=32, verbose=0, validation_data=val)  # warm-up: graph tracing, allocations
steps = Steps()
started = time.perf_counter()
model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, validation_data=val, callbacks=[steps])
wall = time.perf_counter() - started
times = np.array(steps.steps)
median = np.median(times)
print(json.dumps({"samples_per_s": n * epochs / wall, "steps_over_2x_median": float((times > 2 * median).mean()),
                  "step_max_over_median": float(times.max() / median)}))
"""


def _meddl_child(model_name: str, threads: int, n: int, epochs: int, precision: str) -> dict[str, Any]:
    import numpy as np
    import torch
    from torch.utils.data import TensorDataset

    if threads > 0:  # the same count as Keras; 0: MedDL chooses (meddl.train.runtime.configure_threads)
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)  # configure_threads leaves the user's choice alone
    from meddl.models import build_model
    from meddl.train import Trainer, TrainerSettings, make_loss

    rng = np.random.default_rng(0)
    if model_name == "A":
        x = rng.normal(size=(n, 3, 224, 224)).astype("float32")
        y, task = rng.integers(0, 2, size=n).astype("float32"), "binary"
        model = build_model("seed_cnn", {}, spatial_dims=2, in_channels=3, out_channels=1, image_size=[224, 224])
    elif model_name == "B":
        x, y, task = rng.normal(size=(n, 1, 100)).astype("float32"), rng.normal(size=n).astype("float32"), "regression"
        model = build_model("seed_lstm", {}, in_channels=1, out_channels=1)
    else:
        x = rng.integers(1, 65, size=(n, 200)).astype("int64")
        y, task = rng.integers(0, 2, size=n).astype("float32"), "binary"
        model = build_model("seed_attention", {}, vocab_size=65, out_channels=1)
    data = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    tiny = TensorDataset(torch.from_numpy(x[:32]), torch.from_numpy(y[:32]))

    stamps: list[float] = []
    cpu_stamps: list[float] = []  # the process's CPU time: a step's work, whether or not it had to share a core
    loss = make_loss(task)

    def timed_loss(outputs: Any, targets: Any) -> Any:  # called once per training step: its stamps time the steps
        stamps.append(time.perf_counter())
        cpu_stamps.append(time.process_time())
        return loss(outputs, targets)

    def fit(rounds: int) -> Any:
        settings = TrainerSettings(
            epochs=rounds,
            batch_size=32,
            progress=False,
            precision=precision,
            scheduler="none",
            patience=99,  # type: ignore[arg-type]
        )
        trainer = Trainer(model, timed_loss, settings)
        return trainer, trainer.fit(data, tiny)

    fit(1)  # warm-up
    stamps.clear()
    cpu_stamps.clear()
    started = time.perf_counter()
    trainer, _ = fit(epochs)
    wall = time.perf_counter() - started
    steps = np.diff(stamps)  # includes the validation pass between epochs: drop the epochs' first gaps
    per_epoch = int(np.ceil(n / 32))
    between = [e * per_epoch - 1 for e in range(1, epochs) if e * per_epoch - 1 < len(steps)]
    steps, cpu_steps = np.delete(steps, between), np.delete(np.diff(cpu_stamps), between)
    return {
        "samples_per_s": n * epochs / wall,
        "precision": trainer.precision,
        "threads": torch.get_num_threads(),
        "step_p50_ms": float(np.median(steps) * 1000),
        "step_p10_ms": float(np.quantile(steps, 0.1) * 1000),
        "steps": len(steps),
        "step_max_over_median": float(steps.max() / np.median(steps)),
        "steps_over_2x_median": float((steps > 2 * np.median(steps)).mean()),
        "cpu_steps_over_2x_median": float((cpu_steps > 2 * np.median(cpu_steps)).mean()),
    }


def _control_child(step_ms: float, threads: int, steps: int) -> dict[str, Any]:
    """A fixed amount of work per step (256×256 fp32 matmuls in a bare loop, no autograd, no trainer), sized so that
    its fastest steps take ``step_ms``, run for ``steps`` steps on ``threads`` threads: what the operating system
    alone does to a job's step times beside the same neighbours."""
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    a = torch.randn(256, 256)

    def kernel(k: int) -> float:
        started = time.perf_counter()
        for _ in range(k):
            a @ a
        return time.perf_counter() - started

    one = min(kernel(8) for _ in range(20)) / 8  # the fastest of several: the step time while alone on the cores
    k = max(1, round(step_ms / 1000 / one))
    times = np.array([kernel(k) for _ in range(steps)])
    return {"steps_over_2x_median": float((times > 2 * np.median(times)).mean()), "matmuls_per_step": k}


def _forward_flops_model_a() -> float:
    """Multiply-adds × 2 of model A's forward pass per image, layer by layer."""
    flops, size, channels = 0.0, 224, 3
    for filters in (32, 64, 128):
        size -= 2  # valid 3×3
        flops += 2 * channels * filters * 9 * size * size
        size //= 2
        channels = filters
    flops += 2 * channels * size * size * 512 + 2 * 512
    return flops


def _matmul_peak(threads: int, dtype: str) -> float:
    import torch

    torch.set_num_threads(threads)
    kind = torch.bfloat16 if dtype == "bf16" else torch.float32
    a, b = torch.randn(2048, 2048, dtype=kind), torch.randn(2048, 2048, dtype=kind)
    for _ in range(2):
        a @ b
    rounds, started = 8, time.perf_counter()
    for _ in range(rounds):
        a @ b
    return rounds * 2 * 2048**3 / (time.perf_counter() - started) / 1e9


def _spin() -> None:
    while True:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keras-python", required=False, help="python of an environment with tensorflow-cpu")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", default="auto", help="MedDL's train.precision")
    parser.add_argument(
        "--meddl-threads",
        choices=("same", "auto"),
        default="same",
        help="same: MedDL on --threads like Keras; auto: MedDL picks its own (fewer beside busy neighbours)",
    )
    parser.add_argument("--models", default="ABC")
    parser.add_argument("--busy", type=int, default=0, help="busy neighbours spinning during the measurement")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--control", nargs=3, type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.control:
        step_ms, threads, steps = args.control
        print(json.dumps(_control_child(step_ms, int(threads), int(steps))))
        return
    if args.child:
        model, n, epochs = args.child, SHAPES[args.child]["n"], SHAPES[args.child]["epochs"]
        print(json.dumps(_meddl_child(model, args.threads, n, epochs, args.precision)))
        return
    if not args.keras_python:
        sys.exit("give --keras-python (see the docstring: a throw-away venv with tensorflow-cpu)")
    neighbours = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.busy)]
    for process in neighbours:
        process.start()
    try:
        runs: dict[str, dict[str, list[float]]] = {}
        precision_used, threads_used = {}, {}
        outliers: dict[str, list[float]] = {}
        for model in args.models:
            n, epochs = SHAPES[model]["n"], SHAPES[model]["epochs"]
            for pair in range(args.pairs):
                order = ("meddl", "keras") if pair % 2 == 0 else ("keras", "meddl")
                for side in order:
                    if side == "keras":
                        command = [args.keras_python, "-c", KERAS_CHILD, model, str(args.threads), str(n), str(epochs)]
                    else:
                        command = [
                            sys.executable,
                            __file__,
                            "--child",
                            model,
                            "--threads",
                            "0" if args.meddl_threads == "auto" else str(args.threads),
                            "--precision",
                            args.precision,
                        ]
                    out = subprocess.run(command, capture_output=True, text=True, check=True)
                    figure = json.loads(out.stdout.strip().splitlines()[-1])
                    runs.setdefault(model, {}).setdefault(side, []).append(figure["samples_per_s"])
                    outliers.setdefault(f"{model} {side}", []).append(figure["steps_over_2x_median"])
                    if side == "meddl":
                        outliers.setdefault(f"{model} meddl cpu", []).append(figure["cpu_steps_over_2x_median"])
                        precision_used[model] = figure["precision"]
                        threads_used[model] = figure["threads"]
                        if args.busy:  # the same neighbours, the same threads, the same step time and count
                            shape = [str(figure["step_p10_ms"]), str(figure["threads"]), str(figure["steps"])]
                            control = subprocess.run(
                                [sys.executable, __file__, "--control", *shape],
                                capture_output=True,
                                text=True,
                                check=True,
                            )
                            outliers.setdefault(f"{model} control", []).append(
                                json.loads(control.stdout.strip().splitlines()[-1])["steps_over_2x_median"]
                            )
                    print(f"{model} {side}: {figure['samples_per_s']:.1f} samples/s", file=sys.stderr, flush=True)
        fp32_peak, bf16_peak = _matmul_peak(args.threads, "fp32"), _matmul_peak(args.threads, "bf16")
    finally:
        for process in neighbours:
            process.terminate()
    summary: dict[str, Any] = {}
    for model, sides in runs.items():
        ratios = [m / k for m, k in zip(sides["meddl"], sides["keras"], strict=True)]
        summary[model] = {
            "meddl_samples_per_s": round(statistics.median(sides["meddl"]), 1),
            "keras_samples_per_s": round(statistics.median(sides["keras"]), 1),
            "meddl_over_keras": round(statistics.median(ratios), 2),
            "meddl_precision": precision_used[model],
            "meddl_threads": threads_used[model],
            # the worst run's share of steps that took over twice its median step (each side timed the same way)
            "meddl_share_of_steps_over_2x_median": round(max(outliers[f"{model} meddl"]), 4),
            "keras_share_of_steps_over_2x_median": round(max(outliers[f"{model} keras"]), 4),
            # the same share of the steps' CPU time: slow steps of the trainer's own making (barrier spinning,
            # page faults, allocation) show here; waiting for a core shared with a neighbour does not
            "meddl_share_of_cpu_steps_over_2x_median": round(max(outliers[f"{model} meddl cpu"]), 4),
        }
        if f"{model} control" in outliers:  # a bare fixed-work loop's share beside the same neighbours
            summary[model]["control_share_of_steps_over_2x_median"] = round(max(outliers[f"{model} control"]), 4)
    if "A" in runs:
        train_gflop = 3 * _forward_flops_model_a() / 1e9
        for side in ("meddl", "keras"):
            rate = statistics.median(runs["A"][side]) * train_gflop
            summary["A"][f"{side}_gflops"] = round(rate, 1)
            summary["A"][f"{side}_share_of_fp32_peak"] = round(rate / fp32_peak, 3)
            summary["A"][f"{side}_share_of_bf16_peak"] = round(rate / bf16_peak, 3)
        summary["A"]["train_gflop_per_sample"] = round(train_gflop, 2)
    print(
        json.dumps(
            {
                "benchmark": "seed_parity",
                "threads": args.threads,
                "busy_neighbours": args.busy,
                "matmul_peak_gflops": {"fp32": round(fp32_peak, 1), "bf16": round(bf16_peak, 1)},
                "summary": summary,
                "runs": runs,
            }
        )
    )


if __name__ == "__main__":
    main()
