/**
 * gRPC channel options for every KeyVa channel: the SDK's, the CLI's and the operator's channels
 * to nodes, and the nodes' channels to each other (Raft streams and snapshots, forwarded
 * requests, peer Admin calls).
 *
 * grpc-js backs off between connection attempts to an address that refused, from 1 s growing to
 * 120 s, and while it waits, a call that is not wait-for-ready fails at once with "No connection
 * established". A node that was down for a minute must be reachable again within a second of its
 * restart, not after the next two-minute attempt: attempts are capped at one a second (a
 * connection attempt to a handful of nodes costs nothing).
 */
export const RECONNECT_OPTIONS = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1000,
} as const;
