"""Caption variants: several short descriptions of one clip, built from its metadata row.

Full captions of rendered MIDI are long ("jazz combo plus (...), 142 bpm, E minor, with jazz guitar,
acoustic grand piano, ... and drums"); their mean sentence embedding dilutes each word, and nearly every
MMA groove has bass and drums, so a short prompt like "deep bass" or "a drum beat" matches nothing in
particular. Training on short variants (instruments only, one or two instruments with a tempo word, the
style alone, ...) next to the full caption teaches the model what each phrase contributes, which is what
people type.
"""

from __future__ import annotations

import random
import typing as T

from riffusion.dataset.features import REGISTER_WORDS, tempo_word

#: (upper bound of :func:`riffusion.rhythm.onset_strength`, words) for how busy a clip sounds, checked in
#: order (the middle band gets none). Chosen on data/ds-small-v5's rendered parts: medians 1.65 for solo
#: melodies, 2.2 for held chords, 4.8 for drum parts (10th percentile 3.3); MMA grooves and recordings 3.3.
TEXTURE_WORDS = ((1.8, "sustained, long notes"), (4.2, ""), (float("inf"), "busy percussive"))


def texture_words(strength: float) -> str:
    """Words for how busy a clip sounds ("sustained, long notes", "busy percussive" or ""), from its
    :func:`riffusion.rhythm.onset_strength`."""
    return next(words for bound, words in TEXTURE_WORDS if strength < bound)


def _join(words: T.Sequence[str]) -> str:
    words = [w for w in words if w]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def caption_variants(row: T.Mapping[str, T.Any]) -> list[str]:
    """The full caption first, then short variants derived from the row's facts (deduplicated, ordered).

    Uses ``text`` and, when present, ``instruments``, ``families``, ``tempo_bpm`` (or
    ``measured_tempo_bpm``, preferred), ``key``, ``brightness``, ``onset_strength`` (how busy it sounds:
    :func:`texture_words`) and ``source``. Rows with only a caption (a user's folder) give just that caption.
    """
    text = str(row["text"]).strip()
    out = [text]
    instruments = [str(i) for i in row.get("instruments") or []]
    melodic = [i for i in instruments if i != "drums"]
    families = [str(f) for f in row.get("families") or []]
    # tempo words say what the clip sounds like: the measured pulse where known (a 60 bpm ballad in eighth
    # notes is heard, and measured, near 120), else the stated tempo
    bpm = float(row.get("measured_tempo_bpm") or row.get("tempo_bpm") or 0)
    speed = tempo_word(bpm) if bpm else ""
    style = text.split(",")[0].split(" (")[0].strip()
    source = str(row.get("source", ""))
    if source == "scores":  # "a baroque chorale by Bach ...": the article reads wrong after a tempo word
        style = style.removeprefix("a ").removeprefix("an ")
    register = "" if "drums" in instruments else REGISTER_WORDS.get(str(row.get("brightness") or ""), "")
    if instruments:
        out.append(_join(instruments))
        out.append(f"{speed} {_join(instruments)}".strip())
        if len(melodic) == 1:  # a variant must describe the whole clip, not one part of a band
            out.append(f"{melodic[0]} with drums" if "drums" in instruments else f"solo {melodic[0]}")
        if families:
            out.append(_join(families) + (" and drums" if "drums" in instruments else ""))
        if "drums" in instruments:
            out.append(f"{speed} drum beat".strip() if len(melodic) <= 1 else f"{speed} band with drums".strip())
        else:
            out.append(f"{speed} {_join(melodic[:2])}, no drums".strip())
        if register:  # measured: where the clip's energy sits (grounds "deep", "low", "high", "bright")
            out.append(f"{register} {_join(instruments)}")
            if len(melodic) == 1:
                out.append(f"{register} solo {melodic[0]}")
    # A user's captions are theirs: their clips get no words of ours.
    measured = row.get("onset_strength") is not None and source != "user"
    texture = texture_words(float(row["onset_strength"])) if measured else ""
    if texture:  # measured on the clip's image: grounds "sustained", "long notes", "busy", "percussive"
        named = _join(melodic[:2] if texture.startswith("sustained")
                      else melodic[:1] + (["drums"] if "drums" in instruments else []))
        out.append(f"{texture} {named}".strip() if named else texture)
        out.append(f"{speed} {texture} music".strip())
    if source in ("mma", "part", "solo", "scores") or source.startswith("debian"):
        out.append(f"{speed} {style}".strip())
        if row.get("key"):
            out.append(f"{style} in {row['key']}")
    if source == "scores":  # "a baroque chorale by Bach for string quartet": the genre, then the metre
        genre = style.split(" by ")[0].split(" on ")[0].split(" for ")[0].split(" sung ")[0]  # "irish jig"
        out.append(genre)
        if row.get("metre"):
            out.append(f"{speed} {genre} in {row['metre']}".strip())
    if source.startswith("debian"):
        if row.get("brightness"):
            out.append(f"{row['brightness']} {speed} {style}".replace("  ", " ").strip())
        out.append(style)
    seen: set[str] = set()
    unique = []
    for caption in out:
        caption = " ".join(caption.split())
        if caption and caption not in seen:
            seen.add(caption)
            unique.append(caption)
    return unique


def pick_caption(variants: T.Sequence[str], rng: random.Random, *, full_share: float = 0.4) -> str:
    """The full caption with probability ``full_share``, else a uniformly chosen short variant."""
    if len(variants) == 1 or rng.random() < full_share:
        return variants[0]
    return variants[1 + rng.randrange(len(variants) - 1)]
