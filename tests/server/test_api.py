"""The HTTP contract, against a real ``riffusion serve --model tiny-random`` subprocess."""

import base64
import io
import json
import os
import subprocess
import sys

import httpx
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from .conftest import clip_body


def decode_data_url(url: str, media_type: str) -> bytes:
    prefix = f"data:{media_type};base64,"
    assert url.startswith(prefix), url[:40]
    return base64.b64decode(url[len(prefix):])


def test_the_original_web_apps_request_exactly(server_url):
    raw = json.dumps(clip_body(alpha=0, steps=4))
    response = httpx.post(f"{server_url}/run_inference/", content=raw, headers={"Content-Type": "text/plain"},
                          timeout=120)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    assert set(data) == {"image", "audio", "duration_s"}
    image = Image.open(io.BytesIO(decode_data_url(data["image"], "image/jpeg")))
    assert image.format == "JPEG" and image.size == (512, 512)
    audio, rate = sf.read(io.BytesIO(decode_data_url(data["audio"], "audio/mpeg")))
    assert rate == 44100 and len(audio) >= 225351 and np.isfinite(audio).all()
    assert data["duration_s"] == pytest.approx(5.11, abs=0.01)


def test_unknown_keys_are_ignored_and_ints_accepted(server_url):
    body = clip_body(steps=4, alpha=1, extra_key={"nested": True})
    body["start"]["denoising"] = 1
    response = httpx.post(f"{server_url}/run_inference/", json=body, timeout=120)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("audio_format,media", [("wav", "audio/wav"), ("flac", "audio/flac"), ("ogg", "audio/ogg")])
def test_native_generate_formats(server_url, audio_format, media):
    body = {**clip_body(), "audio_format": audio_format, "image_format": "png"}
    del body["num_inference_steps"]  # the server's default
    response = httpx.post(f"{server_url}/api/v1/generate", json=body, timeout=120)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["num_inference_steps"] == 4 and data["sample_rate"] == 44100
    audio, rate = sf.read(io.BytesIO(decode_data_url(data["audio"], media)))
    assert rate == 44100 and audio.shape[0] >= 225351
    image = Image.open(io.BytesIO(decode_data_url(data["image"], "image/png")))
    assert image.size == (512, 512)


def test_seed_images_defaults_health_docs(server_url):
    seeds = httpx.get(f"{server_url}/api/v1/seed_images").json()["seed_images"]
    ids = {s["id"]: s for s in seeds}
    assert "og_beat" in ids and ids["og_beat"]["kind"] == "seed" and ids["og_beat"]["tempo_bpm"]
    assert sum(s["kind"] == "mask" for s in seeds) >= 6
    preview = httpx.get(server_url + ids["og_beat"]["preview_url"])
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/png"
    assert httpx.get(f"{server_url}/api/v1/seed_images/nope").status_code == 404

    defaults = httpx.get(f"{server_url}/api/v1/defaults").json()
    assert defaults["num_inference_steps"] == 4 and defaults["seed_image_id"] == "og_beat"
    assert defaults["denoising"] == 0.75 and defaults["duration_s"] == pytest.approx(5.11)
    assert defaults["guidance"] == 7.0  # a Stable Diffusion pipeline: the original app's guidance

    health = httpx.get(f"{server_url}/api/v1/health").json()
    assert health["status"] == "ok" and health["model"] == "tiny-random"

    assert httpx.get(f"{server_url}/docs").status_code == 200
    spec = httpx.get(f"{server_url}/openapi.json").json()
    assert "requestBody" in spec["paths"]["/run_inference/"]["post"]
    assert httpx.get(f"{server_url}/").status_code == 200


def _bad(body_or_raw):
    if isinstance(body_or_raw, (bytes, str)):
        return {"content": body_or_raw}
    return {"json": body_or_raw}


def _without(path):
    body = clip_body()
    target = body
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return body


def _with(path, value):
    body = clip_body()
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


BAD_REQUESTS = [
    ("malformed json", b'{"alpha": 0.5,', 400),
    ("empty body", b"", 400),
    ("not utf-8", b"\xff\xfe\x00", 400),
    ("json array", b"[1, 2]", 422),
    ("json string", b'"hello"', 422),
    ("NaN alpha", b'{"alpha": NaN, "start": {"prompt": "a", "seed": 1}, "end": {"prompt": "b", "seed": 2}}', 422),
    ("missing alpha", _without(["alpha"]), 422),
    ("missing start", _without(["start"]), 422),
    ("missing prompt", _without(["start", "prompt"]), 422),
    ("missing seed", _without(["end", "seed"]), 422),
    ("prompt not a string", _with(["start", "prompt"], 5), 422),
    ("seed not an int", _with(["start", "seed"], "abc"), 422),
    ("seed fractional", _with(["start", "seed"], 1.5), 422),
    ("negative seed", _with(["start", "seed"], -1), 422),
    ("huge seed", _with(["start", "seed"], 10**30), 422),
    ("alpha above 1", _with(["alpha"], 1.5), 422),
    ("alpha below 0", _with(["alpha"], -0.1), 422),
    ("denoising above 1", _with(["start", "denoising"], 2), 422),
    ("guidance negative", _with(["end", "guidance"], -3), 422),
    ("guidance huge", _with(["end", "guidance"], 1e9), 422),
    ("zero steps", _with(["num_inference_steps"], 0), 422),
    ("too many steps", _with(["num_inference_steps"], 9), 422),
    ("start not an object", _with(["start"], "jazz"), 422),
    ("unknown seed image", _with(["seed_image_id"], "no_such_seed"), 422),
    ("path-like seed image", _with(["seed_image_id"], "../../../etc/passwd"), 422),
    ("absolute path seed", _with(["seed_image_id"], "/etc/passwd"), 422),
    ("unknown mask", _with(["mask_image_id"], "no_such_mask"), 422),
    ("path-like mask", _with(["mask_image_id"], "..\\..\\boot.ini"), 422),
    ("oversized prompt", _with(["start", "prompt"], "la " * 1000), 422),
    ("oversized body", b'{"alpha": 0, "pad": "' + b"x" * 70000 + b'"}', 413),
]


