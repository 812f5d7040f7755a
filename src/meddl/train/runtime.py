"""The process's CPU runtime: the memory allocator, the cores MedDL may use, and what the hardware can compute in.

* **Allocator.** glibc hands every block above the mmap threshold (128 KiB by default) straight to the kernel and
  back again on free. A CNN's activation buffers are tens of MiB, so every training step re-mapped them and paid a
  page fault per 4 KiB touched: 44 % of model A's CPU time was kernel time (issue 18). :func:`tune_allocator`
  keeps large blocks on the heap (``M_MMAP_MAX = 0``) and freed memory in the process (a high
  ``M_TRIM_THRESHOLD``), so steps reuse the same pages. Peak RSS can grow by what a step frees and reallocates.
  ``MEDDL_ALLOCATOR=system`` leaves glibc as it is.
* **Cores.** :func:`cpu_budget` counts the cores this process may run on: its CPU affinity, bounded by a cgroup CPU
  quota (containers, CI runners), which ``os.cpu_count()`` ignores. :func:`configure_threads` takes those that no
  other process keeps busy (:func:`busy_cores`), and :func:`resume_threads` a checkpoint's count.
* **bf16.** :func:`bf16_supported` says whether bf16 autocast runs on fast hardware: AVX-512 BF16 or AMX on a
  CPU, bf16 support on a CUDA GPU.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "bf16_supported",
    "busy_cores",
    "configure_threads",
    "cpu_budget",
    "cpu_flags",
    "laid_out",
    "memory_format",
    "resume_threads",
    "runtime_record",
    "share_cores",
    "tune_allocator",
]

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4
_TRIM_THRESHOLD = 1 << 30  # keep up to 1 GiB of freed heap in the process
_TOP_PAD = 64 << 20  # grow the heap 64 MiB at a time

_STATE: dict[str, Any] = {"allocator": "system"}


def tune_allocator() -> str:
    """Keep large blocks on glibc's heap and freed memory in the process (see the module docstring). Returns what
    is in force: ``tuned``, ``system`` (``MEDDL_ALLOCATOR=system``, or not glibc) — idempotent."""
    if _STATE.get("allocator_tried"):  # once per process: find_library may run ldconfig, every Trainer calls this
        return str(_STATE["allocator"])
    if os.environ.get("MEDDL_ALLOCATOR", "").lower() == "system":
        return "system"
    _STATE["allocator_tried"] = True
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return "system"  # not glibc (musl, macOS): nothing to tune
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = all(
        mallopt(option, value) == 1
        for option, value in ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD), (_M_TOP_PAD, _TOP_PAD))
    )
    _STATE["allocator"] = "tuned" if done else "system"
    return _STATE["allocator"]


def _cgroup_quota() -> float | None:
    """The cgroup CPU quota in cores (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), or None when unlimited."""
    v2 = Path("/sys/fs/cgroup/cpu.max")
    try:
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else float(quota) / float(period)
        v1 = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
        if v1.is_file():
            quota_us = float(v1.read_text())
            period_us = float(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
            return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None
    return None


def _affinity() -> int:
    """How many cores this process may run on (its affinity set; every core where that cannot be read)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpu_budget() -> int:
    """The cores this process may use: its affinity set, bounded by a cgroup quota (at least 1)."""
    cores = _affinity()
    quota = _cgroup_quota()
    if quota is not None:
        cores = min(cores, max(1, math.floor(quota)))
    return max(1, cores)


@cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (``/proc/cpuinfo``; empty where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def bf16_supported(device: Any) -> bool:
    """Whether bf16 autocast runs on fast hardware on ``device`` (a ``torch.device`` or its type name)."""
    kind = getattr(device, "type", str(device))
    if kind == "cuda":
        import torch

        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if kind == "cpu":
        return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
    return False


def _cpu_ticks() -> dict[int, tuple[int, int]]:
    """Per CPU, clock ticks spent busy and in all since boot (``cpuN`` lines of ``/proc/stat``)."""
    ticks = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, _, rest = line.partition(" ")
        if name.startswith("cpu") and name[3:].isdigit():
            fields = [int(x) for x in rest.split()[:8]]  # user nice system idle iowait irq softirq steal
            ticks[int(name[3:])] = (sum(fields) - fields[3] - fields[4], sum(fields))
    return ticks


def busy_cores(window: float = 0.1) -> int:
    """How many of the cores this process may run on (its affinity set) other processes keep busy: the busy
    share of each one over ``window`` seconds (``/proc/stat``), summed and rounded, less this process's own CPU
    time; 0 where it cannot be read. Counting only the cores of the affinity set keeps a batch job's share of a
    large node (Slurm, ``taskset``) from counting the rest of the node's load."""
    import time

    try:
        allowed = os.sched_getaffinity(0)
        before, own = _cpu_ticks(), time.process_time()
        time.sleep(window)
        after, own = _cpu_ticks(), time.process_time() - own
    except (OSError, AttributeError, ValueError, IndexError):
        return 0
    busy = 0.0
    for cpu in allowed & before.keys() & after.keys():
        spent, elapsed = (after[cpu][i] - before[cpu][i] for i in (0, 1))
        busy += spent / elapsed if elapsed > 0 else 0.0
    return max(0, round(busy - own / window))


def _user_chose_threads() -> bool:
    """Whether the user set the thread count (``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``), which always wins."""
    return bool(os.environ.get("OMP_NUM_THREADS") or os.environ.get("MKL_NUM_THREADS"))


def _use_threads(threads: int, note: str) -> int:
    """Set PyTorch's intra-op threads (only when they change: setting them restarts its pool) and the record's
    note. Returns the thread count in force."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    _STATE["threads_note"] = note
    return int(torch.get_num_threads())


def share_cores(threads: int, why: str) -> None:
    """Give this process ``threads`` intra-op threads for good, whatever the network: a share of the cores that
    other processes of the same job use beside it (``meddl demo`` runs its parts in lanes side by side).
    :func:`configure_threads` keeps the share (``OMP_NUM_THREADS`` still wins) and the run record says ``why``.
    Takes effect at once, for what runs before a network is configured (reading, baselines)."""
    _STATE["shared"] = (max(1, int(threads)), why)
    if not _user_chose_threads():
        import torch

        torch.set_num_threads(_STATE["shared"][0])


def configure_threads() -> int:
    """Intra-op threads = the cores no other process keeps busy, at most :func:`cpu_budget`, unless the user chose
    (``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``) or :func:`share_cores` set a share. PyTorch's default counts every
    core of the machine, a cgroup quota included, and a thread on a core another process holds stalls the others
    at every operation's barrier. Beside one busy neighbour on 2 cores, model A (seed_cnn) trained at 68.7
    samples/s on 1 thread and 51.9 on 2; beside two, seed_lstm at 684 on 1 and 318 on 2, and seed_cnn at 46.1 on 1
    and 43-50 on 2 (benchmarks/seed_parity.py). The rule holds for every family measured, so it takes no model.
    The cores are counted when a trainer or a bundle starts: a cgroup quota caps the threads, not which of the
    node's cores are free. Returns the thread count in force."""
    import torch

    if _user_chose_threads():
        _STATE["threads_note"] = "OMP_NUM_THREADS / MKL_NUM_THREADS"
        return int(torch.get_num_threads())
    if "shared" in _STATE:
        return _use_threads(*_STATE["shared"])
    budget, allowed, busy = cpu_budget(), _affinity(), busy_cores()
    threads = max(1, min(budget, allowed - busy))
    if threads == budget:
        return _use_threads(threads, f"the {budget} core(s) this process may use")
    return _use_threads(
        threads,
        f"{threads} of {budget} core(s): other processes kept {busy} of the {allowed} it may run on busy at "
        "start-up, and a thread on a shared core stalls the others at every barrier",
    )


def resume_threads(threads: int, source: str) -> int:
    """Train on ``threads`` intra-op threads, the count a checkpoint was written with, so a resumed run replays the
    interrupted one's arithmetic bit for bit: a different count splits reductions differently and changes the
    last bits of every loss. The user's ``OMP_NUM_THREADS`` and a :func:`share_cores` share still win, and a
    count above :func:`cpu_budget` (a checkpoint from a larger machine) is cut to it: oversubscribed threads spin
    at barriers, and a run moved to other hardware does not replay bit for bit anyway. Returns the thread count
    in force."""
    import torch

    if _user_chose_threads() or "shared" in _STATE:
        return int(torch.get_num_threads())
    wanted, budget = max(1, int(threads)), cpu_budget()
    if wanted > budget:
        return _use_threads(
            budget, f"{budget} thread(s): {source} was trained on {wanted}, more than the {budget} core(s) here"
        )
    return _use_threads(wanted, f"{wanted} thread(s), as {source} was trained: a resumed run replays it exactly")


def memory_format(model: Any, inputs: Any) -> Any:
    """``torch.channels_last`` (4-D inputs) or ``channels_last_3d`` (5-D) for a network that declares
    ``channels_last = True`` (convolutional families: oneDNN's convolutions run on NHWC without reordering);
    None otherwise."""
    import torch

    if not getattr(model, "channels_last", False):
        return None
    return {4: torch.channels_last, 5: torch.channels_last_3d}.get(getattr(inputs, "ndim", 0))


def laid_out(model: Any, batch: Any) -> Any:
    """``batch`` (and the network, when it is not yet) in the network's preferred layout, for inference."""
    import torch

    wanted = memory_format(model, batch)
    if wanted is None:
        return batch
    # weights converted under inference mode would be inference tensors, which Grad-CAM cannot backpropagate into
    with torch.inference_mode(False), torch.no_grad():
        model.to(memory_format=wanted)  # a no-op once the weights are laid out
    return batch.contiguous(memory_format=wanted)


def runtime_record() -> dict[str, Any]:
    """What the run record says about the runtime: allocator, cores allowed, threads, bf16 hardware."""
    import torch

    return {
        "allocator": _STATE["allocator"],
        "cpu_budget": cpu_budget(),
        "torch_threads": torch.get_num_threads(),
        "threads_from": _STATE.get("threads_note", "PyTorch's default"),
        "cpu_bf16": bf16_supported("cpu"),
    }
