import type { Hub } from '../core/hub.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { IceServer } from '../protocol/json-messages.js';
import type { GuardLimits } from './guard.js';

/** What every protocol connection needs from the server around it. */
export interface ConnectionContext {
  hub: Hub;
  log: Logger;
  metrics: Metrics;
  limits: GuardLimits;
  heartbeatMs: number;
  /** Cap on one JSON signal's serialized size, below the frame cap. */
  maxSignalBytes: number;
  iceServers(identity: string | undefined): IceServer[];
}

export { CLOSE } from '../protocol/close-codes.js';
