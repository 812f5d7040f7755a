"""Does MedDL's EHR feature extraction stay fast and flat in memory at 10^7 events, where plain pandas does not?

A synthetic hospital (``meddl.data.ehr_synth.synthetic_ehr``) is written with ~N events (``--events``, default
10^7; ``--quick``: 10^6) and a second one with ~N/2. On each, the mortality features of the EHR pipeline are
computed twice, each run in a fresh child process that reports its RSS once the libraries are imported and its
peak RSS after the work (``VmHWM``, reset after the imports through ``/proc/self/clear_refs``, because the
``ru_maxrss`` a child inherits across ``execve`` is the parent's; ``ru_maxrss`` is reported beside it):

* **MedDL** — ``meddl.data.ehr_cohort``: ``define_cohort(con, CohortSpec(outcome="mortality",
  observation_hours=48, min_age=18))``, ``build_vocabulary(con, cohort, FeatureSpec(bin_hours=4), all rows)``
  and ``extract_features(con, cohort, spec, vocabulary, out=folder)`` on a read-only connection to the store:
  SQL inside DuckDB, features written to ``features.npy`` chunk by chunk.
* **pandas** — the same features written by hand the way a data scientist would: every needed table read
  whole into pandas, the same exclusions, vocabulary, observation window, 4-hour bins, last value per bin with
  forward fill, observed flag, hours since the last value, multi-hot codes known before the window end, age and
  sex; the (N, T, F) array saved with ``np.save``.

Both connections cap DuckDB's buffer pool (``--duckdb-memory-limit``, default 256 MB): with DuckDB's default
(80 % of RAM) the pool keeps the blocks it has read, so the process grows with the store it scanned even though
the work itself does not need it. Both outputs are compared (largest absolute difference, over the channels
both name alike), so the timing compares equal work. Targets (the issue): MedDL ≤ 60 s for 10^7 events on 2
cores, and MedDL's peak RSS must not grow with the number of events (``meddl_peak_rss_ratio_n_vs_half`` close
to 1).

Then **training throughput** on those features (``training``): MedDL's ``Trainer`` against a hand-written
PyTorch loop (``_timing.compare_training``: the same ``gru`` network from the same seed, AdamW, cosine
schedule, clipping at 1.0, the same per-epoch permutation and validation work; ratio = MedDL / plain samples per
second, target ≥ 0.95) on the first ``--train-stays`` stays of MedDL's (N, T, F) features of the large store,
standardised as the EHR pipeline does (``SequenceScaler`` on the lab-value channels, fitted on the training
rows), split 80/20 in cohort order, with the EHR demo's model and train settings (``gru`` hidden 64, batch 128,
learning rate 0.002). Torch runs on one thread by default (``--threads``).

Prints one JSON line to stdout; progress goes to stderr.

    .venv/bin/python benchmarks/ehr_scale.py            # 10^7 events, a few minutes on 2 CPU cores
    .venv/bin/python benchmarks/ehr_scale.py --quick    # 10^6 events, well under a minute
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

TARGET_SECONDS = 60.0
MB = 1024 * 1024
US_PER_HOUR = 3_600_000_000
US_PER_YEAR = 365.25 * 24 * US_PER_HOUR
OBSERVATION_HOURS = 48.0
BIN_HOURS = 4.0
MIN_AGE = 18.0
TOP_LABS = 20
CODES_TOP = 200


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def current_rss_mb() -> float:
    with open("/proc/self/status") as stream:
        for line in stream:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def ru_maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark (Linux ≥ 4.0); False where refused.

    Needed because ``ru_maxrss`` survives ``execve``: a child started by a parent that holds a lot of memory
    starts with the parent's peak.
    """
    try:
        with open("/proc/self/clear_refs", "w") as stream:
            stream.write("5")
    except OSError:
        return False
    return True


def peak_rss_mb() -> float:
    """The RSS high-water mark (VmHWM) since the last reset, else ``ru_maxrss``."""
    with open("/proc/self/status") as stream:
        for line in stream:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return ru_maxrss_mb()


# -- MedDL --------------------------------------------------------------------------------------------------


def connect(store: Path, memory_limit: str | None) -> Any:
    """A read-only DuckDB connection, its buffer pool capped at ``memory_limit`` when given."""
    import duckdb

    con = duckdb.connect(str(store), read_only=True)
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    return con


