"""The application factory: :func:`create_app` assembles the routes (:mod:`riffusion.server.routes`), the
error handlers, the OpenAPI document and a lifespan that loads the model into a :class:`ServerState`."""

from __future__ import annotations

import contextlib
import logging
import typing as T

import anyio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from riffusion.server.errors import install_error_handlers
from riffusion.server.openapi import install_openapi
from riffusion.server.routes import compat, v1, web
from riffusion.server.settings import ServerSettings
from riffusion.server.state import ServerState

if T.TYPE_CHECKING:  # pragma: no cover
    from riffusion.protocols import SpectrogramPipeline

log = logging.getLogger("riffusion.server")


StateFactory = T.Callable[[ServerSettings, "SpectrogramPipeline"], ServerState]


def _lifespan(settings: ServerSettings, pipeline: T.Optional["SpectrogramPipeline"], state_factory: StateFactory):
    """Load the model (unless given), warm it up, and stop its worker when the server shuts down."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        model = pipeline
        if model is None:
            from riffusion.loading import load_pipeline

            model = await anyio.to_thread.run_sync(lambda: load_pipeline(settings.model, device=settings.device))
        state = state_factory(settings, model)
        if settings.warmup:
            await anyio.to_thread.run_sync(state.warm_up)
        app.state.riffusion = state
        log.info("model %s ready on %s", state.info.model_id, state.info.device)
        try:
            yield
        finally:
            state.stop()

    return lifespan


def create_app(settings: T.Optional[ServerSettings] = None,
               pipeline: T.Optional["SpectrogramPipeline"] = None, *,
               state_factory: StateFactory = ServerState) -> FastAPI:
    """The server application: ``/run_inference/``, ``/api/v1/...``, the web app, ``/docs``.

    Parameters
    ----------
    settings : ServerSettings, optional
        How it runs; the defaults of :class:`ServerSettings` when omitted.
    pipeline : SpectrogramPipeline, optional
        Use this model instead of loading ``settings.model`` at start-up.
    state_factory : callable, keyword-only
        Builds the app's :class:`ServerState` from the settings and the model: a subclass whose worker runs
        clips elsewhere (:mod:`riffusion.server.ray`) keeps every route, schema and check of this app.
    """
    settings = settings or ServerSettings()
    app = FastAPI(
        title="Riffusion",
        version=__import__("riffusion").__version__,
        description="Real-time music generation with diffusion on spectrogram images. `/run_inference/` is "
        "the original server's contract; `/api/v1/` is the native API.",
        lifespan=_lifespan(settings, pipeline, state_factory),
    )
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["Content-Type"])
    install_error_handlers(app)
    app.include_router(compat.router)
    app.include_router(v1.router)
    app.include_router(web.router)
    app.mount("/web", StaticFiles(directory=web.WEB_DIR, check_dir=False), name="web")
    install_openapi(app)
    return app
