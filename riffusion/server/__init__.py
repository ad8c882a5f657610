"""The inference server: ``create_app(settings, pipeline)`` and ``python -m riffusion.server``.

Serves the original server's ``POST /run_inference/`` unchanged, a native API under ``/api/v1/`` (see
``/docs``) and the web app at ``/``.
"""

from riffusion.server.app import create_app
from riffusion.server.settings import ServerSettings

__all__ = ["create_app", "ServerSettings", "serve"]


def serve(settings: ServerSettings, *, open_browser: bool = False) -> None:
    """Run the server in this process until interrupted (uvicorn, one worker: one model in memory)."""
    import logging
    import threading
    import webbrowser

    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
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
