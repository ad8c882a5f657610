"""POST /api/v1/continue on a real server on a loopback port: the input followed by new music, schedules,
the OpenAPI document, and a JSON 4xx naming the field for each kind of bad input."""

import base64
import io

import httpx
import numpy as np
import pytest
import soundfile as sf

from riffusion.audio import encode_audio

RATE = 44100


def clicks(seconds=1.0, rate=RATE) -> np.ndarray:
    x = np.zeros(int(seconds * rate), np.float32)
    x[:: rate // 2] = 0.8
    return np.convolve(x, np.hanning(200), mode="same")[None].astype(np.float32) + 0.01


def encoded(seconds=1.0, fmt="wav") -> str:
    return base64.b64encode(encode_audio(clicks(seconds), RATE, fmt)).decode("ascii")


@pytest.fixture(scope="module")
def server(tiny_pipeline):
    from riffusion.server import ServerSettings

    from .conftest import InProcessServer

    with InProcessServer(ServerSettings(warmup=False, num_inference_steps=2, max_inference_steps=8, phase="pghi"),
                         tiny_pipeline) as running:
        yield running.url


def post(url, **body):
    return httpx.post(f"{url}/api/v1/continue", json=body, timeout=120)


def test_the_answer_is_the_input_then_the_continuation(server):
    response = post(server, audio=encoded(1.0), prompt="jazz piano", seconds=0.5, seed=3, audio_format="wav")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sample_rate"] == RATE and body["audio_format"] == "wav" and body["num_inference_steps"] == 2
    assert body["input_duration_s"] == pytest.approx(1.0) and body["duration_s"] == pytest.approx(1.5)
    assert body["junctions_s"][0] == pytest.approx(1.0) and body["prompts"] == ["jazz piano"]
    media, data = body["audio"].split(",", 1)
    assert media == "data:audio/wav;base64"
    audio, rate = sf.read(io.BytesIO(base64.b64decode(data)))
    assert rate == RATE and audio.shape[0] == int(1.5 * RATE)
    again = post(server, audio=encoded(1.0), prompt="jazz piano", seconds=0.5, seed=3, audio_format="wav").json()
    assert again["audio"] == body["audio"]  # the seed decides


def test_a_schedule_and_a_data_url(server):
    response = post(server, audio="data:audio/flac;base64," + encoded(1.0, "flac"), schedule="0:jazz,0.2:rock",
                    seconds=3.0, bpm=120, beats_per_bar=4)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["prompts"][0] == "jazz" and body["prompts"][-1] == "rock" and body["bpm"] == 120
    assert body["audio"].startswith("data:audio/mpeg;base64,")


@pytest.mark.parametrize(
    "change, field, message",
    [
        (dict(audio="not base64!"), "audio", "not valid base64"),
        (dict(audio=base64.b64encode(b"hello, not audio").decode()), "audio", "not audio"),
        (dict(audio=12), "audio", "base64 string"),
        (dict(seconds=61), "seconds", "less than or equal"),
        (dict(seconds=0), "seconds", "greater than"),
        (dict(schedule="5:jazz"), "schedule", "starts at 0 s"),
        (dict(schedule="0:jazz"), None, "either `prompt` or `schedule`"),
        (dict(prompt="  "), None, "blank"),
        (dict(num_inference_steps=9), "num_inference_steps", "at most 8"),
        (dict(beats_per_bar=3), None, "needs `bpm`"),
        (dict(audio_format="aiff"), "audio_format", "mp3"),
        (dict(denoising=0), "denoising", "greater than"),
    ],
)
def test_bad_input_is_a_json_422_naming_the_field(server, change, field, message):
    body = dict(audio=encoded(1.0), prompt="jazz", seconds=1.0)
    body.update(change)
    response = post(server, **body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert any(message in item["msg"] for item in detail), detail
    if field is not None:
        assert any(item["loc"][:2] == ["body", field] for item in detail), detail


def test_too_short_empty_and_oversized_bodies(server):
    short = post(server, audio=encoded(0.1), prompt="jazz", seconds=1.0)
    assert short.status_code == 422 and short.json()["detail"][0]["loc"] == ["body", "audio"]
    empty = httpx.post(f"{server}/api/v1/continue", content=b"", timeout=30)
    assert empty.status_code == 400
    huge = httpx.post(f"{server}/api/v1/continue", content=b"x" * (15 * 1024 * 1024), timeout=60)
    assert huge.status_code == 413


def test_documented_in_openapi(server):
    document = httpx.get(f"{server}/openapi.json", timeout=30).json()
    operation = document["paths"]["/api/v1/continue"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert {"audio", "prompt", "schedule", "seconds"} <= set(schema["properties"])
    assert "audio" in schema["required"] and "seconds" in schema["required"]


def test_a_jam_clip_asked_during_a_continuation_is_made_between_its_clips(in_process_server, tiny_pipeline):
    """Each clip of a continuation is a task of its own in the model's queue: a jam listener's clip asked
    meanwhile is answered before the continuation's last clip, not after."""
    import concurrent.futures
    import time

    from .conftest import clip_body

    finished = {}
    hook = tiny_pipeline.unet.register_forward_pre_hook(lambda module, args: time.sleep(0.2))
    try:
        with in_process_server() as running, concurrent.futures.ThreadPoolExecutor(2) as pool:
            def timed(name, path, body):
                response = httpx.post(f"{running.url}{path}", json=body, timeout=120)
                finished[name] = time.monotonic()
                return response

            body = {"audio": encoded(1.0), "prompt": "jazz", "seconds": 12, "num_inference_steps": 4}
            carry_on = pool.submit(timed, "continue", "/api/v1/continue", body)
            time.sleep(1.5)  # the continuation's first clips are being made
            jam = pool.submit(timed, "jam", "/api/v1/generate", clip_body(seed=78))
            assert jam.result().status_code == 200 and carry_on.result().status_code == 200, carry_on.result().text
    finally:
        hook.remove()
    assert len(carry_on.result().json()["junctions_s"]) >= 3
    assert finished["jam"] < finished["continue"]
