"""The Ray Serve backend on a real local Ray cluster: ``riffusion serve --backend ray --replicas 2`` with
the tiny model, started as a subprocess like a user would. Requests spread over the replicas, a killed replica is replaced
while the other keeps answering, and bad input gets the single-process server's JSON 4xx."""

import concurrent.futures
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("ray.serve", reason="the Ray tests need the extra: pip install -e '.[ray]'")

from server.conftest import free_port, start_server_process, wait_healthy  # noqa: E402

REPLICAS = 2

pytestmark = pytest.mark.slow


def replica_pids(process) -> list[int]:
    """PIDs of the model replicas under ``process`` (Ray names their processes after the deployment)."""
    import psutil

    return [child.pid for child in psutil.Process(process.pid).children(recursive=True)
            if "ServeReplica:riffusion:ModelReplica" in " ".join(_cmdline(child))]


def _cmdline(child) -> list[str]:
    import psutil

    try:
        return child.cmdline()
    except psutil.Error:
        return []


def _alive(child) -> bool:
    import psutil

    try:
        return child.is_running() and child.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@pytest.fixture(scope="module")
def ray_server():
    """The server subprocess with ``.url``; stopped (and its Ray cluster with it) after the tests."""
    import psutil

    port = free_port()
    process = start_server_process("--backend", "ray", "--replicas", str(REPLICAS),
                                   "--num-inference-steps", "2", "--max-inference-steps", "8", port=port)
    process.url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process.url, timeout=240, process=process)
        yield process
    finally:
        tree = psutil.Process(process.pid).children(recursive=True) if process.poll() is None else []
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
        # Ray stops its own processes on shutdown; any left after a grace period are ended by id.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(child) for child in tree):
            time.sleep(0.5)
        for child in tree:
            if _alive(child):
                os.kill(child.pid, signal.SIGKILL)
        if os.environ.get("RIFFUSION_KEEP_LOGS") is None:
            Path(process.log_path).unlink(missing_ok=True)


@pytest.fixture(scope="module")
def ray_url(ray_server):
    return ray_server.url


def clip_body(seed: int) -> dict:
    """A ``/run_inference/`` body (the original web app's request), distinct per ``seed``."""
    return {"alpha": 0.25, "num_inference_steps": 2, "seed_image_id": "og_beat",
            "start": {"prompt": "lofi beat", "seed": seed, "denoising": 0.75},
            "end": {"prompt": "jazz piano", "seed": seed + 1, "denoising": 0.75}}


def health(url: str) -> dict:
    return httpx.get(f"{url}/api/v1/health", timeout=10).json()


def test_requests_spread_over_the_replicas(ray_url):
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda seed: httpx.post(f"{ray_url}/run_inference/", json=clip_body(seed),
                                                          timeout=240), range(100, 106)))
    assert [r.status_code for r in responses] == [200] * 6
    assert all(r.json()["audio"].startswith("data:audio/mpeg;base64,") for r in responses)
    report = health(ray_url)
    assert report["stats"]["replicas"] == {"RUNNING": REPLICAS}
    assert len(report["stats"]["clips_by_replica"]) == REPLICAS  # both replicas made clips


def test_the_jam_and_its_defaults_come_from_a_warmed_up_replica(ray_url):
    assert "<html" in httpx.get(f"{ray_url}/", timeout=30).text.lower()
    defaults = httpx.get(f"{ray_url}/api/v1/defaults", timeout=30).json()
    assert defaults["num_inference_steps"] == 2 and defaults["model"] == "tiny-random"
    assert defaults["seconds_per_clip"] > 0 and isinstance(defaults["keeps_up"], bool)  # measured by a replica
    assert httpx.get(f"{ray_url}/openapi.json", timeout=30).json()["paths"]["/run_inference/"]


def test_bad_input_gets_the_same_json_4xx(ray_url):
    not_json = httpx.post(f"{ray_url}/run_inference/", content=b"{oops", timeout=30)
    assert not_json.status_code == 400
    assert not_json.json()["detail"].startswith("the request body is not valid JSON")
    too_many = httpx.post(f"{ray_url}/run_inference/", json={**clip_body(1), "num_inference_steps": 9}, timeout=30)
    assert too_many.status_code == 422
    assert too_many.json() == {"detail": [{"loc": ["body", "num_inference_steps"], "type": "less_than_equal",
                                           "msg": "this server allows at most 8 steps"}]}
    unknown_seed = httpx.post(f"{ray_url}/api/v1/generate", timeout=30,
                              json={**clip_body(1), "seed_image_id": "no_such_loop"})
    assert unknown_seed.status_code == 422
    assert unknown_seed.json()["detail"][0]["loc"] == ["body", "seed_image_id"]


