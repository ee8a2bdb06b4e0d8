/** `keyva get|put|del|scan`: data commands through the SDK, tables for people, --json for scripts. */
import { type Entry, KeyVa, type ScanOptions } from '@keyva/client';
import { printJson, showBytes, table } from '../output.ts';

export interface ConnOptions {
  endpoint: string;
  json: boolean;
  deadlineMs: number;
}

export async function withClient<T>(o: ConnOptions, fn: (kv: KeyVa) => Promise<T>): Promise<T> {
  const kv = await KeyVa.connect({ endpoints: [o.endpoint], deadlineMs: o.deadlineMs, useStream: false });
  try {
    return await fn(kv);
  } finally {
    await kv.close();
  }
}

const entryJson = (e: Entry) => ({ key: showBytes(e.key), value: showBytes(e.value), version: e.version.toString(), expiresAtMs: e.expiresAtMs });
const expiry = (ms: number) => (ms === 0 ? '-' : new Date(ms).toISOString());

export async function cmdGet(o: ConnOptions, key: string): Promise<number> {
  const e = await withClient(o, (kv) => kv.get(key));
  if (!e) {
    if (o.json) printJson({ key, found: false });
    else process.stderr.write(`key '${key}' not found\n`);
    return 1;
  }
  if (o.json) printJson({ found: true, ...entryJson(e) });
  else process.stdout.write(`${showBytes(e.value)}\n`);
  return 0;
}

export interface PutCli {
  ttl?: string;
  ifAbsent?: boolean;
  ifVersion?: string;
}

export async function cmdPut(o: ConnOptions, key: string, value: string, p: PutCli): Promise<number> {
  const ttlMs = p.ttl === undefined ? undefined : parseDuration(p.ttl);
  const r = await withClient(o, (kv) =>
    kv.put(key, value, { ttlMs, ifAbsent: p.ifAbsent, ifVersion: p.ifVersion === undefined ? undefined : parseVersion(p.ifVersion) }),
  );
  if (o.json) printJson({ key, version: r.version.toString() });
  else process.stdout.write(`OK version ${r.version}\n`);
  return 0;
}

export async function cmdDel(o: ConnOptions, key: string, ifVersion?: string): Promise<number> {
  const r = await withClient(o, (kv) => kv.delete(key, { ifVersion: ifVersion === undefined ? undefined : parseVersion(ifVersion) }));
  if (o.json) printJson({ key, deleted: r.deleted, version: r.version.toString() });
  else process.stdout.write(r.deleted ? `deleted '${key}'\n` : `key '${key}' did not exist\n`);
  return 0;
}

export async function cmdScan(
  o: ConnOptions,
  s: { tag?: string; prefix?: string; start?: string; end?: string; limit: string; cursor?: string; keysOnly?: boolean },
): Promise<number> {
  const limit = Number(s.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new Error(`--limit must be a positive integer, got '${s.limit}'`);
  const opts: ScanOptions = { tag: s.tag, prefix: s.prefix, start: s.start, end: s.end, limit, cursor: s.cursor, keysOnly: s.keysOnly };
  const page = await withClient(o, (kv) => kv.scanPage(opts));
  if (o.json) {
    printJson({ items: page.items.map(entryJson), cursor: page.cursor ?? null });
    return 0;
  }
  if (page.items.length === 0) process.stdout.write('(no keys)\n');
  else
    process.stdout.write(
      `${table(
        s.keysOnly ? ['key', 'version', 'expires'] : ['key', 'value', 'version', 'expires'],
        page.items.map((e) =>
          s.keysOnly
            ? [showBytes(e.key), e.version.toString(), expiry(e.expiresAtMs)]
            : [showBytes(e.key), showBytes(e.value), e.version.toString(), expiry(e.expiresAtMs)],
        ),
      )}\n`,
    );
  if (page.cursor)
    process.stdout.write(`more keys: ./keyva scan --cursor ${page.cursor}${s.tag ? ` --tag ${s.tag}` : ''}${s.prefix ? ` --prefix ${s.prefix}` : ''}\n`);
  if (!s.tag && !s.prefix?.includes('}')) process.stdout.write('(whole-keyspace scans are in hash order, not key order)\n');
  return 0;
}

export function parseDuration(s: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(s.trim());
  if (!m) throw new Error(`'${s}' is not a duration: use e.g. 500ms, 30s, 10m, 2h, 1d`);
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms'];
  return n * unit;
}

function parseVersion(s: string): bigint {
  if (!/^\d+$/.test(s)) throw new Error(`'${s}' is not a version (an unsigned integer)`);
  return BigInt(s);
}
