/** Friendly names for the generated message types. `*Out` = as received (defaults filled). */
export type { AdminClient } from '../gen/keyva/v1/Admin.ts';
export type { BatchGetRequest, BatchGetRequest__Output as BatchGetRequestOut } from '../gen/keyva/v1/BatchGetRequest.ts';
export type { BatchGetResponse, BatchGetResponse__Output as BatchGetResponseOut } from '../gen/keyva/v1/BatchGetResponse.ts';
export type { BatchWriteRequest, BatchWriteRequest__Output as BatchWriteRequestOut } from '../gen/keyva/v1/BatchWriteRequest.ts';
export type { BatchWriteResponse, BatchWriteResponse__Output as BatchWriteResponseOut } from '../gen/keyva/v1/BatchWriteResponse.ts';
export type { Condition, Condition__Output as ConditionOut } from '../gen/keyva/v1/Condition.ts';
export type { DeleteRequest, DeleteRequest__Output as DeleteRequestOut } from '../gen/keyva/v1/DeleteRequest.ts';
export type { DeleteResponse, DeleteResponse__Output as DeleteResponseOut } from '../gen/keyva/v1/DeleteResponse.ts';
export type { Error as WireError, Error__Output as WireErrorOut } from '../gen/keyva/v1/Error.ts';
export type { GetPartitionMapResponse, GetPartitionMapResponse__Output as GetPartitionMapResponseOut } from '../gen/keyva/v1/GetPartitionMapResponse.ts';
export type { GetRequest, GetRequest__Output as GetRequestOut } from '../gen/keyva/v1/GetRequest.ts';
export type { GetResponse, GetResponse__Output as GetResponseOut } from '../gen/keyva/v1/GetResponse.ts';
export type { HealthResponse, HealthResponse__Output as HealthResponseOut } from '../gen/keyva/v1/HealthResponse.ts';
export type { KeyValue, KeyValue__Output as KeyValueOut } from '../gen/keyva/v1/KeyValue.ts';
export type { KVClient } from '../gen/keyva/v1/KV.ts';
export type { Mutation, Mutation__Output as MutationOut } from '../gen/keyva/v1/Mutation.ts';
export type { NodeAddress, NodeAddress__Output as NodeAddressOut } from '../gen/keyva/v1/NodeAddress.ts';
export type { NodeInfoResponse, NodeInfoResponse__Output as NodeInfoResponseOut } from '../gen/keyva/v1/NodeInfoResponse.ts';
export type { Partition, Partition__Output as PartitionOut } from '../gen/keyva/v1/Partition.ts';
export type { PartitionMap, PartitionMap__Output as PartitionMapOut } from '../gen/keyva/v1/PartitionMap.ts';
export type { PutRequest, PutRequest__Output as PutRequestOut } from '../gen/keyva/v1/PutRequest.ts';
export type { PutResponse, PutResponse__Output as PutResponseOut } from '../gen/keyva/v1/PutResponse.ts';
export type { RaftClient } from '../gen/keyva/v1/Raft.ts';
export type { RaftBatch, RaftBatch__Output as RaftBatchOut } from '../gen/keyva/v1/RaftBatch.ts';
export type { ReadOptions, ReadOptions__Output as ReadOptionsOut } from '../gen/keyva/v1/ReadOptions.ts';
export type { RegisterNodeRequest, RegisterNodeRequest__Output as RegisterNodeRequestOut } from '../gen/keyva/v1/RegisterNodeRequest.ts';
export type { RegisterNodeResponse } from '../gen/keyva/v1/RegisterNodeResponse.ts';
export type { ScanRequest, ScanRequest__Output as ScanRequestOut } from '../gen/keyva/v1/ScanRequest.ts';
export type { ScanResponse, ScanResponse__Output as ScanResponseOut } from '../gen/keyva/v1/ScanResponse.ts';
export type { StreamRequest, StreamRequest__Output as StreamRequestOut } from '../gen/keyva/v1/StreamRequest.ts';
export type { StreamResponse, StreamResponse__Output as StreamResponseOut } from '../gen/keyva/v1/StreamResponse.ts';
export type {
  UpdatePartitionMapRequest,
  UpdatePartitionMapRequest__Output as UpdatePartitionMapRequestOut,
} from '../gen/keyva/v1/UpdatePartitionMapRequest.ts';
export type { UpdatePartitionMapResponse } from '../gen/keyva/v1/UpdatePartitionMapResponse.ts';
export type { WriteOptions, WriteOptions__Output as WriteOptionsOut } from '../gen/keyva/v1/WriteOptions.ts';
