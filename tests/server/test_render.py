"""POST /api/v1/render on a real server on a loopback port: a session re-rendered as the jam played it,
the OpenAPI document, and a JSON 4xx naming the field for each kind of bad input."""

import base64
import io

import httpx
import numpy as np
import pytest
import soundfile as sf

CLIP_SAMPLES = 225351  # a tiny-random clip: 512 columns of 10 ms at 44.1 kHz
FADE = round(0.03 * 44100)


def request(alpha=0.5, steps=2, **extra):
    return {"alpha": alpha, "num_inference_steps": steps, "seed_image_id": "og_beat", "mask_image_id": None,
            "start": {"prompt": "jazz", "seed": 1}, "end": {"prompt": "rock", "seed": 2}, **extra}


def session(clips=2, **request_options):
    return {"schema": "riffusion-session", "version": 1, "model": "tiny-random", "sample_rate": 44100,
            "clips": [{"start_s": 5.08 * i, "duration_s": 5.11, "bar_s": 2.555, "request": request(**request_options)}
                      for i in range(clips)]}


@pytest.fixture(scope="module")
def server(tiny_pipeline):
    from riffusion.server import ServerSettings

    from .conftest import InProcessServer

    with InProcessServer(ServerSettings(warmup=False, num_inference_steps=2, max_inference_steps=8, phase="pghi",
                                        max_render_clips=3), tiny_pipeline) as running:
        yield running.url


def post(url, body):
    return httpx.post(f"{url}/api/v1/render", json=body, timeout=120)


def answer(response, status=200):
    assert response.status_code == status, response.text
    return response.json()


def detail(response, status=422):
    return answer(response, status)["detail"]


def test_a_two_clip_session_renders_as_the_jam_joined_it(server, tiny_pipeline):
    from riffusion.sessions import parse_session, render_session

    response = post(server, {"session": session(2), "audio_format": "wav"})
    body = answer(response)
    assert body["clips"] == 2 and body["sample_rate"] == 44100 and body["audio_format"] == "wav"
    assert body["model"] == "tiny-random" and body["phase"] == "pghi" and body["num_inference_steps"] is None
    assert body["starts_s"] == pytest.approx([0.0, (CLIP_SAMPLES - FADE) / 44100], abs=1e-4)
    media, data = body["audio"].split(",", 1)
    assert media == "data:audio/wav;base64"
    audio, rate = sf.read(io.BytesIO(base64.b64decode(data)), dtype="float32", always_2d=True)
    assert rate == 44100 and audio.shape[0] == 2 * CLIP_SAMPLES - FADE
    offline = render_session(parse_session(session(2)), tiny_pipeline, phase="pghi")  # riffusion render's audio
    assert np.abs(audio.T - offline.waveform).max() < 1e-3  # the same, but for 16-bit WAV rounding


def test_more_steps_and_the_openapi_document(server):
    body = answer(post(server, {"session": session(1), "num_inference_steps": 3}))
    assert body["num_inference_steps"] == 3 and body["audio"].startswith("data:audio/mpeg;base64,")
    document = httpx.get(f"{server}/openapi.json").json()
    schema = document["paths"]["/api/v1/render"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"session", "num_inference_steps", "audio_format"} <= set(schema["properties"])


@pytest.mark.parametrize("change, loc, words", [
    (lambda s: s.update(version=2), ["body", "session", "version"], "version 1"),
    (lambda s: s["clips"][1]["request"].update(alpha=1.5), ["body", "session", "clips", 1, "request", "alpha"],
     "expected a number"),
    (lambda s: s["clips"][0]["request"].pop("start"), ["body", "session", "clips", 0, "request", "start"], "object"),
    (lambda s: s["clips"][0]["request"].update(num_inference_steps=9),
     ["body", "session", "clips", 0, "request", "num_inference_steps"], "at most 8"),
    (lambda s: s["clips"][0]["request"].update(seed_image_id="no_such_loop"),
     ["body", "session", "clips", 0, "request", "seed_image_id"], "no_such_loop"),
    (lambda s: s["clips"].extend(s["clips"] * 2), ["body", "session", "clips"], "at most 3 clips"),
    (lambda s: s["clips"][0].update(loop_bars=400), ["body", "session", "clips"], "900 s"),
])
def test_bad_sessions_get_a_422_naming_the_field(server, change, loc, words):
    bad = session(2)
    change(bad)
    (error,) = detail(post(server, {"session": bad}))
    assert error["loc"] == loc and words in error["msg"]


def test_bad_bodies(server):
    (error,) = detail(post(server, {"session": session(1), "num_inference_steps": 9}))
    assert error["loc"] == ["body", "num_inference_steps"] and "at most 8" in error["msg"]
    (error,) = detail(post(server, {"session": session(1), "audio_format": "aiff"}))
    assert error["loc"] == ["body", "audio_format"]
    (error,) = detail(post(server, {"session": [1, 2]}))
    assert error["loc"] == ["body", "session"]
    (error,) = detail(post(server, {"session": "not a session"}))
    assert error["loc"] == ["body", "session"]
    assert "JSON" in detail(httpx.post(f"{server}/api/v1/render", content=b"{", timeout=30), 400)
    assert detail(httpx.post(f"{server}/api/v1/render", content=b"x" * (3 * 16 * 1024 + 1), timeout=30), 413)


def test_a_jam_clip_asked_during_a_render_is_not_kept_waiting_for_all_its_clips(in_process_server, tiny_pipeline):
    """Each of a render's clips is a job of its own in the model's queue: a jam listener's clip asked while
    the render runs is made between two of its clips, not after the last."""
    import concurrent.futures
    import time

    from .conftest import clip_body

    finished = {}
    hook = tiny_pipeline.unet.register_forward_pre_hook(lambda module, args: time.sleep(0.5))
    try:
        with in_process_server(max_render_clips=4) as running, concurrent.futures.ThreadPoolExecutor(2) as pool:
            def timed(name, path, body):
                response = httpx.post(f"{running.url}{path}", json=body, timeout=120)
                finished[name] = time.monotonic()
                return response

            render = pool.submit(timed, "render", "/api/v1/render", {"session": session(4)})
            time.sleep(1.0)  # the render's first clip is being made
            jam = pool.submit(timed, "jam", "/api/v1/generate", clip_body(seed=77))
            assert jam.result().status_code == 200 and render.result().status_code == 200, render.result().text
    finally:
        hook.remove()
    assert render.result().json()["clips"] == 4
    assert finished["jam"] < finished["render"]
