/**
 * The snapshot socket's wire format (ADR 0014): a `SendSnapshotFiles` transfer carried over a
 * plain TCP connection instead of a gRPC call, so the bulk bytes of a partition move skip
 * HTTP/2 framing and grpc-js's per-frame work on two event loops that also serve clients.
 *
 * Sender to receiver: `SOCKET_PREAMBLE`, then each `SnapshotFrame` as a 4-byte big-endian length
 * and its protobuf encoding (the same frames, in the same order, as on the gRPC call); the sender
 * half-closes after the `done` frame. Receiver to sender: one answer, a 1-byte gRPC status code
 * (0: OK), a 4-byte big-endian length and the encoded `SnapshotAck` (OK) or the error's UTF-8
 * text; then it closes. Pure: bytes in, frames out.
 */
import { keyvaV1, type SnapshotAck, type SnapshotAckOut, type SnapshotFrame, type SnapshotFrameOut } from '@keyva/proto';

export const SOCKET_PREAMBLE = Buffer.from('KEYVA-SNAPSHOT-FILES/1\n', 'ascii');

/** A frame longer than this is refused (a chunk is 1 MiB by default; the header holds one Raft message). */
export const SOCKET_FRAME_BYTES_MAX = 64 << 20;

const method = keyvaV1.Raft.service.SendSnapshotFiles;

/** The bytes of `frame` on the socket (length prefix included); `preamble` puts the preamble first. */
export function encodeSocketFrame(frame: SnapshotFrame, preamble = false): Buffer {
  const body = method.requestSerialize(frame);
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(body.length, 0);
  return Buffer.concat(preamble ? [SOCKET_PREAMBLE, head, body] : [head, body]);
}

/** The receiver's answer: status 0 with the ack, or a gRPC status code with the error's text. */
export function encodeSocketAnswer(answer: { code: 0; ack: SnapshotAck } | { code: number; details: string }): Buffer {
  const body = answer.code === 0 && 'ack' in answer ? method.responseSerialize(answer.ack) : Buffer.from('details' in answer ? answer.details : '', 'utf8');
  const head = Buffer.allocUnsafe(5);
  head.writeUInt8(answer.code, 0);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** Bytes gathered from a stream; `take(n)` removes and returns the first `n` once there are that many. */
class ByteQueue {
  private chunks: Buffer[] = [];
  length = 0;

  push(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }

  take(n: number): Buffer | undefined {
    if (this.length < n) return undefined;
    if (n === 0) return Buffer.alloc(0);
    let out: Buffer;
    const first = this.chunks[0] as Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let at = 0;
      while (at < n) {
        const c = this.chunks[0] as Buffer;
        const k = Math.min(c.length, n - at);
        c.copy(out, at, 0, k);
        at += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.length -= n;
    return out;
  }
}

/** Malformed bytes on a snapshot socket: the transfer is refused with INVALID_ARGUMENT. */
export class SocketFramingError extends Error {}

/** The receiver's parser: push the socket's bytes, then `next()` returns whole frames as they complete. */
export class SocketFrameReader {
  private readonly q = new ByteQueue();
  private preambleSeen = false;
  private bodyBytes: number | undefined;

  push(b: Buffer): void {
    this.q.push(b);
  }

  /** Bytes received and not yet returned as frames (a stream that ends with some was cut short). */
  get pending(): number {
    return this.q.length + (this.bodyBytes === undefined ? 0 : 4);
  }

  /** The next whole frame, or undefined until more bytes arrive; throws `SocketFramingError` on malformed input. */
  next(): SnapshotFrameOut | undefined {
    if (!this.preambleSeen) {
      const head = this.q.take(SOCKET_PREAMBLE.length);
      if (head === undefined) return undefined;
      if (!head.equals(SOCKET_PREAMBLE)) throw new SocketFramingError('not a KeyVa snapshot stream (wrong preamble)');
      this.preambleSeen = true;
    }
    if (this.bodyBytes === undefined) {
      const len = this.q.take(4);
      if (len === undefined) return undefined;
      this.bodyBytes = len.readUInt32BE(0);
      if (this.bodyBytes > SOCKET_FRAME_BYTES_MAX) throw new SocketFramingError(`frame of ${this.bodyBytes} bytes (at most ${SOCKET_FRAME_BYTES_MAX})`);
    }
    const body = this.q.take(this.bodyBytes);
    if (body === undefined) return undefined;
    this.bodyBytes = undefined;
    try {
      return method.requestDeserialize(body) as SnapshotFrameOut;
    } catch (e) {
      throw new SocketFramingError(`malformed frame (${(e as Error).message})`);
    }
  }
}

/** The sender's parser of the answer: push the socket's bytes; `answer()` once all of it arrived. */
export class SocketAnswerReader {
  private readonly q = new ByteQueue();
  private head: Buffer | undefined;

  push(b: Buffer): void {
    this.q.push(b);
  }

  answer(): { code: 0; ack: SnapshotAckOut } | { code: number; details: string } | undefined {
    if (this.head === undefined) {
      this.head = this.q.take(5);
      if (this.head === undefined) return undefined;
    }
    const body = this.q.take(this.head.readUInt32BE(1));
    if (body === undefined) return undefined;
    const code = this.head.readUInt8(0);
    if (code === 0) return { code: 0, ack: method.responseDeserialize(body) as SnapshotAckOut };
    return { code, details: body.toString('utf8') };
  }
}
