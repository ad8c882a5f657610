// The 3D spectrogram timeline: one height-mapped plane per scheduled clip, laid along the time axis,
// a camera that glides at the playback rate and a translucent red playhead.
// Units: x in "time units" (UNITS_PER_SECOND per second of audio), z across frequency (low at +z).

import * as THREE from "three";

const UNITS_PER_SECOND = 1.0; // world units per second of audio
const DEPTH = 4.0; // world units across the frequency axis
const HEIGHT = 0.9; // world units of relief for the loudest bin
const MAX_MESHES = 12; // bounded window: older planes are removed and their textures disposed
// Without a GPU (a software WebGL such as SwiftShader or llvmpipe) every vertex and pixel is drawn by the
// CPU that also decodes the audio and, on a laptop, runs the model: draw a coarser relief at half the
// pixel density, without multisampling, at most SOFTWARE_FPS frames per second, so that drawing never
// starves clip decoding and the jam does not fall behind.
const SOFTWARE_FPS = 10;
const SOFTWARE_PIXEL_RATIO = 0.5; // drawing-buffer pixels per CSS pixel; the browser scales it up
const SEGMENTS = { gpu: [256, 96], software: [48, 16] }; // relief vertices along time, frequency
const SOFTWARE_RENDERER = /swiftshader|llvmpipe|softpipe|software/i;

// The WebGL renderer's name, from a throwaway context (antialiasing must be chosen before the real one).
function rendererName() {
  try {
    const canvas = document.createElement("canvas");
    const gl = canvas.getContext("webgl2") || canvas.getContext("webgl");
    if (!gl) return "";
    const info = gl.getExtension("WEBGL_debug_renderer_info");
    const name = gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER) || "";
    const lose = gl.getExtension("WEBGL_lose_context");
    if (lose) lose.loseContext();
    return String(name);
  } catch (_) {
    return "";
  }
}

export class Timeline {
  constructor(canvas) {
    this.canvas = canvas;
    this.software = SOFTWARE_RENDERER.test(rendererName());
    this.minFrameMs = this.software ? 1000 / SOFTWARE_FPS : 0; // ms between drawn frames
    this.lastFrameAt = -Infinity; // performance.now() of the last drawn frame
    this.framesDrawn = 0;
    this.renderer = new THREE.WebGLRenderer({ canvas, antialias: !this.software });
    this.renderer.setPixelRatio(this.software ? SOFTWARE_PIXEL_RATIO : Math.min(window.devicePixelRatio || 1, 2));
    this.scene = new THREE.Scene();
    this.scene.background = new THREE.Color(0x07080c);
    this.scene.fog = new THREE.Fog(0x07080c, 6, 22); // older clips recede into the background
    this.camera = new THREE.PerspectiveCamera(50, 1, 0.1, 100);
    this.scene.add(new THREE.AmbientLight(0xffffff, 0.6));
    const light = new THREE.DirectionalLight(0xffffff, 1.6);
    light.position.set(2, 6, 4);
    this.scene.add(light);
    // One geometry for every clip: a unit plane, scaled per clip. Segments set the relief resolution.
    this.geometry = new THREE.PlaneGeometry(1, 1, ...SEGMENTS[this.software ? "software" : "gpu"]);
    this.geometry.rotateX(-Math.PI / 2); // lie on the ground; displacement then raises along +y
    const bar = new THREE.BoxGeometry(0.03, 1.4, DEPTH * 1.05);
    this.playhead = new THREE.Mesh(
      bar,
      new THREE.MeshBasicMaterial({ color: 0xff3344, transparent: true, opacity: 0.45 })
    );
    this.playhead.position.y = 0.5;
    this.scene.add(this.playhead);
    this.meshes = []; // {mesh, key}, oldest first
    this.materials = new Map(); // clip key -> {texture, material, users}
    this.seconds = 0;
    this._resize();
    window.addEventListener("resize", () => this._resize());
  }

  get meshCount() {
    return this.meshes.length;
  }

  _resize() {
    const width = this.canvas.clientWidth || window.innerWidth;
    const height = this.canvas.clientHeight || window.innerHeight;
    this.renderer.setSize(width, height, false);
    this.camera.aspect = width / Math.max(1, height);
    this.camera.updateProjectionMatrix();
  }

  // Add a clip's spectrogram (an <img>) spanning [startSeconds, startSeconds + durationSeconds). A clip
  // that plays again (a loop while the next one is late) reuses its texture and material.
  addClip(key, image, startSeconds, durationSeconds) {
    let entry = this.materials.get(key);
    if (!entry) {
      const texture = new THREE.CanvasTexture(invertedCanvas(image));
      texture.colorSpace = THREE.SRGBColorSpace;
      const material = new THREE.MeshStandardMaterial({
        map: texture,
        displacementMap: texture, // bright (loud, after inversion) = raised ridge
        displacementScale: HEIGHT,
        color: 0x5aa0ff, // blue tint
        emissive: 0x0b1a33,
        roughness: 0.7,
        metalness: 0.1,
      });
      entry = { texture, material, users: 0 };
      this.materials.set(key, entry);
    }
    entry.users += 1;
    const mesh = new THREE.Mesh(this.geometry, entry.material);
    mesh.scale.set(durationSeconds * UNITS_PER_SECOND, 1, DEPTH);
    mesh.position.set((startSeconds + durationSeconds / 2) * UNITS_PER_SECOND, 0, 0);
    this.scene.add(mesh);
    this.meshes.push({ mesh, key });
    while (this.meshes.length > MAX_MESHES) {
      const old = this.meshes.shift();
      this.scene.remove(old.mesh);
      const owner = this.materials.get(old.key);
      owner.users -= 1;
      if (owner.users === 0) {
        owner.texture.dispose();
        owner.material.dispose();
        this.materials.delete(old.key);
      }
    }
  }

  get textureCount() {
    return this.materials.size;
  }

  // Move the playhead and camera to the transport position (seconds) and draw a frame (unless one was
  // drawn less than minFrameMs ago).
  render(seconds) {
    const now = performance.now();
    if (now - this.lastFrameAt < this.minFrameMs) return;
    this.lastFrameAt = now;
    this.seconds = seconds;
    const x = seconds * UNITS_PER_SECOND;
    this.playhead.position.x = x;
    this.camera.position.set(x - 2.6, 3.2, 4.4);
    this.camera.lookAt(x + 1.8, 0, 0);
    this.renderer.render(this.scene, this.camera);
    this.framesDrawn += 1;
  }

  dispose() {
    for (const { mesh } of this.meshes) this.scene.remove(mesh);
    for (const { texture, material } of this.materials.values()) {
      texture.dispose();
      material.dispose();
    }
    this.meshes = [];
    this.materials.clear();
    this.geometry.dispose();
    this.renderer.dispose();
  }
}

// Riffusion images draw loud as black; the timeline wants loud as bright (and raised).
function invertedCanvas(image) {
  const canvas = document.createElement("canvas");
  canvas.width = image.naturalWidth || image.width;
  canvas.height = image.naturalHeight || image.height;
  const context = canvas.getContext("2d");
  context.filter = "invert(1)";
  context.drawImage(image, 0, 0);
  return canvas;
}
