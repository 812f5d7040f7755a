"""What the fuzz tests share: byte mutations of a valid seed file, generated text, bounded settings, the property.

The property every reader must keep: for any bytes, it returns a result or raises :class:`MedDLError` whose message
names the file; any other exception (``ValueError``, ``KeyError``, ``struct.error``, a library's own error,
``RecursionError``, ``MemoryError`` from a huge declared size) or a hang is a bug.

Each test runs a fixed number of derandomized examples (the same inputs on every run, no example database written
into the repository), so CI time is bounded and a failure reproduces. ``MEDDL_FUZZ_SCALE=20`` multiplies the number
of examples for a longer local run.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from meddl.errors import MedDLError

T = TypeVar("T")

SCALE = float(os.environ.get("MEDDL_FUZZ_SCALE", "1") or 1)

# Bytes that tend to break parsers: length fields at their extremes, separators, quotes, YAML syntax, a lone
# UTF-8 lead byte, numbers that overflow.
INTERESTING = (
    b"\x00",
    b"\xff",
    b"\x7f",
    b"\x80",
    b"\xff\xff\xff\xff",
    b"\x00\x00\x00\x00",
    b"\xff\xff\xff\x7f",
    b"\x00\x00\x00\x80",
    b"-1",
    b"0",
    b"-0",
    b"1e308",
    b"1e400",
    b"4294967295",
    b"999999999999",
    b"nan",
    b"inf",
    b"\n",
    b"\r",
    b",",
    b"\t",
    b'"',
    b"'",
    b":",
    b"- ",
    b"{",
    b"[",
    b"&a ",
    b"*a",
    b"!!python/object:os.system",
    b"\xc3",
    b"\xef\xbb\xbf",
    b">",
    b"#",
)

_POSITION = st.integers(min_value=0, max_value=2**20)
_MUTATION = st.one_of(
    st.tuples(st.just("flip"), _POSITION, st.integers(0, 7)),
    st.tuples(st.just("set"), _POSITION, st.integers(0, 255)),
    st.tuples(st.just("truncate"), _POSITION),
    st.tuples(st.just("insert"), _POSITION, st.sampled_from(INTERESTING) | st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("overwrite"), _POSITION, st.sampled_from(INTERESTING)),
    st.tuples(st.just("duplicate"), _POSITION, st.integers(1, 64)),
    st.tuples(st.just("delete"), _POSITION, st.integers(1, 64)),
)
# Up to four edits of a seed file; hypothesis shrinks a failure to the fewest, smallest edits.
MUTATIONS = st.lists(_MUTATION, min_size=1, max_size=4)


def mutate(seed: bytes, mutations: list[tuple[Any, ...]], focus: int | None = None) -> bytes:
    """Apply ``mutations`` to ``seed``; positions fall in the first ``focus`` bytes (a header) when given."""
    data = bytearray(seed)
    for kind, position, *rest in mutations:
        span = min(len(data), focus) if focus else len(data)
        at = position % (span + 1)
        if kind == "flip" and at < len(data):
            data[at] ^= 1 << rest[0]
        elif kind == "set" and at < len(data):
            data[at] = rest[0]
        elif kind == "truncate":
            del data[position % (len(data) + 1) :]  # anywhere, not only in the header: a file cut short
        elif kind == "insert":
            data[at:at] = rest[0]
        elif kind == "overwrite":
            data[at : at + len(rest[0])] = rest[0]
        elif kind == "duplicate":
            data[at:at] = data[at : at + rest[0]]
        elif kind == "delete":
            del data[at : at + rest[0]]
    return bytes(data)


# -- generated text ----------------------------------------------------------------------------------------------

_ODD_CELLS = st.sampled_from(
    ["", " ", "NA", "nan", "NaN", "inf", "-inf", "1e400", "-1e400", "1e38", "-0", '"', '""', "a,b", '"a\nb"', "\t"]
)
CELL = st.one_of(
    _ODD_CELLS,
    st.text(max_size=8),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


def table_text(header: list[str] | None = None, separator: str = ",") -> st.SearchStrategy[str]:
    """A delimited text table: ``header`` (or a generated one) then rows of odd cells, ragged on purpose."""
    names = st.just(header) if header is not None else st.lists(CELL, min_size=1, max_size=5)
    rows = st.lists(st.lists(CELL, min_size=0, max_size=6), min_size=0, max_size=6)
    ending = st.sampled_from(["\n", "\r\n", ""])
    return st.tuples(names, rows, ending).map(
        lambda parts: "\n".join(separator.join(row) for row in [parts[0], *parts[1]]) + parts[2]
    )


LINES = st.lists(st.text(max_size=20), min_size=0, max_size=8).map("\n".join)

YAML_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)


# -- settings and the property -----------------------------------------------------------------------------------


def fuzz_settings(examples: int) -> settings:
    """Bounded and reproducible: a fixed number of derandomized examples, no database, no deadline (the first
    example pays for imports); the hang guard is :func:`bounded`."""
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.function_scoped_fixture,
        ],
    )


class ReaderHung(AssertionError):
    """A reader ran past its time limit on one small input."""


@contextmanager
def bounded(seconds: float = 20.0, memory_bytes: int = 3 << 30) -> Iterator[None]:
    """Turn a hang into :class:`ReaderHung` and an allocation of more than ``memory_bytes`` of new address space
    (a header declaring terabytes) into ``MemoryError``, rather than a stuck or OOM-killed CI job. Inputs are a
    few KB: a reader needs far less than either limit. Only where the platform allows (Linux, main thread)."""
    on_main_thread = threading.current_thread() is threading.main_thread()
    use_alarm = on_main_thread and hasattr(signal, "setitimer")
    limit_memory = sys.platform.startswith("linux")
    previous_handler: Any = None
    previous_limit: tuple[int, int] | None = None
    if use_alarm:

        def on_alarm(signum: int, frame: Any) -> None:
            raise ReaderHung(f"the reader ran longer than {seconds:g} s on one small input")

        previous_handler = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    if limit_memory:
        previous_limit = resource.getrlimit(resource.RLIMIT_AS)
        ceiling = _address_space() + memory_bytes
        hard = previous_limit[1]
        if hard == resource.RLIM_INFINITY or ceiling <= hard:
            resource.setrlimit(resource.RLIMIT_AS, (ceiling, hard))
        else:
            previous_limit = None
    try:
        yield
    finally:
        if previous_limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, previous_limit)
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous_handler)


def _address_space() -> int:
    """This process's virtual memory size in bytes (VmSize)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def result_or_error(read: Callable[..., T], path: Path, *args: Any, **kwargs: Any) -> T | None:
    """``read(path, ...)``'s result, or None when it raised a :class:`MedDLError` naming ``path`` (its folder and
    name, the suffix aside); any other
    exception or a hang fails the test (hypothesis then shrinks the input and prints it)."""
    with bounded():
        try:
            return read(path, *args, **kwargs)
        except MedDLError as exc:
            message = str(exc)
            record = str(path.parent / path.name.split(".")[0])  # a WFDB error names the record, without .hea
            assert record in message, f"the error does not name the file {path}: {message}"
            return None
