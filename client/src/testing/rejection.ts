import { KeyVaError } from '@keyva/proto/errors';

/** The KeyVaError `p` rejects with; fails the test when it resolves or rejects with anything else. */
export async function rejection(p: Promise<unknown>): Promise<KeyVaError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof KeyVaError) return e;
    throw e;
  }
  throw new Error('expected the promise to reject with a KeyVaError');
}
