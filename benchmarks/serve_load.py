"""How fast does ``meddl serve`` answer, and what does MedDL's serving layer cost over a bare FastAPI app?

1. Trains a small tabular bundle (``mlp``, binary, the synthetic clinical table) in a temporary folder through
   the Python API, exactly as ``meddl train`` would.
2. Starts ``python -m meddl serve <bundle>`` on 127.0.0.1 as a subprocess with its defaults, the audit log
   included (written to the temporary folder), and waits for ``/health``.
3. Starts a "bare" comparison server as another subprocess (see ``BARE_APP``): a minimal FastAPI app on the
   same uvicorn settings that does the same numerical work with the same bundle objects and nothing else.
4. Loads each server in turn — the other one is idle — with the same bounded, closed-loop load: a warm-up, then
   ``--requests`` POSTs to ``/models/<name>/predict`` (one record each, the same body every time) over
   ``--connections`` keep-alive connections, then the smaller ``--explain-requests`` run against ``/explain``.
   Every request goes to 127.0.0.1; each run is bounded both in count and in time (``--time-limit``).
5. Trains a small image bundle (``small_cnn`` on 64×64 DICOM phantoms), serves it with ``meddl serve`` and
   loads ``/models/phantoms/explain`` with ``--image-requests`` uploads of one phantom (multipart, the
   Grad-CAM overlay PNG in each answer), reported under ``image``.
6. Prints one JSON line: per server and endpoint the requests, errors (non-2xx answers and transport errors),
   requests/s, p50/p90/p99/max latency in ms and the server's CPU time per request; the MedDL/bare ratios;
   the targets (p99 ≤ 20 ms, ≥ 500 requests/s, no errors on MedDL's predict route) and whether they are met.

The load generator is ``wrk`` when it is installed (``apt-get install wrk``; it runs as a C program beside the
servers, two threads) and otherwise a pure-Python asyncio client in this process (raw HTTP/1.1 over keep-alive
sockets, minimal parsing); the JSON names the one used. On a small machine the load generator shares the CPU
with the server under test, and other work on the machine disturbs the figures: the load average before the
run is reported, and the server CPU time per request is less sensitive to both than requests/s.

Progress goes to stderr.

    .venv/bin/python benchmarks/serve_load.py            # full run: 20,000 predict + 2,000 explain per server
    .venv/bin/python benchmarks/serve_load.py --quick    # smoke run, a few seconds of load
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

TARGET_P99_MS = 20.0
TARGET_RPS = 500.0
TARGET_ERRORS = 0
HOST = "127.0.0.1"  # all traffic stays on loopback
JSON = "application/json"

# The "bare" comparison server. It includes exactly:
#   - uvicorn with the settings `meddl serve` uses (uvicorn.run(app, host, port, access_log=False,
#     log_level="warning"), default loop and HTTP implementation) and torch.set_num_threads(1);
#   - FastAPI routing and JSON body parsing into a plain dict (no generated schema, no field validation:
#     the `dict` annotation only checks that the body is a JSON object), run in FastAPI's thread pool as a
#     plain `def` route, as MedDL's routes are;
#   - the same numerical work on the same bundle objects: a one-row-per-record pandas DataFrame over the
#     bundle's input columns, `bundle.modality.fitted.transform(frame)`, `bundle.model` under torch.no_grad()
#     and a sigmoid (binary task); for /explain additionally `integrated_gradients` on `bundle.model` with the
#     bundle's baseline, `group_attributions` and the top-k variables by absolute contribution;
#   - a small JSON dict answer (probability, label; contributions for /explain) serialised by FastAPI without
#     a response model.
# It leaves out what MedDL adds: the generated pydantic request model (types, allowed values, finiteness,
# required fields), GuardMiddleware (request id, token check, content-type and body-size guards, the access
# log line per request, BaseHTTPMiddleware's task/stream plumbing), the audit log, the batch-size check,
# the per-row notes and the PredictResponse/Prediction response models and their validation.
BARE_APP = '''
"""Bare FastAPI server for benchmarks/serve_load.py (written by it to a temporary file)."""
import sys
from typing import Any

import numpy as np
import pandas as pd
import torch
import uvicorn
from fastapi import FastAPI

from meddl.bundle import load_bundle
from meddl.explain.tabular import group_attributions, integrated_gradients

torch.set_num_threads(1)
bundle = load_bundle(sys.argv[1])
model = bundle.model.eval()
columns = list(bundle.info["column_types"])
classes = bundle.classes
threshold = float(bundle.threshold or 0.5)
baseline = np.asarray(bundle.info["explain_baseline"], dtype=np.float32)
top_k = bundle.config.explain.top_k
app = FastAPI()


def _score(records: list[dict[str, Any]]) -> tuple[pd.DataFrame, np.ndarray, list[dict[str, Any]]]:
    frame = pd.DataFrame.from_records(records, columns=columns)
    matrix = bundle.modality.fitted.transform(frame)
    with torch.no_grad():
        positive = torch.sigmoid(model(torch.as_tensor(matrix, dtype=torch.float32))[:, 0]).tolist()
    out = [{"probability": p, "label": classes[1] if p >= threshold else classes[0]} for p in positive]
    return frame, matrix, out


def _plain(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and value != value else value


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/models/{name}/predict")
def predict(name: str, body: dict[str, Any]) -> dict[str, Any]:
    _, _, out = _score(body["records"])
    return {"model": name, "predictions": out}


@app.post("/models/{name}/explain")
def explain(name: str, body: dict[str, Any]) -> dict[str, Any]:
    frame, matrix, out = _score(body["records"])
    raw = integrated_gradients(model, matrix.astype(np.float32), baseline, target_index=0)
    grouped, names = group_attributions(raw, bundle.modality.fitted.source_columns_)
    for i, row in enumerate(grouped):
        order = np.argsort(-np.abs(row))[:top_k]
        out[i]["contributions"] = [
            {"feature": names[j], "value": _plain(frame.iloc[i][names[j]]), "contribution": float(row[j])}
            for j in order
        ]
    return {"model": name, "predictions": out}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), access_log=False, log_level="warning")
'''

WRK_SCRIPT = """
wrk.method = "POST"
local file = assert(io.open([==[{body_file}]==], "rb"))
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = [==[{content_type}]==]
local limit = {limit}
local threads = {{}}
completed = 0
non2xx = 0
finished = false

