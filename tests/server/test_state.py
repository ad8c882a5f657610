"""What the server reads from its pipeline, once."""

from riffusion.defaults import GENERATION
from riffusion.server.state import describe_pipeline


def test_a_pipelines_declared_defaults_are_what_the_server_announces(tiny_pipeline):
    info = describe_pipeline(tiny_pipeline, None)
    assert info.model_id == "tiny-random" and info.device == "cpu"
    assert info.num_inference_steps == tiny_pipeline.default_num_inference_steps
    assert info.guidance == GENERATION.guidance


def test_a_pipeline_without_declared_defaults_gets_the_packages(tiny_pipeline):
    """An object that offers no defaults (a third-party pipeline) is served with GENERATION's."""

    class Bare:
        spectrogram_params = tiny_pipeline.spectrogram_params

    info = describe_pipeline(Bare(), "my-model")
    assert info.model_id == "my-model" and info.device == "?"
    assert (info.num_inference_steps, info.guidance) == (GENERATION.num_inference_steps, GENERATION.guidance)
