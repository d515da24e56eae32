// Sign-in, the role's views and sign-out. Nothing outlives the tab: the session is module
// memory (api.js), wiped on sign-out and when the page is hidden for good.

import * as api from './api.js';
import {el, clear} from './dom.js';
import {auditorViews} from './auditor.js';
import {adminViews} from './admin.js';

const $ = (id) => document.getElementById(id);

function showSignedIn(role, clientId) {
  $('sign-in').hidden = true;
  $('who').hidden = false;
  $('role-badge').textContent = role;
  $('client-label').textContent = clientId;
  const views = role === 'auditor' ? auditorViews() : adminViews();
  const tabs = $('tabs');
  const buttons = views.map(([name, render], i) =>
    el('button', {type: 'button', 'data-view': name, on: {click: () => open(i)}}, name));
  clear(tabs, ...buttons);
  tabs.hidden = false;
  function open(i) {
    buttons.forEach((b, j) => b.setAttribute('aria-current', j === i ? 'page' : 'false'));
    const view = $('view');
    clear(view);
    views[i][1](view);
  }
  open(0);
}

function signOut() {
  api.signOut();
  $('who').hidden = true;
  $('tabs').hidden = true;
  clear($('view'));
  $('client-secret').value = '';
  $('sign-in').hidden = false;
  $('client-id').focus();
}

$('sign-in-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const error = $('sign-in-error');
  error.hidden = true;
  const id = $('client-id').value.trim();
  const secret = $('client-secret').value;
  try {
    const {role, clientId} = await api.signIn(id, secret);
    $('client-secret').value = '';
    showSignedIn(role, clientId);
  } catch (e) {
    error.textContent = e.status === 401 || e.status === 400
      ? `Sign-in refused: ${e.message}`
      : e.message;
    error.hidden = false;
  }
});

$('sign-out').addEventListener('click', signOut);
window.addEventListener('pagehide', (e) => {
  if (!e.persisted) api.signOut();
});
