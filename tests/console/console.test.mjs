// Browser tests of the console: headless Chromium (Debian's package) driven by playwright-core
// against a real server (.ci/console starts it on a loopback port with a fresh SQLite
// database). Every scenario is asserted; a browser that cannot start is a failure, never a skip.
//
//   CONSOLE_BASE_URL  the server          CONSOLE_ADMIN  the admin client's JSON (from the CLI)
//   CONSOLE_BIN       eap-referrals       CONSOLE_SHOTS  where screenshots go (docs/console)
//   CONSOLE_WORK      a scratch folder for downloads

import assert from 'node:assert/strict';
import {execFileSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {chromium} from 'playwright-core';

const BASE = process.env.CONSOLE_BASE_URL;
const ADMIN = JSON.parse(fs.readFileSync(process.env.CONSOLE_ADMIN, 'utf8'));
const BIN = process.env.CONSOLE_BIN;
const SHOTS = process.env.CONSOLE_SHOTS;
const WORK = process.env.CONSOLE_WORK;
const DESKTOP = {width: 1280, height: 900};
const PHONE = {width: 390, height: 844};
const XSS_NAME = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">Evil Ltd';

// Desktop views shot by a scenario, in the state it left (a filtered search, a verdict).
const SCENARIO_SHOTS = new Set(['auditor-access-log', 'auditor-charts', 'auditor-checkpoints', 'auditor-export',
  'admin-unroutable', 'admin-clients', 'admin-employers']);

let failures = 0;
async function scenario(name, f) {
  const started = Date.now();
  try {
    await f();
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    failures += 1;
    console.log(`FAIL ${name}\n${e.stack || e}`);
  }
}

// --- the API, from outside the browser, to arrange each scenario --------------------------

async function api(method, p, token, body, headers = {}) {
  const resp = await fetch(BASE + p, {
    method,
    headers: {
      ...(token ? {Authorization: `Bearer ${token}`} : {}),
      ...(body !== undefined ? {'Content-Type': 'application/json'} : {}),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  return {status: resp.status, headers: resp.headers, body: text ? JSON.parse(text) : null};
}

async function ok(method, p, token, body, want = [200, 201], headers) {
  const r = await api(method, p, token, body, headers);
  assert.ok([want].flat().includes(r.status), `${method} ${p}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

async function tokenResponse(id, secret) {
  return fetch(`${BASE}/oauth/token`, {
    method: 'POST',
    headers: {Authorization: 'Basic ' + Buffer.from(`${id}:${secret}`).toString('base64'),
      'Content-Type': 'application/x-www-form-urlencoded'},
    body: 'grant_type=client_credentials',
  });
}

async function token(c) {
  const resp = await tokenResponse(c.client_id, c.client_secret);
  assert.equal(resp.status, 200, `token for ${c.client_id}`);
  return (await resp.json()).access_token;
}

const PROVIDER = {services: ['counselling'], languages: ['en'], regions: ['GB'], modalities: ['video'], capacity: 10};
const REFERRAL = {
  service_type: 'counselling', urgency: 'routine', modality: 'video', language: 'en', region: 'GB-ENG',
  employee_ref: 'EMP-0001',
  contact: {preferred_name: 'Sam', phone: '+447700900123', email: 'sam@example.org',
    best_time_to_contact: 'weekday evenings', voicemail_consent: true},
};

async function arrange() {
  const admin = await token(ADMIN);
  const acme = await ok('POST', '/v1/admin/employers', admin, {name: 'Acme Health'});
  await ok('POST', '/v1/admin/employers', admin, {name: XSS_NAME});
  const harbour = await ok('POST', '/v1/admin/providers', admin, {...PROVIDER, name: 'Harbour Counselling'});
  const lumiere = await ok('POST', '/v1/admin/providers', admin, {...PROVIDER, name: 'Lumière Conseil', languages: ['fr', 'en'], regions: ['FR']});
  const inhouse = await ok('POST', '/v1/admin/providers', admin, {...PROVIDER, name: 'In-house Wellbeing'});
  const borealis = await ok('POST', '/v1/admin/employers', admin, {name: 'Borealis Ltd', affiliated_provider_ids: [inhouse.id]});
  await ok('POST', '/v1/admin/contracts', admin, {employer_id: acme.id, provider_id: harbour.id, priority: 1});
  await ok('POST', '/v1/admin/contracts', admin, {employer_id: borealis.id, provider_id: lumiere.id, priority: 1});
  await ok('POST', '/v1/admin/contracts', admin, {employer_id: borealis.id, provider_id: inhouse.id, priority: 2});
  const client = (body) => ok('POST', '/v1/admin/clients', admin, body);
  const auditor = await client({name: 'Internal audit', role: 'auditor'});
  const portalA = await client({name: 'Acme portal', role: 'hr_portal', employer_id: acme.id});
  const portalB = await client({name: 'Borealis portal', role: 'hr_portal', employer_id: borealis.id});
  const provider = await client({name: 'Harbour system', role: 'provider', provider_id: harbour.id});

  // A referral offered to Harbour, accepted, and its contact details read once.
  const portalAToken = await token(portalA);
  const referral = await ok('POST', '/v1/referrals', portalAToken, REFERRAL, 201, {'Idempotency-Key': crypto.randomUUID()});
  const providerToken = await token(provider);
  const offered = await api('GET', `/v1/provider/referrals/${referral.id}`, providerToken);
  assert.equal(offered.status, 200, JSON.stringify(offered.body));
  await ok('POST', `/v1/provider/referrals/${referral.id}/accept`, providerToken, undefined, 200, {'If-Match': offered.headers.get('etag')});
  await ok('GET', `/v1/provider/referrals/${referral.id}/contact`, providerToken);
  // A provider webhook endpoint nobody listens at: its health shows in the admin view.
  await ok('POST', '/v1/provider/webhooks', providerToken, {url: 'http://127.0.0.1:9/hooks', description: 'Case system (test)'}, 201);
  // An operator alert endpoint (nobody listens there either): its own table, without a provider.
  await ok('POST', '/v1/admin/webhooks', admin, {url: 'http://127.0.0.1:9/alerts', description: 'On-call pager (test)'}, 201);

  // A referral no contracted provider can take: Lumière serves France only (a region an admin
  // may override by hand), In-house is affiliated with Borealis (which nobody may override).
  const portalBToken = await token(portalB);
  const stranded = await ok('POST', '/v1/referrals', portalBToken, REFERRAL, 201, {'Idempotency-Key': crypto.randomUUID()});
  const queue = await ok('GET', '/v1/admin/unroutable', admin);
  assert.ok(queue.items.some((r) => r.id === stranded.id), 'the second referral is unroutable');

  // Known refusals: the Borealis portal tries the auditor's API twice.
  for (let i = 0; i < 2; i++) assert.equal((await api('GET', '/v1/audit/events', portalBToken)).status, 403);

  // Wait until the contact read is sealed (checkpoints every second).
  const auditorToken = await token(auditor);
  for (let i = 0; ; i++) {
    const page = await ok('GET', `/v1/audit/events?action=contact.read&resource_id=${referral.id}`, auditorToken);
    if (page.items.length === 1) break;
    assert.ok(i < 100, 'the contact read was not sealed in 20 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  return {admin, auditor, auditorToken, portalA, portalB, provider, referral, stranded, lumiere, inhouse, acme, harbour, borealis};
}

// --- the browser ------------------------------------------------------------------------------

async function browser() {
  try {
    return await chromium.launch({executablePath: '/usr/bin/chromium', args: ['--no-sandbox']});
  } catch (e) {
    console.log(`FAIL Chromium did not start: ${e.message}`);
    process.exit(1);
  }
}

// A page that records every console error (a CSP violation is one) and every failed request.
async function open(b, viewport) {
  const context = await b.newContext({viewport, acceptDownloads: true});
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.errors = [];
  page.on('console', (m) => m.type() === 'error' && page.errors.push(m.text()));
  page.on('pageerror', (e) => page.errors.push(String(e)));
  await page.goto(`${BASE}/console/`);
  return page;
}

async function signIn(page, c) {
  await page.fill('#client-id', c.client_id);
  await page.fill('#client-secret', c.client_secret);
  await page.press('#client-secret', 'Enter');
}

async function tab(page, name) {
  await page.click(`nav#tabs button[data-view="${name}"]`);
}

async function shot(page, name) {
  await page.waitForTimeout(150);
  await page.screenshot({path: path.join(SHOTS, `${name}.png`), fullPage: true});
}

function noErrors(page) {
  // 4xx answers the page asked for on purpose (a refused Assign) log a console error in
  // Chromium; anything else, a CSP violation above all, is a failure.
  const real = page.errors.filter((e) => !/Failed to load resource: the server responded with a status of (401|403|409)/.test(e));
  assert.deepEqual(real, [], 'no console errors');
}

async function main() {
  fs.mkdirSync(SHOTS, {recursive: true});
  const world = await arrange();
  const b = await browser();

  await scenario('an auditor signs in and sees the role', async () => {
    const page = await open(b, DESKTOP);
    await shot(page, 'sign-in');
    await signIn(page, world.auditor);
    await page.waitForSelector('#role-badge:has-text("auditor")');
    assert.equal(await page.textContent('#client-label'), world.auditor.client_id);
    await page.close();
  });

  await scenario("an auditor filters the log to one referral's contact.read", async () => {
    const page = await open(b, DESKTOP);
    await signIn(page, world.auditor);
    await page.waitForSelector('#events');
    await page.waitForSelector('#f-action option[value="contact.read"]', {state: 'attached'});
    await page.fill('#f-resource', world.referral.id);
    await page.selectOption('#f-action', 'contact.read');
    await page.click('#view form button[type="submit"]');
    await page.waitForFunction((id) => {
      const rows = [...document.querySelectorAll('#events tbody tr')];
      return rows.length === 1 && rows[0].textContent.includes(id);
    }, world.referral.id);
    const cells = await page.$$eval('#events tbody tr td', (tds) => tds.map((td) => td.textContent));
    assert.ok(cells.includes('contact.read') && cells.includes(world.referral.id) && cells.includes('success'), cells.join('|'));
    assert.ok(cells.includes(world.provider.client_id), 'the provider is the actor');
    await shot(page, 'auditor-access-log');
    noErrors(page);
    await page.close();
  });

  await scenario('the charts render with the counts the log holds', async () => {
    const page = await open(b, DESKTOP);
    await signIn(page, world.auditor);
    await tab(page, 'Charts');
    await page.waitForSelector('figure[data-chart="timeline"] rect.bar');
    await page.waitForSelector('figure[data-chart="actors"]');
    const drawn = await page.$$eval('figure[data-chart="timeline"] rect.bar',
      (rs) => rs.map((r) => [r.dataset.key, Number(r.dataset.count)]));
    const chart = {success: 0, denied: 0, failure: 0};
    for (const [k, n] of drawn) chart[k] += n;
    const legend = Object.fromEntries(await page.$$eval('figure[data-chart="timeline"] .legend li',
      (lis) => lis.map((li) => [li.dataset.key, Number(li.querySelector('.total').textContent)])));
    assert.deepEqual(legend, chart, 'the legend totals the bars');
    // The same window listed by the search, counted here, up to the size the chart counted.
    const size = Number(await page.getAttribute('#charts', 'data-tree-size'));
    const from = await page.inputValue('#c-from');
    const to = await page.inputValue('#c-to');
    const events = await ok('GET', `/v1/audit/events?from=${from}:00Z&to=${to}:00Z&limit=1000`, world.auditorToken);
    const listed = {success: 0, denied: 0, failure: 0};
    for (const e of events.items) if (e.seq < size) listed[e.outcome] += 1;
    assert.deepEqual(chart, listed, `chart over ${size} sealed events`);
    assert.ok(chart.denied >= 2 && chart.success > 10, JSON.stringify(chart));
    // Refusals by actor: the Borealis portal's two.
    const actors = Object.fromEntries(await page.$$eval('figure[data-chart="actors"] rect.bar',
      (rs) => rs.map((r) => [r.dataset.key, Number(r.dataset.count)])));
    assert.equal(actors[world.portalB.client_id], 2, JSON.stringify(actors));
    await shot(page, 'auditor-charts');
    noErrors(page);
    await page.close();
  });

  await scenario('Verify shows the verdict', async () => {
    const page = await open(b, DESKTOP);
    await signIn(page, world.auditor);
    await tab(page, 'Checkpoints');
    await page.waitForSelector('#checkpoint-table tbody tr td');
    await page.click('#verify');
    await page.waitForSelector('.verdict');
    const verdict = await page.textContent('.verdict');
    assert.match(verdict, /^Intact/);
    assert.match(verdict, /signed root matches/);
    await shot(page, 'auditor-checkpoints');
    noErrors(page);
    await page.close();
  });

  await scenario('a time-range NDJSON export downloads and verifies offline; CSV downloads', async () => {
    const page = await open(b, DESKTOP);
    await signIn(page, world.auditor);
    await tab(page, 'Export');
    const save = async (button) => {
      const [download] = await Promise.all([page.waitForEvent('download'), page.click(button)]);
      const file = path.join(WORK, download.suggestedFilename());
      await download.saveAs(file);
      return file;
    };
    const events = await save('#export-ndjson');
    assert.match(path.basename(events), /^access-log-.*\.ndjson$/);
    const lines = fs.readFileSync(events, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.ok('range' in lines[0] && 'proof' in lines.at(-1), 'a stretch of the log with its proof');
    assert.ok(lines.some((l) => l.action === 'contact.read' && l.resource_id === world.referral.id));
    const checkpoints = await save('#get-checkpoints');
    const key = await save('#get-key');
    const out = execFileSync(BIN, ['audit', 'verify', '--events', events, '--checkpoints', checkpoints, '--public-key', key],
      {encoding: 'utf8', env: {}});
    assert.match(out, /^OK: /m, out);
    const csv = fs.readFileSync(await save('#export-csv'), 'utf8');
    assert.ok(csv.startsWith('seq,leaf_hash,id,occurred_at,'), csv.slice(0, 200));
    // The CSV was taken later over the same window, so the log may have grown: the NDJSON's
    // events come first, in the same order.
    const ids = lines.filter((l) => l.id).map((l) => l.id);
    const csvIds = csv.trim().split('\n').slice(1).map((l) => l.split(',')[2]);
    assert.deepEqual(csvIds.slice(0, ids.length), ids, 'the same rows, in log order');
    assert.match(await page.textContent('pre.command'), /eap-referrals audit verify --events/);
    await shot(page, 'auditor-export');
    noErrors(page);
    await page.close();
  });

  await scenario('an admin assigns an unroutable referral; a refusal shows the API detail', async () => {
    const page = await open(b, DESKTOP);
    await signIn(page, ADMIN);
    await page.waitForSelector('#role-badge:has-text("admin")');
    const form = `form[data-referral="${world.stranded.id}"]`;
    await page.waitForSelector(`${form} select option`, {state: 'attached'});
    const reasons = await page.textContent('#unroutable-table tbody');
    assert.match(reasons, /region_not_served/, 'the routing reasons as the API gives them');
    await shot(page, 'admin-unroutable');
    // In-house Wellbeing is affiliated with the employer: refused, with the API's words.
    await page.selectOption(`${form} select`, world.inhouse.id);
    await page.click(`${form} button[type="submit"]`);
    await page.waitForSelector(`${form} .problem:not([hidden])`);
    const refusal = await page.textContent(`${form} .problem`);
    const direct = await api('POST', `/v1/admin/unroutable/${world.stranded.id}/assign`, await token(ADMIN), {provider_id: world.inhouse.id});
    assert.equal(direct.status, 409);
    assert.equal(refusal, direct.body.detail);
    await page.selectOption(`${form} select`, world.lumiere.id);
    await page.click(`${form} button[type="submit"]`);
    await page.waitForSelector('#unroutable .status:has-text("offered")');
    const queue = await ok('GET', '/v1/admin/unroutable', await token(ADMIN));
    assert.ok(!queue.items.some((r) => r.id === world.stranded.id), 'no longer unroutable');
    noErrors(page);
    await page.close();
  });

  await scenario('an admin creates a client, sees its secret once, and revokes it', async () => {
    const page = await open(b, DESKTOP);
    await signIn(page, ADMIN);
    await tab(page, 'Clients');
    await page.waitForSelector('#clients-table');
    await page.fill('#new-client-name', 'Console-made auditor');
    await page.selectOption('#new-client-role', 'auditor');
    await page.click('#new-client-name >> xpath=ancestor::form//button[@type="submit"]');
    await page.waitForSelector('#new-secret');
    const secret = await page.textContent('#new-secret');
    const row = page.locator('#clients-table tbody tr', {hasText: 'Console-made auditor'});
    await row.waitFor();
    const id = (await row.locator('td').nth(1).textContent()).trim();
    assert.equal((await tokenResponse(id, secret)).status, 200, 'the shown secret works');
    await shot(page, 'admin-clients');
    await row.locator('button[data-action="revoke"]').click();
    await page.locator('#clients-table tbody tr', {hasText: 'Console-made auditor'}).locator('.pill.revoked').waitFor();
    assert.equal((await tokenResponse(id, secret)).status, 401, 'revoked: no more tokens');
    noErrors(page);
    await page.close();
  });

  await scenario('a value containing <script> renders as text', async () => {
    const page = await open(b, DESKTOP);
    await signIn(page, ADMIN);
    await tab(page, 'Employers');
    const cell = page.locator('#employers-table td', {hasText: 'Evil Ltd'});
    await cell.waitFor();
    assert.equal(await cell.textContent(), XSS_NAME);
    assert.equal(await page.evaluate(() => window.__pwned), undefined, 'nothing ran');
    assert.equal(await page.locator('#employers-table img, #employers-table script').count(), 0);
    await shot(page, 'admin-employers');
    noErrors(page);
    await page.close();
  });

  await scenario("an admin sees and edits an employer's affiliated providers", async () => {
    const page = await open(b, DESKTOP);
    await signIn(page, ADMIN);
    await tab(page, 'Employers');
    const edit = async (name) => {
      await page.locator('#employers-table tbody tr', {hasText: name}).locator('button', {hasText: 'Edit'}).click();
      await page.waitForSelector('#employers-editor fieldset.refs label.check', {state: 'attached'});
    };
    const box = (provider) => page.locator('#employers-editor label.check', {hasText: provider}).locator('input');
    // Borealis's affiliation, made through the API, shows as a ticked box.
    await edit('Borealis Ltd');
    assert.equal(await box('In-house Wellbeing').isChecked(), true);
    assert.equal(await box('Harbour Counselling').isChecked(), false);
    // Acme gains Harbour, by keyboard: focus the box, Space, then save.
    await edit('Acme Health');
    await box('Harbour Counselling').focus();
    await page.keyboard.press('Space');
    await page.click('#employers-editor button[type="submit"]');
    await page.waitForSelector('#employers .status:has-text("Saved Acme Health")');
    const adminToken = await token(ADMIN);
    let acme = await ok('GET', `/v1/admin/employers/${world.acme.id}`, adminToken);
    assert.deepEqual(acme.affiliated_provider_ids, [world.harbour.id]);
    await page.locator('#employers-table tbody tr', {hasText: 'Acme Health'}).locator('td', {hasText: world.harbour.id.slice(-8)}).waitFor();
    await shot(page, 'admin-employer-affiliations');
    // And loses it again: an emptied choice is sent as an empty list.
    await edit('Acme Health');
    assert.equal(await box('Harbour Counselling').isChecked(), true);
    await box('Harbour Counselling').uncheck();
    await page.click('#employers-editor button[type="submit"]');
    await page.waitForSelector('#employers .status:has-text("Saved Acme Health")');
    acme = await ok('GET', `/v1/admin/employers/${world.acme.id}`, adminToken);
    assert.deepEqual(acme.affiliated_provider_ids, []);
    noErrors(page);
    await page.close();
  });

  await scenario('an admin sees provider and operator webhook endpoints with their health', async () => {
    const page = await open(b, DESKTOP);
    await signIn(page, ADMIN);
    await tab(page, 'Webhooks');
    const operator = page.locator('#operator-webhooks-table td', {hasText: 'On-call pager (test)'});
    await operator.waitFor();
    const row = page.locator('#operator-webhooks-table tr', {hasText: 'On-call pager (test)'});
    assert.equal(await row.locator('.pill').textContent(), 'active');
    assert.equal(await row.locator('button').textContent(), 'Ping');
    const headers = await page.locator('#operator-webhooks-table th').allTextContents();
    assert.ok(!headers.includes('Provider'), `no provider column: ${headers}`);
    await page.locator('#provider-webhooks-table td', {hasText: 'Case system (test)'}).waitFor();
    noErrors(page);
    await page.close();
  });

  await scenario('hr_portal and provider credentials are refused with a clear message', async () => {
    for (const c of [world.portalA, world.provider]) {
      const page = await open(b, DESKTOP);
      await signIn(page, c);
      await page.waitForSelector('#sign-in-error:not([hidden])');
      assert.match(await page.textContent('#sign-in-error'), /for admin and auditor clients; this client's role is "(hr_portal|provider)"/);
      assert.ok(await page.isHidden('#tabs'));
      if (c === world.provider) await shot(page, 'refused-provider');
      await page.close();
    }
  });

  await scenario('every view at 1280 px and on a phone, keyboard sign-in', async () => {
    for (const [viewport, suffix] of [[DESKTOP, ''], [PHONE, '-phone']]) {
      for (const [who, views] of [[world.auditor, ['Access log', 'Charts', 'Checkpoints', 'Export']],
        [ADMIN, ['Unroutable', 'Employers', 'Providers', 'Contracts', 'Clients', 'Webhooks']]]) {
        const page = await open(b, viewport);
        // The keyboard alone: focus the id field, type, Tab to the secret, Enter.
        await page.focus('#client-id');
        await page.keyboard.type(who.client_id);
        await page.keyboard.press('Tab');
        await page.keyboard.type(who.client_secret);
        await page.keyboard.press('Enter');
        await page.waitForSelector('#who:not([hidden])');
        for (const view of views) {
          await tab(page, view);
          await page.waitForSelector('#view table, #view figure, #view pre.command', {timeout: 10_000})
            .catch((e) => { throw new Error(`${view} (${viewport.width} px): ${e.message}`); });
          await page.waitForLoadState('networkidle');
          const name = `${who === ADMIN ? 'admin' : 'auditor'}-${view.toLowerCase().replace(/ /g, '-')}`;
          if (suffix || !SCENARIO_SHOTS.has(name)) await shot(page, name + suffix);
          const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
          assert.ok(overflow <= 1, `${name}${suffix}: the page is ${overflow} px wider than the screen`);
        }
        noErrors(page);
        await page.close();
      }
    }
    const webhooks = await ok('GET', '/v1/admin/provider-webhooks', await token(ADMIN));
    assert.equal(webhooks.items.length, 1);
  });

  await b.close();
  if (failures) {
    console.log(`${failures} scenario(s) failed`);
    process.exit(1);
  }
  console.log('all console scenarios passed');
}

main().catch((e) => {
  console.log(`FAIL ${e.stack || e}`);
  process.exit(1);
});
