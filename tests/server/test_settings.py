"""Server settings: one home for the defaults, read by both command lines; checks before binding."""

import dataclasses
import inspect

import pytest

from riffusion.server.settings import DEFAULT_SETTINGS, ServerSettings


def test_riffusion_serve_takes_its_defaults_from_the_settings():
    from riffusion.cli import build_parser
    from riffusion.cli.serve import serve

    args = vars(build_parser().parse_args(["serve"]))
    signature = {name: p.default for name, p in inspect.signature(serve).parameters.items()}
    for field in dataclasses.fields(ServerSettings):
        if field.name in args:
            assert args[field.name] == getattr(DEFAULT_SETTINGS, field.name) == signature[field.name], field.name
    assert args["cache_mb"] * 2**20 == DEFAULT_SETTINGS.cache_max_bytes == signature["cache_mb"] * 2**20
    assert tuple(args["cors_origin"]) == DEFAULT_SETTINGS.cors_origins


def test_python_m_riffusion_server_takes_its_defaults_from_the_settings():
    from riffusion.server.__main__ import build_parser

    args = build_parser().parse_args([])
    assert (args.checkpoint, args.device, args.host, args.port) == (
        DEFAULT_SETTINGS.model, DEFAULT_SETTINGS.device, DEFAULT_SETTINGS.host, DEFAULT_SETTINGS.port)


def test_both_command_lines_take_the_same_warm_up_and_step_options():
    from riffusion.cli import build_parser as cli_parser
    from riffusion.server.__main__ import build_parser

    options = ["--num-inference-steps", "6", "--max-inference-steps", "40", "--no-warmup"]
    module = vars(build_parser().parse_args(options))
    cli = vars(cli_parser().parse_args(["serve", *options]))
    for name, value in {"num_inference_steps": 6, "max_inference_steps": 40, "warmup": False}.items():
        assert module[name] == cli[name] == value, name
    assert build_parser().parse_args([]).warmup is DEFAULT_SETTINGS.warmup is True


@pytest.mark.parametrize("argv, message", [(["--checkpoint", "/no/such/model"], "does not exist"),
                                           (["--port", "70000"], "invalid server setting port=70000")])
def test_python_m_riffusion_server_refuses_bad_settings_before_binding(argv, message, capsys):
    from riffusion.server.__main__ import main

    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_settings_refuse_invalid_values():
    with pytest.raises(ValueError, match="queue_size=0"):
        ServerSettings(queue_size=0)
    with pytest.raises(ValueError, match="num_inference_steps=200"):
        ServerSettings(num_inference_steps=200)


def test_check_settings_accepts_what_can_be_served():
    from riffusion.server.run import check_settings

    check_settings(ServerSettings(model="tiny-random", phase="griffin-lim:4"))


@pytest.mark.parametrize("settings, error, message", [
    (ServerSettings(model="tiny-random", phase="wavenet"), ValueError, "unknown phase method 'wavenet'"),
    (ServerSettings(model="/no/such/model"), LookupError, "does not exist"),
])
def test_check_settings_refuses_what_would_fail_after_binding(settings, error, message):
    from riffusion.server.run import check_settings

    with pytest.raises(error, match=message):
        check_settings(settings)


@pytest.mark.parametrize("argv, message", [(["--max-render-clips", "0"], "invalid server setting max_render_clips=0"),
                                           (["--max-render-s", "-1"], "invalid server setting max_render_s=-1.0")])
def test_riffusion_serve_refuses_bad_render_limits_before_binding(argv, message, capsys):
    from riffusion.cli import build_parser, main

    assert vars(build_parser().parse_args(["serve", "--max-render-clips", "8"]))["max_render_clips"] == 8
    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
