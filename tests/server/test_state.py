"""What the server reads from its pipeline, once."""

import pytest

from riffusion.defaults import GENERATION
from riffusion.server.state import describe_pipeline


def test_a_pipelines_declared_defaults_are_what_the_server_announces(tiny_pipeline):
    info = describe_pipeline(tiny_pipeline, None)
    assert info.model_id == "tiny-random" and info.device == "cpu"
    assert info.num_inference_steps == tiny_pipeline.default_num_inference_steps
    assert info.guidance == GENERATION.guidance


def test_an_object_that_is_not_a_pipeline_is_refused_naming_what_it_lacks(tiny_pipeline):
    class Bare:
        spectrogram_params = tiny_pipeline.spectrogram_params

    with pytest.raises(TypeError, match="lacks .*default_denoising.*riffuse_batch"):
        describe_pipeline(Bare(), "my-model")


def test_a_model_without_rhythm_input_is_played_at_the_package_denoising(tiny_pipeline):
    info = describe_pipeline(tiny_pipeline, None)
    assert info.denoising == GENERATION.denoising and info.rhythm_input is False
