// azd postdown: the deleted Key Vault keeps its name for 90 days (purge protection), so the next `azd up` in this
// environment must create a vault under a new name: a new KEY_VAULT_NAME_SALT. The previous payload keys went with
// the old vault and the claim checks they sealed with the storage account, so their names are cleared too.
import { randomBytes } from 'node:crypto';
import { azdEnvSet } from './run.mjs';

const salt = randomBytes(3).toString('hex');
azdEnvSet('KEY_VAULT_NAME_SALT', salt);
azdEnvSet('PAYLOAD_PREVIOUS_KEY_SECRET_NAMES', '');
console.log(
  `[postdown] the next provision creates Key Vault kv-<token>${salt}; the deleted one stays recoverable for 90 days.`,
);
