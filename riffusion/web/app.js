// The jam: an endless stream of generated clips, interpolating between seeds and prompts, played
// back to back on the Web Audio clock while the spectrograms scroll by in 3D.
// Times are in seconds; "transport" time is seconds of music played since the session started.

const EXAMPLE_PROMPTS = [
  "jazzy rapping from paris", "church bells on sunday", "funk bassline with a jazzy saxophone solo",
  "lo-fi beat for the holidays", "acoustic folk fiddle jam", "techno with a deep bass", "reggae fusion",
  "arabic gospel", "mambo but with a sitar", "piano solo in a cathedral", "synthwave sunset drive",
  "bossa nova with electric guitar", "marching band on a rainy day", "flute and harp duet",
];
const MAX_AHEAD = 2; // clips received but not yet started, kept ready ahead of playback
const CROSSFADE_S = 0.03; // equal-power crossfade at each seam
const LOOKAHEAD_S = 0.6; // schedule audio this far ahead of the clock
const MAX_PROMPT_CHARS = 150;
// Equal-power fade curves (gain^2 of in + out stays 1 across a seam).
const EQUAL_POWER_IN = new Float32Array(32).map((_, i) => Math.sin((i / 31) * (Math.PI / 2)));
const EQUAL_POWER_OUT = EQUAL_POWER_IN.slice().reverse();

const params = new URLSearchParams(window.location.search);
const urlNumber = (name) => (params.has(name) && params.get(name) !== "" && isFinite(+params.get(name)) ? +params.get(name) : null);

class Jam {
  constructor() {
    this.settings = {
      numInferenceSteps: 25, seedImageId: "og_beat", maskImageId: null, denoising: 0.75, guidance: 7.0,
      alphaVelocity: 0.25, idleMinutes: 10,
    };
    this.speed = Math.max(1, urlNumber("debugSpeed") || 1); // test-only: play clips this many times faster
    this.seedImages = [];
    this.clips = []; // every clip of the session: {counter, alpha, start, end, state, ...}
    this.counter = 0;
    this.segment = null; // {start: {prompt, seed}, end: {prompt, seed}, transition}
    this.alphaStep = 0;
    this.upNext = null;
    this.history = []; // prompts in the order they became current
    this.state = "starting"; // loop state: starting | generating | buffered | behind | retrying | paused-idle
    this.inFlight = false;
    this.failures = 0;
    this.retryAt = 0;
    this.requests = []; // log of request summaries (for the debug view and tests)
    this.audio = null; // {context, output, compressor}
    this.transportStart = null; // context time at transport 0
    this.nextStart = 0; // transport time where the next clip (or loop bar) starts
    this.lastScheduled = null; // the clip scheduled last
    this.playing = null; // counter of the clip being heard
    this.schedule = []; // {clip, from, to} in transport seconds, what is heard when
    this.isPlaying = false;
    this.lastPromptAt = performance.now();
    this.timeline = null;
    this.volume = 0.8;
  }

  // --- start-up ---------------------------------------------------------------------------------------

