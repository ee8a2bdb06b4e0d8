/**
 * Starts the OpenTelemetry SDK when the standard OTEL_* variables ask for traces
 * (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_TRACES_EXPORTER),
 * exporting over OTLP as those variables say. Called from main.ts only.
 */
import { NodeSDK } from '@opentelemetry/sdk-node';

export interface Tracing {
  shutdown(): Promise<void>;
}

export function startTracing(serviceName: string): Tracing {
  const sdk = new NodeSDK({ serviceName, instrumentations: [] });
  sdk.start();
  return { shutdown: () => sdk.shutdown() };
}
