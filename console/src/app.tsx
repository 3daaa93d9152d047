import { useEffect, useState } from 'preact/hooks';
import { api, type Me } from './api.js';
import { AuditView } from './audit-view.js';
import { ProfileList } from './profile-list.js';
import { ProfilePage } from './profile-page.js';
import { Wizard } from './wizard.js';

/** Hash routes, so the static host needs no fallback: #/, #/new, #/profiles/<id>, #/profiles/<id>/edit, #/audit. */
function useRoute(): string[] {
  const read = () => window.location.hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const onChange = () => setRoute(read());
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

export function App() {
  const route = useRoute();
  const [me, setMe] = useState<Me | undefined>();
  const [problem, setProblem] = useState<string | undefined>();
  useEffect(() => {
    api.me().then(setMe, (err: Error) => setProblem(err.message));
  }, []);

  // Move focus to the new screen's heading, so keyboard and screen-reader users land on it.
  useEffect(() => {
    document.querySelector<HTMLElement>('main h1')?.focus();
  }, [route.join('/'), me]);

  const [first, id, sub] = route;
  let screen = <ProfileList me={me} />;
  if (first === 'new') screen = <Wizard me={me} />;
  else if (first === 'profiles' && id && sub === 'edit') screen = <Wizard me={me} profileId={id} />;
  else if (first === 'profiles' && id) screen = <ProfilePage me={me} id={id} />;
  else if (first === 'audit') screen = <AuditView />;

  return (
    <>
      <button type="button" class="skip" onClick={() => document.querySelector<HTMLElement>('main h1')?.focus()}>
        Skip to content
      </button>
      <header class="banner">
        <span class="brand">Dataverse Export</span>
        <nav aria-label="Main">
          <a href="#/">Profiles</a>
          {me?.canWrite && <a href="#/new">New profile</a>}
          <a href="#/audit">Audit trail</a>
        </nav>
        <span class="who" data-testid="signed-in">
          {me
            ? `Signed in as ${me.name}${me.roles.length ? ` (${me.roles.join(', ')})` : ''}${me.canWrite ? '' : ' — read only'}`
            : ''}
        </span>
      </header>
      <main id="main">
        {problem ? (
          <div role="alert" class="error">
            {problem}
          </div>
        ) : (
          me && screen
        )}
      </main>
    </>
  );
}
