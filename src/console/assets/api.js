// The console's one way to the API. The token, and the client secret used to renew it, live
// in this module's memory only: never in the browser's storage or a cookie, so they are
// gone when the tab closes. Tokens last at most 15 minutes; the secret is kept so an auditor
// in the middle of an investigation is not asked for it again every quarter of an hour.

let session = null;

export class ApiError extends Error {
  constructor(status, problem) {
    super(describe(status, problem));
    this.status = status;
    this.problem = problem;
  }
}

// The problem's `detail` as the API gives it, with any field errors.
function describe(status, problem) {
  if (!problem) return `The server answered ${status}.`;
  let text = problem.detail || problem.title || `The server answered ${status}.`;
  if (Array.isArray(problem.errors) && problem.errors.length) {
    text += ' ' + problem.errors.map((e) => `${e.parameter || e.pointer || ''} ${e.message || ''}`.trim()).join('; ');
  }
  return text;
}

async function requestToken(clientId, secret) {
  const resp = await fetch('/oauth/token', {
    method: 'POST',
    headers: {
      'Authorization': 'Basic ' + btoa(`${clientId}:${secret}`),
      'Content-Type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials',
  });
  if (!resp.ok) throw new ApiError(resp.status, await problemOf(resp));
  const body = await resp.json();
  return {token: body.access_token, expiresAt: Date.now() + body.expires_in * 1000, role: roleOf(body.access_token)};
}

// The role is a claim of the token (the token endpoint's answer has no role field); read to
// choose the views only: the server checks it on every call.
function roleOf(token) {
  const part = token.split('.')[1] || '';
  const json = atob(part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '='));
  return JSON.parse(json).role;
}

async function problemOf(resp) {
  try {
    return await resp.json();
  } catch {
    return null;
  }
}

export const CONSOLE_ROLES = ['admin', 'auditor'];

export async function signIn(clientId, secret) {
  const t = await requestToken(clientId, secret);
  if (!CONSOLE_ROLES.includes(t.role)) {
    throw new Error(`This console is for admin and auditor clients; this client's role is "${t.role}", so it cannot sign in here.`);
  }
  session = {clientId, secret, ...t};
  return {role: t.role, clientId};
}

export function signOut() {
  session = null;
}

async function token() {
  if (!session) throw new Error('Signed out.');
  if (Date.now() > session.expiresAt - 60_000) {
    Object.assign(session, await requestToken(session.clientId, session.secret));
  }
  return session.token;
}

function url(path, query) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

async function send(method, path, {query, body} = {}) {
  const headers = {Authorization: `Bearer ${await token()}`};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  return fetch(url(path, query), {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
}

export async function call(method, path, options) {
  const resp = await send(method, path, options);
  if (!resp.ok) throw new ApiError(resp.status, await problemOf(resp));
  return resp.status === 204 ? null : resp.json();
}

export const get = (path, query) => call('GET', path, {query});
export const post = (path, body) => call('POST', path, {body});
export const patch = (path, body) => call('PATCH', path, {body});

// Every page of a list, for the small directory tables (bounded: 50 pages of 100).
export async function all(path, query = {}) {
  const items = [];
  let after;
  for (let i = 0; i < 50; i++) {
    const page = await get(path, {...query, limit: 100, after});
    items.push(...page.items);
    if (!page.next_cursor) break;
    after = page.next_cursor;
  }
  return items;
}

// Fetches a file with the token and hands it to the browser as a download.
export async function download(path, query, filename) {
  const resp = await send('GET', path, {query});
  if (!resp.ok) throw new ApiError(resp.status, await problemOf(resp));
  const blob = await resp.blob();
  const href = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = href;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10_000);
  return blob.size;
}

// The API description (public): the console reads enums such as the logged actions from it
// rather than repeating them.
let spec;
export async function schemaEnum(name) {
  spec = spec || (await (await fetch('/openapi.json')).json());
  return spec.components.schemas[name].enum || [];
}
