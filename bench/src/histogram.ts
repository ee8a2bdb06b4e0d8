/** Latency histograms (HDR, microsecond resolution) and their summary. */
import * as hdr from 'hdr-histogram-js';

export interface LatencySummary {
  readonly p50Us: number;
  readonly p95Us: number;
  readonly p99Us: number;
  readonly p999Us: number;
  readonly maxUs: number;
}

export function newHistogram(): hdr.Histogram {
  return hdr.build({
    bitBucketSize: 64,
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
}

export function summarize(h: hdr.Histogram): LatencySummary {
  return {
    p50Us: h.getValueAtPercentile(50),
    p95Us: h.getValueAtPercentile(95),
    p99Us: h.getValueAtPercentile(99),
    p999Us: h.getValueAtPercentile(99.9),
    maxUs: h.maxValue,
  };
}

/** A histogram as text (HDR's compressed base64 V2 encoding), to cross process boundaries and go into JSON. */
export function encodeHistogram(h: hdr.Histogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

export function decodeHistogram(encoded: string): hdr.Histogram {
  return hdr.decodeFromCompressedBase64(encoded, 64, false);
}

/** One histogram holding every value of the given (encoded) histograms. */
export function mergeHistograms(encoded: readonly string[]): hdr.Histogram {
  const out = newHistogram();
  for (const e of encoded) out.add(decodeHistogram(e));
  return out;
}

export interface FullLatencySummary extends LatencySummary {
  readonly count: number;
  readonly meanUs: number;
}

export function summarizeFull(h: hdr.Histogram): FullLatencySummary {
  // Max as the top of its HDR bucket, so a merged (decoded) histogram reports what a direct one does.
  return { count: h.totalCount, meanUs: Math.round(h.mean * 10) / 10, ...summarize(h), maxUs: h.totalCount === 0 ? 0 : h.getValueAtPercentile(100) };
}
