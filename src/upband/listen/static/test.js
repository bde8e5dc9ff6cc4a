// A test's page: a participant token (kept in this browser, shown to the participant so that
// they can resume elsewhere), then one trial after another until the session is done. The
// server decides what each trial presents; the page only knows slot letters.
import { el, formatTime, getJSON, postJSON, showError } from "/static/common.js";
import { Player } from "/static/player.js";
import { drawOverlay, regionSelector } from "/static/spectrogram.js";

const name = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
const storageKey = `upband-listen:${name}`;
const api = `/api/test/${encodeURIComponent(name)}`;
const player = new Player();
window.upbandPlayer = player;
const ui = { token: null, session: null, slots: [], buttons: [], answer: {}, opened: 0,
  bar: null, submit: null };
const root = () => document.getElementById("trial");

function startPanel(message) {
  const token = el("input", { id: "token", placeholder: "your token", autocomplete: "off" });
  root().replaceChildren(el("section", { class: "start" },
    el("p", {}, "Use headphones in a quiet room. Each trial can be played as often as you ",
      "like; switch between the versions while they play."),
    message ? el("p", { class: "error" }, message) : "",
    el("button", { id: "start", class: "primary", onclick: () => begin(null) }, "Start"),
    el("p", {}, "Or resume with the token you were given: ", token,
      el("button", { id: "resume", onclick: () => begin(token.value.trim()) }, "Resume"))));
}

async function begin(token) {
  try {
    const res = token ? { token } : await postJSON(`${api}/start`, {});
    ui.token = res.token;
    localStorage.setItem(storageKey, res.token);
    await next();
  } catch (err) { showError(root(), err); }
}

function slotUrls(session) {
  const keys = session.trial.reference ? ["ref"] : [];
  session.trial.slots.forEach((_, i) => keys.push(String(i)));
  return keys;
}

async function next() {
  let session;
  try {
    session = await getJSON(`${api}/session/${encodeURIComponent(ui.token)}`);
  } catch (err) {
    if (err.status === 404) {
      localStorage.removeItem(storageKey);
      startPanel(`Unknown token ${ui.token}; start anew.`);
      return;
    }
    throw err;
  }
  ui.session = session;
  document.getElementById("who").textContent = `participant token: ${session.token}`;
  if (session.done) {
    player.stop();
    root().replaceChildren(el("section", { class: "done", id: "done" },
      el("h2", {}, "Thank you!"), el("p", {}, `All ${session.total} trials are saved.`)));
    return;
  }
  ui.slots = slotUrls(session);
  ui.answer = {};
  ui.submit = null;
  root().replaceChildren(el("p", { class: "hint" }, "Loading audio…"));
  await player.load(ui.slots.map((s) =>
    `${api}/audio/${encodeURIComponent(ui.token)}/${session.position}/${s}`));
  player.setMatch(ui.slots.map((s) => session.gains_db[s] || 0), true);
  renderTrial(session);
  ui.opened = performance.now();
}

function slotButton(label, index, key) {
  const b = el("button", { class: "slot", dataset: { index }, onclick: () => {
    player.select(index);
    if (!player.playing) player.play();
  } }, el("span", { class: "key" }, key), " ", label);
  ui.buttons.push(b);
  return b;
}

function mushra(trial, offset) {
  const scale = el("div", { class: "scale" }, trial.scale.map((s) => el("div", {}, s)));
  const columns = trial.slots.map((letter, i) => {
    const value = el("output", {}, "0");
    const slider = el("input", { type: "range", min: 0, max: 100, step: 1, value: 0,
      class: "rating", dataset: { slot: i }, "aria-label": `rating ${letter}` });
    slider.addEventListener("input", () => {
      value.textContent = slider.value;
      ui.answer.ratings[i] = Number(slider.value);
      check();
    });
    return el("div", { class: "column" }, value, slider, slotButton(letter, i + offset,
      String(i + 1)));
  });
  ui.answer.ratings = trial.slots.map(() => 0);
  return el("div", { class: "mushra" }, scale, columns);
}

function choice(options, key) {
  return el("div", { class: "choices" }, options.map(([value, label]) => {
    const input = el("input", { type: "radio", name: "answer", value });
    input.addEventListener("change", () => { ui.answer[key] = Number(value); check(); });
    return el("label", { class: "choice" }, input, label);
  }));
}

