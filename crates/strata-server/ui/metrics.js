// The Prometheus text format as /metrics writes it, and what the health page
// derives from it: rates from counters, quantiles from a histogram.

/** Parses the exposition text into samples {name, labels, value}. */
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const l of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

/** The value of the first sample named `name` (whose labels include `labels`), or null. */
export function value(samples, name, labels = {}) {
  const s = samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s ? s.value : null;
}

/** The histogram `name`'s cumulative buckets as [[le, count], ...] sorted by le. */
export function buckets(samples, name) {
  return samples
    .filter((s) => s.name === name + '_bucket')
    .map((s) => [s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), s.value])
    .sort((a, b) => a[0] - b[0]);
}

/** Bucket counts of `now` less those of `then` (same bounds). */
export function bucketDelta(now, then) {
  if (!then || then.length !== now.length) return now;
  return now.map(([le, c], i) => [le, c - then[i][1]]);
}

/**
 * The q-quantile (0..1) of cumulative buckets, interpolated linearly inside
 * the bucket it falls in; null without observations.
 */
export function quantile(q, cumulative) {
  if (!cumulative.length) return null;
  const total = cumulative[cumulative.length - 1][1];
  if (!(total > 0)) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of cumulative) {
    if (count >= rank) {
      if (le === Infinity) return prevLe;
      const inBucket = count - prevCount;
      return inBucket > 0 ? prevLe + ((le - prevLe) * (rank - prevCount)) / inBucket : le;
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}
