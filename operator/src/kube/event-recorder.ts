/** Kubernetes Events (core/v1) on a KeyVaCluster: one per action the operator takes. Best effort. */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { FIELD_MANAGER } from '../api/constants.ts';
import type { KeyVaCluster } from '../api/keyva-cluster.ts';
import type { KubeClient } from './kube-client.ts';

export interface EventRecorder {
  record(cluster: KeyVaCluster, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void>;
}

export function kubeEventRecorder(client: KubeClient, identity: string, log: Logger, now: () => Date): EventRecorder {
  return {
    async record(cluster, type, reason, message) {
      const ts = now().toISOString();
      const ev = {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name: `${cluster.metadata.name}.${randomBytes(8).toString('hex')}`, namespace: cluster.metadata.namespace },
        involvedObject: {
          apiVersion: cluster.apiVersion,
          kind: cluster.kind,
          name: cluster.metadata.name,
          namespace: cluster.metadata.namespace,
          uid: cluster.metadata.uid,
          resourceVersion: cluster.metadata.resourceVersion,
        },
        type,
        reason,
        message: message.slice(0, 1024),
        action: reason,
        source: { component: FIELD_MANAGER },
        reportingComponent: `keyva.io/${FIELD_MANAGER}`,
        reportingInstance: identity.slice(0, 128),
        firstTimestamp: ts,
        lastTimestamp: ts,
        count: 1,
      };
      try {
        await client.create(ev);
      } catch (e) {
        log.warn({ err: (e as Error).message, reason }, 'could not record event');
      }
    },
  };
}
