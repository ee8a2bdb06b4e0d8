/** A stable content hash of JSON values (canonical key order, FNV-1a 2x32 bits), for spec-hash annotations. */

export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
    .join(',')}}`;
}

function fnv1a32(s: string, seed: number): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** 16 hex characters. */
export function contentHash(v: unknown): string {
  const s = canonicalJson(v);
  return fnv1a32(s, 0x811c9dc5).toString(16).padStart(8, '0') + fnv1a32(s, 0x9747b28c).toString(16).padStart(8, '0');
}
