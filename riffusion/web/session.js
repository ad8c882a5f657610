// The session: what the jam played, clip by clip, as a versioned JSON document (docs/sessions.md,
// session.schema.json) that `riffusion render --session` re-renders offline. Also its compact form for
// a link: base64url of the deflated JSON in the page's fragment (#session=...).

export const SESSION_SCHEMA = "riffusion-session";
export const SESSION_VERSION = 1;
const MAX_CLIPS = 20000; // about a day of jamming; the oldest go first
export const MAX_LINK_CHARS = 60000; // a link carries the latest clips that fit in this many characters

export class SessionRecorder {
  constructor() {
    this.entries = []; // {start_s, duration_s, bar_s, loop_bars, request}
    this.created = null;
  }

  // The player scheduled `clip` at transport `at` seconds: its first piece starts an entry, a piece of a
  // clip already there is one more bar looped while the next clip was late.
  piece(clip, at) {
    if (!clip.request) return;
    if (clip.sessionEntry) {
      clip.sessionEntry.loop_bars += 1;
      return;
    }
    if (this.created === null) this.created = new Date().toISOString();
    const entry = {
      start_s: round(at, 6), duration_s: round(clip.duration, 6), bar_s: round(clip.barSeconds, 6), loop_bars: 0,
      request: clip.request,
    };
    clip.sessionEntry = entry;
    this.entries.push(entry);
    if (this.entries.length > MAX_CLIPS) this.entries.shift();
  }

  // The session so far as a plain JSON value. `info` is {model, sampleRate, phase, crossfadeS, settings} where
  // settings are the jam's live settings (what a link restores: the mixer, the loop, the tempo...).
  toJSON({ model, sampleRate, phase, crossfadeS, settings }) {
    const s = settings;
    return {
      schema: SESSION_SCHEMA, version: SESSION_VERSION, created: this.created, model: model ?? null,
      sample_rate: sampleRate ?? null, phase: phase ?? null, crossfade_s: crossfadeS,
      settings: {
        num_inference_steps: s.numInferenceSteps, seed_image_id: s.seedImageId, mask_image_id: s.maskImageId,
        denoising: s.denoising, guidance: s.guidance, alpha_velocity: s.alphaVelocity,
        bpm: s.bpm, beats_per_bar: s.beatsPerBar,
        mix_weight: s.mixWeight, mix: s.mix.filter((m) => m.prompt).map((m) => ({ prompt: m.prompt, weight: m.weight })),
      },
      clips: JSON.parse(JSON.stringify(this.entries)),
    };
  }
}

function round(value, digits) {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

// --- the link's form ------------------------------------------------------------------------------------

// "z" + base64url(deflate-raw(JSON)) where the browser compresses, else "j" + base64url(UTF-8 JSON).
// A session too long for a link keeps its latest clips (the download has them all).
export async function encodeSession(session) {
  let value = session;
  for (;;) {
    const text = await encodeText(JSON.stringify(value));
    if (text.length <= MAX_LINK_CHARS || value.clips.length <= 1) return text;
    value = { ...value, clips: value.clips.slice(Math.ceil(value.clips.length / 2)) };
  }
}

// The session a link's fragment value carries; an Error for anything that is not one.
export async function decodeSession(text) {
  const kind = text[0];
  const bytes = fromBase64Url(text.slice(1));
  let json;
  if (kind === "z") json = await new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate-raw"))).text();
  else if (kind === "j") json = new TextDecoder().decode(bytes);
  else throw new Error("not a session link");
  const session = JSON.parse(json);
  if (!session || session.schema !== SESSION_SCHEMA || session.version !== SESSION_VERSION) {
    throw new Error(`not a ${SESSION_SCHEMA} version ${SESSION_VERSION}`);
  }
  return session;
}

async function encodeText(json) {
  const bytes = new TextEncoder().encode(json);
  if (typeof CompressionStream === "undefined") return "j" + toBase64Url(bytes);
  const deflated = await new Response(new Blob([bytes]).stream().pipeThrough(new CompressionStream("deflate-raw"))).arrayBuffer();
  return "z" + toBase64Url(new Uint8Array(deflated));
}

function toBase64Url(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text) {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

// The mixer as URL parameters: mixWeight (the playing prompt's) and one mix=PROMPT:WEIGHT per other prompt.
export function setMixParams(params, settings) {
  const mix = settings.mix.filter((m) => m.prompt && m.weight > 0);
  if (!mix.length) return;
  params.set("mixWeight", settings.mixWeight);
  for (const m of mix) params.append("mix", `${m.prompt}:${m.weight}`);
}

// The mixer of URL parameters as [{prompt, weight}] (the weight after the last colon), [] for none.
export function readMixParams(params) {
  return params.getAll("mix").map((value) => {
    const colon = value.lastIndexOf(":");
    const weight = colon < 0 ? NaN : +value.slice(colon + 1);
    return { prompt: (colon < 0 ? value : value.slice(0, colon)).trim(), weight: isFinite(weight) ? Math.max(0, weight) : 0.5 };
  }).filter((m) => m.prompt);
}
