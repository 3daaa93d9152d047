export const when = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString() : '—');
export const lag = (ms: number | null | undefined) =>
  ms === null || ms === undefined ? '—' : ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
export const eta = (s: number | null) =>
  s === null ? '—' : s < 90 ? `${s} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
export const count = (n: number | null | undefined) => (n === null || n === undefined ? '—' : n.toLocaleString());
