import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, sigtermDrains } from '../helpers/served.js';

/**
 * Herald as an app adopts it: `npm pack`, the tarball installed production-only into a fresh
 * project (npm prefers its local cache), then a strict TypeScript consumer of `herald` and
 * `herald/client` type-checks (its `@ts-expect-error` lines fail the check if a type were
 * `any`), the server starts from the installed package, and `npx herald` answers.
 * Needs `npm run build` first (pretest does it).
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'herald-package-'));
const consumer = join(tmp, 'consumer');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
let files: string[] = [];

function sh(cmd: string, args: string[], cwd: string): string {
  const run = spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    timeout: 240_000,
    env: { ...process.env, npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' },
  });
  if (run.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${run.status}):\n${run.stdout}\n${run.stderr}`.slice(-4000));
  return run.stdout;
}

beforeAll(() => {
  const [packed] = JSON.parse(sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], ROOT));
  files = packed.files.map((f: { path: string }) => f.path);
  mkdirSync(consumer);
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  sh('npm', ['install', '--omit=dev', join(tmp, packed.filename)], consumer);
}, 300_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const CLIENT_TS = `
import { Signaling, Call, Broadcaster, Viewer, HeraldError, PeerLink, MAX_MESSAGE_BYTES, isSignalData } from 'herald/client';
import type { CallEvents, DataMessage, DataPayload, JoinAck, Welcome, RoleName } from 'herald/client';

const signaling = new Signaling({ url: 'wss://signal.example/ws', token: async () => 'jwt' });
const stream = new MediaStream();
const call = new Call(signaling, 'room', stream);
call.on('data', ({ peerId, data }) => {
  const from: string = peerId;
  if (typeof data === 'string') data.toUpperCase();
  else new Uint8Array(data).byteLength;
  void from;
});
call.send('hi');
call.send(new Uint8Array(4), 'peer-1');
call.send(new ArrayBuffer(8));
const off: () => void = call.on('stream', ({ stream }) => stream.getTracks());
const left: Promise<CallEvents['left']> = call.once('left');
// @ts-expect-error an unknown event name
call.on('no-such-event', () => {});
// @ts-expect-error a signal's data is unknown until checked
signaling.on('signal', (e) => e.data.description);
signaling.on('signal', (e) => isSignalData(e.data) && 'description' in e.data && e.data.description.type);
// @ts-expect-error data is string | ArrayBuffer | ArrayBufferView
call.send(42);
// @ts-expect-error to is a peer id
call.send('x', 7);
// @ts-expect-error the stream event carries {peerId, stream}
call.on('stream', (s: MediaStream) => s);
// @ts-expect-error a role is broadcaster, viewer or peer
void signaling.join('room', 'king');
// @ts-expect-error options are typed
new Signaling({ url: 5 });
const role: RoleName = 'viewer';
const ack: Promise<JoinAck> = signaling.join('room', role);
signaling.on('welcome', (w: Welcome) => w.peerId.toUpperCase());
signaling.on('error', (err) => {
  const e: HeraldError = err;
  const code: string = e.code;
  void code;
});
// @ts-expect-error error codes are a closed set
const badCode: HeraldError['code'] = 'not-a-code';

const broadcaster = new Broadcaster(signaling, 'room', stream);
broadcaster.on('viewers', (n) => n.toFixed());
broadcaster.send('to all');
broadcaster.send(new Uint8Array(2), 'viewer-1');
// @ts-expect-error viewers is a count
broadcaster.on('viewers', (n: string) => n);

const viewer = new Viewer(signaling, 'room');
viewer.send('hello');
// @ts-expect-error a viewer sends to its broadcaster only
viewer.send('hello', 'someone');
viewer.on('stream', (s) => s.getVideoTracks());
viewer.on('data', ({ data }) => {
  const m: DataMessage = data;
  void m;
});

const link: PeerLink | undefined = call.links.get('peer-1');
const channel: RTCDataChannel | undefined = link?.channel;
const payload: DataPayload = new Float32Array(2);
const limit: number = MAX_MESSAGE_BYTES;
void [off, left, ack, badCode, channel, payload, limit];
`;

const SERVER_TS = `
import { createServer } from 'node:http';
import { Herald, loadConfig, Tokens, ConfigError, type Config, type AttachOptions } from 'herald';

const config: Config = loadConfig({ port: 0, host: '127.0.0.1', logLevel: 'silent' });
const herald = new Herald(config);
const port: Promise<number> = herald.start();
const stopped: Promise<void> = herald.stop();
const options: AttachOptions = { upgrades: 'json' };
const attached: Promise<void> = new Herald(config).attach(createServer(), options);
// @ts-expect-error the port is a number
const p: string = herald.port;
// @ts-expect-error attach takes an http.Server
void herald.attach('server');
// @ts-expect-error upgrades is 'json' or 'all'
const wrong: AttachOptions = { upgrades: 'some' };
// @ts-expect-error an unknown setting
loadConfig({ nope: 1 });
// @ts-expect-error internals are not part of the API
herald.hub;
const jwt: Promise<string> = new Tokens('0123456789abcdef').mint({ sub: 'a', room: 'r', roles: ['peer'], ttl: '1h' });
// @ts-expect-error roles are a closed set
void new Tokens('0123456789abcdef').mint({ sub: 'a', room: 'r', roles: ['king'], ttl: '1h' });
const isConfigError: boolean = new ConfigError('x') instanceof Error;
void [port, stopped, attached, p, wrong, jwt, isConfigError];
`;

/** Starts Herald from the installed package, checks it serves, stops it. */
const START_MJS = `
import { readFileSync } from 'node:fs';
import { Herald, loadConfig } from 'herald';
import * as client from 'herald/client';
const herald = new Herald(loadConfig({ port: 0, host: '127.0.0.1', logLevel: 'silent' }, {}));
const port = await herald.start();
const ready = await fetch('http://127.0.0.1:' + port + '/readyz');
const sdk = await (await fetch('http://127.0.0.1:' + port + '/sdk/herald.js')).text();
const same = sdk === readFileSync(new URL(import.meta.resolve('herald/client')), 'utf8');
await herald.stop();
console.log(JSON.stringify({ port, ready: ready.status, sdkServed: same, client: Object.keys(client).sort() }));
`;

