"""The jam's pages: ``/`` and ``/about`` from ``riffusion/web``; its scripts and assets are mounted at
``/web`` by the app factory."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse

WEB_DIR = Path(__file__).resolve().parents[2] / "web"

router = APIRouter(include_in_schema=False)


def _page(name: str):
    path = WEB_DIR / name
    if path.is_file():
        return FileResponse(path, media_type="text/html", headers={"Cache-Control": "no-cache"})
    return HTMLResponse("<!doctype html><title>Riffusion</title><p>The web app is not installed.</p>"
                        "<p>API documentation: <a href='/docs'>/docs</a></p>")


@router.get("/")
async def index():
    return _page("index.html")


@router.get("/about")
async def about():
    return _page("about.html")
