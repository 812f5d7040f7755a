"""Damaged inputs are errors that name the file and the line — never silently shifted, truncated or crashed on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from meddl.errors import MedDLError
from meddl.io import read_table
from meddl.io.images import image_channels, read_image
from meddl.io.yamlfile import read_yaml


def test_a_row_with_a_field_too_few_is_an_error_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("age,sex,outcome\n61,F,yes\n70,no\n55,M,no\n")
    with pytest.raises(MedDLError, match=r"ragged.csv: line 3 has 2 fields but the header has 3"):
        read_table(path)


def test_a_file_cut_mid_line_is_called_truncated(tmp_path: Path) -> None:
    path = tmp_path / "cut.csv"
    path.write_text("age,sex,outcome\n61,F,yes\n70,M")
    with pytest.raises(MedDLError, match=r"cut.csv: the file looks truncated: its last line \(3\) stops after 2 of 3"):
        read_table(path)


def test_quoted_commas_blank_lines_and_no_final_newline_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "fine.csv"
    path.write_text('note,age,outcome\n"a, b",61,yes\n\n"multi\nline",70,no')
    frame = read_table(path)
    assert frame.shape == (2, 3) and list(frame["age"]) == [61, 70]


def test_yaml_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_bytes(b"name: test\ndescription: caf\xe9\n")
    with pytest.raises(MedDLError, match=r"exp.yaml: not UTF-8 text \(byte b'\\xe9' on line 2\); save the experiment"):
        read_yaml(path, "experiment file")


def test_yaml_python_tags_are_refused_never_run(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text('name: !!python/object/apply:os.system ["touch pwned"]\n')
    with pytest.raises(MedDLError, match=r"column 7\): the tag '!!python/object/apply:os.system' is not allowed"):
        read_yaml(path)
    assert not Path("pwned").exists()


def test_alpha_is_reported_as_dropped(tmp_path: Path) -> None:
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[..., 3] = 128
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    Image.fromarray(rgba[..., 0], mode="L").save(tmp_path / "g.png")
    assert image_channels(tmp_path / "a.png") == (3, True)
    assert image_channels(tmp_path / "g.png") == (1, False)
    assert read_image(tmp_path / "a.png").meta["alpha_dropped"] is True


def test_an_unclosed_quote_names_the_line_it_opens_on(tmp_path: Path) -> None:
    path = tmp_path / "quote.csv"
    path.write_text('note,age,outcome\nfine,61,yes\n"never closed,70,no\nnext,55,no\nlast,40,yes\n')
    with pytest.raises(MedDLError, match=r"quote.csv: line 3: a quoted field opened on this line is never closed"):
        read_table(path)


def test_a_long_cell_is_not_a_damaged_row(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text("id,sequence,y\n1," + "A" * 200_000 + ",0\n2,C,1\n")
    assert read_table(path).shape == (2, 3)


def test_a_truncated_tsv_with_a_long_cell_is_called_truncated(tmp_path: Path) -> None:
    path = tmp_path / "cut.tsv"
    path.write_text("id\tsequence\ty\n1\t" + "A" * 200_000 + "\t0\n2\tC")
    with pytest.raises(MedDLError, match=r"cut.tsv: the file looks truncated: its last line \(3\)"):
        read_table(path)
