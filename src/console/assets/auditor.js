// The auditor's views: the access log searched and paged, charts of its counts, checkpoints
// and verification, and exports. Every number comes from the API; nothing is counted here.

import * as api from './api.js';
import {el, clear, table, field, problemBox, status, utcInput} from './dom.js';
import {timeline, byActor, OUTCOMES} from './chart.js';

const HOUR = 3_600_000;

export function auditorViews() {
  return [
    ['Access log', searchView],
    ['Charts', chartsView],
    ['Checkpoints', checkpointsView],
    ['Export', exportView],
  ];
}

function select(options, empty) {
  return el('select', {}, empty ? el('option', {value: ''}, empty) : null,
    options.map((o) => el('option', {value: o}, o)));
}

function searchView(root) {
  const from = utcInput();
  const to = utcInput();
  const actor = el('input', {id: 'f-actor', maxlength: 64});
  const action = select([], 'any action');
  action.id = 'f-action';
  const resource = el('input', {id: 'f-resource', maxlength: 64});
  const outcome = select(OUTCOMES, 'any outcome');
  outcome.id = 'f-outcome';
  const limit = el('input', {type: 'number', min: 1, max: 1000, value: 50, id: 'f-limit'});
  from.id = 'f-from';
  to.id = 'f-to';
  api.schemaEnum('LoggedAction').then((actions) =>
    action.append(...actions.map((a) => el('option', {value: a}, a))));
  const problem = problemBox();
  const results = el('div', {id: 'results'});
  const cursors = [];
  let current;

  async function load(after) {
    problem.show(null);
    try {
      const page = await api.get('/v1/audit/events', {
        from: from.rfc3339(), to: to.rfc3339(), actor: actor.value.trim(), action: action.value,
        resource_id: resource.value.trim(), outcome: outcome.value, limit: limit.value, after,
      });
      current = after;
      render(page);
    } catch (e) {
      problem.show(e);
    }
  }

  function render(page) {
    const prev = el('button', {type: 'button', disabled: cursors.length === 0, on: {click: () => load(cursors.pop())}}, 'Previous page');
    const next = el('button', {type: 'button', disabled: !page.next_cursor,
      on: {click: () => { cursors.push(current); load(page.next_cursor); }}}, 'Next page');
    clear(results,
      status(`${page.items.length} event(s) on this page; the log searched holds ${page.tree_size} sealed event(s).`),
      table([
        ['Seq', (e) => e.seq],
        ['Occurred (UTC)', (e) => e.occurred_at],
        ['Actor', (e) => e.actor_client_id],
        ['Role', (e) => e.actor_role],
        ['Tenant', (e) => e.tenant_id],
        ['Action', (e) => e.action],
        ['Resource', (e) => e.resource_type],
        ['Resource id', (e) => e.resource_id],
        ['Outcome', (e) => el('span', {class: `pill ${e.outcome}`}, e.outcome)],
        ['Status', (e) => e.http_status],
        ['Request id', (e) => e.request_id],
        ['Source', (e) => e.source_addr],
        ['Event id', (e) => e.id],
      ], page.items, {id: 'events', class: 'events'}),
      el('div', {class: 'pager'}, prev, next));
  }

  const form = el('form', {class: 'form grid', on: {submit: (e) => { e.preventDefault(); cursors.length = 0; load(); }}},
    field('From (UTC)', from), field('To (UTC)', to), field('Actor (client id)', actor),
    field('Action', action), field('Resource id', resource), field('Outcome', outcome),
    field('Page size', limit),
    el('div', {class: 'actions'}, el('button', {type: 'submit'}, 'Search')));
  root.append(el('h2', {}, 'Access log'), form, problem, results);
  load();
}

// A time range defaulting to the last 24 hours, shared by the charts and exports.
function rangeFields(hours = 24) {
  const now = Date.now();
  const from = utcInput(new Date(Math.floor((now - hours * HOUR) / HOUR) * HOUR));
  const to = utcInput(new Date(Math.ceil((now + 1) / HOUR) * HOUR));
  return {from, to};
}

function chartsView(root) {
  const {from, to} = rangeFields();
  from.id = 'c-from';
  to.id = 'c-to';
  const bucket = select(['hour', 'day']);
  bucket.id = 'c-bucket';
  const problem = problemBox();
  const out = el('div', {id: 'charts'});
  async function draw() {
    problem.show(null);
    const query = {from: from.rfc3339(), to: to.rfc3339(), bucket: bucket.value};
    try {
      const [outcomes, actors] = await Promise.all([
        api.get('/v1/audit/stats', {...query, by: 'outcome'}),
        api.get('/v1/audit/stats', {...query, by: 'actor', outcome: 'denied'}),
      ]);
      out.setAttribute('data-tree-size', outcomes.tree_size);
      clear(out,
        el('h3', {}, 'Timeline'), timeline(outcomes),
        el('h3', {}, 'Refusals by actor'), byActor(actors),
        status(`Counted over the sealed log (${outcomes.tree_size} events) by the server.`));
    } catch (e) {
      clear(out);
      problem.show(e);
    }
  }
  root.append(el('h2', {}, 'Charts'),
    el('form', {class: 'form grid', on: {submit: (e) => { e.preventDefault(); draw(); }}},
      field('From (UTC)', from), field('To (UTC)', to), field('Bucket', bucket),
      el('div', {class: 'actions'}, el('button', {type: 'submit'}, 'Draw'))),
    problem, out);
  draw();
}

