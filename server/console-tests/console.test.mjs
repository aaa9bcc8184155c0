// Browser tests of the operator console: the real `agentpolicy serve` binary (built by
// run.sh) on a loopback port with the law firm's policy, driven by headless Debian
// Chromium through playwright-core. Each test checks what an operator, an auditor or an
// attacker can and cannot do through the page, against the API and the audit log.
//
// Run by server/console-tests/run.sh; `--screenshots` there also writes the
// screenshots in docs/ (otherwise they go to target/console-screenshots/).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync, readFileSync, mkdirSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const require = createRequire(join(root, "target/console-npm/package.json"));
const { chromium } = require("playwright-core");
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const BIN = process.env.AGENTPOLICY_BIN || join(root, "target/debug/agentpolicy");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = process.env.CONSOLE_SCREENSHOTS || join(root, "target/console-screenshots");
const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

const token = () => randomBytes(24).toString("hex");
const TOKENS = { agent: token(), operator: token(), auditor: token(), partner: token() };
const sha = (t) => createHash("sha256").update(t).digest("hex");

let dir, server, base, port, browser, audit;

function startServer() {
  return new Promise((ok, fail) => {
    // From the repository root with a relative policy path, so explanations name
    // `examples/law_firm/…` as a deployment would name its own folder.
    const child = spawn(BIN, ["serve", "--policy", "examples/law_firm",
      "--listen", "127.0.0.1:0", "--audit", audit, "--tokens", join(dir, "tokens.json")],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
    let out = "", err = "";
    child.stderr.on("data", (d) => { err += d; });
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) ok({ child, port: Number(m[1]) });
    });
    child.on("exit", (code) => fail(new Error(`serve exited ${code}: ${err}`)));
  });
}

async function apiCall(method, path, tok, body, extra = {}) {
  const r = await fetch(base + path, {
    method,
    headers: { ...(tok ? { Authorization: `Bearer ${tok}` } : {}), "Content-Type": "application/json", ...extra },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch (_) { /* not JSON */ }
  return { status: r.status, json, text };
}

/** Opens a research session and raises an escalation (low confidence goes to human_review). */
async function escalate(query = "indemnity caps", reasoning = "The memo needs the cap agreed in 2024.") {
  const s = await apiCall("POST", "/v1/sessions", TOKENS.agent,
    { agent: "research", bind: { matter: "M-1042" }, context: "user:alice@firm.example" });
  assert.equal(s.status, 200, s.text);
  const d = await apiCall("POST", `/v1/sessions/${s.json.session}/decide`, TOKENS.agent,
    { tool: "search_case_law", args: { query }, confidence: 0.5, reasoning });
  assert.equal(d.json.outcome, "escalate", d.text);
  return { session: s.json.session, id: d.json.escalation };
}

function records(kind) {
  return readFileSync(audit, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l))
    .filter((r) => r.kind === kind);
}

async function loggedIn(tok, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.cspErrors = [];
  page.on("console", (m) => { if (/Content Security Policy/i.test(m.text())) page.cspErrors.push(m.text()); });
  await page.goto(`${base}/console`);
  assert.equal(new URL(page.url()).pathname, "/console/login");
  await page.getByLabel("Token").fill(tok);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL(`${base}/console`);
  await page.locator("#who").filter({ hasText: "(" }).waitFor();
  return { context, page };
}

async function card(page, id) {
  const c = page.locator(`#esc-list li[data-id="${id}"]`);
  await c.waitFor({ timeout: 10000 });
  return c;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "agentpolicy-console-"));
  audit = join(dir, "audit.jsonl");
  writeFileSync(join(dir, "tokens.json"), JSON.stringify({ tokens: [
    { name: "firm-agents", sha256: sha(TOKENS.agent), role: "agent", agents: ["research", "billing", "intake"] },
    { name: "oncall", sha256: sha(TOKENS.operator), role: "operator", agents: ["*"], routes: ["*"] },
    { name: "compliance", sha256: sha(TOKENS.auditor), role: "auditor" },
    { name: "partner-desk", sha256: sha(TOKENS.partner), role: "operator", agents: ["billing"], routes: ["supervising_partner"] },
  ] }));
  ({ child: server, port } = await startServer());
  base = `http://127.0.0.1:${port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill("SIGTERM");
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("an agent token cannot open the console, and the refusal is audited", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${base}/console/login`);
  await page.getByLabel("Token").fill(TOKENS.agent);
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/console/login") && r.request().method() === "POST"),
    page.getByRole("button", { name: "Log in" }).click(),
  ]);
  assert.equal(response.status(), 403);
  await assert.doesNotReject(page.getByRole("alert").filter({ hasText: "agent token cannot open" }).waitFor());
  assert.deepEqual(await context.cookies(), []);
  const refusal = records("refusal").find((r) => r.by === "firm-agents");
  assert.match(refusal.detail, /POST \/console\/login.*agent token may not open/);
  // A wrong token is refused too, as anonymous.
  await page.getByLabel("Token").fill("not-a-token");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("alert").filter({ hasText: "not in the service's tokens file" }).waitFor();
  assert.ok(records("refusal").some((r) => r.by === "anonymous" && /console\/login: unknown token/.test(r.detail)));
  await context.close();
});