def run_meddl(store: Path, out: Path, memory_limit: str | None) -> dict[str, Any]:
    """MedDL's cohort, vocabulary and features, as the EHR pipeline calls them."""
    from meddl.data.ehr_cohort import CohortSpec, FeatureSpec, build_vocabulary, define_cohort, extract_features

    before = current_rss_mb()
    started = time.perf_counter()
    con = connect(store, memory_limit)
    cohort = define_cohort(con, CohortSpec(outcome="mortality", observation_hours=OBSERVATION_HOURS, min_age=MIN_AGE))
    cohort_s = time.perf_counter() - started
    spec = FeatureSpec(bin_hours=BIN_HOURS, top_labs=TOP_LABS, codes_top=CODES_TOP)
    vocabulary = build_vocabulary(con, cohort, spec, np.ones(cohort.n, dtype=bool))
    vocabulary_s = time.perf_counter() - started - cohort_s
    features = extract_features(con, cohort, spec, vocabulary, out=out)
    seconds = time.perf_counter() - started
    con.close()
    names = list(features.feature_names)
    layout = {"value_channels": list(features.value_channels), "observed_channels": list(features.observed_channels)}
    (out / "names.json").write_text(
        json.dumps({"names": names, "visit_ids": [str(v) for v in cohort.visit_ids], **layout})
    )
    np.save(out / "labels.npy", np.asarray(cohort.labels, dtype=np.float32).reshape(-1))  # for the training part
    return {
        "seconds": round(seconds, 2),
        "cohort_s": round(cohort_s, 2),
        "vocabulary_s": round(vocabulary_s, 2),
        "features_s": round(seconds - cohort_s - vocabulary_s, 2),
        "rss_before_mb": round(before, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "stays": int(cohort.n),
        "shape": list(features.x.shape),
        "mortality": round(float(np.mean(cohort.labels)), 4),
    }


# -- plain pandas -------------------------------------------------------------------------------------------


def pandas_features(store: Path, memory_limit: str | None) -> tuple[np.ndarray, list[str], list[str], dict[str, float]]:
    """The same cohort and grid features with pandas over whole tables.

    Returns:
        x (N, T, F) float32, the channel names, the index stays' visit ids, and the seconds per phase.
    """
    import pandas as pd

    timings: dict[str, float] = {}
    started = time.perf_counter()
    con = connect(store, memory_limit)
    patients = con.execute("SELECT * FROM patients").df()
    visits = con.execute("SELECT * FROM visits").df()
    measurements = con.execute("SELECT patient_id, item, value, time FROM measurements").df()
    codes = []
    for kind, table, own_time in (
        ("dx", "diagnoses", "time"),
        ("px", "procedures", "time"),
        ("rx", "medications", "start_time"),
    ):
        frame = con.execute(f"SELECT patient_id, visit_id, system, code, {own_time} AS time FROM {table}").df()
        frame["kind"] = kind
        codes.append(frame)
    con.close()
    timings["read_s"] = time.perf_counter() - started

    # Cohort: the exclusions of define_cohort for in-hospital mortality, then the first eligible stay.
    stays = visits.merge(patients, on="patient_id", how="left")
    admit = stays["admit_time"]
    birth = pd.to_datetime(stays["birth_date"])
    age_years = (
        admit.dt.year
        - birth.dt.year
        - (
            (admit.dt.month < birth.dt.month) | ((admit.dt.month == birth.dt.month) & (admit.dt.day < birth.dt.day))
        ).astype(int)
    )
    window = pd.Timedelta(hours=OBSERVATION_HOURS)
    stays["window_end"] = admit + window
    los_hours = (stays["discharge_time"] - admit) / pd.Timedelta(hours=1)
    death = stays["death_time"].where(
        stays["death_time"].notna(), stays["discharge_time"].where(stays["died_in_hospital"].fillna(False))
    )
    keep = (
        stays["discharge_time"].notna()
        & (stays["discharge_time"] >= admit)
        & age_years.notna()
        & (age_years >= MIN_AGE)
        & (los_hours >= OBSERVATION_HOURS)
        & (death.isna() | (death >= stays["window_end"]))
    )
    cohort = stays[keep].sort_values(["patient_id", "admit_time", "visit_id"]).groupby("patient_id").head(1)
    cohort = cohort.sort_values(["patient_id", "admit_time", "visit_id"]).reset_index(drop=True)
    cohort["rid"] = np.arange(len(cohort))
    n = len(cohort)
    index_us = cohort["admit_time"].to_numpy("datetime64[us]").astype(np.int64)
    end_us = cohort["window_end"].to_numpy("datetime64[us]").astype(np.int64)
    discharge_us = cohort["discharge_time"].to_numpy("datetime64[us]").astype(np.int64)
    timings["cohort_s"] = time.perf_counter() - started - sum(timings.values())

    # Measurements inside each index stay's window, binned.
    bin_us = round(BIN_HOURS * US_PER_HOUR)
    steps = max(1, math.ceil(OBSERVATION_HOURS / BIN_HOURS - 1e-9))
    lengths = np.clip(
        np.ceil((np.minimum(end_us, np.where(discharge_us > index_us, discharge_us, end_us)) - index_us) / bin_us),
        1,
        steps,
    ).astype(np.int64)
    window_rows = measurements.merge(cohort[["patient_id", "rid", "admit_time", "window_end"]], on="patient_id")
    window_rows = window_rows[
        (window_rows["time"] >= window_rows["admit_time"]) & (window_rows["time"] < window_rows["window_end"])
    ]
    counts = window_rows.groupby("item").size().reset_index(name="n")
    labs = counts.sort_values(["n", "item"], ascending=[False, True])["item"].head(TOP_LABS).tolist()
    lab_index = {item: i for i, item in enumerate(labs)}
    window_rows = window_rows[window_rows["item"].isin(lab_index) & np.isfinite(window_rows["value"])].copy()
    window_rows["idx"] = window_rows["item"].map(lab_index).astype(np.int64)
    time_us = window_rows["time"].to_numpy("datetime64[us]").astype(np.int64)
    window_rows["time_us"] = time_us
    window_rows["step"] = (time_us - index_us[window_rows["rid"].to_numpy()]) // bin_us
    last = (
        window_rows.sort_values(["rid", "step", "idx", "time_us", "value"])
        .groupby(["rid", "step", "idx"], sort=False)
        .tail(1)
    )
    last = last[last["step"].to_numpy() < lengths[last["rid"].to_numpy()]]
    timings["labs_s"] = time.perf_counter() - started - sum(timings.values())

    # Codes known before the window end: own time, else the visit's discharge.
    all_codes = pd.concat(codes, ignore_index=True)
    all_codes = all_codes.merge(visits[["visit_id", "discharge_time"]], on="visit_id", how="left")
    all_codes["known_time"] = all_codes["time"].where(all_codes["time"].notna(), all_codes["discharge_time"])
    system = all_codes["system"].where(all_codes["system"].isna(), all_codes["system"] + ":").fillna("")
    all_codes["token"] = all_codes["kind"] + ":" + system + all_codes["code"]
    known = all_codes.merge(cohort[["patient_id", "rid", "window_end"]], on="patient_id")
    known = known[known["known_time"] < known["window_end"]][["rid", "token"]].drop_duplicates()
    token_counts = known.groupby("token").size().reset_index(name="n")
    vocabulary = token_counts.sort_values(["n", "token"], ascending=[False, True])["token"].head(CODES_TOP).tolist()
    token_index = {token: i for i, token in enumerate(vocabulary)}
    known_channel = known["token"].map(token_index).fillna(len(vocabulary)).astype(np.int64)
    timings["codes_s"] = time.perf_counter() - started - sum(timings.values())

    # Dense (N, T, F): mask, lab values / observed / hours since, codes, age and sex.
    k, n_codes = len(labs), len(vocabulary) + 1
    names = (
        ["step_mask"]
        + [f"lab:{i}:value" for i in labs]
        + [f"lab:{i}:observed" for i in labs]
        + [f"lab:{i}:hours_since" for i in labs]
        + [f"code:{t}" for t in vocabulary]
        + ["code:other"]
        + ["age/100", "sex_female", "sex_male"]
    )
    x = np.zeros((n, steps, len(names)), dtype=np.float32)
    real = (np.arange(steps)[None, :] < lengths[:, None]).astype(np.float32)
    x[:, :, 0] = real
    rid, step, idx = (last[c].to_numpy(np.int64) for c in ("rid", "step", "idx"))
    value_grid = np.zeros((n, steps, k), dtype=np.float32)
    last_grid = np.zeros((n, steps, k), dtype=np.int64)
    observed = np.zeros((n, steps, k), dtype=bool)
    value_grid[rid, step, idx] = last["value"].to_numpy(np.float32)
    last_grid[rid, step, idx] = last["time_us"].to_numpy(np.int64)
    observed[rid, step, idx] = True
    seen = np.zeros((n, k), dtype=bool)
    value = np.zeros((n, k), dtype=np.float32)
    last_time = np.zeros((n, k), dtype=np.int64)
    scale = US_PER_HOUR * steps * BIN_HOURS
    for t in range(steps):
        now = observed[:, t]
        seen |= now
        np.copyto(value, value_grid[:, t], where=now)
        np.copyto(last_time, last_grid[:, t], where=now)
        step_end = index_us + (t + 1) * bin_us
        since = np.where(seen, np.clip((step_end[:, None] - last_time) / scale, 0.0, 1.0), 1.0)
        x[:, t, 1 : 1 + k] = value * real[:, t, None]
        x[:, t, 1 + k : 1 + 2 * k] = now * real[:, t, None]
        x[:, t, 1 + 2 * k : 1 + 3 * k] = since * real[:, t, None]
    code_block = np.zeros((n, n_codes), dtype=np.float32)
    code_block[known["rid"].to_numpy(np.int64), known_channel.to_numpy()] = 1.0
    first_code = 1 + 3 * k
    x[:, :, first_code : first_code + n_codes] = real[:, :, None] * code_block[:, None, :]
    birth_us = pd.to_datetime(cohort["birth_date"]).to_numpy("datetime64[us]").astype(np.int64)
    sex = cohort["sex"].to_numpy()
    static = np.stack([(index_us - birth_us) / US_PER_YEAR / 100.0, sex == "F", sex == "M"], axis=1)
    static_steps = (np.arange(steps)[None, :] < np.maximum(lengths, 1)[:, None]).astype(np.float32)
    x[:, :, -3:] = static_steps[:, :, None] * static[:, None, :].astype(np.float32)
    timings["dense_s"] = time.perf_counter() - started - sum(timings.values())
    return x, names, cohort["visit_id"].astype(str).tolist(), timings


def run_pandas(store: Path, out: Path, memory_limit: str | None) -> dict[str, Any]:
    before = current_rss_mb()
    started = time.perf_counter()
    x, names, visit_ids, timings = pandas_features(store, memory_limit)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "features.npy", x)
    seconds = time.perf_counter() - started
    (out / "names.json").write_text(json.dumps({"names": names, "visit_ids": visit_ids}))
    return {
        "seconds": round(seconds, 2),
        **{key: round(value, 2) for key, value in timings.items()},
        "rss_before_mb": round(before, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "stays": len(visit_ids),
        "shape": list(x.shape),
    }


# -- orchestration ------------------------------------------------------------------------------------------


def child(spec: dict[str, Any]) -> None:
    """Run one side in this (fresh) process and print its figures as JSON."""
    import duckdb  # noqa: F401  (imported before measuring the RSS baseline on both sides)
    import pandas  # noqa: F401

    if spec["side"] == "meddl":
        import meddl.data.ehr_cohort  # noqa: F401

    reset = reset_peak_rss()
    if spec["side"] == "meddl":
        figures = run_meddl(Path(spec["store"]), Path(spec["out"]), spec["memory_limit"])
    else:
        figures = run_pandas(Path(spec["store"]), Path(spec["out"]), spec["memory_limit"])
    figures["high_water_mark_reset"] = reset
    figures["ru_maxrss_mb"] = round(ru_maxrss_mb(), 1)
    print(json.dumps(figures))


def measure(side: str, store: Path, out: Path, events: int, memory_limit: str | None) -> dict[str, Any]:
    spec = {"side": side, "store": str(store), "out": str(out), "memory_limit": memory_limit}
    process = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    if process.returncode != 0:
        tail = process.stderr.strip().splitlines()[-1] if process.stderr.strip() else "no message"
        log(process.stderr[-3000:])
        return {"events": events, "error": f"exit status {process.returncode}: {tail}"}
    figures = json.loads(process.stdout.strip().splitlines()[-1])
    figures["events"] = events
    figures["growth_mb"] = round(figures["peak_rss_mb"] - figures["rss_before_mb"], 1)
    log(
        f"{side} at {events:,} events: {figures['seconds']} s, peak RSS {figures['peak_rss_mb']:.0f} MB "
        f"(after imports {figures['rss_before_mb']:.0f} MB)"
    )
    return figures


def compare(meddl_out: Path, pandas_out: Path) -> dict[str, Any]:
    """Largest absolute difference between the two feature arrays over channels both name alike."""
    a_meta = json.loads((meddl_out / "names.json").read_text())
    b_meta = json.loads((pandas_out / "names.json").read_text())
    a = np.load(meddl_out / "features.npy", mmap_mode="r")
    b = np.load(pandas_out / "features.npy", mmap_mode="r")
    if a_meta["visit_ids"] != b_meta["visit_ids"] or a.shape[1] != b.shape[1]:
        return {"same_rows": a_meta["visit_ids"] == b_meta["visit_ids"], "shapes": [list(a.shape), list(b.shape)]}
    position = {name: i for i, name in enumerate(b_meta["names"])}
    shared = [(i, position[name]) for i, name in enumerate(a_meta["names"]) if name in position]
    ia, ib = (np.array(c) for c in zip(*shared, strict=True))
    worst = 0.0
    for start in range(0, a.shape[0], 4096):
        block_a = np.asarray(a[start : start + 4096][:, :, ia])
        block_b = np.asarray(b[start : start + 4096][:, :, ib])
        worst = max(worst, float(np.max(np.abs(block_a - block_b), initial=0.0)))
    return {
        "same_rows": True,
        "channels_compared": len(shared),
        "channels_meddl": len(a_meta["names"]),
        "channels_pandas": len(b_meta["names"]),
        "max_abs_difference": worst,
    }


def training_speed(
    features_dir: Path, *, stays: int, epochs: int, batch_size: int, repeats: int, threads: int, seed: int
) -> dict[str, Any]:
    """MedDL's ``Trainer`` against a plain PyTorch loop on the ``gru`` and MedDL's extracted features."""
    import torch
    from _timing import compare_training  # benchmarks/_timing.py, beside this script
    from torch.utils.data import TensorDataset

    from meddl.models import build_model
    from meddl.preprocess.ehr import SequenceScaler

    torch.set_num_threads(threads)
    layout = json.loads((features_dir / "names.json").read_text())
    features = np.load(features_dir / "features.npy", mmap_mode="r")
    labels = np.load(features_dir / "labels.npy")
    n = min(stays, len(features))
    n_train = round(0.8 * n)
    x = np.asarray(features[:n], dtype=np.float32)  # (n, T, F)
    scaler = SequenceScaler(
        value_channels=layout["value_channels"], observed_channels=layout["observed_channels"] or None
    ).fit(x[:n_train])
    x = np.ascontiguousarray(scaler.transform(x), dtype=np.float32)
    y = labels[:n].astype(np.float32)
    train = TensorDataset(torch.from_numpy(x[:n_train]), torch.from_numpy(y[:n_train]))
    val = TensorDataset(torch.from_numpy(x[n_train:]), torch.from_numpy(y[n_train:]))
    in_features = int(x.shape[2])
    log(f"training on {n_train} stays, validating on {n - n_train}: (T, F) = {tuple(x.shape[1:])}")

    def build() -> torch.nn.Module:
        return build_model("gru", {"hidden": 64}, in_features=in_features, out_channels=1)

    figures = compare_training(
        "gru",
        build,
        "binary",
        train,
        val,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=0.002,
        repeats=repeats,
        seed=seed,
    )
    return {
        "arch": "gru",
        "params": {"hidden": 64},
        "stays_available": len(features),
        "positive_rate": round(float(y.mean()), 4),
        **figures,
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="events in the large store")
    parser.add_argument("--quick", action="store_true", help="10^6 events")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--duckdb-memory-limit",
        default="256MB",
        help="DuckDB buffer pool cap on both sides ('' for DuckDB's default, 80%% of RAM, which caches the store)",
    )
    parser.add_argument("--skip-pandas", action="store_true", help="time MedDL only")
    parser.add_argument("--train-stays", type=int, default=8_000, help="stays of the large store trained on")
    parser.add_argument("--train-epochs", type=int, default=2, help="epochs per timed training run")
    parser.add_argument("--train-batch-size", type=int, default=128, help="the EHR demo's")
    parser.add_argument("--train-repeats", type=int, default=5, help="alternating training repetitions")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads for the training part")
    parser.add_argument("--skip-training", action="store_true", help="no training-throughput part")
    parser.add_argument("--keep", type=Path, default=None, help="write the stores and features here and keep them")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(json.loads(args.child))
        return
    if args.quick:
        args.events = 1_000_000
        args.train_stays, args.train_epochs, args.train_repeats = 2_000, 1, 1
    memory_limit = args.duckdb_memory_limit or None
    from meddl.data.ehr_synth import synthetic_ehr

    load_start = os.getloadavg()
    started = time.perf_counter()
    work = args.keep or Path(tempfile.mkdtemp(prefix="meddl-ehr-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {"benchmark": "ehr_scale"}
    try:
        stores = {}
        for label, events in (("n", args.events), ("half", args.events // 2)):
            begun = time.perf_counter()
            result = synthetic_ehr(work / f"ehr-{label}.duckdb", target_events=events, seed=args.seed)
            seconds = time.perf_counter() - begun
            log(
                f"synthetic store {label}: {result.n_events:,} events, {result.n_patients:,} patients, "
                f"{result.n_visits:,} visits in {seconds:.1f} s"
            )
            stores[label] = result
            figures[f"synthetic_{label}"] = {
                "events": result.n_events,
                "patients": result.n_patients,
                "visits": result.n_visits,
                "write_s": round(seconds, 2),
                "file_mb": round(result.path.stat().st_size / MB, 1),
            }
        runs: dict[str, dict[str, Any]] = {}
        for side in ("meddl", "pandas"):
            if side == "pandas" and args.skip_pandas:
                continue
            for label in ("n", "half"):
                runs[f"{side}_{label}"] = measure(
                    side, stores[label].path, work / f"features-{side}-{label}", stores[label].n_events, memory_limit
                )
        figures.update(runs)
        meddl_n, meddl_half = runs["meddl_n"], runs["meddl_half"]
        if "error" not in meddl_n and "error" not in meddl_half:
            figures["meddl_peak_rss_ratio_n_vs_half"] = round(meddl_n["peak_rss_mb"] / meddl_half["peak_rss_mb"], 3)
            figures["meddl_seconds_within_target"] = meddl_n["seconds"] <= TARGET_SECONDS
        if not args.skip_pandas and "error" not in runs["pandas_n"]:
            pandas_n = runs["pandas_n"]
            figures["pandas_peak_rss_ratio_n_vs_half"] = (
                round(pandas_n["peak_rss_mb"] / runs["pandas_half"]["peak_rss_mb"], 3)
                if "error" not in runs["pandas_half"]
                else None
            )
            if "error" not in meddl_n:
                figures["speedup_vs_pandas"] = round(pandas_n["seconds"] / meddl_n["seconds"], 2)
                figures["peak_rss_ratio_meddl_vs_pandas"] = round(meddl_n["peak_rss_mb"] / pandas_n["peak_rss_mb"], 3)
                figures["agreement"] = compare(work / "features-meddl-n", work / "features-pandas-n")
        if not args.skip_training and "error" not in meddl_n:
            figures["training"] = training_speed(
                work / "features-meddl-n",
                stays=args.train_stays,
                epochs=args.train_epochs,
                batch_size=args.train_batch_size,
                repeats=args.train_repeats,
                threads=args.threads,
                seed=args.seed,
            )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    figures.update(
        {
            "target_seconds": TARGET_SECONDS,
            "duckdb_memory_limit": memory_limit,
            "cpu_count": os.cpu_count(),
            "load_average": {"start": [round(v, 2) for v in load_start], "end": [round(v, 2) for v in os.getloadavg()]},
            "quick": args.quick,
            "wall_s": round(time.perf_counter() - started, 1),
        }
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
