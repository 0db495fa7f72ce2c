// HL7 v2 message structure: segments, fields, repetitions, components and
// escape sequences, with the delimiters read from MSH-1/MSH-2. Knows nothing
// of observations or devices.

export interface Hl7Encoding {
  field: string;
  component: string;
  repetition: string;
  escape: string;
  subcomponent: string;
}

export interface Hl7Segment {
  readonly name: string;
  /** fields[n] is the raw (still escaped) text of field n; MSH-1 and MSH-2 included. */
  readonly fields: readonly string[];
}

export interface Hl7Message {
  readonly encoding: Hl7Encoding;
  readonly segments: readonly Hl7Segment[];
}

/** The frame is not an HL7 v2 message at all. */
export class Hl7SyntaxError extends Error {
  override name = 'Hl7SyntaxError';
}

const SEGMENT_NAME = /^[A-Z][A-Z0-9]{2}$/;
const MAX_SEGMENTS = 100_000;

export function parseHl7(text: string): Hl7Message {
  let start = 0;
  while (start < text.length && (text[start] === '\r' || text[start] === '\n' || text[start] === ' ')) start++;
  if (!text.startsWith('MSH', start) || text.length < start + 8) throw new Hl7SyntaxError('message does not start with MSH');
  const field = text[start + 3]!;
  if (/[A-Za-z0-9\r\n]/.test(field)) throw new Hl7SyntaxError('bad field separator');
  const encodingEnd = text.indexOf(field, start + 4);
  const lineEnd = firstLineEnd(text, start);
  const encodingChars = text.slice(start + 4, encodingEnd < 0 || encodingEnd > lineEnd ? lineEnd : encodingEnd);
  if (encodingChars.length < 4 || encodingChars.length > 5 || new Set(encodingChars + field).size !== encodingChars.length + 1) {
    throw new Hl7SyntaxError('bad encoding characters in MSH-2');
  }
  if (/[A-Za-z0-9\r\n]/.test(encodingChars)) throw new Hl7SyntaxError('bad encoding characters in MSH-2');
  const encoding: Hl7Encoding = {
    field,
    component: encodingChars[0]!,
    repetition: encodingChars[1]!,
    escape: encodingChars[2]!,
    subcomponent: encodingChars[3]!,
  };

  const segments: Hl7Segment[] = [];
  // \r is the standard terminator; tolerate \n and \r\n from hand-made senders.
  for (const line of text.slice(start).split(/\r\n|\r|\n/)) {
    if (line.length === 0 || line.trim().length === 0) continue;
    if (segments.length >= MAX_SEGMENTS) throw new Hl7SyntaxError('too many segments');
    const parts = line.split(field);
    const name = parts[0]!;
    if (!SEGMENT_NAME.test(name)) throw new Hl7SyntaxError(`bad segment name at segment ${segments.length + 1}`);
    if (name === 'MSH') {
      if (segments.length > 0) throw new Hl7SyntaxError('more than one MSH segment');
      // MSH-1 is the separator itself, so field numbers shift by one.
      segments.push({ name, fields: [name, field, ...parts.slice(1)] });
    } else {
      segments.push({ name, fields: parts });
    }
  }
  return { encoding, segments };
}

function firstLineEnd(text: string, from: number): number {
  for (let i = from; i < text.length; i++) if (text[i] === '\r' || text[i] === '\n') return i;
  return text.length;
}

/** Reads decoded values from one message. Field numbers are 1-based as in the standard. */
export class Hl7Reader {
  constructor(readonly encoding: Hl7Encoding) {}

  raw(segment: Hl7Segment, field: number): string {
    return segment.fields[field] ?? '';
  }

  /** Decoded components of the first repetition of a field. */
  components(segment: Hl7Segment, field: number): string[] {
    const raw = this.raw(segment, field);
    if (raw === '') return [];
    const first = raw.split(this.encoding.repetition)[0]!;
    return first.split(this.encoding.component).map((c) => this.unescape(c));
  }

  /** One decoded component (1-based) of the first repetition; '' when absent. */
  value(segment: Hl7Segment, field: number, component = 1): string {
    return this.components(segment, field)[component - 1] ?? '';
  }

  /** The first component of every repetition (e.g. OBX-8 `A~PL~ST`). */
  repetitions(segment: Hl7Segment, field: number): string[] {
    const raw = this.raw(segment, field);
    if (raw === '') return [];
    return raw.split(this.encoding.repetition).map((r) => this.unescape(r.split(this.encoding.component)[0]!));
  }

  /** Raw (escaped) components of the first repetition, for values that must not be unescaped one by one. */
  rawComponents(segment: Hl7Segment, field: number): string[] {
    const raw = this.raw(segment, field);
    if (raw === '') return [];
    return raw.split(this.encoding.repetition)[0]!.split(this.encoding.component);
  }

  unescape(text: string): string {
    return unescapeHl7(text, this.encoding);
  }
}

/**
 * Decodes \F\ \S\ \T\ \R\ \E\ \Xhh..\ and \.br\; drops formatting and charset
 * escapes. Adjacent \Xhh..\ sequences are decoded together, so a UTF-8
 * character a sender split over two of them comes out whole.
 */
export function unescapeHl7(text: string, enc: Hl7Encoding): string {
  const esc = enc.escape;
  let at = text.indexOf(esc);
  if (at < 0) return text;
  let out = '';
  let from = 0;
  let hex = '';
  const flushHex = () => {
    if (hex) out += Buffer.from(hex, 'hex').toString('utf8');
    hex = '';
  };
  while (at >= 0) {
    const close = text.indexOf(esc, at + 1);
    if (close < 0) break;
    if (at > from) flushHex();
    out += text.slice(from, at);
    const sequence = text.slice(at + 1, close);
    if (HEX_ESCAPE.test(sequence)) hex += sequence.slice(1);
    else {
      flushHex();
      out += decodeEscape(sequence, enc) ?? esc + sequence + esc;
    }
    from = close + 1;
    at = text.indexOf(esc, from);
  }
  flushHex();
  return out + text.slice(from);
}

const HEX_ESCAPE = /^X(?:[0-9A-Fa-f]{2})+$/;

function decodeEscape(sequence: string, enc: Hl7Encoding): string | undefined {
  switch (sequence) {
    case 'F': return enc.field;
    case 'S': return enc.component;
    case 'T': return enc.subcomponent;
    case 'R': return enc.repetition;
    case 'E': return enc.escape;
    case '.br': return '\n';
    case 'H':
    case 'N': return '';
  }
  const kind = sequence[0];
  if ((kind === 'C' || kind === 'M' || kind === 'Z') && sequence.length > 1) return '';
  return undefined;
}

/** Escapes text for an HL7 field (used in ACK reason texts). */
export function escapeHl7(text: string, enc: Hl7Encoding): string {
  let out = '';
  for (const ch of text) {
    if (ch === enc.escape) out += `${enc.escape}E${enc.escape}`;
    else if (ch === enc.field) out += `${enc.escape}F${enc.escape}`;
    else if (ch === enc.component) out += `${enc.escape}S${enc.escape}`;
    else if (ch === enc.subcomponent) out += `${enc.escape}T${enc.escape}`;
    else if (ch === enc.repetition) out += `${enc.escape}R${enc.escape}`;
    else if (ch === '\r' || ch === '\n') out += ' ';
    else out += ch;
  }
  return out;
}

export const STANDARD_ENCODING: Hl7Encoding = { field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&' };
