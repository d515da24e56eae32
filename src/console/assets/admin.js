// The operator's views: the unroutable queue with its routing reasons and Assign, the
// directory (employers, providers, contracts), API clients, and webhook endpoints' health.
// Refusals are shown as the API's problem `detail`, word for word.

import * as api from './api.js';
import {el, clear, table, field, problemBox, status} from './dom.js';

export function adminViews() {
  return [
    ['Unroutable', unroutableView],
    ['Employers', (root) => directory(root, EMPLOYERS)],
    ['Providers', (root) => directory(root, PROVIDERS)],
    ['Contracts', (root) => directory(root, CONTRACTS)],
    ['Clients', clientsView],
    ['Webhooks', webhooksView],
  ];
}

// Ids are UUIDv7: their first digits are a timestamp shared by everything made together, so
// the short form is the random tail.
const shortId = (id) => (id ? `…${id.slice(-8)}` : id);

// One reason, as the API gives it (a rule's code, or an object for a parameterised rule).
const reasonText = (r) => (typeof r === 'string' ? r : JSON.stringify(r));

function routingReasons(decision, names) {
  if (!decision) return 'No routing decision recorded.';
  if (decision.summary) {
    const s = decision.summary;
    return el('div', {}, `${s.considered} considered, ${s.eligible} eligible. `,
      el('ul', {class: 'reasons'}, s.reasons.map((r) => el('li', {}, `${reasonText(r.reason)}: ${r.providers} provider(s)`))));
  }
  if (!decision.reports.length) return 'No provider is under contract.';
  return el('ul', {class: 'reasons'}, decision.reports.map((r) => el('li', {},
    names.get(r.provider_id) || el('span', {class: 'mono'}, shortId(r.provider_id)), ': ',
    r.verdict === 'excluded' ? r.reasons.map(reasonText).join(', ') : `ranked ${r.rank}`)));
}

async function unroutableView(root) {
  const problem = problemBox();
  const list = el('div', {id: 'unroutable'});
  root.append(el('h2', {}, 'Unroutable referrals'),
    el('p', {}, 'Referrals no contracted provider could take, with the routing reasons. Assign offers one to a provider under contract with its employer.'),
    problem, list);
  async function load() {
    try {
      const [items, providers] = await Promise.all([api.all('/v1/admin/unroutable'), api.all('/v1/admin/providers')]);
      const names = new Map(providers.map((p) => [p.id, p.name]));
      const contracted = new Map();
      for (const employer of new Set(items.map((i) => i.employer_id))) {
        const contracts = await api.all('/v1/admin/contracts', {employer_id: employer});
        contracted.set(employer, contracts.filter((c) => c.active));
      }
      clear(list, status(`${items.length} referral(s) waiting.`), table([
        ['Referral', (r) => el('span', {class: 'mono'}, r.id)],
        ['Employer', (r) => el('span', {class: 'mono'}, shortId(r.employer_id))],
        ['Service', (r) => r.service_type], ['Urgency', (r) => r.urgency],
        ['Modality', (r) => r.modality], ['Language', (r) => r.language], ['Region', (r) => r.region],
        ['Since (UTC)', (r) => r.created_at],
        ['Routing reasons', (r) => routingReasons(r.routing, names)],
        ['Assign', (r) => assignForm(r, contracted.get(r.employer_id) || [], names)],
      ], items, {id: 'unroutable-table'}));
    } catch (e) {
      problem.show(e);
    }
  }
  function assignForm(r, contracts, names) {
    const choice = el('select', {'aria-label': `Provider for referral ${r.id}`},
      contracts.map((c) => el('option', {value: c.provider_id}, `${names.get(c.provider_id) || c.provider_id} (priority ${c.priority})`)));
    const refusal = problemBox();
    const submit = el('button', {type: 'submit', disabled: contracts.length === 0}, 'Assign');
    return el('form', {class: 'inline', 'data-referral': r.id, on: {submit: async (e) => {
      e.preventDefault();
      refusal.show(null);
      try {
        const done = await api.post(`/v1/admin/unroutable/${r.id}/assign`, {provider_id: choice.value});
        problem.show(null);
        clear(list, status(`Referral ${done.id} offered to ${names.get(done.provider_id) || done.provider_id} (${done.status}).`));
        setTimeout(load, 1500);
      } catch (err) {
        refusal.show(err);
      }
    }}}, contracts.length ? choice : 'No active contract.', submit, refusal);
  }
  load();
}