def test_an_uploaded_loop_reaches_the_replicas(ray_url):
    from server.test_uploads import upload, wav

    loop = upload(ray_url, wav())
    assert loop.status_code == 201, loop.text
    bodies = [{**clip_body(seed), "seed_image_id": loop.json()["id"]} for seed in (200, 300)]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda body: httpx.post(f"{ray_url}/run_inference/", json=body, timeout=240), bodies))
    assert [r.status_code for r in responses] == [200, 200], [r.text[:300] for r in responses]


def test_a_killed_replica_is_replaced_while_the_other_keeps_answering(ray_server):
    url = ray_server.url
    before = set(health(url)["stats"]["clips_by_replica"])
    victim = replica_pids(ray_server)[0]
    outcomes: list[tuple[float, int, str]] = []  # (seconds since the kill, status, detail)
    killed_at = threading.Event()
    stop = threading.Event()
    t0 = [0.0]

    def listener(first_seed: int):
        seed = first_seed
        while not stop.is_set():
            response = httpx.post(f"{url}/run_inference/", json=clip_body(seed), timeout=240)
            if killed_at.is_set():
                detail = "" if response.status_code == 200 else response.json()["detail"]
                outcomes.append((time.monotonic() - t0[0], response.status_code, detail))
            seed += 10
            if response.status_code != 200:
                time.sleep(float(response.headers.get("Retry-After", "1")))  # as the jam retries

    threads = [threading.Thread(target=listener, args=(1000 + i,), daemon=True) for i in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)  # requests in flight on both replicas
    t0[0] = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    killed_at.set()

    replaced_after = None
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        report = health(url)["stats"]
        new_replicas = set(report["clips_by_replica"]) - before
        if report["replicas"].get("RUNNING") == REPLICAS and new_replicas and victim not in replica_pids(ray_server):
            replaced_after = time.monotonic() - t0[0]
            break
        time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(240)

    print(f"\nreplica {victim} killed; replaced and answering after {replaced_after} s; outcomes after the kill "
          f"(s, status, detail): {[(round(t, 1), status, detail) for t, status, detail in outcomes]}")
    assert replaced_after is not None, f"no replacement replica answered: {health(url)}"
    failures = [(status, detail) for _, status, detail in outcomes if status != 200]
    assert all(status in (500, 503) and isinstance(detail, str) for status, detail in failures), failures
    assert len(failures) <= 2 * len(threads)  # only what was in flight on the killed replica (and retries)
    assert sum(status == 200 for _, status, _ in outcomes) >= len(threads)  # the others kept answering


def test_build_reads_a_config_files_args():
    import yaml

    from riffusion.server.ray.run import build

    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "deploy" / "ray" / "serve_config.yaml").read_text())
    assert type(build(config["applications"][0]["args"])).__name__ == "Application"
    with pytest.raises(ValueError, match="unknown riffusion argument.*modle"):
        build({"modle": "tiny-random"})


def test_replica_options_need_a_count_or_autoscaling():
    from riffusion.server import ServerSettings
    from riffusion.server.ray.deployments import replica_options

    options = replica_options(ServerSettings(device="cpu", max_batch_size=8), autoscaling={"max_replicas": 3})
    assert options["autoscaling_config"]["target_ongoing_requests"] == 8
    assert options["autoscaling_config"]["max_replicas"] == 3
    assert replica_options(ServerSettings(device="cpu"), replicas=2)["num_replicas"] == 2
    with pytest.raises(ValueError, match="replicas must be at least 1, got 0"):
        replica_options(ServerSettings(device="cpu"), replicas=0)
    with pytest.raises(ValueError, match="either replicas"):
        replica_options(ServerSettings(device="cpu"), replicas=2, autoscaling={})


def test_a_session_renders_on_the_replicas(ray_url):
    from server.test_render import session

    response = httpx.post(f"{ray_url}/api/v1/render", json={"session": session(2), "audio_format": "wav"}, timeout=240)
    assert response.status_code == 200, response.text[:300]
    body = response.json()
    assert body["clips"] == 2 and len(body["starts_s"]) == 2 and body["audio"].startswith("data:audio/wav;base64,")
