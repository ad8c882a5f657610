// The jam: an endless stream of generated clips, asked for ahead of playback and played back to back.
// It owns the clips and the loop state; the sequence says what to ask for, the API client asks, the
// player plays.

import { Backoff, dataUrlBytes, fetchJson, generateClip } from "./api.js";
import { CROSSFADE_S, Player } from "./player.js";
import { Sequence, cleanPrompt, examplePrompt, mixPrompts } from "./sequence.js";
import { SessionRecorder, decodeSession, readMixParams } from "./session.js";
import { encodeWav } from "./wav.js";

const MAX_AHEAD = 2; // clips received but not yet started, kept ready ahead of playback

export class Jam {
  // `params` are the page's URL parameters; `speed` plays clips this many times faster (tests only).
  constructor({ params, speed = 1, onPiece, onIdle = () => {} }) {
    this.params = params;
    this.settings = {
      numInferenceSteps: 25, seedImageId: "og_beat", maskImageId: null, denoising: 0.75, guidance: 7.0,
      alphaVelocity: 0.25, idleMinutes: 10,
      // Models with a rhythm input: null bpm follows the seed loop's tempo and metre, a number sets them.
      rhythmInput: false, bpm: null, beatsPerBar: 4,
      // The mixer: the playing prompt's weight and up to three other prompts [{prompt, weight}] blended in.
      mixWeight: 1, mix: [],
      // The server's start-up measurement: false when it makes clips slower than they play.
      keepsUp: null, secondsPerClip: null,
    };
    this.sequence = new Sequence(this.settings);
    this.recorder = new SessionRecorder(); // what was played, for the session download and link
    this.player = new Player({ speed, onPiece: (clip, at, length) => { this.recorder.piece(clip, at); onPiece(clip, at, length); } });
    this.model = null; // the server's model, audio rate and phase method (/api/v1/defaults), for the session
    this.sampleRate = null;
    this.phase = null;
    this.loadedSession = null; // the session a link carried, if any
    this.script = []; // the loaded session's clips still to replay (inputs with their recorded request)
    this.backoff = new Backoff();
    this.onIdle = onIdle; // told true when playback pauses for idleness, false when it resumes
    this.seedImages = [];
    this.clips = []; // every clip of the session: {counter, alpha, start, end, state, ...}
    this.counter = 0;
    this.epoch = 0; // bumped by a jump: responses to requests made before it are stale
    this.pending = null; // inputs of the request in flight or to retry
    this.state = "starting"; // loop state: starting | generating | buffered | behind | retrying | paused-idle
    this.inFlight = false;
    this.requests = []; // log of request summaries (for the debug view and tests)
    this.playing = null; // counter of the clip being heard
    this.isPlaying = false;
    this.lastPromptAt = performance.now();
  }

  // Settings: the server's defaults, then the URL's; then the first prompt and the seed images.
  async load() {
    try {
      const defaults = await fetchJson("/api/v1/defaults");
      Object.assign(this.settings, {
        numInferenceSteps: defaults.num_inference_steps, seedImageId: defaults.seed_image_id,
        denoising: defaults.denoising, guidance: defaults.guidance, alphaVelocity: defaults.alpha_velocity,
        rhythmInput: Boolean(defaults.rhythm_input),
        keepsUp: defaults.keeps_up ?? null, secondsPerClip: defaults.seconds_per_clip ?? null,
      });
      this.model = defaults.model ?? null;
      this.sampleRate = defaults.sample_rate ?? null;
      this.phase = defaults.phase ?? null;
    } catch (error) {
      console.warn("using built-in defaults:", error.message);
    }
    const params = this.params;
    const start = await this.loadSessionLink(); // a shared session: its settings, mixer and last prompt
    const mix = readMixParams(params);
    if (mix.length) this.settings.mix = mix;
    if (urlNumber(params, "mixWeight") !== null) this.settings.mixWeight = Math.max(0, urlNumber(params, "mixWeight"));
    const number = (name) => urlNumber(params, name);
    const overrides = {
      numInferenceSteps: number("numInferenceSteps"), denoising: number("denoising"),
      guidance: number("guidance"), alphaVelocity: number("alphaVelocity"), idleMinutes: number("idleMinutes"),
    };
    for (const [key, value] of Object.entries(overrides)) if (value !== null) this.settings[key] = value;
    if (params.get("seedImageId")) this.settings.seedImageId = params.get("seedImageId");
    if (params.get("maskImageId")) this.settings.maskImageId = params.get("maskImageId");
    const bpm = number("bpm");
    if (bpm !== null && this.settings.rhythmInput) this.settings.bpm = Math.min(300, Math.max(30, bpm));
    const beats = number("beatsPerBar");
    if (beats !== null) this.settings.beatsPerBar = Math.min(16, Math.max(1, Math.round(beats)));
    this.settings.alphaVelocity = Math.min(1, Math.max(0.05, this.settings.alphaVelocity));
    // After a shared session's replay the jam carries on from where it ended (the link's own prompt and
    // seed are the moment it was shared, a clip or so earlier).
    const prompt = (start && start.prompt) || cleanPrompt(params.get("prompt") || "") || examplePrompt();
    const seed = start ? start.seed : number("seed") ?? Math.floor(Math.random() * 1000000);
    this.startFrom(prompt, Math.floor(seed));
    try {
      this.seedImages = (await fetchJson("/api/v1/seed_images")).seed_images;
    } catch (error) {
      console.warn("seed images unavailable:", error.message);
    }
  }

