"""Without the extra: the Ray backend is one clear line, and nothing else needs Ray."""

import subprocess
import sys

from riffusion.cli import main


def test_serve_backend_ray_without_ray_is_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed: importing it fails
    assert main(["serve", "--backend", "ray", "--model", "tiny-random"]) == 2
    assert capsys.readouterr().err.strip() == (
        "riffusion serve: error: the Ray Serve backend needs Ray: pip install -e '.[ray]'")


def test_replicas_need_the_ray_backend(capsys):
    assert main(["serve", "--replicas", "2", "--model", "tiny-random"]) == 2
    assert "--replicas 2 needs --backend ray" in capsys.readouterr().err


def test_default_server_never_imports_ray():
    code = ("import sys, riffusion.cli.serve, riffusion.server.app, riffusion.server.run, riffusion.server.ray.run; "
            "print('ray' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "False"
