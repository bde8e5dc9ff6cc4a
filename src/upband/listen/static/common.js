// Small helpers shared by the browsing page and the test page: JSON over fetch, DOM building.
// Everything comes from this server: no other origin is ever contacted.

// The JSON body of a response; an error status throws the server's message (or the status).
async function bodyOf(r, url) {
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    const err = new Error(body.error || `${url}: HTTP ${r.status}`);
    err.status = r.status;
    throw err;
  }
  return body;
}

export async function getJSON(url) {
  return bodyOf(await fetch(url, { credentials: "same-origin" }), url);
}

export async function postJSON(url, data) {
  const r = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(data),
  });
  return bodyOf(r, url);
}

// el("button", {class: "x", onclick: f}, "text", child) -> an element
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function formatTime(s) {
  if (!Number.isFinite(s)) return "–";
  const m = Math.floor(s / 60);
  return `${m}:${(s - 60 * m).toFixed(2).padStart(5, "0")}`;
}

export function formatNumber(v) {
  if (v === null || v === undefined) return "n/a";
  if (v === "inf") return "∞";
  if (v === "-inf") return "−∞";
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toFixed(3);
}

export function showError(where, err) {
  console.warn(err);  // a warning, not an error: the page says it on screen
  where.replaceChildren(el("p", { class: "error" }, String(err.message || err)));
}
