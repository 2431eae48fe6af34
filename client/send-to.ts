import type { DataPayload } from './data-pipe.js';
import type { PeerLink } from './peer-link.js';
import { HeraldError } from './signaling.js';

/** Sends on the data channel of one link (`to`) or of every link. */
export function sendTo(links: ReadonlyMap<string, PeerLink>, data: DataPayload, to: string | undefined): void {
  if (to === undefined) {
    for (const link of links.values()) link.send(data);
    return;
  }
  const link = links.get(to);
  if (!link) throw new HeraldError('not-found', `no connection to peer ${to}`);
  link.send(data);
}
