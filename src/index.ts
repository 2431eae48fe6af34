/**
 * Herald's server API, the package's main entry (`import { Herald, loadConfig } from 'herald'`).
 * docs/deploy.md "Embedding" shows both ways to run it inside an app: on a port of its own, or
 * attached to the app's http.Server. The browser SDK is the `herald/client` entry (docs/sdk.md).
 */
export { Herald, type AttachOptions } from './server.js';
export { loadConfig, ConfigError, ENV_NAMES, type Config } from './config.js';
export { Tokens } from './auth/tokens.js';
export type { GrantRole } from './core/grant.js';
export type { Logger } from './observability/logger.js';
