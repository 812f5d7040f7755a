"""The demo's experiment files for the benchmarks that rerun them: written on demand, one group of data at a time,
each named ``<data>-<model>`` (``wdbc-mlp``, ``phantoms-small_cnn``, ``gbsg2-survival`` …)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from meddl.demo import (
    demo_experiments,
    ehr_demo_experiment,
    image_demo_experiment,
    sequence_demo_experiment,
    signal_demo_experiment,
    survival_demo_experiments,
)

__all__ = ["demo_runs"]

Group = Callable[[Path, bool], list[tuple[str, Path]]]

GROUPS: dict[str, Group] = {
    "tables": lambda folder, quick: [(f"{c.name}-{p.stem}", p) for c, p in demo_experiments(folder, quick=quick)],
    "images": lambda folder, quick: [("phantoms-small_cnn", image_demo_experiment(folder, quick=quick))],
    "genomics": lambda folder, quick: [("motifs-sequence_cnn", sequence_demo_experiment(folder, quick=quick)[0])],
    "signals": lambda folder, quick: [("ecg-seed_lstm", signal_demo_experiment(folder, quick=quick))],
    "ehr": lambda folder, quick: [("ehr-gru", ehr_demo_experiment(folder, quick=quick))],
    "survival": lambda folder, quick: [
        (f"{name}-survival", path) for name, path in survival_demo_experiments(folder, quick=quick)
    ],
}


def demo_runs(folder: Path, quick: bool, wanted: Iterable[str]) -> list[tuple[str, Path]]:
    """The experiment files named in ``wanted`` (``<data>-<model>``, or a group's name for all of it), in that
    order; only the groups they belong to are written under ``folder``."""
    written: dict[str, list[tuple[str, Path]]] = {}
    out = []
    for name in wanted:
        group = name if name in GROUPS else next(g for g in GROUPS if _belongs(name, g))
        if group not in written:
            written[group] = GROUPS[group](folder, quick)
        out += [(n, p) for n, p in written[group] if name in (group, n)]
    return out


def _belongs(name: str, group: str) -> bool:
    prefixes = {
        "tables": ("wdbc-", "gbsg2-mlp", "gbsg2-ft"),
        "images": ("phantoms-",),
        "genomics": ("motifs-",),
        "signals": ("ecg-",),
        "ehr": ("ehr-",),
        "survival": (),
    }[group]
    return name.endswith("-survival") if group == "survival" else name.startswith(prefixes)
