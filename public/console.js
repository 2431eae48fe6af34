// The operators' console: signs in with an admin token, then polls the admin API every 2 s
// (docs/operations.md "Operators' console"). Room and peer ids come from clients: they are
// only ever set as text, never as HTML.

const POLL_MS = 2000;
const PAGE_SIZE = 50;
const TOKEN_KEY = 'herald.console.token';
const ROLE_ORDER = ['broadcaster', 'viewer', 'peer'];

const $ = (sel) => document.querySelector(sel);

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) ?? undefined,
  me: undefined,
  q: '',
  sort: 'id',
  offset: 0,
  room: undefined,
  timer: undefined,
  polling: false,
};

// A token in the URL (?token=…) is taken once, kept in this tab, and removed from the address bar.
{
  const url = new URL(location.href);
  const fromUrl = url.searchParams.get('token');
  if (fromUrl) {
    state.token = fromUrl;
    sessionStorage.setItem(TOKEN_KEY, fromUrl);
    url.searchParams.delete('token');
    history.replaceState(null, '', url.pathname + url.search + url.hash);
  }
  const room = new URLSearchParams(location.hash.slice(1)).get('room');
  if (room) state.room = room;
}

// ---- small DOM helpers ----

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== undefined && c !== null) node.append(c instanceof Node ? c : String(c));
  return node;
}

function chips(counts, order = []) {
  const keys = Object.keys(counts ?? {}).sort((a, b) => rank(a, order) - rank(b, order) || a.localeCompare(b));
  return el('span', { class: 'chips' }, ...keys.map((k) => el('span', { class: `chip ${k}`, dataset: { key: k } }, el('b', {}, counts[k]), ` ${k}`)));
}
const rank = (k, order) => (order.includes(k) ? order.indexOf(k) : order.length);

function showMessage(text, kind = 'error') {
  const m = $('.message');
  m.textContent = text;
  m.className = `message show ${kind}`;
  // Results fade after a while; errors stay until the next action.
  clearTimeout(showMessage.timer);
  if (kind === 'ok') showMessage.timer = setTimeout(clearMessage, 10_000);
}
const clearMessage = () => ($('.message').className = 'message');

function setFeed(cls, text) {
  const b = $('#feed');
  b.className = `badge ${cls}`;
  b.textContent = text;
}

const short = (id) => (id.length > 18 ? `${id.slice(0, 18)}…` : id);

function ago(iso) {
  if (!iso) return '–';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

const fmt = (n) => (n >= 100 ? Math.round(n).toString() : n >= 10 ? n.toFixed(1) : n.toFixed(2).replace(/\.?0+$/, '') || '0');

// ---- API ----

class ApiError extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.error;
  }
}

