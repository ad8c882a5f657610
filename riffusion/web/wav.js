// 16-bit PCM WAV encoding of decoded audio, for downloads of a clip or of the session (where the browser
// cannot record the output).

// A WAV Blob of AudioBuffers played back to back, or null for none. All buffers share the first one's
// sample rate; where channel counts differ, only the channels every buffer has are kept.
export function encodeWav(buffers) {
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