describe('the npm package, installed into a fresh project', () => {
  it('the tarball holds the built output, public/, docs, README and LICENSE, and no tests, bench, CI or sources', () => {
    for (const f of ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts', 'dist/cli.js', 'dist/server.js', 'dist/sdk/herald.js', 'dist/sdk/herald.d.ts', 'public/call.html', 'public/demo.js', 'docs/sdk.md', 'docs/deploy.md']) {
      expect(files, f).toContain(f);
    }
    for (const f of files) expect(f).not.toMatch(/^(test|bench|\.ci|src|client|scripts|examples)\/|\.tgz$|^Dockerfile$/);
  });

  it('a strict nodenext consumer type-checks against herald and herald/client; its @ts-expect-error lines prove the types are not any', { timeout: 300_000 }, () => {
    writeFileSync(join(consumer, 'client.ts'), CLIENT_TS);
    writeFileSync(join(consumer, 'server.ts'), SERVER_TS);
    writeFileSync(
      join(consumer, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', lib: ['es2022', 'dom'], noEmit: true, skipLibCheck: true, types: ['node'] },
        files: ['client.ts', 'server.ts'],
      }),
    );
    // The checkout's compiler (typescript is not a dependency of the package). tsc itself fails
    // on an @ts-expect-error line that has no error (TS2578), so each one is a real check.
    // skipLibCheck (as most apps set it) keeps this fast; a type the package's .d.ts could not
    // resolve would turn into `any` and trip those lines.
    const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', consumer], { encoding: 'utf8', timeout: 280_000 });
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);
  });

  it('the server starts from the installed package and serves the same SDK build as herald/client', { timeout: 120_000 }, () => {
    writeFileSync(join(consumer, 'start.mjs'), START_MJS);
    const out = JSON.parse(execFileSync(process.execPath, ['start.mjs'], { cwd: consumer, encoding: 'utf8', timeout: 110_000 }));
    expect(out.port).toBeGreaterThan(0);
    expect(out.ready).toBe(200);
    expect(out.sdkServed).toBe(true);
    expect(out.client).toEqual(expect.arrayContaining(['Broadcaster', 'Call', 'HeraldError', 'PeerLink', 'Signaling', 'Viewer']));
  });

  it('npx herald --help and --version answer from the installed package', { timeout: 120_000 }, () => {
    const help = sh('npx', ['--no-install', 'herald', '--help'], consumer);
    expect(help).toContain('herald serve');
    expect(help).toContain('herald token');
    expect(sh('npx', ['--no-install', 'herald', '--version'], consumer).trim()).toBe(pkg.version);
  });

  it('npx herald serve drains on SIGTERM to the npx process only', { timeout: 150_000 }, async () => {
    const served = await serve(['npx', '--no-install', 'herald', 'serve'], { cwd: consumer, label: 'npx herald serve' });
    const result = await sigtermDrains(served);
    expect(result).toMatchObject({ closeCode: 1012 });
    expect(result.descendants).toBeGreaterThanOrEqual(1);
  });
});
