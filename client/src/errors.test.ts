import * as grpc from '@grpc/grpc-js';
import { ERROR_CODE_LIST, ERROR_METADATA, ErrorCodes, KeyVaError } from '@keyva/proto/errors';
import { describe, expect, test } from 'vitest';
import { decodeGrpcError, decodeWireError, markNotApplied, parseDetails, withUnknownOutcome, writeOutcome } from './errors.ts';

function serviceError(status: number, trailers: Record<string, string> = {}, details = 'server says something'): grpc.ServiceError {
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(trailers)) metadata.set(k, v);
  return Object.assign(new Error(`${status} ${details}`), { code: status, details, metadata });
}

describe('decodeGrpcError', () => {
  test('takes the code and details from the KeyVa trailers', () => {
    const e = decodeGrpcError(
      serviceError(grpc.status.UNAVAILABLE, {
        [ERROR_METADATA.code]: 'NOT_LEADER',
        [ERROR_METADATA.retryable]: 'true',
        [ERROR_METADATA.details]: JSON.stringify({ epoch: '7', leaderHint: 'n2' }),
      }),
    );
    expect(e).toBeInstanceOf(KeyVaError);
    expect(e.code).toBe('NOT_LEADER');
    expect(e.retryable).toBe(true);
    expect(e.details).toEqual({ epoch: '7', leaderHint: 'n2' });
    expect(e.message).toBe('server says something');
  });

  test('decodes every registry code from its trailer', () => {
    for (const code of ERROR_CODE_LIST) {
      const e = decodeGrpcError(serviceError(ErrorCodes[code].grpc, { [ERROR_METADATA.code]: code }));
      expect(e.code).toBe(code);
      expect(e.retryable).toBe(ErrorCodes[code].retryable);
    }
  });

  test('without a trailer, maps the gRPC status (grpc-js and proxy errors)', () => {
    expect(decodeGrpcError(serviceError(grpc.status.UNAVAILABLE)).code).toBe('UNAVAILABLE');
    expect(decodeGrpcError(serviceError(grpc.status.DEADLINE_EXCEEDED)).code).toBe('DEADLINE_EXCEEDED');
    expect(decodeGrpcError(serviceError(grpc.status.CANCELLED)).code).toBe('CANCELLED');
    expect(decodeGrpcError(serviceError(grpc.status.UNIMPLEMENTED)).code).toBe('ROUTE_NOT_FOUND');
    expect(decodeGrpcError(serviceError(grpc.status.UNKNOWN)).code).toBe('INTERNAL');
  });

  test('never reads the message text', () => {
    // A message naming a code does not make it that code.
    const e = decodeGrpcError(serviceError(grpc.status.INTERNAL, {}, 'NOT_LEADER: CONDITION_FAILED'));
    expect(e.code).toBe('INTERNAL');
  });

  test('a code unknown to this SDK falls back to the status and is kept in details', () => {
    const e = decodeGrpcError(serviceError(grpc.status.UNAVAILABLE, { [ERROR_METADATA.code]: 'SOME_FUTURE_CODE' }));
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.details.serverCode).toBe('SOME_FUTURE_CODE');
  });

  test('KeyVaErrors pass through; other throwables become INTERNAL', () => {
    const k = new KeyVaError('KEY_EMPTY');
    expect(decodeGrpcError(k)).toBe(k);
    expect(decodeGrpcError(new TypeError('boom')).code).toBe('INTERNAL');
  });

  test('server-coded rejections are known not to have applied; timeouts and transport errors are not', () => {
    const coded = (code: string) => decodeGrpcError(serviceError(grpc.status.UNAVAILABLE, { [ERROR_METADATA.code]: code }));
    expect(writeOutcome(coded('NOT_LEADER'))).toBe('not-applied');
    expect(writeOutcome(coded('WRONG_PARTITION'))).toBe('not-applied');
    expect(writeOutcome(coded('UNAVAILABLE'))).toBe('not-applied');
    expect(writeOutcome(coded('DEADLINE_EXCEEDED'))).toBe('unknown');
    expect(writeOutcome(coded('INTERNAL'))).toBe('unknown');
    expect(writeOutcome(decodeGrpcError(serviceError(grpc.status.UNAVAILABLE)))).toBe('unknown');
    expect(writeOutcome(decodeGrpcError(serviceError(grpc.status.DEADLINE_EXCEEDED)))).toBe('unknown');
  });
});

describe('parseDetails', () => {
  test('returns {} for missing, malformed or non-object JSON', () => {
    expect(parseDetails(undefined)).toEqual({});
    expect(parseDetails('')).toEqual({});
    expect(parseDetails('{not json')).toEqual({});
    expect(parseDetails('[1,2]')).toEqual({});
    expect(parseDetails('"x"')).toEqual({});
  });

  test('keeps strings and JSON-encodes other values', () => {
    expect(parseDetails('{"a":"1","b":2,"c":{"d":true}}')).toEqual({ a: '1', b: '2', c: '{"d":true}' });
  });
});

describe('decodeWireError (pipelined stream results)', () => {
  test('decodes a known code as not applied (the node answered it)', () => {
    const e = decodeWireError({ code: 'WRONG_PARTITION', message: 'm', retryable: true, details: [{ key: 'epoch', value: '3' }] });
    expect(e.code).toBe('WRONG_PARTITION');
    expect(e.details).toEqual({ epoch: '3' });
    expect(writeOutcome(e)).toBe('not-applied');
  });

  test('an unknown code becomes INTERNAL with the original kept', () => {
    const e = decodeWireError({ code: 'NEW_THING', message: 'm', retryable: true, details: [] });
    expect(e.code).toBe('INTERNAL');
    expect(e.details.serverCode).toBe('NEW_THING');
  });
});

describe('outcome marks', () => {
  test('markNotApplied and withUnknownOutcome', () => {
    const e = new KeyVaError('UNAVAILABLE');
    expect(writeOutcome(e)).toBe('unknown');
    expect(writeOutcome(markNotApplied(e))).toBe('not-applied');
    const u = withUnknownOutcome(new KeyVaError('DEADLINE_EXCEEDED', 'late', { a: 'b' }));
    expect(u.code).toBe('DEADLINE_EXCEEDED');
    expect(u.details).toEqual({ a: 'b', outcome: 'unknown' });
    expect(u.message).toBe('late');
    expect(u.retryable).toBe(true);
    expect(withUnknownOutcome(new KeyVaError('UNAVAILABLE'), false).retryable).toBe(false);
  });
});
