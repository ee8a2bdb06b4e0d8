import { describe, expect, it } from 'vitest';
import { ConfigError, validateNodeConfig } from './config.ts';
import { parsePeers, raftDialProblems, replicationProblems } from './peers.ts';

describe('parsePeers', () => {
  it('parses id=host:port lists, tolerating spaces and a trailing comma', () => {
    expect(parsePeers('node-1=127.0.0.1:7379, node-2=10.0.0.2:7389,node-3=keyva-3.svc:7399,')).toEqual([
      { id: 'node-1', grpcAddress: '127.0.0.1:7379' },
      { id: 'node-2', grpcAddress: '10.0.0.2:7389' },
      { id: 'node-3', grpcAddress: 'keyva-3.svc:7399' },
    ]);
  });

  it('names every problem', () => {
    expect(() => parsePeers('')).toThrow(/no peer given/);
    expect(() => parsePeers('127.0.0.1:7379')).toThrow(/is not id=host:port/);
    expect(() => parsePeers('Node_1=h:1')).toThrow(/peer id 'Node_1'/);
    expect(() => parsePeers('a=h')).toThrow(/address 'h' is not host:port/);
    expect(() => parsePeers('a=h:0')).toThrow(/port 1-65535/);
    expect(() => parsePeers('a=h:x1')).toThrow(/is not host:port/);
    expect(() => parsePeers('a=h:1,a=h:2')).toThrow(/peer id 'a' appears twice/);
    expect(() => parsePeers('a=h:1,b=h:1')).toThrow(/address 'h:1' appears twice/);
  });
});

describe('replicated configuration', () => {
  const peers = 'node-1=127.0.0.1:7379,node-2=127.0.0.1:7389,node-3=127.0.0.1:7399';

  it('needs this node among the peers and at least as many peers as the replication factor', () => {
    expect(replicationProblems(peers, 'node-2', undefined)).toEqual([]);
    expect(replicationProblems(peers, 'node-2', 3)).toEqual([]);
    expect(replicationProblems(peers, undefined, 3)).toEqual([expect.stringMatching(/--node-id is required/)]);
    expect(replicationProblems(peers, 'node-9', 3)).toEqual([expect.stringMatching(/'node-9' is not in --peers/)]);
    expect(replicationProblems(peers, 'node-1', 5)).toEqual([expect.stringMatching(/needs at least 5 peers, --peers lists 3.*pass --replication-factor 3/)]);
    expect(replicationProblems(peers, 'node-1', 1)).toEqual([]);
    const five = `${peers},node-4=127.0.0.1:7409,node-5=127.0.0.1:7419`;
    expect(replicationProblems(five, 'node-5', 3)).toEqual([]);
    expect(replicationProblems(five, 'node-5', undefined)).toEqual([]);
    expect(replicationProblems(five, 'node-5', 5)).toEqual([]);
    expect(replicationProblems(`${five},node-6=127.0.0.1:7429`, 'node-6', 5)).toEqual([]);
    expect(replicationProblems(peers, 'node-1', 2)).toEqual([expect.stringMatching(/must be 1, 3 or 5/)]);
    expect(replicationProblems('node-1=h:1', 'node-1', undefined)).toEqual([expect.stringMatching(/pass --replication-factor 1/)]);
    expect(replicationProblems('node-1=h:1', 'node-1', 1)).toEqual([]);
  });

  it('lets a joining node (--join) list any number of contacts plus itself', () => {
    const four = `${peers},node-4=127.0.0.1:7409`;
    expect(replicationProblems(four, 'node-4', 3, true)).toEqual([]);
    expect(replicationProblems(four, 'node-4', 5)).toEqual([expect.stringMatching(/needs at least 5 peers/)]);
    expect(replicationProblems(four, 'node-4', 5, true)).toEqual([]);
    expect(validateNodeConfig({ peers: four, nodeId: 'node-4', join: true }).join).toBe(true);
    expect(() => validateNodeConfig({ join: true })).toThrow(/--join needs --peers/);
  });

  it('is validated with the rest of the configuration', () => {
    const c = validateNodeConfig({ peers, nodeId: 'node-1' });
    expect(c.peers).toBe(peers);
    expect(c.replicationFactor).toBeUndefined();
    expect(c.raftTickMs).toBe(100);
    expect(() => validateNodeConfig({ peers })).toThrow(ConfigError);
    expect(() => validateNodeConfig({ peers, nodeId: 'node-1', replicationFactor: '5' })).toThrow(
      /peers \(flag --peers, env KEYVA_PEERS\): --replication-factor 5/,
    );
    expect(() => validateNodeConfig({ replicationFactor: 3 })).toThrow(/needs --peers/);
    expect(validateNodeConfig({}).peers).toBeUndefined();
  });

  it('accepts --raft-dial overrides for other peers only', () => {
    expect(raftDialProblems('node-2=127.0.0.1:9001,node-3=127.0.0.1:9002', peers, 'node-1')).toEqual([]);
    expect(raftDialProblems('node-1=127.0.0.1:9001', peers, 'node-1')).toEqual([expect.stringMatching(/'node-1' is this node/)]);
    expect(raftDialProblems('node-9=127.0.0.1:9001', peers, 'node-1')).toEqual([expect.stringMatching(/'node-9' is not in --peers/)]);
    expect(raftDialProblems('node-2=nowhere', peers, 'node-1')).toEqual([expect.stringMatching(/is not host:port/)]);
    expect(validateNodeConfig({ peers, nodeId: 'node-1', raftDial: 'node-2=127.0.0.1:9001' }).raftDial).toBe('node-2=127.0.0.1:9001');
    expect(() => validateNodeConfig({ raftDial: 'node-2=127.0.0.1:9001' })).toThrow(
      /raftDial \(flag --raft-dial, env KEYVA_RAFT_DIAL\): --raft-dial needs --peers/,
    );
    expect(() => validateNodeConfig({ peers, nodeId: 'node-1', raftDial: 'node-1=127.0.0.1:9001' })).toThrow(/raftDial .*this node/);
  });
});
