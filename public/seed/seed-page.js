// Helpers shared by the seed-protocol demo pages (the article's sender and reader).
// Plain script, no build step: it defines window.seedPage before the page's own script runs.
window.seedPage = (() => {
  const $ = (id) => document.getElementById(id);

  /** A line in the page's event log, newest first, with millisecond times. */
  function log(text) {
    const li = document.createElement('li');
    const now = new Date();
    li.textContent = now.toLocaleTimeString([], { hour12: false }) + '.' + String(now.getMilliseconds()).padStart(3, '0') + '  ' + text;
    const list = $('log');
    list.prepend(li);
    while (list.children.length > 60) list.lastChild.remove();
  }

  function showError(text) {
    $('error').textContent = text || '';
  }

  /** The connection-state dot and text. */
  function renderState(next, detail) {
    $('dot').className = 'dot ' + next;
    $('state').textContent = detail ? next + ' — ' + detail : next;
  }

  /** ICE servers from Herald (with TURN credentials when configured); none if unavailable. */
  async function loadIceServers(token) {
    try {
      const ctl = new AbortController();
      const t = setTimeout(() => ctl.abort(), 2000);
      const url = '/api/ice-servers' + (token ? '?token=' + encodeURIComponent(token) : '');
      const res = await fetch(url, { signal: ctl.signal });
      clearTimeout(t);
      if (res.ok) {
        const body = await res.json();
        if (Array.isArray(body.iceServers)) return body.iceServers;
      }
    } catch { /* no ICE endpoint: host candidates are enough on a LAN */ }
    return [];
  }

  /** ws(s)://<this host>/webrtc/<role>/<id>[?token=…], the article's URLs. */
  function socketUrl(role, id, token) {
    const url = new URL('/webrtc/' + role + '/' + encodeURIComponent(id), location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    if (token) url.searchParams.set('token', token);
    return url.href;
  }

  return { log, showError, renderState, loadIceServers, socketUrl };
})();
