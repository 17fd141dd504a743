// Tributary dashboard: hand-written, no dependencies, every asset served by the coordinator.
'use strict';

// shown is what "Download CSV" saves: the numbers on screen, or null while the page is being
// drawn or shows none. seq numbers the renders: only the newest may draw (see render).
const S = { token: null, meta: null, page: 'trends', shown: null, seq: 0, abort: null };
const $ = (id) => document.getElementById(id);
const SVGNS = 'http://www.w3.org/2000/svg';
const PALETTE = ['#d95f02', '#7570b3', '#e7298a', '#66a61e', '#e6ab02', '#a6761d', '#1b9e77', '#666666'];

// describe is a measure's description as sentences, then its source: "… per 1,000. Source: NHS
// Digital, indicator 2.3.i." A description or source without a full stop gets one.
function describe(meas) {
  const sentence = (t) => { t = (t || '').trim(); return t === '' || /[.!?]$/.test(t) ? t : t + '.'; };
  const d = sentence(meas.description);
  return meas.source ? (d ? d + ' ' : '') + 'Source: ' + sentence(meas.source) : d;
}

function el(tag, attrs, ...kids) {
  const e = tag.startsWith('svg:') ? document.createElementNS(SVGNS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') e.textContent = v; else e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids) if (k) e.append(k);
  return e;
}

function fmt(v, dp) {
  if (v === null || v === undefined || Number.isNaN(v)) return '';
  return Number(v).toLocaleString('en-GB', { minimumFractionDigits: dp, maximumFractionDigits: dp });
}

class AuthError extends Error {}

async function api(path, signal) {
  const r = await fetch(path, { headers: { Authorization: 'Bearer ' + S.token }, signal });
  let body = null;
  try { body = await r.json(); } catch (e) { body = {}; }
  if (r.status === 401) throw new AuthError(body.error || 'the token was not accepted');
  if (!r.ok) throw new Error(body.error || ('the coordinator answered ' + r.status));
  return body;
}

// ---- login ----

async function login(token) {
  S.token = token.trim();
  $('login-error').textContent = '';
  try {
    S.meta = await api('/api/meta');
  } catch (e) {
    S.token = null;
    sessionStorage.removeItem('tributary-token');
    $('login-error').textContent = 'Could not log in: ' + e.message;
    return;
  }
  sessionStorage.setItem('tributary-token', S.token);
  $('login').hidden = true;
  $('who').hidden = false;
  const m = S.meta;
  $('who-text').textContent = m.role === 'practice' ? `practice ${m.practice} (${m.token_name})` : `${m.role} (${m.token_name})`;
  if (m.role === 'admin') {
    $('login-error').textContent = 'This is an admin token: it manages tokens (tributary-coordinator tokens, or /api/tokens) and sees no figures.';
    $('login').hidden = false;
    $('login-form').hidden = true;
    return;
  }
  setupFilters();
  $('app').hidden = false;
  await render();
}

function logout(msg) {
  sessionStorage.removeItem('tributary-token');
  S.seq++; if (S.abort) S.abort.abort();
  S.token = null; S.meta = null; S.shown = null;
  $('app').hidden = true; $('who').hidden = true;
  $('login').hidden = false; $('login-form').hidden = false;
  $('token').value = '';
  $('login-error').textContent = msg || '';
}

// ---- filters ----

function setupFilters() {
  const m = S.meta;
  const months = m.months;
  for (const id of ['f-from', 'f-to']) {
    const sel = $(id);
    sel.replaceChildren(...months.map((mo) => el('option', { value: mo, text: mo })));
  }
  $('f-from').value = months[Math.max(0, months.length - 24)] || '';
  $('f-to').value = months[months.length - 1] || '';
  $('f-bands').replaceChildren(...m.age_bands.map((b) => el('option', { value: b, text: b })));
  $('f-sexes').replaceChildren(el('legend', { text: 'Sex' }), ...m.sexes.map((x) =>
    el('label', {}, el('input', { type: 'checkbox', name: 'sex', value: x, checked: true }), document.createTextNode(' ' + x))));
  const names = Object.fromEntries(m.practices.map((p) => [p.id, p.name]));
  S.names = names;
  $('f-practices').replaceChildren(...m.practices.map((p) => el('option', { value: p.id, text: p.name ? `${p.id} ${p.name}` : p.id })));
  const measures = m.measures.filter((x) => x.name !== 'registered_patients');
  $('f-measure').replaceChildren(...measures.map((x) => el('option', { value: x.name, text: x.title || x.name.replaceAll('_', ' ') })));
  $('f-measure').value = measures.some((x) => x.name === 'admissions_emergency') ? 'admissions_emergency' : measures[0].name;
  const ctx = `Figures of combine ${(m.combined || '').slice(0, 12)}, loaded ${m.loaded_at || 'never'}; ${m.federation_practices} practices; disclosure policy ${m.policy}` +
    (m.quarantined ? `; ${m.quarantined} object(s) quarantined (see Completeness)` : '') + '.';
  $('context').textContent = ctx;
}

function selected(sel) { return Array.from(sel.selectedOptions).map((o) => o.value); }

function sexesTicked() { return Array.from(document.querySelectorAll('input[name=sex]:checked')).map((x) => x.value); }

// params returns the API query for the filters, without the measure. Every sex ticked asks
// for all; none ticked is caught by render before any request.
function params() {
  const p = new URLSearchParams();
  if ($('f-from').value) p.set('from', $('f-from').value);
  if ($('f-to').value) p.set('to', $('f-to').value);
  const bands = selected($('f-bands'));
  if (bands.length && bands.length < S.meta.age_bands.length) p.set('age_band', bands.join(','));
  const sexes = sexesTicked();
  if (sexes.length && sexes.length < S.meta.sexes.length) p.set('sex', sexes.join(','));
  return p;
}

function monthsInRange() {
  const from = $('f-from').value, to = $('f-to').value;
  return S.meta.months.filter((m) => (!from || m >= from) && (!to || m <= to));
}

// ---- values ----

// hasRates says whether a measure offers rates: the list size itself does not.
function hasRates(measure) { return (S.meta.measures.find((m) => m.name === measure) || {}).rates !== false; }

// value picks what a chart draws from a figure row: v is the figure to read (count, or its
// rate), null when suppressed; lo/hi bound the truth (hi null: no upper bound). kind is
// published (a sum of published values), estimate (it includes estimates of suppressed
// values), secure (the holders' securely aggregated federation total, rounded once) or
// suppressed.
function value(row, mode) {
  if (!hasRates(row.measure)) mode = 'count';
  let v, lo, hi;
  if (mode === 'count') { v = row.count; lo = row.lower; hi = row.upper; }
  else if (mode === 'rate') { v = row.rate_per_1000; lo = row.rate_lower; hi = row.rate_upper; }
  else { v = row.dsr_per_1000; lo = row.dsr_at_lower; hi = row.dsr_at_upper; }
  const kind = row.status === 'suppressed' ? 'suppressed' : row.method === 'secure' ? 'secure' : (row.method === 'estimated' || (mode === 'dsr' && row.dsr_partial)) ? 'estimate' : 'published';
  if (kind === 'suppressed') v = null;
  return { v: v ?? null, lo: lo ?? null, hi: hi ?? null, kind, note: mode === 'dsr' ? (row.dsr_note || '') : '' };
}

const MODE_LABEL = { rate: 'crude rate per 1,000', dsr: 'age-standardised rate per 1,000', count: 'count' };

// ---- charts ----

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// ticksFor returns 4 to 6 evenly spaced round values from 0 to max.
function ticksFor(max) {
  for (const n of [5, 4, 6, 3]) {
    const step = max / n;
    if (Math.abs(step - Number(step.toPrecision(2))) < 1e-9 * max) return Array.from({ length: n + 1 }, (_, k) => step * k);
  }
  return [0, max / 2, max];
}

function lineChart(measure, months, series, mode) {
  const W = 440, H = 210, L = 52, R = 10, T = 10, B = 28;
  let ymax = 0;
  for (const s of series) for (const p of s.points) ymax = Math.max(ymax, p.v ?? 0, p.hi ?? p.v ?? 0);
  ymax = niceMax(ymax * 1.05);
  const x = (i) => L + (months.length <= 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (months.length - 1));
  const y = (v) => T + (H - T - B) * (1 - v / ymax);
  const svg = el('svg:svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${measure}: ${MODE_LABEL[mode]} by month` });
  const ticks = ticksFor(ymax);
  for (const v of ticks) {
    svg.append(el('svg:line', { class: 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    svg.append(el('svg:text', { x: L - 4, y: y(v) + 4, 'text-anchor': 'end', text: fmt(v, ticks[1] < 1 ? 2 : ticks[1] < 10 && ticks[1] % 1 ? 1 : 0) }));
  }
  const step = Math.max(1, Math.ceil(months.length / 6));
  months.forEach((m, i) => {
    if (i % step === 0) svg.append(el('svg:text', { x: x(i), y: H - 8, 'text-anchor': 'middle', text: m }));
  });
  svg.append(el('svg:line', { class: 'axis', x1: L, x2: W - R, y1: y(0), y2: y(0), stroke: '#9aa1ad' }));
  for (const s of series) {
    const color = s.color;
    let d = '', pen = false;
    s.points.forEach((p) => {
      if (p.v === null) { pen = false; return; }
      d += (pen ? 'L' : 'M') + x(p.i).toFixed(1) + ',' + y(p.v).toFixed(1);
      pen = true;
    });
    if (d) svg.append(el('svg:path', { d, fill: 'none', stroke: color, 'stroke-width': s.practice ? 1.5 : 2.5, 'stroke-dasharray': s.practice ? '4 2' : null }));
    for (const p of s.points) {
      const g = el('svg:g', { class: 'pt', 'data-measure': measure, 'data-month': months[p.i], 'data-practice': s.practice || '',
        'data-kind': p.kind, 'data-value': p.v ?? '', 'data-lower': p.lo ?? '', 'data-upper': p.hi ?? '' });
      // The bounds: a bar from lower to upper (to the top of the chart when unbounded above).
      if (p.lo !== null && (p.hi === null || p.hi > p.lo) && (p.kind !== 'published' || p.hi === null || (p.hi - p.lo) > 0)) {
        g.append(el('svg:line', { class: 'bound', x1: x(p.i), x2: x(p.i), y1: y(p.lo), y2: y(p.hi === null ? ymax : Math.min(p.hi, ymax)), stroke: p.kind === 'suppressed' ? '#8a919c' : color, 'stroke-width': 1, 'stroke-opacity': p.kind === 'published' ? 0.35 : 1, 'stroke-dasharray': p.kind === 'suppressed' ? '2 2' : null }));
      }
      const between = `between ${fmt(p.lo, 2)} and ${p.hi === null ? 'no upper bound' : fmt(p.hi, 2)}`;
      let title;
      if (p.v !== null) {
        if (p.kind === 'secure') {
          // A square: the holders' exact federation total, rounded once.
          g.append(el('svg:rect', { class: 'secure-mark', x: x(p.i) - 3.5, y: y(p.v) - 3.5, width: 7, height: 7, fill: color, stroke: color }));
        } else {
          g.append(el('svg:circle', { cx: x(p.i), cy: y(p.v), r: 3.2, fill: p.kind === 'published' ? color : '#fff', stroke: color, 'stroke-width': 1.5 }));
        }
        title = `${s.label} ${months[p.i]}: ${fmt(p.v, 2)}` + (p.kind === 'estimate' ? ` (includes estimates of suppressed values; the truth is ${between})`
          : p.kind === 'secure' ? ` (secure: the holders' exact total of every practice's counts, rounded once; the truth is ${between})` : `; the truth is ${between}`);
      } else if (p.note) {
        title = `${s.label} ${months[p.i]}: not shown: ${p.note}`;
      } else {
        g.append(el('svg:text', { class: 'supp-mark', x: x(p.i), y: y(0) - 3, 'text-anchor': 'middle', text: 'S' }));
        title = `${s.label} ${months[p.i]}: suppressed, ${between}`;
      }
      g.append(el('svg:title', { text: title }));
      svg.append(g);
    }
  }
  return svg;
}

function table(head, rows, cls) {
  const t = el('table', { class: cls || null });
  t.append(el('thead', {}, el('tr', {}, ...head.map((h, i) => el('th', { class: i < 3 ? 'l' : null, text: h })))));
  const tb = el('tbody');
  for (const r of rows) tb.append(r);
  t.append(tb);
  return t;
}

// ---- pages ----

// Each page's loader reads the filters, fetches what the page needs and returns a function
// that draws it; render calls that function only if no newer render has started meanwhile.

async function loadTrends(signal) {
  const mode = $('f-value').value;
  const p = params();
  const months = monthsInRange();
  const practices = selected($('f-practices'));
  const pp = new URLSearchParams(p); pp.set('practice', practices.join(','));
  const [fed, prs] = await Promise.all([api('/api/figures?' + p, signal),
    practices.length ? api('/api/figures?' + pp, signal) : { rows: [] }]);
  return () => drawTrends(mode, months, practices, fed, prs);
}

function drawTrends(mode, months, practices, fed, prs) {
  const charts = $('trend-charts');
  charts.replaceChildren();
  const tableRows = [];
  const csv = [['period', 'measure', 'practice', 'status', 'method', 'shown', 'value', 'lower', 'upper', 'list_size', 'note']];
  for (const meas of S.meta.measures) {
    const series = [];
    const mk = (rows, practice, label, color) => {
      const byMonth = new Map(rows.filter((r) => r.measure === meas.name && (r.practice || '') === practice).map((r) => [r.period, r]));
      const pts = [];
      months.forEach((mo, i) => {
        const r = byMonth.get(mo);
        if (!r) return;
        const v = value(r, mode);
        pts.push({ i, ...v });
        const shown = hasRates(meas.name) ? mode : 'count';
        const dp = shown === 'count' ? 0 : 2;
        const cellText = v.v === null ? (v.note ? 'not shown' : 'suppressed') : fmt(v.v, dp) + (v.kind === 'estimate' ? ' (est.)' : v.kind === 'secure' ? ' (secure)' : '');
        const tr = el('tr', { 'data-measure': meas.name, 'data-month': mo, 'data-practice': practice, 'data-value': v.v ?? '', 'data-kind': v.kind },
          el('td', { class: 'l', text: mo }), el('td', { class: 'l', text: meas.name }), el('td', { class: 'l', text: practice || 'federation' }),
          el('td', { class: 'l', text: r.status }),
          el('td', { class: v.kind === 'suppressed' ? 'supp' : v.kind === 'estimate' ? 'est' : v.kind === 'secure' ? 'sec' : null, title: v.note || r.note || null, text: cellText }),
          el('td', { text: fmt(v.lo, dp) }), el('td', { text: v.hi === null && v.lo !== null ? 'unbounded' : fmt(v.hi, dp) }),
          el('td', { text: fmt(r.list_size, 0) }));
        tableRows.push(tr);
        csv.push([mo, meas.name, practice || 'federation', r.status, r.method, shown, v.v ?? '', v.lo ?? '', v.hi ?? '', r.list_size ?? '', v.note || r.note || '']);
      });
      series.push({ practice, label, color, points: pts });
    };
    mk(fed.rows, '', 'Federation', '#005eb8');
    practices.forEach((id, k) => mk(prs.rows, id, id, PALETTE[k % PALETTE.length]));
    const shownMode = hasRates(meas.name) ? mode : 'count';
    const fig = el('figure', { class: 'chart', 'data-measure': meas.name },
      el('h3', { text: meas.name.replaceAll('_', ' ') + ' — ' + MODE_LABEL[shownMode] }),
      el('p', { class: 'desc', text: describe(meas) }),
      lineChart(meas.name, months, series, shownMode));
    if (practices.length) {
      fig.append(el('p', { class: 'desc' }, ...[['Federation', '#005eb8'], ...practices.map((id, k) => [id, PALETTE[k % PALETTE.length]])].map(([n, c]) => {
        const sw = el('span', { class: 'key' }); sw.style.background = c; return el('span', {}, sw, document.createTextNode(n + ' '));
      })));
    }
    charts.append(fig);
  }
  $('trend-table').replaceChildren(table(['Month', 'Measure', 'Practice', 'Status', 'Shown', 'Lower', 'Upper', 'List size'], tableRows));
  S.shown = { name: 'trends', rows: csv, from: months[0] || '', to: months[months.length - 1] || '' };
}

async function loadCompleteness(signal) {
  const p = params();
  p.delete('age_band'); p.delete('sex');
  const months = monthsInRange();
  const res = await api('/api/completeness?' + p, signal);
  return () => drawCompleteness(months, res);
}

function drawCompleteness(months, res) {
  const practices = [...new Set(res.rows.map((r) => r.practice))];
  const at = new Map(res.rows.map((r) => [r.practice + ' ' + r.month, r]));
  const C = 14, L = 150, T = 110;
  const W = L + months.length * C + 10, H = T + practices.length * C + 10;
  const svg = el('svg:svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': 'Which practice submitted which month' });
  svg.style.width = W + 'px';
  months.forEach((m, i) => {
    const n = practices.filter((pr) => at.get(pr + ' ' + m)?.submitted).length;
    svg.append(el('svg:text', { x: L + i * C + C / 2, y: T - 6, transform: `rotate(-60 ${L + i * C + C / 2} ${T - 6})`, text: `${m} (${n}/${practices.length})` }));
  });
  const csv = [['practice', 'month', 'submitted', 'run_id', 'created', 'revisions', 'quarantined', 'excluded']];
  const trs = [];
  practices.forEach((pr, j) => {
    svg.append(el('svg:text', { x: L - 6, y: T + j * C + C - 3, 'text-anchor': 'end', text: S.names[pr] ? `${pr} ${S.names[pr]}`.slice(0, 24) : pr }));
    months.forEach((m, i) => {
      const r = at.get(pr + ' ' + m);
      if (!r) return;
      const color = r.quarantined ? '#c62828' : !r.submitted ? '#e3e6ea' : r.revisions ? '#7cb342' : '#2e7d32';
      const rect = el('svg:rect', { x: L + i * C, y: T + j * C, width: C - 2, height: C - 2, rx: 2, fill: color,
        'data-practice': pr, 'data-month': m, 'data-submitted': String(r.submitted) });
      rect.append(el('svg:title', { text: r.submitted ? `${pr} ${m}: run ${r.run_id}, ${r.created}` + (r.revisions ? `, replaced ${r.revisions} earlier run(s)` : '') + (r.quarantined ? `, ${r.quarantined} file(s) quarantined` : '') : `${pr} ${m}: not submitted` + (r.quarantined ? `, ${r.quarantined} file(s) quarantined` : '') }));
      svg.append(rect);
      // Measures counted by another definition than the federation's are left out, with why.
      const excluded = [r.excluded, r.absent && 'absent ' + r.absent].filter(Boolean).join('; ');
      csv.push([pr, m, r.submitted, r.run_id || '', r.created || '', r.revisions, r.quarantined, excluded]);
      trs.push(el('tr', {}, el('td', { class: 'l', text: pr }), el('td', { class: 'l', text: m }), el('td', { class: 'l', text: r.submitted ? 'yes' : 'no' }),
        el('td', { text: r.run_id || '' }), el('td', { text: r.created || '' }), el('td', { text: r.revisions }), el('td', { text: r.quarantined }),
        el('td', { class: 'l excluded', text: excluded })));
    });
  });
  $('completeness-grid').replaceChildren(svg);
  $('completeness-table').replaceChildren(table(['Practice', 'Month', 'Submitted', 'Run', 'Created', 'Revisions', 'Quarantined', 'Measures not combined'], trs));
  S.shown = { name: 'completeness', rows: csv, from: months[0] || '', to: months[months.length - 1] || '' };
}

async function loadCompare(signal) {
  const p = params();
  p.set('measure', $('f-measure').value);
  const c = await api('/api/compare?' + p, signal);
  return () => drawCompare(c);
}

function drawCompare(c) {
  const fr = c.federation_rate_per_1000 || 0;
  const W = 900, H = 440, L = 60, R = 20, T = 16, B = 40;
  let xmax = 0, ymax = fr * 1.5;
  for (const pr of c.practices) {
    xmax = Math.max(xmax, pr.expected);
    ymax = Math.max(ymax, (pr.ratio_at_upper ?? 0) * fr, (pr.standardised_rate_per_1000 ?? 0));
  }
  xmax = niceMax(xmax * 1.05); ymax = niceMax(ymax * 1.05);
  const x = (v) => L + (W - L - R) * (v / xmax);
  const y = (v) => T + (H - T - B) * (1 - Math.min(v, ymax) / ymax);
  const svg = el('svg:svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `Funnel plot of ${c.measure}` });
  for (const v of ticksFor(ymax)) {
    svg.append(el('svg:line', { class: 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    svg.append(el('svg:text', { x: L - 5, y: y(v) + 4, 'text-anchor': 'end', text: fmt(v, ymax < 10 ? 2 : 0) }));
  }
  for (const u of ticksFor(xmax)) svg.append(el('svg:text', { x: x(u), y: H - 22, 'text-anchor': 'middle', text: fmt(u, xmax < 10 ? 1 : 0) }));
  svg.append(el('svg:text', { x: (L + W) / 2, y: H - 5, 'text-anchor': 'middle', text: 'expected events at the federation\'s age-sex rates' }));
  svg.append(el('svg:text', { x: 12, y: H / 2, transform: `rotate(-90 12 ${H / 2})`, 'text-anchor': 'middle', text: `standardised rate per 1,000, ${c.from} to ${c.to}` }));
  const curve = (key, dash, color) => {
    const d = c.limits.filter((pt) => pt.expected <= xmax).map((pt, i) => (i ? 'L' : 'M') + x(pt.expected).toFixed(1) + ',' + y(pt[key] * fr).toFixed(1)).join('');
    if (d) svg.append(el('svg:path', { d, fill: 'none', stroke: color, 'stroke-dasharray': dash, 'stroke-width': 1.3, 'data-limit': key }));
  };
  curve('limit95_lower', '5 3', '#e69500'); curve('limit95_upper', '5 3', '#e69500');
  curve('limit998_lower', null, '#b3261e'); curve('limit998_upper', null, '#b3261e');
  svg.append(el('svg:line', { x1: L, x2: W - R, y1: y(fr), y2: y(fr), stroke: '#005eb8', 'stroke-width': 1.5 }));
  svg.append(el('svg:text', { x: W - R, y: y(fr) - 4, 'text-anchor': 'end', fill: '#005eb8', text: `federation ${fmt(fr, 2)}` }));
  const csv = [['practice', 'name', 'status', 'observed', 'method', 'observed_lower', 'observed_upper', 'expected', 'ratio', 'ratio_ci_lower', 'ratio_ci_upper', 'standardised_rate_per_1000', 'position']];
  const trs = [];
  for (const pr of c.practices) {
    const est = pr.method === 'estimated';
    const g = el('svg:g', { class: 'pt', 'data-practice': pr.practice, 'data-value': pr.standardised_rate_per_1000 ?? '', 'data-position': pr.position });
    if (pr.ratio_at_lower !== null && pr.ratio_at_upper > pr.ratio_at_lower) {
      g.append(el('svg:line', { x1: x(pr.expected), x2: x(pr.expected), y1: y(pr.ratio_at_lower * fr), y2: y(pr.ratio_at_upper * fr), stroke: '#8a919c', 'stroke-dasharray': pr.status === 'suppressed' ? '2 2' : null }));
    }
    if (pr.standardised_rate_per_1000 !== null && pr.standardised_rate_per_1000 !== undefined) {
      const out = pr.position.startsWith('above') || pr.position.startsWith('below');
      g.append(el('svg:circle', { cx: x(pr.expected), cy: y(pr.standardised_rate_per_1000), r: 4, fill: est ? '#fff' : (out ? '#b3261e' : '#1d2430'), stroke: out ? '#b3261e' : '#1d2430', 'stroke-width': 1.3 }));
    }
    g.append(el('svg:title', { text: `${pr.practice} ${pr.name || ''}: ` + (pr.status === 'suppressed' ? 'suppressed' : `${fmt(pr.standardised_rate_per_1000, 2)} per 1,000${est ? ' (estimate)' : ''}`) + `; ${fmt(pr.observed_lower, 0)}–${fmt(pr.observed_upper, 0)} observed, ${fmt(pr.expected, 1)} expected; ${pr.position.replaceAll('_', ' ')}` }));
    svg.append(g);
    csv.push([pr.practice, pr.name || '', pr.status, pr.observed ?? '', pr.method, pr.observed_lower, pr.observed_upper, pr.expected, pr.ratio ?? '', pr.ratio_ci_lower ?? '', pr.ratio_ci_upper ?? '', pr.standardised_rate_per_1000 ?? '', pr.position]);
    trs.push(el('tr', { 'data-practice': pr.practice }, el('td', { class: 'l', text: pr.practice }), el('td', { class: 'l', text: pr.name || '' }), el('td', { class: 'l', text: pr.status }),
      el('td', { class: pr.status === 'suppressed' ? 'supp' : est ? 'est' : null, text: pr.status === 'suppressed' ? 'suppressed' : fmt(pr.observed, 0) + (est ? ' (est.)' : '') }),
      el('td', { text: `${fmt(pr.observed_lower, 0)}–${fmt(pr.observed_upper, 0)}` }), el('td', { text: fmt(pr.expected, 1) }),
      el('td', { text: pr.ratio === null ? '' : `${fmt(pr.ratio, 3)} (${fmt(pr.ratio_ci_lower, 3)}–${fmt(pr.ratio_ci_upper, 3)})` }),
      el('td', { text: fmt(pr.standardised_rate_per_1000, 2) }), el('td', { class: 'l', text: pr.position.replaceAll('_', ' ') })));
  }
  $('funnel').replaceChildren(el('h3', { text: `${c.measure.replaceAll('_', ' ')}, ${c.from} to ${c.to}` }), svg);
  $('compare-table').replaceChildren(table(['Practice', 'Name', 'Status', 'Observed', 'Bounds', 'Expected', 'Ratio (95% CI)', 'Std rate /1,000', 'Position'], trs));
  S.shown = { name: 'compare-' + c.measure, rows: csv, from: c.from, to: c.to };
}

const PAGE_CONTENT = {
  trends: ['trend-charts', 'trend-table'],
  completeness: ['completeness-grid', 'completeness-table'],
  compare: ['funnel', 'compare-table'],
};

// clearPage removes the page's figures: what stays on screen must match the filters.
function clearPage(page) { for (const id of PAGE_CONTENT[page]) $(id).replaceChildren(); }

// render draws the current page for the current filters. Renders are sequenced: a render
// that a newer one (a filter changed again, another page chosen) overtook while its answer
// was on the way draws nothing, however late that answer comes, and its request is
// cancelled. Until the newest render has drawn, there is nothing to download.
async function render() {
  const seq = ++S.seq;
  if (S.abort) S.abort.abort();
  const abort = new AbortController();
  S.abort = abort;
  const page = S.page;
  S.shown = null;
  $('download').disabled = true;
  $('error').textContent = '';
  $('notice').textContent = '';
  document.body.dataset.ready = 'false';
  for (const e of document.querySelectorAll('.for-trends')) e.hidden = page !== 'trends';
  for (const e of document.querySelectorAll('.for-compare')) e.hidden = page !== 'compare';
  for (const e of document.querySelectorAll('.for-figures')) e.hidden = page === 'completeness';
  for (const pg of Object.keys(PAGE_CONTENT)) $('page-' + pg).hidden = page !== pg;
  for (const t of document.querySelectorAll('.tab')) t.classList.toggle('active', t.dataset.page === page);
  let draw = null, failure = null;
  if (page !== 'completeness' && sexesTicked().length === 0) {
    draw = () => { clearPage(page); $('notice').textContent = `No sex is ticked. Tick at least one sex (${S.meta.sexes.join(', ')}) to see figures.`; };
  } else {
    try {
      draw = await (page === 'trends' ? loadTrends : page === 'completeness' ? loadCompleteness : loadCompare)(abort.signal);
    } catch (e) {
      failure = e;
    }
  }
  if (seq !== S.seq) return; // overtaken: the newer render draws
  S.abort = null;
  if (failure instanceof AuthError) { logout('Logged out: ' + failure.message); return; }
  if (failure) {
    clearPage(page);
    $('error').textContent = failure.message;
  } else {
    draw();
  }
  $('download').disabled = !S.shown;
  document.body.dataset.ready = 'true';
  document.body.dataset.renders = String((Number(document.body.dataset.renders) || 0) + 1);
}

function download() {
  const shown = S.shown;
  if (!shown) return;
  const q = (v) => { const s = String(v ?? ''); return /[",\n]/.test(s) ? '"' + s.replaceAll('"', '""') + '"' : s; };
  const text = shown.rows.map((r) => r.map(q).join(',')).join('\n') + '\n';
  const a = el('a', { href: URL.createObjectURL(new Blob([text], { type: 'text/csv' })), download: `tributary-${shown.name}-${shown.from}-${shown.to}.csv` });
  document.body.append(a); a.click(); a.remove();
}

document.addEventListener('DOMContentLoaded', () => {
  $('login-form').addEventListener('submit', (ev) => { ev.preventDefault(); login($('token').value); });
  $('logout').addEventListener('click', () => logout());
  $('filters').addEventListener('change', () => render());
  $('download').addEventListener('click', download);
  $('print').addEventListener('click', () => window.print());
  for (const t of document.querySelectorAll('.tab')) t.addEventListener('click', () => { S.page = t.dataset.page; render(); });
  const saved = sessionStorage.getItem('tributary-token');
  if (saved) login(saved);
});
