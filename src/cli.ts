#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { ConfigError, loadConfig } from './config.js';
import type { GrantRole } from './core/grant.js';
import { RoomId } from './protocol/json-messages.js';
import { onOrphaned } from './parent-watch.js';

/** The same package.json from src/ and dist/. */
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const TOKEN_ROLES = ['broadcaster', 'viewer', 'peer', 'admin'];

// Flag parsers: a bad value stops commander with one line naming the flag.
function port(value: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) throw new InvalidArgumentError('must be a port number from 0 to 65535.');
  return Number(value);
}
function nonEmpty(value: string): string {
  if (!value.trim()) throw new InvalidArgumentError('must not be empty.');
  return value;
}
function url(value: string): string {
  if (!URL.canParse(value)) throw new InvalidArgumentError('must be a URL such as redis://127.0.0.1:6379.');
  return value;
}
function ttl(value: string): string {
  if (!/^\d+[smhd]$/.test(value)) throw new InvalidArgumentError('must look like 30m, 1h or 7d.');
  return value;
}
/** Repeatable and comma-separated: `--role peer --role admin` or `--role peer,admin`. */
function roles(value: string, previous: GrantRole[] = []): GrantRole[] {
  const parts = value.split(',').map((r) => r.trim());
  const bad = parts.find((r) => !TOKEN_ROLES.includes(r));
  if (bad !== undefined) throw new InvalidArgumentError(`"${bad}" is not a role (use ${TOKEN_ROLES.join(', ')}).`);
  return [...previous, ...(parts as GrantRole[])];
}

async function serve(flags: { port?: number; host?: string; redisUrl?: string; logLevel?: string }): Promise<void> {
  const config = loadConfig(flags);
  // Loaded here, not at the top: `--help`, `--version` and `token` need none of the server.
  const { Herald } = await import('./server.js');
  const herald = new Herald(config);
  // Every known failure is answered where it happens; anything that still escapes is logged,
  // never allowed to take down the rooms of everyone else on this instance.
  process.on('unhandledRejection', (err) => herald.log.error({ err }, 'unhandled rejection'));
  if (!config.secret) {
    console.warn('herald: WARNING: HERALD_SECRET is not set: open dev mode, anyone can join any room as anyone. Set HERALD_SECRET in production.');
    console.warn(
      `herald: WARNING: open dev mode: the admin API (/api/rooms) has no token to ask for; it answers only loopback and same-origin requests${config.adminOrigins?.length ? ` and pages of ${config.adminOrigins.join(', ')}` : ''}.`,
    );
  }
  const bound = await herald.start();
  const shown = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  console.log(`herald listening on http://${shown}:${bound}`);

  // SIGTERM (container runtimes, systemd, `npm start`, which execs node), SIGINT, and the
  // SIGTERM npm could not pass on (src/parent-watch.ts) drain: docs/operations.md "Drain".
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    herald.log.info({ signal }, 'draining');
    herald.stop().then(
      () => process.exit(0),
      (err) => {
        herald.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  onOrphaned(() => shutdown('npm parent exited'));
}

interface TokenFlags {
  sub: string;
  room?: string;
  anyRoom?: boolean;
  role?: GrantRole[];
  ttl: string;
  secret?: string;
}

/** `herald token`: mints a JWT the server accepts (same secret rules) and prints it. */
async function token(flags: TokenFlags): Promise<void> {
  const secret = flags.secret ?? process.env.HERALD_SECRET;
  const source = flags.secret !== undefined ? '--secret' : 'HERALD_SECRET';
  if (!secret) throw new ConfigError('token needs a secret: set HERALD_SECRET or pass --secret');
  try {
    loadConfig({ secret }, {}); // the server's own rules for its secret
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${source}: ${err.message.replace(/^invalid setting HERALD_SECRET: /, '')}`);
    throw err;
  }
  let room: string;
  if (flags.anyRoom) {
    if (flags.room !== undefined) throw new ConfigError('--room and --any-room exclude each other');
    room = '*';
  } else {
    if (flags.room === undefined) throw new ConfigError('token needs --room <room> (or --any-room for a token valid in every room)');
    if (flags.room === '*') throw new ConfigError("--room '*' would be valid in every room: pass --any-room if that is what you mean");
    const valid = RoomId.safeParse(flags.room);
    if (!valid.success) throw new ConfigError(`--room: ${valid.error.issues[0]!.message}`);
    room = flags.room;
  }
  const { Tokens } = await import('./auth/tokens.js');
  const jwt = await new Tokens(secret).mint({ sub: flags.sub, room, roles: flags.role ?? ['viewer'], ttl: flags.ttl });
  console.log(jwt);
}

function program(): Command {
  const cli = new Command('herald')
    .description('Herald: a WebRTC signaling server (docs/operations.md lists every setting and its environment variable).')
    .version(version, '-v, --version', 'print the version')
    .helpOption('-h, --help', 'show help (also: herald <command> --help)')
    .showSuggestionAfterError()
    // Commander's messages are one line already; say whose they are.
    .configureOutput({ outputError: (message, write) => write(`herald: ${message.replace(/^error: /, '')}`) });

  cli
    .command('serve')
    .description('run the server (settings come from the environment; flags win)')
    .option('--port <n>', 'port to listen on (PORT, default 9800)', port)
    .option('--host <host>', 'address to bind (HOST, default 0.0.0.0)', nonEmpty)
    .option('--redis-url <url>', 'Redis for several instances (REDIS_URL; default: in memory)', url)
    .addOption(new Option('--log-level <level>', 'log level (LOG_LEVEL, default info)').choices(LOG_LEVELS))
    .action(serve);

  cli
    .command('token')
    .description('mint a token for one user and print it (signed with HERALD_SECRET or --secret)')
    .requiredOption('--sub <id>', 'who the token is for (the user id)', nonEmpty)
    .option('--room <room>', 'the one room the token is valid in')
    .option('--any-room', 'make the token valid in every room instead (say so explicitly)')
    .option('--role <roles>', `roles, repeatable or comma-separated: ${TOKEN_ROLES.join(', ')} (default viewer)`, roles)
    .option('--ttl <ttl>', 'lifetime, e.g. 30m, 1h, 7d', ttl, '1h')
    .option('--secret <secret>', 'signing secret, at least 16 characters (default: HERALD_SECRET)')
    .action(token);

  // The top-level help names every command with every flag.
  cli.addHelpText('after', () => {
    const lines = cli.commands.map((c) => `  herald ${c.name()} ${c.options.map((o) => o.flags.replace(/^-h, --help$/, '')).filter(Boolean).join(' ')}`);
    return `\nUsage of each command:\n${lines.join('\n')}\n`;
  });
  return cli;
}

program()
  .parseAsync(process.argv)
  .catch((err) => {
    if (err instanceof ConfigError) {
      console.error(`herald: ${err.message}`);
    } else if (err?.code === 'EADDRINUSE') {
      console.error(`herald: port ${err.port} is already in use (set PORT or --port)`);
    } else {
      console.error('herald: failed to start:', err);
    }
    process.exit(1);
  });
