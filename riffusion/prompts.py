"""Prompt weighting (AUTOMATIC1111 syntax), prompts of any length (chunks of 75 tokens) and weighted mixes
of prompts (blended in the conditioning).

Syntax, as the original Riffusion accepted it:

* ``(words)`` multiplies the attention to ``words`` by 1.1, ``((words))`` by 1.21, ``[words]`` divides by 1.1;
* ``(words:1.5)`` multiplies by 1.5 (weights below 1 weaken, 0 silences);
* ``\\(`` ``\\)`` ``\\[`` ``\\]`` ``\\\\`` are literal characters; unbalanced brackets apply to the end;
* ``BREAK`` (upper case, a word on its own) starts a new 75-token chunk.

Long prompts are cut into chunks of 75 tokens, each encoded on its own between the start and end tokens
(77 positions, the text encoder's limit), and the chunk embeddings are concatenated along the sequence
axis; UNet cross-attention accepts any sequence length. Weighted embeddings are rescaled to keep the
chunk's mean, so emphasis changes direction, not overall magnitude.
"""

from __future__ import annotations

import re
import typing as T

if T.TYPE_CHECKING:  # pragma: no cover
    import torch

CHUNK_TOKENS = 75  # text tokens per chunk; + start and end token = 77 positions
EMPHASIS = 1.1
BREAK = "BREAK"

_TOKEN = re.compile(
    r"""
    \\[\\()\[\]]            # an escaped bracket or backslash
    | \(                    # open emphasis
    | \[                    # open de-emphasis
    | :\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*\)   # explicit weight closing a '('
    | \)                    # close emphasis
    | \]                    # close de-emphasis
    | \bBREAK\b             # chunk break
    | [^\\()\[\]:B]+        # plain text
    | .                     # anything else, one character at a time (':' 'B' '\\')
    """,
    re.VERBOSE | re.DOTALL,
)


def parse_prompt_weights(text: str) -> list[tuple[str, float]]:
    """Split an A1111-weighted prompt into ``(text, weight)`` pieces, in order.

    Adjacent pieces of equal weight are merged; ``BREAK`` is returned as the piece ``("BREAK", -1.0)``.

    >>> parse_prompt_weights("a (house:1.5) by the [sea]")
    [('a ', 1.0), ('house', 1.5), (' by the ', 1.0), ('sea', 0.9090909090909091)]
    """
    if not isinstance(text, str):
        raise TypeError(f"prompt must be a string, got {type(text).__name__}")
    pieces: list[list] = []
    round_open: list[int] = []
    square_open: list[int] = []

    def scale(start: int, factor: float) -> None:
        for piece in pieces[start:]:
            if piece[1] >= 0:
                piece[1] *= factor

    for match in _TOKEN.finditer(text):
        token, weight = match.group(0), match.group(1)
        if token.startswith("\\") and len(token) == 2:
            pieces.append([token[1], 1.0])
        elif token == "(":
            round_open.append(len(pieces))
        elif token == "[":
            square_open.append(len(pieces))
        elif weight is not None and round_open:
            scale(round_open.pop(), float(weight))
        elif token == ")" and round_open:
            scale(round_open.pop(), EMPHASIS)
        elif token == "]" and square_open:
            scale(square_open.pop(), 1 / EMPHASIS)
        elif token == BREAK:
            pieces.append([BREAK, -1.0])
        else:
            pieces.append([token, 1.0])
    for start in round_open:
        scale(start, EMPHASIS)
    for start in square_open:
        scale(start, 1 / EMPHASIS)

    merged: list[tuple[str, float]] = []
    for piece_text, piece_weight in pieces:
        if merged and merged[-1][1] == piece_weight and piece_weight >= 0:
            merged[-1] = (merged[-1][0] + piece_text, piece_weight)
        else:
            merged.append((piece_text, piece_weight))
    return merged or [("", 1.0)]


def strip_prompt_weights(text: str) -> str:
    """The prompt's words without the weighting syntax (for text encoders without per-token weights).

    Brackets and explicit weights go, escaped brackets become literal, ``BREAK`` markers are dropped; a
    word keeps its place whatever its weight.

    >>> strip_prompt_weights(r"jazz (piano:1.3) [drums] \\(live\\)")
    'jazz piano drums (live)'
    """
    return "".join(piece for piece, weight in parse_prompt_weights(text) if (piece, weight) != (BREAK, -1.0))


