import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkSource, checkTree } from './check-pure-cores.ts';

describe('pure core import check', () => {
  it('flags I/O imports, clocks and randomness', () => {
    expect(checkSource("import { readFileSync } from 'node:fs';")).toEqual(["imports 'node:fs'"]);
    expect(checkSource("import * as grpc from '@grpc/grpc-js';")).toEqual(["imports '@grpc/grpc-js'"]);
    expect(checkSource('const t = Date.now();')).toHaveLength(1);
    expect(checkSource('const r = Math.random();')).toHaveLength(1);
    expect(checkSource('const c = process.env.X;')).toHaveLength(1);
  });
  it('accepts pure code and ignores comments', () => {
    expect(checkSource("import { x } from './x.ts';\n// Date.now() is injected\nexport const y = x;")).toEqual([]);
  });
  it('finds the repository clean', () => {
    expect(checkTree(resolve(import.meta.dirname, '..'))).toEqual([]);
  });
});