function setup(thread)
  table.insert(threads, thread)
end

function response(status, headers, body)
  completed = completed + 1
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
  if completed >= limit and not finished then
    finished = true
    io.write("WRKTHREADDONE\\n")
    io.flush()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non2xx")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}}\\n',
    summary.requests, summary.duration, bad, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), or None where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


# -- the bundle --------------------------------------------------------------------------------------------


def train_bundle(folder: Path, quick: bool) -> tuple[Path, dict[str, Any]]:
    """A small binary MLP bundle on the synthetic clinical table, and one complete record to send."""
    from meddl import Experiment
    from meddl.bundle import load_bundle
    from meddl.data import synthetic_clinical_table
    from meddl.io import write_table

    table = synthetic_clinical_table(300, seed=3, visits_per_patient=2)
    data = write_table(table, folder / "clinic.csv")
    config = {
        "name": "clinic",
        "task": "binary",
        "data": {
            "path": str(data),
            "target": "outcome",
            "positive_label": "yes",
            "patient_id": "patient_id",
            "exclude": ["visit_date"],
        },
        "model": {"arch": "mlp", "hidden": [32]},
        "train": {"epochs": 2 if quick else 4, "batch_size": 64, "progress": False},
        "evaluate": {"bootstrap": 20},
        "explain": {"permutation_repeats": 1},
    }
    out = folder / "bundle"
    Experiment.from_dict(config).run(out=out)
    bundle = load_bundle(out)
    columns = list(bundle.info["column_types"])
    complete = table[columns].dropna()
    row = complete.iloc[0]
    record = {c: (row[c].item() if hasattr(row[c], "item") else row[c]) for c in columns}
    return out, record