async function api(path, init = {}) {
  const headers = state.token ? { Authorization: `Bearer ${state.token}` } : {};
  const res = await fetch(path, { ...init, headers, cache: 'no-store' });
  if (res.status === 204) return null;
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

// ---- sign in / out ----

async function signIn(token) {
  state.token = token || undefined;
  try {
    state.me = await api('/api/me');
  } catch (err) {
    state.token = undefined;
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn(err.status === 401 || err.status === 403 ? `That token was refused: ${err.message}` : `Could not reach Herald: ${err.message}`);
    return false;
  }
  if (!state.me.signedIn) {
    showSignIn();
    return false;
  }
  if (state.token) sessionStorage.setItem(TOKEN_KEY, state.token);
  clearMessage();
  $('#signin').classList.add('hidden');
  $('#app').classList.remove('hidden');
  $('#signout').classList.toggle('hidden', state.me.open);
  const who = $('#who');
  who.classList.remove('hidden');
  who.textContent = state.me.open
    ? 'open dev mode (no HERALD_SECRET): no token needed'
    : `${state.me.identity} · ${state.me.room === '*' ? 'all rooms' : `room ${state.me.room} only`}`;
  // A room-scoped token sees its room, not the service: no overview.
  $('#overview').classList.toggle('hidden', state.me.room !== '*');
  if (state.me.room !== '*') state.room ??= state.me.room;
  document.body.dataset.signedIn = 'true';
  startPolling();
  return true;
}

function showSignIn(error) {
  stopPolling();
  document.body.dataset.signedIn = 'false';
  $('#app').classList.add('hidden');
  $('#signout').classList.add('hidden');
  $('#who').classList.add('hidden');
  $('#signin').classList.remove('hidden');
  setFeed('new', 'signed out');
  if (error) showMessage(error);
  $('#token').value = '';
  $('#token').focus();
}

function signOut(reason) {
  state.token = undefined;
  state.me = undefined;
  sessionStorage.removeItem(TOKEN_KEY);
  showSignIn(reason);
}

// ---- polling ----

function startPolling() {
  stopPolling();
  state.polling = true;
  void poll();
}

function stopPolling() {
  state.polling = false;
  clearTimeout(state.timer);
}

/** One round: everything the page shows, then the next round POLL_MS later (never overlapping). */
async function poll() {
  if (!state.polling) return;
  clearTimeout(state.timer);
  try {
    const serviceWide = state.me.room === '*';
    const [instances, rates, rooms, room, all] = await Promise.all([
      serviceWide ? api('/api/instances') : null,
      serviceWide ? api('/api/rates?minutes=5') : null,
      api(`/api/rooms?${new URLSearchParams({ q: state.q, sort: state.sort, offset: String(state.offset), limit: String(PAGE_SIZE) })}`),
      state.room ? roomOrNull(state.room) : undefined,
      // The Rooms figure counts every room this token sees; a search narrows only the table.
      state.q ? api('/api/rooms?limit=1') : null,
    ]);
    if (!state.polling) return;
    if (instances) renderInstances(instances);
    if (rates) renderRates(rates);
    $('#stat-rooms').textContent = String((all ?? rooms).total);
    renderRooms(rooms);
    if (state.room) renderRoom(state.room, room);
    setFeed('live', `live · ${new Date().toLocaleTimeString()}`);
    document.body.dataset.updates = String(Number(document.body.dataset.updates ?? 0) + 1);
  } catch (err) {
    if (err.status === 401) return signOut(`Signed out: ${err.message}`);
    setFeed('error', err.status === 503 ? 'cluster unavailable' : 'update failed');
  }
  if (state.polling && document.visibilityState !== 'hidden') state.timer = setTimeout(poll, POLL_MS);
}

async function roomOrNull(id) {
  try {
    return await api(`/api/rooms/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err.status === 404) return null;
    throw err;
  }
}

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && state.polling) void poll();
});

// ---- overview ----

function renderInstances({ instances, connections }) {
  const up = instances.filter((i) => i.up).length;
  $('#stat-instances').textContent = `${up} / ${instances.length}`;
  const total = Object.values(connections).reduce((s, n) => s + n, 0);
  $('#stat-connections').textContent = String(total);
  $('#stat-protocols').replaceChildren(...chips(connections).childNodes);
  const rows = instances.map((i) => {
    const stateName = !i.up ? 'down' : i.notReady ? 'draining' : 'up';
    const stateText = !i.up ? 'down' : i.notReady ? `not ready: ${i.notReady}` : 'up';
    return el(
      'tr',
      { dataset: { instance: i.id, up: String(i.up) } },
      el('td', { class: 'id' }, i.id, i.self ? el('span', { class: 'tag' }, 'this one') : null),
      el('td', {}, el('span', { class: `state ${stateName}` }, stateText)),
      el('td', {}, chips(i.connections)),
      el('td', { class: 'num' }, i.rooms),
      el('td', {}, ago(i.startedAt)),
      el('td', {}, i.reportedAt ? `${ago(i.reportedAt)} ago` : '–'),
    );
  });
  $('#instances tbody').replaceChildren(...rows);
}

function renderRates(rates) {
  const last = (name) => rates.series[name]?.at(-1) ?? 0;
  $('#stat-messages').textContent = fmt(last('messages'));
  $('#stat-errors').textContent = fmt(last('errors'));
  const minutes = Math.round((rates.series.messages.length * rates.stepMs) / 60000);
  for (const fig of document.querySelectorAll('figure.chart')) {
    const values = rates.series[fig.dataset.series] ?? [];
    drawChart(fig.querySelector('svg'), values);
    const max = Math.max(0, ...values);
    fig.dataset.sum = String(values.reduce((s, v) => s + v, 0));
    fig.dataset.last = String(values.at(-1) ?? 0);
    fig.querySelector('.from').textContent = `${minutes} min ago`;
    fig.querySelector('.max').textContent = `peak ${fmt(max)}`;
  }
}

/** A filled line over `values`, scaled to the largest (at least 1), in a 300×80 viewBox. */
function drawChart(svg, values) {
  const W = 300;
  const H = 80;
  const top = Math.max(1, ...values) * 1.1;
  const n = Math.max(values.length - 1, 1);
  const pts = values.map((v, i) => [(i / n) * W, H - (v / top) * (H - 2) - 1]);
  const line = pts.map(([x, y], i) => `${i ? 'L' : 'M'}${x.toFixed(1)},${y.toFixed(1)}`).join('');
  const ns = 'http://www.w3.org/2000/svg';
  const path = (cls, d) => {
    const p = document.createElementNS(ns, 'path');
    p.setAttribute('class', cls);
    p.setAttribute('d', d);
    return p;
  };
  const grid = [0.25, 0.5, 0.75].map((f) => path('grid', `M0,${H * f}L${W},${H * f}`));
  svg.replaceChildren(...grid, ...(pts.length ? [path('area', `${line}L${W},${H}L0,${H}Z`), path('line', line)] : []));
}

// ---- rooms ----

function renderRooms({ rooms, total, offset, limit }) {
  const rows = rooms.map((r) =>
    el(
      'tr',
      { dataset: { room: r.id }, class: r.id === state.room ? 'selected' : '', onclick: () => openRoom(r.id) },
      el('td', { class: 'id' }, r.id),
      el('td', { class: 'num members' }, r.members),
      el('td', { class: 'roles' }, chips(r.roles, ROLE_ORDER)),
      el('td', { class: 'protocols' }, chips(r.protocols)),
      el('td', { class: 'instances' }, instanceChips(r.instances)),
    ),
  );
  $('#rooms tbody').replaceChildren(...rows);
  $('#rooms-card .empty').classList.toggle('hidden', rooms.length > 0);
  $('#rooms-card .empty').textContent = state.q ? `No room matches “${state.q}”.` : 'No rooms right now.';
  $('#page-info').textContent = total ? `${offset + 1}–${offset + rooms.length} of ${total}` : '';
  $('#prev').disabled = offset === 0;
  $('#next').disabled = offset + limit >= total;
  for (const b of document.querySelectorAll('button.sort')) {
    const key = b.dataset.sort;
    b.classList.toggle('asc', state.sort === key);
    b.classList.toggle('desc', state.sort === `-${key}`);
  }
}

/** Instance ids are long: show a short form, the full id on hover. */
function instanceChips(counts) {
  const wrap = chips(counts);
  for (const chip of wrap.children) {
    chip.title = chip.dataset.key;
    chip.lastChild.textContent = ` ${short(chip.dataset.key)}`;
  }
  return wrap;
}

$('#search').addEventListener('input', () => {
  clearTimeout(state.searchTimer);
  state.searchTimer = setTimeout(() => {
    state.q = $('#search').value.trim();
    state.offset = 0;
    void poll();
  }, 200);
});
for (const b of document.querySelectorAll('button.sort')) {
  b.addEventListener('click', () => {
    const key = b.dataset.sort;
    state.sort = state.sort === key ? `-${key}` : key;
    state.offset = 0;
    void poll();
  });
}
$('#prev').addEventListener('click', () => {
  state.offset = Math.max(0, state.offset - PAGE_SIZE);
  void poll();
});
$('#next').addEventListener('click', () => {
  state.offset += PAGE_SIZE;
  void poll();
});

// ---- room view and kick ----

function openRoom(id) {
  state.room = id;
  history.replaceState(null, '', `#${new URLSearchParams({ room: id })}`);
  for (const tr of document.querySelectorAll('#rooms tbody tr')) tr.classList.toggle('selected', tr.dataset.room === id);
  renderRoom(id, undefined);
  void poll();
}

function closeRoom() {
  state.room = undefined;
  history.replaceState(null, '', location.pathname + location.search);
  $('#room-view').classList.add('hidden');
  for (const tr of document.querySelectorAll('#rooms tbody tr.selected')) tr.classList.remove('selected');
}
$('#room-close').addEventListener('click', closeRoom);

/** `detail` undefined: loading; null: the room is gone (empty). */
function renderRoom(id, detail) {
  const view = $('#room-view');
  view.classList.remove('hidden');
  view.dataset.room = id;
  $('#room-name').textContent = id;
  if (detail === undefined) return;
  const members = detail?.members ?? [];
  const byRole = {};
  for (const m of members) byRole[m.role] = (byRole[m.role] ?? 0) + 1;
  $('#room-summary').replaceChildren(...(members.length ? chips(byRole, ROLE_ORDER).childNodes : []));
  const order = (m) => rank(m.role, ROLE_ORDER);
  const rows = members
    .sort((a, b) => order(a) - order(b) || a.id.localeCompare(b.id))
    .map((m) =>
      el(
        'tr',
        { dataset: { peer: m.id } },
        el('td', { class: 'id' }, m.id),
        el('td', {}, el('span', { class: `chip ${m.role}` }, m.role)),
        el('td', {}, m.protocol),
        el('td', { class: 'id', title: m.instance }, short(m.instance)),
        el('td', {}, m.identity ?? '–'),
        el('td', { title: m.connectedSince }, `${ago(m.connectedSince)} ago`),
        el('td', { class: 'num' }, el('button', { class: 'kick', type: 'button', onclick: () => kick(id, m) }, 'Kick')),
      ),
    );
  $('#members tbody').replaceChildren(...rows);
  view.querySelector('.empty').classList.toggle('hidden', members.length > 0);
}

async function kick(room, member) {
  const dialog = $('#confirm');
  $('#confirm-text').textContent = `Kick ${member.role} ${member.id}${member.identity ? ` (${member.identity})` : ''} from room ${room}?`;
  dialog.returnValue = '';
  dialog.showModal();
  const answer = await new Promise((resolve) => dialog.addEventListener('close', () => resolve(dialog.returnValue), { once: true }));
  if (answer !== 'kick') return;
  try {
    await api(`/api/rooms/${encodeURIComponent(room)}/peers/${encodeURIComponent(member.id)}`, { method: 'DELETE' });
    showMessage(`Kicked ${member.id} from room ${room}.`, 'ok');
  } catch (err) {
    if (err.status === 401) return signOut(`Signed out: ${err.message}`);
    showMessage(`Could not kick ${member.id}: ${err.message}`);
  }
  void poll();
}

// ---- start ----

$('#signin').addEventListener('submit', (e) => {
  e.preventDefault();
  void signIn($('#token').value.trim());
});
$('#signout').addEventListener('click', () => signOut());

// Open dev mode needs no token; otherwise a token kept in this tab signs in again after a reload.
void signIn(state.token);
window.heraldConsole = state;
