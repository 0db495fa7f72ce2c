// MLLP framing: <VT> message <FS><CR>. The deframer resynchronises on the next
// <VT>: bytes outside a frame, a frame cut short by a new <VT>, and frames over
// the size cap are dropped and counted, never delivered.

export const MLLP_START = 0x0b;
export const MLLP_END = 0x1c;
export const MLLP_CR = 0x0d;

export interface DeframeResult {
  frames: Buffer[];
  /** Bytes dropped by this push (garbage, aborted and oversize frames). */
  discarded: number;
  /** Frames dropped by this push because they exceeded the size cap. */
  oversize: number;
}

export class MllpDeframer {
  readonly #maxFrameBytes: number;
  #parts: Buffer[] = [];
  #length = 0;
  #inFrame = false;
  #oversize = false;
  /** The previous chunk ended right after <FS>: a leading <CR> belongs to that trailer. */
  #skipCr = false;

  constructor(maxFrameBytes = 1024 * 1024) {
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** Bytes held for an unfinished frame. */
  get pendingBytes(): number {
    return this.#length;
  }

  push(chunk: Buffer): DeframeResult {
    const result: DeframeResult = { frames: [], discarded: 0, oversize: 0 };
    let i = 0;
    if (this.#skipCr && chunk.length > 0) {
      this.#skipCr = false;
      if (chunk[0] === MLLP_CR) i = 1;
    }
    while (i < chunk.length) {
      if (!this.#inFrame) {
        const start = chunk.indexOf(MLLP_START, i);
        if (start < 0) {
          result.discarded += chunk.length - i;
          break;
        }
        result.discarded += start - i;
        this.#begin();
        i = start + 1;
        continue;
      }
      const end = chunk.indexOf(MLLP_END, i);
      const restart = chunk.indexOf(MLLP_START, i);
      if (restart >= 0 && (end < 0 || restart < end)) {
        // A new frame began before this one ended: the partial one is lost.
        result.discarded += 1 + this.#length + (restart - i);
        this.#begin();
        i = restart + 1;
        continue;
      }
      if (end < 0) {
        this.#append(chunk.subarray(i));
        break;
      }
      this.#append(chunk.subarray(i, end));
      i = end + 1;
      if (i < chunk.length) {
        if (chunk[i] === MLLP_CR) i++;
      } else {
        this.#skipCr = true;
      }
      this.#finish(result);
    }
    return result;
  }

  #begin(): void {
    this.#parts = [];
    this.#length = 0;
    this.#oversize = false;
    this.#inFrame = true;
  }

  #append(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.#length += bytes.length;
    if (this.#oversize) return;
    if (this.#length > this.#maxFrameBytes) {
      this.#oversize = true;
      this.#parts = [];
      return;
    }
    // Copy: the socket may reuse its chunk buffer.
    this.#parts.push(Buffer.from(bytes));
  }

  #finish(result: DeframeResult): void {
    if (this.#oversize) {
      result.discarded += this.#length + 2;
      result.oversize++;
    } else {
      result.frames.push(this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts, this.#length));
    }
    this.#parts = [];
    this.#length = 0;
    this.#inFrame = false;
    this.#oversize = false;
  }
}

/** Wraps one HL7 message (segments joined by \r) in an MLLP frame. */
export function mllpFrame(message: string): Buffer {
  const body = Buffer.from(message, 'utf8');
  const out = Buffer.allocUnsafe(body.length + 3);
  out[0] = MLLP_START;
  body.copy(out, 1);
  out[body.length + 1] = MLLP_END;
  out[body.length + 2] = MLLP_CR;
  return out;
}
