"""The inference server: ``create_app(settings, pipeline)``, ``serve(settings)`` and
``python -m riffusion.server``.

Serves the original server's ``POST /run_inference/`` unchanged, a native API under ``/api/v1/`` (see
``/docs``) and the web app at ``/``. Modules:

- :mod:`.settings`: :class:`ServerSettings`, every setting and its default;
- :mod:`.app`: the application factory; :mod:`.run`: running it under uvicorn;
- :mod:`.routes`: the original contract, the native API and the web pages;
- :mod:`.dependencies`: the server state and parsed request bodies, as route dependencies;
- :mod:`.errors`: JSON error responses; :mod:`.body`: reading request bodies; :mod:`.schemas`: their models;
- :mod:`.state`, :mod:`.worker`, :mod:`.cache`, :mod:`.clips`: the model, its queue, cached responses,
  one clip per request; :mod:`.openapi`: the ``/docs`` document.

Importing the package is cheap (settings only): the web framework is imported when the app is made.
"""

from __future__ import annotations

import typing as T

from riffusion.server.settings import ServerSettings

if T.TYPE_CHECKING:  # pragma: no cover
    from riffusion.server.app import create_app
    from riffusion.server.run import serve

__all__ = ["create_app", "ServerSettings", "serve"]


def __getattr__(name: str):
    if name == "create_app":
        from riffusion.server.app import create_app

        return create_app
    if name == "serve":
        from riffusion.server.run import serve

        return serve
    raise AttributeError(f"module 'riffusion.server' has no attribute {name!r}")