test("an operator logs in with a HttpOnly, Secure, SameSite=Strict cookie and a strict CSP", async () => {
  const { context, page } = await loggedIn(TOKENS.operator);
  const [cookie] = await context.cookies();
  assert.equal(cookie.name, "agentpolicy_console");
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.secure, true);
  assert.equal(cookie.sameSite, "Strict");
  assert.equal(cookie.path, "/console");
  assert.ok(!page.url().includes(TOKENS.operator));
  const r = await page.request.get(`${base}/console`);
  assert.match(r.headers()["content-security-policy"], /default-src 'self'.*frame-ancestors 'none'/);
  assert.equal(r.headers()["x-frame-options"], "DENY");
  // The page's script cannot read the cookie.
  assert.equal(await page.evaluate(() => document.cookie), "");
  assert.deepEqual(page.cspErrors, []);
  await context.close();
});

test("an escalation raised through the API appears without a reload, and approving it resumes the waiting call with allow", async () => {
  const { context, page } = await loggedIn(TOKENS.operator);
  await page.evaluate(() => { window.__sameDocument = true; });
  const { session, id } = await escalate();
  const c = await card(page, id);
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "the page was not reloaded");
  const text = await c.innerText();
  for (const want of ["research", "search_case_law", "indemnity caps", "research/escalate", "human_review",
    "matter = M-1042", "user:alice@firm.example", "The memo needs the cap agreed in 2024.", "clean"]) {
    assert.ok(text.includes(want), `the card shows ${want}: ${text}`);
  }
  assert.match(text, /\d+ h \d+ min left, then denied/);
  await page.screenshot({ path: join(SHOTS, "console-desktop.png") });
  // The agent waits (long poll) while the operator decides.
  const waiting = apiCall("GET", `/v1/escalations/${id}/wait?timeout_ms=30000`, TOKENS.agent);
  // Approving without a reason is not possible.
  await c.getByRole("button", { name: "Approve" }).click();
  assert.equal(await c.locator("textarea").evaluate((t) => t.validity.valueMissing), true);
  await c.getByLabel(/Reason/).fill("Conflict check cleared with the partner.");
  await c.getByRole("button", { name: "Approve" }).click();
  const resumed = await waiting;
  assert.equal(resumed.json.status, "resolved", resumed.text);
  assert.equal(resumed.json.outcome, "allow", resumed.text);
  await c.getByRole("status").filter({ hasText: "resumes with allow" }).waitFor();
  const res = records("resolution").find((r) => r.escalation.id === id);
  assert.equal(res.by, "oncall");
  assert.equal(res.outcome, "allow");
  assert.match(res.why, /Conflict check cleared with the partner/);
  // The resolution is listed, and the session's trail shows the decision and its answer.
  await page.locator("#resolved li").filter({ hasText: id }).waitFor();
  await page.getByRole("button", { name: `Audit trail of ${session}` }).first().click()
    .catch(async () => { await page.getByLabel("Session").fill(session); await page.getByRole("button", { name: "Show" }).click(); });
  const trail = page.locator("#trail-out table");
  await trail.waitFor();
  const trailText = await trail.innerText();
  assert.match(trailText, /decision/);
  assert.match(trailText, /resolution/);
  assert.match(trailText, /Conflict check cleared/);
  await page.locator("#trail").screenshot({ path: join(SHOTS, "console-trail-desktop.png") });
  assert.deepEqual(page.cspErrors, []);
  await context.close();
});

