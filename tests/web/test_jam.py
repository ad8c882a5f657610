"""The jam in headless Chromium against the real server (tiny-random): the request schedule, prompts,
URL parameters, transport, recovery, layout and a long session."""

import json
import time

import httpx
import pytest

from .conftest import Server

pytestmark = pytest.mark.browser

HAS_REQUESTS = "n => window.__riff && window.__riff.requests.length >= n"


def start(page, server, query="prompt=jazz+piano&seed=10", play=True, speed=4):
    page.page.goto(f"{server.url}/?{query}&debugSpeed={speed}")
    page.wait_for("window.__riff && window.__riff.requests.length >= 1")
    if play:
        page.page.click("#play")


def requests(page):
    return page.riff("requests")


def wait_requests(page, n, timeout_s=120):
    page.page.wait_for_function(HAS_REQUESTS, arg=n, timeout=timeout_s * 1000, polling=100)
    return requests(page)


def key(end):
    return (end["prompt"], end["seed"])


def assert_continuous(reqs):
    """Consecutive clips share an interpolation end point: each segment starts where the last one ended.
    (A retried request appears once per attempt; repeats are collapsed.)"""
    reqs = [r for i, r in enumerate(reqs) if i == 0 or r != reqs[i - 1]]
    for before, after in zip(reqs, reqs[1:]):
        if after["alpha"] == 0.25:
            assert before["alpha"] == 1.0
            assert key(after["start"]) == key(before["end"])
        else:
            assert (key(after["start"]), key(after["end"])) == (key(before["start"]), key(before["end"]))
            assert after["alpha"] == pytest.approx(before["alpha"] + 0.25)


def type_prompt(page, text):
    page.page.fill("#prompt-input", text)
    page.page.press("#prompt-input", "Enter")


def test_same_prompt_steps_the_seed(open_page, jam_server):
    page = open_page()
    start(page, jam_server)
    reqs = wait_requests(page, 6)
    assert [r["alpha"] for r in reqs[:6]] == [0.25, 0.5, 0.75, 1.0, 0.25, 0.5]
    assert all(r["start"] == {"prompt": "jazz piano", "seed": 10} for r in reqs[:4])
    assert all(r["end"] == {"prompt": "jazz piano", "seed": 11} for r in reqs[:4])
    assert reqs[4]["start"]["seed"] == 11 and reqs[4]["end"]["seed"] == 12
    assert_continuous(reqs)
    page.wait_for("window.__riff.playing >= 2")
    clips = page.riff("clips")
    assert clips[0]["counter"] == 1 and clips[0]["alpha"] == 0.25
    assert page.page.get_attribute("#play", "title") == "Pause"
    page.screenshot("jam-playing")


def test_typed_prompt_makes_a_transition(open_page, jam_server):
    page = open_page()
    start(page, jam_server, play=False)  # paused with a full buffer: the segment cannot roll over yet
    page.page.wait_for_function("() => window.__riff.clips.length >= 2", timeout=120000)
    type_prompt(page, "heavy metal")
    assert page.page.input_value("#prompt-input") == ""
    assert page.riff("upNext") == "heavy metal"
    page.page.click("#play")
    page.page.wait_for_function(
        "() => window.__riff.requests.filter(r => r.end.prompt === 'heavy metal').length >= 5", timeout=150000)
    reqs = requests(page)
    first = next(i for i, r in enumerate(reqs) if r["end"]["prompt"] == "heavy metal")
    transition = reqs[first : first + 4]
    assert [r["alpha"] for r in transition] == [0.25, 0.5, 0.75, 1.0]
    assert all(r["start"]["prompt"] == "jazz piano" for r in transition)
    assert all(r["start"]["seed"] == r["end"]["seed"] for r in transition)  # one shared seed
    after = reqs[first + 4]
    assert after["start"] == transition[-1]["end"] and after["end"]["seed"] == after["start"]["seed"] + 1
    assert after["end"]["prompt"] == "heavy metal"
    assert_continuous(reqs)