function checkpointsView(root) {
  const problem = problemBox();
  const list = el('div', {id: 'checkpoints'});
  const verdict = el('div', {id: 'verdict', 'aria-live': 'polite'});
  const verify = el('button', {type: 'button', id: 'verify', on: {click: runVerify}}, 'Verify the log');
  async function runVerify() {
    verify.disabled = true;
    clear(verdict, status('Verifying… the server re-derives the log from its database.'));
    try {
      const v = await api.get('/v1/audit/verify');
      const first = v.first_problem;
      clear(verdict, el('div', {class: v.ok ? 'verdict ok' : 'verdict bad'},
        el('strong', {}, v.ok ? 'Intact' : `${v.findings_total} problem(s) found`),
        el('p', {}, `Positions ${v.start}–${v.end}: ${v.events} event(s) checked`,
          v.checkpoint ? ` against checkpoint ${v.checkpoint.n} (tree size ${v.checkpoint.tree_size})` : '',
          v.root_verified ? '; the signed root matches.' : '; no signed root was compared.'),
        first ? el('p', {class: 'first-problem'}, 'First problem: ', el('strong', {}, first.kind), ` — ${first.detail}`,
          first.seq !== null && first.seq !== undefined ? ` (position ${first.seq}` : '',
          first.event_id ? `, event ${first.event_id})` : (first.seq !== null && first.seq !== undefined ? ')' : '')) : null));
    } catch (e) {
      clear(verdict);
      problem.show(e);
    } finally {
      verify.disabled = false;
    }
  }
  async function load(after) {
    try {
      const page = await api.get('/v1/audit/checkpoints', {limit: 20, after});
      clear(list, table([
        ['#', (c) => c.n], ['Tree size', (c) => c.tree_size], ['Issued (UTC)', (c) => c.issued_at],
        ['Key', (c) => c.key_id], ['Root hash', (c) => el('span', {class: 'mono', title: c.root_hash}, `${c.root_hash.slice(0, 16)}…`)],
      ], page.items, {id: 'checkpoint-table'}),
      page.next_cursor ? el('button', {type: 'button', on: {click: () => load(page.next_cursor)}}, 'Next page') : null);
    } catch (e) {
      problem.show(e);
    }
  }
  root.append(el('h2', {}, 'Checkpoints and verification'),
    el('p', {}, 'The server re-derives the sealed log from its database and checks it against the signed checkpoints.'),
    el('div', {class: 'actions'}, verify), verdict, problem, el('h3', {}, 'Signed checkpoints'), list);
  load();
}

function exportView(root) {
  const {from, to} = rangeFields();
  from.id = 'x-from';
  to.id = 'x-to';
  const problem = problemBox();
  const done = el('div', {id: 'export-status', 'aria-live': 'polite'});
  const stamp = () => `${from.value || 'start'}_${to.value || 'now'}`.replace(/[:]/g, '');
  async function get(format) {
    problem.show(null);
    try {
      const name = `access-log-${stamp()}.${format}`;
      const bytes = await api.download('/v1/audit/export', {from: from.rfc3339(), to: to.rfc3339(), format}, name);
      clear(done, status(`Downloaded ${name} (${bytes} bytes).`));
    } catch (e) {
      problem.show(e);
    }
  }
  async function support(path, name) {
    try {
      await api.download(path, {}, name);
    } catch (e) {
      problem.show(e);
    }
  }
  const command = 'eap-referrals audit verify --events access-log-….ndjson --checkpoints checkpoints.json --public-key public-key.json';
  root.append(el('h2', {}, 'Export'),
    el('form', {class: 'form grid', on: {submit: (e) => e.preventDefault()}},
      field('From (UTC)', from), field('To (UTC)', to),
      el('div', {class: 'actions'},
        el('button', {type: 'button', id: 'export-ndjson', on: {click: () => get('ndjson')}}, 'Download NDJSON (with proof)'),
        el('button', {type: 'button', id: 'export-csv', on: {click: () => get('csv')}}, 'Download CSV'))),
    problem, done,
    el('h3', {}, 'Verify the NDJSON export offline'),
    el('p', {}, 'Keep the checkpoints and the public key next to the export (take the public key once, over a channel you trust), then run:'),
    el('div', {class: 'actions'},
      el('button', {type: 'button', id: 'get-checkpoints', on: {click: () => support('/v1/audit/checkpoints', 'checkpoints.json')}}, 'Download checkpoints.json'),
      el('button', {type: 'button', id: 'get-key', on: {click: () => support('/v1/audit/public-key', 'public-key.json')}}, 'Download public-key.json')),
    el('pre', {class: 'command'}, el('code', {}, command)),
    el('p', {class: 'hint'}, 'Exit 0: intact. Exit 1: each modified, missing, inserted or reordered event is named. CSV carries no proof; it is for spreadsheets.'));
}
