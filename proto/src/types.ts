/** Friendly names for the generated message types. `*Out` = as received (defaults filled). */

export type { AddLearnerRequest, AddLearnerRequest__Output as AddLearnerRequestOut } from '../gen/keyva/v1/AddLearnerRequest.ts';
export type { AdminClient } from '../gen/keyva/v1/Admin.ts';
export type { BatchGetRequest, BatchGetRequest__Output as BatchGetRequestOut } from '../gen/keyva/v1/BatchGetRequest.ts';
export type { BatchGetResponse, BatchGetResponse__Output as BatchGetResponseOut } from '../gen/keyva/v1/BatchGetResponse.ts';
export type { BatchWriteRequest, BatchWriteRequest__Output as BatchWriteRequestOut } from '../gen/keyva/v1/BatchWriteRequest.ts';
export type { BatchWriteResponse, BatchWriteResponse__Output as BatchWriteResponseOut } from '../gen/keyva/v1/BatchWriteResponse.ts';
export type { Condition, Condition__Output as ConditionOut } from '../gen/keyva/v1/Condition.ts';
export type { DeleteRequest, DeleteRequest__Output as DeleteRequestOut } from '../gen/keyva/v1/DeleteRequest.ts';
export type { DeleteResponse, DeleteResponse__Output as DeleteResponseOut } from '../gen/keyva/v1/DeleteResponse.ts';
export type { DropReplicaRequest, DropReplicaRequest__Output as DropReplicaRequestOut } from '../gen/keyva/v1/DropReplicaRequest.ts';
export type { DropReplicaResponse, DropReplicaResponse__Output as DropReplicaResponseOut } from '../gen/keyva/v1/DropReplicaResponse.ts';
export type { Error as WireError, Error__Output as WireErrorOut } from '../gen/keyva/v1/Error.ts';
export type { GetPartitionMapResponse, GetPartitionMapResponse__Output as GetPartitionMapResponseOut } from '../gen/keyva/v1/GetPartitionMapResponse.ts';
export type {
  GetPartitionReplicasRequest,
  GetPartitionReplicasRequest__Output as GetPartitionReplicasRequestOut,
} from '../gen/keyva/v1/GetPartitionReplicasRequest.ts';
export type { GetRequest, GetRequest__Output as GetRequestOut } from '../gen/keyva/v1/GetRequest.ts';
export type { GetResponse, GetResponse__Output as GetResponseOut } from '../gen/keyva/v1/GetResponse.ts';
export type { HealthResponse, HealthResponse__Output as HealthResponseOut } from '../gen/keyva/v1/HealthResponse.ts';
export type { HostReplicaRequest, HostReplicaRequest__Output as HostReplicaRequestOut } from '../gen/keyva/v1/HostReplicaRequest.ts';
export type { HostReplicaResponse, HostReplicaResponse__Output as HostReplicaResponseOut } from '../gen/keyva/v1/HostReplicaResponse.ts';
export type { KeyValue, KeyValue__Output as KeyValueOut } from '../gen/keyva/v1/KeyValue.ts';
export type { KVClient } from '../gen/keyva/v1/KV.ts';
export type {
  ListPartitionReplicasRequest,
  ListPartitionReplicasRequest__Output as ListPartitionReplicasRequestOut,
} from '../gen/keyva/v1/ListPartitionReplicasRequest.ts';
export type {
  ListPartitionReplicasResponse,
  ListPartitionReplicasResponse__Output as ListPartitionReplicasResponseOut,
} from '../gen/keyva/v1/ListPartitionReplicasResponse.ts';
export type { LocalDigestRequest, LocalDigestRequest__Output as LocalDigestRequestOut } from '../gen/keyva/v1/LocalDigestRequest.ts';
export type { LocalDigestResponse, LocalDigestResponse__Output as LocalDigestResponseOut } from '../gen/keyva/v1/LocalDigestResponse.ts';
export type { LocalReplicaRequest, LocalReplicaRequest__Output as LocalReplicaRequestOut } from '../gen/keyva/v1/LocalReplicaRequest.ts';
export type { LocalReplicaResponse, LocalReplicaResponse__Output as LocalReplicaResponseOut } from '../gen/keyva/v1/LocalReplicaResponse.ts';
export type {
  MembershipChangeResponse,
  MembershipChangeResponse__Output as MembershipChangeResponseOut,
} from '../gen/keyva/v1/MembershipChangeResponse.ts';
export type { MergePartitionsRequest, MergePartitionsRequest__Output as MergePartitionsRequestOut } from '../gen/keyva/v1/MergePartitionsRequest.ts';
export type { MergePartitionsResponse, MergePartitionsResponse__Output as MergePartitionsResponseOut } from '../gen/keyva/v1/MergePartitionsResponse.ts';
export type { Mutation, Mutation__Output as MutationOut } from '../gen/keyva/v1/Mutation.ts';
export type { NodeAddress, NodeAddress__Output as NodeAddressOut } from '../gen/keyva/v1/NodeAddress.ts';
export type { NodeInfoResponse, NodeInfoResponse__Output as NodeInfoResponseOut } from '../gen/keyva/v1/NodeInfoResponse.ts';
export type { Partition, Partition__Output as PartitionOut } from '../gen/keyva/v1/Partition.ts';
export type { PartitionDigestRequest, PartitionDigestRequest__Output as PartitionDigestRequestOut } from '../gen/keyva/v1/PartitionDigestRequest.ts';
export type { PartitionDigestResponse, PartitionDigestResponse__Output as PartitionDigestResponseOut } from '../gen/keyva/v1/PartitionDigestResponse.ts';
export type { PartitionMap, PartitionMap__Output as PartitionMapOut } from '../gen/keyva/v1/PartitionMap.ts';
export type {
  PartitionReplicasResponse,
  PartitionReplicasResponse__Output as PartitionReplicasResponseOut,
} from '../gen/keyva/v1/PartitionReplicasResponse.ts';
export type { PromoteLearnerRequest, PromoteLearnerRequest__Output as PromoteLearnerRequestOut } from '../gen/keyva/v1/PromoteLearnerRequest.ts';
export type { PutRequest, PutRequest__Output as PutRequestOut } from '../gen/keyva/v1/PutRequest.ts';
export type { PutResponse, PutResponse__Output as PutResponseOut } from '../gen/keyva/v1/PutResponse.ts';
export type { RaftClient } from '../gen/keyva/v1/Raft.ts';
export type { RaftBatch, RaftBatch__Output as RaftBatchOut } from '../gen/keyva/v1/RaftBatch.ts';
export type { ReadOptions, ReadOptions__Output as ReadOptionsOut } from '../gen/keyva/v1/ReadOptions.ts';
export type { RegisterNodeRequest, RegisterNodeRequest__Output as RegisterNodeRequestOut } from '../gen/keyva/v1/RegisterNodeRequest.ts';
export type { RegisterNodeResponse } from '../gen/keyva/v1/RegisterNodeResponse.ts';
export type { RemoveReplicaRequest, RemoveReplicaRequest__Output as RemoveReplicaRequestOut } from '../gen/keyva/v1/RemoveReplicaRequest.ts';
export type { ReplicaDigest, ReplicaDigest__Output as ReplicaDigestOut } from '../gen/keyva/v1/ReplicaDigest.ts';
export type { ReplicaStatus, ReplicaStatus__Output as ReplicaStatusOut } from '../gen/keyva/v1/ReplicaStatus.ts';
export type { ScanRequest, ScanRequest__Output as ScanRequestOut } from '../gen/keyva/v1/ScanRequest.ts';
export type { ScanResponse, ScanResponse__Output as ScanResponseOut } from '../gen/keyva/v1/ScanResponse.ts';
export type { SnapshotAck, SnapshotAck__Output as SnapshotAckOut } from '../gen/keyva/v1/SnapshotAck.ts';
export type { SnapshotEndpointReply, SnapshotEndpointReply__Output as SnapshotEndpointReplyOut } from '../gen/keyva/v1/SnapshotEndpointReply.ts';
export type { SnapshotFrame, SnapshotFrame__Output as SnapshotFrameOut } from '../gen/keyva/v1/SnapshotFrame.ts';
export type { SplitPartitionRequest, SplitPartitionRequest__Output as SplitPartitionRequestOut } from '../gen/keyva/v1/SplitPartitionRequest.ts';
export type { SplitPartitionResponse, SplitPartitionResponse__Output as SplitPartitionResponseOut } from '../gen/keyva/v1/SplitPartitionResponse.ts';
export type { StreamRequest, StreamRequest__Output as StreamRequestOut } from '../gen/keyva/v1/StreamRequest.ts';
export type { StreamResponse, StreamResponse__Output as StreamResponseOut } from '../gen/keyva/v1/StreamResponse.ts';
export type { TransferLeaderRequest, TransferLeaderRequest__Output as TransferLeaderRequestOut } from '../gen/keyva/v1/TransferLeaderRequest.ts';
export type { TransferLeaderResponse, TransferLeaderResponse__Output as TransferLeaderResponseOut } from '../gen/keyva/v1/TransferLeaderResponse.ts';
export type {
  UnsafeRecoverPartitionRequest,
  UnsafeRecoverPartitionRequest__Output as UnsafeRecoverPartitionRequestOut,
} from '../gen/keyva/v1/UnsafeRecoverPartitionRequest.ts';
export type {
  UnsafeRecoverPartitionResponse,
  UnsafeRecoverPartitionResponse__Output as UnsafeRecoverPartitionResponseOut,
} from '../gen/keyva/v1/UnsafeRecoverPartitionResponse.ts';
export type {
  UpdatePartitionMapRequest,
  UpdatePartitionMapRequest__Output as UpdatePartitionMapRequestOut,
} from '../gen/keyva/v1/UpdatePartitionMapRequest.ts';
export type { UpdatePartitionMapResponse } from '../gen/keyva/v1/UpdatePartitionMapResponse.ts';
export type { WriteOptions, WriteOptions__Output as WriteOptionsOut } from '../gen/keyva/v1/WriteOptions.ts';
