/* grove gallery page logic (embedded inline into every index.html by gallery/gallery_page.c).
 * Reads the JSON block #gallery-data; image (prompt p, model m, seed s) is img#i-<(p*M+m)*S+s>.
 * Score badges and per-column stats follow the reward selector; prompts sort by the gain of a
 * model over the first column or by its diversity loss; a click enlarges an image; labelling mode
 * shows (first column vs another model) pairs from the same prompt and noise, sides shuffled and
 * hidden, records choices (kept in localStorage) and downloads them as preferences.jsonl.
 * window.groveGallery exposes the state for tests. No network, no libraries. */
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('gallery-data').textContent);
  var P = D.P, S = D.S, M = D.M, R = D.R;
  var $ = function (id) { return document.getElementById(id); };
  var idx = function (p, m, s) { return (p * M + m) * S + s; };
  var state = { reward: 0, sort: 'order', sortModel: M - 1, labels: [], queue: [], pos: 0 };

  function fmt(v, d) { return v === null || v === undefined || isNaN(v) ? '\u2014' : v.toFixed(d); }

  /* ---- badges and column stats ---- */
  function range(r) {
    var lo = Infinity, hi = -Infinity;
    for (var i = 0; i < P * M * S; i++) {
      var v = D.scores[i * R + r];
      if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    }
    return [lo, hi];
  }
  function colour(t) { /* 0 = red, 1 = green, through amber */
    var h = Math.round(4 + 126 * Math.max(0, Math.min(1, t)));
    return 'hsl(' + h + ', 62%, 38%)';
  }
  function refresh() {
    var r = state.reward, lr = range(r);
    document.querySelectorAll('figcaption.b').forEach(function (el) {
      var v = R ? D.scores[+el.dataset.i * R + r] : null;
      el.textContent = v === null ? 'failed' : fmt(v, 2);
      el.style.background = v === null ? '#444' :
        colour(lr[1] > lr[0] ? (v - lr[0]) / (lr[1] - lr[0]) : 1);
      el.title = D.rewards.length ? D.rewards[r].label : '';
    });
    document.querySelectorAll('article.prompt').forEach(function (art) {
      var p = +art.dataset.p;
      art.querySelectorAll('tr.st td[data-m]').forEach(function (td) {
        var m = +td.dataset.m, k = (p * M + m) * R + r;
        var w = td.querySelector('.w'), d = td.querySelector('.d');
        if (m === 0) { w.textContent = 'mean ' + fmt(D.mean[k], 2); w.className = 'w'; }
        else {
          var win = D.win[k];
          w.textContent = 'win ' + (win === null ? '\u2014' : Math.round(100 * win) + '%');
          w.className = 'w ' + (win > 0.5 ? 'up' : win < 0.5 ? 'down' : '');
        }
        var dv = D.diversity[p * M + m], d0 = D.diversity[p * M];
        d.textContent = m > 0 && d0 > 0 ? 'div ' + (dv >= d0 ? '+' : '\u2212') + Math.abs(Math.round(100 * (dv / d0 - 1))) + '%'
                                          : 'div ' + fmt(dv, 1);
        d.title = 'diversity ' + fmt(dv, 3) + ' (mean feature distance across seeds)';
        d.className = 'd ' + (m > 0 && d0 > 0 && dv / d0 < 0.9 ? 'down' : '');
      });
    });
  }

  /* ---- sorting ---- */
  function sortKey(p) {
    var m = state.sortModel;
    if (state.sort === 'gain') { var g = D.gain[(p * M + m) * R + state.reward]; return g === null ? -Infinity : g; }
    if (state.sort === 'divloss') return D.diversity[p * M] - D.diversity[p * M + m];
    return -p;
  }
  function resort() {
    var grid = $('grid');
    var arts = Array.prototype.slice.call(grid.querySelectorAll('article.prompt'));
    arts.sort(function (a, b) { return sortKey(+b.dataset.p) - sortKey(+a.dataset.p); });
    arts.forEach(function (a) { grid.appendChild(a); });
  }

  /* ---- enlarge ---- */
  function describe(i) {
    var s = i % S, m = Math.floor(i / S) % M, p = Math.floor(i / (S * M));
    var parts = ['\u201c' + D.prompts[p] + '\u201d', D.models[m].label + ' (' + D.models[m].checkpoint + ')',
                 'seed ' + D.seeds[s]];
    for (var r = 0; r < R; r++) parts.push(D.rewards[r].label + ' ' + fmt(D.scores[i * R + r], 4));
    return parts.join(' \u00b7 ');
  }
  function enlarge(i) {
    $('lb-img').src = $('i-' + i).src;
    $('lb-cap').textContent = describe(i);
    $('lightbox').hidden = false;
  }

  /* ---- labelling ---- */
  var storeKey = 'grove-gallery:' + D.title + ':' + D.models.map(function (m) { return m.checkpoint; }).join(',');
  function rng(seed) { /* mulberry32: a fixed, shuffled queue per gallery */
    return function () {
      seed |= 0; seed = seed + 0x6D2B79F5 | 0;
      var t = Math.imul(seed ^ seed >>> 15, 1 | seed);
      t = t + Math.imul(t ^ t >>> 7, 61 | t) ^ t;
      return ((t ^ t >>> 14) >>> 0) / 4294967296;
    };
  }
  function buildQueue() {
    var q = [], rand = rng(12345);
    for (var p = 0; p < P; p++) for (var s = 0; s < S; s++) for (var m = 1; m < M; m++)
      q.push({ p: p, s: s, a: 0, b: m, left: rand() < 0.5 ? 'a' : 'b' });
    for (var i = q.length - 1; i > 0; i--) { var j = Math.floor(rand() * (i + 1)); var t = q[i]; q[i] = q[j]; q[j] = t; }
    return q;
  }
  function save() { try { localStorage.setItem(storeKey, JSON.stringify(state.labels)); } catch (e) { /* file:// without storage */ } }
  function load() { try { return JSON.parse(localStorage.getItem(storeKey) || '[]'); } catch (e) { return []; } }
  function showPair() {
    var done = state.labels.length;
    $('label-count').textContent = done ? done + ' labelled' : '';
    $('lprogress').textContent = done + ' labelled \u00b7 pair ' + Math.min(state.pos + 1, state.queue.length) + ' of ' + state.queue.length;
    if (state.pos >= state.queue.length) { $('lprompt').textContent = 'All pairs seen. Download your labels.'; return; }
    var q = state.queue[state.pos];
    var left = q.left === 'a' ? q.a : q.b, right = q.left === 'a' ? q.b : q.a;
    $('lprompt').textContent = '\u201c' + D.prompts[q.p] + '\u201d';
    $('left-img').src = $('i-' + idx(q.p, left, q.s)).src;
    $('right-img').src = $('i-' + idx(q.p, right, q.s)).src;
  }
  function record(side) { /* side: 'left' | 'right' | 'tie' | 'skip' */
    if (state.pos >= state.queue.length) return;
    var q = state.queue[state.pos];
    if (side !== 'skip') {
      var choice = side === 'tie' ? 'tie' : (side === 'left') === (q.left === 'a') ? 'a' : 'b';
      state.labels.push({
        gallery: D.title, prompt: D.prompts[q.p], prompt_index: q.p, seed: D.seeds[q.s],
        a: { model: D.models[q.a].label, checkpoint: D.models[q.a].checkpoint },
        b: { model: D.models[q.b].label, checkpoint: D.models[q.b].checkpoint },
        choice: choice, left: q.left, time: new Date().toISOString()
      });
      save();
    }
    state.pos++;
    showPair();
  }
  function undo() {
    if (state.pos === 0) return;
    state.pos--;
    var q = state.queue[state.pos], last = state.labels[state.labels.length - 1];
    if (last && last.prompt_index === q.p && last.seed === D.seeds[q.s] && last.b.checkpoint === D.models[q.b].checkpoint &&
        last.b.model === D.models[q.b].label) { state.labels.pop(); save(); }
    showPair();
  }
  function jsonl() { return state.labels.map(function (l) { return JSON.stringify(l); }).join('\n') + (state.labels.length ? '\n' : ''); }
  function exportLabels() {
    var url = URL.createObjectURL(new Blob([jsonl()], { type: 'application/x-ndjson' }));
    var a = document.createElement('a');
    a.href = url; a.download = 'preferences.jsonl';
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
  }
  function startLabelling() {
    if (M < 2) return;
    $('labelling').hidden = false; $('grid').hidden = true; document.querySelector('.gridnote').hidden = true;
    state.labelling = true; showPair();
    $('labelling').scrollIntoView();
  }
  function stopLabelling() {
    $('labelling').hidden = true; $('grid').hidden = false; document.querySelector('.gridnote').hidden = false;
    state.labelling = false;
  }

  /* ---- wiring ---- */
  var rsel = $('reward'), msel = $('sortmodel');
  D.rewards.forEach(function (r, k) { rsel.add(new Option(r.label, k)); });
  D.models.forEach(function (m, k) { if (k > 0) msel.add(new Option(m.label + ' vs ' + D.models[0].label, k)); });
  msel.value = String(M - 1);
  rsel.onchange = function () { state.reward = +rsel.value; refresh(); resort(); };
  $('sort').onchange = function () { state.sort = $('sort').value; resort(); };
  msel.onchange = function () { state.sortModel = +msel.value; resort(); };
  document.querySelectorAll('img.cell').forEach(function (img) { img.onclick = function () { enlarge(+img.dataset.i); }; });
  $('lightbox').onclick = function () { $('lightbox').hidden = true; };
  $('label-start').onclick = startLabelling;
  $('label-stop').onclick = stopLabelling;
  $('pick-left').onclick = function () { record('left'); };
  $('pick-right').onclick = function () { record('right'); };
  $('pick-tie').onclick = function () { record('tie'); };
  $('pick-skip').onclick = function () { record('skip'); };
  $('pick-undo').onclick = undo;
  $('label-export').onclick = exportLabels;
  if (M < 2) $('label-start').disabled = true;
  document.addEventListener('keydown', function (e) {
    if (e.target.tagName === 'SELECT' || e.ctrlKey || e.metaKey || e.altKey) return;
    var k = e.key;
    if (k === 'Escape') { $('lightbox').hidden = true; if (state.labelling) stopLabelling(); return; }
    if (!state.labelling) { if (k === 'l' || k === 'L') startLabelling(); return; }
    var act = { ArrowLeft: 'left', '1': 'left', ArrowRight: 'right', '2': 'right', ArrowDown: 'tie', '0': 'tie',
                s: 'skip', S: 'skip' }[k];
    if (act) { e.preventDefault(); record(act); }
    else if (k === 'u' || k === 'U' || k === 'Backspace') { e.preventDefault(); undo(); }
    else if (k === 'd' || k === 'D') exportLabels();
  });

  state.queue = buildQueue();
  state.labels = load();
  state.pos = Math.min(state.labels.length, state.queue.length);
  if (state.labels.length) $('label-count').textContent = state.labels.length + ' labelled';
  refresh();
  window.groveGallery = { data: D, state: state, preferences: jsonl, record: record };
})();
