"""The jam's session in headless Chromium against the real server (tiny-random): what it records, the
Share panel's download, and a link that carries the session and the mixer."""

import json
from urllib.parse import urlsplit

import httpx
import pytest

from riffusion.sessions import CROSSFADE_S, parse_session

pytestmark = pytest.mark.browser


def test_the_session_records_every_clip_and_travels_in_a_link(open_page, jam_server, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    page = open_page()
    page.page.goto(f"{jam_server.url}/?prompt=jazz+piano&seed=10&debugSpeed=4")
    page.wait_for("window.__riff && window.__riff.requests.length >= 1")
    assert page.riff("session()")["clips"] == []  # nothing played yet
    page.page.click("#settings-button")
    page.page.fill("#mix-prompt-1", "rain on a roof")
    page.page.fill("#mix-weight-1", "0.4")
    page.page.press("#mix-prompt-1", "Tab")
    page.page.click("[data-close=settings]")
    page.page.click("#play")
    page.wait_for("window.__riff.session().clips.some(c => c.request.end.prompts)")
    page.page.click("#play")  # pause: the session stops growing
    session = page.riff("session()")

    assert (session["schema"], session["version"], session["model"]) == ("riffusion-session", 1, "tiny-random")
    assert session["sample_rate"] == 44100 and session["crossfade_s"] == CROSSFADE_S
    assert session["phase"] == "pghi"  # the server's (conftest.FAST_SERVER), which `riffusion render` uses
    schema = httpx.get(f"{jam_server.url}/web/session.schema.json", timeout=10).json()
    jsonschema.validate(session, schema)
    clips = session["clips"]
    first = clips[0]["request"]
    assert first["start"] == {"prompt": "jazz piano", "seed": 10, "denoising": 0.75, "guidance": 7}
    assert first["alpha"] == 0.25 and first["num_inference_steps"] == 2 and first["seed_image_id"] == "og_beat"
    mixed = [c["request"] for c in clips if "prompts" in c["request"]["end"]]
    assert mixed[0]["end"]["prompts"] == [{"prompt": "jazz piano", "weight": 1},
                                          {"prompt": "rain on a roof", "weight": 0.4}]
    for before, after in zip(clips, clips[1:]):  # back to back on the playback clock, overlapping by the fade
        expected = before["start_s"] + before["duration_s"] - CROSSFADE_S + before["loop_bars"] * before["bar_s"]
        assert after["start_s"] == pytest.approx(expected, abs=1e-4)
    assert len(parse_session(session).clips) == len(clips)  # what `riffusion render` reads

    page.page.click("#share-button")
    with page.page.expect_download() as download:
        page.page.click("#share-session-json")
    assert download.value.suggested_filename == "riffusion_session_jazz_piano.json"
    assert json.loads(open(download.value.path()).read()) == page.riff("session()") == session

    page.wait_for("document.getElementById('share-link').value.includes('#session=')")
    link = page.page.input_value("#share-link")
    assert "mix=rain+on+a+roof%3A0.4" in link
    parts = urlsplit(link)
    fragment_only = f"{jam_server.url}/#{parts.fragment}"  # the session alone restores the mixer
    for url in (f"{jam_server.url}/?{parts.query}&debugSpeed=8#{parts.fragment}", fragment_only):
        shared = open_page()
        shared.page.goto(url)
        shared.wait_for("window.__riff && window.__riff.requests.length >= 1")
        assert len(shared.riff("loadedSession")["clips"]) == len(clips)
        assert shared.riff("settings")["mix"] == [{"prompt": "rain on a roof", "weight": 0.4}]
        assert shared.page.input_value("#mix-prompt-1") == "rain on a roof"
        assert shared.page.input_value("#mix-weight-1") == "0.4"
        shared.page.close()
    # Played, the link replays the session's clips, then carries on from its end with its mixer.
    shared = open_page()
    shared.page.goto(f"{jam_server.url}/?{parts.query}&debugSpeed=8#{parts.fragment}")
    shared.wait_for("window.__riff && window.__riff.requests.length >= 1")
    assert "Replaying the shared session" in shared.page.inner_text("#status")
    shared.page.click("#play")
    replayed = wait_for_requests(shared, len(clips) + 1)
    for made, clip in zip(replayed, clips):
        recorded = clip["request"]
        assert made["alpha"] == recorded["alpha"]
        assert made["end"].get("prompts") == recorded["end"].get("prompts")
        assert made["end"]["seed"] == recorded["end"]["seed"] and made["start"]["seed"] == recorded["start"]["seed"]
    after = replayed[len(clips)]
    last_end = clips[-1]["request"]["end"]
    assert after["start"]["seed"] == last_end["seed"] and after["start"]["prompt"] == "jazz piano"
    assert after["end"]["prompts"][1] == {"prompt": "rain on a roof", "weight": 0.4}
    assert shared.riff("replayLeft") == 0


def wait_for_requests(page, n):
    page.page.wait_for_function("n => window.__riff.requests.length >= n", arg=n, timeout=120000, polling=100)
    return page.riff("requests")