  // The session in the page's fragment (#session=..., the Share panel's link), applied to the settings:
  // its settings and mixer; returns where it ended ({prompt, seed}), or null without one.
  async loadSessionLink() {
    const value = new URLSearchParams(window.location.hash.slice(1)).get("session");
    if (!value) return null;
    let session;
    try {
      session = await decodeSession(value);
    } catch (error) {
      console.warn("the link's session is unusable:", error.message);
      return null;
    }
    this.loadedSession = session;
    const saved = session.settings || {};
    const s = this.settings;
    const pick = (value, fallback) => (value === undefined || value === null ? fallback : value);
    s.numInferenceSteps = pick(saved.num_inference_steps, s.numInferenceSteps);
    // An uploaded loop lives on the server that took it, for an hour: keep this server's default then.
    if (saved.seed_image_id && !String(saved.seed_image_id).startsWith("upload-")) s.seedImageId = saved.seed_image_id;
    s.maskImageId = pick(saved.mask_image_id, s.maskImageId);
    s.denoising = pick(saved.denoising, s.denoising);
    s.guidance = pick(saved.guidance, s.guidance);
    s.alphaVelocity = pick(saved.alpha_velocity, s.alphaVelocity);
    if (s.rhythmInput) s.bpm = pick(saved.bpm, s.bpm);
    s.beatsPerBar = pick(saved.beats_per_bar, s.beatsPerBar);
    s.mixWeight = pick(saved.mix_weight, s.mixWeight);
    if (Array.isArray(saved.mix)) s.mix = saved.mix.map((m) => ({ prompt: String(m.prompt), weight: +m.weight || 0 }));
    this.script = replayScript(session, s);
    const last = session.clips && session.clips[session.clips.length - 1];
    const end = last && last.request && last.request.end;
    if (!end) return null;
    const prompt = end.prompt ?? (end.prompts && end.prompts[0] && end.prompts[0].prompt);
    return prompt && Number.isInteger(end.seed) ? { prompt: cleanPrompt(prompt), seed: end.seed } : null;
  }

  // The session so far (docs/sessions.md): every clip scheduled, its request and where it started.
  session() {
    return this.recorder.toJSON({
      model: this.model, sampleRate: this.sampleRate, phase: this.phase, crossfadeS: CROSSFADE_S, settings: this.settings,
    });
  }

  // Restart the stream from a prompt and seed; clips made for the old stream and not yet scheduled go.
  startFrom(prompt, seed) {
    this.sequence.startFrom(prompt, seed);
    this.dropReady();
  }

  dropReady() {
    this.epoch += 1;
    for (const clip of this.clips) if (clip.state === "ready") this.discard(clip);
  }

  // --- the generation loop ----------------------------------------------------------------------------

  get clipsAhead() {
    return this.clips.filter((clip) => clip.state === "ready").length;
  }

  get late() {
    return this.player.late;
  }

