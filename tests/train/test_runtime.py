"""The CPU runtime: allocator tuning, the cores a process may use, bf16 hardware, channels-last layout, and what the
trainer does with them (fused AdamW, precision auto, the record)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from meddl.models import SmallCNN
from meddl.train import Trainer, TrainerSettings, make_loss, runtime
from meddl.train.runtime import busy_cores as measured_busy_cores  # conftest stubs runtime.busy_cores


def _in_a_fresh_process(code: str, **env: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ, **env}
    )
    return out.stdout.strip()


def test_the_allocator_is_tuned_once_unless_the_user_says_system() -> None:
    code = "from meddl.train.runtime import tune_allocator as t; print(t(), t())"
    assert _in_a_fresh_process(code) == "tuned tuned"
    assert _in_a_fresh_process(code, MEDDL_ALLOCATOR="system") == "system system"


def test_the_cpu_budget_follows_affinity_and_a_cgroup_quota(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(runtime, "_cgroup_quota", lambda: None)
    assert runtime.cpu_budget() == 4
    monkeypatch.setattr(runtime, "_cgroup_quota", lambda: 2.5)  # cpu.max "250000 100000"
    assert runtime.cpu_budget() == 2
    monkeypatch.setattr(runtime, "_cgroup_quota", lambda: 0.5)
    assert runtime.cpu_budget() == 1


def test_threads_are_set_from_the_budget_unless_the_user_chose() -> None:
    # no other process busy (mocked), so the threads are the budget whatever else runs on this machine
    code = "from meddl.train import runtime as r; r.busy_cores = lambda: 0; print(r.configure_threads())"
    assert _in_a_fresh_process(code, OMP_NUM_THREADS="1") == "1"
    budget = _in_a_fresh_process("from meddl.train.runtime import cpu_budget; print(cpu_budget())")
    env = {k: v for k, v in os.environ.items() if k not in {"OMP_NUM_THREADS", "MKL_NUM_THREADS"}}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == budget


def test_a_share_of_the_cores_holds_for_every_network_and_the_record_says_why() -> None:
    code = (
        "from meddl.train import runtime as r; r.share_cores(1, 'a lane of the demo'); r.busy_cores = lambda: 0; "
        "print(r.configure_threads(), r.configure_threads(), r.runtime_record()['threads_from'])"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"OMP_NUM_THREADS", "MKL_NUM_THREADS"}}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "1 1 a lane of the demo"
    assert _in_a_fresh_process(code, OMP_NUM_THREADS="2").startswith("2 2 OMP_NUM_THREADS")  # the user's still wins


def test_bf16_hardware_is_read_from_the_cpu_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    assert not runtime.bf16_supported("cpu")
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    assert runtime.bf16_supported(torch.device("cpu"))
    assert not runtime.bf16_supported("mps")


def _images(n: int = 48) -> TensorDataset:
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(n, 3, 16, 16)).astype(np.float32))
    y = torch.from_numpy((x.mean(dim=(1, 2, 3)) > 0).float().numpy())
    return TensorDataset(x, y)


def _trained(precision: str, channels_last: bool) -> tuple[Trainer, list[float]]:
    torch.manual_seed(0)
    model = SmallCNN(2, 3, 1)
    type(model).channels_last = channels_last  # the class attribute the layout follows
    settings = TrainerSettings(epochs=2, batch_size=16, progress=False, precision=precision)  # type: ignore[arg-type]
    trainer = Trainer(model, make_loss("binary"), settings)
    result = trainer.fit(_images(), _images(16))
    return trainer, [row["train_loss"] for row in result.history]


def test_the_trainer_uses_fused_adamw_and_channels_last_without_changing_the_arithmetic() -> None:
    try:
        laid, losses = _trained("32", channels_last=True)
        plain, reference = _trained("32", channels_last=False)
    finally:
        SmallCNN.channels_last = True
    assert laid.optimizer.defaults.get("fused") is True
    conv = next(m for m in laid.module.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not next(m for m in plain.module.modules() if isinstance(m, torch.nn.Conv2d)).weight.is_contiguous(
        memory_format=torch.channels_last
    )
    np.testing.assert_allclose(losses, reference, rtol=1e-4)  # a layout, not another computation


def test_precision_auto_follows_the_hardware_and_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    from meddl.train import trainer as trainer_module

    for has_bf16, expected in ((False, "32"), (True, "bf16-mixed")):
        monkeypatch.setattr(trainer_module, "bf16_supported", lambda device, value=has_bf16: value)
        model = SmallCNN(2, 3, 1)
        trainer = Trainer(
            model, make_loss("binary"), TrainerSettings(epochs=1, batch_size=16, progress=False, precision="auto")
        )
        assert trainer.precision == expected
        assert (trainer.autocast_dtype is torch.bfloat16) == has_bf16
        assert trainer.fit(_images(), _images(16)).as_dict("loss")["precision"] == expected


def test_precision_auto_keeps_non_convolutional_families_in_fp32_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    from meddl.models import MLP, SeedLSTM
    from meddl.train import trainer as trainer_module

    monkeypatch.setattr(trainer_module, "bf16_supported", lambda device: True)
    for model in (MLP(in_features=4, out_features=1), SeedLSTM(in_channels=1, out_channels=1)):
        trainer = Trainer(model, make_loss("binary"), TrainerSettings(progress=False, precision="auto"))
        assert trainer.precision == "32" and trainer.autocast_dtype is None
        assert (
            "only convolutional families" in trainer.precision_note and type(model).__name__ in trainer.precision_note
        )
    explicit = Trainer(MLP(in_features=4, out_features=1), make_loss("binary"), TrainerSettings(precision="bf16-mixed"))
    assert explicit.precision == "bf16-mixed"  # asked for by name: honoured


@pytest.mark.parametrize("has_bf16", [True, False])
def test_precision_auto_runs_only_the_attention_of_seed_attention_in_bf16_and_only_while_training(
    monkeypatch: pytest.MonkeyPatch, has_bf16: bool
) -> None:
    from meddl.models import build_model
    from meddl.train import trainer as trainer_module

    monkeypatch.setattr(trainer_module, "bf16_supported", lambda device, value=has_bf16: value)
    torch.manual_seed(0)
    model = build_model("seed_attention", {}, vocab_size=20, out_channels=1)
    tokens = torch.randint(1, 20, (8, 30))
    tokens[:3, 25:] = 0  # some padding, masked in both precisions
    fp32_train = model.train()(tokens)
    trainer = Trainer(model, make_loss("binary"), TrainerSettings(progress=False, precision="auto"))
    assert trainer.precision == "32" and trainer.autocast_dtype is None  # the LSTM stays fp32
    assert model.attention_autocast is has_bf16
    assert ("bf16 autocast for its attention" in trainer.precision_note) is has_bf16
    autocast_train = model.train()(tokens)
    if has_bf16:
        assert not torch.equal(autocast_train, fp32_train)  # bf16 rounding shows: the attention ran in bf16
    torch.testing.assert_close(autocast_train, fp32_train, atol=0.05, rtol=0.05)
    model.eval()
    with torch.no_grad():
        evaluated = model(tokens)
        model.attention_autocast = False
        torch.testing.assert_close(evaluated, model(tokens), atol=0, rtol=0)  # evaluation and prediction: fp32
    model.attention_autocast = has_bf16
    Trainer(model, make_loss("binary"), TrainerSettings(progress=False, precision="32"))
    assert model.attention_autocast is False  # asked for fp32 by name: the earlier choice does not linger


def test_seed_attention_trains_under_an_explicit_bf16_mixed() -> None:
    """Its own attention autocast stays out of the way of a whole-network bf16 run (a disabled inner autocast
    would have switched the outer one off and met bf16 states with fp32 weights)."""
    from meddl.models import build_model

    model = build_model("seed_attention", {}, vocab_size=20, out_channels=1)
    tokens = torch.randint(1, 20, (16, 12))
    data = TensorDataset(tokens, (tokens.float().mean(dim=1) > 10).float())
    trainer = Trainer(model, make_loss("binary"), TrainerSettings(epochs=1, progress=False, precision="bf16-mixed"))
    assert np.isfinite(trainer.fit(data, data).history[0]["train_loss"])


def test_every_network_takes_only_the_idle_cores_of_its_affinity_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setattr(runtime, "_affinity", lambda: 4)
    monkeypatch.setattr(runtime, "cpu_budget", lambda: 4)
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(runtime, "busy_cores", lambda: 3)
        assert runtime.configure_threads() == 1
        assert "other processes kept 3 of the 4 it may run on busy" in runtime.runtime_record()["threads_from"]
        monkeypatch.setattr(runtime, "busy_cores", lambda: 9)  # more than it may run on: still one thread
        assert runtime.configure_threads() == 1
        monkeypatch.setattr(runtime, "busy_cores", lambda: 0)
        assert runtime.configure_threads() == 4
        assert runtime.runtime_record()["threads_from"] == "the 4 core(s) this process may use"
        # a cgroup quota of 2 cores on a 64-core node with 50 of them busy: 14 are free, the quota allows 2
        monkeypatch.setattr(runtime, "_affinity", lambda: 64)
        monkeypatch.setattr(runtime, "cpu_budget", lambda: 2)
        monkeypatch.setattr(runtime, "busy_cores", lambda: 50)
        assert runtime.configure_threads() == 2
        monkeypatch.setattr(runtime, "busy_cores", lambda: 63)
        assert runtime.configure_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_resumed_run_takes_the_checkpoints_threads_up_to_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setattr(runtime, "cpu_budget", lambda: 2)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert runtime.resume_threads(1, "the checkpoint c.pt") == 1
        assert runtime.runtime_record()["threads_from"].startswith("1 thread(s), as the checkpoint c.pt was trained")
        assert runtime.resume_threads(16, "the checkpoint big.pt") == 2  # from a larger machine: the budget
        assert "trained on 16, more than the 2 core(s) here" in runtime.runtime_record()["threads_from"]
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert runtime.resume_threads(1, "the checkpoint c.pt") == 2  # the user's choice still wins
    finally:
        torch.set_num_threads(before)


def test_busy_cores_counts_only_the_affinity_set_and_not_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    # cpu0 busy all the window, cpu1 idle, cpu2 busy but outside the affinity set (another job's core)
    snapshots = iter([{0: (0, 0), 1: (0, 0), 2: (0, 0)}, {0: (10, 10), 1: (0, 10), 2: (10, 10)}])
    clock = iter([0.0, 0.0])
    monkeypatch.setattr(runtime, "_cpu_ticks", lambda: next(snapshots))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    monkeypatch.setattr(time, "process_time", lambda: next(clock))
    assert measured_busy_cores() == 1
    # the same ticks, but this process spent the whole window on a core itself: nobody else is busy
    snapshots = iter([{0: (0, 0), 1: (0, 0)}, {0: (10, 10), 1: (0, 10)}])
    clock = iter([0.0, 0.1])
    assert measured_busy_cores(window=0.1) == 0
    monkeypatch.setattr(runtime, "_cpu_ticks", lambda: (_ for _ in ()).throw(OSError("no /proc")))
    assert measured_busy_cores() == 0  # unreadable: nobody busy, the whole budget


def test_busy_cores_sees_a_spinning_neighbour() -> None:
    import time

    spinner = subprocess.Popen(
        [sys.executable, "-c", "print('up', flush=True)\nwhile True: pass"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert spinner.stdout is not None and spinner.stdout.readline().strip() == "up"  # spinning from here on
        time.sleep(0.1)
        assert measured_busy_cores(window=0.3) >= 1
    finally:
        spinner.kill()
        spinner.wait()


def test_data_workers_auto_load_beside_a_gpu_and_stay_off_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from meddl.train import trainer as trainer_module

    monkeypatch.setattr(trainer_module, "cpu_budget", lambda: 8)
    assert trainer_module.choose_data_workers(None, torch.device("cuda"))[0] == 4
    monkeypatch.setattr(trainer_module, "cpu_budget", lambda: 2)
    workers, note = trainer_module.choose_data_workers(None, torch.device("cuda"))
    assert workers == 1 and "while the GPU computes" in note
    workers, note = trainer_module.choose_data_workers(None, torch.device("cpu"))
    assert workers == 0 and "compete" in note
    assert trainer_module.choose_data_workers(3, torch.device("cpu")) == (3, "train.num_workers: 3")


class _Lazy(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Items made on demand, slowly enough to be seen waiting for."""

    def __init__(self, data: TensorDataset) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        import time

        time.sleep(0.002)
        return self.data[index]  # type: ignore[no-any-return]


@pytest.mark.parametrize("workers", [0, 2])
def test_the_record_says_how_much_of_training_waited_for_lazy_data(workers: int) -> None:
    torch.manual_seed(0)
    settings = TrainerSettings(epochs=2, batch_size=16, progress=False, precision="32", num_workers=workers)
    record = Trainer(SmallCNN(2, 3, 1), make_loss("binary"), settings).fit(_Lazy(_images()), _images(16))
    figures = record.as_dict("loss")
    assert figures["data_workers"] == workers and figures["data_workers_note"] == f"train.num_workers: {workers}"
    assert 0.0 < figures["loading_share"] < 1.0
    in_memory = Trainer(SmallCNN(2, 3, 1), make_loss("binary"), settings).fit(_images(), _images(16))
    assert in_memory.as_dict("loss")["loading_share"] is None  # sliced tensors: nothing to wait for
