"""Your own loop in, on a real server: POST /api/v1/seed_images (raw audio body), limits, hostile uploads,
privacy (never listed), use as seed_image_id, expiry, the cap, and the temporary folder's removal."""

import io
import struct
import time

import httpx
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from riffusion.audio import encode_audio
from riffusion.loops import seed_loop_from_audio
from riffusion.seed_images import find_seed_image
from riffusion.server.uploads import UploadError, UploadStore, decode_upload
from riffusion.spectrogram_params import SpectrogramParams
from test_loops import drums  # tests/ is on sys.path (its conftest.py)

from .conftest import clip_body

RATE = 22050


def wav(seconds=8.0, bpm=120.0, rate=RATE, fmt="wav") -> bytes:
    return encode_audio(drums(bpm, seconds, start_s=0.25, rate=rate)[None, :], rate, fmt)


def upload(server_url, data: bytes, content_type="audio/wav", **params):
    return httpx.post(f"{server_url}/api/v1/seed_images", content=data, params=params,
                      headers={"Content-Type": content_type}, timeout=60)


def test_an_upload_becomes_a_private_seed_loop(server_url):
    response = upload(server_url, wav())
    assert response.status_code == 201, response.text
    loop = response.json()
    assert loop["id"].startswith("upload-") and len(loop["id"]) >= 30
    assert loop["kind"] == "seed" and loop["beats_per_bar"] == 4 and loop["bars"] == 3
    assert loop["source_bpm"] == pytest.approx(120, rel=0.02)
    assert loop["tempo_bpm"] == pytest.approx(60 * 12 / 5.11, abs=0.01)
    assert 3000 < loop["expires_in_s"] <= 3600
    # not listed for anyone; usable by its id
    listed = httpx.get(f"{server_url}/api/v1/seed_images").json()["seed_images"]
    assert loop["id"] not in [s["id"] for s in listed]
    preview = httpx.get(server_url + loop["preview_url"])
    assert preview.status_code == 200 and Image.open(io.BytesIO(preview.content)).size == (512, 512)
    clip = httpx.post(f"{server_url}/api/v1/generate", json=clip_body(seed_image_id=loop["id"], steps=4), timeout=120)
    assert clip.status_code == 200, clip.text


@pytest.mark.parametrize("fmt,content_type", [("flac", "audio/flac"), ("ogg", "audio/ogg"), ("mp3", "audio/mpeg")])
def test_flac_ogg_and_mp3_with_a_given_tempo_and_metre(server_url, fmt, content_type):
    data = encode_audio(drums(141, 6, beats_per_bar=3, rate=RATE)[None, :], RATE, fmt)
    response = upload(server_url, data, content_type, bpm=141, metre="3/4")
    assert response.status_code == 201, response.text
    assert response.json()["source_bpm"] == 141 and response.json()["beats_per_bar"] == 3


def _wav_header(rate: int, frames: int) -> bytes:
    data_bytes = frames * 2
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
            + b"data" + struct.pack("<I", data_bytes))


HOSTILE = [
    ("empty", b"", "empty"),
    ("not audio", b"<html>hello</html>" * 50, "not audio"),
    ("a picture", b"\x89PNG\r\n\x1a\n" + bytes(2000), "not audio"),
    ("zero length wav", _wav_header(22050, 0), "no audio samples"),
    ("truncated wav", wav()[:300], "shorter than one bar"),
    ("huge sample rate", _wav_header(2_000_000_000, 1000) + bytes(2000), "sample rate 2000000000 Hz"),
    ("silence", encode_audio(np.zeros((1, RATE * 5), np.float32), RATE, "wav"), "silent"),
]


@pytest.mark.parametrize("name,data,message", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_bad_and_hostile_uploads_get_a_clear_422(server_url, name, data, message):
    response = upload(server_url, data)
    assert response.status_code == 422, (name, response.text)
    assert response.headers["content-type"] == "application/json"
    assert message in str(response.json()["detail"]), response.text


def test_limits_are_413_naming_the_limit(server_url):
    big = upload(server_url, bytes(11 * 1024 * 1024))
    assert big.status_code == 413 and "10485760 bytes" in big.json()["detail"]
    long = encode_audio(np.zeros((1, 8000 * 61), np.float32), 8000, "wav")  # under 1 MB but 61 s
    response = upload(server_url, long)
    assert response.status_code == 413 and "60 s" in response.json()["detail"]


def test_no_pulse_names_bpm_and_query_checks(server_url):
    hum = 0.5 * np.sin(2 * np.pi * 220 * np.arange(RATE * 6) / RATE).astype(np.float32)
    response = upload(server_url, encode_audio(hum[None], RATE, "wav"))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "bpm"]
    assert upload(server_url, encode_audio(hum[None], RATE, "wav"), bpm=100).status_code == 201
    bad_metre = upload(server_url, wav(), metre="4/5")
    assert bad_metre.status_code == 422 and bad_metre.json()["detail"][0]["loc"] == ["query", "metre"]
    assert upload(server_url, wav(), bpm=1000).status_code == 422


def test_an_unknown_or_expired_upload_id_is_a_422_naming_the_field(server_url):
    response = httpx.post(f"{server_url}/api/v1/generate", json=clip_body(seed_image_id="upload-" + "x" * 24))
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "seed_image_id"] and "expired" in detail["msg"]


def test_the_server_removes_its_upload_folder_at_shutdown(in_process_server):
    server = in_process_server()
    with server:
        assert upload(server.url, wav()).status_code == 201
        store = server.server.config.app.state.riffusion.uploads
        folder = store.directory
        assert folder.is_dir() and len(list(folder.iterdir())) == 1
    assert not folder.exists()


# --- the store and the decoder ----------------------------------------------------------------------------------


def _loop():
    return seed_loop_from_audio(drums(120, 5, rate=RATE), RATE, params=SpectrogramParams(), width=512, bpm=120)


def test_store_drops_the_oldest_and_expires():
    store = UploadStore(ttl_s=0.5, max_uploads=2)
    try:
        loop = _loop()
        first, second, third = (store.add(loop) for _ in range(3))
        assert store.lookup(first.id) is None and not first.path.exists()
        assert find_seed_image(third.id) == third and len(store) == 2
        time.sleep(0.6)
        assert store.lookup(second.id) is None and len(store) == 0
    finally:
        store.close()
    with pytest.raises(LookupError):
        find_seed_image(third.id)


def test_store_rejects_bad_limits():
    with pytest.raises(ValueError, match="max_uploads"):
        UploadStore(max_uploads=0)


def test_decode_upload_resamples_and_refuses_garbage():
    audio = decode_upload(wav(seconds=2, rate=48000), sample_rate=RATE)
    assert audio.shape == (1, 2 * RATE)
    with pytest.raises(UploadError, match="not audio"):
        decode_upload(b"RIFF1234WAVE", sample_rate=RATE)
    assert sf.info(io.BytesIO(wav(seconds=1))).samplerate == RATE
