// What the jam asks for next: the stream of interpolation steps between (prompt, seed) end points.
// One prompt walks its seeds (a new seed every segment of 1 / alphaVelocity clips); a queued prompt gets
// a transition segment from the old prompt to the new one at the same seed, so the music stays continuous.

const EXAMPLE_PROMPTS = [
  "jazzy rapping from paris", "church bells on sunday", "funk bassline with a jazzy saxophone solo",
  "lo-fi beat for the holidays", "acoustic folk fiddle jam", "techno with a deep bass", "reggae fusion",
  "arabic gospel", "mambo but with a sitar", "piano solo in a cathedral", "synthwave sunset drive",
  "bossa nova with electric guitar", "marching band on a rainy day", "flute and harp duet",
];
export const MAX_PROMPT_CHARS = 150;

export function examplePrompt() {
  return EXAMPLE_PROMPTS[Math.floor(Math.random() * EXAMPLE_PROMPTS.length)];
}

// A prompt as the jam uses it: trimmed and cut to MAX_PROMPT_CHARS ("" for nothing to use).
export function cleanPrompt(text) {
  return String(text).trim().slice(0, MAX_PROMPT_CHARS);
}

// The mixer: an end's own prompt at `weight` blended with up to three other prompts in the conditioning.
export const MAX_MIX_PROMPTS = 4;

// The prompts an end asks for as a weighted mix ([{prompt, weight}, ...], its own prompt first), or null
// when no other prompt is mixed in (non-empty and weight > 0): the end is then sent as a plain prompt.
export function mixPrompts(prompt, weight, others) {
  const extra = others.map((o) => ({ prompt: cleanPrompt(o.prompt), weight: Math.max(0, +o.weight || 0) }))
    .filter((o) => o.prompt && o.weight > 0).slice(0, MAX_MIX_PROMPTS - 1);
  return extra.length ? [{ prompt, weight: Math.max(0, +weight || 0) }, ...extra] : null;
}

export class Sequence {
  // `settings` is the jam's live settings object: a new alphaVelocity applies from the next segment.
  constructor(settings) {
    this.settings = settings;
    this.segment = null; // {id, start: {prompt, seed}, end: {prompt, seed}, transition}
    this.segments = 0; // segments made so far; each segment's id is its number
    this.alphaStep = 0; // clips of the current segment asked for so far
    this.upNext = null; // the queued prompt, not yet asked for
    this.history = []; // prompts in the order they became current
  }

  get stepsPerSegment() {
    return Math.max(1, Math.round(1 / this.settings.alphaVelocity));
  }

  // Restart from a prompt and seed: a seed-stepping segment from (prompt, seed) to (prompt, seed + 1).
  startFrom(prompt, seed) {
    this.newSegment({ prompt, seed }, { prompt, seed: seed + 1 }, false);
    this.history.push(prompt);
  }

  // Queue a prompt for the next segment; a second prompt before the first is asked for replaces it.
  submit(prompt) {
    this.upNext = prompt;
  }

  // Jump back to a prompt at the current seed, dropping any queued one.
  jumpTo(prompt) {
    this.upNext = null;
    this.startFrom(prompt, this.segment ? this.segment.end.seed : 0);
  }

  // The next clip's inputs: {alpha, start, end, transition, segment} where `segment` is the id of the
  // segment the clip is a step of.
  next() {
    if (this.alphaStep >= this.stepsPerSegment) {
      const end = this.segment.end;
      if (this.upNext !== null) {
        this.newSegment(end, { prompt: this.upNext, seed: end.seed }, true);
        this.history.push(this.upNext);
        this.upNext = null;
      } else {
        this.newSegment(end, { prompt: end.prompt, seed: end.seed + 1 }, false);
      }
    }
    this.alphaStep += 1;
    const { id, start, end, transition } = this.segment;
    const alpha = Math.min(1, this.alphaStep / this.stepsPerSegment);
    return { alpha, start: { ...start }, end: { ...end }, transition, segment: id };
  }

  newSegment(start, end, transition) {
    this.segments += 1;
    this.segment = { id: this.segments, start, end, transition };
    this.alphaStep = 0;
  }
}
