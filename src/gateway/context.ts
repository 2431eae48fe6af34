import type { Hub } from '../core/hub.js';
import type { Session } from '../core/types.js';
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
  /**
   * A connection's socket closed, after the adapter told the core: the gateway's bookkeeping.
   * Called by the connection's own close listener (one listener fewer per socket).
   */
  ended(session: Session, code: number): void;
}

export { CLOSE } from '../protocol/close-codes.js';
