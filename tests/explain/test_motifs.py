"""Per-sequence attribution logos: a window around the strongest region, readable at the page's width."""

from __future__ import annotations

import numpy as np

from meddl.explain.motifs import focus_window, logo_png


def test_focus_window_finds_the_strongest_region_of_a_long_sequence() -> None:
    matrix = np.zeros((4, 7080))
    matrix[2, 3000:3010] = 1.0  # the only attribution: a 10-base motif at 3001–3010
    window, start = focus_window(matrix, 60)
    assert window.shape == (4, 60) and start <= 3000 and start + 60 >= 3010
    short = np.ones((4, 30))
    assert focus_window(short, 60)[1] == 0 and focus_window(short, 60)[0].shape == (4, 30)
    png = logo_png(window, title="seq", kind="weight", first_position=start + 1)
    assert int.from_bytes(png[16:20], "big") < 2500  # a readable width, not 7,080 letters
