/// The master's web dashboard: one self-contained HTML page (CSS and JS inline, no CDN, no build
/// step) served at `/`. It polls the master's JSON API and renders the cluster, the datakeepers,
/// a file browser and a live event feed.
enum DashboardPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>TYDFS dashboard</title>
<style>
  :root { --bg:#f5f6f8; --card:#fff; --line:#e3e6ea; --text:#1d2430; --muted:#6b7480;
          --accent:#2f6fde; --ok:#1f9d55; --warn:#d58512; --bad:#d64545; --idle:#8a939e; }
  * { box-sizing: border-box; }
  body { margin:0; background:var(--bg); color:var(--text); font:14px/1.4 system-ui, -apple-system,
         "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
  header { display:flex; align-items:baseline; gap:12px; padding:12px 20px; background:var(--card);
           border-bottom:1px solid var(--line); }
  header h1 { margin:0; font-size:18px; letter-spacing:.5px; }
  #host { color:var(--muted); font-family:ui-monospace, Menlo, Consolas, monospace; }
  #updated { margin-left:auto; color:var(--muted); font-size:12px; }
  #error { margin:12px 20px 0; padding:8px 12px; border-radius:6px; background:#fdecec;
           border:1px solid #f3b8b8; color:#9b2121; }
  main { padding:16px 20px; display:grid; gap:16px; }
  .card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px 16px; }
  .card h2 { margin:0 0 10px; font-size:13px; text-transform:uppercase; letter-spacing:.6px; color:var(--muted); }
  .cols { display:grid; grid-template-columns:minmax(0,3fr) minmax(0,2fr); gap:16px; align-items:start; }
  @media (max-width:900px) { .cols { grid-template-columns:1fr; } }
  .stats { display:grid; grid-template-columns:repeat(auto-fill, minmax(120px, 1fr)); gap:8px 16px; }
  .stat .label { display:block; font-size:11px; color:var(--muted); text-transform:uppercase; }
  .stat .value { font-size:18px; font-weight:600; }
  .meta { color:var(--muted); font-size:12px; margin-top:8px; }
  table { width:100%; border-collapse:collapse; font-size:13px; }
  th { text-align:left; font-weight:600; color:var(--muted); font-size:11px; text-transform:uppercase;
       border-bottom:1px solid var(--line); padding:4px 6px; }
  td { border-bottom:1px solid var(--line); padding:5px 6px; vertical-align:middle; }
  td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
  .mono { font-family:ui-monospace, Menlo, Consolas, monospace; font-size:12px; }
  .empty { color:var(--muted); font-style:italic; }
  .bar { height:8px; background:#e9ecf0; border-radius:4px; overflow:hidden; min-width:80px; }
  .bar .fill { height:100%; background:var(--accent); }
  .bar .fill.warm { background:var(--warn); } .bar .fill.hot { background:var(--bad); }
  .bar.big { height:12px; margin-top:12px; }
  .cap { display:grid; gap:2px; font-size:11px; color:var(--muted); }
  .badge { display:inline-block; padding:1px 7px; border-radius:10px; font-size:11px; font-weight:600;
           color:#fff; background:var(--idle); white-space:nowrap; }
  .ok, .alive { background:var(--ok); } .warn, .draining { background:var(--warn); }
  .bad, .dead { background:var(--bad); } .retired { background:var(--idle); }
  .value.ok { background:none; color:var(--ok); } .value.warn { background:none; color:var(--warn); }
  .replica { margin-right:4px; }
  tr.entry, tr.datakeeper { cursor:default; } tr.entry { cursor:pointer; }
  tr.entry:hover { background:#f0f4fb; } tr.entry.selected { background:#e4edfc; }
  #browser-path a { color:var(--accent); text-decoration:none; cursor:pointer; }
  #browser-path { font-family:ui-monospace, Menlo, Consolas, monospace; margin-bottom:8px; }
  #file-detail { margin-top:14px; border-top:1px solid var(--line); padding-top:10px; }
  #file-detail h3 { margin:0 0 8px; font-size:14px; word-break:break-all; }
  #file-detail dl { display:grid; grid-template-columns:max-content 1fr; gap:3px 12px; margin:0 0 10px; }
  #file-detail dt { color:var(--muted); } #file-detail dd { margin:0; word-break:break-all; }
  #download { color:var(--accent); font-weight:600; }
  #login { display:flex; gap:.5rem; align-items:center; flex-wrap:wrap; margin:.5rem 1rem; padding:.5rem; border:1px solid var(--warn, #c80); }
  #events { list-style:none; margin:0; padding:0; max-height:640px; overflow-y:auto; }
  #events li { display:grid; grid-template-columns:max-content max-content 1fr; gap:8px; align-items:baseline;
               padding:4px 0; border-bottom:1px solid var(--line); font-size:13px; }
  #events .time { color:var(--muted); font-family:ui-monospace, Menlo, Consolas, monospace; font-size:12px; }
  #events .msg { word-break:break-word; }
</style>
</head>
<body>
<header><h1>TYDFS</h1><span id="host"></span><span id="updated">connecting…</span></header>
<div id="error" role="alert" hidden></div>
<form id="login" hidden><strong>Sign in with an access key</strong>
  <input id="login-id" placeholder="access key id" autocomplete="username" required>
  <input id="login-secret" type="password" placeholder="secret access key" autocomplete="current-password" required>
  <button type="submit">sign in</button>
  <span class="muted">kept in this tab only; <code>tydfs key create --read-only</code> makes one</span></form>
<main>
  <section class="card" id="cluster">
    <h2>Cluster</h2>
    <div class="stats">
      <div class="stat"><span class="label">capacity</span><span class="value" id="capacity">–</span></div>
      <div class="stat"><span class="label">used</span><span class="value" id="used">–</span></div>
      <div class="stat"><span class="label">files</span><span class="value" id="files">–</span></div>
      <div class="stat"><span class="label">chunks</span><span class="value" id="chunks">–</span></div>
      <div class="stat"><span class="label">under-replicated</span><span class="value" id="under-replicated">–</span></div>
      <div class="stat"><span class="label">missing</span><span class="value" id="missing">–</span></div>
      <div class="stat"><span class="label">repairs in flight</span><span class="value" id="repairs">–</span></div>
      <div class="stat"><span class="label">mode</span><span class="value" id="safe-mode">–</span></div>
      <div class="stat"><span class="label">live keepers</span><span class="value" id="live-count">–</span></div>
      <div class="stat"><span class="label">dead keepers</span><span class="value" id="dead-count">–</span></div>
    </div>
    <div class="bar big" id="cluster-bar"><div class="fill" style="width:0%"></div></div>
    <div class="meta" id="cluster-meta"></div>
  </section>
  <section class="card">
    <h2>Datakeepers</h2>
    <table id="datakeepers">
      <thead><tr><th>id</th><th>state</th><th>address</th><th>last heartbeat</th><th>in flight</th>
        <th>capacity</th><th class="num">chunks</th><th class="num">served</th><th class="num">repairs</th>
        <th class="num">pending del.</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <div class="cols">
    <section class="card" id="browser">
      <h2>Files</h2>
      <nav id="browser-path">/</nav>
      <table id="entries">
        <thead><tr><th>name</th><th class="num">size</th><th>modified</th></tr></thead>
        <tbody></tbody>
      </table>
      <div id="file-detail" hidden></div>
    </section>
    <section class="card" id="feed">
      <h2>Events</h2>
      <ol id="events"></ol>
    </section>
  </div>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const MAX_EVENTS = 200;
let refreshes = 0, lastEventId = 0, currentDir = null, selectedFile = null;

// ---- small helpers (all text goes through text nodes, never innerHTML) ----
function el(tag, attrs, ...kids) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    n.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of kids) if (c !== null && c !== undefined) n.append(c instanceof Node ? c : String(c));
  return n;
}
const pad = (n) => String(n).padStart(2, "0");
function hms(ms) { const d = new Date(ms); return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()); }
function dateTime(ms) {
  const d = new Date(ms);
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + hms(ms);
}
function human(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = Number(bytes) || 0, i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? String(v) : v.toFixed(v < 10 ? 2 : 1)) + " " + units[i];
}
function bar(used, cap, big) {
  const pct = cap > 0 ? Math.min(100, (used * 100) / cap) : 0;
  const fill = el("div", { class: "fill" + (pct >= 90 ? " hot" : pct >= 75 ? " warm" : "") });
  fill.style.width = pct.toFixed(1) + "%";
  return el("div", { class: "bar" + (big ? " big" : ""), title: pct.toFixed(1) + "% used" }, fill);
}
function setText(id, value) { $(id).textContent = String(value); }
function baseName(path) { const i = path.lastIndexOf("/"); return i >= 0 ? path.slice(i + 1) : path; }
function normalize(path) {
  const parts = String(path || "").split("/").filter((p) => p !== "" && p !== ".");
  return "/" + parts.join("/");
}

