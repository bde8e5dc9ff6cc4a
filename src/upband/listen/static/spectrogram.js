// Draws the server's spectrograms (upband/listen/spectrogram.py) on a canvas, with the
// detected cutoff as a dashed line, and an overlay canvas for the playhead and loop region.

// a perceptual dark-to-bright colour map (control points of matplotlib's "magma")
const STOPS = [
  [0.0, [0, 0, 4]], [0.13, [28, 16, 68]], [0.25, [79, 18, 123]], [0.38, [129, 37, 129]],
  [0.5, [181, 54, 122]], [0.63, [229, 80, 100]], [0.75, [251, 135, 97]],
  [0.88, [254, 194, 135]], [1.0, [252, 253, 191]],
];

const LUT = (() => {
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const x = i / 255;
    let k = 0;
    while (k < STOPS.length - 2 && x > STOPS[k + 1][0]) k++;
    const [x0, c0] = STOPS[k];
    const [x1, c1] = STOPS[k + 1];
    const f = (x - x0) / (x1 - x0);
    for (let j = 0; j < 3; j++) lut[3 * i + j] = c0[j] + f * (c1[j] - c0[j]);
  }
  return lut;
})();

function decode(b64) {
  const raw = atob(b64);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

export function drawSpectrogram(canvas, spec, cutoffHz) {
  const { frames, rows } = spec;
  const data = decode(spec.data);
  const image = new ImageData(frames, rows);
  for (let r = 0; r < rows; r++) {
    const y = rows - 1 - r;  // lowest band at the bottom
    for (let f = 0; f < frames; f++) {
      const v = data[r * frames + f];
      const o = 4 * (y * frames + f);
      image.data[o] = LUT[3 * v];
      image.data[o + 1] = LUT[3 * v + 1];
      image.data[o + 2] = LUT[3 * v + 2];
      image.data[o + 3] = 255;
    }
  }
  const off = document.createElement("canvas");
  off.width = frames;
  off.height = rows;
  off.getContext("2d").putImageData(image, 0, 0);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
  const nyquist = spec.sample_rate / 2;
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "rgba(255,255,255,0.75)";
  for (let k = 5000; k < nyquist; k += 5000) {
    const y = canvas.height * (1 - k / nyquist);
    ctx.fillRect(0, y, 6, 1);
    ctx.fillText(`${k / 1000} k`, 8, y + 4);
  }
  if (Number.isFinite(cutoffHz) && cutoffHz < nyquist * 0.999) {
    const y = Math.round(canvas.height * (1 - cutoffHz / nyquist)) + 0.5;
    ctx.strokeStyle = "#7fffd4";
    ctx.setLineDash([6, 4]);
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.moveTo(0, y);
    ctx.lineTo(canvas.width, y);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = "#7fffd4";
    const label = `cutoff ${(cutoffHz / 1000).toFixed(1)} kHz`;
    ctx.fillText(label, canvas.width - ctx.measureText(label).width - 6, y - 4);
  }
}

// playhead and loop region on a transparent canvas laid over one or more views
export function drawOverlay(canvas, state) {
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!state.duration) return;
  const x = (t) => (t / state.duration) * canvas.width;
  if (state.loop) {
    ctx.fillStyle = "rgba(255,255,255,0.18)";
    ctx.fillRect(x(state.loop[0]), 0, x(state.loop[1]) - x(state.loop[0]), canvas.height);
    ctx.fillStyle = "rgba(255,255,255,0.8)";
    ctx.fillRect(x(state.loop[0]), 0, 1, canvas.height);
    ctx.fillRect(x(state.loop[1]) - 1, 0, 1, canvas.height);
  }
  ctx.fillStyle = "#ffeb3b";
  ctx.fillRect(Math.round(x(state.position)), 0, 2, canvas.height);
}

// drag on `target` to select a loop region (seconds); a click without a drag seeks
export function regionSelector(target, duration, onRegion, onSeek) {
  let start = null;
  const at = (ev) => {
    const r = target.getBoundingClientRect();
    return Math.max(0, Math.min(1, (ev.clientX - r.left) / r.width)) * duration();
  };
  target.addEventListener("pointerdown", (ev) => {
    start = at(ev);
    target.setPointerCapture(ev.pointerId);
  });
  target.addEventListener("pointerup", (ev) => {
    if (start === null) return;
    const end = at(ev);
    if (Math.abs(end - start) < 0.05) onSeek(end);
    else onRegion(start, end);
    start = null;
  });
}
