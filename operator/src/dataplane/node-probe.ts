/**
 * Asks a KeyVa node about itself over its REST port, dialling the POD IP (never a Service):
 * GET /v1/node (its durable id and how many partition replicas it hosts) and GET /v1/partitions
 * (the partition map it serves). Answers are fresh or absent; a caller treats absent as unknown.
 */

export interface NodeInfo {
  readonly nodeId: string;
  readonly partitions: number;
}

export interface PartitionMapWire {
  readonly epoch: number;
  readonly partitions: readonly { readonly id: number; readonly replicas: readonly string[] }[];
}

export interface NodeProbe {
  nodeInfo(host: string, port: number): Promise<NodeInfo>;
  partitionMap(host: string, port: number): Promise<PartitionMapWire>;
}

const hostPort = (host: string, port: number) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

async function getJson(url: string, timeoutMs: number): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return res.json();
}

export function httpNodeProbe(timeoutMs: number): NodeProbe {
  return {
    async nodeInfo(host, port) {
      const j = (await getJson(`http://${hostPort(host, port)}/v1/node`, timeoutMs)) as { nodeId?: unknown; node_id?: unknown; partitions?: unknown };
      const nodeId = j.nodeId ?? j.node_id;
      if (typeof nodeId !== 'string') throw new Error(`GET /v1/node on ${host}: no nodeId in the answer`);
      return { nodeId, partitions: Number(j.partitions ?? 0) };
    },
    async partitionMap(host, port) {
      const j = (await getJson(`http://${hostPort(host, port)}/v1/partitions`, timeoutMs)) as {
        map?: { epoch?: unknown; partitions?: { id?: unknown; replicas?: unknown }[] };
        epoch?: unknown;
        partitions?: { id?: unknown; replicas?: unknown }[];
      };
      const m = j.map ?? j;
      const partitions = (m.partitions ?? []).map((p) => ({ id: Number(p.id ?? 0), replicas: Array.isArray(p.replicas) ? p.replicas.map(String) : [] }));
      return { epoch: Number(m.epoch ?? 0), partitions };
    },
  };
}