// Field kinds: text, number, list (comma-separated), bool, ref (a select of another list) and
// refs (a checkbox for each item of another list).
const AFFILIATIONS = {name: 'affiliated_provider_ids', kind: 'refs', from: '/v1/admin/providers',
  label: 'Affiliated providers: never offered this employer\'s referrals'};

const EMPLOYERS = {
  title: 'Employers', path: '/v1/admin/employers', id: 'employers',
  columns: [['Name', (e) => e.name], ['Id', (e) => e.id], ['Active', (e) => e.active],
    ['Affiliated providers', (e) => e.affiliated_provider_ids.map(shortId)], ['Updated (UTC)', (e) => e.updated_at]],
  create: [{name: 'name', label: 'Name', kind: 'text', required: true}, AFFILIATIONS],
  edit: [{name: 'name', label: 'Name', kind: 'text'}, AFFILIATIONS],
};

const PROVIDER_FIELDS = [
  {name: 'name', label: 'Name', kind: 'text', required: true},
  {name: 'services', label: 'Services', kind: 'list', schema: 'Service', required: true},
  {name: 'languages', label: 'Languages', kind: 'list', schema: 'Language', required: true},
  {name: 'regions', label: 'Regions', kind: 'list', schema: 'Region', required: true},
  {name: 'modalities', label: 'Modalities', kind: 'list', schema: 'Modality', required: true},
  {name: 'capacity', label: 'Capacity', kind: 'number', required: true},
  {name: 'crisis_capable', label: 'Crisis capable', kind: 'bool'},
  {name: 'interpretation', label: 'Interpretation', kind: 'bool'},
  {name: 'serves_helping_professionals', label: 'Serves helping professionals', kind: 'bool'},
];

const PROVIDERS = {
  title: 'Providers', path: '/v1/admin/providers', id: 'providers',
  columns: [['Name', (p) => p.name], ['Id', (p) => p.id], ['Status', (p) => p.status], ['Active', (p) => p.active],
    ['Services', (p) => p.services], ['Languages', (p) => p.languages], ['Regions', (p) => p.regions],
    ['Modalities', (p) => p.modalities], ['Load', (p) => `${p.active_referrals} / ${p.capacity}`]],
  create: PROVIDER_FIELDS,
  edit: PROVIDER_FIELDS.map((f) => ({...f, required: false})),
};

const CONTRACTS = {
  title: 'Contracts', path: '/v1/admin/contracts', id: 'contracts',
  columns: [['Employer', (c) => el('span', {class: 'mono'}, shortId(c.employer_id))],
    ['Provider', (c) => el('span', {class: 'mono'}, shortId(c.provider_id))], ['Priority', (c) => c.priority],
    ['Starts (UTC)', (c) => c.starts_at], ['Ends (UTC)', (c) => c.ends_at], ['Active', (c) => c.active],
    ['In force', (c) => c.in_force], ['Id', (c) => c.id]],
  create: [
    {name: 'employer_id', label: 'Employer', kind: 'ref', from: '/v1/admin/employers', required: true},
    {name: 'provider_id', label: 'Provider', kind: 'ref', from: '/v1/admin/providers', required: true},
    {name: 'priority', label: 'Priority', kind: 'number', required: true},
    {name: 'days', label: 'Days (empty: open-ended)', kind: 'number'},
  ],
  edit: [{name: 'priority', label: 'Priority', kind: 'number'}, {name: 'days', label: 'Days', kind: 'number'}],
};

function input(f, value) {
  let node;
  if (f.kind === 'bool') {
    node = el('input', {type: 'checkbox'});
    node.checked = Boolean(value);
    node.read = () => node.checked;
  } else if (f.kind === 'refs') {
    // Checkboxes rather than a multiple select: usable with the keyboard and on a phone alike.
    const chosen = new Set(value || []);
    node = el('fieldset', {class: 'refs'}, el('legend', {}, f.label));
    api.all(f.from).then((items) => node.append(...items.map((i) => {
      const box = el('input', {type: 'checkbox', value: i.id});
      box.checked = chosen.has(i.id);
      return el('label', {class: 'check'}, box, `${i.name} (${shortId(i.id)})${i.active ? '' : ', inactive'}`);
    })));
    // Sorted, so an unchanged choice compares equal to the stored one; nothing chosen on a new
    // item sends nothing.
    node.read = () => {
      const ids = [...node.querySelectorAll('input:checked')].map((b) => b.value).sort();
      return ids.length === 0 && chosen.size === 0 ? undefined : ids;
    };
  } else if (f.kind === 'ref') {
    node = el('select', {required: f.required});
    api.all(f.from).then((items) => node.append(...items.filter((i) => i.active)
      .map((i) => el('option', {value: i.id}, `${i.name} (${shortId(i.id)})`))));
    node.read = () => node.value;
  } else {
    node = el('input', {type: f.kind === 'number' ? 'number' : 'text', required: f.required});
    if (value !== undefined && value !== null) node.value = Array.isArray(value) ? value.join(', ') : value;
    node.read = () => {
      const v = node.value.trim();
      if (v === '') return undefined;
      if (f.kind === 'number') return Number(v);
      if (f.kind === 'list') return v.split(',').map((s) => s.trim()).filter(Boolean);
      return v;
    };
    if (f.schema) api.schemaEnum(f.schema).then((values) => node.setAttribute('placeholder', values.slice(0, 6).join(', ')));
  }
  node.name = f.name;
  return node;
}

