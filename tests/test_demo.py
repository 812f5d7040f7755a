"""`meddl demo`: real cohorts from installed packages, written to disk and run like a user's experiment."""

from __future__ import annotations

from pathlib import Path

import pytest

from meddl.cli import main


@pytest.mark.slow
def test_demo_runs_every_part_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sksurv.datasets import load_gbsg2

    with _no_exit():
        main(["demo", "--out", str(tmp_path), "--quick"])
    out = capsys.readouterr().out
    for name in ("wdbc", "gbsg2"):
        for arch in ("mlp", "ft_transformer"):
            assert (tmp_path / name / "runs" / arch / "report.html").is_file()
            assert (tmp_path / name / "runs" / arch / "manifest.json").is_file()
    assert out.count("AUROC") >= 4

    import json

    metrics = json.loads((tmp_path / "gbsg2" / "runs" / "mlp" / "metrics.json").read_text())
    _, outcome = load_gbsg2()
    censored_early = int(((~outcome["cens"]) & (outcome["time"] < 5 * 365.25)).sum())
    assert metrics["data"]["n_rows_read"] == 686
    assert metrics["data"]["dropped"]["missing target"] == censored_early
    assert metrics["data"]["n_rows_used"] == 686 - censored_early
    report = (tmp_path / "gbsg2" / "runs" / "mlp" / "report.html").read_text()
    assert f"{censored_early} of 686 patients were censored before 5 years" in report
    wdbc = json.loads((tmp_path / "wdbc" / "runs" / "mlp" / "metrics.json").read_text())
    assert wdbc["test"]["auroc"]["value"] > 0.9  # an easy, real task: a working pipeline must get this right

    # every other part of the demo ran end to end through the real readers and wrote its bundle and report
    for run in (
        "phantoms/runs/small_cnn",
        "segmentation/runs/unet",
        "motifs/runs/sequence_cnn",
        "gse7390/runs/mlp",
        "gse7390/runs/ft_transformer",
        "ecg/runs/seed_lstm",
        "ehr/runs/gru",
        "fusion/runs/fusion",
    ):
        assert (tmp_path / run / "report.html").is_file(), run
        assert (tmp_path / run / "manifest.json").is_file(), run
    for name in (
        "phantoms (DICOM)",
        "phantoms (DICOM, masks)",
        "planted motifs (DNA)",
        "GSE7390 (expression)",
        "ECG heart rate",
        "EHR mortality",
        "patients (table + PNG + expression)",
    ):
        assert name in out
    gse = json.loads((tmp_path / "gse7390" / "runs" / "mlp" / "metrics.json").read_text())
    assert gse["data"]["dropped"]["censored before the horizon (outcome unknown)"] == 9
    for run in ("gbsg2-survival/runs/deepsurv", "whas500-survival/runs/deepsurv", "gse7390-survival/runs/deepsurv"):
        survival = json.loads((tmp_path / run / "metrics.json").read_text())
        assert not any(survival["data"]["dropped"].values()) and "c_index" in survival["test"], run  # all kept
    assert "GBSG2 (survival)" in out and "Harrell's C" in out
    ehr = json.loads((tmp_path / "ehr" / "runs" / "gru" / "metrics.json").read_text())
    assert ehr["data"]["n_rows_used"] < ehr["data"]["n_rows_read"]  # exclusions counted, not hidden

    # every figure of every demo report can be read at the page's width (checked in Chromium where it is installed;
    # CI installs it, and the page tests fail there without it)
    if Path("/usr/bin/chromium").exists():
        from tests.report.readable import figure_problems

        reports = sorted(tmp_path.rglob("report.html"))
        assert len(reports) >= 12
        assert figure_problems(reports) == []


class _no_exit:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, value: object, traceback: object) -> bool:
        return isinstance(value, SystemExit) and not value.code


@pytest.mark.slow
def test_the_demo_gives_the_same_figures_twice_on_one_machine(tmp_path: Path) -> None:
    """The README's figures are reproducible where they were made: two runs of a demo part, same numbers."""
    import json

    from meddl.demo import run_demo

    figures = []
    for attempt in ("first", "second"):
        rows = run_demo(tmp_path / attempt, quick=True, parts=["tables", "survival"])
        figures.append([json.dumps(row["metrics"]["test"], sort_keys=True) for row in rows])
    assert figures[0] == figures[1]


def test_the_cli_offers_every_demo_part() -> None:
    from meddl.cli import app
    from meddl.demo import DEMO_PARTS

    option = next(p for p in app.commands["demo"].params if p.name == "only")
    assert tuple(option.type.choices) == DEMO_PARTS  # the CLI lists them by hand (importing the demo is slow)


def test_demo_lanes_share_the_cores_the_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    from meddl.demo import demo_lanes
    from meddl.train import runtime

    monkeypatch.setattr(runtime, "cpu_budget", lambda: 2)
    assert demo_lanes(9) == (2, 1)  # the CI runner and this machine: two parts at a time, one thread each
    assert demo_lanes(1) == (1, 2)  # one part keeps every core
    assert demo_lanes(9, lanes=1) == (1, 2)
    monkeypatch.setattr(runtime, "cpu_budget", lambda: 16)
    assert demo_lanes(9) == (4, 4)  # at most four lanes: each part's run holds up to a few GiB
    assert demo_lanes(9, lanes=3) == (3, 5)
    monkeypatch.setattr(runtime, "cpu_budget", lambda: 1)
    assert demo_lanes(9) == (1, 1)


def test_a_bad_lane_count_is_refused_before_anything_runs(tmp_path: Path) -> None:
    from meddl.demo import run_demo
    from meddl.errors import MedDLError

    with pytest.raises(MedDLError, match="lanes must be at least 1, got 0"):
        run_demo(tmp_path, lanes=0)
    assert not any(tmp_path.iterdir())
    (tmp_path / "taken").write_text("a file, not a folder")
    with pytest.raises(MedDLError, match="taken/demo: cannot make the demo's folder there"):
        run_demo(tmp_path / "taken" / "demo")
