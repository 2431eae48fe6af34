import { loadConfig, type Config } from '../../src/config.js';
import { Herald } from '../../src/server.js';

export interface Running {
  herald: Herald;
  port: number;
  http: string;
  ws: string;
  stop(): Promise<void>;
}

/** Starts an in-process Herald on a free loopback port. */
export async function startHerald(overrides: Partial<Record<keyof Config, unknown>> = {}): Promise<Running> {
  const config = loadConfig({ port: 0, host: '127.0.0.1', logLevel: 'silent', drainDeadlineMs: 2000, ...overrides }, {});
  const herald = new Herald(config);
  const port = await herald.start();
  return {
    herald,
    port,
    http: `http://127.0.0.1:${port}`,
    ws: `ws://127.0.0.1:${port}`,
    stop: () => herald.stop(),
  };
}