# Samples, every 20 ms in the page, the UP NEXT line beside whether the transition to `prompt` has been
# asked for and whether a clip of it is playing.
SAMPLE_UP_NEXT = """prompt => {
  window.__upNextSamples = [];
  setInterval(() => {
    const riff = window.__riff;
    const playing = riff.clips.find((c) => c.counter === riff.playing);
    window.__upNextSamples.push({
      text: document.getElementById("up-next").textContent,
      requested: riff.requests.some((r) => r.end.prompt === prompt),
      arrived: !!playing && playing.transition && playing.end.prompt === prompt,
    });
  }, 20);
}"""


def test_typed_prompt_stays_up_next_until_it_plays(open_page, jam_server):
    page = open_page()
    start(page, jam_server, play=False)  # paused with a full buffer: the transition comes clips later
    page.page.wait_for_function("() => window.__riff.clips.length >= 2", timeout=120000)
    type_prompt(page, "heavy metal")
    page.page.evaluate(SAMPLE_UP_NEXT, "heavy metal")
    page.page.click("#play")
    page.wait_for("window.__upNextSamples.some(s => s.arrived)", timeout_s=150)
    samples = page.page.evaluate("window.__upNextSamples")
    before = samples[: next(i for i, s in enumerate(samples) if s["arrived"])]
    assert all("heavy metal" in s["text"] for s in before), [s for s in before if "heavy metal" not in s["text"]][:3]
    # The case that matters was seen: the transition asked for while an earlier clip still played.
    assert sum(s["requested"] for s in before) >= 10, len(before)
    assert page.riff("upcoming") == [] and page.riff("upNext") is None
    page.wait_for("document.getElementById('up-next').textContent === 'UP NEXT: type a prompt and press Enter'")


def test_second_prompt_before_rollover_replaces_the_first(open_page, jam_server):
    page = open_page()
    start(page, jam_server, play=False)  # paused: the buffer fills and no rollover can happen yet
    page.page.wait_for_function("() => window.__riff.clips.length >= 2", timeout=120000)
    type_prompt(page, "bossa nova")
    type_prompt(page, "   ")  # whitespace only: ignored
    type_prompt(page, "sea shanty")
    assert page.riff("upNext") == "sea shanty"
    page.page.click("#play")
    page.page.wait_for_function("() => window.__riff.requests.some(r => r.end.prompt === 'sea shanty')", timeout=150000)
    reqs = requests(page)
    assert not any(r["end"]["prompt"] == "bossa nova" for r in reqs)
    assert_continuous(reqs)


def test_prompt_typed_during_a_transition_makes_another(open_page, jam_server):
    page = open_page()
    start(page, jam_server, speed=2)  # slow enough that the second prompt lands inside the transition
    type_prompt(page, "dubstep")
    page.page.wait_for_function("() => window.__riff.requests.some(r => r.end.prompt === 'dubstep')", timeout=150000)
    type_prompt(page, "string quartet")
    page.page.wait_for_function(
        "() => window.__riff.requests.some(r => r.end.prompt === 'string quartet')", timeout=150000)
    reqs = requests(page)
    first = next(i for i, r in enumerate(reqs) if r["end"]["prompt"] == "string quartet")
    assert reqs[first]["alpha"] == 0.25 and reqs[first]["start"]["prompt"] == "dubstep"
    assert reqs[first - 1]["end"]["prompt"] == "dubstep" and reqs[first - 1]["alpha"] == 1.0
    assert reqs[first - 1]["start"]["prompt"] == "jazz piano"  # the second segment is a transition too
    assert_continuous(reqs)


def test_url_parameters_set_the_start(open_page, jam_server):
    page = open_page()
    bodies = []
    page.page.on("request", lambda r: r.url.endswith("/api/v1/generate") and bodies.append(json.loads(r.post_data)))
    start(page, jam_server, query="prompt=lofi%20beat&seed=42&denoising=0.85&seedImageId=agile&guidance=5"
          "&numInferenceSteps=3&alphaVelocity=0.5&maskImageId=mask_top_third_75", play=False)
    page.page.wait_for_function("() => window.__riff.clips.length >= 1", timeout=120000)
    body = bodies[0]
    assert body["start"] == {"prompt": "lofi beat", "seed": 42, "denoising": 0.85, "guidance": 5}
    assert body["end"]["seed"] == 43 and body["alpha"] == 0.5
    assert body["num_inference_steps"] == 3 and body["seed_image_id"] == "agile"
    assert body["mask_image_id"] == "mask_top_third_75"
    assert page.page.input_value("#denoising") == "0.85"


