#include "notify/dashboard.h"

namespace settle::notify {

std::string_view dashboard_html() {
  static constexpr std::string_view kPage = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>settled: live settlement</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d232b; }
  header { background: #1d232b; color: #fff; padding: .6rem 1rem; display: flex; flex-wrap: wrap; gap: .6rem; align-items: center; }
  header h1 { font-size: 1.1rem; margin: 0; flex: 1; }
  #health { font-size: .85rem; }
  .dot { display: inline-block; width: .6rem; height: .6rem; border-radius: 50%; background: #c33; margin-right: .3rem; }
  .dot.ok { background: #3a3; }
  main { padding: 1rem; display: grid; gap: 1rem; grid-template-columns: repeat(auto-fill, minmax(22rem, 1fr)); }
  section.merchant { background: #fff; border-radius: .5rem; padding: .8rem 1rem; box-shadow: 0 1px 3px #0002; }
  h2 { font-size: 1rem; margin: 0 0 .5rem; }
  h3 { font-size: .85rem; margin: .6rem 0 .2rem; color: #566; text-transform: uppercase; letter-spacing: .04em; }
  table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
  td, th { padding: .15rem .3rem; text-align: left; border-bottom: 1px solid #eee; font-size: .9rem; }
  td.n { text-align: right; }
  .failed { color: #b00; }
  form { display: flex; gap: .4rem; }
  input { font: inherit; padding: .2rem .4rem; min-width: 12rem; }
  @media (max-width: 480px) { main { grid-template-columns: 1fr; padding: .5rem; } input { min-width: 0; flex: 1; } }
</style>
</head>
<body>
<header>
  <h1>settled: live settlement</h1>
  <span id="health"><span class="dot" id="dot"></span><span id="conn">disconnected</span> · <span id="feed"></span> · <span id="pipeline"></span></span>
  <form id="login"><input id="key" type="password" placeholder="API key (sk_...)" autocomplete="off"><button>Connect</button></form>
</header>
<main id="merchants"></main>
<script>
"use strict";
const state = new Map();  // merchant -> {batches: Map(batchKey -> status), discrepancies, epoch, seq}
const params = new URLSearchParams(location.search);
function money(minor, cur) {
  const sign = minor < 0 ? "-" : "";
  const a = Math.abs(minor);
  return sign + Math.floor(a / 100) + "." + String(a % 100).padStart(2, "0") + " " + (cur || "");
}
function batchKey(s) { return s.batch_date + "/" + s.currency; }
function merchant(id) {
  if (!state.has(id)) state.set(id, {batches: new Map(), discrepancies: null, epoch: 0, seq: -1});
  return state.get(id);
}
function apply(msg) {
  if (msg.type === "resync") {
    const m = merchant(msg.merchant_id);
    m.batches.clear();
    m.discrepancies = null;
    for (const b of msg.batches) {
      if (b.kind === "merchant_discrepancies") m.discrepancies = b; else m.batches.set(batchKey(b), b);
    }
    m.epoch = msg.epoch; m.seq = msg.seq;
  } else if (msg.type === "status") {
    const m = merchant(msg.merchant_id);
    m.epoch = msg.epoch; m.seq = msg.seq;
    const s = msg.status;
    if (s.batch_date && s.kind.startsWith("batch_")) m.batches.set(batchKey(s), s);
    if (s.kind === "merchant_discrepancies") m.discrepancies = s;
  }
}
const closedLabel = {batch_closed: "closed", batch_paid_out: "paid out", batch_reconciled: "reconciled",
                     batch_discrepancy: "discrepancy"};
function cell(text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; return td; }
function table(head, rows) {
  const t = document.createElement("table");
  const tr = document.createElement("tr");
  for (const h of head) { const th = document.createElement("th"); th.textContent = h; tr.appendChild(th); }
  t.appendChild(tr);
  for (const r of rows) t.appendChild(r);
  return t;
}
function render() {
  const root = document.getElementById("merchants");
  root.textContent = "";
  for (const id of [...state.keys()].sort()) {
    const m = state.get(id);
    const sec = document.createElement("section");
    sec.className = "merchant";
    sec.dataset.merchant = id;
    const h = document.createElement("h2"); h.textContent = id; sec.appendChild(h);
    const open = [], closed = [], failed = [];
    for (const [k, s] of [...m.batches.entries()].sort()) {
      const tr = document.createElement("tr");
      tr.dataset.batch = k;
      tr.dataset.kind = s.kind;
      if (s.trace_id) tr.title = "trace " + s.trace_id;  // the last event counted (docs/observability.md)
      if (s.kind === "batch_open" || s.kind === "batch_closing") {
        let amount = 0;
        for (const t of Object.values(s.totals || {})) amount += t.amount;
        tr.append(cell(s.batch_date), cell(s.event_count ?? ""), cell(money(amount, s.currency), "n amount"),
                  cell(money(s.fees ?? 0, s.currency), "n"), cell(s.kind === "batch_closing" ? "closing" : "open"));
        open.push(tr);
      } else if (s.kind in closedLabel) {
        const label = s.kind === "batch_discrepancy" && s.open_discrepancies === 0 ? "resolved" : closedLabel[s.kind];
        tr.append(cell(s.batch_date), cell(money(s.payout, s.currency), "n payout"), cell(s.payout_date || ""),
                  cell(money(s.carry_out, s.currency), "n"), cell(label, label === "discrepancy" ? "failed state" : "state"));
        closed.push(tr);
      } else if (s.kind === "batch_close_failed") {
        tr.append(cell(s.batch_date), cell(s.reason || "", "failed"));
        failed.push(tr);
      }
    }
    const add = (title, head, rows) => {
      if (!rows.length) return;
      const h3 = document.createElement("h3"); h3.textContent = title; sec.appendChild(h3);
      sec.appendChild(table(head, rows));
    };
    add("Open batches", ["Batch", "Events", "Amount", "Fees", ""], open);
    add("Closed batches", ["Batch", "Payout", "Paid on", "Carry", ""], closed.reverse());
    add("Needs attention", ["Batch", "Reason"], failed);
    const d = m.discrepancies;
    if (d && d.open_discrepancies > 0) {
      const rows = d.discrepancies.map((x) => {
        const tr = document.createElement("tr");
        tr.dataset.discrepancy = x.id;
        tr.append(cell("#" + x.id), cell(x.reason), cell(x.state), cell(money(x.drift, x.currency), "n"));
        return tr;
      });
      add("Open discrepancies: " + d.open_discrepancies, ["Task", "Reason", "State", "Drift"], rows);
      sec.querySelector("h3:last-of-type").className = "discrepancies";
    }
    root.appendChild(sec);
  }
}
let pending = false;
function schedule() { if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; render(); }); } }
async function health() {
  try {
    const r = await fetch("/healthz");
    const j = await r.json();
    document.getElementById("feed").textContent = j.caught_up ? "feed caught up" : "feed catching up";
    const p = j.pipeline;
    if (p) {
      document.getElementById("pipeline").textContent = "processor lag " + p.processor_lag + " · worker lag " +
          p.worker_lag + " · failed tasks " + p.failed_tasks + " · dead letters " + p.dead_letters;
      document.getElementById("pipeline").className = p.failed_tasks > 0 || p.dead_letters > 0 ? "failed" : "";
    }
  } catch (e) { document.getElementById("feed").textContent = "notify unreachable"; }
}
async function connect(key) {
  const body = params.get("merchant_id") ? JSON.stringify({merchant_id: params.get("merchant_id")}) : "{}";
  const r = await fetch("/v1/stream/tokens", {method: "POST", headers: {"Authorization": "Bearer " + key, "Content-Type": "application/json"}, body});
  if (!r.ok) { document.getElementById("conn").textContent = "key refused (" + r.status + ")"; return; }
  const {token} = await r.json();
  const q = new URLSearchParams({token});
  if (params.get("merchant_id")) q.set("merchant_id", params.get("merchant_id"));
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/v1/stream/status?" + q);
  ws.onopen = () => { document.getElementById("dot").className = "dot ok"; document.getElementById("conn").textContent = "live"; };
  ws.onmessage = (ev) => { apply(JSON.parse(ev.data)); schedule(); };
  ws.onclose = (ev) => {
    document.getElementById("dot").className = "dot";
    document.getElementById("conn").textContent = "disconnected (" + ev.code + "); reconnecting";
    setTimeout(() => connect(key), 1000);
  };
}
document.getElementById("login").addEventListener("submit", (e) => {
  e.preventDefault();
  const key = document.getElementById("key").value.trim();
  sessionStorage.setItem("settled-key", key);
  connect(key);
});
const saved = sessionStorage.getItem("settled-key");
if (saved) connect(saved);
health();
setInterval(health, 2000);
</script>
</body>
</html>
)html";
  return kPage;
}

}  // namespace settle::notify