  async pump() {
    if (this.inFlight || this.clipsAhead >= MAX_AHEAD || this.state === "paused-idle") return;
    if (this.backoff.waiting) return;
    const inputs = this.pending || this.script.shift() || this.sequence.next();
    this.pending = inputs; // kept until it succeeds, so a retry asks for the same clip
    const request = inputs.request || this.requestFor(inputs); // what the session records of the clip
    const [start, end] = [request.start, request.end].map(({ seed, prompt, prompts }) =>
      (prompts ? { prompt: prompts[0].prompt, seed, prompts } : { prompt, seed }));
    const body = { ...request, audio_format: "wav", image_format: "jpeg" }; // WAV: no encoder padding, gapless seams
    this.inFlight = true;
    const epoch = this.epoch; // a jump to another prompt while this request runs makes its clip stale
    if (this.state !== "retrying" && this.state !== "behind") this.state = "generating";
    this.requests.push({ alpha: inputs.alpha, start, end, rhythm: body.rhythm });
    if (this.requests.length > 1000) this.requests.shift();
    try {
      const clip = await this.makeClip(inputs, await generateClip(body));
      clip.request = request;
      this.pending = null;
      this.backoff.succeed();
      if (epoch === this.epoch) {
        this.clips.push(clip);
        this.state = this.late ? "behind" : "buffered";
      }
    } catch (error) {
      const wait = this.backoff.fail(error);
      this.state = "retrying";
      this.lastError = error.message || "network error";
      console.warn(`clip request failed (${this.lastError}); retrying in ${wait.toFixed(1)} s`);
    } finally {
      this.inFlight = false;
    }
    this.pump();
  }

  // The request for a step of the sequence: the settings of now, the mixer on both ends (a segment
  // blends the same other prompts all the way through).
  requestFor(inputs) {
    const s = this.settings;
    const wire = (e) => {
      const prompts = mixPrompts(e.prompt, s.mixWeight, s.mix);
      return { ...(prompts ? { seed: e.seed, prompts } : e), denoising: s.denoising, guidance: s.guidance };
    };
    const request = {
      alpha: inputs.alpha, num_inference_steps: s.numInferenceSteps, seed_image_id: s.seedImageId,
      mask_image_id: s.maskImageId, start: wire(inputs.start), end: wire(inputs.end),
    };
    // A set tempo: clips start on a downbeat and the server cuts them to whole bars, so they join on the bar.
    if (s.rhythmInput && s.bpm) request.rhythm = { bpm: s.bpm, beats_per_bar: s.beatsPerBar };
    return request;
  }

  async makeClip(inputs, data) {
    const counter = ++this.counter;
    const image = new Image();
    image.src = data.image;
    await image.decode();
    const audioBytes = dataUrlBytes(data.audio);
    const buffer = await this.player.context.decodeAudioData(audioBytes.buffer.slice(0));
    return {
      ...inputs, counter, state: "ready", image, imageUrl: data.image, buffer, duration: buffer.duration,
      barSeconds: this.barSeconds(buffer.duration), prompt: inputs.alpha < 0.5 ? inputs.start.prompt : inputs.end.prompt,
    };
  }

  // The length of a bar of a clip `duration` seconds long: the set tempo's, else the seed loop's bars.
  barSeconds(duration) {
    const s = this.settings;
    if (s.rhythmInput && s.bpm) return Math.min(duration, (60 / s.bpm) * s.beatsPerBar);
    const seed = this.seedImages.find((entry) => entry.id === s.seedImageId);
    return duration / (seed && seed.bars ? seed.bars : 1);
  }

  discard(clip) {
    clip.state = "discarded";
    clip.buffer = null;
    clip.image = null;
  }

  // --- the clock ------------------------------------------------------------------------------------------

  tick() {
    if (this.player.audio && this.isPlaying) {
      const looped = this.player.scheduleAhead(() => this.clips.find((clip) => clip.state === "ready"));
      if (looped && this.state !== "retrying") this.state = "behind";
      const current = this.player.current();
      if (current && current.clip.counter !== this.playing) {
        // Retire everything heard before the current clip: after a stall of the main thread longer than a
        // clip, the transport passes clips that were scheduled but never seen playing here.
        for (const clip of this.clips) {
          if ((clip.state === "playing" || clip.state === "scheduled") && clip.counter < current.clip.counter) {
            this.retire(clip);
          }
        }
        this.playing = current.clip.counter;
        current.clip.state = "playing";
      }
      if (this.state === "behind" && !this.late) this.state = this.inFlight ? "generating" : "buffered";
    }
    const idleMs = this.settings.idleMinutes * 60000;
    if (this.isPlaying && idleMs > 0 && performance.now() - this.lastPromptAt > idleMs) {
      this.pause();
      this.state = "paused-idle";
      this.onIdle(true);
    }
    this.pump();
  }

