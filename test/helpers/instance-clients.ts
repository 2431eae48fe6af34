import type { Instance } from './instances.js';
import { JsonClient } from './json-client.js';
import { TestSocket } from './socket.js';

/**
 * The clients a multi-instance test file opens on its Herald instances (seed senders and
 * readers, JSON peers), remembered so that one `closeAll()` in afterEach/afterAll ends them.
 */
export class InstanceClients {
  private readonly sockets: TestSocket[] = [];

  open = async (url: string): Promise<TestSocket> => {
    const s = await TestSocket.open(url);
    this.sockets.push(s);
    return s;
  };

  sender = (i: Instance, room: string): Promise<TestSocket> => this.open(`${i.ws}/webrtc/sender/${encodeURIComponent(room)}`);

  reader = (i: Instance, user: string): Promise<TestSocket> => this.open(`${i.ws}/webrtc/reader/${encodeURIComponent(user)}`);

  /** A JSON peer past `hello`; `extra` goes into the hello (peerId, resumeToken, …). */
  json = async (i: Instance, extra: Record<string, unknown> = {}): Promise<JsonClient> => {
    const c = await JsonClient.connect(i.ws, extra);
    this.sockets.push(c.socket);
    return c;
  };

  closeAll(): void {
    for (const s of this.sockets.splice(0)) s.ws.terminate();
  }
}

/** Ids no other test, in this file or another test process, uses: `name-pid-n`. */
export function uniqueIds(): (name: string) => string {
  let seq = 0;
  return (name) => `${name}-${process.pid}-${++seq}`;
}
