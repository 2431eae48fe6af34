/**
 * Finds where the value of a top-level member sits in the text of a JSON object, so a relay
 * can forward that value as the client wrote it instead of serializing the parsed copy again.
 * The text must already have passed JSON.parse (this scanner assumes well-formed JSON and
 * only skips over strings and nesting).
 *
 * Strings are skipped with `indexOf('"')`, a native search, checking only the backslashes
 * right before each quote. An SDP carries an escape (`\r\n`) on every line: a scanner that
 * stopped at every backslash, or allocated a regex match per stop, made the relay of a 2.5 KB
 * description mostly garbage collection (docs/performance.md).
 */

const QUOTE = 34; // "
const BACKSLASH = 92; // \

/** Index just past the string starting at the quote `text[start]`. */
function endOfString(text: string, start: number): number {
  let q = start;
  for (;;) {
    q = text.indexOf('"', q + 1);
    if (q < 0) return text.length; // not reached for text JSON.parse accepted
    // The quote ends the string unless an odd number of backslashes stands before it.
    let slashes = 0;
    while (text.charCodeAt(q - 1 - slashes) === BACKSLASH) slashes++;
    if ((slashes & 1) === 0) return q + 1;
  }
}

/** Index just past the value starting at `start`. */
function endOfValue(text: string, start: number): number {
  if (text.charCodeAt(start) === QUOTE) return endOfString(text, start);
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = endOfString(text, i) - 1;
    } else if (c === 123 || c === 91) {
      depth++; // { [
    } else if (c === 125 || c === 93) {
      // } ]
      if (depth === 0) return i; // the end of the enclosing object: a primitive ended
      if (--depth === 0) return i + 1;
    } else if (c === 44 && depth === 0) {
      return i; // ',' after a primitive
    }
  }
  return text.length;
}

/** True when text[from, to) holds a backslash (keys are short: a plain loop). */
function hasEscape(text: string, from: number, to: number): boolean {
  for (let j = from; j < to; j++) if (text.charCodeAt(j) === BACKSLASH) return true;
  return false;
}

function skipSpace(text: string, i: number): number {
  let c = text.charCodeAt(i);
  while (c === 32 || c === 9 || c === 10 || c === 13) c = text.charCodeAt(++i);
  return i;
}

/**
 * The raw text of member `key` of the top-level object in `text`, or undefined. It is the
 * value JSON.parse kept: with a duplicate key that is the LAST one, so every member is
 * scanned, and a later key written with escapes (it may spell `key`, e.g. "d\u0061ta")
 * makes it give up; the caller then serializes the parsed (validated) value instead.
 */
export function rawMember(text: string, key: string): string | undefined {
  let i = skipSpace(text, 0);
  if (text.charCodeAt(i) !== 123) return undefined;
  i = skipSpace(text, i + 1);
  let found: string | undefined;
  while (text.charCodeAt(i) === QUOTE) {
    const keyEnd = endOfString(text, i);
    const valueStart = skipSpace(text, skipSpace(text, keyEnd) + 1); // past ':'
    const valueEnd = endOfValue(text, valueStart);
    // Compared in place (no slice per key).
    if (keyEnd - i === key.length + 2 && text.startsWith(key, i + 1)) found = text.slice(valueStart, valueEnd).trimEnd();
    else if (hasEscape(text, i + 1, keyEnd - 1)) found = undefined;
    i = skipSpace(text, valueEnd);
    if (text.charCodeAt(i) === 44) i = skipSpace(text, i + 1);
  }
  return found;
}
