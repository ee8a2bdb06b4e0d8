/**
 * Test helper: polls `get` until it returns something other than `undefined` or `false` (a throw
 * counts as "not yet"), and returns that; after `timeoutMs` fails naming `what` and the last error.
 */
export async function eventually<T>(
  get: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  timeoutMs = 20_000,
  pollMs = 25,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await get();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= end)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : ` (last error: ${(last as Error).message})`}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
