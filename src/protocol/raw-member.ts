/**
 * Finds where the value of a top-level member sits in the text of a JSON object, so a relay
 * can forward that value as the client wrote it instead of serializing the parsed copy again.
 * The text must already have passed JSON.parse (this scanner assumes well-formed JSON and
 * only skips over strings and nesting); it jumps between structural characters with a native
 * regex search, so a long SDP string costs a few searches, not a character loop.
 */
const STRUCTURAL = /["{}[\],]/g;
const QUOTE_OR_BACKSLASH = /["\\]/g;

/** Index just past the string starting at the quote `text[start]`. */
function endOfString(text: string, start: number): number {
  QUOTE_OR_BACKSLASH.lastIndex = start + 1;
  for (;;) {
    const m = QUOTE_OR_BACKSLASH.exec(text)!;
    if (m[0] === '"') return m.index + 1;
    QUOTE_OR_BACKSLASH.lastIndex = m.index + 2; // skip the escaped character
  }
}

/** Index just past the value starting at `start` (after any whitespace). */
function endOfValue(text: string, start: number): number {
  const first = text[start];
  if (first === '"') return endOfString(text, start);
  let depth = 0;
  STRUCTURAL.lastIndex = start;
  for (;;) {
    const m = STRUCTURAL.exec(text);
    if (!m) return text.length;
    const c = m[0];
    if (c === '"') {
      STRUCTURAL.lastIndex = endOfString(text, m.index);
    } else if (c === '{' || c === '[') {
      depth++;
    } else if (c === '}' || c === ']') {
      if (depth === 0) return m.index; // the end of the enclosing object: a primitive ended
      if (--depth === 0) return m.index + 1;
    } else if (depth === 0) {
      return m.index; // ',' after a primitive
    }
  }
}

/** True when text[from, to) holds a backslash (keys are short: a plain loop). */
function hasEscape(text: string, from: number, to: number): boolean {
  for (let j = from; j < to; j++) if (text.charCodeAt(j) === 92) return true;
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
  if (text[i] !== '{') return undefined;
  i = skipSpace(text, i + 1);
  let found: string | undefined;
  while (text[i] === '"') {
    const keyEnd = endOfString(text, i);
    const valueStart = skipSpace(text, skipSpace(text, keyEnd) + 1); // past ':'
    const valueEnd = endOfValue(text, valueStart);
    // Compared in place (no slice per key).
    if (keyEnd - i === key.length + 2 && text.startsWith(key, i + 1)) found = text.slice(valueStart, valueEnd).trimEnd();
    else if (hasEscape(text, i + 1, keyEnd - 1)) found = undefined;
    i = skipSpace(text, valueEnd);
    if (text[i] === ',') i = skipSpace(text, i + 1);
  }
  return found;
}
