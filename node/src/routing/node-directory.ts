/**
 * Where a node's KV gRPC server can be reached, by node id: what forwarding dials. Static today
 * (the `--peers` list); the meta group's node registry will implement the same interface.
 */
export interface NodeDirectory {
  /** `host:port` of the node's gRPC server, or undefined when the node is not known. */
  grpcAddressOf(nodeId: string): string | undefined;
}

/** A directory fixed at start (`--peers id=host:port,...`). */
export class StaticNodeDirectory implements NodeDirectory {
  private readonly addresses: ReadonlyMap<string, string>;

  constructor(nodes: Iterable<{ readonly id: string; readonly grpcAddress: string }>) {
    this.addresses = new Map([...nodes].map((n) => [n.id, n.grpcAddress]));
  }

  grpcAddressOf(nodeId: string): string | undefined {
    return this.addresses.get(nodeId);
  }
}
