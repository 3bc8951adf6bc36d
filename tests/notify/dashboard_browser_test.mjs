// The dashboard in Debian's headless Chromium, driven by playwright-core:
// settled all on a fresh data directory, the page opened with an admin key,
// events sent through the gateway's API, then the day closed (an event of a
// later day moves the watermark past it with --grace-ms 0). The page must show
// the open batch's running totals, then the closed batch's payout within 1 s of
// the worker closing it (the batch_closed status's at_ms); then the pipeline's
// health in the header, and a bank statement lacking the payout posted to the
// gateway: the batch and the merchant's open discrepancies show it. The
// screenshots go to the build directory. Usage: node dashboard_browser_test.mjs SETTLED_BIN OUT_DIR
// Exit 77 (skipped) without chromium or playwright-core.
import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createRequire } from "node:module";

const [settled, outDir] = process.argv.slice(2);
const chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find(existsSync);
if (!chromium) { console.log("skipped: chromium is not installed (scripts/setup installs it)"); process.exit(77); }
const require = createRequire(path.join(process.cwd(), "package.json"));
let playwright;
try { playwright = require("playwright-core"); } catch (e) {
  console.log("skipped: node_modules/playwright-core is missing (npm ci)"); process.exit(77);
}

const dir = mkdtempSync(path.join(tmpdir(), "settle-dashboard-"));
let proc;
let browser;
const fail = (msg) => { console.error("FAIL: " + msg); cleanup(); process.exit(1); };
function cleanup() {
  if (proc && proc.exitCode === null) proc.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
}
const deadline = setTimeout(() => fail("timed out after 90 s"), 90_000);

const admin = execFileSync(settled, ["keys", "create", "--admin", "--data-dir", dir, "--fsync", "none"]).toString().trim();
proc = spawn(settled, ["all", "--data-dir", dir, "--listen", "127.0.0.1:0", "--fsync", "none", "--ledger-sync", "normal",
                       "--grace-ms", "0", "--idle-ms", "3600000"], { stdio: ["ignore", "ignore", "pipe"] });
let log = "";
const ports = await new Promise((resolve, reject) => {
  const found = {};
  proc.stderr.on("data", (d) => {
    log += d;
    const g = /gateway on http:\/\/[^:]+:(\d+)/.exec(log), n = /notify on http:\/\/[^:]+:(\d+)/.exec(log);
    if (g && n && !found.done) { found.done = true; resolve({ gateway: +g[1], notify: +n[1] }); }
  });
  proc.on("exit", (c) => reject(new Error("settled all exited " + c + ": " + log)));
});
const api = async (method, p, body) => {
  const r = await fetch(`http://127.0.0.1:${ports.gateway}${p}`, {
    method, headers: { "Authorization": "Bearer " + admin, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body) });
  if (r.status >= 300) fail(`${method} ${p}: ${r.status} ${await r.text()}`);
  return r.json();
};
await api("PUT", "/v1/merchants/m1", { merchant_id: "m1", timezone: "UTC", delay_days: 1,
                                       fees: { capture: { bps: 100, fixed: 0 } } });

browser = await playwright.chromium.launch({ executablePath: chromium, args: ["--no-sandbox", "--headless=new"] });
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
await page.goto(`http://127.0.0.1:${ports.notify}/dashboard`);
await page.fill("#key", admin);
await page.click("#login button");
await page.waitForSelector("#conn:text('live')", { timeout: 10_000 });

const ev = (id, amount, at) => ({ event_id: id, merchant_id: "m1", type: "capture", amount, currency: "USD", occurred_at: at });
await api("POST", "/v1/events", [ev("e1", 10000, "2026-03-02T10:00:00Z"), ev("e2", 5000, "2026-03-02T11:00:00Z")]);
// Running totals of the open batch.
await page.waitForSelector("section[data-merchant=m1] tr[data-batch='2026-03-02/USD'][data-kind=batch_open]", { timeout: 10_000 });
const openAmount = await page.textContent("tr[data-batch='2026-03-02/USD'] .amount");
if (!openAmount.includes("150.00")) fail("open batch amount shows " + openAmount);

