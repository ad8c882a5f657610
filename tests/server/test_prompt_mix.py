"""Weighted prompt mixes on a real server: `prompts` wherever `prompt` is accepted, checked at the edge,
part of the response cache's key, and documented at /docs."""

import base64
import io

import httpx
import numpy as np
import pytest
from PIL import Image

from .conftest import clip_body

JAZZ_AND_RAIN = [{"prompt": "jazzy saxophone", "weight": 1.0}, {"prompt": "rain on a roof", "weight": 0.4}]
ENDPOINTS = ["/run_inference/", "/api/v1/generate"]


def mix_body(prompts, **extra):
    body = clip_body(**extra)
    for end in ("start", "end"):
        del body[end]["prompt"]
        body[end]["prompts"] = prompts
    return body


def image_pixels(data: dict) -> np.ndarray:
    raw = base64.b64decode(data["image"].split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(raw)).convert("L"), dtype=np.int16)


def post(url: str, body: dict) -> httpx.Response:
    return httpx.post(url, json=body, timeout=120)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_mix_is_accepted_and_differs_from_its_first_prompt(server_url, endpoint):
    plain = post(server_url + endpoint, {**clip_body(), "image_format": "png"})
    mixed = post(server_url + endpoint, {**mix_body(JAZZ_AND_RAIN), "image_format": "png"})
    assert plain.status_code == 200 and mixed.status_code == 200, mixed.text
    assert np.abs(image_pixels(plain.json()) - image_pixels(mixed.json())).mean() > 0.1


def test_a_mix_of_one_prompt_is_exactly_the_prompt(server_url):
    body = {**clip_body(seed=5), "audio_format": "wav", "image_format": "png"}
    plain = post(f"{server_url}/api/v1/generate", body).json()
    one = post(f"{server_url}/api/v1/generate",
               {**mix_body([{"prompt": "jazzy saxophone", "weight": 0.5}], seed=5),
                "audio_format": "wav", "image_format": "png"}).json()
    assert one["image"] == plain["image"] and one["audio"] == plain["audio"]


def test_the_response_cache_is_keyed_by_the_mix(in_process_server):
    with in_process_server(cache_size=16) as server:
        url = f"{server.url}/api/v1/generate"
        first = post(url, mix_body(JAZZ_AND_RAIN))
        heavier_rain = post(url, mix_body([JAZZ_AND_RAIN[0], {**JAZZ_AND_RAIN[1], "weight": 0.9}]))
        assert first.status_code == heavier_rain.status_code == 200
        assert httpx.get(f"{server.url}/api/v1/health").json()["cache"]["hits"] == 0
        again = post(url, mix_body(JAZZ_AND_RAIN))
        assert again.json() == first.json() and first.json() != heavier_rain.json()
        assert httpx.get(f"{server.url}/api/v1/health").json()["cache"]["hits"] == 1


BAD_MIXES = [
    ("both prompt and prompts", {"prompt": "jazz", "prompts": JAZZ_AND_RAIN}, ["body", "start"], "`prompts`"),
    ("neither", {}, ["body", "start"], "give either `prompt` or `prompts`"),
    ("empty mix", {"prompts": []}, ["body", "start", "prompts"], "at least 1"),
    ("five prompts", {"prompts": JAZZ_AND_RAIN * 2 + JAZZ_AND_RAIN[:1]}, ["body", "start", "prompts"], "at most 4"),
    ("negative weight", {"prompts": [{"prompt": "jazz", "weight": -1}]},
     ["body", "start", "prompts", 0, "weight"], "greater than or equal to 0"),
    ("zero sum", {"prompts": [{"prompt": "jazz", "weight": 0}, {"prompt": "rain", "weight": 0}]},
     ["body", "start", "prompts"], "positive sum"),
    ("blank prompt", {"prompts": [{"prompt": "  ", "weight": 1}]}, ["body", "start", "prompts", 0, "prompt"], "blank"),
    ("missing prompt", {"prompts": [{"weight": 1}]}, ["body", "start", "prompts", 0, "prompt"], "required"),
    ("not a list", {"prompts": "jazz"}, ["body", "start", "prompts"], "list"),
]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("name,end,loc,message", BAD_MIXES, ids=[b[0] for b in BAD_MIXES])
def test_a_bad_mix_is_a_json_422_naming_the_field(server_url, endpoint, name, end, loc, message):
    body = clip_body()
    body["start"] = {"seed": 1, **end}
    response = post(server_url + endpoint, body)
    assert response.status_code == 422, (name, response.text[:300])
    detail = response.json()["detail"]
    assert detail[0]["loc"] == loc and message in detail[0]["msg"], detail


def test_the_mix_is_documented_at_docs(server_url):
    spec = httpx.get(f"{server_url}/openapi.json").json()
    schemas = spec["components"]["schemas"]
    prompt_body = schemas["PromptBody"]["properties"]
    assert "`prompts`" in prompt_body["prompt"]["description"]
    prompts = prompt_body["prompts"]
    array = next(option for option in prompts["anyOf"] if option.get("type") == "array")  # or null
    assert "weight" in prompts["description"] and array["maxItems"] == 4
    assert schemas["WeightedPromptBody"]["properties"]["weight"]["minimum"] == 0


def test_an_empty_prompt_beside_a_mix_is_answered(server_url):
    """A plain empty prompt is the unconditional one, as in the original (found by the fuzz test)."""
    body = clip_body(alpha=0.0)
    body["start"]["prompt"] = ""
    del body["end"]["prompt"]
    body["end"]["prompts"] = [{"prompt": "0"}]
    response = post(server_url + "/api/v1/generate", body)
    assert response.status_code == 200, response.text
