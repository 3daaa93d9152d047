import { useState } from 'preact/hooks';
import { api } from './api.js';
import { when } from './format.js';
import { usePoll } from './use-poll.js';

export function AuditView() {
  const [offset, setOffset] = useState(0);
  const page = usePoll(() => api.audit({ offset }), 0, [offset]);
  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title" tabIndex={-1}>
        Audit trail
      </h1>
      {page.error && (
        <p role="alert" class="error">
          {page.error.message}
        </p>
      )}
      <div class="table-wrap">
        <table>
          <caption class="visually-hidden">Changes to export profiles, newest first</caption>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Who</th>
              <th scope="col">What</th>
              <th scope="col">Profile</th>
              <th scope="col">Details</th>
            </tr>
          </thead>
          <tbody>
            {page.value?.entries.map((e) => (
              <tr key={e.id} class="audit-entry">
                <td class="small">{when(e.at)}</td>
                <td>{e.actor}</td>
                <td>{e.action}</td>
                <td>
                  <a href={`#/profiles/${e.profileId}`}>{e.profileName ?? e.profileId}</a>
                </td>
                <td class="small">
                  {e.before && e.after && e.before.state !== e.after.state
                    ? `${e.before.state} → ${e.after.state}`
                    : ''}
                  {e.details ? ` ${JSON.stringify(e.details)}` : ''}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div class="actions">
        <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - 100))}>
          Newer
        </button>
        <button
          type="button"
          disabled={page.value?.nextOffset == null}
          onClick={() => setOffset(page.value?.nextOffset ?? 0)}
        >
          Older
        </button>
      </div>
    </section>
  );
}