def train_image_bundle(folder: Path, quick: bool) -> tuple[Path, Path]:
    """A small binary ``small_cnn`` bundle on 64×64 DICOM phantoms (the demo's settings at small size), and one
    phantom with a lesion to upload."""
    import pandas as pd

    from meddl import Experiment
    from meddl.data.phantoms import write_phantom_dataset

    n = 80 if quick else 160
    manifest = write_phantom_dataset(folder / "phantoms", n, spatial_dims=2, size=64, fmt="dicom", seed=0)
    config = {
        "name": "phantoms",
        "task": "binary",
        "data": {"kind": "image", "path": str(manifest), "positive_label": "lesion", "spatial_dims": 2},
        "preprocess": {"size": [64, 64], "normalize": "zscore"},
        "model": {"arch": "small_cnn", "pools": 1},
        "train": {"epochs": 2 if quick else 4, "batch_size": 32, "learning_rate": 0.003, "seed": 0, "progress": False},
        "evaluate": {"bootstrap": 20},
        "explain": {"heatmap": "gradcam"},
    }
    out = folder / "image_bundle"
    Experiment.from_dict(config).run(out=out)
    cases = pd.read_csv(manifest)
    case = cases[cases["label"] == "lesion"].iloc[0]
    return out, manifest.parent / str(case["path"])


def multipart_body(path: Path) -> tuple[bytes, str]:
    """A multipart/form-data body holding one file in the field ``file``, and its content type."""
    boundary = "meddl-serve-load-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


# -- the servers -------------------------------------------------------------------------------------------


