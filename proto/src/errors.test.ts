import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { currentSection } from '../../scripts/doc-sections.ts';
import { DOC_PATH, renderTable, SECTION } from '../scripts/error-docs.ts';
import { codeForGrpcStatus, ERROR_CODE_LIST, ErrorCodes, GrpcCode, isErrorCode, KeyVaError } from './errors.ts';

describe('error registry', () => {
  it('docs/errors.md lists exactly the registry (run `node proto/scripts/error-docs.ts --write` after changing it)', () => {
    expect(currentSection(readFileSync(DOC_PATH, 'utf8'), SECTION)).toBe(renderTable());
  });

  it('maps every code to a real gRPC status and an HTTP error status', () => {
    const grpcCodes = new Set<number>(Object.values(GrpcCode));
    for (const code of ERROR_CODE_LIST) {
      const s = ErrorCodes[code];
      expect(grpcCodes.has(s.grpc), code).toBe(true);
      expect(s.grpc, code).not.toBe(GrpcCode.OK);
      expect(s.http >= 400 && s.http <= 599, code).toBe(true);
      expect(s.summary.length, code).toBeGreaterThan(10);
    }
  });

  it('KeyVaError carries code, retryability, statuses and details', () => {
    const e = new KeyVaError('NOT_LEADER', undefined, { leaderHint: 'n-1' });
    expect(e.retryable).toBe(true);
    expect(e.grpcCode).toBe(GrpcCode.UNAVAILABLE);
    expect(e.httpStatus).toBe(421);
    expect(e.toJSON()).toMatchObject({ code: 'NOT_LEADER', details: { leaderHint: 'n-1' } });
    expect(isErrorCode('NOT_LEADER')).toBe(true);
    expect(isErrorCode('toString')).toBe(false);
  });

  it('maps bare gRPC statuses (no KeyVa trailers) to codes', () => {
    expect(codeForGrpcStatus(GrpcCode.RESOURCE_EXHAUSTED)).toBe('MESSAGE_TOO_LARGE');
    expect(codeForGrpcStatus(GrpcCode.UNAVAILABLE)).toBe('UNAVAILABLE');
    expect(codeForGrpcStatus(99)).toBe('INTERNAL');
  });
});
