import * as grpc from '@grpc/grpc-js';
import { ERROR_METADATA } from '@keyva/proto/errors';
import { describe, expect, it } from 'vitest';
import { forwardedCallError, notForwardedError } from './forward-outcome.ts';

const ctx = (write: boolean) => ({ self: 'node-1', leader: 'node-2', method: write ? 'Put' : 'Get', write });

function answered(code: string, details: Record<string, string>, status: grpc.status): { code: number; details: string; metadata: grpc.Metadata } {
  const md = new grpc.Metadata();
  md.set(ERROR_METADATA.code, code);
  md.set(ERROR_METADATA.details, JSON.stringify(details));
  return { code: status, details: `${code}: the leader said so`, metadata: md };
}

describe('what a forwarding node answers', () => {
  it("passes the leader's own answer on unchanged (one hop: its NOT_LEADER is not forwarded again)", () => {
    const e = forwardedCallError(answered('NOT_LEADER', { leaderHint: 'node-3', partitionId: '4' }, grpc.status.UNAVAILABLE), ctx(true));
    expect(e).toMatchObject({ code: 'NOT_LEADER', message: 'the leader said so', details: { leaderHint: 'node-3', partitionId: '4' } });
    expect(forwardedCallError(answered('CONDITION_FAILED', {}, grpc.status.FAILED_PRECONDITION), ctx(true)).code).toBe('CONDITION_FAILED');
    expect(forwardedCallError(answered('DEADLINE_EXCEEDED', { index: '7' }, grpc.status.DEADLINE_EXCEEDED), ctx(true)).details.index).toBe('7');
  });

  it('answers a write whose call broke after sending as an unknown outcome, never UNAVAILABLE or NOT_LEADER', () => {
    for (const status of [grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.INTERNAL, grpc.status.CANCELLED, grpc.status.UNKNOWN]) {
      const e = forwardedCallError({ code: status, details: 'Connection dropped', metadata: new grpc.Metadata() }, ctx(true));
      expect(e.code).toBe('DEADLINE_EXCEEDED');
      expect(e.details).toMatchObject({ outcome: 'unknown', forwardedTo: 'node-2' });
      expect(e.message).toMatch(/outcome unknown/);
    }
  });

  it('answers a read whose call broke as retryable', () => {
    const e = forwardedCallError({ code: grpc.status.UNAVAILABLE, details: 'Connection dropped' }, ctx(false));
    expect([e.code, e.retryable]).toEqual(['UNAVAILABLE', true]);
    expect(forwardedCallError({ code: grpc.status.DEADLINE_EXCEEDED }, ctx(false)).code).toBe('DEADLINE_EXCEEDED');
    // The leader's side cancelled (it shut down): still retryable for the caller.
    expect(forwardedCallError({ code: grpc.status.CANCELLED }, ctx(false)).code).toBe('UNAVAILABLE');
  });

  it('ignores a code it does not know and malformed details (treated as no KeyVa answer)', () => {
    const md = new grpc.Metadata();
    md.set(ERROR_METADATA.code, 'SOMETHING_NEW');
    expect(forwardedCallError({ code: grpc.status.UNAVAILABLE, metadata: md }, ctx(true)).code).toBe('DEADLINE_EXCEEDED');
    const bad = answered('NOT_LEADER', {}, grpc.status.UNAVAILABLE);
    bad.metadata.set(ERROR_METADATA.details, '{not json');
    expect(forwardedCallError(bad, ctx(false)).details).toEqual({});
  });

  it('says nothing was sent when the leader could not be reached', () => {
    const e = notForwardedError(ctx(true), 'connection refused');
    expect([e.code, e.retryable, e.details.forwarded, e.details.leaderHint]).toEqual(['UNAVAILABLE', true, 'false', 'node-2']);
  });
});
