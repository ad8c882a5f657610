"""Running the server in this process: what ``riffusion serve`` and ``python -m riffusion.server`` call."""

from __future__ import annotations

import logging
import threading
import webbrowser

from riffusion.server.settings import ServerSettings


def check_settings(settings: ServerSettings) -> None:
    """Raise ``ValueError`` or ``LookupError`` for settings that would fail only after the port is bound:
    an unknown phase method, a model that is not available here."""
    from riffusion.generation import check_phase
    from riffusion.loading import TINY_RANDOM, resolve_model

    check_phase(settings.phase)
    if settings.model is not None and settings.model != TINY_RANDOM:
        resolve_model(settings.model)


def serve(settings: ServerSettings, *, open_browser: bool = False) -> None:
    """Check ``settings`` and load the model, then run the server until interrupted (uvicorn, one worker:
    one model in memory).

    Parameters
    ----------
    settings : ServerSettings
    open_browser : bool
        Open the jam in the default browser once the server accepts connections.
    """
    import uvicorn

    from riffusion.server.app import create_app

    from riffusion.loading import load_pipeline
    from riffusion.server.state import check_web_steps

    check_settings(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Loaded before the port is bound, so that a model or step setting that cannot work is one line.
    pipeline = load_pipeline(settings.model, device=settings.device)
    check_web_steps(settings, pipeline)
    app = create_app(settings, pipeline)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="info",
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    url = f"http://{'127.0.0.1' if settings.host in ('0.0.0.0', '::') else settings.host}:{settings.port}/"
    if open_browser:
        def _open_when_ready():
            while not server.started and not server.should_exit:
                threading.Event().wait(0.2)
            if server.started:
                print(f"The jam is at {url}", flush=True)
                webbrowser.open(url)

        threading.Thread(target=_open_when_ready, daemon=True).start()
    server.run()
