"""What each CPU speed-up buys the founding document's CNN (model A: 224×224×3, 44 M parameters) in a plain
PyTorch training loop, each variant in its own process (the allocator is set at start-up), alternating.

Variants, each adding to the one before:
  base            AdamW(foreach), fp32, contiguous NCHW, glibc's default allocator
  allocator       + glibc ``mallopt``: no mmap for large blocks, a high trim threshold (no page faults per step)
  fused           + AdamW(fused=True)
  channels_last   + channels-last memory format for the network and its inputs
  bf16            + bf16 autocast (only where the CPU has AVX-512 BF16 or AMX)
  pool_first      + seed_cnn's training order: max pool before ReLU (the same outputs and gradients; the
                  variants before it train in the Keras order)

Per variant: samples/s (steady, after a warm-up step), minor page faults per sample, the share of CPU time spent
in the kernel, and the process's peak RSS. Prints one JSON line.

    .venv/bin/python benchmarks/cpu_speedups.py [--steps 12] [--batch 32] [--pairs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

VARIANTS = ("base", "allocator", "fused", "channels_last", "bf16", "pool_first")


def _child(variant: str, steps: int, batch: int) -> dict[str, float]:
    level = VARIANTS.index(variant)
    from meddl.train.runtime import bf16_supported, tune_allocator

    if level >= 1:
        tune_allocator()
    import torch

    from meddl.models import SeedCNN

    torch.manual_seed(0)
    model = SeedCNN(2, 3, 1, image_size=(224, 224))
    model.pool_first = level >= 5
    x = torch.randn(batch, 3, 224, 224)
    y = torch.randint(0, 2, (batch, 1)).float()
    if level >= 3:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, **({"fused": True} if level >= 2 else {"foreach": True}))
    use_bf16 = level >= 4 and bf16_supported("cpu")
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            loss = loss_fn(model(x).float(), y)
        loss.backward()
        optimizer.step()

    step()  # warm-up
    before, started, cpu0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    return {
        "samples_per_s": steps * batch / wall,
        "page_faults_per_sample": (after.ru_minflt - before.ru_minflt) / (steps * batch),
        "kernel_share": system / max(user + system, 1e-9),
        "bf16": use_bf16,
        "threads": torch.get_num_threads(),
        "cpu_s": time.process_time() - cpu0,
        "peak_rss_mb": after.ru_maxrss / 1024,  # Linux: KiB
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.steps, args.batch)))
        return
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    for pair in range(args.pairs):
        order = VARIANTS if pair % 2 == 0 else tuple(reversed(VARIANTS))
        for variant in order:
            command = [
                sys.executable,
                __file__,
                "--child",
                variant,
                "--steps",
                str(args.steps),
                "--batch",
                str(args.batch),
            ]
            out = subprocess.run(command, capture_output=True, text=True, check=True, env=os.environ.copy())
            runs[variant].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"{variant}: {runs[variant][-1]['samples_per_s']:.1f} samples/s", file=sys.stderr, flush=True)
    base = statistics.median(r["samples_per_s"] for r in runs["base"])
    summary = {
        v: {
            "samples_per_s": round(statistics.median(r["samples_per_s"] for r in rows), 2),
            "vs_base": round(statistics.median(r["samples_per_s"] for r in rows) / base, 3),
            "page_faults_per_sample": round(statistics.median(r["page_faults_per_sample"] for r in rows), 1),
            "kernel_share": round(statistics.median(r["kernel_share"] for r in rows), 3),
            "peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in rows)),
            "bf16": rows[0]["bf16"],
        }
        for v, rows in runs.items()
    }
    print(
        json.dumps(
            {
                "benchmark": "cpu_speedups",
                "model": "seed_cnn 224x224x3",
                "batch": args.batch,
                "threads": runs["base"][0]["threads"],
                "summary": summary,
            }
        )
    )


if __name__ == "__main__":
    main()