// Close the day: an event of the next day moves the watermark past it.
await api("POST", "/v1/events", [ev("e3", 2000, "2026-03-03T09:00:00Z")]);
await page.waitForSelector("tr[data-batch='2026-03-02/USD'][data-kind=batch_closed]", { timeout: 10_000 });
const shownAt = Date.now();
const status = await api("GET", "/v1/merchants/m1/batches");
const payout = await page.textContent("tr[data-batch='2026-03-02/USD'] .payout");
if (!payout.includes("148.50")) fail("payout shows " + payout + " (expected 148.50 = 150.00 - 1% fee)");
const closedAt = await (await fetch(`http://127.0.0.1:${ports.notify}/v1/merchants/m1/status`,
                                    { headers: { "Authorization": "Bearer " + admin } })).json();
const closed = closedAt.batches.find((b) => b.batch_date === "2026-03-02" && b.kind === "batch_closed");
if (!closed) fail("no batch_closed in the cached state");
const lagMs = shownAt - closed.at_ms;
console.log(`payout shown ${lagMs} ms after the batch closed`);
if (lagMs > 1000) fail(`the payout showed ${lagMs} ms after the batch closed (more than 1 s)`);
await page.waitForSelector("tr[data-batch='2026-03-03/USD'][data-kind=batch_open]", { timeout: 10_000 });

mkdirSync(outDir, { recursive: true });
await page.screenshot({ path: path.join(outDir, "dashboard.png"), fullPage: true });
const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true });
await phone.goto(`http://127.0.0.1:${ports.notify}/dashboard`);
await phone.fill("#key", admin);
await phone.click("#login button");
await phone.waitForSelector("tr[data-batch='2026-03-02/USD'][data-kind=batch_closed]", { timeout: 10_000 });
const width = await phone.evaluate(() => document.documentElement.scrollWidth);
if (width > 390) fail(`on a phone the page is ${width} px wide (scrolls sideways)`);
await phone.screenshot({ path: path.join(outDir, "dashboard-phone.png"), fullPage: true });

// Pipeline health in the header (from notify's /healthz): everything posted.
await page.waitForSelector("#pipeline:text('processor lag 0')", { timeout: 10_000 });
// Reconciliation: the bank's statement of the payout day lacks the payout, so
// a discrepancy opens; the page shows it on the batch and in the merchant's
// open discrepancies, live.
const camt = `<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>
<GrpHdr><MsgId>STMT-0303</MsgId><CreDtTm>2026-03-03T22:00:00Z</CreDtTm></GrpHdr>
<Stmt><Id>STMT-0303</Id><FrToDt><FrDtTm>2026-03-03T00:00:00Z</FrDtTm><ToDtTm>2026-03-03T23:59:59Z</ToDtTm></FrToDt>
<Acct><Id><IBAN>DE89370400440532013000</IBAN></Id><Ccy>USD</Ccy></Acct>
</Stmt></BkToCstmrStmt></Document>
`;
const recon = await fetch(`http://127.0.0.1:${ports.gateway}/v1/statements?format=camt053`, {
  method: "POST", headers: { "Authorization": "Bearer " + admin, "Content-Type": "application/xml" }, body: camt });
if (recon.status !== 200) fail(`POST /v1/statements: ${recon.status} ${await recon.text()}`);
await page.waitForSelector("tr[data-batch='2026-03-02/USD'][data-kind=batch_discrepancy]", { timeout: 10_000 });
await page.waitForSelector("section[data-merchant=m1] h3.discrepancies:text('Open discrepancies: 1')", { timeout: 10_000 });
const reason = await page.textContent("section[data-merchant=m1] tr[data-discrepancy] td:nth-child(2)");
if (reason !== "missing_in_statement") fail("the open discrepancy shows reason " + reason);
await page.screenshot({ path: path.join(outDir, "dashboard-recon.png"), fullPage: true });
await browser.close();
clearTimeout(deadline);
void status;
cleanup();
console.log("ok: screenshots in " + outDir);
