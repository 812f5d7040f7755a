"""Fuzzing the server: schemathesis generates requests from the app's own OpenAPI schema for every route — valid
ones and ones that break the schema — and uploads of mutated files go to the upload route. Any 5xx answer or
exception escaping the app is a failure; an upload that cannot be used gets a 4xx naming it."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode
from tests.fuzz.mutations import MUTATIONS, bounded, fuzz_settings, mutate

pytestmark = pytest.mark.filterwarnings("ignore")

# Every route the two served models give; a route added without being fuzzed fails test_every_route_is_fuzzed.
OPERATIONS = [
    ("GET", "/health"),
    ("GET", "/models"),
    ("GET", "/models/{name}"),
    ("GET", "/models/{name}/card"),
    ("GET", "/models/{name}/report"),
    ("POST", "/models/clinic/predict"),
    ("POST", "/models/clinic/explain"),
    ("POST", "/models/motifs/predict_sequences"),
    ("POST", "/models/motifs/explain_sequences"),
    ("POST", "/models/motifs/predict"),
    ("POST", "/models/motifs/explain"),
]


@pytest.fixture(scope="module")
def api(served_app: Any) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", served_app)


def test_every_route_is_fuzzed(api: Any) -> None:
    routes = {(op.method.upper(), op.path) for op in (result.ok() for result in api.get_all_operations())}
    assert routes == set(OPERATIONS), f"routes not in OPERATIONS: {routes - set(OPERATIONS)}"


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_route_answers_every_request_without_a_server_error(
    api: Any, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api[path][method]
    examples = 15 if method == "GET" else 40  # the POST routes parse bodies: where the bugs would be

    @fuzz_settings(examples)
    @given(case=operation.as_strategy(generation_mode=mode))
    def answers(case: Any) -> None:
        with bounded():
            response = case.call()
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
        )

    try:
        answers()
    except Unsatisfiable:  # a route without parameters or body has no request that breaks its schema
        assert mode == GenerationMode.NEGATIVE
        pytest.skip(f"{method} {path} takes no input that could break its schema")


@pytest.fixture(scope="module")
def client(served_app: Any) -> TestClient:
    return TestClient(served_app)  # raise_server_exceptions: an exception escaping the app fails the test


UPLOAD_SEEDS = {
    ".fa": b">case1\nACGTACGTACGTTTGACTCAACGTACGTACGTACGTACGT\n>case2\nNNNNACGTRYACGT\n",
    ".csv": b"id,sequence\nc1,ACGTACGTACGTTTGACTCAACGTACGT\nc2,acgtn\n",
    ".bed": b"chr1\t0\t10\tpeak\t0\t+\n",
}


@fuzz_settings(60)
@given(
    mutations=MUTATIONS,
    suffix=st.sampled_from(sorted(UPLOAD_SEEDS)),
    action=st.sampled_from(["predict", "explain"]),
)
def test_upload_of_a_mutated_file_gets_an_answer_or_a_4xx(
    client: TestClient, mutations: list, suffix: str, action: str
) -> None:
    content = mutate(UPLOAD_SEEDS[suffix], mutations)
    with bounded():
        response = client.post(f"/models/motifs/{action}", files={"file": (f"cases{suffix}", content)})
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert "cases" in response.json()["detail"] or response.status_code == 413, response.text