def tokenize_prompt(tokenizer, text: str, *, use_weights: bool = True) -> list[tuple[list[int], list[float]]]:
    """Token ids and per-token weights of a prompt, cut into chunks of at most 75 tokens.

    Returns a list of ``(ids, weights)``, one per chunk, without the start/end tokens; at least one
    (possibly empty) chunk.
    """
    pieces = parse_prompt_weights(text) if use_weights else [(text, 1.0)]
    chunks: list[tuple[list[int], list[float]]] = [([], [])]
    for piece, weight in pieces:
        if weight < 0:  # BREAK
            if chunks[-1][0]:
                chunks.append(([], []))
            continue
        ids = tokenizer(piece, add_special_tokens=False, truncation=False, verbose=False).input_ids
        for token in ids:
            if len(chunks[-1][0]) == CHUNK_TOKENS:
                chunks.append(([], []))
            chunks[-1][0].append(token)
            chunks[-1][1].append(weight)
    return chunks


def encode_prompt(
    text_encoder,
    tokenizer,
    text: str,
    *,
    use_weights: bool = True,
    device: T.Optional["torch.device"] = None,
    min_chunks: int = 1,
) -> "torch.Tensor":
    """Text embedding of a prompt of any length, with A1111 weights applied.

    Parameters
    ----------
    text_encoder : transformers.CLIPTextModel
    tokenizer : transformers.CLIPTokenizer
    text : str
        The prompt (weighting syntax honoured when ``use_weights``).
    min_chunks : int
        Pad with embeddings of empty chunks up to this many chunks.

    Returns
    -------
    torch.Tensor, shape (1, 77 * chunks, hidden_size)
        The concatenated chunk embeddings (last hidden state), in the encoder's dtype.
    """
    import torch

    device = device or text_encoder.device
    max_length = CHUNK_TOKENS + 2
    chunks = tokenize_prompt(tokenizer, text, use_weights=use_weights)
    chunks += [([], [])] * max(0, min_chunks - len(chunks))
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    ids = torch.tensor(
        [[bos, *chunk, eos] + [pad] * (CHUNK_TOKENS - len(chunk)) for chunk, _ in chunks], device=device
    )
    weights = torch.tensor(
        [[1.0, *w, 1.0] + [1.0] * (CHUNK_TOKENS - len(w)) for _, w in chunks], device=device
    )
    with torch.no_grad():
        embeddings = text_encoder(ids)[0]  # (chunks, 77, hidden)
    if bool((weights != 1.0).any()):
        original_mean = embeddings.float().mean(dim=(1, 2), keepdim=True)
        weighted = embeddings.float() * weights[..., None]
        new_mean = weighted.mean(dim=(1, 2), keepdim=True)
        # Keep each chunk's mean (as the original did); a chunk whose weighted mean vanishes keeps its scale.
        ratio = torch.where(new_mean.abs() > 1e-6, original_mean / new_mean, torch.ones_like(new_mean))
        embeddings = (weighted * ratio).to(embeddings.dtype)
    assert embeddings.shape[1] == max_length
    return embeddings.reshape(1, -1, embeddings.shape[-1])


def pad_embeddings(embeddings: T.Sequence["torch.Tensor"], empty: "torch.Tensor") -> list["torch.Tensor"]:
    """Pad prompt embeddings (1, 77 * k, d) of different chunk counts to the longest with ``empty`` (1, 77, d),
    the embedding of an empty chunk, so they can be interpolated and batched."""
    import torch

    length = max(e.shape[1] for e in embeddings)
    step = empty.shape[1]
    out = []
    for e in embeddings:
        missing = (length - e.shape[1]) // step
        out.append(torch.cat([e] + [empty.to(e.dtype)] * missing, dim=1) if missing else e)
    return out


# --- prompt mixes -----------------------------------------------------------------------------------------

MAX_MIX_PROMPTS = 4


