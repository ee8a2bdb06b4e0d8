/**
 * The client side of `keyva dev`'s control endpoint (loopback HTTP): where it is (`--control`,
 * KEYVA_CONTROL, else `<data dir>/control.json` written by `keyva dev`) and one JSON request.
 * Refusals come back as KeyVaErrors with the code and reason the supervisor gave.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type ErrorCode, isErrorCode, KeyVaError } from '@keyva/proto/errors';
/** Written by `keyva dev` in its data folder: `{ control, pid }`. */
export const CONTROL_FILE = 'control.json';
export const DEFAULT_DEV_DIR = '.keyva/dev';

export interface ControlOptions {
  /** host:port of the control endpoint, if given. */
  readonly control?: string | undefined;
  readonly dataDir?: string | undefined;
}

/** The control endpoint's address, or undefined when no `keyva dev` cluster is known. */
export function findControl(o: ControlOptions): string | undefined {
  if (o.control !== undefined && o.control !== '') return o.control;
  try {
    const j = JSON.parse(readFileSync(join(resolve(o.dataDir ?? DEFAULT_DEV_DIR), CONTROL_FILE), 'utf8')) as { control?: unknown };
    return typeof j.control === 'string' && j.control !== '' ? j.control : undefined;
  } catch {
    return undefined;
  }
}

export function requireControl(o: ControlOptions): string {
  const c = findControl(o);
  if (c === undefined)
    throw new KeyVaError(
      'UNAVAILABLE',
      `no local cluster found (no ${join(o.dataDir ?? DEFAULT_DEV_DIR, CONTROL_FILE)}): start one with ./keyva dev --nodes 3, or pass --control <host:port>`,
    );
  return c;
}

export async function controlRequest<T>(control: string, method: 'GET' | 'POST' | 'DELETE', path: string, timeoutMs = 60_000): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`http://${control}${path}`, { method, signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    throw new KeyVaError(
      'UNAVAILABLE',
      `the local cluster's control endpoint ${control} did not answer (${(e as Error).message}); is keyva dev running?`,
      {},
      { cause: e },
    );
  }
  const body = (await res.json()) as T & { code?: string; message?: string; details?: Record<string, string> };
  if (!res.ok) {
    const code: ErrorCode = typeof body.code === 'string' && isErrorCode(body.code) ? body.code : 'INTERNAL';
    throw new KeyVaError(code, body.message ?? `HTTP ${res.status}`, body.details ?? {});
  }
  return body;
}
