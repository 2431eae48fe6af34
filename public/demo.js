// Shared bits of the demo pages: query parsing, the state badge, the share link, messages.
export const params = new URLSearchParams(location.search);
export const room = params.get('room');
export const token = params.get('token') ?? undefined;

export const $ = (sel) => document.querySelector(sel);

/** Without ?room= the page offers to create or pick one, then reloads with it. */
export function requireRoom(label) {
  if (room) return room;
  const form = $('form.pick');
  form.classList.remove('hidden');
  form.querySelector('input').value = Math.random().toString(36).slice(2, 8);
  form.querySelector('button').textContent = label;
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const next = new URLSearchParams(location.search);
    next.set('room', form.querySelector('input').value.trim());
    location.search = next.toString();
  });
  return null;
}

export function setBadge(el, state, text = state) {
  el.className = `badge ${state}`;
  el.textContent = text;
}

export function showMessage(text, kind = 'error') {
  const el = $('.message');
  el.textContent = text;
  el.className = `message show ${kind === 'info' ? 'info' : ''}`;
}

export function clearMessage() {
  $('.message').className = 'message';
}

/** Fills a read-only input with a link to `path` for this room, and a copy button. */
export function shareLink(path) {
  const url = new URL(path, location.href);
  url.search = new URLSearchParams({ room }).toString();
  const input = $('#share');
  input.value = url.href;
  copyButton($('#copy'), input);
}

/** A button that copies `input`'s value, and says so for a moment. */
export function copyButton(button, input) {
  const label = button.textContent;
  button.addEventListener('click', async () => {
    input.select();
    try {
      await navigator.clipboard.writeText(input.value);
    } catch {
      document.execCommand('copy');
    }
    button.textContent = 'Copied';
    setTimeout(() => (button.textContent = label), 1500);
  });
}

/** Camera/mic with a readable error; falls back to video only when there is no microphone. */
export async function getCamera() {
  try {
    return await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  } catch (err) {
    if (err.name === 'NotFoundError' || err.name === 'OverconstrainedError') {
      return navigator.mediaDevices.getUserMedia({ video: true });
    }
    throw err;
  }
}

export function cameraError(err) {
  if (err.name === 'NotAllowedError') return 'Camera access was refused. Allow the camera for this site and reload.';
  if (err.name === 'NotFoundError') return 'No camera was found on this device.';
  if (err.name === 'NotReadableError') return 'The camera is in use by another application.';
  return `Could not start the camera: ${err.message}`;
}

/** A toggle button that enables/disables every track of one kind. */
export function trackToggle(button, stream, kind, label) {
  const tracks = stream.getTracks().filter((t) => t.kind === kind);
  if (tracks.length === 0) {
    button.disabled = true;
    button.textContent = `No ${label}`;
    return;
  }
  const render = () => {
    const on = tracks.every((t) => t.enabled);
    button.textContent = on ? `${label} on` : `${label} off`;
    button.classList.toggle('off', !on);
  };
  button.addEventListener('click', () => {
    const on = !tracks.every((t) => t.enabled);
    for (const t of tracks) t.enabled = on;
    render();
  });
  render();
}

/**
 * The page's signaling connection, with the state badge and readable errors wired up.
 * `hooks` is `window.herald`, which tests (and curious people) read.
 */
export function connectSignaling(Signaling, hooks) {
  const signaling = new Signaling({ token });
  signaling.on('state', (s) => {
    hooks.state = s;
    setBadge($('#state'), s);
    if (s === 'open') clearMessage();
  });
  signaling.on('error', (err) => showMessage(explain(err)));
  hooks.signaling = signaling;
  return signaling;
}

/**
 * Connection-level errors of a Broadcaster/Viewer/Call (e.g. a candidate for an offer dropped
 * in glare) are not fatal: the connection state shows what matters. Kept for debugging.
 */
export function keepErrors(source, hooks, label) {
  source.on('error', (err) => {
    hooks.errors.push(String(err.message ?? err));
    console.debug(`herald ${label}:`, err);
  });
}

/** The camera for a page that sends video, or a readable error on the page (and a throw). */
export async function startCamera(preview) {
  let stream;
  try {
    stream = await getCamera();
  } catch (err) {
    setBadge($('#state'), 'error', 'no camera');
    showMessage(cameraError(err));
    throw err;
  }
  preview.srcObject = stream;
  trackToggle($('#cam'), stream, 'video', 'Camera');
  trackToggle($('#mic'), stream, 'audio', 'Mic');
  return stream;
}

/** Human text for the server's error codes. */
export function explain(err) {
  switch (err.code) {
    case 'conflict': return `This room already has a broadcaster (${err.message}).`;
    case 'room-full': return 'This room is full.';
    case 'unauthorized': return 'A valid token is required (add ?token=… to the URL).';
    case 'forbidden': return `Not allowed: ${err.message}`;
    case 'unavailable': return 'The signaling server cannot be reached; retrying…';
    default: return err.message ?? String(err);
  }
}

/**
 * A chat box under the videos, over the SDK's data channels: `send(text)` goes out, `data`
 * events come in. `relay` (the broadcaster) passes each viewer's line on to the other viewers,
 * who are connected to the broadcaster only. Lines are kept in `hooks.chat` for tests.
 */
export function mountChat(source, hooks, { relay = false } = {}) {
  const box = document.createElement('section');
  box.className = 'chat';
  box.innerHTML = '<ol id="chat-log" aria-live="polite"></ol><form id="chat-form"><input id="chat-input" aria-label="message" placeholder="Say something" autocomplete="off"><button type="submit">Send</button></form>';
  $('#stage').append(box);
  hooks.chat = [];
  const show = (who, text) => {
    hooks.chat.push({ who, text });
    const li = document.createElement('li');
    li.textContent = `${who}: ${text}`;
    $('#chat-log').append(li);
    li.scrollIntoView({ block: 'nearest' });
  };
  source.on('data', ({ peerId, data }) => {
    const text = typeof data === 'string' ? data : `[${data.byteLength} bytes]`;
    show(peerId.slice(0, 8), text);
    if (!relay) return;
    for (const other of source.links.keys()) if (other !== peerId) source.send(`${peerId.slice(0, 8)}: ${text}`, other);
  });
  $('#chat-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = $('#chat-input').value.trim();
    if (!text) return;
    try {
      source.send(text);
      show('you', text);
      $('#chat-input').value = '';
    } catch (err) {
      showMessage(explain(err));
    }
  });
}
