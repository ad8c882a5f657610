"""Jam sessions: parsing and validation, the jam's schedule and crossfades, re-rendering against the
server's own clips (tiny-random), and ``riffusion render`` as a subprocess."""

import base64
import io
import json

import httpx
import numpy as np
import pytest

from conftest import REPO, run_cli
from riffusion.sessions import (
    CROSSFADE_S, Piece, Session, SessionError, mix_schedule, parse_session, read_session, render_session,
    session_schedule,
)

SCHEMA_FILE = REPO / "riffusion" / "web" / "session.schema.json"


def end(prompt="jazz piano", seed=1, **extra):
    return {"prompt": prompt, "seed": seed, "denoising": 0.75, "guidance": 7.0, **extra}


def request(alpha=0.25, steps=2, **extra):
    return {"alpha": alpha, "num_inference_steps": steps, "seed_image_id": "og_beat", "mask_image_id": None,
            "start": end(seed=1), "end": end(seed=2), **extra}


def session_doc(*requests, loop_bars=(), model="tiny-random", phase="pghi"):
    requests = requests or (request(),)
    clips = [{"start_s": 5.08 * i, "duration_s": 5.11, "bar_s": 2.555,
              "loop_bars": loop_bars[i] if i < len(loop_bars) else 0, "request": r} for i, r in enumerate(requests)]
    return {"schema": "riffusion-session", "version": 1, "model": model, "sample_rate": 44100, "phase": phase,
            "crossfade_s": CROSSFADE_S, "clips": clips}


@pytest.fixture(scope="module")
def tiny_pipeline():
    from riffusion.loading import load_pipeline

    return load_pipeline("tiny-random", device="cpu")


# --- parsing -------------------------------------------------------------------------------------------------


def test_parse_session_reads_every_field():
    mixed = request(alpha=1.0000000000000002, rhythm={"bpm": 120, "beats_per_bar": 3})
    mixed["end"] = {"prompts": [{"prompt": "jazz piano", "weight": 0.8}, {"prompt": "rain", "weight": 0.4}],
                    "seed": 2, "denoising": 1.0, "guidance": 5}
    session = parse_session(session_doc(request(), mixed, loop_bars=(2,)))
    assert isinstance(session, Session)
    assert (session.model, session.sample_rate, session.crossfade_s) == ("tiny-random", 44100, CROSSFADE_S)
    assert str(session.phase) == "pghi"
    first, second = session.clips
    assert first.loop_bars == 2 and first.bar_s == 2.555 and second.start_s == pytest.approx(5.08)
    assert first.inputs.start.prompt == "jazz piano" and first.inputs.end.seed == 2 and first.inputs.rhythm is None
    assert second.inputs.alpha == 1.0  # a rounding error past 1 is clamped, as the server does
    assert second.inputs.end.mix == (("jazz piano", 0.8), ("rain", 0.4)) and second.inputs.end.guidance == 5.0
    assert (second.inputs.rhythm.bpm, second.inputs.rhythm.beats_per_bar, second.inputs.rhythm.offset_s) == (120, 3, 0)


def test_the_schema_file_accepts_what_the_parser_accepts():
    jsonschema = pytest.importorskip("jsonschema")
    document = session_doc(request(rhythm={"bpm": 90, "beats_per_bar": 4}))
    jsonschema.validate(document, json.loads(SCHEMA_FILE.read_text()))
    parse_session(document)