function formFor(fields, values, label, onSubmit) {
  const inputs = fields.map((f) => [f, input(f, values ? values[f.name] : undefined)]);
  const problem = problemBox();
  const form = el('form', {class: 'form grid', on: {submit: async (e) => {
    e.preventDefault();
    problem.show(null);
    const body = {};
    for (const [f, node] of inputs) {
      const v = node.read();
      const before = values && f.kind === 'refs' ? [...(values[f.name] || [])].sort() : values?.[f.name];
      const unchanged = values && JSON.stringify(v) === JSON.stringify(before);
      if (v !== undefined && !unchanged && !(f.kind === 'bool' && !values && !v)) body[f.name] = v;
    }
    try {
      await onSubmit(body);
    } catch (err) {
      problem.show(err);
    }
  }}}, inputs.map(([f, node]) => (f.kind === 'refs' ? node : field(f.label, node))), el('div', {class: 'actions'}, el('button', {type: 'submit'}, label)));
  return el('div', {}, form, problem);
}

async function directory(root, spec) {
  const problem = problemBox();
  const list = el('div', {id: spec.id});
  const editor = el('div', {id: `${spec.id}-editor`});
  async function load(note) {
    try {
      const items = await api.all(spec.path);
      clear(list, note ? status(note) : null, table([...spec.columns, ['Actions', (item) => el('div', {class: 'row-actions'},
        el('button', {type: 'button', on: {click: () => edit(item)}}, 'Edit'),
        item.active ? el('button', {type: 'button', on: {click: () => act(() => api.post(`${spec.path}/${item.id}/deactivate`), `Deactivated ${item.name || item.id}.`)}}, 'Deactivate') : null)]],
      items, {id: `${spec.id}-table`}));
    } catch (e) {
      problem.show(e);
    }
  }
  async function act(f, note) {
    problem.show(null);
    try {
      await f();
      clear(editor);
      load(note);
    } catch (e) {
      problem.show(e);
    }
  }
  function edit(item) {
    clear(editor, el('h3', {}, `Edit ${item.name || item.id}`),
      formFor(spec.edit, item, 'Save changes', async (body) => {
        await api.patch(`${spec.path}/${item.id}`, body);
        clear(editor);
        load(`Saved ${item.name || item.id}.`);
      }));
    editor.querySelector('input, select')?.focus();
  }
  root.append(el('h2', {}, spec.title), problem, list, editor,
    el('h3', {}, `New ${spec.title.toLowerCase().replace(/s$/, '')}`),
    formFor(spec.create, null, 'Create', async (body) => {
      const made = await api.post(spec.path, body);
      load(`Created ${made.name || made.id}.`);
    }));
  load();
}

// A new secret, shown this once, with a copy button.
function secretBox(client) {
  const secret = el('code', {id: 'new-secret', class: 'mono secret'}, client.client_secret);
  const copied = el('span', {role: 'status'});
  return el('div', {class: 'secret-box', role: 'alert'},
    el('p', {}, el('strong', {}, 'Store this secret now: it is never shown again.'),
      ` Client ${client.name} (`, el('span', {class: 'mono'}, client.client_id), ')'),
    secret,
    el('div', {class: 'actions'}, el('button', {type: 'button', id: 'copy-secret', on: {click: async () => {
      try {
        await navigator.clipboard.writeText(client.client_secret);
        copied.textContent = 'Copied.';
      } catch {
        copied.textContent = 'Copy refused by the browser: select the secret and copy it.';
      }
    }}}, 'Copy secret'), copied));
}

