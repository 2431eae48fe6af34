import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHerald, type Running } from './herald.js';
import { TestSocket } from './socket.js';

/**
 * A y-webrtc signaling server under test: the reference (y-webrtc's own bin/server.js, run
 * as its users run it, in a process of its own) or Herald. Protocol tests run against both,
 * so each one is known to describe y-webrtc's protocol, not Herald's reading of it.
 */
export interface YWebrtcTarget {
  name: 'reference' | 'herald';
  port: number;
  /** The signaling URL a y-webrtc client is given. */
  url: string;
  /** Reference only: resolves with the exit code when the process ends. */
  exited?: Promise<number | null>;
  stop(): Promise<void>;
  herald?: Running;
}

const here = dirname(fileURLToPath(import.meta.url));
// The package's exports hide bin/: found from the repository root's node_modules.
const serverJs = join(here, '..', '..', 'node_modules', 'y-webrtc', 'bin', 'server.js');

/** Spawns the reference server on a free loopback port (bench/loopback-listen.mjs). */
export async function startReference(): Promise<YWebrtcTarget> {
  const child: ChildProcess = spawn(process.execPath, ['--import', join(here, '..', '..', 'bench', 'loopback-listen.mjs'), serverJs], {
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /LISTENING (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.stderr!.resume();
    void exited.then((code) => reject(new Error(`y-webrtc reference server exited (${code}) before listening`)));
  });
  return {
    name: 'reference',
    port,
    url: `ws://127.0.0.1:${port}`,
    exited,
    stop: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

export async function startHeraldTarget(overrides: Parameters<typeof startHerald>[0] = {}): Promise<YWebrtcTarget> {
  const herald = await startHerald(overrides);
  return { name: 'herald', port: herald.port, url: `${herald.ws}/y-webrtc`, stop: () => herald.stop(), herald };
}

export const TARGETS = [
  { name: 'reference', start: () => startReference() },
  { name: 'herald', start: () => startHeraldTarget() },
] as const;

/** A y-webrtc signaling client socket, as y-webrtc's SignalingConn uses it. */
export class YSocket extends TestSocket {
  static async connect(url: string): Promise<YSocket> {
    const s = new YSocket(url);
    await s.opened;
    return s;
  }

  json(message: unknown): void {
    this.send(JSON.stringify(message));
  }

  subscribe(...topics: string[]): void {
    this.json({ type: 'subscribe', topics });
  }

  publish(topic: string, data: Record<string, unknown>): void {
    this.json({ type: 'publish', topic, ...data });
  }

  async nextMessage(timeoutMs?: number): Promise<any> {
    return JSON.parse(await this.next(undefined, timeoutMs));
  }

  /**
   * Sends a ping: once its pong comes back, everything the server sent this socket before it
   * has arrived (one socket, in order; Herald answers it after any subscribe before it has
   * settled). Resolves with what came before the pong, parsed.
   */
  async drain(): Promise<any[]> {
    this.json({ type: 'ping' });
    const before: any[] = [];
    for (;;) {
      const text = await this.next();
      if (text === '{"type":"pong"}') return before;
      before.push(JSON.parse(text));
    }
  }
}
