// The browsing page: an item's versions side by side, gapless switching, loop a region,
// a spectrogram per version with the detected cutoff, and the report's metrics.
import { el, formatNumber, formatTime, getJSON, showError } from "/static/common.js";
import { Player } from "/static/player.js";
import { drawOverlay, drawSpectrogram, regionSelector } from "/static/spectrogram.js";

const player = new Player();
window.upbandPlayer = player;  // for the browser tests and the curious
const page = { item: null, overlays: [], buttons: [], views: [], loaded: false };

function matchGains(versions) {
  const loud = versions.map((v) => (typeof v.loudness_lufs === "number" ? v.loudness_lufs : null));
  const finite = loud.filter((v) => v !== null);
  const floor = finite.length ? Math.min(...finite) : 0;
  return loud.map((v) => (v === null ? 0 : floor - v));
}

function metricsTable(versions) {
  const names = [...new Set(versions.flatMap((v) => Object.keys(v.metrics)))];
  if (!names.length) return el("p", { class: "hint" }, "No metrics for this item.");
  return el("table", { class: "metrics" },
    el("thead", {}, el("tr", {}, el("th", {}, "metric"),
      versions.map((v) => el("th", {}, v.name)))),
    el("tbody", {}, names.map((m) => el("tr", {}, el("th", {}, m),
      versions.map((v) => el("td", {}, m in v.metrics ? formatNumber(v.metrics[m]) : ""))))));
}

function transport(item) {
  const play = el("button", { id: "play", class: "primary", onclick: () => player.toggle() },
    "Play");
  const match = el("input", { type: "checkbox", id: "match" });
  match.addEventListener("change", () => player.setMatch(matchGains(item.versions),
    match.checked));
  const clear = el("button", { id: "clear-loop", onclick: () => player.setLoop(0, 0) },
    "Clear loop");
  const time = el("span", { id: "time", class: "time" }, "");
  player.onchange(() => {
    play.textContent = player.playing ? "Stop" : "Play";
    match.checked = player.matched;
  });
  return el("div", { class: "transport" }, play,
    el("label", { class: "check" }, match, " loudness-matched (BS.1770)"), clear, time);
}

function versionButtons(item) {
  page.buttons = item.versions.map((v, i) => el("button", {
    class: "version", dataset: { index: i }, title: v.role,
    onclick: () => player.select(i),
  }, el("span", { class: "key" }, i < 9 ? String(i + 1) : ""), " ", v.name));
  return el("div", { class: "versions", id: "versions" }, page.buttons);
}

function spectrogramViews(item) {
  page.overlays = [];
  page.views = item.versions.map((v, i) => {
    const base = el("canvas", { width: 600, height: 220, class: "spec" });
    const overlay = el("canvas", { width: 600, height: 220, class: "overlay" });
    page.overlays.push(overlay);
    regionSelector(overlay, () => player.duration, (a, b) => player.setLoop(a, b),
      (t) => (player.playing ? player.play(t) : (player.offset = t)));
    const cutoff = typeof v.cutoff_hz === "number" ? v.cutoff_hz : NaN;
    getJSON(`/api/spectrogram/${item.index}/${i}`)
      .then((spec) => { drawSpectrogram(base, spec, cutoff); base.dataset.drawn = "1"; })
      .catch((err) => console.warn(err));
    const loud = typeof v.loudness_lufs === "number" ? `${v.loudness_lufs.toFixed(1)} LUFS` : "";
    const cut = Number.isFinite(cutoff) ? `cutoff ${(cutoff / 1000).toFixed(1)} kHz` : "";
    return el("figure", { class: "view", dataset: { index: i } },
    el("figcaption", { onclick: () => player.select(i), title: "play this version" },
      el("b", {}, v.name), ` ${v.role} · ${cut} · ${loud}`),
    el("div", { class: "stack" }, base, overlay));
  });
  return el("div", { class: "views" }, page.views);
}

function refresh() {
  const st = player.state();
  page.buttons.forEach((b, i) => b.classList.toggle("active", i === st.active));
  page.views.forEach((v, i) => v.classList.toggle("active", i === st.active));
  for (const o of page.overlays) drawOverlay(o, st);
  const time = document.getElementById("time");
  if (time) time.textContent = `${formatTime(st.position)} / ${formatTime(st.duration)}`
    + (st.loop ? ` · loop ${formatTime(st.loop[0])}–${formatTime(st.loop[1])}` : "");
  requestAnimationFrame(refresh);
}

async function openItem(index) {
  const main = document.getElementById("item");
  player.stop();
  page.loaded = false;
  document.querySelectorAll("#items button").forEach((b) =>
    b.classList.toggle("active", Number(b.dataset.index) === index));
  main.replaceChildren(el("p", { class: "hint" }, "Loading…"));
  try {
    const item = await getJSON(`/api/item/${index}`);
    page.item = item;
    main.replaceChildren(
      el("h2", {}, item.title, item.condition ? el("small", {}, ` · ${item.condition}`) : ""),
      transport(item), versionButtons(item), metricsTable(item.versions), spectrogramViews(item),
      el("p", { id: "status", class: "hint" }, "Loading audio…"));
    await player.load(item.versions.map((v, i) => `/api/audio/${index}/${i}`));
    player.setMatch(matchGains(item.versions), false);
    page.loaded = true;
    document.getElementById("status").textContent = "Ready.";
    document.body.dataset.ready = "1";
  } catch (err) {
    showError(main, err);
  }
}

function keys(ev) {
  if (ev.target instanceof HTMLInputElement && ev.target.type !== "checkbox") return;
  if (ev.key === " ") { ev.preventDefault(); player.toggle(); }
  else if (/^[1-9]$/.test(ev.key)) player.select(Number(ev.key) - 1);
  else if (ev.key === "m" && page.item) player.setMatch(matchGains(page.item.versions), !player.matched);
  else if (ev.key === "Escape") player.setLoop(0, 0);
}

async function main() {
  try {
    const cat = await getJSON("/api/catalog");
    document.getElementById("title").textContent = cat.title;
    document.title = `${cat.title} – upband listen`;
    document.getElementById("tests").replaceChildren(...cat.tests.map((t) =>
      el("a", { href: `/test/${encodeURIComponent(t.name)}` },
        `${t.design.toUpperCase()}${t.name === t.design ? "" : ` ${t.name}`}: ${t.trials} trials`)));
    document.getElementById("items").replaceChildren(...cat.items.map((it) =>
      el("button", { dataset: { index: it.index }, onclick: () => openItem(it.index) },
        it.title, it.condition ? el("small", {}, it.condition) : "")));
    document.addEventListener("keydown", keys);
    requestAnimationFrame(refresh);
    if (cat.items.length) await openItem(0);
  } catch (err) {
    showError(document.getElementById("item"), err);
  }
}

main();
