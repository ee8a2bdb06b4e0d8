/**
 * `keyva partition recover <id|meta> --survivors a,b --i-understand-data-loss`: unsafe recovery
 * of a partition's Raft group (or the meta group) that lost a majority of its replicas for good
 * (Admin `UnsafeRecoverPartition`, docs/adr/0012-unsafe-quorum-recovery.md, runbook "Lost quorum"
 * in docs/operations.md). Send it to a SURVIVING replica (`--endpoint`): it forces the group's
 * membership down to the survivors on that replica, accepting that writes only the lost replicas
 * held are gone. The node refuses while the group has a leader or a live quorum.
 */
import * as grpc from '@grpc/grpc-js';
import { decodeGrpcError } from '@keyva/client';
import { type AdminClient, keyvaV1, type UnsafeRecoverPartitionRequest, type UnsafeRecoverPartitionResponseOut } from '@keyva/proto';
import { KeyVaError } from '@keyva/proto/errors';
import { printJson, style, table } from '../output.ts';
import type { ConnOptions } from './data.ts';
import { parsePartitionId } from './partition.ts';

/** The recovery can wait for probes of dead members and an election. */
const RECOVER_DEADLINE_MS = 30_000;

export interface RecoverOptions {
  readonly survivors: string | undefined;
  readonly iUnderstandDataLoss: boolean;
}

/** `a,b` → ['a', 'b']: node ids, at least one. */
export function parseSurvivors(text: string | undefined): string[] {
  if (text === undefined || text.trim() === '')
    throw new KeyVaError('INVALID_ARGUMENT', '--survivors is required: the node ids of the replicas that are still alive, e.g. --survivors node-1', {
      field: 'survivors',
    });
  const ids = text.split(',').map((s) => s.trim());
  for (const id of ids)
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(id))
      throw new KeyVaError('INVALID_ARGUMENT', `--survivors: ${JSON.stringify(id)} is not a node id`, { field: 'survivors' });
  return [...new Set(ids)];
}

export async function cmdPartitionRecover(o: ConnOptions, idText: string, r: RecoverOptions): Promise<number> {
  const meta = idText === 'meta';
  const partitionId = meta ? 0 : parsePartitionId(idText);
  const survivingReplicas = parseSurvivors(r.survivors);
  const what = meta ? 'the meta group' : `partition ${partitionId}`;
  if (!r.iUnderstandDataLoss)
    throw new KeyVaError(
      'CONDITION_FAILED',
      `unsafe recovery of ${what} forces its membership down to ${survivingReplicas.join(',')}: writes that only the lost replicas held are LOST. ` +
        'Confirm the other replicas are gone for good (docs/operations.md, "Lost quorum"), then re-run with --i-understand-data-loss. Nothing was changed.',
      { reason: 'confirmationRequired' },
    );
  const admin = new keyvaV1.Admin(o.endpoint, grpc.credentials.createInsecure()) as unknown as AdminClient;
  try {
    const req: UnsafeRecoverPartitionRequest = { partitionId, metaGroup: meta, survivingReplicas, confirmDataLoss: true };
    const res = await new Promise<UnsafeRecoverPartitionResponseOut>((resolve, reject) => {
      admin.unsafeRecoverPartition(req, { deadline: Date.now() + Math.max(o.deadlineMs, RECOVER_DEADLINE_MS) }, (e, out) =>
        e || out === undefined ? reject(decodeGrpcError(e)) : resolve(out),
      );
    });
    if (o.json) {
      printJson(res);
      return 0;
    }
    if (!res.changed) {
      process.stdout.write(`${what} already has voters ${res.voters.join(',')} and leader ${res.leader || '(none yet)'}: nothing to do\n`);
      return 0;
    }
    process.stdout.write(`${style.yellow('recovered')} ${what}: voters ${res.voters.join(',')}, leader ${res.leader || style.red('(none yet)')}\n`);
    process.stdout.write(
      `${table(
        ['removed', 'last index', 'last term', 'commit index', 'applied index', 'uncommitted kept', 'new term', 'recovery index'],
        [[res.removed.join(',') || '-', res.lastIndex, res.lastTerm, res.commitIndex, res.appliedIndex, res.uncommittedKept, res.newTerm, res.recoveryIndex]],
      )}\n`,
    );
    process.stdout.write(`${style.red('data loss')}: ${res.dataLossWarning}\n`);
    return 0;
  } finally {
    admin.close();
  }
}
