"""Property-based fuzzing of both APIs from the server's own OpenAPI schema (schemathesis + hypothesis):
whatever arrives, the answer is never a 5xx."""

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402

NEGATIVE, POSITIVE = GenerationMode.NEGATIVE, GenerationMode.POSITIVE
# (path, method, mode, examples). Valid bodies run the model, so fewer of them; a GET with one free string
# parameter has no invalid form to generate.
CASES = [
    ("/run_inference/", "POST", NEGATIVE, 60),
    ("/run_inference/", "POST", POSITIVE, 10),
    ("/api/v1/generate", "POST", NEGATIVE, 60),
    ("/api/v1/generate", "POST", POSITIVE, 10),
    ("/api/v1/continue", "POST", NEGATIVE, 30),
    ("/api/v1/render", "POST", NEGATIVE, 30),
    ("/api/v1/seed_images/{image_id}", "GET", POSITIVE, 40),
    ("/api/v1/defaults", "GET", POSITIVE, 5),
    ("/api/v1/health", "GET", POSITIVE, 5),
]


@pytest.fixture(scope="module")
def api_schema(server_url):
    return schemathesis.openapi.from_url(f"{server_url}/openapi.json")


@pytest.mark.parametrize("path,method,mode,examples", CASES, ids=[f"{m} {p} {g.value}" for p, m, g, _ in CASES])
def test_no_input_makes_a_5xx(api_schema, server_url, path, method, mode, examples):
    operation = api_schema[path][method]

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        response = case.call(base_url=server_url, timeout=120)
        assert response.status_code < 500, (case.path, case.body, response.status_code, response.text[:300])
        if response.status_code >= 400:
            assert "application/json" in str(response.headers.get("content-type"))

    check()
    assert httpx.get(f"{server_url}/api/v1/health").status_code == 200
