// Drives donagate-console in headless chromium (puppeteer-core). Environment: CONSOLE_URL,
// CHROMIUM, SHOTS (screenshot folder), EXPECT_VND_CHARGED (from the database).
'use strict';
const puppeteer = require('puppeteer-core');
const assert = require('assert');

const base = process.env.CONSOLE_URL;
const shots = process.env.SHOTS;

async function login(browser, user) {
  const context = await browser.createBrowserContext();  // own cookies per user
  const page = await context.newPage();
  page.on('dialog', async (d) => { await d.dismiss(); throw new Error('a script ran: dialog "' + d.message() + '"'); });
  page.on('pageerror', (e) => { throw new Error('page error: ' + e.message); });
  await page.goto(base + '/login?lang=en');
  await page.type('input[name=user]', user);
  await page.type('input[name=password]', 'browser-test-' + user);
  await Promise.all([page.waitForNavigation(), page.click('form.login button')]);
  assert.strictEqual(new URL(page.url()).pathname, '/', user + ' is logged in');
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}

// POSTs a form from inside the page (same origin, the session cookie goes along).
async function post(page, path, fields) {
  return page.evaluate(async (path, fields) => {
    const r = await fetch(path, { method: 'POST', body: new URLSearchParams(fields), redirect: 'manual' });
    return r.status;
  }, path, fields);
}

