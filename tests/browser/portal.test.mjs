// Browser tests of the sessiond portal, in Debian's Chromium driven by
// playwright-core. Started by crates/sessiond/tests/browser.rs, which runs
// two sessiond servers in development mode and creates the users first:
//
//   BASE_URL        the main server (default policy)
//   IDLE_BASE_URL   a server with a short idle timeout (IDLE_TIMEOUT_MS)
//   TEST_USERS      JSON {"alice": "password", ...}: alice, bob and carol on
//                   the main server, dave on the idle one
//   ARTIFACTS_DIR   where login.png, account.png and failure screenshots go
//   TEST_CHROMIUM   the browser (/usr/bin/chromium)
//
// Every scenario runs in fresh browser contexts (one context = one device).
// Exits 0 when all pass; otherwise prints each failure and exits 1. The whole
// run is bounded (RUN_TIMEOUT_MS, 100 s by default), and so is every step.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { chromium } from 'playwright-core';

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`FAIL: environment variable ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const BASE_URL = required('BASE_URL').replace(/\/$/, '');
const IDLE_BASE_URL = required('IDLE_BASE_URL').replace(/\/$/, '');
const IDLE_TIMEOUT_MS = Number(required('IDLE_TIMEOUT_MS'));
const ARTIFACTS_DIR = required('ARTIFACTS_DIR');
const CHROMIUM = required('TEST_CHROMIUM');
const USERS = JSON.parse(required('TEST_USERS'));
const RUN_TIMEOUT_MS = Number(process.env.RUN_TIMEOUT_MS || 100_000);
const STEP_TIMEOUT_MS = 10_000;
const COOKIE = 'sessiond';

fs.mkdirSync(ARTIFACTS_DIR, { recursive: true });

let browser;
const watchdog = setTimeout(async () => {
  console.error(`FAIL: the browser tests did not finish within ${RUN_TIMEOUT_MS} ms`);
  await Promise.race([browser?.close(), new Promise((r) => setTimeout(r, 3000))]).catch(() => {});
  process.exit(1);
}, RUN_TIMEOUT_MS);
watchdog.unref();

// ---------------------------------------------------------------- helpers

/** Pages opened by the running scenario: screenshotted if it fails, closed
 * after it unless kept for a later scenario. */
let openPages = [];
const keptPages = new Set();

async function device(base = BASE_URL, { keep = false } = {}) {
  const context = await browser.newContext({ baseURL: base });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  const page = await context.newPage();
  openPages.push(page);
  if (keep) keptPages.add(page);
  return { context, page };
}

const pathOf = (page) => new URL(page.url()).pathname;

function isPost(response, pathname) {
  return response.request().method() === 'POST' && new URL(response.url()).pathname === pathname;
}

/** Clicks `button` and returns the answer to the POST to `pathname` it sends. */
async function submit(page, button, pathname) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => isPost(r, pathname)),
    button.click(),
  ]);
  await page.waitForLoadState('load');
  return response;
}

async function sessionCookie(context) {
  return (await context.cookies()).find((c) => c.name === COOKIE);
}

/** Fills and sends the login form; returns the POST's response. */
async function signIn(page, user, password, { remember = false } = {}) {
  await page.goto('/login');
  const form = page.locator('form[method=post][action="/login"]');
  await form.locator('input[name=username]').fill(user);
  await form.locator('input[name=password]').fill(password);
  if (remember) await form.locator('input[name=remember_me][type=checkbox]').check();
  return submit(page, form.getByRole('button', { name: 'Sign in' }), '/login');
}

/** Signs in and checks that the account page shows up. */
async function signInOk(page, user, password, options) {
  const response = await signIn(page, user, password, options);
  assert.equal(response.status(), 303, `POST /login as ${user}: status`);
  await page.waitForURL((u) => u.pathname === '/account');
  await expectAccountPage(page);
}

async function expectAccountPage(page) {
  assert.equal(pathOf(page), '/account', 'expected the account page');
  assert.equal((await page.locator('h1').innerText()).trim(), 'Your sessions');
}

/** The page was sent to the login form (with `rd`, when given). */
async function expectLoginPage(page, rd) {
  await page.waitForURL((u) => u.pathname === '/login');
  const url = new URL(page.url());
  if (rd !== undefined) assert.equal(url.searchParams.get('rd'), rd, `rd of ${page.url()}`);
  await page.locator('form[action="/login"] input[name=username]').waitFor();
}

const sessionItems = (page) => page.locator('ul#sessions > li.session');

async function sessionCount(page) {
  await page.goto('/account');
  await expectAccountPage(page);
  return sessionItems(page).count();
}

/** Fills a re-authentication field when the form asks for one. */
async function fillPasswordIfAsked(form, password) {
  const field = form.locator('input[name=password]');
  if ((await field.count()) > 0) await field.fill(password);
}

/** A GET of /auth/verify with this context's cookies. */
async function verify(context) {
  const response = await context.request.get('/auth/verify', { maxRedirects: 0 });
  return { status: response.status(), subject: response.headers()['x-auth-subject'] };
}

/** A tiny "attacker" site on another loopback address or port. */
async function attackerSite(host, html) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  return { url: `http://${host}:${server.address().port}/`, close: () => server.close() };
}

