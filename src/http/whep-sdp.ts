import type { IceServer } from '../protocol/json-messages.js';

/**
 * The few things the WHEP resource reads in SDP text (docs/whep.md). Herald never negotiates
 * media: the broadcaster's browser does. The server only tells SDP from other text and takes
 * the candidates out of a trickle fragment (RFC 8840).
 */

const LINE = /^[a-z]=/;

/**
 * True when `text` is an SDP offer Herald can hand on: `v=0` first, every line `<letter>=…`,
 * and at least one audio or video section. Anything else is a 400 (malformed SDP).
 */
export function isMediaSdp(text: string): boolean {
  const lines = text.split(/\r?\n/).filter((l) => l !== '');
  if (lines[0] !== 'v=0' || !lines.every((l) => LINE.test(l))) return false;
  return lines.some((l) => l.startsWith('m=audio ') || l.startsWith('m=video '));
}

/** One trickled candidate as the SDK's broadcaster applies it (RTCIceCandidateInit). */
export interface TrickledCandidate {
  candidate: string;
  sdpMid?: string;
  sdpMLineIndex?: number;
}

/**
 * The candidates of an `application/trickle-ice-sdpfrag` body: each `a=candidate:` line under
 * the `a=mid:` of its section; `a=end-of-candidates` as an empty candidate (the browser's end
 * of candidates). Undefined when the body is not an SDP fragment at all.
 */
export function parseSdpFrag(text: string): TrickledCandidate[] | undefined {
  const lines = text.split(/\r?\n/).filter((l) => l !== '');
  if (!lines.every((l) => LINE.test(l))) return undefined;
  const out: TrickledCandidate[] = [];
  let mid: string | undefined;
  let section = -1;
  const where = (): Omit<TrickledCandidate, 'candidate'> => (mid !== undefined ? { sdpMid: mid } : { sdpMLineIndex: Math.max(section, 0) });
  for (const line of lines) {
    if (line.startsWith('m=')) {
      section++;
      mid = undefined;
    } else if (line.startsWith('a=mid:')) mid = line.slice(6);
    else if (line.startsWith('a=candidate:')) out.push({ candidate: line.slice(2), ...where() });
    else if (line === 'a=end-of-candidates') out.push({ candidate: '', ...where() });
  }
  return out;
}

/**
 * One `Link` header value per STUN/TURN URL, in RFC 9725's form:
 * `<turn:turn.example.net?transport=udp>; rel="ice-server"; username="…"; credential="…"; credential-type="password"`.
 */
export function iceServerLinks(servers: readonly IceServer[]): string[] {
  const links: string[] = [];
  for (const server of servers) {
    const urls = Array.isArray(server.urls) ? server.urls : [server.urls];
    const auth = server.username !== undefined && server.credential !== undefined
      ? `; username=${quote(server.username)}; credential=${quote(server.credential)}; credential-type="password"`
      : '';
    for (const url of urls) links.push(`<${url}>; rel="ice-server"${auth}`);
  }
  return links;
}

/** A quoted-string (RFC 9110): backslash and double quote escaped. */
function quote(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}
