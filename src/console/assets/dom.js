// Building the page from data without ever parsing data as HTML: every value goes in as a
// text node or an attribute, so a name like "<script>" is shown, never run.

export const SVG_NS = 'http://www.w3.org/2000/svg';

// el('button', {type: 'button', class: 'x', on: {click: f}}, 'Label', child, ...)
export function el(tag, attrs = {}, ...children) {
  return build(document.createElement(tag), attrs, children);
}

export function svg(tag, attrs = {}, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

function build(node, attrs, children) {
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'on') {
      for (const [event, handler] of Object.entries(v)) node.addEventListener(event, handler);
    } else if (v === true) {
      node.setAttribute(k, '');
    } else if (v !== false && v !== null && v !== undefined) {
      node.setAttribute(k, String(v));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

// A table of rows: columns are [label, row => value]; a value may be a node or text.
export function table(columns, rows, attrs = {}) {
  return el('div', {class: 'scroll'},
    el('table', attrs,
      el('thead', {}, el('tr', {}, columns.map(([label]) => el('th', {scope: 'col'}, label)))),
      el('tbody', {}, rows.length === 0
        ? el('tr', {}, el('td', {colspan: columns.length, class: 'empty'}, 'Nothing to show.'))
        : rows.map((row) => el('tr', {}, columns.map(([, get]) => el('td', {}, cell(get(row)))))))));
}

function cell(v) {
  if (v === null || v === undefined || v === '') return '—';
  if (Array.isArray(v)) return v.join(', ');
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return v;
}

// A labelled input; `input` is returned too so callers can read it.
export function field(label, input, hint) {
  return el('label', {}, label, input, hint ? el('span', {class: 'hint'}, hint) : null);
}

// The API's problem shown as text, in an alert region.
export function problemBox() {
  const box = el('p', {class: 'problem', role: 'alert', hidden: true});
  box.show = (err) => {
    box.hidden = !err;
    box.textContent = err ? String(err.message || err) : '';
  };
  return box;
}

export function status(text) {
  return el('p', {class: 'status', role: 'status'}, text);
}

// datetime-local values are read as UTC, and shown as UTC, so every page agrees with the log.
export function utcInput(date) {
  const input = el('input', {type: 'datetime-local', step: 60});
  if (date) input.value = date.toISOString().slice(0, 16);
  input.rfc3339 = () => (input.value ? `${input.value.length === 16 ? input.value + ':00' : input.value}Z` : '');
  return input;
}