// -------------------------------------------------------------- scenarios

const scenarios = [];
const scenario = (name, fn) => scenarios.push({ name, fn });

const [ALICE, BOB, CAROL, DAVE] = ['alice', 'bob', 'carol', 'dave'];
for (const user of [ALICE, BOB, CAROL, DAVE]) {
  if (!USERS[user]) {
    console.error(`FAIL: TEST_USERS has no password for ${user}`);
    process.exit(2);
  }
}

// Shared between the alice scenarios, which run in order.
let alice;

scenario('the login page refuses a wrong password, then signs in to the account page', async () => {
  alice = await device(BASE_URL, { keep: true });
  const { page, context } = alice;
  await page.goto('/login');
  const form = page.locator('form[method=post][action="/login"]');
  await form.waitFor();
  assert.equal(await form.locator('input[name=csrf_token][type=hidden]').count(), 1, 'hidden csrf_token');
  assert.ok(await form.locator('input[name=csrf_token]').inputValue(), 'csrf_token has a value');
  assert.equal(await form.locator('input[name=remember_me][type=checkbox]').getAttribute('value'), 'on');
  assert.ok(
    (await context.cookies()).some((c) => c.name === 'sessiond-login'),
    'GET /login sets the pre-session CSRF cookie sessiond-login',
  );
  const sheets = await page.evaluate(() => [...document.styleSheets].map((s) => [s.href, s.cssRules.length]));
  assert.ok(sheets.length > 0, 'the login page has a stylesheet');
  for (const [href, rules] of sheets) assert.ok(rules > 0, `stylesheet ${href} loaded (${rules} rules)`);
  await page.screenshot({ path: path.join(ARTIFACTS_DIR, 'login.png'), fullPage: true });

  const wrong = await signIn(page, ALICE, `${USERS[ALICE]}-wrong`);
  assert.equal(wrong.status(), 401, 'wrong password: status');
  assert.equal(pathOf(page), '/login', 'wrong password: stays on /login');
  assert.equal((await page.getByRole('alert').innerText()).trim(), 'Wrong username or password.');
  assert.equal(await sessionCookie(context), undefined, 'wrong password: no session cookie');

  await signInOk(page, ALICE, USERS[ALICE]);
  assert.equal(await sessionItems(page).count(), 1, 'one session after the first login');
  assert.equal((await page.locator('li.session .current').innerText()).trim(), 'This device');
  const cookie = await sessionCookie(context);
  assert.ok(cookie, `a ${COOKIE} cookie after login`);
  assert.equal(cookie.httpOnly, true, 'cookie is HttpOnly');
  assert.equal(cookie.sameSite, 'Lax', 'cookie is SameSite=Lax');
  assert.equal(cookie.path, '/', 'cookie path');
  assert.deepEqual(await verify(context), { status: 200, subject: ALICE }, '/auth/verify after login');
});

