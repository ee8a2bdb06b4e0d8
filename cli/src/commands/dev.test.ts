import { describe, expect, it } from 'vitest';
import { devPeers, devPorts } from './dev.ts';

describe('keyva dev --nodes', () => {
  it('steps ports by 10 per node and names the nodes node-1..node-N in --peers', () => {
    const base = { grpcPort: 7379, httpPort: 7380 };
    expect([0, 1, 2].map((i) => devPorts(base, i))).toEqual([
      { grpcPort: 7379, httpPort: 7380 },
      { grpcPort: 7389, httpPort: 7390 },
      { grpcPort: 7399, httpPort: 7400 },
    ]);
    expect(devPeers(base, 3)).toBe('node-1=127.0.0.1:7379,node-2=127.0.0.1:7389,node-3=127.0.0.1:7399');
  });
});