(async () => {
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-proxy-server'],
  });
  try {
    // Login page.
    const anon = await (await browser.createBrowserContext()).newPage();
    await anon.goto(base + '/login?lang=en');
    await shot(anon, '01-login');

    // Overview: the total equals the database's, formatted the Vietnamese way; the chart draws.
    const anna = await login(browser, 'anna');
    const charged = await anna.$eval('p.figures', (p) => p.dataset.vndCharged);
    assert.strictEqual(charged, process.env.EXPECT_VND_CHARGED, 'overview total equals the ledger');
    const cell = await anna.$eval('tfoot td.vnd-charged', (td) => td.textContent);
    const expected = Number(process.env.EXPECT_VND_CHARGED).toString().replace(/\B(?=(\d{3})+(?!\d))/g, '.') + ' đ';
    assert.strictEqual(cell, expected, 'amount reads ' + expected);
    await anna.waitForFunction(() => typeof Chart !== 'undefined' && Chart.getChart('chart') !== undefined, { timeout: 10000 });
    await shot(anna, '02-overview');

    // Lookup: the stored script is text, not markup (no dialog fires; the text is visible).
    await anna.goto(base + '/lookup?q=3');
    const text = await anna.$eval('main', (m) => m.innerText);
    assert.ok(text.includes('<script>alert(1)</script>'), 'the MO text is shown as text');
    assert.strictEqual(await anna.$('section.story script'), null, 'no script element from stored text');
    assert.strictEqual(await anna.$('section.story img'), null, 'no img element from stored text');
    assert.ok(!text.includes('84912000003'), 'finance sees the number masked');
    await shot(anna, '03-lookup');

    // Exports page and a download link.
    await anna.goto(base + '/exports');
    await shot(anna, '04-exports');
    const csv = await anna.evaluate(async () => (await fetch(document.querySelector('ul.exports a').href)).text());
    assert.ok(csv.startsWith('donation_id,received_at,'), 'donations CSV');
    assert.ok(csv.includes('\r\n'), 'CRLF records');

    // Export progress: the page's script counts the rows of the running export.
    const cdp = await anna.target().createCDPSession();
    await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: shots });
    await anna.click('ul.exports a.export');
    await anna.waitForFunction(() => document.getElementById('export-progress').dataset.done === '1', { timeout: 20000 });
    assert.strictEqual(await anna.$eval('#export-progress', (p) => p.dataset.rows), process.env.EXPECT_DONATIONS,
      'the progress counts every donation row');
    await shot(anna, '04b-export-progress');

    // Reconcile: operator A's layout (a saved mapping), today's file with one discrepancy of each kind.
    await anna.goto(base + '/reconcile');
    await shot(anna, '10-reconcile');
    await anna.type('form.upload input[name=operator]', 'opa');
    const today = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Ho_Chi_Minh' }).format(new Date());
    await anna.$eval('form.upload input[name=day]', (i, d) => { i.value = d; }, today);
    await (await anna.$('form.upload input[type=file]')).uploadFile(process.env.SETTLEMENT);
    await anna.select('form.upload select[name=mapping]', 'operator-a');
    await Promise.all([anna.waitForNavigation(), anna.click('form.upload button')]);
    assert.strictEqual(await anna.$eval('dd.encoding', (d) => d.textContent), 'UTF-8 with BOM');
    assert.strictEqual(await anna.$eval('dd.delimiter', (d) => d.textContent), 'comma (,)');
    assert.strictEqual(await anna.$$eval('table.preview tr', (r) => r.length), 6, 'header and the five rows previewed');
    assert.strictEqual(await anna.$eval('select[name=reference_column]', (s) => s.value), 'CP_REF', 'the saved mapping fills the form');
    await shot(anna, '11-reconcile-preview');
    await Promise.all([anna.waitForNavigation(), anna.click('form.mapping button.run')]);
    assert.ok(/\/reconcile\/runs\/\d+$/.test(anna.url()), 'the run is saved and shown: ' + anna.url());
    const counts = await anna.$$eval('td[data-kind]', (tds) => Object.fromEntries(tds.map((t) => [t.dataset.kind, t.textContent])));
    assert.deepStrictEqual(counts, { missing_at_operator: '1', missing_in_ledger: '1', amount_mismatch: '1',
      status_mismatch: '1', duplicate_at_operator: '1' }, 'exactly the injected discrepancies');
    assert.strictEqual(await anna.$eval('tr.matched td.count', (t) => t.textContent), '1');
    // Ours: don-1, 2, 4, 5 = 140.000 đ; theirs bills don-1 twice, don-2 at 45.000, don-999: 105.000 đ.
    assert.strictEqual(await anna.$eval('tr.ours td.vnd', (t) => t.textContent), '140.000 đ');
    assert.strictEqual(await anna.$eval('tr.theirs td.vnd', (t) => t.textContent), '105.000 đ');
    await shot(anna, '12-reconcile-run');
    const disc = await anna.evaluate(async () => (await fetch(document.querySelector('a.download').href)).text());
    const lines = disc.split('\r\n').filter((l) => l !== '');
    assert.strictEqual(lines[0], 'kind,reference,msisdn,our_amount_vnd,their_amount_vnd,our_status,their_status,settlement_line,detail');
    assert.strictEqual(lines.length, 6, 'header and five discrepancies: ' + disc);
    const byKind = Object.fromEntries(lines.slice(1).map((l) => [l.split(',')[0], l]));
    assert.ok(byKind.amount_mismatch.startsWith('amount_mismatch,don-2,84912000002,40000,45000,charged,SUCCESS,4,'), byKind.amount_mismatch);
    assert.ok(byKind.status_mismatch.startsWith('status_mismatch,don-5,84912000005,20000,20000,charged,FAILED_BALANCE,5,'));
    assert.ok(byKind.missing_in_ledger.startsWith('missing_in_ledger,don-999,84912000999,0,20000,,SUCCESS,6,'));
    assert.ok(byKind.duplicate_at_operator.startsWith('duplicate_at_operator,don-1,84912000001,20000,20000,charged,SUCCESS,7,'));
    assert.ok(byKind.missing_at_operator.startsWith('missing_at_operator,don-4,84912000004,60000,0,charged,,,'));
    // Reopened from the list of runs.
    await anna.goto(base + '/reconcile');
    await Promise.all([anna.waitForNavigation(), anna.click('tr.run a')]);
    assert.strictEqual(await anna.$eval('td[data-kind=amount_mismatch]', (t) => t.textContent), '1');

    // Reversal: anna requests, binh approves.
    await anna.goto(base + '/reversals');
    await anna.type('input[name=donation]', '2');
    await anna.type('input[name=reason]', 'subscriber complaint');
    await Promise.all([anna.waitForNavigation(), anna.click('form[action="/reversals/request"] button')]);
    await shot(anna, '05-reversal-requested');
    assert.strictEqual(await anna.$('button[value=approve]'), null, 'the requester gets no approve button');
    // Missing CSRF token: refused.
    assert.strictEqual(await post(anna, '/reversals/request', { donation: '1', reason: 'no token' }), 403);
    // Wrong role: finance may not pause charging.
    const csrf = await anna.$eval('input[name=csrf]', (i) => i.value);
    assert.strictEqual(await post(anna, '/operations/pause', { csrf }), 403);

    const binh = await login(browser, 'binh');
    await binh.goto(base + '/reversals');
    await Promise.all([binh.waitForNavigation(), binh.click('tr.request button[value=approve]')]);
    const row = await binh.$eval('tr.request', (tr) => tr.innerText);
    assert.ok(/done/.test(row) && /binh/.test(row), 'the request is done and names the approver: ' + row);
    await shot(binh, '06-reversal-approved');
    // The ledger changed: the donation's story shows the reversing rows, unmasked for an approver.
    await binh.goto(base + '/lookup?q=2');
    const story = await binh.$eval('main', (m) => m.innerText);
    assert.ok(story.includes('reversed'), 'donation 2 is reversed');
    assert.ok(story.includes('84912000002'), 'an approver sees the number');
    await shot(binh, '07-lookup-reversed');

    // Operations page (no daemon configured in this test: it says so).
    const olga = await login(browser, 'olga');
    await olga.goto(base + '/operations');
    await shot(olga, '08-operations');
    // Vietnamese UI.
    await olga.goto(base + '/?lang=vi');
    assert.ok((await olga.$eval('nav', (n) => n.innerText)).includes('Tổng quan'));
    await shot(olga, '09-overview-vi');
    console.log('console_browser: all checks passed');
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error('FAIL:', e && e.stack || e);
  process.exit(1);
});
