// The gallery page in a real headless Chromium (Debian's `chromium`, driven by the npm client
// playwright-core that scripts/setup.sh installs into tests/browser/.npm).
//   node tests/browser/gallery_page.mjs INDEX.html OUT_DIR GROVE_BINARY EXPECTED_IMAGES
// Checks: no console error or page error while loading and using the page; no request leaves
// file:// / data: (the page is offline); EXPECTED_IMAGES grid images, all decoded; the plots;
// click-to-enlarge; sorting by diversity loss puts the largest loss first; in labelling mode a
// click and a key record preferences with the right model; the download is a preferences.jsonl
// that `grove gallery --summarize` reads. Screenshots go to OUT_DIR. Exit 77 (CTest
// SKIP_RETURN_CODE) only when no Chromium is installed; any other problem fails.
import { createRequire } from 'module';
import { existsSync, mkdirSync, readFileSync } from 'fs';
import { execFileSync } from 'child_process';
import { dirname, join, resolve } from 'path';
import { fileURLToPath, pathToFileURL } from 'url';

const [index, outDir, grove, expectedArg] = process.argv.slice(2);
if (!index || !outDir || !grove || !expectedArg) {
  console.error('usage: gallery_page.mjs INDEX.html OUT_DIR GROVE_BINARY EXPECTED_IMAGES');
  process.exit(2);
}
const chromiumPath = [process.env.GROVE_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser']
  .find((p) => p && existsSync(p));
if (!chromiumPath) {
  console.log('SKIP: no Chromium found (/usr/bin/chromium; set GROVE_CHROMIUM): scripts/setup.sh installs Debian\'s chromium');
  process.exit(77);
}
const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, '.npm', 'node_modules', 'x.js'));
let chromium;
try {
  ({ chromium } = require('playwright-core'));
} catch (e) { // missing: a setup failure, not a skip
  console.error(`FAIL: playwright-core is not installed under ${join(here, '.npm')}: run scripts/setup.sh (${e.message})`);
  process.exit(1);
}

const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`); };
mkdirSync(outDir, { recursive: true });

const browser = await chromium.launch({
  executablePath: chromiumPath,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
});
try {
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 }, acceptDownloads: true });
  const page = await context.newPage();
  const errors = [], offsite = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('request', (r) => { if (!/^(file|data|blob):/.test(r.url())) offsite.push(r.url()); });

  await page.goto(pathToFileURL(resolve(index)).href, { waitUntil: 'load' });
  const expected = Number(expectedArg);
  const counts = await page.evaluate(() => {
    const imgs = [...document.querySelectorAll('#grid img.cell')];
    return { n: imgs.length, decoded: imgs.filter((i) => i.complete && i.naturalWidth > 0).length,
             plots: document.querySelectorAll('svg.plot').length,
             badges: document.querySelectorAll('figcaption.b').length,
             data: window.groveGallery.data.P * window.groveGallery.data.S * window.groveGallery.data.M };
  });
  check(counts.n === expected, `${counts.n} grid images, expected ${expected}`);
  check(counts.decoded === counts.n, `${counts.decoded} of ${counts.n} images decoded`);
  check(counts.data === expected, `data block describes ${counts.data} images`);
  check(counts.badges === expected, `${counts.badges} score badges`);
  check(counts.plots >= 7, `${counts.plots} inline SVG plots (5 curves + noise schedule)`);
  await page.screenshot({ path: join(outDir, 'gallery.png'), fullPage: true });

  // click to enlarge, Escape closes
  await page.click('#grid img.cell >> nth=1');
  check(await page.isVisible('#lightbox'), 'a click enlarges the image');
  check((await page.textContent('#lb-cap')).includes('seed'), 'the enlarged image is captioned');
  await page.keyboard.press('Escape');
  check(!(await page.isVisible('#lightbox')), 'Escape closes it');

  // sort by diversity loss of the last model: the first prompt shown has the largest loss
  await page.selectOption('#sort', 'divloss');
  const sorted = await page.evaluate(() => {
    const D = window.groveGallery.data, m = D.M - 1;
    const loss = (p) => D.diversity[p * D.M] - D.diversity[p * D.M + m];
    const shown = [...document.querySelectorAll('article.prompt')].map((a) => +a.dataset.p);
    return shown.every((p, k) => k === 0 || loss(shown[k - 1]) >= loss(p));
  });
  check(sorted, 'sorting by diversity loss orders the prompts');
  await page.selectOption('#sort', 'order');

  // labelling: a click on the left image, then the right-arrow key
  await page.click('#label-start');
  check(await page.isVisible('#labelling'), 'labelling mode opens');
  const q0 = await page.evaluate(() => { const s = window.groveGallery.state; return s.queue[s.pos]; });
  await page.click('#pick-left');
  await page.keyboard.press('ArrowRight');
  const labels = await page.evaluate(() => window.groveGallery.state.labels);
  check(labels.length === 2, `${labels.length} preferences recorded (expected 2)`);
  const want = q0.left; // the left image was model a when left === 'a'
  check(labels.length > 0 && labels[0].choice === want, `the click chose "${want}" (the left image's model)`);
  check(labels.length > 0 && labels[0].a.checkpoint.length === 16 && labels[0].b.checkpoint.length === 16,
        'preferences carry both checkpoint hashes');
  check((await page.textContent('#lprogress')).startsWith('2 labelled'), 'the counter shows 2 labelled');
  await page.screenshot({ path: join(outDir, 'labelling.png') });

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#label-export')]);
  const prefs = join(outDir, 'preferences.jsonl');
  await download.saveAs(prefs);
  const lines = readFileSync(prefs, 'utf8').trim().split('\n');
  check(download.suggestedFilename() === 'preferences.jsonl', `download named ${download.suggestedFilename()}`);
  check(lines.length === 2 && lines.every((l) => JSON.parse(l).prompt), `${lines.length} JSON lines downloaded`);
  const summary = execFileSync(grove, ['gallery', '--summarize', prefs], { encoding: 'utf8' });
  console.log(summary.trimEnd());
  check(summary.includes('2 human judgements'), 'grove gallery --summarize reads the download');

  check(errors.length === 0, `no console errors${errors.length ? ': ' + errors.join(' | ') : ''}`);
  check(offsite.length === 0, `no network requests${offsite.length ? ': ' + offsite.join(' ') : ''}`);
} finally {
  await browser.close();
}
console.log(`screenshots: ${join(outDir, 'gallery.png')} ${join(outDir, 'labelling.png')}`);
if (failures.length) { console.error(`${failures.length} check(s) failed`); process.exit(1); }
