import { describe, expect, it } from 'vitest';
import { ConfigError, loadNodeConfig } from './config.ts';

describe('node configuration', () => {
  it('has sensible defaults', () => {
    const c = loadNodeConfig();
    expect(c.grpcPort).toBe(7379);
    expect(c.httpPort).toBe(7380);
    expect(c.engine).toBe('rocksdb');
    expect(c.partitions).toBe(64);
    expect(c.keyBytesMax).toBe(4096);
    expect(c.valueBytesMax).toBe(1024 * 1024);
  });

  it('takes flags over env over defaults', () => {
    const c = loadNodeConfig({ argv: ['--grpc-port', '9000', '--engine=memory'], env: { KEYVA_GRPC_PORT: '8000', KEYVA_HTTP_PORT: '8001' } });
    expect(c.grpcPort).toBe(9000);
    expect(c.httpPort).toBe(8001);
    expect(c.engine).toBe('memory');
  });

  it('names the setting, its flag and env var in errors', () => {
    try {
      loadNodeConfig({ argv: ['--grpc-port', '70000', '--engine', 'leveldb'] });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      const msg = (e as Error).message;
      expect(msg).toContain('grpcPort (flag --grpc-port, env KEYVA_GRPC_PORT)');
      expect(msg).toContain('engine (flag --engine, env KEYVA_ENGINE)');
    }
  });

  it('read mode, leader balancing and election ticks (replicated mode)', () => {
    const d = loadNodeConfig();
    expect(d.readMode).toBe('lease');
    expect(d.leaderBalanceIntervalMs).toBe(1000);
    expect(d.leaderBalanceTransfersMax).toBe(8);
    expect(d.raftElectionTicks).toBe(10);
    const c = loadNodeConfig({ argv: ['--read-mode=readindex', '--leader-balance-interval-ms', '0', '--raft-election-ticks', '20'] });
    expect([c.readMode, c.leaderBalanceIntervalMs, c.raftElectionTicks]).toEqual(['readindex', 0, 20]);
    expect(() => loadNodeConfig({ argv: ['--read-mode', 'fast'] })).toThrow(/readMode \(flag --read-mode, env KEYVA_READ_MODE\)/);
    // an election timeout must exceed the 2-tick heartbeat
    expect(() => loadNodeConfig({ env: { KEYVA_RAFT_ELECTION_TICKS: '2' } })).toThrow(/raftElectionTicks/);
    expect(() => loadNodeConfig({ argv: ['--leader-balance-transfers-max', '0'] })).toThrow(/leaderBalanceTransfersMax/);
  });

  it('snapshot send rate: default 64 MiB/s, set by flag, env or file, at least 1 MiB/s', () => {
    expect(loadNodeConfig().snapshotBytesPerSec).toBe(64 * 1024 * 1024);
    expect(loadNodeConfig({ argv: ['--snapshot-bytes-per-sec', '268435456'] }).snapshotBytesPerSec).toBe(256 * 1024 * 1024);
    expect(loadNodeConfig({ env: { KEYVA_SNAPSHOT_BYTES_PER_SEC: '2097152' } }).snapshotBytesPerSec).toBe(2 * 1024 * 1024);
    expect(() => loadNodeConfig({ argv: ['--snapshot-bytes-per-sec', '1000'] })).toThrow(
      /snapshotBytesPerSec \(flag --snapshot-bytes-per-sec, env KEYVA_SNAPSHOT_BYTES_PER_SEC\)/,
    );
  });

  it('block compression: tiered by default, zstd or none, with a clear error otherwise', () => {
    expect(loadNodeConfig().compression).toBe('tiered');
    expect(loadNodeConfig({ argv: ['--compression', 'zstd'] }).compression).toBe('zstd');
    expect(loadNodeConfig({ env: { KEYVA_COMPRESSION: 'none' } }).compression).toBe('none');
    expect(() => loadNodeConfig({ argv: ['--compression', 'lz4'] })).toThrow(/compression \(flag --compression, env KEYVA_COMPRESSION\)/);
  });

  it('WAL compression: off by default, a boolean, with a clear error otherwise', () => {
    expect(loadNodeConfig().walCompression).toBe(false);
    expect(loadNodeConfig({ argv: ['--wal-compression'] }).walCompression).toBe(true);
    expect(loadNodeConfig({ env: { KEYVA_WAL_COMPRESSION: 'true' } }).walCompression).toBe(true);
    expect(loadNodeConfig({ env: { KEYVA_WAL_COMPRESSION: '0' } }).walCompression).toBe(false);
    expect(() => loadNodeConfig({ argv: ['--wal-compression', 'zstd'] })).toThrow(/walCompression \(flag --wal-compression, env KEYVA_WAL_COMPRESSION\)/);
  });

  it('GC chunk: default 256 rows, 16 to 65,536, with a clear error', () => {
    expect(loadNodeConfig().gcChunkRows).toBe(256);
    expect(loadNodeConfig({ env: { KEYVA_GC_CHUNK_ROWS: '4096' } }).gcChunkRows).toBe(4096);
    for (const bad of ['0', '15', '65537', '100.5', 'many'])
      expect(() => loadNodeConfig({ argv: ['--gc-chunk-rows', bad] })).toThrow(/gcChunkRows \(flag --gc-chunk-rows, env KEYVA_GC_CHUNK_ROWS\)/);
  });

  it('rejects unknown flags and says which exist', () => {
    expect(() => loadNodeConfig({ argv: ['--grpc-prot', '1'] })).toThrow(/unknown flag --grpc-prot .*--grpc-port/);
  });

  it('checks cross-field rules', () => {
    expect(() => loadNodeConfig({ overrides: { valueBytesMax: 8 * 1024 * 1024, messageBytesMax: 4 * 1024 * 1024 } })).toThrow(/messageBytesMax must be larger/);
  });

  it('reports a missing config file clearly', () => {
    expect(() => loadNodeConfig({ argv: ['--config', '/nonexistent/keyva.json'] })).toThrow(/cannot read config file \/nonexistent\/keyva.json/);
  });
});

describe('docs/configuration.md', () => {
  it('lists every setting with its flag, variable and default (run `node node/scripts/config-docs.ts --write` after changing the schema)', async () => {
    const { readFileSync } = await import('node:fs');
    const { currentSection } = await import('../../../scripts/doc-sections.ts');
    const { DOC_PATH, renderConfigTable, SECTION } = await import('../../scripts/config-docs.ts');
    expect(currentSection(readFileSync(DOC_PATH, 'utf8'), SECTION)).toBe(renderConfigTable());
  });
});

describe('config file', () => {
  it('reads a JSON file below env and flags', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const f = join(mkdtempSync(join(tmpdir(), 'keyva-cfg-')), 'node.json');
    writeFileSync(f, JSON.stringify({ grpcPort: 1111, httpPort: 2222, partitions: 16 }));
    const c = loadNodeConfig({ argv: ['--config', f, '--http-port', '3333'], env: { KEYVA_PARTITIONS: '8' } });
    expect([c.grpcPort, c.httpPort, c.partitions]).toEqual([1111, 3333, 8]);
    writeFileSync(f, '{ not json');
    expect(() => loadNodeConfig({ env: { KEYVA_CONFIG: f } })).toThrow(/is not valid JSON/);
    writeFileSync(f, JSON.stringify({ grpcPrt: 1 }));
    expect(() => loadNodeConfig({ argv: ['--config', f] })).toThrow(/grpcPrt|Unrecognized key/);
  });
});
