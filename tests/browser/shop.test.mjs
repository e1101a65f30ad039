// The shop example (crates/sessiond-http/examples/shop.rs) in Debian's
// Chromium driven by playwright-core: a visitor's cart before sign-in, kept
// by signing in, gone at sign-out; and a crawler that only reads pages
// starts no session. Started by crates/sessiond-http/tests/browser.rs, which
// runs the example on 127.0.0.1:0 and stops it afterwards:
//
//   BASE_URL        the shop (development mode: cookie `sessiond`)
//   ARTIFACTS_DIR   where failure screenshots go
//   TEST_CHROMIUM   the browser (/usr/bin/chromium)
//
// Exits 0 when all pass; otherwise prints each failure and exits 1. The whole
// run is bounded (RUN_TIMEOUT_MS, 60 s by default), and so is every step.

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
const ARTIFACTS_DIR = required('ARTIFACTS_DIR');
const CHROMIUM = required('TEST_CHROMIUM');
const RUN_TIMEOUT_MS = Number(process.env.RUN_TIMEOUT_MS || 60_000);
const STEP_TIMEOUT_MS = 10_000;
const COOKIE = 'sessiond';

fs.mkdirSync(ARTIFACTS_DIR, { recursive: true });

let browser;
const watchdog = setTimeout(async () => {
  console.error(`FAIL: the shop browser tests did not finish within ${RUN_TIMEOUT_MS} ms`);
  await Promise.race([browser?.close(), new Promise((r) => setTimeout(r, 3000))]).catch(() => {});
  process.exit(1);
}, RUN_TIMEOUT_MS);
watchdog.unref();

/** A plain HTTP request, as a crawler or a replaying attacker sends it: no
 * browser, no cookie jar. Answers status, headers and body. */
function request(method, pathname, { cookie } = {}) {
  return new Promise((resolve, reject) => {
    const headers = { 'user-agent': 'ExampleBot/1.0 (+https://bot.example)' };
    if (cookie) headers.cookie = `${COOKIE}=${cookie}`;
    const req = http.request(`${BASE_URL}${pathname}`, { method, headers, timeout: STEP_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${pathname} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** How many session records the shop's store holds (live or ended). */
async function storeRecords() {
  const reply = await request('GET', '/debug/store-records');
  assert.equal(reply.status, 200, reply.body);
  return JSON.parse(reply.body).records;
}

async function sessionCookie(context) {
  return (await context.cookies()).find((c) => c.name === COOKIE)?.value;
}

async function cartItems(page) {
  return page.locator('#cart li').allTextContents();
}

/** Clicks `button` and waits for the page the POST redirects to. */
async function submit(page, button) {
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), button.click()]);
  assert.equal(new URL(page.url()).pathname, '/', `after the POST the page is ${page.url()}`);
}

let openPages = [];

const scenarios = [
  {
    name: 'a crawler that only reads pages starts no session',
    fn: async () => {
      assert.equal(await storeRecords(), 0, 'the shop must start with an empty store');
      for (const [method, pathname] of [
        ['GET', '/'],
        ['GET', '/?page=2'],
        ['HEAD', '/'],
        ['GET', '/robots.txt'],
      ]) {
        const reply = await request(method, pathname);
        assert.ok(reply.status < 500, `${method} ${pathname}: ${reply.status}`);
        assert.equal(reply.headers['set-cookie'], undefined, `${method} ${pathname} set a cookie`);
      }
      const home = await request('GET', '/');
      assert.match(home.body, /Not signed in/);
      assert.equal(await storeRecords(), 0, 'page reads wrote to the session store');
    },
  },
  {
    name: 'a visitor fills a cart, signs in keeping it, signs out losing it',
    fn: async () => {
      const context = await browser.newContext({ baseURL: BASE_URL });
      context.setDefaultTimeout(STEP_TIMEOUT_MS);
      context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
      const page = await context.newPage();
      openPages.push(page);

      await page.goto('/');
      assert.match(await page.locator('#who').textContent(), /Not signed in/);
      assert.deepEqual(await cartItems(page), []);
      assert.equal(await sessionCookie(context), undefined, 'reading the page started a session');
      const before = await storeRecords();

      // The first write starts an anonymous session; the second uses it
      // (and its CSRF token, which the page now renders).
      await page.locator('input[name=item]').fill('socks');
      await submit(page, page.getByRole('button', { name: 'Add to cart' }));
      const visitor = await sessionCookie(context);
      assert.ok(visitor, 'adding to the cart set no session cookie');
      await page.locator('input[name=item]').fill('hat');
      await submit(page, page.getByRole('button', { name: 'Add to cart' }));
      assert.deepEqual(await cartItems(page), ['socks', 'hat']);
      assert.equal(await sessionCookie(context), visitor, 'a second write must not start another session');
      assert.match(await page.locator('#who').textContent(), /Not signed in/);
      assert.equal(await storeRecords(), before + 1);

      // Sign in: the cart stays, under a new cookie.
      await page.locator('input[name=username]').fill('alice');
      await page.locator('input[name=password]').fill('shop');
      await submit(page, page.getByRole('button', { name: 'Sign in' }));
      assert.match(await page.locator('#who').textContent(), /Signed in as alice/);
      assert.deepEqual(await cartItems(page), ['socks', 'hat']);
      const alice = await sessionCookie(context);
      assert.ok(alice, 'no session cookie after sign-in');
      assert.notEqual(alice, visitor, 'signing in must change the cookie');

      // The visitor's token, replayed, is dead: no cart, nobody signed in.
      const replay = await request('GET', '/', { cookie: visitor });
      assert.equal(replay.status, 200);
      assert.match(replay.body, /Not signed in/);
      assert.doesNotMatch(replay.body, /<li>/, "the replayed token still shows the cart");
      const signedIn = await request('GET', '/', { cookie: alice });
      assert.match(signedIn.body, /Signed in as <b>alice<\/b>/);
      assert.match(signedIn.body, /<li>socks<\/li>/);

      // Sign out: the session ends with its cart, and the cookie goes.
      await submit(page, page.getByRole('button', { name: 'Sign out' }));
      assert.match(await page.locator('#who').textContent(), /Not signed in/);
      assert.deepEqual(await cartItems(page), []);
      assert.equal(await sessionCookie(context), undefined, 'the cookie survived sign-out');
      const after = await request('GET', '/', { cookie: alice });
      assert.doesNotMatch(after.body, /<li>/, "the cart outlived sign-out");
      assert.match(after.body, /Not signed in/);
      await context.close();
    },
  },
];

let passed = 0;
let failed = 0;
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
console.log(`chromium ${browser.version()}; shop at ${BASE_URL}`);

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
      const file = path.join(ARTIFACTS_DIR, `shop-failed-${index + 1}-${n + 1}.png`);
      console.error(`  page ${n + 1} was at ${page.url()}; screenshot ${file}`);
      await page.screenshot({ path: file, fullPage: true, timeout: 5000 }).catch(() => {});
    }
  } finally {
    for (const page of openPages) await page.context().close().catch(() => {});
  }
}

await browser.close();
clearTimeout(watchdog);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