function body(trial, offset) {
  if (trial.design === "mushra") return mushra(trial, offset);
  const buttons = el("div", { class: "slots" }, trial.slots.map((s, i) =>
    slotButton(s, i + offset, String(i + 1))));
  if (trial.design === "mos") {
    return el("div", {}, buttons, choice(trial.scale.map((s) => [s.value, `${s.value} ${s.label}`]), "rating"));
  }
  if (trial.design === "ab") return el("div", {}, buttons, choice([[0, "I prefer A"], [1, "I prefer B"]], "choice"));
  return el("div", {}, buttons, choice([[0, "X is A"], [1, "X is B"]], "choice"));
}

function renderTrial(session) {
  const trial = session.trial;
  ui.buttons = [];
  const offset = trial.reference ? 1 : 0;
  const reference = trial.reference ? slotButton("Reference", 0, "R") : "";
  ui.bar = el("canvas", { class: "bar", width: 800, height: 36 });
  regionSelector(ui.bar, () => player.duration, (a, b) => player.setLoop(a, b),
    (t) => (player.playing ? player.play(t) : (player.offset = t)));
  ui.submit = el("button", { id: "submit", class: "primary", disabled: true, onclick: submit },
    "Submit and continue");
  root().replaceChildren(el("section", { class: `trial design-${trial.design}` },
    el("h2", { id: "progress" }, `Trial ${trial.position + 1} of ${trial.total}`),
    el("p", { class: "question" }, trial.question),
    trial.instructions ? el("p", { class: "hint" }, trial.instructions) : "",
    el("div", { class: "transport" },
      el("button", { id: "play", onclick: () => player.toggle() }, "Play"),
      el("button", { onclick: () => player.setLoop(0, 0) }, "Clear loop"),
      el("span", { id: "time", class: "time" }), reference),
    ui.bar, body(trial, offset),
    el("p", { id: "missing", class: "hint" }), ui.submit));
  check();
}

function check() {
  const s = ui.session;
  if (!s || s.done || !ui.submit || !ui.submit.isConnected) return;
  const trial = s.trial;
  const offset = trial.reference ? 1 : 0;
  const unheard = trial.slots.filter((_, i) => !player.heard.has(i + offset));
  const answered = trial.design === "mushra" ? true
    : trial.design === "mos" ? "rating" in ui.answer : "choice" in ui.answer;
  const needHeard = trial.require_played && unheard.length > 0;
  ui.submit.disabled = needHeard || !answered;
  document.getElementById("missing").textContent = needHeard
    ? `Listen to ${unheard.join(", ")} before submitting.` : answered ? "" : "Choose an answer.";
}

async function submit() {
  ui.submit.disabled = true;
  const elapsed = Math.round(performance.now() - ui.opened);
  try {
    await postJSON(`${api}/answer/${encodeURIComponent(ui.token)}`,
      { position: ui.session.position, answers: ui.answer, elapsed_ms: elapsed });
  } catch (err) {
    if (err.status !== 409) { showError(root(), err); return; }
  }
  player.stop();
  await next().catch((err) => showError(root(), err));
}

function refresh() {
  const st = player.state();
  ui.buttons.forEach((b, i) => b.classList.toggle("active", i === st.active));
  ui.buttons.forEach((b, i) => b.classList.toggle("heard", st.heard.includes(i)));
  if (ui.bar && ui.bar.isConnected) drawOverlay(ui.bar, st);
  const play = document.getElementById("play");
  if (play) play.textContent = st.playing ? "Stop" : "Play";
  const time = document.getElementById("time");
  if (time) time.textContent = `${formatTime(st.position)} / ${formatTime(st.duration)}`;
  requestAnimationFrame(refresh);
}

document.addEventListener("keydown", (ev) => {
  if (!ui.session || ui.session.done) return;
  if (ev.target instanceof HTMLInputElement && ev.target.type === "text") return;
  const offset = ui.session.trial.reference ? 1 : 0;
  if (ev.key === " ") { ev.preventDefault(); player.toggle(); }
  else if (ev.key === "r" && offset) ui.buttons[0].click();
  else if (/^[1-9]$/.test(ev.key) && ui.buttons[Number(ev.key) - 1 + offset]) {
    ui.buttons[Number(ev.key) - 1 + offset].click();
  }
});

player.onchange(() => check());
document.getElementById("title").textContent = `Listening test: ${name}`;
requestAnimationFrame(refresh);
ui.token = new URLSearchParams(location.search).get("participant") || localStorage.getItem(storageKey);
if (ui.token) next().catch((err) => showError(root(), err));
else startPanel("");
