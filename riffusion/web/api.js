// The server's HTTP API as the jam uses it: JSON look-ups, clip generation, and the back-off between
// failed tries that lets the jam resume by itself when the server is back.

// GET a JSON document; an HTTP error becomes an Error naming the URL and status.
export async function fetchJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

// POST one clip request to /api/v1/generate and return the response's JSON ({image, audio, ...} as data
// URLs). A refusal throws an Error whose message is the server's detail (at most 200 characters) and
// whose `retryAfter` is the server's Retry-After in seconds (0 when absent).
export async function generateClip(body) {
  const response = await fetch("/api/v1/generate", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  if (!response.ok) {
    const retryAfter = +(response.headers.get("Retry-After") || 0);
    let detail = `HTTP ${response.status}`;
    try { detail = JSON.stringify((await response.json()).detail).slice(0, 200); } catch (_) { /* not JSON */ }
    throw Object.assign(new Error(detail), { retryAfter });
  }
  return response.json();
}

// POST an audio file to /api/v1/seed_images (the file is the body) and return the new seed loop's entry
// ({id, tempo_bpm, bars, beats_per_bar, ...}); only this page knows its id. A refusal throws an Error
// whose message is the server's detail.
export async function uploadLoop(file) {
  const response = await fetch("/api/v1/seed_images", {
    method: "POST", headers: { "Content-Type": file.type || "application/octet-stream" }, body: file,
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = Array.isArray(data.detail) ? data.detail.map((d) => d.msg).join("; ") : data.detail;
    throw new Error(detail || `HTTP ${response.status}`);
  }
  return data;
}

// The bytes of a base64 data URL.
export function dataUrlBytes(url) {
  const binary = atob(url.slice(url.indexOf(",") + 1));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

// Exponential back-off after consecutive failures: 0.5 s, 1 s, 2 s ... at most 8 s, or longer where the
// server asked for it with Retry-After. Times are performance.now() milliseconds.
export class Backoff {
  constructor({ firstSeconds = 0.5, maxSeconds = 8 } = {}) {
    this.firstSeconds = firstSeconds;
    this.maxSeconds = maxSeconds;
    this.failures = 0;
    this.retryAt = 0; // no new try before this time
  }

  get waiting() {
    return performance.now() < this.retryAt;
  }

  // Count a failure (an Error, possibly with `retryAfter` seconds) and return the wait in seconds.
  fail(error) {
    this.failures += 1;
    const wait = Math.max(error.retryAfter || 0,
      Math.min(this.maxSeconds, this.firstSeconds * 2 ** (this.failures - 1)));
    this.retryAt = performance.now() + wait * 1000;
    return wait;
  }

  succeed() {
    this.failures = 0;
  }
}
