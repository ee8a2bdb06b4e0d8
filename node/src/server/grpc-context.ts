/** W3C trace context carried in gRPC metadata (`traceparent`, `tracestate`). */
import type * as grpc from '@grpc/grpc-js';
import { type Context, propagation, ROOT_CONTEXT, type TextMapGetter } from '@opentelemetry/api';

const getter: TextMapGetter<grpc.Metadata> = {
  keys: (m) => Object.keys(m.getMap()),
  get: (m, k) => {
    const v = m.get(k);
    return v.length === 0 ? undefined : v.map(String);
  },
};

export function contextFromMetadata(md: grpc.Metadata): Context {
  return propagation.extract(ROOT_CONTEXT, md, getter);
}