scenario('a second device shows up, and revoking it signs it out on its next request', async () => {
  const other = await device();
  await signInOk(other.page, ALICE, USERS[ALICE]);

  const { page } = alice;
  assert.equal(await sessionCount(page), 2, 'two devices listed');
  assert.equal(await page.locator('li.session .current').count(), 1, 'exactly one current session');
  await page.screenshot({ path: path.join(ARTIFACTS_DIR, 'account.png'), fullPage: true });

  const item = page.locator('ul#sessions > li.session:not(:has(.current))');
  const id = await item.getAttribute('data-session-id');
  assert.ok(id, 'the other session has a data-session-id');
  const form = page.locator(`form[action="/account/sessions/${id}/revoke"]`);
  await fillPasswordIfAsked(form, USERS[ALICE]);
  const response = await submit(
    page,
    form.getByRole('button', { name: 'Sign out this device' }),
    `/account/sessions/${id}/revoke`,
  );
  assert.equal(response.status(), 303, 'revoke: status');
  await page.waitForURL((u) => u.pathname === '/account');
  await expectAccountPage(page);
  assert.equal(await sessionItems(page).count(), 1, 'one device left after the revoke');
  assert.equal(await page.locator(`li.session[data-session-id="${id}"]`).count(), 0, 'revoked one gone');

  await other.page.goto('/account');
  await expectLoginPage(other.page, '/account');
  assert.equal((await verify(other.context)).status, 401, '/auth/verify on the revoked device');
  await other.context.close();
});

scenario('remember me gives a persistent cookie; without it the cookie ends with the browser', async () => {
  const remembered = await device();
  await signInOk(remembered.page, ALICE, USERS[ALICE], { remember: true });
  const persistent = await sessionCookie(remembered.context);
  assert.ok(persistent, 'cookie with remember me');
  assert.ok(
    persistent.expires > Date.now() / 1000,
    `remember me: a persistent cookie expiring in the future, got expires=${persistent.expires}`,
  );
  await remembered.context.close();

  const plain = await device();
  await signInOk(plain.page, ALICE, USERS[ALICE]);
  const session = await sessionCookie(plain.context);
  assert.ok(session, 'cookie without remember me');
  assert.equal(session.expires, -1, 'without remember me: a browser-session cookie (no Expires/Max-Age)');
  await plain.context.close();
});

scenario('sign out ends the session and clears the cookie', async () => {
  const { page, context } = alice;
  await page.goto('/account');
  await expectAccountPage(page);
  const before = await sessionCookie(context);
  const form = page.locator('form[action="/logout"]');
  const response = await submit(page, form.getByRole('button', { name: 'Sign out', exact: true }), '/logout');
  assert.equal(response.status(), 303, 'logout: status');
  assert.equal(await response.headerValue('clear-site-data'), '"cache", "cookies", "storage"', 'logout: Clear-Site-Data');
  await expectLoginPage(page);
  assert.equal(await sessionCookie(context), undefined, 'no session cookie after logout');

  // The server forgot the session too: the old cookie value is refused.
  const replay = await fetch(`${BASE_URL}/auth/verify`, {
    headers: { cookie: `${COOKIE}=${before.value}` },
    redirect: 'manual',
  });
  assert.equal(replay.status, 401, '/auth/verify with the signed-out cookie value');

  await page.goto('/account');
  await expectLoginPage(page, '/account');
  await context.close();
});

scenario('changing the password signs out the other devices', async () => {
  const mine = await device();
  const other = await device();
  await signInOk(mine.page, BOB, USERS[BOB]);
  await signInOk(other.page, BOB, USERS[BOB]);
  assert.equal(await sessionCount(mine.page), 2, 'two devices before the change');
  const before = await sessionCookie(mine.context);

  const newPassword = `${USERS[BOB]}-new`;
  const form = mine.page.locator('form[action="/account/password"]');
  await form.locator('input[name=current_password]').fill(USERS[BOB]);
  await form.locator('input[name=new_password]').fill(newPassword);
  const response = await submit(
    mine.page,
    form.getByRole('button', { name: 'Change password' }),
    '/account/password',
  );
  assert.equal(response.status(), 303, 'change password: status');
  await mine.page.waitForURL((u) => u.pathname === '/account');
  await expectAccountPage(mine.page);
  assert.equal(await sessionItems(mine.page).count(), 1, 'only this device after the change');
  const after = await sessionCookie(mine.context);
  assert.ok(after, 'still a session cookie after the change');
  assert.notEqual(after.value, before.value, 'the session was rotated (new token)');

  await other.page.goto('/account');
  await expectLoginPage(other.page, '/account');

  const fresh = await device();
  const old = await signIn(fresh.page, BOB, USERS[BOB]);
  assert.equal(old.status(), 401, 'the old password: status');
  assert.equal((await fresh.page.getByRole('alert').innerText()).trim(), 'Wrong username or password.');
  await signInOk(fresh.page, BOB, newPassword);
  for (const d of [mine, other, fresh]) await d.context.close();
});

