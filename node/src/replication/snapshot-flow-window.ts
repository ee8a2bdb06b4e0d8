/**
 * The HTTP/2 receive window of incoming snapshot streams. A `SendSnapshot` call carries its rows
 * client → server, so what paces it is the window the *receiving server* grants: 64 KiB per
 * stream by default (Node's HTTP/2 default), which the server tops up only once its event loop
 * has handed the bytes to the call. One 1 MiB chunk thus needs 16 window round trips, each
 * costing an event-loop turn on both nodes: on a busy node (turns of tens of ms) a transfer
 * crawls at ~1 MiB/s however fast disk and network are. The fix is a larger window, but
 * `@grpc/grpc-js` (1.14) has no server option for it (`grpc-node.flow_control_window` is read by
 * the client transport only; grpc/grpc-node PR #3058 adds it to the server), so the receiver
 * raises it itself on the HTTP/2 session under the call, with Node's public `Http2Session`
 * API: the initial stream window (a SETTINGS frame; streams already open grow by the difference)
 * and the connection window.
 *
 * The session is the sender's snapshot connection (`raft-transport.ts` opens one of its own per
 * peer), so only snapshot streams get the larger window. Memory stays bounded: at most `bytes`
 * unread per stream on top of what grpc-js buffers already. Reaching the session goes through
 * grpc-js internals (the call's `call` → `nextCall`… → `stream`): if they change, nothing is
 * raised (the transfer still works, slowly) and the test of this file fails.
 */
import type { Http2Session, ServerHttp2Stream } from 'node:http2';

/** Receive window of an incoming snapshot stream (and its connection): a few chunks. */
export const SNAPSHOT_RECEIVE_WINDOW_BYTES = 4 << 20;

/** Sessions already widened (a SETTINGS frame is sent once per session). */
const widened = new WeakSet<Http2Session>();

/** The HTTP/2 stream under a grpc-js server call, if its internals are as expected. */
function http2StreamOf(call: object): ServerHttp2Stream | undefined {
  let c = (call as { call?: unknown }).call;
  for (let depth = 0; depth < 16 && typeof c === 'object' && c !== null; depth++) {
    const s = (c as { stream?: unknown }).stream;
    if (typeof s === 'object' && s !== null && 'session' in s) return s as ServerHttp2Stream;
    c = (c as { nextCall?: unknown }).nextCall;
  }
  return undefined;
}

/**
 * Raises the receive windows of the HTTP/2 session carrying the server call `call` to `bytes`
 * (once per session). Returns the session, or undefined when it could not be reached (or is
 * closing); never throws.
 */
export function widenReceiveWindow(call: object, bytes: number = SNAPSHOT_RECEIVE_WINDOW_BYTES): Http2Session | undefined {
  const session = http2StreamOf(call)?.session;
  if (session === undefined || session.closed || session.destroyed) return undefined;
  if (widened.has(session)) return session;
  try {
    session.setLocalWindowSize(bytes);
    session.settings({ initialWindowSize: bytes });
  } catch {
    return undefined;
  }
  widened.add(session);
  return session;
}
