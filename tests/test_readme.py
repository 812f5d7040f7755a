"""The README's "Your own table in five commands", run as printed: the block is read from README.md itself, so the
README and the behaviour cannot drift apart. Only the data files are made here (a table like the template's)."""

from __future__ import annotations

import io
import re
import shlex
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from meddl.cli import main
from meddl.data import synthetic_clinical_table
from meddl.io import write_table

README = Path(__file__).resolve().parents[1] / "README.md"


def _block(title: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(title) :]
    code = re.search(r"```bash\n(.*?)```", section, flags=re.S)
    assert code, f"no bash block after {title!r}"
    return [line.split("#")[0].strip() for line in code.group(1).splitlines() if line.strip()]


def _run(args: list[str]) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        try:
            main(args)
        except SystemExit as exc:
            assert not exc.code, f"meddl {' '.join(args)} exited with {exc.code}"
    return out.getvalue()


@pytest.mark.slow
def test_your_own_table_in_five_commands_runs_as_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    frame = synthetic_clinical_table(300, seed=5).drop(columns=["visit_date", "patient_id"])
    frame["diabetes"] = frame.pop("outcome").map({"yes": "pos", "no": "neg"})  # the template's target and label
    write_table(frame.iloc[:240], tmp_path / "pima.csv")
    write_table(frame.iloc[240:270].drop(columns=["diabetes"]), tmp_path / "new_patients.csv")
    write_table(frame.iloc[240:], tmp_path / "other_hospital.csv")
    write_table(frame.iloc[270:280].drop(columns=["diabetes"]), tmp_path / "cases.csv")
    commands = _block("## Your own table in five commands")
    assert len(commands) == 5 and all(command.startswith("meddl ") for command in commands)
    for command in commands:
        words = shlex.split(command)[1:]
        if ">" in words:  # `meddl init tabular > exp.yaml`
            target = words[words.index(">") + 1]
            (tmp_path / target).write_text(_run(words[: words.index(">")]))
        else:
            _run(words)
    assert (tmp_path / "runs" / "pima" / "report.html").is_file()
    assert (tmp_path / "predictions.csv").stat().st_size > 0
    assert (tmp_path / "runs" / "pima-external" / "metrics.json").is_file()
    assert (tmp_path / "contributions.csv").stat().st_size > 0


def _all_blocks() -> list[tuple[int, str]]:
    """Every line of every bash block of the README, with its line number (comments and blank lines dropped)."""
    lines: list[tuple[int, str]] = []
    inside = False
    for number, line in enumerate(README.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("```"):
            inside = line.strip() == "```bash" if not inside else False
            continue
        command = re.sub(r"\s+#.*$", "", line).strip()
        if inside and command and not command.startswith("#"):
            lines.append((number, command))
    return lines


def _parse(words: list[str]) -> None:
    """Resolve a ``meddl`` command line with click, as the shell would run it: the command, its sub-commands,
    every option and argument must exist and take the values given (nothing runs)."""
    import click

    from meddl.cli import app

    context = app.make_context("meddl", list(words), resilient_parsing=False)
    command: click.Command = app
    while isinstance(command, click.Group) and context.protected_args:
        name, *rest = [*context.protected_args, *context.args]
        sub = command.get_command(context, name)
        assert sub is not None, f"no command {name!r}"
        context = sub.make_context(name, rest, parent=context)
        command = sub


def test_every_readme_command_exists_with_the_options_it_shows() -> None:
    """The first-hour walk: each command line of every README block names a real command with real options
    (``make`` targets in the Makefile, ``meddl`` commands parsed by the CLI itself), so a renamed option or command
    fails here instead of in a newcomer's terminal."""
    makefile = (README.parent / "Makefile").read_text(encoding="utf-8")
    checked = 0
    for number, line in _all_blocks():
        line = re.sub(r"^([A-Z_]+=(\$\([^)]*\)|\S+)\s+)+", "", line)  # MEDDL_TOKEN=$(...) meddl serve ...
        words = shlex.split(line)
        if ">" in words:
            words = words[: words.index(">")]
        if words[0] == "make":
            assert re.search(rf"^{re.escape(words[1])}:", makefile, flags=re.M), f"README line {number}: {line}"
        elif words[0] == "meddl":
            try:
                _parse(words[1:])
            except Exception as exc:  # a click usage error, or no such command
                raise AssertionError(f"README line {number}: {line}\n  {exc}") from None
        else:
            raise AssertionError(f"README line {number}: not a make or meddl command: {line}")
        checked += 1
    assert checked >= 30