@pytest.mark.parametrize("change, field", [
    (lambda d: d.update(schema="something-else"), "schema"),
    (lambda d: d.update(version=2), "version"),
    (lambda d: d.update(phase="loud"), "phase"),
    (lambda d: d.pop("clips"), "clips"),
    (lambda d: d.update(clips=[]), "clips"),
    (lambda d: d["clips"][0]["request"].update(alpha=1.5), "clips[0].request.alpha"),
    (lambda d: d["clips"][0]["request"].update(num_inference_steps=0), "clips[0].request.num_inference_steps"),
    (lambda d: d["clips"][0]["request"]["start"].update(seed=-1), "clips[0].request.start.seed"),
    (lambda d: d["clips"][0]["request"]["end"].update(prompts=[{"prompt": "x", "weight": 1}]),
     "clips[0].request.end"),
    (lambda d: d["clips"][0]["request"]["end"].update(denoising="much"), "clips[0].request.end.denoising"),
    (lambda d: d["clips"][0]["request"].update(seed_image_id="../etc/passwd"), "clips[0].request.seed_image_id"),
    (lambda d: d["clips"][0]["request"].update(rhythm={"bpm": 5}), "clips[0].request.rhythm.bpm"),
    (lambda d: d["clips"][0].update(duration_s=0), "clips[0].duration_s"),
    (lambda d: d["clips"][0].update(loop_bars=-1), "clips[0].loop_bars"),
])
def test_parse_session_names_the_field_at_fault(change, field):
    document = session_doc()
    change(document)
    with pytest.raises(SessionError, match=rf"^{__import__('re').escape(field)}[:.]? "):
        parse_session(document)


def test_parse_session_refuses_what_is_not_an_object():
    with pytest.raises(SessionError, match="a session is a JSON object, got a list"):
        parse_session([])


def test_read_session_reads_a_file_and_names_a_bad_one(tmp_path):
    good = tmp_path / "session.json"
    good.write_text(json.dumps(session_doc()))
    assert len(read_session(good).clips) == 1
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SessionError, match="bad.json is not JSON"):
        read_session(bad)
    with pytest.raises(FileNotFoundError):
        read_session(tmp_path / "missing.json")


# --- the jam's schedule and crossfades ------------------------------------------------------------------------


def test_session_schedule_overlaps_by_the_fade_and_adds_looped_bars():
    pieces = session_schedule([1000, 800, 900], [250, 200, 300], [0, 2, 0], fade=10)
    assert pieces == [Piece(0, 0, 1000), Piece(1, 990, 800), Piece(1, 1780, 210), Piece(1, 1980, 210),
                      Piece(2, 2180, 900)]
    last = pieces[-1]
    assert last.at + last.length == 1000 + 800 + 900 - 2 * 10 + 2 * 200  # gapless: only the fades overlap


def test_session_schedule_refuses_mismatched_or_short_clips():
    with pytest.raises(ValueError, match="one entry per clip"):
        session_schedule([1000], [100, 100], [0], fade=10)
    with pytest.raises(ValueError, match="clip 0 is 15 samples"):
        session_schedule([15], [10], [0], fade=10)


def test_mix_schedule_crossfades_with_equal_power():
    fade = 32
    ones = np.ones((1, 200), dtype=np.float32)
    gain = mix_schedule([ones], [Piece(0, 0, 200)], fade=fade)[0]
    assert gain[0] == 0 and 0 < gain[-1] < 0.06  # the last sample is one step short of silence
    np.testing.assert_allclose(gain[fade:200 - fade], 1.0)  # untouched between the fades
    fade_in, fade_out = gain[:fade], gain[200 - fade:]
    np.testing.assert_allclose(fade_in ** 2 + fade_out ** 2, 1.0, atol=0.01)  # equal power across a seam
    out = mix_schedule([ones, 2 * ones], session_schedule([200, 200], [100, 100], [0, 0], fade=fade), fade=fade)
    assert out.shape == (1, 400 - fade)
    np.testing.assert_allclose(out[0, 200 - fade : 200], fade_out + 2 * fade_in, rtol=1e-6)
    with pytest.raises(ValueError, match="no pieces"):
        mix_schedule([ones], [], fade=fade)


# --- rendering ----------------------------------------------------------------------------------------------


def _wav_samples(data_url):
    import soundfile

    raw = base64.b64decode(data_url.split(",", 1)[1])
    samples, rate = soundfile.read(io.BytesIO(raw), dtype="float32", always_2d=True)
    return samples.T, rate


