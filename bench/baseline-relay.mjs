// The baseline: a minimal raw `ws` relay, the practical ceiling for a Node signaling server.
// A client connects to `/?id=<id>` and sends text frames `<to>\n<payload>`; the relay looks up
// `<to>` in a Map and forwards `<from>\n<payload>`. Nothing else: no rooms, no auth, no limits,
// no heartbeat. bufferutil is installed (ws picks it up), perMessageDeflate is off.
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';

const host = process.env.HOST ?? '127.0.0.1';
const port = Number(process.env.PORT ?? 0);

const peers = new Map();
const server = createServer((req, res) => res.writeHead(404).end());
const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 64 * 1024 });

wss.on('connection', (ws, req) => {
  const q = req.url.indexOf('id=');
  const id = q < 0 ? '' : decodeURIComponent(req.url.slice(q + 3));
  if (!id) return ws.close(1008, 'missing id');
  const prefix = id + '\n';
  peers.get(id)?.close(4000, 'replaced');
  peers.set(id, ws);
  ws.on('message', (data) => {
    const text = data.toString();
    const nl = text.indexOf('\n');
    if (nl <= 0) return;
    const to = peers.get(text.slice(0, nl));
    if (to !== undefined) to.send(prefix + text.slice(nl + 1));
  });
  ws.on('close', () => {
    if (peers.get(id) === ws) peers.delete(id);
  });
  ws.on('error', () => {});
});

server.listen(port, host, () => {
  console.log(`baseline listening on http://${host}:${server.address().port}`);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
