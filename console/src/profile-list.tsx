import { api, type Me, type Profile, type ProfileStatus } from './api.js';
import { count, lag, when } from './format.js';
import { usePoll } from './use-poll.js';

export function ProfileList({ me }: { me?: Me }) {
  const { value, error } = usePoll(async () => {
    const profiles = await api.profiles();
    const statuses = await Promise.all(profiles.map((p) => api.status(p.id).catch(() => undefined)));
    return profiles.map((p, i) => ({ profile: p, status: statuses[i] }));
  }, 5000);

  return (
    <section aria-labelledby="list-title">
      <div class="title-row">
        <h1 id="list-title" tabIndex={-1}>
          Export profiles
        </h1>
        {me?.canWrite && (
          <a class="button primary" href="#/new">
            New profile
          </a>
        )}
      </div>
      {error && (
        <p role="alert" class="error">
          {error.message}
        </p>
      )}
      {!value ? (
        <p>Loading…</p>
      ) : value.length === 0 ? (
        <p>No export profiles yet.{me?.canWrite ? ' Create one with “New profile”.' : ''}</p>
      ) : (
        <div class="table-wrap">
          <table>
            <caption class="visually-hidden">Export profiles</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Organization</th>
                <th scope="col">Target</th>
                <th scope="col">State</th>
                <th scope="col">Initial sync</th>
                <th scope="col">Failed</th>
                <th scope="col">Last applied</th>
                <th scope="col">Lag</th>
              </tr>
            </thead>
            <tbody>
              {value.map(({ profile, status }) => (
                <Row key={profile.id} profile={profile} status={status} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function Row({ profile, status }: { profile: Profile; status?: ProfileStatus }) {
  return (
    <tr>
      <th scope="row">
        <a href={`#/profiles/${profile.id}`}>{profile.name}</a>
      </th>
      <td>{profile.source.url}</td>
      <td>
        {profile.target.kind} · {profile.target.connectionSecret} · {profile.target.schema}
      </td>
      <td>
        <span class={`badge ${profile.state.toLowerCase()}`}>{profile.state}</span>
      </td>
      <td>{status?.initialSync ?? '—'}</td>
      <td>{count(status?.totals.failed)}</td>
      <td>{when(status?.totals.lastAppliedAt)}</td>
      <td>{lag(status?.totals.maxLagMs)}</td>
    </tr>
  );
}
