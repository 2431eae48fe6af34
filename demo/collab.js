// The /collab.html demo, bundled at build time (scripts/build-collab.mjs) with yjs and
// y-webrtc into dist/sdk/collab.js: a shared text editor whose signaling goes through Herald.
// Nothing here is Herald-specific but the default signaling URL: y-webrtc runs unchanged.
import * as Y from 'yjs';
import { WebrtcProvider } from 'y-webrtc';

/** The smallest edit turning `before` into `after`: common prefix and suffix kept. */
function diff(before, after) {
  let start = 0;
  while (start < before.length && start < after.length && before[start] === after[start]) start++;
  let end = 0;
  while (end < before.length - start && end < after.length - start && before[before.length - 1 - end] === after[after.length - 1 - end]) end++;
  return { index: start, remove: before.length - start - end, insert: after.slice(start, after.length - end) };
}

/**
 * Binds a textarea to a Y.Text both ways; returns the provider. Options: room, signaling
 * (list of URLs), password, peerOpts, and `onPeers(count)`.
 */
export function collaborate(textarea, { room, signaling, password, peerOpts, onPeers = () => {} }) {
  const doc = new Y.Doc();
  const text = doc.getText('text');
  const provider = new WebrtcProvider(room, doc, { signaling, password, peerOpts });
  let shown = '';
  textarea.addEventListener('input', () => {
    const { index, remove, insert } = diff(shown, textarea.value);
    shown = textarea.value;
    doc.transact(() => {
      if (remove) text.delete(index, remove);
      if (insert) text.insert(index, insert);
    }, 'local');
  });
  text.observe((event) => {
    if (event.transaction.origin === 'local') return;
    const caret = textarea.selectionStart;
    shown = textarea.value = text.toString();
    textarea.selectionStart = textarea.selectionEnd = Math.min(caret, shown.length);
  });
  provider.on('peers', ({ webrtcPeers, bcPeers }) => onPeers(webrtcPeers.length + bcPeers.length));
  return { doc, text, provider };
}

window.collab = { Y, WebrtcProvider, collaborate };
