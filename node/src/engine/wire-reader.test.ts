import { isKeyVaError } from '@keyva/proto/errors';
import { describe, expect, it } from 'vitest';
import { decodeLoad, encodeLoad } from './bulk-load.ts';
import { WireReader } from './wire-reader.ts';

function fresh(b: Buffer): ArrayBuffer {
  const ab = new ArrayBuffer(b.length);
  b.copy(Buffer.from(ab));
  return ab;
}

const internal = (f: () => unknown, message: string): void => {
  try {
    f();
  } catch (e) {
    expect(isKeyVaError(e) && e.code).toBe('INTERNAL');
    expect((e as Error).message).toBe(message);
    return;
  }
  throw new Error('no error thrown');
};

describe('WireReader', () => {
  it('reads big-endian fields and length-prefixed views in order', () => {
    const b = Buffer.alloc(1 + 4 + 8 + 8 + 4 + 3);
    let o = b.writeUInt8(7, 0);
    o = b.writeUInt32BE(0xdead_beef, o);
    o = b.writeBigUInt64BE(2n ** 63n + 5n, o);
    o = b.writeDoubleBE(1.5, o);
    o = b.writeUInt32BE(3, o);
    b.write('abc', o);
    const ab = fresh(b);
    const r = new WireReader(ab, 'test');
    expect([r.u8(), r.u32(), r.u64(), r.f64()]).toEqual([7, 0xdead_beef, 2n ** 63n + 5n, 1.5]);
    const s = r.bytes();
    expect(s.toString()).toBe('abc');
    expect(s.buffer).toBe(ab); // a view, not a copy
    r.end();
  });

  it('names the format when a byte string runs past the end or bytes are left over', () => {
    const b = Buffer.alloc(4 + 2);
    b.writeUInt32BE(5, 0);
    internal(() => new WireReader(fresh(b), 'test').bytes(), 'truncated test encoding');
    const r = new WireReader(fresh(Buffer.alloc(3)), 'test');
    r.u8();
    internal(() => r.end(), 'trailing bytes in test encoding');
  });

  it('decodes bulk loads as before: a round trip, and a cut or padded encoding refused', () => {
    const load = {
      rows: [{ hash: 9n, key: Buffer.from('k'), value: Buffer.from('value'), version: 3n, expiresAtMs: 0 }],
      raw: [{ key: Buffer.from('r'), value: Buffer.from('v') }],
    };
    const ab = encodeLoad(load);
    expect(decodeLoad(ab)).toEqual(load);
    const whole = Buffer.from(ab);
    internal(() => decodeLoad(fresh(whole.subarray(0, whole.length - 1))), 'truncated bulk load encoding');
    internal(() => decodeLoad(fresh(Buffer.concat([whole, Buffer.alloc(1)]))), 'trailing bytes in bulk load encoding');
  });
});
