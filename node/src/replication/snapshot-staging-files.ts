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
 *
 * A snapshot that arrives as SST files (`sst`, ADR 0013) is staged as `g<group>-<index>-<term>.<d|r>.sst`,
 * appended as pieces arrive (sizes and CRC-32s tracked); `completeSst` checks them against the
 * sender's list, fsyncs each, then writes the `.snap` file as for rows, holding only an SST
 * trailer `0xFFFFFFFE | crc32 u32 | rows u64 | bytes u64 | files u8 | (kind u8 | bytes u64 | crc32 u32)*`.
 * The files stay until `clear`; the install hard-links them into the engine. Files this node
 * exports to send live in `export/` beside them until sent; `sweep` deletes leftovers.
 */
import { randomBytes } from 'node:crypto';
import { writevSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { KeyVaError } from '@keyva/proto/errors';
import type { SstKind } from '../engine/types.ts';
import {
  type SnapshotStaging,
  SST_KIND_CODE,
  type SstStaging,
  type StagedSnapshotId,
  type StagedSstFile,
  type StagedTotals,
  type StagingSelection,
  selects,
  sstKindOfCode,
} from './snapshot-staging.ts';

type FileHandle = Awaited<ReturnType<typeof open>>;

const TRAILER_MARK = 0xffff_ffff;
const SST_MARK = 0xffff_fffe;
const FRAME_HEAD = 8;
const TRAILER_BODY = 20;
const SST_FILE_ENTRY = 1 + 8 + 4;
const NAME = /^g(\d+)-(\d+)-(\d+)\.(part|snap|[dr]\.sst)$/;
const EXPORT_DIR = 'export';

const SST_LETTER: Record<SstKind, string> = { data: 'd', raw: 'r' };

interface Writing {
  readonly fh: Promise<FileHandle>;
  /** The next chunk's sequence number. */
  next: number;
  /** Settles when every write submitted so far is done (writes to one file are serialized). */
  tail: Promise<void>;
  /** SST files: bytes appended and their CRC-32 so far. */
  size: number;
  crc: number;
  /** SST files: `size` when the last write-back was started. */
  flushedAt: number;
}

/**
 * An SST file's write-back starts (an `fdatasync` not waited for) every this many bytes staged,
 * as RocksDB's `bytes_per_sync` does: the disk writes while the rest arrives, and the fsync at
 * the end of the transfer has less left to write.
 */
export const STAGING_WRITE_BACK_BYTES = 4 << 20;

function storageError(what: string): KeyVaError {
  return new KeyVaError('STORAGE_ERROR', `snapshot staging: ${what}`);
}

export class FileSnapshotStaging implements SnapshotStaging {
  private readonly dir: string;
  private readonly writing = new Map<string, Writing>();
  private made: Promise<unknown> | undefined;
  readonly sst: SstStaging;

  /** `dir` is created when first needed. */
  constructor(dir: string) {
    this.dir = dir;
    this.sst = {
      dir,
      stageSst: (group, id, kind, bytes, first) => this.stageSst(group, id, kind, bytes, first),
      completeSst: (group, id, files, t) => this.completeSst(group, id, files, t),
      sstPath: (group, id, kind) => join(this.dir, `g${group}-${id.index}-${id.term}.${SST_LETTER[kind]}.sst`),
      exportBase: async (group, id) => {
        const dir = join(this.dir, EXPORT_DIR);
        await mkdir(dir, { recursive: true });
        return join(dir, `g${group}-${id.index}-${id.term}-${randomBytes(4).toString('hex')}`);
      },
    };
  }

  private name(group: number, id: StagedSnapshotId, ext: 'part' | 'snap'): string {
    return join(this.dir, `g${group}-${id.index}-${id.term}.${ext}`);
  }

  private ensureDir(): Promise<unknown> {
    this.made ??= mkdir(this.dir, { recursive: true });
    return this.made;
  }

  /** Opens `path` anew (truncated) for appends, once what was being written to it is closed. */
  private startFile(path: string): void {
    const earlier = this.writing.get(path);
    const fh = (async () => {
      if (earlier !== undefined) await closeWriting(earlier);
      await this.ensureDir();
      return open(path, 'w');
    })();
    this.writing.set(path, { fh, next: 0, tail: fh.then(() => undefined), size: 0, crc: 0, flushedAt: 0 });
  }

  stage(group: number, id: StagedSnapshotId, seq: number, rows: Buffer): Promise<void> {
    const path = this.name(group, id, 'part');
    // A new transfer of this snapshot: whatever an earlier one left is replaced.
    if (seq === 0) this.startFile(path);
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
    if (t.chunks === 0 && !this.writing.has(path)) this.startFile(path);
    const w = this.writing.get(path);
    if (w === undefined || w.next !== t.chunks)
      throw storageError(`snapshot ${id.index}/${id.term} of group ${group}: ${w?.next ?? 0} chunks staged, ${t.chunks} to complete`);
    this.writing.delete(path);
    const fh = await w.fh;
    try {
      await w.tail;
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw e;
    }
    const body = Buffer.alloc(TRAILER_BODY);
    body.writeUInt32BE(t.chunks, 0);
    body.writeBigUInt64BE(BigInt(t.rows), 4);
    body.writeBigUInt64BE(BigInt(t.bytes), 12);
    await this.seal(group, id, fh, TRAILER_MARK, body);
  }

  /**
   * Appends the trailer frame `mark | crc32(body) | body` to the open `.part` file `fh`, fsyncs
   * and closes it, renames it to `.snap` and fsyncs the directory: the snapshot is complete.
   */
  private async seal(group: number, id: StagedSnapshotId, fh: FileHandle, mark: number, body: Buffer): Promise<void> {
    try {
      const head = Buffer.alloc(FRAME_HEAD);
      head.writeUInt32BE(mark, 0);
      head.writeUInt32BE(crc32(body), 4);
      await writeAll(fh, [head, body]);
      await fh.sync();
    } finally {
      await fh.close().catch(() => undefined);
    }
    await rename(this.name(group, id, 'part'), this.name(group, id, 'snap'));
    await this.syncDir();
  }

  private stageSst(group: number, id: StagedSnapshotId, kind: SstKind, bytes: Buffer, first: boolean): Promise<void> {
    const path = this.sst.sstPath(group, id, kind);
    if (first) this.startFile(path);
    const w = this.writing.get(path);
    if (w === undefined) return Promise.reject(storageError(`${kind} file of snapshot ${id.index}/${id.term} of group ${group} continued before it began`));
    w.size += bytes.length;
    w.crc = crc32(bytes, w.crc);
    const writeBack = w.size - w.flushedAt >= STAGING_WRITE_BACK_BYTES;
    if (writeBack) w.flushedAt = w.size;
    w.tail = w.tail.then(async () => {
      const fh = await w.fh;
      await writeAll(fh, [bytes]);
      if (writeBack) fh.datasync().catch(() => undefined); // the fsync at completion is what counts
    });
    return w.tail;
  }

  private async completeSst(
    group: number,
    id: StagedSnapshotId,
    files: readonly StagedSstFile[],
    t: { readonly rows: number; readonly bytes: number },
  ): Promise<void> {
    const what = `snapshot ${id.index}/${id.term} of group ${group}`;
    const kinds = new Set(files.map((f) => f.kind));
    if (kinds.size !== files.length) throw storageError(`${what}: a file listed twice`);
    for (const kind of Object.keys(SST_LETTER) as SstKind[]) {
      const path = this.sst.sstPath(group, id, kind);
      if (!kinds.has(kind) && this.writing.has(path)) throw storageError(`${what}: a ${kind} file was staged but not listed`);
    }
    const done: Writing[] = [];
    try {
      for (const f of files) {
        const path = this.sst.sstPath(group, id, f.kind);
        const w = this.writing.get(path);
        if (w === undefined) throw storageError(`${what}: its ${f.kind} file was not staged`);
        this.writing.delete(path);
        done.push(w);
        if (w.size !== f.bytes || w.crc !== f.crc32)
          throw storageError(`${what}: ${f.kind} file staged ${w.size} bytes (crc ${w.crc}), listed ${f.bytes} (crc ${f.crc32})`);
      }
      // The files' fsyncs at once: each waits for a pool thread and the disk.
      await Promise.all(
        done.map(async (w) => {
          await w.tail;
          await (await w.fh).sync();
        }),
      );
    } finally {
      for (const w of done) await closeWriting(w);
    }
    const body = Buffer.alloc(8 + 8 + 1 + files.length * SST_FILE_ENTRY);
    body.writeBigUInt64BE(BigInt(t.rows), 0);
    body.writeBigUInt64BE(BigInt(t.bytes), 8);
    body.writeUInt8(files.length, 16);
    files.forEach((f, i) => {
      const o = 17 + i * SST_FILE_ENTRY;
      body.writeUInt8(SST_KIND_CODE[f.kind], o);
      body.writeBigUInt64BE(BigInt(f.bytes), o + 1);
      body.writeUInt32BE(f.crc32, o + 9);
    });
    await this.ensureDir();
    await this.seal(group, id, await open(this.name(group, id, 'part'), 'w'), SST_MARK, body);
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
      const mark = Buffer.alloc(4);
      if (size >= 4) await readExactly(fh, mark, 0);
      if (size >= 4 && mark.readUInt32BE(0) === SST_MARK) return await this.sstTotals(fh, size, this.name(group, id, 'snap'));
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

  private async sstTotals(fh: FileHandle, size: number, path: string): Promise<StagedTotals> {
    const b = Buffer.alloc(size);
    await readExactly(fh, b, 0, path);
    const body = b.subarray(FRAME_HEAD);
    const n = body.length >= 17 ? body.readUInt8(16) : -1;
    if (n < 0 || body.length !== 17 + n * SST_FILE_ENTRY || b.readUInt32BE(4) !== crc32(body)) throw storageError(`${path} has no valid SST trailer`);
    const sst: StagedSstFile[] = [];
    for (let i = 0; i < n; i++) {
      const o = 17 + i * SST_FILE_ENTRY;
      const kind = sstKindOfCode(body.readUInt8(o));
      if (kind === undefined) throw storageError(`${path}: unknown SST file kind ${body.readUInt8(o)}`);
      sst.push({ kind, bytes: Number(body.readBigUInt64BE(o + 1)), crc32: body.readUInt32BE(o + 9) });
    }
    return { chunks: 0, rows: Number(body.readBigUInt64BE(0)), bytes: Number(body.readBigUInt64BE(8)), sst };
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

  /**
   * Deletes the staging of every group not in `hosted` (left by groups dropped or retired) and
   * every exported file (left by transfers a stop cut off); returns the staged files deleted.
   */
  async sweep(hosted: ReadonlySet<number>): Promise<number> {
    await rm(join(this.dir, EXPORT_DIR), { recursive: true, force: true });
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

/**
 * Writes `bufs` at the end of `fh`, synchronously: into the page cache, well under a millisecond
 * per MiB, where an async write waited 10-160 ms per MiB on a loaded node for a libuv pool thread
 * (shared with the RocksDB binding's reads and writes; ADR 0014 "Measured"). The fsync at the end
 * of a transfer stays asynchronous.
 */
async function writeAll(fh: FileHandle, bufs: Buffer[]): Promise<void> {
  let pending = bufs.filter((b) => b.length > 0);
  while (pending.length > 0) {
    let bytesWritten = writevSync(fh.fd, pending);
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
