"""Starting the Ray Serve backend: ``riffusion serve --backend ray`` (a local Ray cluster on this
machine) and :func:`build`, the application builder ``serve run`` and KubeRay call with a config file."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import threading
import typing as T
import webbrowser

from riffusion.server.settings import ServerSettings

log = logging.getLogger("riffusion.server")

#: The line shown when the Ray backend is asked for without Ray installed.
RAY_MISSING = "the Ray Serve backend needs Ray: pip install -e '.[ray]'"
#: The Ray Serve application's name (``serve status``, the KubeRay manifest).
APP_NAME = "riffusion"


class RayMissing(ModuleNotFoundError):
    """Ray (with Serve) is not installed: the message is :data:`RAY_MISSING`."""


def require_ray():
    """The ``ray`` module. Raises :class:`RayMissing` when Ray or Ray Serve is absent."""
    try:
        import ray
        from ray import serve  # noqa: F401 - the extra is ray[serve], not ray alone
    except ModuleNotFoundError:
        raise RayMissing(RAY_MISSING) from None
    return ray


def build(args: dict[str, T.Any]):
    """The application for a Ray Serve config file (``import_path: riffusion.server.ray.run:build``).

    ``args`` holds :class:`~riffusion.server.settings.ServerSettings` fields by name (``model``, ``device``,
    ``num_inference_steps``, ...) and either ``replicas`` (a fixed count) or ``autoscaling`` (a Ray Serve
    autoscaling config); the config file's ``deployments`` section may override any Ray option.

    Raises
    ------
    ValueError
        For an argument that is not a setting (named in the message) or a setting out of range.
    """
    from riffusion.server.ray.deployments import build_application

    args = dict(args)
    replicas = args.pop("replicas", None)
    autoscaling = args.pop("autoscaling", None)
    fields = {field.name for field in dataclasses.fields(ServerSettings)}
    unknown = sorted(set(args) - fields)
    if unknown:
        raise ValueError(f"unknown riffusion argument(s) {', '.join(unknown)}; expected replicas, autoscaling or "
                         f"server settings: {', '.join(sorted(fields))}")
    if "cors_origins" in args:
        args["cors_origins"] = tuple(args["cors_origins"])
    settings = ServerSettings(**args)
    if replicas is None and autoscaling is None:
        replicas = 1
    return build_application(settings, replicas=None if replicas is None else int(replicas), autoscaling=autoscaling)


def serve(settings: ServerSettings, *, replicas: int = 1, open_browser: bool = False) -> None:
    """Run the server on a local Ray cluster with ``replicas`` model replicas until interrupted.

    The same port, routes and settings as :func:`riffusion.server.run.serve`; Ray's HTTP proxy listens on
    ``settings.host:settings.port``. A replica takes one CPU (or one GPU with ``device="cuda"``); the local
    cluster claims at least as many CPUs as replicas.

    Raises
    ------
    RayMissing
        If Ray is not installed (:data:`RAY_MISSING`).
    ValueError
        If ``replicas`` < 1, or for the settings :func:`riffusion.server.run.check_settings` refuses.
    """
    if replicas < 1:
        raise ValueError(f"--replicas must be at least 1, got {replicas}")
    ray = require_ray()
    from ray import serve as ray_serve

    from riffusion.server.ray.deployments import build_application
    from riffusion.server.run import check_settings

    check_settings(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # A local, offline cluster: no usage report, no dashboard, Ray's own logs at warnings only.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=max(os.cpu_count() or 1, replicas + 1), include_dashboard=False, logging_level=logging.WARNING,
             configure_logging=True, namespace=APP_NAME)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        ray_serve.start(http_options={"host": settings.host, "port": settings.port},
                        logging_config={"log_level": "WARNING", "enable_access_log": False})
        ray_serve.run(build_application(settings, replicas=replicas), name=APP_NAME, route_prefix="/",
                      logging_config={"log_level": "WARNING", "enable_access_log": False})
        url = f"http://{'127.0.0.1' if settings.host in ('0.0.0.0', '::') else settings.host}:{settings.port}/"
        log.info("serving on %s with %d model replica(s) on Ray", url, replicas)
        if open_browser:
            webbrowser.open(url)
        stop.wait()
    finally:
        try:
            ray_serve.shutdown()
        finally:
            ray.shutdown()