  retire(clip) {
    // Keep the image for the debug list and share; drop the PCM once the clip cannot loop any more.
    clip.state = "played";
    const keep = this.clips.filter((c) => c.state === "played");
    for (const old of keep.slice(0, -3)) old.buffer = null;
    for (const old of keep.slice(0, -50)) { old.image = null; old.imageUrl = null; }
    if (this.clips.length > 500) this.clips.splice(0, this.clips.length - 500);
  }

  async togglePlay() {
    if (this.isPlaying) this.pause();
    else await this.resume();
  }

  async resume() {
    await this.player.resume();
    this.isPlaying = true;
    this.lastPromptAt = performance.now();
    if (this.state === "paused-idle") this.state = "generating";
    this.onIdle(false);
  }

  pause() {
    this.isPlaying = false;
    this.player.suspend();
  }

  // --- prompts ----------------------------------------------------------------------------------------------

  submitPrompt(text) {
    const prompt = cleanPrompt(text);
    if (!prompt) return false;
    this.sequence.submit(prompt);
    this.lastPromptAt = performance.now();
    return true;
  }

  jumpTo(prompt) {
    this.pending = null;
    this.script = []; // a jump ends a replay
    this.sequence.jumpTo(prompt);
    this.dropReady();
    this.lastPromptAt = performance.now();
  }

  // Clips of a shared session still to replay (the one being asked for included).
  get replayLeft() {
    return this.script.length + (this.pending && this.pending.request ? 1 : 0);
  }

  get upNext() {
    return this.sequence.upNext;
  }

  get history() {
    return this.sequence.history;
  }

  get currentPrompt() {
    const clip = this.clips.find((c) => c.counter === this.playing);
    return clip ? clip.prompt : this.history[this.history.length - 1];
  }

  // Prompts on their way, in the order they will play: each transition asked for (or being asked for)
  // whose first clip has not started yet, then the queued prompt. A prompt leaves this list when the
  // clip that transitions to it starts playing.
  get upcomingPrompts() {
    const heard = new Set();
    for (const c of this.clips) if (c.state === "playing" || c.state === "played") heard.add(c.segment);
    const waiting = new Map(); // segment id -> prompt, in order
    for (const item of [...this.clips.filter((c) => c.state === "ready" || c.state === "scheduled"), this.pending]) {
      if (item && item.transition && !heard.has(item.segment)) waiting.set(item.segment, item.end.prompt);
    }
    const prompts = [...waiting.values()];
    if (this.upNext !== null) prompts.push(this.upNext);
    return prompts;
  }

  // Everything heard so far: the recording of the output, or (without MediaRecorder) the clips whose
  // PCM is still in memory as WAV.
  sessionAudio() {
    const recorded = this.player.recordedAudio();
    if (recorded) return recorded;
    const buffers = this.clips.filter((c) => c.buffer && (c.state === "played" || c.state === "playing")).map((c) => c.buffer);
    const blob = encodeWav(buffers);
    return blob ? { blob, extension: "wav" } : null;
  }
}

// The clips of a loaded session as steps to replay, in order: {alpha, start, end, transition, segment,
// request} with the recorded request, less what this server cannot take (a loop uploaded elsewhere plays
// as this server's default loop; a tempo only goes to a rhythm model).
function replayScript(session, settings) {
  const name = ({ prompt, prompts, seed }) => ({ prompt: prompt ?? prompts[0].prompt, seed });
  const steps = [];
  let segment = 0;
  let key = null;
  for (const clip of Array.isArray(session.clips) ? session.clips : []) {
    const recorded = clip && clip.request;
    if (!recorded || !recorded.start || !recorded.end) continue;
    const request = JSON.parse(JSON.stringify(recorded));
    if (String(request.seed_image_id || "").startsWith("upload-")) request.seed_image_id = settings.seedImageId;
    if (!settings.rhythmInput) delete request.rhythm;
    const [start, end] = [name(request.start), name(request.end)];
    const ends = JSON.stringify([start, end]);
    if (ends !== key) { segment += 1; key = ends; }
    steps.push({ alpha: request.alpha, start, end, transition: start.prompt !== end.prompt, segment: `replay-${segment}`, request });
  }
  return steps;
}

// A number from the URL parameters, or null where it is absent, empty or not a number.
export function urlNumber(params, name) {
  const value = params.get(name);
  return value !== null && value !== "" && isFinite(+value) ? +value : null;
}
