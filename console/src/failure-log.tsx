import { useState } from 'preact/hooks';
import { api, type Me } from './api.js';
import { when } from './format.js';
import { usePoll } from './use-poll.js';

/** `datetime-local` values are local time without a zone; the API wants ISO-8601 UTC. */
const toIso = (local: string) => (local ? new Date(local).toISOString() : undefined);

export function FailureLog({
  me,
  id,
  active,
  onResynced,
}: {
  me?: Me;
  id: string;
  active: boolean;
  onResynced(): void;
}) {
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [range, setRange] = useState<{ from?: string; to?: string }>({});
  const failures = usePoll(() => api.failures(id, range.from, range.to), 5000, [id, range.from, range.to]);
  const [resync, setResync] = useState<{ running: boolean; text?: string; error?: boolean }>({ running: false });

  async function download() {
    const blob = await api.failuresCsv(id, range.from, range.to);
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `failures-${id}.csv`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  }

  async function runResync() {
    setResync({ running: true, text: 'Resync running…' });
    try {
      const totals = (values: Record<string, unknown>) =>
        Object.entries(values)
          .filter(([, v]) => typeof v === 'number')
          .map(([k, v]) => `${k} ${v}`)
          .join(', ');
      const result = await api.resync(id, (progress) =>
        setResync({ running: true, text: `Resync running… ${totals(progress)}` }),
      );
      const parts = Object.entries(result)
        .filter(([, v]) => typeof v === 'number')
        .map(([k, v]) => `${k} ${v}`);
      setResync({ running: false, text: `Resync finished: ${parts.join(', ')}.` });
      failures.reload();
      onResynced();
    } catch (err) {
      setResync({ running: false, text: (err as Error).message, error: true });
    }
  }

  return (
    <section aria-labelledby="failures-title">
      <h2 id="failures-title">Failure log</h2>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setRange({ from: toIso(from), to: toIso(to) });
        }}
      >
        <label>
          From
          <input type="datetime-local" value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
        </label>
        <label>
          To
          <input type="datetime-local" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
        </label>
        <button type="submit">Apply filter</button>
        <button type="button" onClick={download}>
          Download CSV
        </button>
        {me?.canWrite && (
          <button
            type="button"
            disabled={!active || resync.running}
            onClick={runResync}
            title={active ? '' : 'Activate the profile to resync'}
          >
            Resync failed records
          </button>
        )}
      </form>
      <div aria-live="polite">{resync.text && <p class={resync.error ? 'error' : 'ok'}>{resync.text}</p>}</div>
      {failures.error && (
        <p role="alert" class="error">
          {failures.error.message}
        </p>
      )}
      {failures.value && failures.value.length === 0 ? (
        <p data-testid="no-failures">No failed records in this range.</p>
      ) : (
        <div class="table-wrap">
          <table>
            <caption class="visually-hidden">Failed records</caption>
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Entity</th>
                <th scope="col">Record</th>
                <th scope="col">Change</th>
                <th scope="col">Reason</th>
              </tr>
            </thead>
            <tbody>
              {failures.value?.map((f) => (
                <tr key={`${f.entity}-${f.recordId}-${f.time}`} class="failure">
                  <td class="small">{when(f.time)}</td>
                  <td>{f.entity}</td>
                  <td class="mono small">{f.recordId}</td>
                  <td>{f.changeType}</td>
                  <td>
                    <span class="mono small">{f.code}</span> {f.reason}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
