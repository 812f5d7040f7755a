"""Tests of meddl.train.trainer: learning, early stopping, exact resume, checkpoints and determinism (CPU)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Subset, TensorDataset

from meddl.errors import MedDLError
from meddl.models import MLP
from meddl.train import Trainer, TrainerSettings, make_loss, resolve_device, runtime, seed_everything, subset
from meddl.train.trainer import CHECKPOINT_NAME, _grad_norm


class Interrupt(Exception):
    """Stands in for a killed process."""


def toy_data(n: int = 96, seed: int = 0) -> tuple[TensorDataset, TensorDataset]:
    """A learnable binary problem: the label is whether x0 + x1 > 0."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=generator)
    y = (x[:, 0] + x[:, 1] > 0).float()
    cut = int(n * 0.75)
    return TensorDataset(x[:cut], y[:cut]), TensorDataset(x[cut:], y[cut:])


def accuracy(outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    return {"accuracy": float(((outputs.reshape(-1) > 0) == (targets > 0.5)).mean())}


def settings(**overrides) -> TrainerSettings:
    base = {"epochs": 6, "batch_size": 16, "learning_rate": 1e-2, "device": "cpu", "progress": False, "patience": 100}
    base.update(overrides)
    return TrainerSettings(**base)


def make_trainer(
    seed: int = 0,
    *,
    model_seed: int | None = None,
    checkpoint_dir: Path | None = None,
    on_epoch_end: Callable[[dict[str, float]], None] | None = None,
    metric_fn=accuracy,
    **overrides,
) -> Trainer:
    seed_everything(seed if model_seed is None else model_seed)
    model = MLP(4, 1, hidden=(16,), dropout=0.2)
    return Trainer(
        model,
        make_loss("binary"),
        settings(seed=seed, **overrides),
        metric_fn=metric_fn,
        checkpoint_dir=checkpoint_dir,
        on_epoch_end=on_epoch_end,
    )


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.module.state_dict().items()}


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def interrupt_at(epoch: int) -> Callable[[dict[str, float]], None]:
    def callback(row: dict[str, float]) -> None:
        if row["epoch"] == epoch:
            raise Interrupt

    return callback


def test_training_reduces_loss_and_learns():
    train, val = toy_data(256)
    trainer = make_trainer(epochs=15)
    result = trainer.fit(train, val)
    losses = [row["train_loss"] for row in result.history]
    assert len(result.history) == 15 and result.epochs_run == 15
    assert losses[-1] < 0.6 * losses[0]
    assert result.history[-1]["val_accuracy"] >= 0.85
    assert result.samples_seen == 15 * len(train)
    assert not result.stopped_early


def test_early_stopping_stops_and_restores_best_epoch_weights():
    train, val = toy_data()
    scripted = iter([0.50, 0.70, 0.90, 0.80, 0.60, 0.55, 0.95, 0.99, 0.99, 0.99])
    snapshots: dict[int, dict[str, torch.Tensor]] = {}

    def metric(outputs, targets):
        return {"auroc": next(scripted)}

    def remember(row):
        snapshots[int(row["epoch"])] = weights(trainer)

    trainer = make_trainer(epochs=10, patience=3, monitor="auroc", monitor_mode="max", metric_fn=metric)
    trainer.on_epoch_end = remember
    result = trainer.fit(train, val)
    assert result.stopped_early
    assert result.epochs_run == 6 and len(result.history) == 6
    assert result.best_epoch == 3
    assert result.best_score == pytest.approx(0.90)
    assert_same_weights(weights(trainer), snapshots[3])
    assert not all(torch.equal(snapshots[3][k], snapshots[6][k]) for k in snapshots[3])


def test_smoothed_monitor_picks_the_best_epoch_by_its_moving_average():
    train, val = toy_data()
    raw = [0.50, 0.90, 0.55, 0.80, 0.82, 0.84, 0.40, 0.40]  # a lucky spike at epoch 2, a steady rise after
    scripted = iter(raw)

    def metric(outputs, targets):
        return {"dice": next(scripted)}

    trainer = make_trainer(epochs=8, patience=2, monitor="dice", monitor_mode="max", metric_fn=metric)
    trainer.settings.monitor_smoothing = 0.5
    result = trainer.fit(train, val)
    expected, smoothed = [], None
    for score in raw[: len(result.history)]:
        smoothed = score if smoothed is None else 0.5 * smoothed + 0.5 * score
        expected.append(smoothed)
    assert [row["val_monitor_smoothed"] for row in result.history] == pytest.approx(expected)
    assert [row["val_dice"] for row in result.history] == pytest.approx(raw[: len(result.history)])
    # raw: best at epoch 2 (0.90); smoothed: 0.5, 0.7, 0.625, 0.7125, 0.766, 0.803 → epoch 6
    assert result.best_epoch == 6 and result.best_score == pytest.approx(expected[5])
    assert result.as_dict("dice")["monitor_smoothing"] == 0.5  # the record says best_score is the smoothed one
    assert result.stopped_early and result.epochs_run == 8


