"""The sequence pipeline end to end: FASTA, FASTA + labels, a sequence table and BED + reference in; a bundle
that predicts, explains (attribution logos), scores VCF variants and is validated on another labelled FASTA."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from meddl import Experiment, load_bundle
from meddl.cli import main
from meddl.data.motifs import PlantedMotifs, planted_motif_dataset, write_planted_dataset
from meddl.run.privacy import local_ids_path

LENGTH = 80
MOTIFS = ("MA0139.2", "MA0106.3")  # CTCF, TP53: long, informative sites that a 2-epoch CNN finds


def sequence_config(path: str, **sections: Any) -> dict[str, Any]:
    """A small, fast experiment: one 16-filter layer, 3 epochs, 20 bootstrap resamples."""
    config: dict[str, Any] = {
        "name": "motifs",
        "task": "binary",
        "data": {"kind": "sequence", "path": path, "positive_label": 1},
        "preprocess": {"length": LENGTH},
        "model": {"arch": "sequence_cnn", "filters": [16], "kernel_sizes": [11], "hidden": 16},
        "train": {"epochs": 3, "batch_size": 32, "learning_rate": 0.01, "seed": 0, "progress": False},
        "evaluate": {"bootstrap": 20, "baselines": ["logistic_regression"]},
    }
    for section, values in sections.items():
        config[section] = {**config.get(section, {}), **values}
    return config


def run_cli(args: list[Any], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write_fasta(path: Path, records: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f">{header}\n{sequence}\n" for header, sequence in records))
    return path


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PlantedMotifs, dict[str, Path]]:
    folder = tmp_path_factory.mktemp("motifs")
    data = planted_motif_dataset(300, length=LENGTH, motifs=MOTIFS, seed=0)
    return folder, data, write_planted_dataset(folder / "data", data, seed=0)


@pytest.fixture(scope="module")
def fasta_run(planted: tuple[Path, PlantedMotifs, dict[str, Path]]) -> Path:
    """sequence_cnn on a FASTA with ``label=`` headers, through the Python API with a relative path."""
    folder, _, _ = planted
    Experiment.from_dict(sequence_config("data/sequences.fa"), base_dir=folder).run(out=folder / "run")
    return folder / "run"


def test_fasta_run_writes_a_bundle_with_learned_motifs(
    planted: tuple[Path, PlantedMotifs, dict[str, Path]], fasta_run: Path
) -> None:
    _, data, _ = planted
    metrics = json.loads((fasta_run / "metrics.json").read_text())
    assert metrics["data"]["n_rows_used"] == 300 and metrics["data"]["classes"] == ["0", "1"]
    assert metrics["test"]["auroc"]["value"] > 0.75  # planted CTCF / TP53 sites are learnable in 3 epochs
    assert metrics["test"]["auroc"]["ci"][0] is not None
    assert "logistic_regression" in metrics["baselines"]
    assert metrics["explanation_quality"]["n_seqlets"] > 0
    report = (fasta_run / "report.html").read_text()
    assert "Motifs the model learned" in report and "data:image/png;base64" in report

    # The reloaded bundle reproduces the run's test AUROC from its own predictions (same weights, same strand
    # averaging, same threshold), and two loads predict identically.
    splits = pd.read_csv(local_ids_path(fasta_run))
    first = load_bundle(fasta_run).predict(planted[2]["fasta"])
    second = load_bundle(fasta_run).predict(planted[2]["fasta"])
    pd.testing.assert_frame_equal(first, second)
    assert first["id"].tolist() == data.ids
    test = splits.loc[splits["split"] == "test", "id"]
    scored = first.set_index("id").loc[test, "probability_1"].to_numpy()
    truth = data.labels[[int(i[3:]) for i in test]]
    assert roc_auc_score(truth, scored) == pytest.approx(metrics["test"]["auroc"]["value"], abs=1e-6)
    threshold = load_bundle(fasta_run).threshold
    assert (first["prediction"] == np.where(first["probability_1"] >= threshold, "1", "0")).all()


def test_predict_explain_writes_predictions_and_a_logo_per_sequence(
    planted: tuple[Path, PlantedMotifs, dict[str, Path]], fasta_run: Path, tmp_path: Path, capsys: Any
) -> None:
    _, data, _ = planted
    new = write_fasta(tmp_path / "seqs.fa", [(f"new{i}", data.sequences[i]) for i in range(5)])
    code, _, err = run_cli(
        ["predict", fasta_run, "--data", new, "--out", tmp_path / "p.csv", "--explain", "--top-k", 3], capsys
    )
    assert code == 0, err
    predictions = pd.read_csv(tmp_path / "p.csv", keep_default_na=False)
    assert predictions["id"].tolist() == [f"new{i}" for i in range(5)]
    assert predictions["probability_1"].between(0, 1).all()
    logos = [Path(p) for p in predictions["explanation"]]
    assert len(set(logos)) == 5 and all(p.read_bytes().startswith(b"\x89PNG") for p in logos)
    assert all(p.parent == tmp_path / "p_explanations" for p in logos)


def test_predict_variants_scores_ref_and_alt_and_flags_a_ref_mismatch(
    planted: tuple[Path, PlantedMotifs, dict[str, Path]], fasta_run: Path, tmp_path: Path, capsys: Any
) -> None:
    _, _, paths = planted
    lines = paths["vcf"].read_text().splitlines(keepends=True)
    body = [i for i, line in enumerate(lines) if not line.startswith("#")]
    assert len(body) >= 3
    fields = lines[body[0]].split("\t")
    wrong = next(b for b in "ACGT" if b != fields[3])
    lines[body[0]] = "\t".join([*fields[:3], wrong, *fields[4:]])
    vcf = tmp_path / "variants.vcf"
    vcf.write_text("".join(lines))

    code, _, err = run_cli(
        ["predict", fasta_run, "--variants", vcf, "--reference", paths["reference"], "--out", tmp_path / "v.csv"],
        capsys,
    )
    assert code == 0, err
    assert "1 flagged" in err
    table = pd.read_csv(tmp_path / "v.csv", keep_default_na=False, na_values=[""])
    assert len(table) == len(body)
    assert {"ref_1", "alt_1", "difference", "ref_matches", "note"} <= set(table.columns)
    flagged = table.iloc[0]
    assert not flagged["ref_matches"] and f"VCF REF '{wrong}'" in flagged["note"] and "not scored" in flagged["note"]
    assert np.isnan(flagged["ref_1"]) and np.isnan(flagged["difference"])
    scored = table.iloc[1:]
    assert scored["ref_matches"].all() and (scored["note"].fillna("") == "").all()
    assert np.allclose(scored["difference"], scored["alt_1"] - scored["ref_1"])
    # The variants destroy planted sites, so some change the score; a REF-only window would change none.
    assert (scored["difference"].abs() > 1e-6).any()


def test_evaluate_on_another_labelled_fasta(fasta_run: Path, tmp_path: Path, capsys: Any) -> None:
    other = planted_motif_dataset(80, length=LENGTH, motifs=MOTIFS, seed=7)
    paths = write_planted_dataset(tmp_path / "site_b", other, formats=("fasta",))
    code, out, err = run_cli(["evaluate", fasta_run, "--data", paths["fasta"], "--out", tmp_path / "ext"], capsys)
    assert code == 0, err
    metrics = json.loads((tmp_path / "ext" / "metrics.json").read_text())
    assert metrics["data"]["n_rows_used"] == 80
    scores = load_bundle(fasta_run).predict(paths["fasta"])["probability_1"]
    assert metrics["test"]["auroc"]["value"] == pytest.approx(roc_auc_score(other.labels, scores), abs=1e-6)
    assert (tmp_path / "ext" / "report.html").is_file() and "auroc" in out


def test_fasta_with_a_labels_csv_and_patients_trains_danq(
    planted: tuple[Path, PlantedMotifs, dict[str, Path]], tmp_path: Path
) -> None:
    _, data, _ = planted
    n = 160
    write_fasta(tmp_path / "plain.fa", [(f"r{i} from=chr", data.sequences[i]) for i in range(n)])
    labels = pd.DataFrame(
        {"record": [f"r{i}" for i in range(n)], "bound": data.labels[:n], "donor": [f"D{i // 4}" for i in range(n)]}
    )
    labels.loc[3, "bound"] = None  # a missing label is left out and counted
    labels.to_csv(tmp_path / "labels.csv", index=False)
    config = sequence_config(
        "plain.fa",
        data={"labels": "labels.csv", "id_column": "record", "target": "bound", "patient_id": "donor"},
        model={"arch": "danq", "filters": 8, "kernel_size": 11, "hidden": 8, "dense": 8},
        train={"epochs": 1},
        evaluate={"baselines": []},
    )
    config["model"] = {"arch": "danq", "filters": 8, "kernel_size": 11, "hidden": 8, "dense": 8}
    result = Experiment.from_dict(config, base_dir=tmp_path).run(out=tmp_path / "run")
    assert result.metrics["data"]["n_rows_used"] == n - 1
    assert result.metrics["data"]["dropped"]["missing label"] == 1
    splits = pd.read_csv(local_ids_path(tmp_path / "run"))
    assert splits.groupby("patient_id")["split"].nunique().max() == 1  # split by donor
    assert "r3" not in set(splits["id"])


def test_sequence_table_with_kmer_tokens_trains_seed_attention(
    planted: tuple[Path, PlantedMotifs, dict[str, Path]], tmp_path: Path
) -> None:
    folder, _, _ = planted
    config = sequence_config(
        str(folder / "data" / "sequences.csv"),
        preprocess={"encoding": "kmer", "k": 3, "reverse_complement": False},
        train={"epochs": 2},
    )
    config["model"] = {"arch": "seed_attention", "embed_dim": 8, "units": 8}
    result = Experiment.from_dict(config).run(out=tmp_path / "run")
    assert result.metrics["data"]["n_rows_used"] == 300
    assert json.loads((tmp_path / "run" / "model.json").read_text())["data_arguments"]["vocab_size"] == 4**3 + 2
    assert "Motifs the model learned" in (tmp_path / "run" / "report.html").read_text()
    predictions = load_bundle(tmp_path / "run").predict(folder / "data" / "sequences.csv")
    assert len(predictions) == 300 and predictions["probability_1"].between(0, 1).all()


def test_bed_intervals_are_cut_strand_aware(
    planted: tuple[Path, PlantedMotifs, dict[str, Path]], tmp_path: Path
) -> None:
    _, data, paths = planted
    # Without strand averaging the score depends on the strand read, so BED and FASTA predictions agree only if
    # the '-' intervals (every third) are reverse-complemented back to the sequences the FASTA holds.
    pd.DataFrame({"id": data.ids, "label": data.labels}).to_csv(tmp_path / "labels.csv", index=False)
    config = sequence_config(
        str(paths["bed"]),
        data={"reference": "genome.fa", "labels": str(tmp_path / "labels.csv")},
        preprocess={"reverse_complement": False},
        train={"epochs": 1},
        evaluate={"baselines": []},
    )
    Experiment.from_dict(config).run(out=tmp_path / "run")
    bundle = load_bundle(tmp_path / "run")
    by_bed = bundle.predict(paths["bed"])
    write_fasta(tmp_path / "same.fa", list(zip(data.ids, data.sequences, strict=True)))
    by_fasta = bundle.predict(tmp_path / "same.fa")
    assert by_bed["id"].tolist() == data.ids
    np.testing.assert_allclose(by_bed["probability_1"], by_fasta["probability_1"], atol=1e-6)


def test_multiclass_motifs_are_explained_towards_the_predicted_class(tmp_path: Path, capsys: Any) -> None:
    data = planted_motif_dataset(240, length=LENGTH, motifs=MOTIFS, max_sites=1, positive_fraction=0.67, seed=5)
    classes = np.full(len(data.sequences), "none", dtype=object)
    classes[data.sites["sequence"].to_numpy()] = data.sites["name"].to_numpy()
    table = pd.DataFrame({"id": data.ids, "sequence": data.sequences, "site": classes})
    table.to_csv(tmp_path / "sites.csv", index=False)
    config = sequence_config("sites.csv", data={"target": "site", "positive_label": None}, train={"epochs": 2})
    config["task"] = "multiclass"
    result = Experiment.from_dict(config, base_dir=tmp_path).run(out=tmp_path / "run")
    assert result.metrics["data"]["classes"] == ["CTCF", "TP53", "none"]
    assert "Motifs the model learned" in (tmp_path / "run" / "report.html").read_text()

    bundle = load_bundle(tmp_path / "run")
    cases = bundle.read(tmp_path / "sites.csv")
    scores = bundle.scores(cases.inputs)
    logits = bundle.modality.explained_logits(scores)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(logits, np.argmax(scores, axis=1))  # not always class 0 ('CTCF')
    assert len(set(logits.tolist())) > 1
    table.head(6).drop(columns=["site"]).to_csv(tmp_path / "few.csv", index=False)
    code, _, err = run_cli(
        ["predict", tmp_path / "run", "--data", tmp_path / "few.csv", "--out", tmp_path / "p.csv", "--explain"],
        capsys,
    )
    assert code == 0, err
    predictions = pd.read_csv(tmp_path / "p.csv")
    assert {"probability_CTCF", "probability_TP53", "probability_none"} <= set(predictions.columns)
    assert all(Path(p).is_file() for p in predictions["explanation"])


def _bad_inputs(folder: Path, data: PlantedMotifs, paths: dict[str, Path]) -> dict[str, tuple[dict, list[str]]]:
    """Experiment data sections with one defect each, and the words its one-line error must contain."""
    good = [(f"s{i} label={int(data.labels[i])}", data.sequences[i]) for i in range(20)]
    broken = list(good)
    broken[7] = ("s7 label=1", data.sequences[7][:10] + "X" + data.sequences[7][11:])
    write_fasta(folder / "invalid.fa", broken)
    (folder / "empty.fa").write_text("")
    write_fasta(folder / "duplicated.fa", [*good, ("s4 label=0", data.sequences[4])])
    bed = paths["bed"].read_text().splitlines()
    bed[5] = bed[5].replace("chr1", "chrZ", 1)
    (folder / "unknown_chrom.bed").write_text("\n".join(bed) + "\n")
    return {
        "invalid base": ({"path": "invalid.fa"}, ["invalid.fa", "'s7'", "'X'", "position 11"]),
        "empty FASTA": ({"path": "empty.fa"}, ["empty.fa", "no FASTA records"]),
        "duplicate id": ({"path": "duplicated.fa"}, ["duplicated.fa", "'s4'", "twice"]),
        "BED chromosome absent": (
            {"path": "unknown_chrom.bed", "reference": str(paths["reference"])},
            ["unknown_chrom.bed", "line 6", "'chrZ'"],
        ),
        "BED without reference": ({"path": str(paths["bed"])}, ["intervals.bed", "data.reference"]),
    }


@pytest.mark.parametrize(
    "case", ["invalid base", "empty FASTA", "duplicate id", "BED chromosome absent", "BED without reference"]
)
def test_bad_input_is_one_line_and_exit_code_2(
    case: str, planted: tuple[Path, PlantedMotifs, dict[str, Path]], tmp_path: Path, capsys: Any
) -> None:
    _, data, paths = planted
    data_section, words = _bad_inputs(tmp_path, data, paths)[case]
    config = sequence_config("placeholder.fa", data=data_section)
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(yaml.safe_dump(config, sort_keys=False))
    code, _, err = run_cli(["train", experiment, "--out", tmp_path / "run", "--quiet"], capsys)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_bad_prediction_input_names_the_record(
    planted: tuple[Path, PlantedMotifs, dict[str, Path]], fasta_run: Path, tmp_path: Path, capsys: Any
) -> None:
    _, data, _ = planted
    write_fasta(tmp_path / "new.fa", [("ok", data.sequences[0]), ("gap", "ACGT-ACGT" * 8)])
    code, _, err = run_cli(["predict", fasta_run, "--data", tmp_path / "new.fa", "--out", tmp_path / "p.csv"], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "'gap'" in err and "'-'" in err
    assert not (tmp_path / "p.csv").exists()
