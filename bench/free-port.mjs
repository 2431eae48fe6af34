import { createServer } from 'node:net';

/** A free TCP port on loopback: the OS picks it, the listener is closed before it is used. */
export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}
