// The page around the jam: play button, prompt panel, settings (with the list of clips), share panel,
// status line and the idle dialog. It reads the jam's state each animation frame and calls its methods.

import { MAX_MIX_PROMPTS, MAX_PROMPT_CHARS, examplePrompt } from "./sequence.js";
import { encodeWav } from "./wav.js";
import { uploadLoop } from "./api.js";
import { encodeSession, setMixParams } from "./session.js";

const $ = (id) => document.getElementById(id);

export class UI {
  constructor(jam) {
    this.jam = jam;
    this.lastPrompts = null; // the prompt panel's last HTML, so it is only rewritten when it changes
    this.lastDebug = null;
    this.sessionUrl = null;
    this.sessionJsonUrl = null;
    this.shareVersion = 0; // the last fillShare call: a slower encoding of an older session is dropped
  }

  // Wire the controls and fill the settings from the jam's (loaded) settings and seed images.
  init() {
    const jam = this.jam;
    $("play").addEventListener("click", () => jam.togglePlay().then(() => this.frame()));
    $("prompt-form").addEventListener("submit", (event) => {
      event.preventDefault();
      if (jam.submitPrompt($("prompt-input").value)) $("prompt-input").value = "";
    });
    $("prompt-input").maxLength = MAX_PROMPT_CHARS;
    $("dice").addEventListener("click", () => {
      $("prompt-input").value = examplePrompt();
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
    $("loop-upload").addEventListener("change", (event) => this.uploadLoop(event.target));
    const denoising = $("denoising");
    if (jam.settings.rhythmInput) {
      // A rhythm model keeps the loop's beat by itself: denoising only says how much of its sound stays.
      $("rhythm-settings").hidden = false;
      $("denoising-label").textContent = "Loop's sound kept";
      const kept = [["1", "None, only its beat"], ["0.9", "A trace"], ["0.8", "Some"], ["0.7", "Much"]];
      denoising.replaceChildren(...kept.map(([value, text]) => new Option(text, value)));
      const tempo = $("tempo");
      const metre = $("metre");
      if (jam.settings.bpm && ![...tempo.options].some((o) => +o.value === jam.settings.bpm)) {
        tempo.add(new Option(`${jam.settings.bpm} bpm`, String(jam.settings.bpm)));
      }
      tempo.value = jam.settings.bpm ? String(jam.settings.bpm) : "";
      metre.value = String(jam.settings.beatsPerBar);
      metre.disabled = !jam.settings.bpm;
      tempo.addEventListener("change", () => {
        jam.settings.bpm = tempo.value ? +tempo.value : null;
        metre.disabled = !jam.settings.bpm;
      });
      metre.addEventListener("change", () => { jam.settings.beatsPerBar = +metre.value; });
    }
    if (![...denoising.options].some((o) => +o.value === jam.settings.denoising)) {
      denoising.add(new Option(`Custom (${jam.settings.denoising})`, String(jam.settings.denoising)));
    }
    denoising.value = [...denoising.options].find((o) => +o.value === jam.settings.denoising).value;
    denoising.addEventListener("change", () => { jam.settings.denoising = +denoising.value; });
    $("volume").addEventListener("input", (event) => jam.player.setVolume(+event.target.value));
    this.initMix();
    $("idle-continue").addEventListener("click", () => jam.resume());
  }

  // The mixer: the playing prompt's weight, then a row (prompt and weight) for each other prompt; any
  // change is the jam's mix from the next clip.
  initMix() {
    const settings = this.jam.settings;
    const rows = [];
    for (let i = 1; i < MAX_MIX_PROMPTS; i++) {
      const row = document.createElement("label");
      row.innerHTML = `<input id="mix-prompt-${i}" type="text" placeholder="Another prompt to mix in" ` +
        `aria-label="Mixed prompt ${i}"> <input id="mix-weight-${i}" type="range" min="0" max="1" step="0.05" ` +
        `value="0.5" aria-label="Weight of mixed prompt ${i}">`;
      $("mix").append(row);
      rows.push(row);
    }
    // Start from the jam's mixer (a shared link's, or the URL's).
    $("mix-weight-0").value = settings.mixWeight;
    settings.mix.slice(0, rows.length).forEach((m, i) => {
      $(`mix-prompt-${i + 1}`).value = m.prompt;
      $(`mix-weight-${i + 1}`).value = m.weight;
    });
    const apply = () => {
      settings.mixWeight = +$("mix-weight-0").value;
      settings.mix = rows.map((_, i) => ({ prompt: $(`mix-prompt-${i + 1}`).value, weight: +$(`mix-weight-${i + 1}`).value }));
    };
    for (const input of $("mix").querySelectorAll("input")) {
      if (input.type === "text") input.maxLength = MAX_PROMPT_CHARS;
      input.addEventListener(input.type === "text" ? "change" : "input", apply);
    }
  }

  // Post the chosen audio file; the loop it becomes joins the seed loop list, selected (next clip on).
  async uploadLoop(input) {
    const file = input.files[0];
    if (!file) return;
    const status = $("loop-upload-status");
    status.textContent = `Measuring ${file.name}…`;
    try {
      const loop = await uploadLoop(file);
      this.jam.seedImages.push(loop);
      const label = `${file.name.replace(/\.[^.]*$/, "")} (${Math.round(loop.tempo_bpm)} bpm)`;
      $("seed-image").add(new Option(label, loop.id));
      $("seed-image").value = loop.id;
      this.jam.settings.seedImageId = loop.id;
      status.textContent = `${loop.bars} bars of ${loop.beats_per_bar} at ${Math.round(loop.source_bpm)} bpm: ` +
        "playing from the next clip (kept for an hour)";
    } catch (error) {
      status.textContent = `Not usable: ${error.message}`;
    }
    input.value = "";
  }

  toggle(name, show) {
    const panel = $(name);
    panel.hidden = show === undefined ? !panel.hidden : !show;
  }

  showIdle(show) {
    $("idle").hidden = !show;
  }

  // The share panel: the playing clip's spectrogram, audio and a link to it, and the session so far.
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
    if (jam.settings.bpm) {
      link.searchParams.set("bpm", jam.settings.bpm);
      link.searchParams.set("beatsPerBar", jam.settings.beatsPerBar);
    }
    setMixParams(link.searchParams, jam.settings);
    $("share-link").value = link.toString();
    // The session so far: a JSON download, and in the link's fragment (compressed, filled in when ready).
    const record = jam.session();
    const stem = `riffusion_session_${slug(jam.history[0] || "")}`;
    if (this.sessionJsonUrl) URL.revokeObjectURL(this.sessionJsonUrl);
    this.sessionJsonUrl = URL.createObjectURL(new Blob([JSON.stringify(record, null, 1)], { type: "application/json" }));
    $("share-session-json").href = this.sessionJsonUrl;
    $("share-session-json").download = `${stem}.json`;
    const version = ++this.shareVersion;
    if (record.clips.length) {
      encodeSession(record).then((text) => {
        if (version === this.shareVersion) $("share-link").value = `${link}#session=${text}`;
      }).catch((error) => console.warn("no session in the link:", error.message));
    }
    const session = jam.sessionAudio();
    if (session) {
      if (this.sessionUrl) URL.revokeObjectURL(this.sessionUrl);
      this.sessionUrl = URL.createObjectURL(session.blob);
      $("share-session").href = this.sessionUrl;
      $("share-session").download = `${stem}.${session.extension}`;
    }
  }

  // Bring the page up to date with the jam (every animation frame).
  frame() {
    const jam = this.jam;
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
    const upcoming = jam.upcomingPrompts;
    $("up-next").textContent = upcoming.length
      ? `UP NEXT: ${upcoming.join(", then ")}` : "UP NEXT: type a prompt and press Enter";
    const replay = jam.replayLeft ? `Replaying the shared session (${jam.replayLeft} clips to ask for) · ` : "";
    $("status").textContent = replay + statusText(jam);
    $("status").dataset.state = jam.state;
    if (!$("settings").hidden) this.fillDebug();
  }

  // The settings' list of clips: the last 40, the one playing highlighted.
  fillDebug() {
    const jam = this.jam;
    const rows = jam.clips.slice(-40).map((c) => `<tr class="${c.counter === jam.playing ? "playing" : ""}">` +
      `<td>${c.counter}</td><td>${c.alpha.toFixed(2)}</td><td>${escapeHtml(c.start.prompt)} / ${c.start.seed}</td>` +
      `<td>${escapeHtml(c.end.prompt)} / ${c.end.seed}</td><td>${c.state}</td></tr>`).join("");
    if (rows !== this.lastDebug) { $("debug-rows").innerHTML = rows; this.lastDebug = rows; }
  }
}

function statusText(jam) {
  const { keepsUp, secondsPerClip } = jam.settings;
  if (keepsUp === false && (jam.state === "behind" || jam.state === "generating")) {
    const perClip = secondsPerClip ? ` (about ${Math.round(secondsPerClip)} s per clip)` : "";
    return `Behind: the server cannot keep up with playback${perClip}; ` +
      (jam.clips.length ? "looping the current clip until the next one is ready" : "generating the first clip…");
  }
  switch (jam.state) {
    case "retrying": {
      const seconds = Math.max(0, Math.ceil((jam.backoff.retryAt - performance.now()) / 1000));
      return `Server unreachable or busy, retrying in ${seconds} s${jam.late ? " (looping the current clip)" : ""}`;
    }
    case "behind": return "Behind: looping the current clip until the next one is ready";
    case "paused-idle": return "Paused while you were away";
    case "generating": return jam.clips.length ? "Generating ahead" : "Generating the first clip…";
    case "buffered": return `${jam.clipsAhead} clip${jam.clipsAhead === 1 ? "" : "s"} ready ahead`;
    default: return "Starting…";
  }
}

// A file-name stem from a prompt: lower-case letters, digits and underscores, at most 60 characters.
function slug(text) {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, "_").replace(/^_|_$/g, "").slice(0, 60) || "riffusion";
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[ch]));
}
