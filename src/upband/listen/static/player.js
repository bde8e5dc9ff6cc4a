// The player: every version of an item plays at once, from the same start, each through its
// own gain; choosing a version ramps the gains over 5 ms, so switching never moves the
// position and never leaves a gap. Playback always loops, over the whole (shortest) version
// or over the selected region (native AudioBufferSourceNode looping: sample-accurate and the
// same for every version). Loudness matching multiplies each version by its gain in dB
// (from the server's BS.1770-4 measurements; all gains are <= 0 dB, so it never clips).

const RAMP_S = 0.005;
const LEAD_S = 0.03;

export class Player {
  constructor() {
    this.ctx = null;
    this.buffers = [];
    this.sources = [];
    this.gains = [];
    this.matchDb = [];
    this.matched = false;
    this.active = 0;
    this.playing = false;
    this.startCtx = 0;
    this.offset = 0;
    this.loop = null;
    this.duration = 0;
    this.heard = new Set();
    this.listeners = [];
  }

  context() {
    if (!this.ctx) this.ctx = new AudioContext();
    return this.ctx;
  }

  onchange(f) { this.listeners.push(f); }

  changed() { for (const f of this.listeners) f(this); }

  async load(urls) {
    const ctx = this.context();
    this.stop();
    const buffers = await Promise.all(urls.map(async (url) => {
      const r = await fetch(url, { credentials: "same-origin" });
      if (!r.ok) throw new Error(`cannot load audio (HTTP ${r.status})`);
      return ctx.decodeAudioData(await r.arrayBuffer());
    }));
    this.buffers = buffers;
    this.duration = Math.min(...buffers.map((b) => b.duration));
    this.loop = null;
    this.offset = 0;
    this.active = Math.min(this.active, buffers.length - 1);
    this.heard = new Set();
    this.matchDb = buffers.map(() => 0);
    this.changed();
  }

  setMatch(gainsDb, on) {
    this.matchDb = gainsDb.map((g) => (Number.isFinite(g) ? g : 0));
    this.matched = on;
    this.applyGains();
    this.changed();
  }

  gainOf(i) {
    if (i !== this.active) return 0;
    return this.matched ? 10 ** ((this.matchDb[i] || 0) / 20) : 1;
  }

  applyGains() {
    if (!this.ctx || !this.playing) return;
    const t = this.ctx.currentTime;
    this.gains.forEach((g, i) => {
      g.gain.cancelScheduledValues(t);
      g.gain.setValueAtTime(g.gain.value, t);
      g.gain.linearRampToValueAtTime(this.gainOf(i), t + RAMP_S);
    });
  }

  region() { return this.loop || [0, this.duration]; }

  position() {
    if (!this.playing || !this.ctx) return this.offset;
    const [a, b] = this.region();
    let p = this.offset + Math.max(0, this.ctx.currentTime - this.startCtx);
    if (p >= b) p = a + ((p - a) % (b - a));
    return p;
  }

  stopSources() {
    for (const s of this.sources) {
      try { s.stop(); } catch (e) { /* never started */ }
      s.disconnect();
    }
    this.sources = [];
    this.gains = [];
  }

  async play(from) {
    if (!this.buffers.length) return;
    const ctx = this.context();
    if (ctx.state === "suspended") await ctx.resume();
    this.stopSources();
    const [a, b] = this.region();
    let offset = from === undefined ? this.offset : from;
    if (!(offset >= a && offset < b)) offset = a;
    const when = ctx.currentTime + LEAD_S;
    this.playing = true;
    this.buffers.forEach((buffer, i) => {
      const src = ctx.createBufferSource();
      src.buffer = buffer;
      src.loop = true;
      src.loopStart = a;
      src.loopEnd = b;
      const g = ctx.createGain();
      g.gain.value = this.gainOf(i);
      src.connect(g).connect(ctx.destination);
      src.start(when, offset);
      this.sources.push(src);
      this.gains.push(g);
    });
    this.startCtx = when;
    this.offset = offset;
    this.heard.add(this.active);
    this.changed();
  }

  stop() {
    if (this.playing) this.offset = this.position();
    this.stopSources();
    this.playing = false;
    this.changed();
  }

  toggle() { return this.playing ? this.stop() : this.play(); }

  select(i) {
    if (i < 0 || i >= this.buffers.length) return;
    this.active = i;
    if (this.playing) {
      this.heard.add(i);
      this.applyGains();
    }
    this.changed();
  }

  setLoop(a, b) {
    const pos = this.position();
    const lo = Math.max(0, Math.min(a, b));
    const hi = Math.min(this.duration, Math.max(a, b));
    this.loop = hi - lo >= 0.05 ? [lo, hi] : null;
    const [ra, rb] = this.region();
    if (this.playing) this.play(pos >= ra && pos < rb ? pos : ra);
    else this.offset = ra;
    this.changed();
  }

  // what the browser tests read
  state() {
    return {
      playing: this.playing,
      active: this.active,
      position: this.position(),
      duration: this.duration,
      loop: this.loop,
      gains: this.gains.map((g) => g.gain.value),
      sources: this.sources.length,
      context: this.ctx ? this.ctx.state : "none",
      time: this.ctx ? this.ctx.currentTime : 0,
      heard: [...this.heard],
      matched: this.matched,
    };
  }
}
