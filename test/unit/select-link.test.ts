import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { selectedColumns, withSelect } from '../../lib/dataverse/webapi/select-link.js';

const TOKEN = '$deltatoken=919042%2108%2F22%2F2017%2008%3A10%3A44';
const LINK = `https://contoso.crm.dynamics.com/api/data/v9.2/accounts?$select=accountid,name,_primarycontactid_value&${TOKEN}`;

describe("a delta link's $select", () => {
  it('reads the selected Web API names, and none where the link selects nothing', () => {
    assert.deepEqual(selectedColumns(LINK), ['accountid', 'name', '_primarycontactid_value']);
    assert.equal(selectedColumns(`https://contoso.crm.dynamics.com/api/data/v9.2/accounts?${TOKEN}`), undefined);
    assert.deepEqual(selectedColumns('accounts?$select=name%2Caccountnumber'), ['name', 'accountnumber']);
  });

  it('rewrites only the $select, leaving the token exactly as Dataverse gave it', () => {
    const widened = withSelect(LINK, ['accountid', 'name', 'revenue']);
    assert.equal(
      widened,
      `https://contoso.crm.dynamics.com/api/data/v9.2/accounts?$select=accountid,name,revenue&${TOKEN}`,
    );
    // A token first and the $select after it, or no $select at all.
    assert.equal(withSelect(`accounts?${TOKEN}&$select=accountid`, ['name']), `accounts?${TOKEN}&$select=name`);
    assert.equal(withSelect(`accounts?${TOKEN}`, ['accountid', 'name']), `accounts?${TOKEN}&$select=accountid,name`);
  });
});
