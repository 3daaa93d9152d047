import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, type Catalog, type ErrorDetail, type Me, type ProfileInput } from './api.js';

const STEPS = ['Properties', 'Entities', 'Relationships', 'Summary'] as const;

const blank: ProfileInput = {
  name: '',
  organizationId: '',
  source: { url: '' },
  target: { kind: 'postgres', connectionSecret: '', schema: 'public', tablePrefix: '' },
  entities: [],
  relationships: [],
  options: { writeDeleteLog: true, retryCount: 12, retryIntervalSeconds: 5, initialSync: true },
};

/** Which step holds the field an API message names (a JSON pointer such as /target/connectionSecret). */
const stepOf = (field = '') => (field.startsWith('/entities') ? 1 : field.startsWith('/relationships') ? 2 : 0);

export function Wizard({ me, profileId }: { me?: Me; profileId?: string }) {
  const [step, setStep] = useState(0);
  const [input, setInput] = useState<ProfileInput>(blank);
  const [catalog, setCatalog] = useState<Catalog | undefined>();
  const [catalogError, setCatalogError] = useState<string | undefined>();
  const [search, setSearch] = useState('');
  const [errors, setErrors] = useState<ErrorDetail[]>([]);
  const [summaryError, setSummaryError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (!profileId) return;
    api.profile(profileId).then(({ id: _i, state: _s, createdOn: _c, modifiedOn: _m, ...p }) => setInput(p));
  }, [profileId]);
  useEffect(() => {
    document.querySelector<HTMLElement>('#wizard-step')?.focus();
  }, [step]);

  if (!me?.canWrite)
    return (
      <p role="alert" class="error">
        Changing profiles needs the Export.Admin role.
      </p>
    );

  const set = (patch: Partial<ProfileInput>) => setInput({ ...input, ...patch });
  const fieldError = (pointer: string) =>
    errors.find((e) => e.field === pointer || e.field?.startsWith(`${pointer}/`))?.message;

  async function loadCatalog() {
    setCatalogError(undefined);
    try {
      const c = await api.catalog(input.source.url);
      setCatalog(c);
      if (!input.organizationId) set({ organizationId: c.organizationId });
      return c;
    } catch (err) {
      setCatalogError((err as Error).message);
      return undefined;
    }
  }

  async function next() {
    if (step === 0 && !catalog && !(await loadCatalog())) return;
    setStep(step + 1);
  }

  async function save(activate: boolean) {
    setBusy(true);
    setErrors([]);
    setSummaryError(undefined);
    try {
      const saved = profileId ? await api.replace(profileId, input) : await api.create(input);
      if (activate) await api.activate(saved.id);
      window.location.hash = `#/profiles/${saved.id}`;
    } catch (err) {
      const details = err instanceof ApiError ? err.details : [];
      setErrors(details);
      setSummaryError((err as Error).message);
      const withField = details.find((d) => d.field?.startsWith('/'));
      if (withField) setStep(stepOf(withField.field));
    } finally {
      setBusy(false);
    }
  }

  const toggle = (list: string[], name: string) =>
    list.includes(name) ? list.filter((n) => n !== name) : [...list, name];
  const shown = catalog?.entities.filter(
    (e) => !search || `${e.logicalName} ${e.displayName}`.toLowerCase().includes(search.toLowerCase()),
  );

  return (
    <section aria-labelledby="wizard-title">
      <h1 id="wizard-title" tabIndex={-1}>
        {profileId ? 'Edit profile' : 'New export profile'}
      </h1>
      <ol class="steps" aria-label="Steps">
        {STEPS.map((s, i) => (
          <li key={s} aria-current={i === step ? 'step' : undefined} class={i === step ? 'current' : ''}>
            {i + 1}. {s}
          </li>
        ))}
      </ol>
      {summaryError && (
        <div role="alert" class="error">
          {summaryError}
        </div>
      )}
      <h2 id="wizard-step" tabIndex={-1}>
        {STEPS[step]}
      </h2>

      {step === 0 && (
        <div class="form">
          <Field label="Name" error={fieldError('/name')}>
            {(props) => (
              <input {...props} value={input.name} onInput={(e) => set({ name: e.currentTarget.value })} required />
            )}
          </Field>
          <Field
            label="Organization URL"
            hint="e.g. https://contoso.crm.dynamics.com"
            error={fieldError('/source') ?? catalogError}
          >
            {(props) => (
              <input
                {...props}
                type="url"
                value={input.source.url}
                onInput={(e) => {
                  setCatalog(undefined);
                  set({ source: { url: e.currentTarget.value } });
                }}
                required
              />
            )}
          </Field>
          <Field label="Organization id" hint="Filled in from the organization" error={fieldError('/organizationId')}>
            {(props) => (
              <input
                {...props}
                value={input.organizationId}
                onInput={(e) => set({ organizationId: e.currentTarget.value })}
              />
            )}
          </Field>
          <Field label="Target kind" error={fieldError('/target/kind')}>
            {(props) => (
              <select
                {...props}
                value={input.target.kind}
                onChange={(e) => {
                  const kind = e.currentTarget.value as 'postgres' | 'mssql';
                  set({ target: { ...input.target, kind, schema: kind === 'mssql' ? 'dbo' : 'public' } });
                }}
              >
                <option value="postgres">PostgreSQL</option>
                <option value="mssql">Azure SQL</option>
              </select>
            )}
          </Field>
          <Field
            label="Connection secret"
            hint="Name of the secret holding the connection string"
            error={fieldError('/target/connectionSecret')}
          >
            {(props) => (
              <input
                {...props}
                value={input.target.connectionSecret}
                onInput={(e) => set({ target: { ...input.target, connectionSecret: e.currentTarget.value } })}
                required
              />
            )}
          </Field>
          <Field label="Schema" error={fieldError('/target/schema')}>
            {(props) => (
              <input
                {...props}
                value={input.target.schema}
                onInput={(e) => set({ target: { ...input.target, schema: e.currentTarget.value } })}
              />
            )}
          </Field>
          <Field label="Table prefix" error={fieldError('/target/tablePrefix')}>
            {(props) => (
              <input
                {...props}
                value={input.target.tablePrefix}
                onInput={(e) => set({ target: { ...input.target, tablePrefix: e.currentTarget.value } })}
              />
            )}
          </Field>
          <Field label="Retry count" error={fieldError('/options/retryCount')}>
            {(props) => (
              <input
                {...props}
                type="number"
                min={0}
                value={input.options.retryCount}
                onInput={(e) => set({ options: { ...input.options, retryCount: Number(e.currentTarget.value) } })}
              />
            )}
          </Field>
          <Field label="Retry interval (seconds)" error={fieldError('/options/retryIntervalSeconds')}>
            {(props) => (
              <input
                {...props}
                type="number"
                min={1}
                value={input.options.retryIntervalSeconds}
                onInput={(e) =>
                  set({ options: { ...input.options, retryIntervalSeconds: Number(e.currentTarget.value) } })
                }
              />
            )}
          </Field>
          <label class="check">
            <input
              type="checkbox"
              checked={input.options.writeDeleteLog}
              onChange={(e) => set({ options: { ...input.options, writeDeleteLog: e.currentTarget.checked } })}
            />
            Write a delete log
          </label>
          <label class="check">
            <input
              type="checkbox"
              checked={input.options.initialSync}
              onChange={(e) => set({ options: { ...input.options, initialSync: e.currentTarget.checked } })}
            />
            Copy every row on activation (initial sync)
          </label>
        </div>
      )}

      {step === 1 && catalog && (
        <fieldset class="pick" aria-describedby={fieldError('/entities') ? 'entities-error' : undefined}>
          <legend>Entities to export ({input.entities.length} chosen)</legend>
          {fieldError('/entities') && (
            <p id="entities-error" class="error">
              {fieldError('/entities')}
            </p>
          )}
          <label>
            Search entities
            <input type="search" value={search} onInput={(e) => setSearch(e.currentTarget.value)} />
          </label>
          <table>
            <thead>
              <tr>
                <th scope="col">Export</th>
                <th scope="col">Display name</th>
                <th scope="col">Logical name</th>
                <th scope="col">Change tracking</th>
              </tr>
            </thead>
            <tbody>
              {shown?.map((e) => (
                <tr key={e.logicalName}>
                  <td>
                    <input
                      type="checkbox"
                      id={`entity-${e.logicalName}`}
                      checked={input.entities.includes(e.logicalName)}
                      onChange={() => set({ entities: toggle(input.entities, e.logicalName) })}
                    />
                  </td>
                  <td>
                    <label for={`entity-${e.logicalName}`}>{e.displayName}</label>
                  </td>
                  <td class="mono">{e.logicalName}</td>
                  <td>{e.changeTracking ? 'On' : 'Off — needed for export'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </fieldset>
      )}

      {step === 2 && catalog && (
        <fieldset class="pick">
          <legend>N:N relationships ({input.relationships.length} chosen)</legend>
          {fieldError('/relationships') && <p class="error">{fieldError('/relationships')}</p>}
          {catalog.relationships.length === 0 && <p>This organization has no N:N relationships.</p>}
          {catalog.relationships.map((r) => (
            <label class="check" key={r.schemaName}>
              <input
                type="checkbox"
                checked={input.relationships.includes(r.schemaName)}
                onChange={() => set({ relationships: toggle(input.relationships, r.schemaName) })}
              />
              <span class="mono">{r.schemaName}</span> ({r.entity1} ↔ {r.entity2})
            </label>
          ))}
        </fieldset>
      )}

      {step === 3 && (
        <dl class="summary">
          <dt>Name</dt>
          <dd>{input.name}</dd>
          <dt>Organization</dt>
          <dd>
            {input.source.url} ({input.organizationId})
          </dd>
          <dt>Target</dt>
          <dd>
            {input.target.kind}, secret “{input.target.connectionSecret}”, schema {input.target.schema}
            {input.target.tablePrefix ? `, prefix ${input.target.tablePrefix}` : ''}
          </dd>
          <dt>Entities</dt>
          <dd>{input.entities.join(', ') || 'none'}</dd>
          <dt>Relationships</dt>
          <dd>{input.relationships.join(', ') || 'none'}</dd>
          <dt>Options</dt>
          <dd>
            retry {input.options.retryCount} × {input.options.retryIntervalSeconds} s; delete log{' '}
            {input.options.writeDeleteLog ? 'on' : 'off'}; initial sync {input.options.initialSync ? 'on' : 'off'}
          </dd>
        </dl>
      )}

      <div class="actions wizard-nav">
        {step > 0 && (
          <button type="button" onClick={() => setStep(step - 1)}>
            Back
          </button>
        )}
        {step < 3 && (
          <button type="button" class="primary" onClick={next}>
            Next
          </button>
        )}
        {step === 3 && (
          <>
            <button type="button" disabled={busy} onClick={() => save(false)}>
              {profileId ? 'Save' : 'Create'}
            </button>
            <button type="button" class="primary" disabled={busy} onClick={() => save(true)}>
              {profileId ? 'Save and activate' : 'Create and activate'}
            </button>
          </>
        )}
      </div>
    </section>
  );
}

let fieldIds = 0;

/** A labelled control with its hint and the API's message for it, tied together for assistive technology. */
function Field(props: {
  label: string;
  hint?: string;
  error?: string;
  children(props: { id: string; 'aria-invalid'?: 'true'; 'aria-describedby'?: string }): preact.JSX.Element;
}) {
  const [id] = useState(() => `field-${++fieldIds}`);
  const described = [props.hint && `${id}-hint`, props.error && `${id}-error`].filter(Boolean).join(' ');
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      {props.children({
        id,
        'aria-invalid': props.error ? 'true' : undefined,
        'aria-describedby': described || undefined,
      })}
      {props.hint && (
        <small id={`${id}-hint`} class="hint">
          {props.hint}
        </small>
      )}
      {props.error && (
        <small id={`${id}-error`} class="error field-error">
          {props.error}
        </small>
      )}
    </div>
  );
}