// ---- errors: one slot per source; a source's next success clears its own slot ----
const errors = {};
function reportError(source, err) { errors[source] = err && err.message ? err.message : String(err); showErrors(); }
function clearError(source) { if (errors[source] !== undefined) { delete errors[source]; showErrors(); } }
function showErrors() {
  const msgs = Object.values(errors), box = $("error");
  box.textContent = msgs.join(" · ");
  box.hidden = msgs.length === 0;
}
// ---- credentials: every request is signed as the CLI signs (TYDFS-HMAC-SHA256) ----
// The key comes from the login form, or from "#key=ID:SECRET" in the URL (then removed from it),
// and stays in this tab's sessionStorage. The secret never crosses the wire.
const enc = new TextEncoder();
function hex(buffer) { return Array.from(new Uint8Array(buffer), b => b.toString(16).padStart(2, "0")).join(""); }
function credentials() {
  try { return JSON.parse(sessionStorage.getItem("tydfs-key") || "null"); } catch (e) { return null; }
}
function takeKeyFromURL() {
  const m = location.hash.match(/^#key=([^:&]+):([^&]+)(?:&(.*))?$/);
  if (!m) return;
  sessionStorage.setItem("tydfs-key", JSON.stringify({ id: decodeURIComponent(m[1]), secret: decodeURIComponent(m[2]) }));
  history.replaceState(null, "", location.pathname + "#" + (m[3] || "/"));
}
// crypto.subtle exists only in secure contexts (https://, or http:// to 127.0.0.1 or localhost):
// over plain http to any other host the page cannot sign, so it says so and sends nothing.
const SIGNING_NEEDS_SECURE_CONTEXT = "signing needs HTTPS or localhost: open the dashboard over https:// " +
  "or through 127.0.0.1 (e.g. ssh -L 9333:127.0.0.1:9333 to the master's host); this page cannot sign requests here";
function canSign() { return Boolean(window.isSecureContext && window.crypto && window.crypto.subtle); }
async function signedFetch(url) {
  const key = credentials();
  const headers = {};
  if (key && !canSign()) {
    $("login").hidden = true;
    throw new Error(SIGNING_NEEDS_SECURE_CONTEXT);
  }
  if (key) {
    const date = Math.floor(Date.now() / 1000);
    const digest = hex(await crypto.subtle.digest("SHA-256", new Uint8Array(0)));
    const message = ["TYDFS-HMAC-SHA256", String(date), "GET", url, digest].join("\n");
    const hmac = await crypto.subtle.importKey("raw", enc.encode(key.secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const signature = hex(await crypto.subtle.sign("HMAC", hmac, enc.encode(message)));
    headers["Authorization"] = "TYDFS-HMAC-SHA256 Credential=" + key.id + ", Date=" + date + ", Signature=" + signature;
    headers["X-TYDFS-Content-SHA256"] = digest;
  }
  const r = await fetch(url, { cache: "no-store", headers });
  $("login").hidden = r.status !== 401;
  // Asked for a key where no key could be used: say so before one is typed in.
  if (r.status === 401 && !canSign()) reportError("signing", new Error(SIGNING_NEEDS_SECURE_CONTEXT));
  return r;
}
async function getJSON(url) {
  const r = await signedFetch(url);
  let body = null;
  try { body = await r.json(); } catch (e) { /* not JSON */ }
  if (!r.ok) throw new Error((body && body.error && body.error.message) || "HTTP " + r.status + " for " + url);
  if (body === null) throw new Error("invalid JSON from " + url);
  return body;
}

// ---- cluster summary + datakeepers ----
function renderCluster(c) {
  const keepers = c.datakeepers || [];
  const cap = $("capacity"), used = $("used");
  cap.textContent = human(c.capacityBytes); cap.dataset.bytes = String(c.capacityBytes);
  used.textContent = human(c.usedBytes); used.dataset.bytes = String(c.usedBytes);
  setText("files", c.files); setText("chunks", c.chunks);
  setText("under-replicated", c.underReplicatedChunks); setText("missing", c.missingChunks);
  setText("repairs", c.repairsInFlight);
  const mode = $("safe-mode");
  mode.textContent = c.safeMode ? "safe mode" : "serving";
  mode.className = "value " + (c.safeMode ? "warn" : "ok");
  setText("live-count", keepers.filter((d) => d.alive).length);
  setText("dead-count", keepers.filter((d) => !d.alive && d.state !== "retired").length);
  $("cluster-bar").replaceWith(Object.assign(bar(c.usedBytes, c.capacityBytes, true), { id: "cluster-bar" }));
  $("cluster-meta").textContent = "replication " + c.replication + " · heartbeat timeout " +
    c.heartbeatTimeoutSeconds + " s · " + human(c.usedBytes) + " of " + human(c.capacityBytes) + " used";

  const body = el("tbody");
  for (const d of keepers) {
    const busy = d.inFlight > 0;
    body.append(el("tr", { class: "datakeeper", "data-id": d.id, "data-state": d.state },
      el("td", { class: "mono" }, d.id),
      el("td", {}, el("span", { class: "badge " + d.state }, d.state)),
      el("td", { class: "mono" }, d.address),
      el("td", {}, Number(d.secondsSinceHeartbeat).toFixed(1) + " s ago"),
      el("td", {}, el("span", { class: "badge " + (busy ? "warn" : "ok") }, busy ? "busy · " + d.inFlight : "free")),
      el("td", {}, el("div", { class: "cap" }, bar(d.usedBytes, d.capacityBytes),
        human(d.usedBytes) + " / " + human(d.capacityBytes))),
      el("td", { class: "num" }, d.chunkCount), el("td", { class: "num" }, d.chunksServed),
      el("td", { class: "num" }, d.repairCopies), el("td", { class: "num" }, d.pendingDeletions)));
  }
  if (keepers.length === 0) body.append(el("tr", {}, el("td", { colspan: 10, class: "empty" }, "no datakeepers registered")));
  $("datakeepers").tBodies[0].replaceWith(body);
}

// ---- event feed (newest on top, at most MAX_EVENTS) ----
const kindClass = (k) => /dead|corrupt/.test(k) ? "bad" : /joined|returned/.test(k) ? "ok"
  : /repair|drain/.test(k) ? "warn" : "";
function renderEvents(data) {
  const list = $("events");
  if (data.latest < lastEventId) { list.textContent = ""; lastEventId = 0; return; } // master restarted
  for (const e of data.events || []) {
    if (e.id <= lastEventId) continue;
    lastEventId = e.id;
    list.insertBefore(el("li", { class: "event", "data-kind": e.kind, "data-id": e.id },
      el("span", { class: "time", title: dateTime(e.timeMillis) }, hms(e.timeMillis)),
      el("span", { class: "badge " + kindClass(e.kind) }, e.kind),
      el("span", { class: "msg" }, e.message)), list.firstChild);
  }
  while (list.children.length > MAX_EVENTS) list.lastChild.remove();
}

// ---- 1 s poll loop: cluster + events, chained so requests never overlap ----
async function refreshCluster() {
  try {
    renderCluster(await getJSON("/v1/cluster"));
    clearError("cluster");
    refreshes++;
    document.body.dataset.refreshes = String(refreshes);
    document.body.dataset.loaded = "true";
    $("updated").textContent = "updated " + hms(Date.now());
  } catch (e) { reportError("cluster", e); }
}
async function refreshEvents() {
  try { renderEvents(await getJSON("/v1/events?after=" + lastEventId)); clearError("events"); }
  catch (e) { reportError("events", e); }
}
async function tick() {
  await Promise.all([refreshCluster(), refreshEvents()]);
  setTimeout(tick, 1000);
}

// ---- file browser ----
function renderBreadcrumb(path) {
  const nav = $("browser-path");
  nav.textContent = "";
  const crumb = (label, target) => {
    const a = el("a", { href: "#" + target }, label);
    a.addEventListener("click", (ev) => { ev.preventDefault(); navigate(target); });
    return a;
  };
  nav.append(crumb("/", "/"));
  const parts = path.split("/").filter(Boolean);
  parts.forEach((p, i) => {
    if (i > 0) nav.append("/");
    nav.append(crumb(p, "/" + parts.slice(0, i + 1).join("/")));
  });
}
function renderEntries(entries) {
  const body = el("tbody");
  const sorted = entries.slice().sort((a, b) =>
    (b.isDirectory - a.isDirectory) || baseName(a.path).localeCompare(baseName(b.path)));
  for (const e of sorted) {
    const kind = e.isDirectory ? "dir" : "file";
    const row = el("tr", { class: "entry" + (e.path === selectedFile ? " selected" : ""),
                           "data-path": e.path, "data-kind": kind, tabindex: 0 },
      el("td", {}, baseName(e.path) + (e.isDirectory ? "/" : "")),
      el("td", { class: "num" }, e.isDirectory ? "—" : human(e.sizeBytes)),
      el("td", { class: "mono" }, e.mtimeMillis ? dateTime(e.mtimeMillis) : "—"));
    const open = () => e.isDirectory ? navigate(e.path) : showFile(e.path);
    row.addEventListener("click", open);
    row.addEventListener("keydown", (ev) => { if (ev.key === "Enter") open(); });
    body.append(row);
  }
  if (sorted.length === 0) body.append(el("tr", {}, el("td", { colspan: 3, class: "empty" }, "empty folder")));
  $("entries").tBodies[0].replaceWith(body);
}
async function loadDir(path) {
  path = normalize(path);
  if (path !== currentDir) {           // a new folder: reset the view
    currentDir = path; selectedFile = null;
    $("file-detail").hidden = true; $("file-detail").textContent = "";
    renderBreadcrumb(path);
  }
  try {
    const data = await getJSON("/v1/list?path=" + encodeURIComponent(path));
    if (path !== currentDir) return;   // stale answer: the user moved on
    renderEntries(data.entries || []);
    clearError("list");
  } catch (e) { reportError("list", e); }
}
function pathFromHash() {
  let h = location.hash.replace(/^#/, "");
  try { h = decodeURIComponent(h); } catch (e) { /* keep raw */ }
  return normalize(h);
}
function navigate(path) {
  path = normalize(path);
  // Encoded, each segment, so a name holding "%" or "#" comes back as itself.
  if (pathFromHash() === path) loadDir(path); else location.hash = path.split("/").map(encodeURIComponent).join("/"); // hashchange loads it
}
async function showFile(path) {
  selectedFile = path;
  for (const r of document.querySelectorAll("tr.entry")) r.classList.toggle("selected", r.dataset.path === path);
  try {
    const f = await getJSON("/v1/files?inspect=true&path=" + encodeURIComponent(path));
    if (selectedFile !== path) return;
    renderFile(f);
    clearError("file");
  } catch (e) { reportError("file", e); }
}
function renderFile(f) {
  const box = $("file-detail");
  box.textContent = "";
  box.dataset.path = f.path;
  const chunks = el("tbody");
  for (const c of f.chunks || []) {
    const replicas = el("td", {});
    for (const r of c.replicas || []) {
      replicas.append(el("span", { class: "badge replica " + (r.alive ? "alive" : "dead"), "data-id": r.id,
                                   title: r.address }, r.id));
    }
    if (!(c.replicas || []).length) replicas.append(el("span", { class: "badge bad" }, "no replicas"));
    chunks.append(el("tr", { class: "chunk", "data-index": c.index },
      el("td", { class: "num" }, c.index), el("td", { class: "mono", title: c.id }, c.id.slice(0, 16)),
      el("td", { class: "num" }, human(c.sizeBytes)), el("td", { class: "mono" }, c.crc32c), replicas));
  }
  // A link cannot carry a signature: the file is fetched signed, then saved from memory.
  const download = el("a", { id: "download", href: "#", download: baseName(f.path) }, "download");
  download.addEventListener("click", async event => {
    event.preventDefault();
    try {
      const r = await signedFetch("/v1/content?path=" + encodeURIComponent(f.path));
      if (!r.ok) throw new Error("download: HTTP " + r.status);
      const link = el("a", { href: URL.createObjectURL(await r.blob()), download: baseName(f.path) });
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 60000);
      clearError("download");
    } catch (e) { reportError("download", e); }
  });
  box.append(
    el("h3", {}, f.path),
    el("dl", {},
      el("dt", {}, "size"), el("dd", { id: "detail-size" }, human(f.sizeBytes) + " (" + f.sizeBytes + " bytes)"),
      el("dt", {}, "modified"), el("dd", {}, f.mtimeMillis ? dateTime(f.mtimeMillis) : "—"),
      el("dt", {}, "checksum"), el("dd", { id: "detail-checksum", class: "mono" }, f.checksum),
      el("dt", {}, "chunk size"), el("dd", {}, human(f.chunkSizeBytes)),
      el("dt", {}, "replication"), el("dd", { id: "detail-replication" }, f.replication),
      el("dt", {}, "under-replicated"), el("dd", {}, el("span", { id: "detail-under-replicated",
        class: "badge " + (f.underReplicated ? "warn" : "ok") }, f.underReplicated ? "yes" : "no")),
      el("dt", {}, "content"), el("dd", {}, download)),
    el("table", { id: "chunks-table" },
      el("thead", {}, el("tr", {}, el("th", { class: "num" }, "#"), el("th", {}, "chunk id"),
        el("th", { class: "num" }, "size"), el("th", {}, "crc32c"), el("th", {}, "replicas"))),
      chunks));
  box.hidden = false;
}
// Re-list the current folder (and the open file) every 5 s.
async function browserLoop() {
  if (currentDir !== null) {
    await loadDir(currentDir);
    if (selectedFile) await showFile(selectedFile);
  }
  setTimeout(browserLoop, 5000);
}

// ---- start ----
takeKeyFromURL();
$("login").addEventListener("submit", event => {
  event.preventDefault();
  sessionStorage.setItem("tydfs-key", JSON.stringify({ id: $("login-id").value.trim(), secret: $("login-secret").value.trim() }));
  $("login").hidden = true;
  loadDir(pathFromHash());   // the polls pick the key up on their next round
});
$("host").textContent = location.host;
window.addEventListener("hashchange", () => loadDir(pathFromHash()));
loadDir(pathFromHash());
tick();
setTimeout(browserLoop, 5000);
</script>
</body>
</html>
"""#
}
