/**
 * A read cursor over the binary forms the engine hands to its writer thread (`batch-wire.ts`,
 * `bulk-load.ts`): big-endian fixed-width fields and length-prefixed byte strings
 * (`len u32 | bytes`), the latter returned as views into the buffer (no copy). A byte string
 * that runs past the end throws INTERNAL `truncated <format> encoding`; a fixed-width read past
 * the end throws Node's range error, as `Buffer` does.
 */
import { KeyVaError } from '@keyva/proto/errors';

export class WireReader {
  readonly buf: Buffer;
  /** Offset of the next read. */
  o = 0;
  /** The format's name in error messages ("batch", "bulk load"). */
  readonly format: string;

  /** `ab`: a whole buffer, or a view (read without a copy). */
  constructor(ab: ArrayBuffer | Uint8Array, format: string) {
    this.buf = ab instanceof Uint8Array ? Buffer.from(ab.buffer, ab.byteOffset, ab.byteLength) : Buffer.from(ab);
    this.format = format;
  }

  u8(): number {
    const v = this.buf.readUInt8(this.o);
    this.o += 1;
    return v;
  }

  u32(): number {
    const v = this.buf.readUInt32BE(this.o);
    this.o += 4;
    return v;
  }

  u64(): bigint {
    const v = this.buf.readBigUInt64BE(this.o);
    this.o += 8;
    return v;
  }

  f64(): number {
    const v = this.buf.readDoubleBE(this.o);
    this.o += 8;
    return v;
  }

  /** A `len u32 | bytes` string, as a view into the buffer. */
  bytes(): Buffer {
    const len = this.u32();
    const x = this.buf.subarray(this.o, this.o + len);
    if (x.length !== len) throw new KeyVaError('INTERNAL', `truncated ${this.format} encoding`);
    this.o += len;
    return x;
  }

  /** Throws INTERNAL unless every byte was read. */
  end(): void {
    if (this.o !== this.buf.length) throw new KeyVaError('INTERNAL', `trailing bytes in ${this.format} encoding`);
  }
}