def test_resume_with_a_smoothed_monitor_matches_an_uninterrupted_run(tmp_path: Path):
    train, val = toy_data()
    full = make_trainer(seed=2, checkpoint_dir=tmp_path / "full", monitor="accuracy", monitor_mode="max")
    full.settings.monitor_smoothing = 0.7
    full_result = full.fit(train, val)
    killed = make_trainer(
        seed=2, checkpoint_dir=tmp_path / "resumed", on_epoch_end=interrupt_at(3), monitor="accuracy",
        monitor_mode="max",
    )  # fmt: skip
    killed.settings.monitor_smoothing = 0.7
    with pytest.raises(Interrupt):
        killed.fit(train, val)
    resumed = make_trainer(
        seed=2, model_seed=7, checkpoint_dir=tmp_path / "resumed", monitor="accuracy", monitor_mode="max"
    )
    resumed.settings.monitor_smoothing = 0.7
    result = resumed.fit(train, val, resume=True)
    assert result.history == full_result.history  # the smoothed column goes on from the checkpoint's history
    assert result.best_epoch == full_result.best_epoch and result.best_score == full_result.best_score


def test_min_mode_monitors_validation_loss():
    train, val = toy_data()
    result = make_trainer(epochs=4, monitor="loss").fit(train, val)
    best = min(range(4), key=lambda i: result.history[i]["val_loss"])
    assert result.best_epoch == best + 1
    assert result.best_score == pytest.approx(result.history[best]["val_loss"])


@pytest.mark.parametrize("scheduler", ["cosine", "plateau"])
def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path: Path, scheduler: str):
    train, val = toy_data()
    full = make_trainer(seed=5, checkpoint_dir=tmp_path / "full", scheduler=scheduler)
    full_result = full.fit(train, val)

    killed = make_trainer(
        seed=5, checkpoint_dir=tmp_path / "resumed", on_epoch_end=interrupt_at(3), scheduler=scheduler
    )
    with pytest.raises(Interrupt):
        killed.fit(train, val)

    # A fresh process: different initial weights and RNG state, then resume from the checkpoint.
    torch.manual_seed(12345)
    resumed = make_trainer(seed=5, model_seed=999, checkpoint_dir=tmp_path / "resumed", scheduler=scheduler)
    result = resumed.fit(train, val, resume=True)

    assert result.resumed_from_epoch == 3
    assert result.history == full_result.history
    assert result.best_epoch == full_result.best_epoch
    assert result.epochs_run == full_result.epochs_run == 6
    assert_same_weights(weights(resumed), weights(full))
    # the final (not only the best) weights match too
    last_full = torch.load(tmp_path / "full" / CHECKPOINT_NAME, weights_only=True)["model"]
    last_resumed = torch.load(tmp_path / "resumed" / CHECKPOINT_NAME, weights_only=True)["model"]
    assert_same_weights(last_full, last_resumed)


def test_resume_with_a_non_tensor_dataset(tmp_path: Path):
    train, val = toy_data()
    train = Subset(train, list(range(len(train))))
    full = make_trainer(seed=1, checkpoint_dir=tmp_path / "a", epochs=4)
    full_result = full.fit(train, val)
    with pytest.raises(Interrupt):
        make_trainer(seed=1, checkpoint_dir=tmp_path / "b", epochs=4, on_epoch_end=interrupt_at(2)).fit(train, val)
    resumed = make_trainer(seed=1, model_seed=7, checkpoint_dir=tmp_path / "b", epochs=4)
    assert resumed.fit(train, val, resume=True).history == full_result.history
    assert_same_weights(weights(resumed), weights(full))


