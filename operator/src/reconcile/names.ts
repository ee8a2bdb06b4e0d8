/** Deterministic, DNS-safe names of a cluster's children, and member ids. */

/** Kubernetes' own random-suffix alphabet (no vowels, no look-alikes): ids never spell words. */
export const ID_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';
export const ID_SUFFIX_LENGTH = 5;

export const names = {
  peersService: (cluster: string) => `${cluster}-peers`,
  clientService: (cluster: string) => cluster,
  configMap: (cluster: string) => `${cluster}-config`,
  pdb: (cluster: string) => cluster,
  pvc: (memberId: string) => `data-${memberId}`,
  memberId: (cluster: string, suffix: string) => `${cluster}-${suffix}`,
} as const;

export function isValidSuffix(s: string): boolean {
  return s.length === ID_SUFFIX_LENGTH && [...s].every((c) => ID_ALPHABET.includes(c));
}

/** A DNS label (RFC 1123), at most 63 characters. */
export function isDnsLabel(s: string): boolean {
  return s.length <= 63 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(s);
}
