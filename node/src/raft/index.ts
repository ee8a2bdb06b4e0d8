/**
 * The pure Raft core (DESIGN §5): one replica of one group as a deterministic state machine.
 * The driver (node/src/replication) does all disk and network I/O around `RaftNode`.
 */
export { applyConfChange, ConfChangeRejection, confState, isLearner, isMember, isVoter, validateConfChange } from './conf-change.ts';
export { MemoryRaftStorage, type MemoryRaftStorageInit } from './memory-storage.ts';
export { type Message, MessageType, message } from './messages.ts';
export { ProgressState } from './progress.ts';
export { type ProgressView, type RaftConfig, RaftConfigError, type RaftStatus } from './raft.ts';
export { RaftLogError } from './raft-log.ts';
export { RaftNode, type RaftNodeConfig, RaftNodeError, type Ready } from './raw-node.ts';
export { type ProposeResult, Refusal, type Refused, type RequestResult } from './results.ts';
export { type RaftStorage, RaftStorageRangeError } from './storage.ts';
export * from './types.ts';
