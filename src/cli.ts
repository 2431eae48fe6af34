#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config.js';
import { Tokens } from './auth/tokens.js';
import type { GrantRole } from './core/grant.js';
import { Herald } from './server.js';

const USAGE = `usage:
  herald serve [--port N] [--host H] [--redis-url URL] [--log-level L]
  herald token --sub ID [--room R|*] [--role broadcaster|viewer|peer|admin ...] [--ttl 1h]`;

async function serve(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      'redis-url': { type: 'string' },
      'log-level': { type: 'string' },
    },
  });
  const config = loadConfig({
    port: values.port,
    host: values.host,
    redisUrl: values['redis-url'],
    logLevel: values['log-level'],
  });
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
  const port = await herald.start();
  const shown = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  console.log(`herald listening on http://${shown}:${port}`);

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
}

const TOKEN_ROLES = new Set(['broadcaster', 'viewer', 'peer', 'admin']);

/** `herald token`: mints a JWT with HERALD_SECRET (or --secret) and prints it. */
async function token(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      sub: { type: 'string' },
      room: { type: 'string', default: '*' },
      role: { type: 'string', multiple: true },
      ttl: { type: 'string', default: '1h' },
      secret: { type: 'string' },
    },
  });
  const secret = values.secret ?? process.env.HERALD_SECRET;
  if (!secret) throw new ConfigError('herald token needs HERALD_SECRET (or --secret)');
  if (!values.sub) throw new ConfigError('herald token needs --sub <identity>');
  const roles = (values.role ?? ['viewer']).flatMap((r) => r.split(','));
  const bad = roles.find((r) => !TOKEN_ROLES.has(r));
  if (bad) throw new ConfigError(`unknown role "${bad}" (use broadcaster, viewer, peer or admin)`);
  if (!/^\d+[smhd]$/.test(values.ttl!)) throw new ConfigError(`--ttl must look like 30m, 1h or 7d, not "${values.ttl}"`);
  const jwt = await new Tokens(secret).mint({ sub: values.sub, room: values.room!, roles: roles as GrantRole[], ttl: values.ttl! });
  console.log(jwt);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === 'serve') return serve(rest);
  if (command === 'token') return token(rest);
  console.error(USAGE);
  process.exit(command ? 2 : 0);
}

main(process.argv.slice(2)).catch((err) => {
  if (err instanceof ConfigError || err?.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    console.error(`herald: ${err.message}`);
  } else if (err?.code === 'EADDRINUSE') {
    console.error(`herald: port ${err.port} is already in use (set PORT or --port)`);
  } else {
    console.error('herald: failed to start:', err);
  }
  process.exit(1);
});