async function clientsView(root) {
  const problem = problemBox();
  const list = el('div', {id: 'clients'});
  const shown = el('div', {id: 'secret'});
  async function load() {
    try {
      const items = await api.all('/v1/admin/clients');
      clear(list, table([
        ['Name', (c) => c.name], ['Client id', (c) => el('span', {class: 'mono'}, c.client_id)], ['Role', (c) => c.role],
        ['Status', (c) => el('span', {class: `pill ${c.status}`}, c.status)],
        ['Employer', (c) => shortId(c.employer_id)], ['Provider', (c) => shortId(c.provider_id)],
        ['Secret rotated (UTC)', (c) => c.secret_rotated_at], ['Revoked (UTC)', (c) => c.revoked_at],
        ['Actions', (c) => c.status === 'revoked' ? null : el('div', {class: 'row-actions'},
          el('button', {type: 'button', 'data-action': 'rotate', on: {click: () => act(async () => clear(shown, secretBox(await api.post(`/v1/admin/clients/${c.client_id}/rotate-secret`))))}}, 'Rotate secret'),
          el('button', {type: 'button', 'data-action': 'revoke', on: {click: () => act(() => api.post(`/v1/admin/clients/${c.client_id}/revoke`))}}, 'Revoke'))],
      ], items, {id: 'clients-table'}));
    } catch (e) {
      problem.show(e);
    }
  }
  async function act(f) {
    problem.show(null);
    try {
      await f();
      load();
    } catch (e) {
      problem.show(e);
    }
  }
  const name = el('input', {id: 'new-client-name', required: true, maxlength: 100});
  const role = el('select', {id: 'new-client-role'}, ['admin', 'auditor', 'hr_portal', 'provider'].map((r) => el('option', {value: r}, r)));
  const tenant = el('input', {id: 'new-client-tenant', maxlength: 36});
  const createProblem = problemBox();
  const form = el('form', {class: 'form grid', on: {submit: async (e) => {
    e.preventDefault();
    createProblem.show(null);
    const body = {name: name.value.trim(), role: role.value};
    if (role.value === 'hr_portal') body.employer_id = tenant.value.trim();
    if (role.value === 'provider') body.provider_id = tenant.value.trim();
    try {
      clear(shown, secretBox(await api.post('/v1/admin/clients', body)));
      name.value = '';
      load();
    } catch (err) {
      createProblem.show(err);
    }
  }}}, field('Name', name), field('Role', role), field('Employer or provider id', tenant, 'for hr_portal and provider clients'),
  el('div', {class: 'actions'}, el('button', {type: 'submit'}, 'Create client')));
  root.append(el('h2', {}, 'API clients'), shown, problem, list, el('h3', {}, 'New client'), form, createProblem);
  load();
}

// Webhook endpoint lists: each is one more table of the same shape. Providers' endpoints name
// their provider and an admin may disable one; operator (alert) endpoints belong to the EAP
// itself, and the admin may ping one to test the on-call receiver.
const WEBHOOK_LISTS = [
  {title: 'Provider webhook endpoints', path: '/v1/admin/provider-webhooks', id: 'provider-webhooks',
    provider: true, action: {label: 'Disable', path: 'disable'}},
  {title: 'Operator alert endpoints', path: '/v1/admin/webhooks', id: 'operator-webhooks',
    provider: false, action: {label: 'Ping', path: 'ping'}},
];

async function webhooksView(root) {
  root.append(el('h2', {}, 'Webhook endpoints'),
    el('p', {}, 'Delivery health: active (delivering), failing (deliveries are being retried), disabled (no deliveries).'));
  for (const list of WEBHOOK_LISTS) {
    const problem = problemBox();
    const out = el('div', {id: list.id});
    root.append(el('h3', {}, list.title), problem, out);
    const load = async () => {
      try {
        const items = await api.all(list.path);
        const owner = list.provider ? [['Provider', (w) => el('span', {class: 'mono'}, shortId(w.provider_id))]] : [];
        clear(out, table([
          ['Endpoint', (w) => el('span', {class: 'mono'}, w.url)], ['Description', (w) => w.description],
          ...owner,
          ['Health', (w) => el('span', {class: `pill ${w.status}`}, w.status)],
          ['Since (UTC)', (w) => w.status_changed_at], ['Created (UTC)', (w) => w.created_at],
          ['Actions', (w) => w.status === 'disabled' ? null : el('button', {type: 'button', on: {click: async () => {
            try {
              await api.post(`${list.path}/${w.id}/${list.action.path}`);
              load();
            } catch (e) {
              problem.show(e);
            }
          }}}, list.action.label)],
        ], items, {id: `${list.id}-table`}));
      } catch (e) {
        problem.show(e);
      }
    };
    load();
  }
}