def test_starts_paused_then_pause_and_resume(open_page, jam_server):
    page = open_page()
    start(page, jam_server, play=False)
    assert page.page.get_attribute("#play", "title") == "Play"
    page.page.wait_for_function("() => window.__riff.clips.length >= 2", timeout=120000)
    time.sleep(0.5)
    assert page.riff("transportSeconds") == 0 and len(requests(page)) == 2  # buffer full, nothing played
    page.page.click("#play")
    page.wait_for("window.__riff.transportSeconds > 2")
    page.page.click("#play")
    assert page.page.get_attribute("#play", "title") == "Play"
    frozen = page.riff("transportSeconds")
    time.sleep(1.0)
    assert page.riff("transportSeconds") == pytest.approx(frozen, abs=0.05)
    page.page.click("#play")
    page.wait_for(f"window.__riff.transportSeconds > {frozen + 1}")


def test_recovers_when_the_server_comes_back(open_page):
    server = Server().start()
    page = open_page()
    try:
        start(page, server)
        page.wait_for("window.__riff.playing >= 1", timeout_s=120)
        server.stop()
        page.wait_for("window.__riff.state === 'retrying'", timeout_s=120)
        page.screenshot("jam-retrying")
        assert "retrying" in page.page.inner_text("#status")
        received = len(page.riff("clips"))
        server.start()
        page.wait_for(f"window.__riff.clips.length > {received} && window.__riff.state !== 'retrying'", timeout_s=120)
        assert_continuous(requests(page))
    finally:
        server.stop()
        # The browser reports each refused request while the server was down; that is the test, not a bug.
        page.errors = [e for e in page.errors if "Failed to load resource" not in e]


@pytest.mark.parametrize("width,height", [(1280, 800), (375, 812)])
def test_layout_has_no_overlapping_controls(open_page, jam_server, width, height):
    page = open_page(width=width, height=height)
    start(page, jam_server, play=False)
    page.page.wait_for_function("() => window.__riff.clips.length >= 1", timeout=120000)
    ids = ["play", "share-button", "settings-button", "prompt-input", "dice"]
    boxes = {i: page.page.locator(f"#{i}").bounding_box() for i in ids}
    for name, box in boxes.items():
        assert box and box["x"] >= 0 and box["y"] >= 0, name
        assert box["x"] + box["width"] <= width and box["y"] + box["height"] <= height, name
    for a in ids:
        for b in ids:
            if a < b:
                p, q = boxes[a], boxes[b]
                overlap = (p["x"] < q["x"] + q["width"] and q["x"] < p["x"] + p["width"]
                           and p["y"] < q["y"] + q["height"] and q["y"] < p["y"] + p["height"])
                assert not overlap, (a, b)
    page.screenshot(f"jam-{width}x{height}")


def test_settings_share_and_jump(open_page, jam_server):
    page = open_page()
    start(page, jam_server)
    page.wait_for("window.__riff.playing >= 1")
    page.page.click("#settings-button")
    page.page.select_option("#denoising", "0.95")
    assert "bpm" in page.page.inner_text("#seed-image")
    page.wait_for("document.querySelectorAll('#debug-rows tr').length >= 1")
    assert page.page.locator("#debug-rows tr.playing").count() == 1
    page.page.click("[data-close=settings]")
    page.wait_for("window.__riff.recordedChunks >= 1")
    page.page.click("#share-button")
    assert page.page.get_attribute("#share-session", "href").startswith("blob:")
    assert page.page.get_attribute("#share-session", "download").startswith("riffusion_session_jazz_piano.")
    link = page.page.input_value("#share-link")
    assert "prompt=jazz+piano" in link and "seed=" in link
    assert page.page.get_attribute("#share-clip", "download") == "jazz_piano.wav"
    page.page.click("[data-close=share]")
    page.page.click("#prompts .current")
    page.page.wait_for_function(
        "() => window.__riff.requests.slice(-1)[0] && window.__riff.requests.slice(-1)[0].alpha === 0.25", timeout=120000)