def check_prompt_mix(mix: T.Any, *, field: str = "mix") -> tuple[tuple[str, float], ...]:
    """A weighted mix of prompts, validated: ``((prompt, weight), ...)`` as a tuple of tuples.

    Parameters
    ----------
    mix : sequence of (str, float)
        1 to :data:`MAX_MIX_PROMPTS` pairs: a non-empty prompt and a finite weight >= 0; the weights must
        have a positive sum (they are relative: normalised to sum 1 by :func:`normalise_prompt_mix`).
    field : str
        The name the error messages give the value.

    Raises
    ------
    ValueError
        Naming ``field`` and the entry at fault.

    >>> check_prompt_mix([("jazz", 1), ("rain", 0.4)])
    (('jazz', 1.0), ('rain', 0.4))
    """
    import math

    if isinstance(mix, (str, bytes)) or not isinstance(mix, T.Sequence):
        raise ValueError(f"{field} must be a sequence of (prompt, weight) pairs, got {type(mix).__name__}")
    if not 1 <= len(mix) <= MAX_MIX_PROMPTS:
        raise ValueError(f"{field} must have 1 to {MAX_MIX_PROMPTS} prompts, got {len(mix)}")
    checked = []
    for i, entry in enumerate(mix):
        if isinstance(entry, (str, bytes)) or not isinstance(entry, T.Sequence) or len(entry) != 2:
            raise ValueError(f"{field}[{i}] must be a (prompt, weight) pair, got {entry!r:.80}")
        prompt, weight = entry
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError(f"{field}[{i}] prompt must be a non-empty string, got {prompt!r:.80}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"{field}[{i}] weight must be a finite number >= 0, got {weight!r}")
        checked.append((prompt, float(weight)))
    if sum(weight for _, weight in checked) <= 0:
        raise ValueError(f"{field} weights must have a positive sum, got all zero")
    return tuple(checked)


def plain_prompt(mix: T.Any) -> T.Optional[str]:
    """The prompt of ``mix`` when it is one prompt at weight 1, as
    :attr:`riffusion.datatypes.PromptInput.weighted_prompts` gives a plain prompt, else None.

    A plain prompt may be empty (the unconditional prompt, as in the original), which a mix's entries may not.

    >>> plain_prompt([("", 1.0)]), plain_prompt([("jazz", 0.5)])
    ('', None)
    """
    if isinstance(mix, (str, bytes)) or not isinstance(mix, T.Sequence) or len(mix) != 1:
        return None
    entry = mix[0]
    if isinstance(entry, (str, bytes)) or not isinstance(entry, T.Sequence) or len(entry) != 2:
        return None
    prompt, weight = entry
    if isinstance(prompt, str) and not isinstance(weight, bool) and isinstance(weight, (int, float)) and weight == 1.0:
        return prompt
    return None


def normalise_prompt_mix(mix: T.Any) -> tuple[tuple[str, float], ...]:
    """The mix's prompts of positive weight, weights divided by their sum (so they sum to 1).

    A single prompt gets weight exactly 1.0, so a mix of one prompt conditions exactly as the prompt alone.
    A plain prompt (:func:`plain_prompt`) comes back as it is, the empty one included.

    >>> normalise_prompt_mix([("jazz", 3), ("rain", 1), ("wind", 0)])
    (('jazz', 0.75), ('rain', 0.25))
    >>> normalise_prompt_mix([("", 1.0)])
    (('', 1.0),)
    """
    plain = plain_prompt(mix)
    if plain is not None:
        return ((plain, 1.0),)
    checked = check_prompt_mix(mix)
    total = sum(weight for _, weight in checked)
    return tuple((prompt, weight / total) for prompt, weight in checked if weight > 0)


def blend_embeddings(embeddings: T.Sequence["torch.Tensor"], weights: T.Sequence[float]) -> "torch.Tensor":
    """The weighted sum of conditioning tensors of one shape (weights summing to 1: a weighted average).

    Parameters
    ----------
    embeddings : sequence of torch.Tensor, each of shape (1, tokens, hidden)
    weights : sequence of float
        One per embedding.

    Returns
    -------
    torch.Tensor, shape (1, tokens, hidden)
        A single embedding of weight 1 is returned as it is (bit for bit).
    """
    if len(embeddings) != len(weights) or not embeddings:
        raise ValueError(f"need one weight per embedding, got {len(embeddings)} embeddings and {len(weights)} weights")
    shapes = {tuple(e.shape) for e in embeddings}
    if len(shapes) != 1:
        raise ValueError(f"embeddings to blend must have one shape, got {sorted(shapes)}")
    if len(embeddings) == 1 and float(weights[0]) == 1.0:
        return embeddings[0]
    blended = embeddings[0] * float(weights[0])
    for embedding, weight in zip(embeddings[1:], weights[1:]):
        blended = blended + embedding * float(weight)
    return blended
