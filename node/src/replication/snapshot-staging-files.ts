/**
 * Snapshot staging in files (`SnapshotStaging`, ADR 0008 "Snapshots staged in files"): one file
 * per snapshot in the node's staging directory, `g<group>-<index>-<term>.part` while chunks
 * arrive, renamed to `.snap` once complete. What the node on RocksDB uses: a chunk is appended
 * to a file instead of going through the engine's writer thread, the LSM (WAL, memtable, a
 * flush, then tombstones and compactions once installed) and a read-back; like the ceiling the
 * rebalancing benchmark measures, a transfer is sequential writes and one fsync.
 *
 * File format: frames `len u32 | crc32 u32 | bytes`, one per chunk in order, then a trailer
 * frame `0xFFFFFFFF | crc32 u32 | chunks u32 | rows u64 | bytes u64` (the crc over the 20
 * bytes after it). `complete` appends the trailer, fsyncs the file, renames it to `.snap` and
 * fsyncs the directory: a `.snap` file exists only once all of it is durable. Every chunk's
 * checksum is verified when it is read back; a mismatch is a `STORAGE_ERROR`.
 */
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { KeyVaError } from '@keyva/proto/errors';
import { type SnapshotStaging, type StagedSnapshotId, type StagedTotals, type StagingSelection, selects } from './snapshot-staging.ts';

type FileHandle = Awaited<ReturnType<typeof open>>;

const TRAILER_MARK = 0xffff_ffff;
const FRAME_HEAD = 8;
const TRAILER_BODY = 20;
const NAME = /^g(\d+)-(\d+)-(\d+)\.(part|snap)$/;

interface Writing {
  readonly fh: Promise<FileHandle>;
  /** The next chunk's sequence number. */
  next: number;
  /** Settles when every write submitted so far is done (writes to one file are serialized). */
  tail: Promise<void>;
}

function storageError(what: string): KeyVaError {
  return new KeyVaError('STORAGE_ERROR', `snapshot staging: ${what}`);
}

export class FileSnapshotStaging implements SnapshotStaging {
  private readonly dir: string;
  private readonly writing = new Map<string, Writing>();
  private made: Promise<unknown> | undefined;

  /** `dir` is created when first needed. */
  constructor(dir: string) {
    this.dir = dir;
  }

  private name(group: number, id: StagedSnapshotId, ext: 'part' | 'snap'): string {
    return join(this.dir, `g${group}-${id.index}-${id.term}.${ext}`);
  }

  private ensureDir(): Promise<unknown> {
    this.made ??= mkdir(this.dir, { recursive: true });
    return this.made;
  }

  stage(group: number, id: StagedSnapshotId, seq: number, rows: Buffer): Promise<void> {
    const path = this.name(group, id, 'part');
    if (seq === 0) {
      // A new transfer of this snapshot: whatever an earlier one left is replaced.
      const earlier = this.writing.get(path);
      const fh = (async () => {
        if (earlier !== undefined) await closeWriting(earlier);
        await this.ensureDir();
        return open(path, 'w');
      })();
      this.writing.set(path, { fh, next: 0, tail: fh.then(() => undefined) });
    }
    const w = this.writing.get(path);
    if (w === undefined) return Promise.reject(storageError(`chunk ${seq} of snapshot ${id.index}/${id.term} of group ${group} arrived before chunk 0`));
    if (seq !== w.next) return Promise.reject(storageError(`chunk ${seq} of snapshot ${id.index}/${id.term} of group ${group}, expected ${w.next}`));
    w.next++;
    const head = Buffer.alloc(FRAME_HEAD);
    head.writeUInt32BE(rows.length, 0);
    head.writeUInt32BE(crc32(rows), 4);
    w.tail = w.tail.then(async () => writeAll(await w.fh, [head, rows]));
    return w.tail;
  }

  async complete(group: number, id: StagedSnapshotId, t: StagedTotals): Promise<void> {
    const path = this.name(group, id, 'part');
    // An empty range has no chunks: its file is the trailer alone.
    if (t.chunks === 0 && !this.writing.has(path)) {
      await this.ensureDir();
      const fh = open(path, 'w');
      this.writing.set(path, { fh, next: 0, tail: fh.then(() => undefined) });
    }
    const w = this.writing.get(path);
    if (w === undefined || w.next !== t.chunks)
      throw storageError(`snapshot ${id.index}/${id.term} of group ${group}: ${w?.next ?? 0} chunks staged, ${t.chunks} to complete`);
    this.writing.delete(path);
    const fh = await w.fh;
    try {
      await w.tail;
      const body = Buffer.alloc(TRAILER_BODY);
      body.writeUInt32BE(t.chunks, 0);
      body.writeBigUInt64BE(BigInt(t.rows), 4);
      body.writeBigUInt64BE(BigInt(t.bytes), 12);
      const head = Buffer.alloc(FRAME_HEAD);
      head.writeUInt32BE(TRAILER_MARK, 0);
      head.writeUInt32BE(crc32(body), 4);
      await writeAll(fh, [head, body]);
      await fh.sync();
    } finally {
      await fh.close().catch(() => undefined);
    }
    await rename(path, this.name(group, id, 'snap'));
    await this.syncDir();
  }

