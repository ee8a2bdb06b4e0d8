import { describe, expect, it } from 'vitest';
import { parseYcsbArgs } from './ycsb-main-args.ts';
import { DEFAULT_TARGETS, describeTarget } from './ycsb-targets.ts';

describe('ycsb command line: KeyVa targets', () => {
  it('runs KeyVa 1 node and KeyVa 3 nodes RF 3 by default, beside etcd, Redis and the ceilings', () => {
    const { options } = parseYcsbArgs([]);
    expect(options.targets).toEqual(DEFAULT_TARGETS);
    expect(options.targets.slice(0, 3)).toEqual(['keyva', 'keyva-3', 'etcd']);
    expect(describeTarget('keyva', options)).toMatchObject({ label: 'KeyVa 1 node (stream)', nodes: 1 });
    expect(describeTarget('keyva-3', options)).toMatchObject({ label: 'KeyVa 3 nodes RF 3 (stream)', nodes: 3 });
  });

  it('keyva-3 stays 3 nodes RF 3 whatever --keyva-nodes says of the keyva target', () => {
    const { options } = parseYcsbArgs(['--targets', 'keyva,keyva-3', '--keyva-nodes', '5']);
    expect(describeTarget('keyva', options)).toMatchObject({ label: 'KeyVa 5 nodes RF 3 (stream)', nodes: 5 });
    expect(describeTarget('keyva-3', options)).toMatchObject({ label: 'KeyVa 3 nodes RF 3 (stream)', nodes: 3 });
  });

  it('refuses two targets that would be the same cluster, and unknown targets', () => {
    expect(() => parseYcsbArgs(['--targets', 'keyva,keyva-3', '--keyva-nodes', '3'])).toThrow(/same as 'keyva-3'/);
    expect(() => parseYcsbArgs(['--targets', 'keyva,keyva-5'])).toThrow(/unknown target 'keyva-5'/);
    expect(parseYcsbArgs(['--targets', 'keyva-3', '--keyva-nodes', '3']).options.targets).toEqual(['keyva-3']);
  });
});
