"""One prediction run for every kind: a bundle's predictions for new cases written to a table file.

``meddl predict`` calls :func:`predict_to_file`; from Python, ``load_bundle(path).predict(data)`` returns the same
table without writing it.
"""

from __future__ import annotations

from pathlib import Path

from meddl.bundle import load_bundle
from meddl.errors import MedDLError
from meddl.io import write_table
from meddl.io.outputs import check_output

__all__ = ["predict_to_file"]


def predict_to_file(
    bundle_path: str | Path,
    out: str | Path,
    *,
    data: str | Path | None = None,
    explain: bool = False,
    top_k: int | None = None,
    variants: str | Path | None = None,
    reference: str | Path | None = None,
    mc_samples: int = 0,
) -> str:
    """Predict for ``data`` (or score the REF/ALT alleles of a VCF's ``variants``) and write the table to ``out``
    (``.csv``, ``.tsv`` or ``.parquet``); explanation files, when the kind writes them, go to a folder beside it.
    ``mc_samples``: average that many MC dropout passes and add each case's spread (``mc_std``).

    Returns:
        One line saying what was written, for the user.

    Raises:
        MedDLError: neither ``data`` nor ``variants`` was given, or the input cannot be read.
    """
    bundle = load_bundle(bundle_path)
    out = Path(out)
    check_output(out, inputs=[data, variants, reference], bundle=bundle.path)
    if variants is not None:
        table = bundle.modality.score_variants(bundle, Path(variants), Path(reference) if reference else None)
        write_table(table, out)
        flagged = int((~table["ref_matches"]).sum())
        return f"wrote REF/ALT predictions for {len(table)} variant(s) to {out}" + (
            f"; {flagged} flagged: VCF REF differs from the reference (not scored, see 'note')" if flagged else ""
        )
    if data is None:
        raise MedDLError("give --data (new cases) or, for a sequence model, --variants file.vcf")
    if bundle.task == "segmentation":  # the masks are the prediction: always written, beside the table
        mask_dir = out.parent / f"{out.stem}_masks"
        overlay_dir = out.parent / f"{out.stem}_overlays" if explain else None
        table = bundle.predict(data, mask_dir=mask_dir, explain_dir=overlay_dir)
        write_table(table, out)
        n_notes = int((table["note"].fillna("") != "").sum())
        return (
            f"wrote {int((table['note'].fillna('') == '').sum())} mask(s) to {mask_dir} and each case's volume and "
            f"lesion count to {out}"
            + (f" ({n_notes} case(s) not segmented: see the 'note' column)" if n_notes else "")
            + (f"; overlays in {overlay_dir}" if overlay_dir else "")
        )
    folder = bundle.modality.explanation_files
    explain_dir = out.parent / f"{out.stem}_{folder}" if explain and folder else None
    predictions = bundle.predict(data, explain=explain, explain_dir=explain_dir, top_k=top_k, mc_samples=mc_samples)
    write_table(predictions, out)
    n_notes = int((predictions["note"].fillna("") != "").sum())
    return (
        f"wrote {len(predictions)} predictions to {out}"
        + (f" ({n_notes} case(s) carry a note: see the 'note' column)" if n_notes else "")
        + (f"; {folder.replace('_', ' ')} in {explain_dir}" if folder and explain_dir else "")
    )