@pytest.mark.skipif(runtime.cpu_budget() < 2, reason="needs two cores to train on two thread counts")
def test_a_resumed_run_takes_the_checkpoints_threads_whatever_the_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    train, val = toy_data()
    try:
        monkeypatch.setattr(runtime, "busy_cores", lambda window=0.1: 0)  # started on an idle machine
        full = make_trainer(seed=3, checkpoint_dir=tmp_path / "full", epochs=4)
        threads = torch.get_num_threads()  # every core of the budget, 2 or more
        full_result = full.fit(train, val)
        with pytest.raises(Interrupt):
            make_trainer(seed=3, checkpoint_dir=tmp_path / "b", epochs=4, on_epoch_end=interrupt_at(2)).fit(train, val)
        monkeypatch.setattr(runtime, "busy_cores", lambda window=0.1: 1 << 10)  # resumed beside busy neighbours
        resumed = make_trainer(seed=3, model_seed=7, checkpoint_dir=tmp_path / "b", epochs=4)
        assert torch.get_num_threads() == 1  # what the load alone would give
        result = resumed.fit(train, val, resume=True)
        assert torch.get_num_threads() == threads
        assert "as the checkpoint" in runtime.runtime_record()["threads_from"]
        assert result.history == full_result.history
        assert_same_weights(weights(resumed), weights(full))
    finally:
        torch.set_num_threads(before)


def test_resume_without_a_checkpoint_starts_fresh(tmp_path: Path):
    train, val = toy_data()
    reference = make_trainer(seed=2, epochs=3)
    reference_result = reference.fit(train, val)
    fresh = make_trainer(seed=2, epochs=3, checkpoint_dir=tmp_path / "none-yet")
    result = fresh.fit(train, val, resume=True)
    assert result.resumed_from_epoch is None
    assert result.history == reference_result.history


def test_resume_of_a_finished_run_only_restores_best(tmp_path: Path):
    train, val = toy_data()
    done = make_trainer(seed=3, epochs=3, checkpoint_dir=tmp_path)
    done_result = done.fit(train, val)
    again = make_trainer(seed=3, model_seed=11, epochs=3, checkpoint_dir=tmp_path)
    result = again.fit(train, val, resume=True)
    assert result.history == done_result.history
    assert result.samples_seen == 0
    assert_same_weights(weights(again), weights(done))


def test_resume_when_metrics_are_numpy_floats(tmp_path: Path):
    train, val = toy_data()

    def numpy_metric(outputs, targets):
        return {"accuracy": np.float64(accuracy(outputs, targets)["accuracy"])}

    with pytest.raises(Interrupt):
        make_trainer(checkpoint_dir=tmp_path, metric_fn=numpy_metric, on_epoch_end=interrupt_at(2)).fit(train, val)
    result = make_trainer(checkpoint_dir=tmp_path, metric_fn=numpy_metric).fit(train, val, resume=True)
    assert result.resumed_from_epoch == 2


def test_checkpoint_is_written_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    train, val = toy_data()
    make_trainer(epochs=2, checkpoint_dir=tmp_path).fit(train, val)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_NAME]

    real_save = torch.save

    def dying_save(obj, path, *args, **kwargs):
        Path(path).write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(OSError, match="disk full"):
        make_trainer(epochs=3, checkpoint_dir=tmp_path).fit(train, val, resume=True)
    monkeypatch.setattr(torch, "save", real_save)
    state = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert state["epoch"] == 2  # the previous checkpoint survived the failed write


def test_corrupt_checkpoint_is_a_meddl_error(tmp_path: Path):
    train, val = toy_data()
    (tmp_path / CHECKPOINT_NAME).write_bytes(b"\x00garbage")
    with pytest.raises(MedDLError, match="cannot resume from this checkpoint") as exc:
        make_trainer(checkpoint_dir=tmp_path).fit(train, val, resume=True)
    assert CHECKPOINT_NAME in str(exc.value)


def test_foreign_checkpoint_is_a_meddl_error(tmp_path: Path):
    train, val = toy_data()
    torch.save({"weights": torch.zeros(2)}, tmp_path / CHECKPOINT_NAME)
    with pytest.raises(MedDLError, match="not a MedDL checkpoint"):
        make_trainer(checkpoint_dir=tmp_path).fit(train, val, resume=True)


def test_checkpoint_of_another_model_is_a_meddl_error(tmp_path: Path):
    train, val = toy_data()
    make_trainer(epochs=1, checkpoint_dir=tmp_path).fit(train, val)
    other = Trainer(MLP(4, 1, hidden=(32,)), make_loss("binary"), settings(), checkpoint_dir=tmp_path)
    with pytest.raises(MedDLError, match="does not fit this model"):
        other.fit(train, val, resume=True)


@pytest.mark.parametrize("metric_fn", [accuracy, None], ids=["other-metrics", "no-metrics"])
def test_monitor_of_a_missing_metric_is_an_error(metric_fn):
    train, val = toy_data()
    trainer = make_trainer(monitor="auroc", monitor_mode="max", metric_fn=metric_fn)
    with pytest.raises(MedDLError, match="monitor: 'auroc' is not a validation metric"):
        trainer.fit(train, val)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_an_error():
    with pytest.raises(MedDLError, match=r"train.device: 'cuda' requested"):
        resolve_device("cuda")
    with pytest.raises(MedDLError, match="'cuda:1'"):
        resolve_device("cuda:1")
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(MedDLError, match="16-mixed"):
        make_trainer(precision="16-mixed")