  private async syncDir(): Promise<void> {
    const d = await open(this.dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }

  async totals(group: number, id: StagedSnapshotId): Promise<StagedTotals | undefined> {
    let fh: FileHandle;
    try {
      fh = await open(this.name(group, id, 'snap'), 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    try {
      const { size } = await fh.stat();
      if (size < FRAME_HEAD + TRAILER_BODY) throw storageError(`${this.name(group, id, 'snap')} is too short (${size} bytes)`);
      const b = Buffer.alloc(FRAME_HEAD + TRAILER_BODY);
      await readExactly(fh, b, size - b.length);
      const body = b.subarray(FRAME_HEAD);
      if (b.readUInt32BE(0) !== TRAILER_MARK || b.readUInt32BE(4) !== crc32(body)) throw storageError(`${this.name(group, id, 'snap')} has no valid trailer`);
      return { chunks: body.readUInt32BE(0), rows: Number(body.readBigUInt64BE(4)), bytes: Number(body.readBigUInt64BE(12)) };
    } finally {
      await fh.close();
    }
  }

  async *chunks(group: number, id: StagedSnapshotId, chunks: number): AsyncGenerator<Buffer> {
    const path = this.name(group, id, 'snap');
    const fh = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
      throw e.code === 'ENOENT' ? storageError(`snapshot ${id.index}/${id.term} of group ${group} is not staged`) : e;
    });
    try {
      let at = 0;
      const head = Buffer.alloc(FRAME_HEAD);
      for (let seq = 0; seq < chunks; seq++) {
        await readExactly(fh, head, at, path);
        const len = head.readUInt32BE(0);
        if (len === TRAILER_MARK) throw storageError(`${path} ends after ${seq} of ${chunks} chunks`);
        const rows = Buffer.allocUnsafe(len);
        await readExactly(fh, rows, at + FRAME_HEAD, path);
        if (crc32(rows) !== head.readUInt32BE(4)) throw storageError(`${path}: chunk ${seq} fails its checksum`);
        at += FRAME_HEAD + len;
        yield rows;
      }
    } finally {
      await fh.close();
    }
  }

  async clear(group: number, sel: StagingSelection = {}): Promise<number> {
    let deleted = 0;
    for (const f of await this.files()) {
      if (f.group !== group || !selects(sel, f.id)) continue;
      const path = join(this.dir, f.file);
      const w = this.writing.get(path);
      if (w !== undefined) {
        this.writing.delete(path);
        await closeWriting(w);
      }
      await rm(path, { force: true });
      deleted++;
    }
    return deleted;
  }

  async ids(group: number): Promise<StagedSnapshotId[]> {
    const seen = new Map<string, StagedSnapshotId>();
    for (const f of await this.files()) if (f.group === group) seen.set(`${f.id.index}/${f.id.term}`, f.id);
    return [...seen.values()].sort((a, b) => a.index - b.index || a.term - b.term);
  }

  async close(): Promise<void> {
    const open = [...this.writing.values()];
    this.writing.clear();
    for (const w of open) await closeWriting(w);
  }

  /** Deletes the staging of every group not in `hosted` (left by groups dropped or retired); returns the files deleted. */
  async sweep(hosted: ReadonlySet<number>): Promise<number> {
    const groups = new Set((await this.files()).map((f) => f.group).filter((g) => !hosted.has(g)));
    let deleted = 0;
    for (const g of groups) deleted += await this.clear(g);
    return deleted;
  }

  private async files(): Promise<{ file: string; group: number; id: StagedSnapshotId }[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const out: { file: string; group: number; id: StagedSnapshotId }[] = [];
    for (const file of names) {
      const m = NAME.exec(file);
      if (m !== null) out.push({ file, group: Number(m[1]), id: { index: Number(m[2]), term: Number(m[3]) } });
    }
    return out;
  }
}

/** Closes a file being written once its queued writes are done (their failures are the stagers'). */
async function closeWriting(w: Writing): Promise<void> {
  await w.tail.catch(() => undefined);
  const fh = await w.fh.catch(() => undefined);
  await fh?.close().catch(() => undefined);
}

async function writeAll(fh: FileHandle, bufs: Buffer[]): Promise<void> {
  let pending = bufs.filter((b) => b.length > 0);
  while (pending.length > 0) {
    let { bytesWritten } = await fh.writev(pending);
    const rest: Buffer[] = [];
    for (const b of pending) {
      if (bytesWritten >= b.length) bytesWritten -= b.length;
      else {
        rest.push(b.subarray(bytesWritten));
        bytesWritten = 0;
      }
    }
    pending = rest;
  }
}

async function readExactly(fh: FileHandle, into: Buffer, position: number, path = 'staged snapshot'): Promise<void> {
  let got = 0;
  while (got < into.length) {
    const { bytesRead } = await fh.read(into, got, into.length - got, position + got);
    if (bytesRead === 0) throw storageError(`${path} is truncated at byte ${position + got}`);
    got += bytesRead;
  }
}