@pytest.mark.parametrize("endpoint", ["/run_inference/", "/api/v1/generate"])
@pytest.mark.parametrize("name,body,status", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_input_gets_a_precise_json_4xx(server_url, endpoint, name, body, status):
    response = httpx.post(server_url + endpoint, headers={"Content-Type": "text/plain"}, timeout=30, **_bad(body))
    assert response.status_code == status, (name, response.text[:300])
    assert response.headers["content-type"] == "application/json"
    detail = response.json()["detail"]
    assert detail
    assert "Traceback" not in response.text and "/work/" not in response.text and "site-packages" not in response.text


def test_validation_errors_name_the_field(server_url):
    response = httpx.post(f"{server_url}/run_inference/", json=_with(["alpha"], 3))
    assert response.json()["detail"][0]["loc"] == ["body", "alpha"]
    response = httpx.post(f"{server_url}/run_inference/", json=_with(["seed_image_id"], "nope"))
    assert "nope" in response.json()["detail"][0]["msg"]


def test_native_formats_are_checked(server_url):
    response = httpx.post(f"{server_url}/api/v1/generate", json={**clip_body(), "audio_format": "aac"})
    assert response.status_code == 422


def test_unknown_routes_and_methods_are_json(server_url):
    assert httpx.get(f"{server_url}/nope").status_code == 404
    response = httpx.get(f"{server_url}/run_inference/")
    assert response.status_code == 405 and response.json()["detail"]


@pytest.mark.parametrize("args, message", [(["--cache-mb", "-1"], "--cache-mb must be >= 0"),
                                           (["--phase", "wavenet"], "unknown phase method 'wavenet'"),
                                           (["--phase", "griffin-lim:x"], "non-negative integer, got 'x'")])
def test_serve_refuses_bad_settings_before_binding(args, message):
    result = subprocess.run([sys.executable, "-m", "riffusion", "serve", "--model", "tiny-random", *args],
                            capture_output=True, text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_defaults_announce_a_small_models_own_guidance(in_process_server, tmp_path):
    """The jam asks for what the model was tuned with (riffusion-small's ``guidance_scale``), not 7."""
    import torch

    from riffusion import small as sm
    from riffusion.dataset.presets import SMALL_PARAMS

    torch.manual_seed(0)
    config = sm.SmallModelConfig(block_out_channels=(32, 32), num_inference_steps=2, guidance_scale=4.5)
    sm.save_small_model(tmp_path / "m", sm.build_unet(config, SMALL_PARAMS), config=config, params=SMALL_PARAMS)
    pipeline = sm.SmallRiffusionPipeline.from_pretrained(tmp_path / "m")
    with in_process_server(pipeline) as server:
        defaults = httpx.get(f"{server.url}/api/v1/defaults").json()
    assert defaults["guidance"] == 4.5


def test_the_response_says_how_many_steps_a_small_model_really_ran(in_process_server, tmp_path):
    """A request above a small model's own step count runs at that count, visibly: the response says so."""
    import torch

    from riffusion import small as sm

    torch.manual_seed(0)
    config = sm.SmallModelConfig(block_out_channels=(32, 32), num_inference_steps=3)
    folder = tmp_path / "tiny-small"
    sm.save_small_model(folder, sm.build_unet(config, sm.SMALL_PARAMS), config=config, params=sm.SMALL_PARAMS)
    import shutil

    shutil.copytree(sm.MODELS_DIR / sm.DEFAULT_SMALL_MODEL / "seed_images", folder / "seed_images")
    pipe = sm.SmallRiffusionPipeline.from_pretrained(folder)
    assert pipe.effective_num_inference_steps(50) == 3 and pipe.effective_num_inference_steps(2) == 2
    with pytest.raises(ValueError, match="num_inference_steps"):
        pipe.effective_num_inference_steps(0)
    body = {**clip_body(steps=50), "audio_format": "wav", "image_format": "png", "seed_image_id": "og_beat"}
    with in_process_server(pipe) as server:
        answer = httpx.post(f"{server.url}/api/v1/generate", json=body, timeout=120)
    assert answer.status_code == 200, answer.text
    assert answer.json()["num_inference_steps"] == 3
