// Gapless playback on the Web Audio clock: clips are scheduled back to back with equal-power crossfades,
// a late clip is covered by looping the current one bar by bar, and the output is recorded for the
// session download. Times are in seconds; "transport" time is seconds of music played since the start.

export const CROSSFADE_S = 0.03; // equal-power crossfade at each seam
const LOOKAHEAD_S = 0.6; // schedule audio this far ahead of the clock
// Equal-power fade curves (gain^2 of in + out stays 1 across a seam).
const EQUAL_POWER_IN = new Float32Array(32).map((_, i) => Math.sin((i / 31) * (Math.PI / 2)));
const EQUAL_POWER_OUT = EQUAL_POWER_IN.slice().reverse();

export class Player {
  // `speed` plays clips this many times faster (tests only). `onPiece(clip, at, length)` is told of every
  // piece scheduled, in transport seconds, so a view can follow the same schedule.
  constructor({ speed = 1, onPiece = () => {} } = {}) {
    this.speed = speed;
    this.onPiece = onPiece;
    this.audio = null; // {context, output, compressor}, made on first use
    this.volume = 0.8;
    this.transportStart = null; // context time at transport 0
    this.nextStart = 0; // transport time where the next clip (or loop bar) starts
    this.lastScheduled = null; // the clip scheduled last
    this.schedule = []; // {clip, from, to} in transport seconds, what is heard when
    this.late = false; // whether the last piece scheduled was a loop bar
    this.recorder = null;
    this.recording = [];
  }

  // The audio context (suspended until resume()), with the output chain: compressor -> volume.
  get context() {
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

  // The recording so far as {blob, extension}, or null where the browser records nothing.
  recordedAudio() {
    if (!this.recorder || !this.recording.length) return null;
    const type = this.recorder.mimeType.split(";")[0];
    return { blob: new Blob(this.recording, { type }), extension: type.endsWith("ogg") ? "ogg" : "webm" };
  }

  setVolume(value) {
    this.volume = value;
    if (this.audio) this.audio.output.gain.value = value;
  }

  async resume() {
    await this.context.resume();
  }

  suspend() {
    if (this.audio) this.audio.context.suspend();
  }

  get transportSeconds() {
    if (!this.audio || this.transportStart === null) return 0;
    return Math.max(0, (this.audio.context.currentTime - this.transportStart) * this.speed);
  }

  // Schedule what plays in the next LOOKAHEAD_S: the clip `takeNext()` returns (marked "scheduled"), or
  // when it returns none, one more bar of the current clip, so the next one starts on a bar boundary.
  // Returns whether a loop bar was scheduled.
  scheduleAhead(takeNext) {
    const context = this.context;
    if (this.transportStart === null) this.transportStart = context.currentTime;
    let looped = false;
    while ((this.nextStart - this.transportSeconds) / this.speed < LOOKAHEAD_S) {
      const next = takeNext();
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
        looped = true;
      } else {
        // Nothing heard yet: the transport waits for the first clip.
        this.transportStart = context.currentTime - this.nextStart / this.speed;
        break;
      }
    }
    return looped;
  }

  // The schedule entry heard at the transport now (or null), forgetting entries more than 1 s past.
  current() {
    const now = this.transportSeconds;
    const entry = this.schedule.filter((e) => e.from <= now).pop() || null;
    this.schedule = this.schedule.filter((e) => e.to > now - 1);
    return entry;
  }

  // Play [offset, offset + length) of a clip's audio from transport time `at`, with equal-power fades.
  // If the main thread was too busy and `at` has already passed, the part already due is skipped, so the
  // sound stays where the transport (and the timeline) says it is.
  play(clip, at, offset, length) {
    const { context, compressor } = this.audio;
    this.schedule.push({ clip, from: at, to: at + length - CROSSFADE_S });
    this.onPiece(clip, at, length - CROSSFADE_S);
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
}
