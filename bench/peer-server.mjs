// The second baseline: the real PeerJS server (`peer` package, pinned in package.json), as a
// product a Herald user might otherwise run. Started with its defaults except what a bench needs:
// an ephemeral port on loopback and no cap on concurrent clients (its default is 5,000).
// Clients connect to /peerjs?key=peerjs&id=<id>&token=<t> and send {type, dst, payload};
// the server forwards {type, src, dst, payload}.
import { PeerServer } from 'peer';

const host = process.env.HOST ?? '127.0.0.1';
const port = Number(process.env.PORT ?? 0);

PeerServer({ host, port, path: '/', key: 'peerjs', concurrent_limit: 10_000_000 }, (server) => {
  console.log(`peerjs listening on http://${host}:${server.address().port}`);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