def test_long_session_keeps_memory_bounded(open_page, jam_server):
    """A long session at 40x speed (RIFFUSION_LONG_CLIPS clips, default 200): every request is answered with
    one recorded real response, so only the page is measured (meshes, textures, audio buffers, JS heap)."""
    import os

    total = int(os.environ.get("RIFFUSION_LONG_CLIPS", "200"))
    body = {"alpha": 0.25, "num_inference_steps": 2, "seed_image_id": "og_beat", "audio_format": "wav",
            "image_format": "jpeg", "start": {"prompt": "a", "seed": 1}, "end": {"prompt": "a", "seed": 2}}
    recorded = httpx.post(f"{jam_server.url}/api/v1/generate", json=body, timeout=120).text
    page = open_page()
    page.page.route("**/api/v1/generate", lambda route: route.fulfill(
        status=200, content_type="application/json", body=recorded))
    start(page, jam_server, speed=40)
    heap = {}
    for target in (total // 4, total):
        page.wait_for(f"window.__riff.playing >= {target}", timeout_s=10 * target)
        page.page.evaluate("window.gc && window.gc()")
        heap[target] = page.page.evaluate("performance.memory.usedJSHeapSize")
        assert page.riff("meshCount") <= 12 and page.riff("textureCount") <= 12
        # PCM kept: the last 3 played clips (a late clip loops back), the playing one, MAX_AHEAD = 2 ready,
        # and what LOOKAHEAD_S = 0.6 s of wall clock schedules at 40x: 24 s of audio, up to 6 clips of 5.1 s.
        assert page.riff("buffersHeld") <= 3 + 1 + 2 + 6
    first, last = heap[total // 4], heap[total]
    print(f"long session: {total} clips, heap {first / 2**20:.1f} -> {last / 2**20:.1f} MiB, "
          f"meshes {page.riff('meshCount')}, textures {page.riff('textureCount')}, buffers {page.riff('buffersHeld')}")
    assert last < first * 1.5 + 8 * 2**20


def test_software_webgl_draws_lighter_frames(open_page, jam_server):
    """Headless Chromium draws WebGL with SwiftShader, on the CPU: the page notices and draws at half the
    pixel density and at most 10 frames per second, leaving the cores to the audio and the model."""
    page = open_page()
    start(page, jam_server, speed=1)
    page.wait_for("window.__riff.playing >= 1")
    assert page.riff("softwareRendering") is True
    width, css_width = page.page.evaluate(
        "[document.getElementById('timeline').width, document.getElementById('timeline').clientWidth]")
    assert width == css_width // 2, (width, css_width)  # three.js floors width x pixel ratio
    first = page.riff("framesDrawn")
    page.page.wait_for_timeout(3000)
    drawn = page.riff("framesDrawn") - first
    assert 3 <= drawn <= 3 * 10 + 2, drawn  # drawing goes on, at no more than 10 frames/s


def test_idle_pause_is_a_non_blocking_dialog(open_page, jam_server):
    page = open_page()
    start(page, jam_server, query="prompt=jazz+piano&seed=10&idleMinutes=0.05", speed=1)
    page.wait_for("window.__riff.state === 'paused-idle'", timeout_s=60)
    assert page.page.is_visible("#idle") and page.page.get_attribute("#play", "title") == "Play"
    type_prompt(page, "still here")  # the page stays usable while the dialog shows
    assert page.riff("upNext") == "still here"
    page.page.click("#idle-continue")
    page.wait_for("window.__riff.isPlaying && window.__riff.state !== 'paused-idle'")
    assert not page.page.is_visible("#idle")


def test_a_rhythm_model_plays_a_set_tempo_and_metre_in_whole_bars(open_page, rhythm_server):
    page = open_page()
    start(page, rhythm_server, query="prompt=jazz+piano&seed=3&bpm=128&beatsPerBar=3")
    reqs = wait_requests(page, 2)
    assert reqs[0]["rhythm"] == {"bpm": 128, "beats_per_bar": 3}
    assert page.riff("settings")["denoising"] == 1.0  # the model's own: only the loop's beat is kept
    page.wait_for("window.__riff.clips.some(c => c.duration)")
    bar = 60 / 128 * 3
    for clip in page.riff("clips"):
        if clip["duration"]:
            bars = clip["duration"] / bar
            assert abs(bars - round(bars)) < 0.01 and round(bars) >= 1  # cut to whole bars by the server
            assert clip["barSeconds"] == pytest.approx(bar)
    page.page.click("#settings-button")
    assert page.page.inner_text("#denoising-label") == "Loop's sound kept"
    assert page.page.is_visible("#tempo") and page.page.input_value("#metre") == "3"
    page.page.select_option("#tempo", "")  # back to the loop's own tempo
    assert page.page.is_disabled("#metre")
    count = len(requests(page))
    later = wait_requests(page, count + 2)[count + 1:]
    assert later and all("rhythm" not in r for r in later)
    link_page = page.page
    link_page.click("[data-close=settings]")
    link_page.click("#share-button")
    assert "bpm=" not in link_page.input_value("#share-link")


def test_a_model_without_rhythm_input_hides_the_tempo_setting(open_page, jam_server):
    page = open_page()
    start(page, jam_server, query="prompt=jazz&seed=1&bpm=128", play=False)
    assert "rhythm" not in requests(page)[0]
    page.page.click("#settings-button")
    assert not page.page.is_visible("#tempo")
    assert page.page.inner_text("#denoising-label") == "Denoising"


def test_the_mixer_blends_other_prompts_from_the_next_clip(open_page, jam_server):
    page = open_page()
    start(page, jam_server)
    wait_requests(page, 2)
    assert all("prompts" not in r["end"] for r in requests(page))  # nothing mixed in: a plain prompt
    page.page.click("#settings-button")
    assert page.page.locator("#mix input[type=text]").count() == 3  # four prompts with the playing one
    page.page.fill("#mix-prompt-1", "rain on a roof")
    page.page.fill("#mix-weight-1", "0.4")
    page.page.press("#mix-prompt-1", "Tab")  # a typed prompt applies once it is committed
    page.page.fill("#mix-weight-0", "0.8")
    page.wait_for("window.__riff.requests.some(r => r.end.prompts)")
    before = len(requests(page))
    reqs = wait_requests(page, before + 2)  # the mixed requests were answered: the jam goes on
    mixed = [r for r in reqs if "prompts" in r["end"]]
    assert mixed[-1]["end"]["prompts"] == [{"prompt": "jazz piano", "weight": 0.8},
                                           {"prompt": "rain on a roof", "weight": 0.4}]
    assert mixed[-1]["start"]["prompts"][1] == {"prompt": "rain on a roof", "weight": 0.4}
    assert page.riff("state") != "retrying"
    page.page.fill("#mix-weight-1", "0")  # a weight of 0 takes the prompt out again
    count = len(requests(page))
    reqs = wait_requests(page, count + 2)
    assert "prompts" not in reqs[-1]["end"] and reqs[-1]["end"]["prompt"] == "jazz piano"


def test_upload_a_loop_in_the_settings(open_page, jam_server, tmp_path):
    import numpy as np
    import soundfile as sf

    from test_loops import drums

    path = tmp_path / "my_beat.wav"
    sf.write(str(path), drums(120, 6, start_s=0.2, rate=22050), 22050)
    page = open_page()
    start(page, jam_server)
    wait_requests(page, 1)
    page.page.click("#settings-button")
    page.page.set_input_files("#loop-upload", str(path))
    page.wait_for("window.__riff.settings.seedImageId.startsWith('upload-')")
    loop_id = page.riff("settings")["seedImageId"]
    assert page.page.input_value("#seed-image") == loop_id
    assert "my_beat (141 bpm)" in page.page.inner_text("#seed-image")
    assert "3 bars of 4 at 120 bpm" in page.page.inner_text("#loop-upload-status")
    reqs = wait_requests(page, len(requests(page)) + 2)  # the server takes the loop's id: the jam goes on
    assert reqs and page.riff("state") != "retrying"
    listed = httpx.get(f"{jam_server.url}/api/v1/seed_images").json()["seed_images"]
    assert loop_id not in [s["id"] for s in listed]
    silence = tmp_path / "silence.wav"
    sf.write(str(silence), np.zeros(22050 * 3, np.float32), 22050)
    page.page.set_input_files("#loop-upload", str(silence))
    page.wait_for("document.getElementById('loop-upload-status').textContent.startsWith('Not usable')")
    assert "silent" in page.page.inner_text("#loop-upload-status")
    assert page.riff("settings")["seedImageId"] == loop_id
    page.errors[:] = [e for e in page.errors if "status of 422" not in e]  # the refusal asked for above