@pytest.mark.slow
def test_render_session_gives_the_clips_the_server_gave(tiny_pipeline):
    """The jam's requests sent to a real server, then re-rendered offline: the same samples."""
    from server.conftest import InProcessServer

    from riffusion.server import ServerSettings

    mixed = request(alpha=0.5)
    mixed["end"] = {"prompts": [{"prompt": "jazz piano", "weight": 1}, {"prompt": "rain", "weight": 0.4}],
                    "seed": 2, "denoising": 0.75, "guidance": 7}
    requests = [request(alpha=0.25), mixed]
    heard = []
    with InProcessServer(ServerSettings(warmup=False, num_inference_steps=2, phase="pghi"), tiny_pipeline) as server:
        for body in requests:
            response = httpx.post(f"{server.url}/api/v1/generate", json={**body, "audio_format": "wav"}, timeout=120)
            assert response.status_code == 200, response.text
            heard.append(_wav_samples(response.json()["audio"]))
    session = parse_session(session_doc(*requests, loop_bars=(1, 0)))
    rendered = render_session(session, tiny_pipeline)  # the session's phase: the server's
    rate = rendered.sample_rate
    for (samples, server_rate), clip in zip(heard, rendered.clips):
        assert server_rate == rate and samples.shape == clip.waveform.shape
        np.testing.assert_allclose(clip.waveform, samples, atol=2 / 32768)  # the WAV's 16-bit rounding
    # Gapless with the jam's crossfades: one looped bar after the first clip, one overlap per join.
    fade = round(CROSSFADE_S * rate)
    length = rendered.clips[0].waveform.shape[-1]
    bar = round(length * 2.555 / 5.11)
    assert rendered.waveform.shape[-1] == 2 * length - fade + bar
    assert rendered.starts_s == (0.0, pytest.approx((length - fade + bar) / rate))
    again = render_session(session, tiny_pipeline)
    np.testing.assert_array_equal(again.waveform, rendered.waveform)  # deterministic
    without = render_session(session, tiny_pipeline, phase="pghi", loops=False, num_inference_steps=3)
    assert without.waveform.shape[-1] == 2 * length - fade
    assert all(clip.inputs.num_inference_steps == 3 for clip in without.clips)


def test_render_session_names_an_unknown_loop_before_generating(tiny_pipeline):
    document = session_doc(request(), request(seed_image_id="upload-0123456789abcdef"))
    with pytest.raises(SessionError, match=r"clips\[1\]\.request\.seed_image_id: .*uploaded"):
        render_session(parse_session(document), tiny_pipeline)
    rhythmic = parse_session(session_doc(request(rhythm={"bpm": 100})))
    with pytest.raises(SessionError, match=r"clips\[0\]\.request\.rhythm: tiny-random has no rhythm input"):
        render_session(rhythmic, tiny_pipeline)
    with pytest.raises(ValueError, match="num_inference_steps must be at least 1"):
        render_session(rhythmic, tiny_pipeline, num_inference_steps=0)


# --- the command line ---------------------------------------------------------------------------------------


def test_cli_render_refuses_a_bad_session_in_one_line(tmp_path):
    document = session_doc()
    document["version"] = 7
    path = tmp_path / "session.json"
    path.write_text(json.dumps(document))
    result = run_cli("render", "--session", path, "--audio", tmp_path / "track.flac")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "version" in lines[0] and "riffusion render: error:" in lines[0], result.stderr
    assert not (tmp_path / "track.flac").exists()
    result = run_cli("render", "--session", tmp_path / "missing.json", "--audio", tmp_path / "track.flac")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_cli_render_writes_the_performance(tmp_path):
    document = session_doc(request(), request(alpha=0.5))
    path = tmp_path / "session.json"
    path.write_text(json.dumps(document))
    out = tmp_path / "track.flac"
    result = run_cli("render", "--session", path, "--audio", out, "--num-inference-steps", "2")
    assert result.returncode == 0, result.stderr
    from riffusion.audio import read_audio

    waveform, rate = read_audio(out)
    assert waveform.shape[-1] == pytest.approx(2 * 5.11 * rate - round(CROSSFADE_S * rate), abs=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["session.json", "track.flac"]  # no temporary left