class Server:
    """A server subprocess on 127.0.0.1, its stderr in a log file."""

    def __init__(self, name: str, command: list[str], port: int, folder: Path) -> None:
        self.name = name
        self.port = port
        self.log_path = folder / f"{name}.log"
        self._log = self.log_path.open("wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            command, cwd=folder, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def wait_healthy(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} server exited ({self.process.returncode}): {self.tail()}")
            try:
                with urllib.request.urlopen(self.url("/health"), timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} server did not answer /health in {timeout_s:.0f}s: {self.tail()}")

    def post(self, path: str, body: bytes) -> dict[str, Any]:
        request = urllib.request.Request(
            self.url(path), data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())

    def cpu(self) -> float | None:
        return cpu_seconds(self.process.pid)

    def tail(self, n: int = 2000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-n:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


@contextlib.contextmanager
def running(servers: list[Server]) -> Iterator[None]:
    try:
        yield
    finally:
        for server in servers:
            server.stop()


# -- load generators ---------------------------------------------------------------------------------------


def _summary(latencies_s: list[float], requests: int, errors: int, elapsed_s: float) -> dict[str, Any]:
    ms = np.asarray(latencies_s) * 1000.0
    pct = np.percentile(ms, [50, 90, 99]) if len(ms) else [math.nan] * 3
    return {
        "requests": requests,
        "errors": errors,
        "requests_per_s": round(requests / elapsed_s, 1) if elapsed_s > 0 else None,
        "p50_ms": round(float(pct[0]), 2),
        "p90_ms": round(float(pct[1]), 2),
        "p99_ms": round(float(pct[2]), 2),
        "max_ms": round(float(ms.max()), 2) if len(ms) else None,
        "elapsed_s": round(elapsed_s, 2),
    }


async def _python_load(
    port: int, path: str, body: bytes, n: int, connections: int, limit_s: float, content_type: str = JSON
) -> dict:
    """Closed loop: ``connections`` keep-alive sockets, each sending the next request when its answer is in."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    request = head + body
    state = {"left": n, "errors": 0, "done": 0}
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + limit_s

    async def read_answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
        header = await reader.readuntil(b"\r\n\r\n")
        status = int(header[9:12])
        lower = header.lower()
        close = b"\r\nconnection: close" in lower
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            end = lower.index(b"\r\n", at + 2)
            await reader.readexactly(int(lower[at + 17 : end]))
        elif b"\r\ntransfer-encoding: chunked" in lower:
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            await reader.read()
            close = True
        return status, close

    async def worker() -> None:
        writer: asyncio.StreamWriter | None = None
        reader: asyncio.StreamReader | None = None
        while state["left"] > 0 and time.perf_counter() < deadline:
            state["left"] -= 1
            t0 = time.perf_counter()
            try:
                async with asyncio.timeout(30):
                    if writer is None:
                        reader, writer = await asyncio.open_connection(HOST, port)
                    writer.write(request)
                    status, close = await read_answer(reader)  # type: ignore[arg-type]
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, TimeoutError):
                state["errors"] += 1
                state["done"] += 1
                if writer is not None:
                    writer.close()
                writer = reader = None
                continue
            latencies.append(time.perf_counter() - t0)
            state["done"] += 1
            if not 200 <= status < 300:
                state["errors"] += 1
            if close:
                writer.close()
                writer = reader = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return _summary(latencies, state["done"], state["errors"], time.perf_counter() - started)


def python_load(
    port: int, path: str, body: bytes, n: int, connections: int, limit_s: float, content_type: str = JSON
) -> dict[str, Any]:
    return asyncio.run(_python_load(port, path, body, n, connections, limit_s, content_type))


def wrk_load(
    wrk: str,
    folder: Path,
    port: int,
    path: str,
    body: bytes,
    n: int,
    connections: int,
    limit_s: float,
    content_type: str = JSON,
) -> dict[str, Any]:
    """``wrk`` with a Lua script that stops each of its threads after its share of ``n`` answers."""
    threads = min(2, connections)
    script = folder / "load.lua"
    body_file = folder / "load-body.bin"  # read by the script: the body may be binary (an uploaded image)
    body_file.write_bytes(body)
    script.write_text(WRK_SCRIPT.format(body_file=body_file, content_type=content_type, limit=math.ceil(n / threads)))
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, math.ceil(limit_s))}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        f"http://{HOST}:{port}{path}",
    ]
    # wrk has no request-count limit and, once its threads stop, still sleeps out -d: each thread prints a
    # marker when it has its share of answers, and SIGINT then ends the run (wrk's duration stops there).
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(limit_s + 60, process.kill)
    watchdog.start()
    try:
        finished = 0
        lines = []
        for line in process.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if line.startswith("WRKTHREADDONE"):
                finished += 1
                if finished == threads:
                    process.send_signal(signal.SIGINT)
        stderr = process.stderr.read()  # type: ignore[union-attr]
        returncode = process.wait()
    finally:
        watchdog.cancel()
    line = next((x for x in lines if x.startswith("WRKJSON ")), None)
    if returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({returncode}): {''.join(lines)[-1000:]} {stderr[-1000:]}")
    raw = json.loads(line[len("WRKJSON ") :])
    elapsed = raw["duration_us"] / 1e6
    errors = raw["non2xx"] + raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    return {
        "requests": raw["requests"],
        "errors": errors,
        "requests_per_s": round(raw["requests"] / elapsed, 1) if elapsed > 0 else None,
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p90_ms": round(raw["p90_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "max_ms": round(raw["max_us"] / 1000, 2),
        "elapsed_s": round(elapsed, 2),
    }


# -- the benchmark -----------------------------------------------------------------------------------------


def measure(
    server: Server,
    generator: str,
    folder: Path,
    path: str,
    body: bytes,
    n: int,
    warmup: int,
    args: Any,
    content_type: str = JSON,
) -> dict[str, Any]:
    def load(count: int) -> dict[str, Any]:
        if generator == "wrk":
            return wrk_load(
                args.wrk, folder, server.port, path, body, count, args.connections, args.time_limit, content_type
            )
        return python_load(server.port, path, body, count, args.connections, args.time_limit, content_type)

    if warmup:
        warm = load(warmup)
        log(f"  {server.name} {path}: warm-up {warm['requests']} requests, {warm['errors']} errors")
    time.sleep(0.5)
    load_before = load_average()
    cpu_before = server.cpu()
    result = load(n)
    cpu_after = server.cpu()
    if cpu_before is not None and cpu_after is not None and result["requests"]:
        result["server_cpu_ms_per_request"] = round((cpu_after - cpu_before) * 1000 / result["requests"], 3)
    result["complete"] = result["requests"] >= n
    result["load_average_before"] = load_before
    log(
        f"  {server.name} {path}: {result['requests']} requests, {result['errors']} errors, "
        f"{result['requests_per_s']} req/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms"
    )
    return result


def measure_image(folder: Path, generator: str, quick: bool, n: int, args: Any) -> dict[str, Any]:
    """Explain uploads (one DICOM phantom each, Grad-CAM overlay PNG in the answer) against ``meddl serve`` of a
    small image bundle, under the same closed-loop load as the tabular runs (no bare comparison)."""
    t0 = time.perf_counter()
    bundle_path, case = train_image_bundle(folder, quick)
    train_s = time.perf_counter() - t0
    log(f"trained the image bundle in {train_s:.1f}s: {bundle_path}")
    port = free_port()
    command = [sys.executable, "-m", "meddl", "serve", str(bundle_path), "--port", str(port), "--host", HOST]
    command += ["--no-audit-log"] if args.no_audit_log else ["--audit-log", str(folder / "audit-image.jsonl")]
    server = Server("meddl-image", command, port, folder)
    body, content_type = multipart_body(case)
    with running([server]):
        server.wait_healthy()
        result = measure(
            server, generator, folder, "/models/phantoms/explain", body, n, max(n // 10, 5), args, content_type
        )
    return {
        "endpoint": "meddl explain (image upload: one 64×64 DICOM phantom, Grad-CAM overlay PNG answered)",
        "bundle": {"task": "binary", "arch": "small_cnn", "size": [64, 64], "train_s": round(train_s, 1)},
        "upload_bytes": len(body),
        **result,
    }


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1,000 predict + 200 explain per server")
    parser.add_argument("--requests", type=int, default=None, help="predict requests per server (20,000)")
    parser.add_argument("--explain-requests", type=int, default=None, help="explain requests per server (2,000)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up requests before each run (500)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent keep-alive connections")
    parser.add_argument("--time-limit", type=float, default=None, help="seconds at most per load run (180)")
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto", help="auto: wrk if installed")
    parser.add_argument("--no-audit-log", action="store_true", help="run meddl serve with --no-audit-log")
    parser.add_argument(
        "--image-requests", type=int, default=None, help="explain uploads to the image bundle (500; 0 skips it)"
    )
    args = parser.parse_args()
    quick = args.quick
    n_predict = args.requests or (1_000 if quick else 20_000)
    n_explain = args.explain_requests or (200 if quick else 2_000)
    n_image = args.image_requests if args.image_requests is not None else (100 if quick else 500)
    warmup = args.warmup if args.warmup is not None else (100 if quick else 500)
    args.time_limit = args.time_limit or (20.0 if quick else 180.0)
    args.wrk = shutil.which("wrk")
    generator = args.generator
    if generator == "auto":
        generator = "wrk" if args.wrk else "python"
    if generator == "wrk" and not args.wrk:
        parser.error("--generator wrk: wrk is not installed")
    generator_name = "wrk" if generator == "wrk" else "python-asyncio (pure Python, in the benchmark process)"
    if generator == "wrk":
        version = subprocess.run([args.wrk, "-v"], capture_output=True, text=True, check=False)
        generator_name = (version.stdout or version.stderr).split("[")[0].strip() or "wrk"

    started = time.perf_counter()
    load_at_start = load_average()
    log(f"serve_load: load average {load_at_start}, {os.cpu_count()} CPUs, generator {generator_name}")
    import torch
    import uvicorn

    torch.set_num_threads(1)
    try:
        import httptools  # noqa: F401

        http = "httptools"
    except ImportError:
        http = "h11 (httptools not installed)"
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio (uvloop not installed)"

    with tempfile.TemporaryDirectory(prefix="meddl-serve-load-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        bundle_path, record = train_bundle(folder, quick)
        train_s = time.perf_counter() - t0
        log(f"trained the bundle in {train_s:.1f}s: {bundle_path}")
        name = "clinic"
        body = json.dumps({"records": [record]}, separators=(",", ":")).encode()
        bare_file = folder / "bare_server.py"
        bare_file.write_text(BARE_APP)
        meddl_command = [sys.executable, "-m", "meddl", "serve", str(bundle_path), "--port"]
        meddl_port = bare_port = free_port()
        while bare_port == meddl_port:
            bare_port = free_port()
        meddl_command += [str(meddl_port), "--host", HOST]
        meddl_command += ["--no-audit-log"] if args.no_audit_log else ["--audit-log", str(folder / "audit.jsonl")]
        servers = [
            Server("meddl", meddl_command, meddl_port, folder),
            Server("bare", [sys.executable, str(bare_file), str(bundle_path), str(bare_port)], bare_port, folder),
        ]
        results: dict[str, dict[str, Any]] = {}
        with running(servers):
            for server in servers:
                server.wait_healthy()
            log("both servers answer /health")
            meddl_answer = servers[0].post(f"/models/{name}/predict", body)["predictions"][0]["probability"]
            bare_answer = servers[1].post(f"/models/{name}/predict", body)["predictions"][0]["probability"]
            same_answer = abs(meddl_answer - bare_answer) < 1e-6
            log(f"probability: meddl {meddl_answer:.6f}, bare {bare_answer:.6f}")
            for server in servers:
                results[server.name] = {}
                for endpoint, n, warm in (("predict", n_predict, warmup), ("explain", n_explain, warmup // 5)):
                    path = f"/models/{name}/{endpoint}"
                    results[server.name][endpoint] = measure(server, generator, folder, path, body, n, warm, args)
            audit_lines = None
            if not args.no_audit_log and (folder / "audit.jsonl").exists():
                with (folder / "audit.jsonl").open("rb") as handle:
                    audit_lines = sum(1 for _ in handle)
        image: dict[str, Any] = {"skipped": "--image-requests 0"}
        if n_image:
            image = measure_image(folder, generator, quick, n_image, args)

    meddl_predict = results["meddl"]["predict"]
    met = {
        "p99": meddl_predict["p99_ms"] <= TARGET_P99_MS,
        "requests_per_s": (meddl_predict["requests_per_s"] or 0) >= TARGET_RPS,
        "errors": meddl_predict["errors"] == TARGET_ERRORS and results["meddl"]["explain"]["errors"] == 0,
        "complete": meddl_predict["complete"],
    }
    met["all"] = all(met.values())
    ratios = {
        endpoint: {
            "requests_per_s": ratio(
                results["meddl"][endpoint]["requests_per_s"], results["bare"][endpoint]["requests_per_s"]
            ),
            "p99": ratio(results["meddl"][endpoint]["p99_ms"], results["bare"][endpoint]["p99_ms"]),
            "server_cpu_per_request": ratio(
                results["meddl"][endpoint].get("server_cpu_ms_per_request"),
                results["bare"][endpoint].get("server_cpu_ms_per_request"),
            ),
        }
        for endpoint in ("predict", "explain")
    }
    report = {
        "benchmark": "serve_load",
        "quick": quick,
        "generator": generator_name,
        "connections": args.connections,
        "requests": {"predict": n_predict, "explain": n_explain, "warmup": warmup},
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_before": load_at_start,
        "load_average_after": load_average(),
        "uvicorn": {"version": uvicorn.__version__, "http": http, "loop": loop, "workers": 1},
        "meddl_audit_log": not args.no_audit_log,
        "audit_log_lines": audit_lines,
        "bundle": {"task": "binary", "arch": "mlp", "hidden": [32], "train_s": round(train_s, 1)},
        "same_probability": same_answer,
        "results": results,
        "ratios_meddl_over_bare": ratios,
        "targets": {
            "endpoint": "meddl predict (tabular)",
            "p99_ms_max": TARGET_P99_MS,
            "requests_per_s_min": TARGET_RPS,
            "errors": TARGET_ERRORS,
            "met": met,
        },
        "image": image,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(report, allow_nan=False))


if __name__ == "__main__":
    main()