def test_resolve_device_cpu():
    assert resolve_device("cpu") == torch.device("cpu")


def test_same_seed_gives_identical_weights_other_seed_does_not():
    train, val = toy_data()
    first, second, third = make_trainer(seed=4), make_trainer(seed=4), make_trainer(seed=8)
    first_result = first.fit(train, val)
    assert second.fit(train, val).history == first_result.history
    third.fit(train, val)
    assert_same_weights(weights(first), weights(second))
    assert not all(torch.equal(a, b) for a, b in zip(weights(first).values(), weights(third).values(), strict=True))


def test_predict_returns_outputs_in_order():
    train, val = toy_data()
    trainer = make_trainer(epochs=2)
    trainer.fit(train, val)
    outputs = trainer.predict(val, batch_size=5)
    trainer.module.eval()
    with torch.no_grad():
        expected = trainer.module(val.tensors[0]).numpy()
    np.testing.assert_allclose(outputs, expected, rtol=1e-6, atol=1e-6)


def test_subset_keeps_tensor_fast_path():
    data = TensorDataset(torch.arange(10.0).reshape(5, 2), torch.arange(5.0))
    part = subset(data, np.array([4, 1]))
    assert isinstance(part, TensorDataset)
    assert part.tensors[1].tolist() == [4.0, 1.0]
    other = subset(Subset(data, [0, 1, 2]), np.array([2]))
    assert float(other[0][1]) == 2.0


def test_history_rows_record_epoch_losses_and_learning_rate():
    train, val = toy_data()
    rows = make_trainer(epochs=3).fit(train, val).history
    assert all({"train_loss", "val_loss", "lr", "val_accuracy"} <= row.keys() for row in rows)
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    assert rows[0]["lr"] > rows[-1]["lr"]  # cosine schedule decays the learning rate


def test_grad_norm_matches_the_float64_norm_for_every_layout():
    generator = torch.Generator().manual_seed(0)
    grads = [
        torch.randn(300, 700, generator=generator),  # contiguous: the dot-product path
        torch.randn(4, 8, 5, 5, generator=generator).contiguous(memory_format=torch.channels_last),
        torch.randn(64, generator=generator).to(torch.bfloat16),
        torch.randn(30, 20, generator=generator).t(),  # a transposed view
    ]
    expected = torch.sqrt(sum(g.double().square().sum() for g in grads))
    assert float(_grad_norm(grads)) == pytest.approx(float(expected), rel=1e-5)
    assert float(_grad_norm([])) == 0.0


@pytest.mark.parametrize("clip", [0.01, 1e6])  # clipping active, and a bound the gradients stay under
def test_clipping_inside_the_fused_step_matches_clip_grad_norm(clip: float):
    train, _ = toy_data()
    trainer = make_trainer(grad_clip=clip)
    assert trainer._fused_clip  # fused AdamW on the CPU: the path under test
    reference = make_trainer(grad_clip=clip)
    reference.module.load_state_dict(trainer.module.state_dict())
    x, y = train.tensors
    trainer.model.eval(), reference.model.eval()  # no dropout: the same gradients on both sides
    for _ in range(3):
        for t in (trainer, reference):
            t.optimizer.zero_grad(set_to_none=True)
            t.loss_fn(t.model(x[:16]), y[:16]).backward()
        norm = torch.nn.utils.clip_grad_norm_(reference.module.parameters(), clip)
        assert (float(norm) > clip) == (clip < 1)
        reference.optimizer.step()
        trainer._step()
        assert not hasattr(trainer.optimizer, "grad_scale")  # left for no other step
    for key, value in weights(trainer).items():
        torch.testing.assert_close(value, weights(reference)[key], rtol=1e-5, atol=1e-6)


def test_best_weights_snapshot_is_written_over_and_never_aliases_the_network():
    trainer = make_trainer()
    first = trainer._snapshot(None)
    assert_same_weights(first, weights(trainer))
    with torch.no_grad():
        for p in trainer.module.parameters():
            p.add_(1.0)
    changed = {name for name, _ in trainer.module.named_parameters()}
    assert not any(torch.equal(first[k], v) for k, v in weights(trainer).items() if k in changed)
    again = trainer._snapshot(first)
    assert again is first  # the same tensors, copied into: no new allocation each improving epoch
    assert_same_weights(again, weights(trainer))
    other = {k: v[:1].clone() for k, v in first.items()}  # another shape (e.g. a resumed foreign state): a new copy
    assert trainer._snapshot(other) is not other