test("rejecting in the page resumes the waiting call with deny and records the reason", async () => {
  const { context, page } = await loggedIn(TOKENS.operator);
  const { id } = await escalate("privileged memo", "Need the partner's notes.");
  const c = await card(page, id);
  const waiting = apiCall("GET", `/v1/escalations/${id}/wait?timeout_ms=30000`, TOKENS.agent);
  await c.getByLabel(/Reason/).fill("Outside the matter's scope.");
  await c.getByRole("button", { name: "Reject" }).click();
  const resumed = await waiting;
  assert.equal(resumed.json.outcome, "deny", resumed.text);
  await c.getByRole("status").filter({ hasText: "resumes with deny" }).waitFor();
  const res = records("resolution").find((r) => r.escalation.id === id);
  assert.equal(res.resolution, "reject");
  assert.match(res.why, /Outside the matter's scope/);
  await context.close();
});

test("the kill switch in the page stops the agent's next call, after a confirmation naming it", async () => {
  const { context, page } = await loggedIn(TOKENS.operator);
  const s = await apiCall("POST", "/v1/sessions", TOKENS.agent, { agent: "research", bind: { matter: "M-7" } });
  const before = await apiCall("POST", `/v1/sessions/${s.json.session}/decide`, TOKENS.agent,
    { tool: "search_case_law", args: { query: "x" }, confidence: 0.95 });
  assert.equal(before.json.outcome, "allow", before.text);
  await page.getByRole("button", { name: "Stop research" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  assert.match(await dialog.innerText(), /Every next call of agent research is denied/);
  // Cancel first: nothing stops.
  await dialog.getByRole("button", { name: "Cancel" }).click();
  assert.equal((await apiCall("POST", `/v1/sessions/${s.json.session}/decide`, TOKENS.agent,
    { tool: "search_case_law", args: { query: "x" }, confidence: 0.95 })).json.outcome, "allow");
  await page.getByRole("button", { name: "Stop research" }).click();
  await dialog.getByRole("button", { name: "Stop research" }).click();
  await page.locator('#agent-list li[data-name="research"]').filter({ hasText: "stopped (kill switch)" }).waitFor();
  const after = await apiCall("POST", `/v1/sessions/${s.json.session}/decide`, TOKENS.agent,
    { tool: "search_case_law", args: { query: "x" }, confidence: 0.95 });
  assert.equal(after.json.outcome, "deny", after.text);
  assert.ok(records("control").some((r) => r.by === "oncall" && /research/.test(r.detail || "")));
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(SHOTS, "console-agents-desktop.png") });
  await page.getByRole("button", { name: "Resume research" }).click();
  await dialog.getByRole("button", { name: "Resume research" }).click();
  await page.locator('#agent-list li[data-name="research"]').filter({ hasText: "running" }).waitFor();
  const again = await apiCall("POST", `/v1/sessions/${s.json.session}/decide`, TOKENS.agent,
    { tool: "search_case_law", args: { query: "x" }, confidence: 0.95 });
  assert.equal(again.json.outcome, "allow", again.text);
  // Every agent at once, after a confirmation naming them all.
  await page.getByRole("button", { name: "Stop every agent" }).click();
  assert.match(await dialog.innerText(), /every agent \(intake, research, billing\)/);
  await dialog.getByRole("button", { name: "Stop every agent" }).click();
  await page.getByText("Every agent is stopped").waitFor();
  const all = await apiCall("POST", `/v1/sessions/${s.json.session}/decide`, TOKENS.agent,
    { tool: "search_case_law", args: { query: "x" }, confidence: 0.95 });
  assert.equal(all.json.outcome, "deny", all.text);
  await page.getByRole("button", { name: "Resume every agent" }).click();
  await dialog.getByRole("button", { name: "Resume every agent" }).click();
  await page.getByRole("button", { name: "Stop every agent" }).waitFor();
  const resumed = await apiCall("POST", `/v1/sessions/${s.json.session}/decide`, TOKENS.agent,
    { tool: "search_case_law", args: { query: "x" }, confidence: 0.95 });
  assert.equal(resumed.json.outcome, "allow", resumed.text);
  await context.close();
});

test("an auditor sees no buttons, and its forged POST is refused and audited", async () => {
  const { id } = await escalate("auditor view", "Checking.");
  const { context, page } = await loggedIn(TOKENS.auditor);
  const c = await card(page, id);
  assert.equal(await c.locator("button:not(.quiet), textarea").count(), 0);
  await page.locator("#agent-list li").first().waitFor();
  assert.equal(await page.locator("#agent-list button, #all-controls button").count(), 0);
  assert.equal(await page.getByRole("button", { name: /Approve|Reject|Stop|Resume/ }).count(), 0);
  // Forged from the page with the session's own CSRF token: still refused by role.
  const forged = await page.evaluate(async (esc) => {
    const me = await (await fetch("/console/api/me")).json();
    const post = (path, body) => fetch(path, { method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": me.csrf }, body: JSON.stringify(body) }).then((r) => r.status);
    return [await post("/console/api/kill", {}), await post(`/console/api/escalations/${esc}/approve`, { reason: "forged" })];
  }, id);
  assert.deepEqual(forged, [403, 403]);
  const refusals = records("refusal").filter((r) => r.by === "compliance");
  assert.ok(refusals.some((r) => /POST \/console\/api\/kill: role `auditor` may not/.test(r.detail)), JSON.stringify(refusals));
  assert.ok(refusals.some((r) => /approve: role `auditor` may not/.test(r.detail)));
  assert.equal((await apiCall("GET", `/v1/escalations/${id}`, TOKENS.auditor)).json.status, "pending");
  await page.setViewportSize({ width: 390, height: 844 });
  await c.getByRole("button", { name: /Audit trail of/ }).scrollIntoViewIfNeeded();
  await page.evaluate(() => window.scrollBy(0, 300));
  await page.screenshot({ path: join(SHOTS, "console-auditor-phone.png") });
  await context.close();
});

test("a cross-site POST is refused: another site's form, a wrong Origin, a missing CSRF token", async () => {
  const { id } = await escalate("cross-site", "x");
  const { context, page } = await loggedIn(TOKENS.operator);
  await card(page, id);
  // 1. A page on another site posts a form at the console with the operator's browser.
  const evil = createServer((req, res) => {
    res.setHeader("Content-Type", "text/html");
    res.end(`<form id=f method=post action="${base}/console/api/kill" enctype="text/plain">
      <input name='{"agent":"research","x":"' value='"}'></form><script>document.getElementById("f").submit()</script>`);
  });
  await new Promise((ok) => evil.listen(0, "localhost", ok));
  const evilPage = await context.newPage();
  const [posted] = await Promise.all([
    evilPage.waitForResponse((r) => r.url().endsWith("/console/api/kill")),
    evilPage.goto(`http://localhost:${evil.address().port}/`),
  ]);
  assert.ok([401, 403].includes(posted.status()), `refused, got ${posted.status()}`);
  evil.close();
  // 2. From the console's own page without the CSRF token.
  const noToken = await page.evaluate(() => fetch("/console/api/kill", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" }).then((r) => r.status));
  assert.equal(noToken, 403);
  // 3. The cookie and the CSRF token, but another Origin (a client that is not a browser).
  const [cookie] = await context.cookies();
  const me = await page.evaluate(() => fetch("/console/api/me").then((r) => r.json()));
  const wrongOrigin = await fetch(`${base}/console/api/kill`, { method: "POST", headers: {
    Cookie: `${cookie.name}=${cookie.value}`, "X-CSRF-Token": me.csrf, Origin: "http://evil.example",
    "Content-Type": "application/json" }, body: "{}" });
  assert.equal(wrongOrigin.status, 403);
  // Nothing was stopped, and each refusal is in the audit log.
  const s = await apiCall("POST", "/v1/sessions", TOKENS.agent, { agent: "research", bind: { matter: "M-9" } });
  const still = await apiCall("POST", `/v1/sessions/${s.json.session}/decide`, TOKENS.agent,
    { tool: "search_case_law", args: { query: "x" }, confidence: 0.95 });
  assert.equal(still.json.outcome, "allow", still.text);
  const refusals = records("refusal").map((r) => r.detail);
  assert.ok(refusals.some((d) => /POST \/console\/api\/kill: (no console session|cross-site)/.test(d)), refusals.join("\n"));
  assert.ok(refusals.some((d) => /POST \/console\/api\/kill: the console's CSRF token is missing/.test(d)));
  assert.ok(refusals.some((d) => /POST \/console\/api\/kill: cross-site request: `Origin: http:\/\/evil.example`/.test(d)));
  await context.close();
});

test("logout ends the session: the old cookie opens nothing", async () => {
  const { context, page } = await loggedIn(TOKENS.operator);
  const [cookie] = await context.cookies();
  await page.getByRole("button", { name: "Log out" }).click();
  await page.waitForURL(`${base}/console/login`);
  assert.deepEqual(await context.cookies(), []);
  const replay = await fetch(`${base}/console/api/state`, { headers: { Cookie: `${cookie.name}=${cookie.value}` } });
  assert.equal(replay.status, 401);
  await context.close();
});

test("the main views at phone width", async () => {
  const { id } = await escalate("phone view", "Checking on a phone.");
  const { context, page } = await loggedIn(TOKENS.operator, { width: 390, height: 844 });
  const c = await card(page, id);
  // Nothing wider than the screen.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`);
  await c.scrollIntoViewIfNeeded();
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(SHOTS, "console-phone.png") });
  await page.locator("#agents").scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(SHOTS, "console-agents-phone.png") });
  // Keyboard only: the reason field and the buttons are reachable with Tab.
  await c.getByLabel(/Reason/).focus();
  await page.keyboard.type("Approved from the keyboard.");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Approve");
  await page.keyboard.press("Enter");
  await c.getByRole("status").filter({ hasText: "resumes with allow" }).waitFor();
  await context.close();
});

test("escalations are filtered by route, and an operator sees and controls only its scope", async () => {
  const { id } = await escalate("route filter", "Filtering.");
  const { context, page } = await loggedIn(TOKENS.operator);
  await card(page, id);
  await page.getByLabel("Route").selectOption("supervising_partner");
  await page.locator(`#esc-list li[data-id="${id}"]`).waitFor({ state: "detached" });
  await page.getByLabel("Route").selectOption("human_review");
  await card(page, id);
  await context.close();
  // The partners' desk: route supervising_partner, agent billing only.
  const desk = await loggedIn(TOKENS.partner);
  await desk.page.locator("#agent-list li").first().waitFor();
  assert.equal(await desk.page.locator(`#esc-list li[data-id="${id}"]`).count(), 0);
  assert.deepEqual(await desk.page.locator("#agent-list button, #all-controls button").allInnerTexts(), ["Stop billing"]);
  // Its POST outside its scope is refused by the API's own check, and audited.
  const refused = await desk.page.evaluate(async (esc) => {
    const me = await (await fetch("/console/api/me")).json();
    const post = (path, body) => fetch(path, { method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": me.csrf }, body: JSON.stringify(body) }).then((r) => r.status);
    return [await post("/console/api/kill", { agent: "research" }), await post(`/console/api/escalations/${esc}/approve`, { reason: "not mine" })];
  }, id);
  assert.deepEqual(refused, [403, 403]);
  assert.ok(records("refusal").some((r) => r.by === "partner-desk" && /console\/api\/kill: agent `research` is not in the token's scope/.test(r.detail)));
  await desk.context.close();
});

/** axe-core's WCAG 2 A and AA rules on the page as it is; the violations, described. */
async function accessibilityViolations(page) {
  // Injected through the DevTools protocol (page.evaluate), which the page's CSP does not
  // govern; the page itself still runs under it.
  await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, {
    runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
  }));
  return result.violations.map((v) => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

test("the pages pass axe-core's WCAG 2.1 A and AA checks, for an operator and an auditor, on desktop and phone", async () => {
  const { id } = await escalate("accessibility", "Checking the page.");
  for (const [tok, viewport] of [[TOKENS.operator, { width: 1280, height: 800 }], [TOKENS.auditor, { width: 390, height: 844 }]]) {
    const { context, page } = await loggedIn(tok, viewport);
    await card(page, id);
    await page.locator("#agent-list li").first().waitFor();
    assert.deepEqual(await accessibilityViolations(page), []);
    await context.close();
  }
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${base}/console/login`);
  assert.deepEqual(await accessibilityViolations(page), []);
  await context.close();
});
