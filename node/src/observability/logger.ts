/** Structured JSON logs (pino). One root logger per node, children per component. */
import { type Logger, pino } from 'pino';

export type { Logger };

export function createLogger(level: string, nodeId: string, destination?: pino.DestinationStream): Logger {
  const opts = { level, base: { node: nodeId }, timestamp: pino.stdTimeFunctions.isoTime };
  return destination ? pino(opts, destination) : pino(opts);
}