scenario('a form posted from another origin is refused with 403', async () => {
  const mine = await device();
  const other = await device();
  await signInOk(mine.page, CAROL, USERS[CAROL]);
  await signInOk(other.page, CAROL, USERS[CAROL]);
  assert.equal(await sessionCount(mine.page), 2, 'two devices before the attack');
  // The attacker page even carries the real CSRF token, so only the origin
  // check can stop it.
  const form = mine.page.locator('form[action="/account/sessions/revoke-others"]');
  const token = await form.locator('input[name=csrf_token]').inputValue();
  const target = `${BASE_URL}/account/sessions/revoke-others`;
  const html = `<!doctype html><title>win a prize</title>
<form method="post" action="${target}">
<input type="hidden" name="csrf_token" value="${token}">
<input type="hidden" name="password" value="${USERS[CAROL]}">
</form>
<script>document.forms[0].submit()</script>`;

  // 127.0.0.1 on another port is another origin of the same site (the
  // SameSite=Lax cookie goes along); 127.0.0.2 is another site.
  for (const host of ['127.0.0.1', '127.0.0.2']) {
    const site = await attackerSite(host, html);
    try {
      const [response] = await Promise.all([
        mine.page.waitForResponse((r) => isPost(r, '/account/sessions/revoke-others')),
        // The page submits itself while loading: wait only for its commit.
        mine.page.goto(site.url, { waitUntil: 'commit' }),
      ]);
      await mine.page.waitForLoadState('load');
      assert.equal(response.status(), 403, `POST from ${site.url}: status`);
      assert.match((await response.headerValue('content-type')) ?? '', /^application\/problem\+json/);
      const body = await response.json();
      assert.equal(body.code, 'cross_site_request', `POST from ${site.url}: problem code`);
    } finally {
      site.close();
    }
    assert.equal(await sessionCount(mine.page), 2, `both devices still signed in after ${host}`);
    await other.page.goto('/account');
    await expectAccountPage(other.page);
  }
  for (const d of [mine, other]) await d.context.close();
});

scenario('an idle session sends the user back to the login page', async () => {
  const idle = await device(IDLE_BASE_URL);
  await signInOk(idle.page, DAVE, USERS[DAVE]);
  assert.equal((await verify(idle.context)).status, 200, 'signed in before the idle period');
  // Nothing is sent for longer than the idle timeout, so nothing can renew it.
  await idle.page.waitForTimeout(IDLE_TIMEOUT_MS + 2000);
  await idle.page.goto('/account');
  await expectLoginPage(idle.page, '/account');
  assert.equal((await verify(idle.context)).status, 401, '/auth/verify after the idle timeout');
  await idle.context.close();
});

// ------------------------------------------------------------------- main

let passed = 0;
let failed = 0;
const started = Date.now();
browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ],
  timeout: 30_000,
});
console.log(`chromium ${browser.version()}; portal at ${BASE_URL}, idle server at ${IDLE_BASE_URL}`);

for (const [index, { name, fn }] of scenarios.entries()) {
  openPages = [];
  const t0 = Date.now();
  try {
    await fn();
    passed += 1;
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (error) {
    failed += 1;
    console.log(`FAIL ${name} (${Date.now() - t0} ms)`);
    console.error(`FAIL ${name}:\n  ${String(error?.stack ?? error).replace(/\n/g, '\n  ')}`);
    for (const [n, page] of openPages.entries()) {
      if (page.isClosed()) continue;
      const file = path.join(ARTIFACTS_DIR, `failed-${index + 1}-${n + 1}.png`);
      console.error(`  page ${n + 1} was at ${page.url()}; screenshot ${file}`);
      await page.screenshot({ path: file, fullPage: true, timeout: 5000 }).catch(() => {});
    }
  } finally {
    for (const page of openPages) {
      if (!keptPages.has(page)) await page.context().close().catch(() => {});
    }
  }
}

await browser.close();
clearTimeout(watchdog);
console.log(`browser tests took ${Date.now() - started} ms; artifacts in ${ARTIFACTS_DIR}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
