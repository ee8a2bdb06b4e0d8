/**
 * `keyva partition split <id> [--at <hash>]`: splits a partition at a hash point (the middle of
 * its range by default) through any node's Admin `SplitPartition` (docs/adr/0010-splits.md).
 * Metadata only: no data moves. Repeating it with the same `--at` changes nothing.
 *
 * `keyva partition merge <left> <right>`: merges partition `right` into its left neighbour `left`
 * (same replicas) through any node's Admin `MergePartitions` (docs/adr/0010-splits.md "Merges").
 * No data moves either; repeating it changes nothing.
 */
import * as grpc from '@grpc/grpc-js';
import { decodeGrpcError } from '@keyva/client';
import {
  type AdminClient,
  keyvaV1,
  type MergePartitionsRequest,
  type MergePartitionsResponseOut,
  type SplitPartitionRequest,
  type SplitPartitionResponseOut,
} from '@keyva/proto';
import { KeyVaError } from '@keyva/proto/errors';
import { printJson, style } from '../output.ts';
import type { ConnOptions } from './data.ts';

const HASH_END = 1n << 64n;

/** A split point: decimal or 0x-hex, strictly inside (0, 2^64). */
export function parseHash(text: string): bigint {
  const t = text.trim();
  if (!/^(0x[0-9a-fA-F]{1,16}|\d{1,20})$/.test(t))
    throw new KeyVaError('INVALID_ARGUMENT', `--at ${JSON.stringify(text)} is not a hash (decimal or 0x-hex u64)`, { field: 'at' });
  const v = BigInt(t);
  if (v <= 0n || v >= HASH_END) throw new KeyVaError('INVALID_ARGUMENT', `--at ${text} is outside the hash space (1 .. 2^64-1)`, { field: 'at' });
  return v;
}

export function parsePartitionId(text: string): number {
  if (!/^\d{1,10}$/.test(text) || Number(text) > 0xffff_fffe)
    throw new KeyVaError('INVALID_ARGUMENT', `partition id ${JSON.stringify(text)} is not a partition id`, { field: 'id' });
  return Number(text);
}

const hex = (v: bigint) => `0x${v.toString(16).padStart(16, '0')}`;

export async function cmdPartitionSplit(o: ConnOptions, idText: string, atText: string | undefined): Promise<number> {
  const partitionId = parsePartitionId(idText);
  const at = atText === undefined ? 0n : parseHash(atText);
  const admin = new keyvaV1.Admin(o.endpoint, grpc.credentials.createInsecure()) as unknown as AdminClient;
  try {
    const req: SplitPartitionRequest = { partitionId, atHash: at.toString() };
    const res = await new Promise<SplitPartitionResponseOut>((resolve, reject) => {
      admin.splitPartition(req, { deadline: Date.now() + Math.max(o.deadlineMs, 15_000) }, (e, r) =>
        e || r === undefined ? reject(decodeGrpcError(e)) : resolve(r),
      );
    });
    if (o.json) {
      printJson(res);
      return 0;
    }
    const point = hex(BigInt(res.atHash));
    if (!res.changed)
      process.stdout.write(
        `partition ${res.partitionId} is already split at ${point}; partition ${res.newPartitionId} owns the range from there (map epoch ${res.epoch})\n`,
      );
    else
      process.stdout.write(
        `${style.green('split')} partition ${res.partitionId} at ${point}: partition ${res.newPartitionId} now owns the range from there (map epoch ${res.epoch})\n`,
      );
    if (!res.applied) process.stdout.write(`${style.dim('the answering node has not applied it to its replica yet (or hosts none); it follows shortly')}\n`);
    return 0;
  } finally {
    admin.close();
  }
}

export async function cmdPartitionMerge(o: ConnOptions, leftText: string, rightText: string): Promise<number> {
  const leftId = parsePartitionId(leftText);
  const rightId = parsePartitionId(rightText);
  if (leftId === rightId) throw new KeyVaError('INVALID_ARGUMENT', `cannot merge partition ${leftId} with itself`, { field: 'right' });
  const admin = new keyvaV1.Admin(o.endpoint, grpc.credentials.createInsecure()) as unknown as AdminClient;
  try {
    const req: MergePartitionsRequest = { leftId, rightId };
    const res = await new Promise<MergePartitionsResponseOut>((resolve, reject) => {
      admin.mergePartitions(req, { deadline: Date.now() + Math.max(o.deadlineMs, 20_000) }, (e, r) =>
        e || r === undefined ? reject(decodeGrpcError(e)) : resolve(r),
      );
    });
    if (o.json) {
      printJson(res);
      return 0;
    }
    const end = BigInt(res.end) === 0n ? HASH_END : BigInt(res.end);
    const range = `[${hex(BigInt(res.start))}, ${end === HASH_END ? '2^64' : hex(end)})`;
    if (!res.changed)
      process.stdout.write(`partition ${res.rightId} is already merged into partition ${res.leftId}, which owns ${range} (map epoch ${res.epoch})\n`);
    else
      process.stdout.write(
        `${style.green('merged')} partition ${res.rightId} into partition ${res.leftId}, which now owns ${range} (map epoch ${res.epoch})\n`,
      );
    if (!res.applied) process.stdout.write(`${style.dim('the answering node has not applied it to its replica yet (or hosts none); it follows shortly')}\n`);
    return 0;
  } finally {
    admin.close();
  }
}
