"""Training and fine-tuning (``riffusion train``): see :mod:`riffusion.training.trainer`."""

from riffusion.training.trainer import DEFAULT_SAMPLE_PROMPTS, TrainConfig, TrainResult, list_checkpoints, train

__all__ = ["DEFAULT_SAMPLE_PROMPTS", "TrainConfig", "TrainResult", "list_checkpoints", "train"]
