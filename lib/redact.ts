/**
 * Takes secrets out of text before it leaves the app as an error message or a log line: the password of a
 * connection string (`Password=…;`, `Pwd=…`, `postgres://user:pass@host`), keys of Azure connection strings
 * (`AccountKey=`, `SharedAccessKey=`, `Client Secret=`), and any value the caller knows to be secret (the whole
 * connection string a driver was given, which a driver may echo as a host or database name).
 */
export const REDACTED = '[redacted]';

/** `keyword=value` pairs whose value is a secret; the value runs to `;` or is quoted or braced (ADO.NET). */
const SECRET_KEYWORD =
  /\b(password|pwd|accountkey|sharedaccesskey|client ?secret|clientsecret)(\s*=\s*)("[^"]*"|'[^']*'|\{[^}]*\}|[^;\s"'}]*)/gi;
/** The password in a URL's user info: `scheme://user:password@`. */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/?#@]*):([^\s/?#@]*)@/gi;

/** Known secrets shorter than this are not searched for: replacing them would blank ordinary words. */
const MIN_KNOWN_LENGTH = 6;

export function redactSecrets(text: string, known: readonly (string | undefined)[] = []): string {
  let out = text;
  for (const secret of known.flatMap((value) => (value ? [value, ...passwordsIn(value)] : []))) {
    if (secret.length >= MIN_KNOWN_LENGTH) out = out.split(secret).join(REDACTED);
  }
  return out
    .replace(SECRET_KEYWORD, (_m, key: string, eq: string) => `${key}${eq}${REDACTED}`)
    .replace(URL_PASSWORD, (_m, userinfo: string) => `${userinfo}:${REDACTED}@`);
}

/** The passwords a connection string carries, so a driver repeating just the password is caught too. */
function passwordsIn(connectionString: string): string[] {
  const found: string[] = [];
  for (const match of connectionString.matchAll(SECRET_KEYWORD)) {
    found.push(match[3].replace(/^["'{]|["'}]$/g, ''));
  }
  for (const match of connectionString.matchAll(URL_PASSWORD)) {
    found.push(match[2]);
    try {
      found.push(decodeURIComponent(match[2]));
    } catch {
      // A malformed escape: the raw form is searched for already.
    }
  }
  return found;
}
