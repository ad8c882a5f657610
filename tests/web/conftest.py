"""Browser tests: Debian's Chromium driven by Playwright against a real ``riffusion serve`` subprocess."""

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from server.conftest import free_port, start_server_process, wait_healthy

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic",
    "--autoplay-policy=no-user-gesture-required", "--js-flags=--expose-gc",
]
# Few steps and PGHI-only phase: clips come faster than they play, even on a busy 2-core machine.
FAST_SERVER = ("--num-inference-steps", "2", "--phase", "pghi")
SCREENSHOTS = Path(os.environ.get("RIFFUSION_SCREENSHOTS", tempfile.gettempdir())) / "riffusion-screenshots"

pytestmark = pytest.mark.browser


class Server:
    """A ``riffusion serve`` subprocess (``tiny-random``, or the model folder ``model``) that tests can stop
    and start again."""

    def __init__(self, port=None, model=None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None
        self.model = model

    def start(self):
        extra = ("--model", str(self.model)) if self.model else ()
        self.process = start_server_process(*FAST_SERVER, *extra, port=self.port)
        wait_healthy(self.url, process=self.process)
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture(scope="session")
def jam_server():
    server = Server().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def rhythm_server(tmp_path_factory):
    """A server of a tiny riffusion-small model with a rhythm input (random weights) and the shipped loops."""
    import shutil

    import torch

    from riffusion import small as sm

    torch.manual_seed(0)
    config = sm.SmallModelConfig(block_out_channels=(32, 32), num_inference_steps=2, rhythm_channels=4,
                                 default_denoising=1.0)
    folder = tmp_path_factory.mktemp("rhythm-model") / "tiny-rhythm"
    sm.save_small_model(folder, sm.build_unet(config, sm.SMALL_PARAMS), config=config, params=sm.SMALL_PARAMS)
    shutil.copytree(sm.MODELS_DIR / sm.DEFAULT_SMALL_MODEL / "seed_images", folder / "seed_images")
    server = Server(model=folder).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (scripts/setup_test_tools.sh installs it)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Page:
    """A fresh page that records console errors; fails the test if any appeared."""

    def __init__(self, browser, width=1280, height=800):
        self.page = browser.new_page(viewport={"width": width, "height": height})
        self.errors = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def riff(self, expression):
        return self.page.evaluate(f"window.__riff.{expression}")

    def wait_for(self, condition, timeout_s=90):
        self.page.wait_for_function(condition, timeout=timeout_s * 1000, polling=100)

    def screenshot(self, name):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path


@pytest.fixture
def open_page(browser):
    pages = []

    def make(**viewport):
        page = Page(browser, **viewport)
        pages.append(page)
        return page

    yield make
    for page in pages:
        errors = list(page.errors)
        page.page.close()
        assert not errors, f"console errors: {errors}"