  async init() {
    try {
      const defaults = await fetchJson("/api/v1/defaults");
      Object.assign(this.settings, {
        numInferenceSteps: defaults.num_inference_steps, seedImageId: defaults.seed_image_id,
        denoising: defaults.denoising, guidance: defaults.guidance, alphaVelocity: defaults.alpha_velocity,
      });
    } catch (error) {
      console.warn("using built-in defaults:", error.message);
    }
    const overrides = {
      numInferenceSteps: urlNumber("numInferenceSteps"), denoising: urlNumber("denoising"),
      guidance: urlNumber("guidance"), alphaVelocity: urlNumber("alphaVelocity"),
      idleMinutes: urlNumber("idleMinutes"),
    };
    for (const [key, value] of Object.entries(overrides)) if (value !== null) this.settings[key] = value;
    if (params.get("seedImageId")) this.settings.seedImageId = params.get("seedImageId");
    if (params.get("maskImageId")) this.settings.maskImageId = params.get("maskImageId");
    this.settings.alphaVelocity = Math.min(1, Math.max(0.05, this.settings.alphaVelocity));
    const prompt = (params.get("prompt") || "").trim().slice(0, MAX_PROMPT_CHARS)
      || EXAMPLE_PROMPTS[Math.floor(Math.random() * EXAMPLE_PROMPTS.length)];
    const seed = urlNumber("seed") ?? Math.floor(Math.random() * 1000000);
    this.startFrom(prompt, Math.floor(seed));
    try {
      this.seedImages = (await fetchJson("/api/v1/seed_images")).seed_images;
    } catch (error) {
      console.warn("seed images unavailable:", error.message);
    }
    ui.init(this);
    try {
      const { Timeline } = await import("./timeline.js");
      this.timeline = new Timeline(document.getElementById("timeline"));
    } catch (error) {
      console.warn("3D timeline unavailable:", error.message); // the music goes on without it
    }
    setInterval(() => this.tick(), 50);
    const frame = () => {
      if (this.timeline) this.timeline.render(this.transportSeconds);
      ui.frame();
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
    this.pump();
  }

  // Restart the stream from a prompt and seed (start, jump to a prompt).
  startFrom(prompt, seed) {
    this.segment = { start: { prompt, seed }, end: { prompt, seed: seed + 1 }, transition: false };
    this.alphaStep = 0;
    this.epoch = (this.epoch || 0) + 1;
    this.history.push(prompt);
    for (const clip of this.clips) if (clip.state === "ready") this.discard(clip);
  }

  // --- the generation loop ----------------------------------------------------------------------------

  get stepsPerSegment() {
    return Math.max(1, Math.round(1 / this.settings.alphaVelocity));
  }

  // The next request of the sequence: seed stepping for one prompt, transitions to a queued prompt.
  nextInputs() {
    if (this.alphaStep >= this.stepsPerSegment) {
      const end = this.segment.end;
      if (this.upNext !== null) {
        // A transition from the old prompt to the new one at the same seed; the stream stays continuous.
        this.segment = { start: end, end: { prompt: this.upNext, seed: end.seed }, transition: true };
        this.history.push(this.upNext);
        this.upNext = null;
      } else {
        this.segment = { start: end, end: { prompt: end.prompt, seed: end.seed + 1 }, transition: false };
      }
      this.alphaStep = 0;
    }
    this.alphaStep += 1;
    const alpha = Math.min(1, this.alphaStep / this.stepsPerSegment);
    return { alpha, start: { ...this.segment.start }, end: { ...this.segment.end }, transition: this.segment.transition };
  }

  get clipsAhead() {
    return this.clips.filter((clip) => clip.state === "ready").length;
  }

  async pump() {
    if (this.inFlight || this.clipsAhead >= MAX_AHEAD || this.state === "paused-idle") return;
    if (performance.now() < this.retryAt) return;
    const inputs = this.pending || this.nextInputs();
    this.pending = inputs; // kept until it succeeds, so a retry asks for the same clip
    const s = this.settings;
    const body = {
      alpha: inputs.alpha, num_inference_steps: s.numInferenceSteps, seed_image_id: s.seedImageId,
      mask_image_id: s.maskImageId,
      start: { ...inputs.start, denoising: s.denoising, guidance: s.guidance },
      end: { ...inputs.end, denoising: s.denoising, guidance: s.guidance },
      audio_format: "wav", image_format: "jpeg", // WAV: no encoder padding, gapless seams
    };
    this.inFlight = true;
    const epoch = this.epoch; // a jump to another prompt while this request runs makes its clip stale
    if (this.state !== "retrying" && this.state !== "behind") this.state = "generating";
    this.requests.push({ alpha: inputs.alpha, start: inputs.start, end: inputs.end });
    if (this.requests.length > 1000) this.requests.shift();
    try {
      const response = await fetch("/api/v1/generate", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      if (!response.ok) {
        const retryAfter = +(response.headers.get("Retry-After") || 0);
        let detail = `HTTP ${response.status}`;
        try { detail = JSON.stringify((await response.json()).detail).slice(0, 200); } catch (_) { /* not JSON */ }
        throw Object.assign(new Error(detail), { retryAfter });
      }
      const data = await response.json();
      const clip = await this.makeClip(inputs, data);
      this.pending = null;
      this.failures = 0;
      if (epoch === this.epoch) {
        this.clips.push(clip);
        this.state = this.late ? "behind" : "buffered";
      }
    } catch (error) {
      this.failures += 1;
      const wait = Math.max(error.retryAfter || 0, Math.min(8, 0.5 * 2 ** (this.failures - 1)));
      this.retryAt = performance.now() + wait * 1000;
      this.state = "retrying";
      this.lastError = error.message || "network error";
      console.warn(`clip request failed (${this.lastError}); retrying in ${wait.toFixed(1)} s`);
    } finally {
      this.inFlight = false;
    }
    this.pump();
  }

  async makeClip(inputs, data) {
    const counter = ++this.counter;
    const image = new Image();
    image.src = data.image;
    await image.decode();
    const audioBytes = dataUrlBytes(data.audio);
    const context = this.audioContext();
    const buffer = await context.decodeAudioData(audioBytes.buffer.slice(0));
    const seed = this.seedImages.find((entry) => entry.id === this.settings.seedImageId);
    const bars = seed && seed.bars ? seed.bars : 1;
    return {
      counter, alpha: inputs.alpha, start: inputs.start, end: inputs.end, transition: inputs.transition,
      state: "ready", image, imageUrl: data.image, buffer, duration: buffer.duration,
      barSeconds: buffer.duration / bars, prompt: inputs.alpha < 0.5 ? inputs.start.prompt : inputs.end.prompt,
    };
  }

  discard(clip) {
    clip.state = "discarded";
    clip.buffer = null;
    clip.image = null;
  }

  // --- sound --------------------------------------------------------------------------------------------

  audioContext() {
    if (!this.audio) {
      const context = new AudioContext();
      const compressor = context.createDynamicsCompressor();
      compressor.threshold.value = -30; // dB
      compressor.ratio.value = 3;
      const output = context.createGain();
      output.gain.value = this.volume;
      compressor.connect(output).connect(context.destination);
      this.audio = { context, compressor, output };
      this.startRecorder(output);
      context.suspend();
    }
    return this.audio.context;
  }

  // Record what is heard (Opus, ~64 kbit/s: a few MB per hour) for "download the whole session".
  startRecorder(output) {
    this.recording = [];
    try {
      const tap = this.audio.context.createMediaStreamDestination();
      output.connect(tap);
      const mimeType = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm"]
        .find((type) => window.MediaRecorder && MediaRecorder.isTypeSupported(type));
      if (!mimeType) return;
      this.recorder = new MediaRecorder(tap.stream, { mimeType, audioBitsPerSecond: 64000 });
      this.recorder.ondataavailable = (event) => { if (event.data.size) this.recording.push(event.data); };
      this.recorder.start(1000); // a chunk every second, so a download is never more than 1 s behind
    } catch (error) {
      console.warn("session recording unavailable:", error.message);
      this.recorder = null;
    }
  }

  setVolume(value) {
    this.volume = value;
    if (this.audio) this.audio.output.gain.value = value;
  }

  get transportSeconds() {
    if (!this.audio || this.transportStart === null) return 0;
    return Math.max(0, (this.audio.context.currentTime - this.transportStart) * this.speed);
  }

  // Schedule what plays in the next LOOKAHEAD_S: the next ready clip, or (when it is late) one more bar of
  // the current clip, so the next one starts on a bar boundary and the view stays in sync.
  scheduleAhead() {
    const context = this.audio.context;
    while ((this.nextStart - this.transportSeconds) / this.speed < LOOKAHEAD_S) {
      const next = this.clips.find((clip) => clip.state === "ready");
      if (next) {
        this.play(next, this.nextStart, 0, next.duration);
        next.state = "scheduled";
        this.lastScheduled = next;
        this.nextStart += next.duration - CROSSFADE_S;
        this.late = false;
      } else if (this.lastScheduled && this.lastScheduled.buffer) {
        const clip = this.lastScheduled;
        this.play(clip, this.nextStart, 0, clip.barSeconds + CROSSFADE_S);
        this.nextStart += clip.barSeconds;
        this.late = true;
        if (this.state !== "retrying") this.state = "behind";
      } else {
        // Nothing heard yet: the transport waits for the first clip.
        this.transportStart = context.currentTime - this.nextStart / this.speed;
        return;
      }
    }
  }

  // Play [offset, offset + length) of a clip's audio from transport time `at`, with equal-power fades.
  // If the main thread was too busy and `at` has already passed, the part already due is skipped, so the
  // sound stays where the transport (and the timeline) says it is.
  play(clip, at, offset, length) {
    const { context, compressor } = this.audio;
    this.schedule.push({ clip, from: at, to: at + length - CROSSFADE_S });
    if (this.timeline && clip.image) this.timeline.addClip(clip.counter, clip.image, at, length - CROSSFADE_S);
    let when = this.transportStart + at / this.speed; // context seconds
    // 20 ms of margin: the audio clock moves on while this runs.
    const skip = Math.max(0, context.currentTime + 0.02 - when) * this.speed; // transport seconds
    if (skip >= length - 4 * CROSSFADE_S) return;
    when += skip / this.speed;
    const fade = CROSSFADE_S / this.speed;
    const span = (length - skip) / this.speed;
    const source = context.createBufferSource();
    source.buffer = clip.buffer;
    source.playbackRate.value = this.speed;
    const gain = context.createGain();
    source.connect(gain).connect(compressor);
    gain.gain.value = 0;
    try {
      gain.gain.setValueCurveAtTime(EQUAL_POWER_IN, when, fade);
      gain.gain.setValueCurveAtTime(EQUAL_POWER_OUT, when + span - fade, fade);
    } catch (error) {
      // Only when the page stalled past the start: drop this piece rather than click or stop the stream.
      console.warn("audio piece skipped:", error.message);
      source.disconnect();
      gain.disconnect();
      return;
    }
    source.start(when, offset + skip, length - skip);
    source.onended = () => { source.disconnect(); gain.disconnect(); };
  }

  // --- the clock ------------------------------------------------------------------------------------------

  tick() {
    if (this.audio && this.isPlaying) {
      if (this.transportStart === null) this.transportStart = this.audio.context.currentTime;
      this.scheduleAhead();
      const now = this.transportSeconds;
      const current = this.schedule.filter((entry) => entry.from <= now).pop();
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
      this.schedule = this.schedule.filter((entry) => entry.to > now - 1);
      if (this.state === "behind" && !this.late) this.state = this.inFlight ? "generating" : "buffered";
    }
    const idleMs = this.settings.idleMinutes * 60000;
    if (this.isPlaying && idleMs > 0 && performance.now() - this.lastPromptAt > idleMs) {
      this.pause();
      this.state = "paused-idle";
      ui.showIdle(true);
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
    const context = this.audioContext();
    await context.resume();
    this.isPlaying = true;
    this.lastPromptAt = performance.now();
    if (this.state === "paused-idle") this.state = "generating";
    ui.showIdle(false);
  }

  pause() {
    this.isPlaying = false;
    if (this.audio) this.audio.context.suspend();
  }

  // --- prompts ----------------------------------------------------------------------------------------------

  submitPrompt(text) {
    const prompt = text.trim().slice(0, MAX_PROMPT_CHARS);
    if (!prompt) return false;
    this.upNext = prompt; // a second prompt before the first is used replaces it
    this.lastPromptAt = performance.now();
    return true;
  }

  jumpTo(prompt) {
    this.upNext = null;
    this.pending = null;
    const seed = this.segment ? this.segment.end.seed : 0;
    this.startFrom(prompt, seed);
    this.lastPromptAt = performance.now();
  }

  get currentPrompt() {
    const clip = this.clips.find((c) => c.counter === this.playing);
    return clip ? clip.prompt : this.history[this.history.length - 1];
  }

  // Everything heard so far: the recording of the output, or (without MediaRecorder) the clips whose
  // PCM is still in memory as WAV.
  sessionAudio() {
    if (this.recorder && this.recording.length) {
      const type = this.recorder.mimeType.split(";")[0];
      return { blob: new Blob(this.recording, { type }), extension: type.endsWith("ogg") ? "ogg" : "webm" };
    }
    const buffers = this.clips.filter((c) => c.buffer && (c.state === "played" || c.state === "playing")).map((c) => c.buffer);
    const blob = encodeWav(buffers);
    return blob ? { blob, extension: "wav" } : null;
  }
}

// --- helpers ------------------------------------------------------------------------------------------------

async function fetchJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

function dataUrlBytes(url) {
  const binary = atob(url.slice(url.indexOf(",") + 1));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

// 16-bit PCM WAV of AudioBuffers played back to back (first channel only when channel counts differ).
function encodeWav(buffers) {
  if (!buffers.length) return null;
  const rate = buffers[0].sampleRate;
  const channels = Math.min(...buffers.map((b) => b.numberOfChannels));
  const frames = buffers.reduce((n, b) => n + b.length, 0);
  const view = new DataView(new ArrayBuffer(44 + frames * channels * 2));
  const text = (offset, s) => [...s].forEach((ch, i) => view.setUint8(offset + i, ch.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, 36 + frames * channels * 2, true); text(8, "WAVE"); text(12, "fmt ");
  view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, channels, true);
  view.setUint32(24, rate, true); view.setUint32(28, rate * channels * 2, true);
  view.setUint16(32, channels * 2, true); view.setUint16(34, 16, true); text(36, "data");
  view.setUint32(40, frames * channels * 2, true);
  let offset = 44;
  for (const buffer of buffers) {
    const data = [...Array(channels)].map((_, c) => buffer.getChannelData(c));
    for (let i = 0; i < buffer.length; i += 1) {
      for (let c = 0; c < channels; c += 1) {
        view.setInt16(offset, Math.max(-1, Math.min(1, data[c][i])) * 32767, true);
        offset += 2;
      }
    }
  }
  return new Blob([view], { type: "audio/wav" });
}

function slug(text) {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, "_").replace(/^_|_$/g, "").slice(0, 60) || "riffusion";
}

// --- the page ------------------------------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

const ui = {
  init(jam) {
    this.jam = jam;
    $("play").addEventListener("click", () => jam.togglePlay().then(() => this.frame()));
    $("prompt-form").addEventListener("submit", (event) => {
      event.preventDefault();
      if (jam.submitPrompt($("prompt-input").value)) $("prompt-input").value = "";
    });
    $("prompt-input").maxLength = MAX_PROMPT_CHARS;
    $("dice").addEventListener("click", () => {
      $("prompt-input").value = EXAMPLE_PROMPTS[Math.floor(Math.random() * EXAMPLE_PROMPTS.length)];
      $("prompt-input").focus();
    });
    $("prompts").addEventListener("click", (event) => {
      const line = event.target.closest("[data-prompt]");
      if (line) jam.jumpTo(line.dataset.prompt);
    });
    $("settings-button").addEventListener("click", () => this.toggle("settings"));
    $("share-button").addEventListener("click", () => { this.fillShare(); this.toggle("share"); });
    for (const close of document.querySelectorAll("[data-close]")) {
      close.addEventListener("click", () => this.toggle(close.dataset.close, false));
    }
    const seedSelect = $("seed-image");
    const seeds = jam.seedImages.filter((s) => s.kind === "seed");
    for (const seed of seeds.length ? seeds : [{ id: jam.settings.seedImageId }]) {
      const option = new Option(seed.tempo_bpm ? `${seed.id} (${Math.round(seed.tempo_bpm)} bpm)` : seed.id, seed.id);
      seedSelect.add(option);
    }
    seedSelect.value = jam.settings.seedImageId;
    seedSelect.addEventListener("change", () => { jam.settings.seedImageId = seedSelect.value; });
    const denoising = $("denoising");
    if (![...denoising.options].some((o) => +o.value === jam.settings.denoising)) {
      denoising.add(new Option(`Custom (${jam.settings.denoising})`, String(jam.settings.denoising)));
    }
    denoising.value = [...denoising.options].find((o) => +o.value === jam.settings.denoising).value;
    denoising.addEventListener("change", () => { jam.settings.denoising = +denoising.value; });
    $("volume").addEventListener("input", (event) => jam.setVolume(+event.target.value));
    $("idle-continue").addEventListener("click", () => jam.resume());
  },

  toggle(name, show) {
    const panel = $(name);
    panel.hidden = show === undefined ? !panel.hidden : !show;
  },

  showIdle(show) {
    $("idle").hidden = !show;
  },

  fillShare() {
    const jam = this.jam;
    const clip = jam.clips.find((c) => c.counter === jam.playing) || jam.clips.filter((c) => c.imageUrl).pop();
    const link = new URL("/", window.location.href);
    if (clip) {
      link.searchParams.set("prompt", clip.start.prompt);
      link.searchParams.set("seed", clip.start.seed);
      $("share-image").src = clip.imageUrl || "";
      if (clip.buffer) {
        const url = URL.createObjectURL(encodeWav([clip.buffer]));
        $("share-audio").src = url;
        $("share-clip").href = url;
      }
      $("share-clip").download = `${slug(clip.prompt)}.wav`;
    }
    link.searchParams.set("denoising", jam.settings.denoising);
    link.searchParams.set("seedImageId", jam.settings.seedImageId);
    $("share-link").value = link.toString();
    const session = jam.sessionAudio();
    if (session) {
      if (this.sessionUrl) URL.revokeObjectURL(this.sessionUrl);
      this.sessionUrl = URL.createObjectURL(session.blob);
      $("share-session").href = this.sessionUrl;
      $("share-session").download = `riffusion_session_${slug(jam.history[0] || "")}.${session.extension}`;
    }
  },

  frame() {
    const jam = this.jam;
    if (!jam) return;
    const play = $("play");
    play.title = jam.isPlaying ? "Pause" : "Play";
    play.setAttribute("aria-label", play.title);
    play.textContent = jam.isPlaying ? "❚❚" : "▶";
    // Prompt panel: two earlier prompts faded, the current one large, then UP NEXT.
    const playingClip = jam.clips.find((c) => c.counter === jam.playing);
    const current = jam.currentPrompt || "";
    const index = jam.history.lastIndexOf(current);
    const earlier = (index > 0 ? jam.history.slice(Math.max(0, index - 2), index) : []);
    let html = earlier.map((p) => `<div class="prev" data-prompt="${escapeHtml(p)}">${escapeHtml(p)}</div>`).join("");
    if (playingClip && playingClip.transition) {
      // During a transition the outgoing prompt shrinks and the incoming one grows with alpha.
      const a = playingClip.alpha;
      html += `<div class="current out" style="font-size:${(2.2 - 1.2 * a).toFixed(2)}rem" data-prompt="${escapeHtml(playingClip.start.prompt)}">${escapeHtml(playingClip.start.prompt)}</div>`;
      html += `<div class="current in" style="font-size:${(1.0 + 1.2 * a).toFixed(2)}rem" data-prompt="${escapeHtml(playingClip.end.prompt)}">${escapeHtml(playingClip.end.prompt)}</div>`;
    } else {
      html += `<div class="current" data-prompt="${escapeHtml(current)}">${escapeHtml(current)}</div>`;
    }
    if (html !== this.lastPrompts) { $("prompts").innerHTML = html; this.lastPrompts = html; }
    $("up-next").textContent = jam.upNext ? `UP NEXT: ${jam.upNext}` : "UP NEXT: type a prompt and press Enter";
    $("status").textContent = statusText(jam);
    $("status").dataset.state = jam.state;
    if (!$("settings").hidden) this.fillDebug();
  },

  fillDebug() {
    const jam = this.jam;
    const rows = jam.clips.slice(-40).map((c) => `<tr class="${c.counter === jam.playing ? "playing" : ""}">` +
      `<td>${c.counter}</td><td>${c.alpha.toFixed(2)}</td><td>${escapeHtml(c.start.prompt)} / ${c.start.seed}</td>` +
      `<td>${escapeHtml(c.end.prompt)} / ${c.end.seed}</td><td>${c.state}</td></tr>`).join("");
    if (rows !== this.lastDebug) { $("debug-rows").innerHTML = rows; this.lastDebug = rows; }
  },
};

function statusText(jam) {
  switch (jam.state) {
    case "retrying": {
      const seconds = Math.max(0, Math.ceil((jam.retryAt - performance.now()) / 1000));
      return `Server unreachable or busy, retrying in ${seconds} s${jam.late ? " (looping the current clip)" : ""}`;
    }
    case "behind": return "Behind: looping the current clip until the next one is ready";
    case "paused-idle": return "Paused while you were away";
    case "generating": return jam.clips.length ? "Generating ahead" : "Generating the first clip…";
    case "buffered": return `${jam.clipsAhead} clip${jam.clipsAhead === 1 ? "" : "s"} ready ahead`;
    default: return "Starting…";
  }
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[ch]));
}

const jam = new Jam();

// Read-only test hook: what a headless browser test checks instead of listening.
const view = (clip) => ({
  counter: clip.counter, alpha: clip.alpha, state: clip.state, transition: !!clip.transition,
  start: { ...clip.start }, end: { ...clip.end },
});
window.__riff = Object.freeze({
  get clips() { return jam.clips.map(view); },
  get playing() { return jam.playing; },
  get transportSeconds() { return jam.transportSeconds; },
  get state() { return jam.state; },
  get upNext() { return jam.upNext; },
  get requests() { return jam.requests.map((r) => ({ alpha: r.alpha, start: { ...r.start }, end: { ...r.end } })); },
  get settings() { return { ...jam.settings }; },
  get meshCount() { return jam.timeline ? jam.timeline.meshCount : 0; },
  get textureCount() { return jam.timeline ? jam.timeline.textureCount : 0; },
  get softwareRendering() { return jam.timeline ? jam.timeline.software : null; },
  get framesDrawn() { return jam.timeline ? jam.timeline.framesDrawn : 0; },
  get buffersHeld() { return jam.clips.filter((c) => c.buffer).length; },
  get isPlaying() { return jam.isPlaying; },
  get recordedChunks() { return jam.recording ? jam.recording.length : 0; },
});

jam.init();
