import { describe, expect, it } from 'vitest';
import { Expectations } from './expectations.ts';

const ref = { kind: 'Pod', namespace: 'ns', name: 'kv-abcde' };

describe('Expectations', () => {
  it('a write is settled once the cache holds its resourceVersion', () => {
    let t = 0;
    const x = new Expectations(() => t);
    x.expectVersion('ns/kv', ref, '42');
    expect(x.settled('ns/kv', () => undefined)).toBe(false);
    expect(x.settled('ns/kv', () => ({ resourceVersion: '41' }))).toBe(false);
    expect(x.settled('ns/kv', () => ({ resourceVersion: '42' }))).toBe(true);
    expect(x.pending('ns/kv')).toBe(0);
    t++;
  });

  it('an informer event with the version settles it even if the cache moved on', () => {
    const x = new Expectations(() => 0);
    x.expectVersion('ns/kv', ref, '42');
    x.observe('Pod', 'ns', 'kv-abcde', { resourceVersion: '42' }, false);
    expect(x.settled('ns/kv', () => ({ resourceVersion: '50' }))).toBe(true);
  });

  it('an event delivered before the write returned (before the expectation exists) still counts', () => {
    const x = new Expectations(() => 0);
    x.observe('Pod', 'ns', 'kv-abcde', { resourceVersion: '42' }, false);
    x.expectVersion('ns/kv', ref, '42');
    expect(x.settled('ns/kv', () => ({ resourceVersion: '43' }))).toBe(true);
  });

  it('remembers recent versions only for a while, and at most recentMax of them', () => {
    let t = 0;
    const x = new Expectations(() => t, 1000, 2);
    x.observe('Pod', 'ns', 'a', { resourceVersion: '1' }, false);
    x.observe('Pod', 'ns', 'b', { resourceVersion: '2' }, false);
    x.observe('Pod', 'ns', 'c', { resourceVersion: '3' }, false); // evicts a@1
    x.expectVersion('k', { kind: 'Pod', namespace: 'ns', name: 'a' }, '1');
    expect(x.pending('k')).toBe(1);
    t = 2000;
    x.observe('Pod', 'ns', 'd', { resourceVersion: '4' }, false); // b and c are too old now
    x.expectVersion('k2', { kind: 'Pod', namespace: 'ns', name: 'c' }, '3');
    expect(x.pending('k2')).toBe(1);
  });

  it('a delete is settled when the object with that uid is gone or terminating, not when another one took its name', () => {
    const x = new Expectations(() => 0);
    x.expectGone('ns/kv', ref, 'u1');
    expect(x.settled('ns/kv', () => ({ uid: 'u1' }))).toBe(false);
    expect(x.settled('ns/kv', () => ({ uid: 'u1', deletionTimestamp: 'now' }))).toBe(true);
    x.expectGone('ns/kv', ref, 'u1');
    expect(x.settled('ns/kv', () => ({ uid: 'u2' }))).toBe(true);
    x.expectGone('ns/kv', ref, 'u1');
    expect(x.settled('ns/kv', () => undefined)).toBe(true);
  });

  it('expires after the deadline so a lost event cannot block a cluster forever', () => {
    let t = 0;
    const x = new Expectations(() => t, 1000);
    x.expectVersion('ns/kv', ref, '42');
    expect(x.settled('ns/kv', () => undefined)).toBe(false);
    t = 1000;
    expect(x.settled('ns/kv', () => undefined)).toBe(true);
  });

  it('keys are independent', () => {
    const x = new Expectations(() => 0);
    x.expectVersion('ns/a', ref, '1');
    expect(x.settled('ns/b', () => undefined)).toBe(true);
    expect(x.settled('ns/a', () => undefined)).toBe(false);
    x.forget('ns/a');
    expect(x.settled('ns/a', () => undefined)).toBe(true);
  });
});
