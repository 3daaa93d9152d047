/**
 * The tables of the sample organization: account, contact and the custom N:N relationship
 * `new_accountcontact` (account ↔ contact) with its intersect entity. Everything else in the sample org
 * (generation, rendering, metadata answers) is driven by these definitions.
 */

export type SampleAttributeKind =
  | 'uniqueidentifier'
  | 'string'
  | 'memo'
  | 'money'
  | 'decimal'
  | 'integer'
  | 'bigint'
  | 'boolean'
  | 'datetime'
  | 'dateonly'
  | 'picklist'
  | 'state'
  | 'status'
  | 'lookup'
  | 'customer'
  | 'multiselect';

export interface SampleOption {
  value: number;
  label: string;
  /** Status options: the state they belong to. */
  state?: number;
  /** State options: the default status and the invariant name. */
  defaultStatus?: number;
  invariantName?: string;
}

export interface SampleOptionSet {
  name: string;
  isGlobal: boolean;
  metadataId: string;
  options: SampleOption[];
}

export interface SampleAttribute {
  logicalName: string;
  schemaName: string;
  displayName: string;
  kind: SampleAttributeKind;
  metadataId: string;
  maxLength?: number;
  /** Money/decimal: digits after the decimal point (Dataverse's `Precision`). */
  precision?: number;
  minValue?: number;
  maxValue?: number;
  targets?: string[];
  optionSet?: SampleOptionSet;
  booleanLabels?: [falseLabel: string, trueLabel: string];
  /** Set by the platform only (ids, created/modified on, version). */
  readOnly?: boolean;
  isPrimaryName?: boolean;
}

export interface SampleEntity {
  logicalName: string;
  schemaName: string;
  displayName: string;
  entitySetName: string;
  primaryIdAttribute: string;
  primaryNameAttribute: string | null;
  objectTypeCode: number;
  metadataId: string;
  isIntersect: boolean;
  attributes: SampleAttribute[];
}

export interface SampleRelationship {
  schemaName: string;
  metadataId: string;
  intersectEntityName: string;
  entity1LogicalName: string;
  entity1IntersectAttribute: string;
  entity1NavigationPropertyName: string;
  entity2LogicalName: string;
  entity2IntersectAttribute: string;
  entity2NavigationPropertyName: string;
}

let nextMetadataSeq = 1;
/** Stable, readable metadata ids: the same on every start. */
function metadataId(): string {
  const n = (nextMetadataSeq++).toString(16).padStart(12, '0');
  return `5a3b1e00-0000-4000-8000-${n}`;
}

const options = (pairs: Array<[number, string]>): SampleOption[] => pairs.map(([value, label]) => ({ value, label }));

const industryCode: SampleOptionSet = {
  name: 'account_industrycode',
  isGlobal: false,
  metadataId: metadataId(),
  options: options([
    [1, 'Accounting'],
    [2, 'Agriculture and Non-petrol Natural Resource Extraction'],
    [3, 'Broadcasting Printing and Publishing'],
    [4, 'Brokers'],
    [5, 'Building Supply Retail'],
    [6, 'Business Services'],
    [7, 'Consulting'],
    [8, 'Consumer Services'],
    [9, 'Design, Direction and Creative Management'],
    [10, 'Distributors, Dispatchers and Processors'],
  ]),
};

const genderCode: SampleOptionSet = {
  name: 'contact_gendercode',
  isGlobal: false,
  metadataId: metadataId(),
  options: options([
    [1, 'Male'],
    [2, 'Female'],
  ]),
};

/** A global option set, used by the multi-select column `contact.new_interests`. */
const interests: SampleOptionSet = {
  name: 'new_interest',
  isGlobal: true,
  metadataId: metadataId(),
  options: options([
    [100000000, 'Sports'],
    [100000001, 'Music'],
    [100000002, 'Travel'],
    [100000003, 'Technology'],
    [100000004, 'Cooking'],
  ]),
};

function stateSet(entity: string): SampleOptionSet {
  return {
    name: `${entity}_statecode`,
    isGlobal: false,
    metadataId: metadataId(),
    options: [
      { value: 0, label: 'Active', defaultStatus: 1, invariantName: 'Active' },
      { value: 1, label: 'Inactive', defaultStatus: 2, invariantName: 'Inactive' },
    ],
  };
}

function statusSet(entity: string): SampleOptionSet {
  return {
    name: `${entity}_statuscode`,
    isGlobal: false,
    metadataId: metadataId(),
    options: [
      { value: 1, label: 'Active', state: 0 },
      { value: 2, label: 'Inactive', state: 1 },
    ],
  };
}

export type AttrInput = Omit<SampleAttribute, 'metadataId' | 'schemaName' | 'displayName'> & {
  schemaName?: string;
  displayName?: string;
};

/** An attribute definition, its schema and display names made from the logical name unless given. */
export function attr(input: AttrInput): SampleAttribute {
  const pascal = input.logicalName.replace(/(^|_)([a-z])/g, (_m, p: string, c: string) => p + c.toUpperCase());
  return {
    schemaName: input.schemaName ?? pascal,
    displayName: input.displayName ?? pascal,
    metadataId: metadataId(),
    ...input,
  };
}

function systemAttributes(entity: string): SampleAttribute[] {
  return [
    attr({ logicalName: 'statecode', displayName: 'Status', kind: 'state', optionSet: stateSet(entity) }),
    attr({ logicalName: 'statuscode', displayName: 'Status Reason', kind: 'status', optionSet: statusSet(entity) }),
    attr({ logicalName: 'createdon', displayName: 'Created On', kind: 'datetime', readOnly: true }),
    attr({ logicalName: 'modifiedon', displayName: 'Modified On', kind: 'datetime', readOnly: true }),
    attr({ logicalName: 'versionnumber', displayName: 'Version Number', kind: 'bigint', readOnly: true }),
  ];
}

export const account: SampleEntity = {
  logicalName: 'account',
  schemaName: 'Account',
  displayName: 'Account',
  entitySetName: 'accounts',
  primaryIdAttribute: 'accountid',
  primaryNameAttribute: 'name',
  objectTypeCode: 1,
  metadataId: '70816501-edb9-4740-a16c-6a5efbc05d84',
  isIntersect: false,
  attributes: [
    attr({ logicalName: 'accountid', schemaName: 'AccountId', displayName: 'Account', kind: 'uniqueidentifier' }),
    attr({ logicalName: 'name', displayName: 'Account Name', kind: 'string', maxLength: 160, isPrimaryName: true }),
    attr({ logicalName: 'accountnumber', displayName: 'Account Number', kind: 'string', maxLength: 20 }),
    attr({ logicalName: 'revenue', displayName: 'Annual Revenue', kind: 'money', precision: 2 }),
    attr({ logicalName: 'numberofemployees', displayName: 'Number of Employees', kind: 'integer' }),
    attr({
      logicalName: 'creditlimit',
      displayName: 'Credit Limit',
      kind: 'decimal',
      precision: 10,
      minValue: -100000000000,
      maxValue: 100000000000,
    }),
    attr({ logicalName: 'industrycode', displayName: 'Industry', kind: 'picklist', optionSet: industryCode }),
    attr({ logicalName: 'primarycontactid', displayName: 'Primary Contact', kind: 'lookup', targets: ['contact'] }),
    attr({ logicalName: 'parentaccountid', displayName: 'Parent Account', kind: 'lookup', targets: ['account'] }),
    attr({
      logicalName: 'donotemail',
      displayName: 'Do not allow Emails',
      kind: 'boolean',
      booleanLabels: ['Allow', 'Do Not Allow'],
    }),
    attr({ logicalName: 'description', displayName: 'Description', kind: 'memo', maxLength: 2000 }),
    ...systemAttributes('account'),
  ],
};

export const contact: SampleEntity = {
  logicalName: 'contact',
  schemaName: 'Contact',
  displayName: 'Contact',
  entitySetName: 'contacts',
  primaryIdAttribute: 'contactid',
  primaryNameAttribute: 'fullname',
  objectTypeCode: 2,
  metadataId: '608861bc-50a4-4c5f-a02c-21fe1943e2cf',
  isIntersect: false,
  attributes: [
    attr({ logicalName: 'contactid', schemaName: 'ContactId', displayName: 'Contact', kind: 'uniqueidentifier' }),
    attr({ logicalName: 'fullname', displayName: 'Full Name', kind: 'string', maxLength: 160, isPrimaryName: true }),
    attr({ logicalName: 'firstname', displayName: 'First Name', kind: 'string', maxLength: 50 }),
    attr({ logicalName: 'lastname', displayName: 'Last Name', kind: 'string', maxLength: 50 }),
    attr({ logicalName: 'emailaddress1', displayName: 'Email', kind: 'string', maxLength: 100 }),
    attr({
      logicalName: 'parentcustomerid',
      displayName: 'Company Name',
      kind: 'customer',
      targets: ['account', 'contact'],
    }),
    attr({ logicalName: 'birthdate', displayName: 'Birthday', kind: 'dateonly' }),
    attr({ logicalName: 'gendercode', displayName: 'Gender', kind: 'picklist', optionSet: genderCode }),
    attr({ logicalName: 'new_interests', schemaName: 'new_Interests', kind: 'multiselect', optionSet: interests }),
    ...systemAttributes('contact'),
  ],
};

/** The intersect entity of the custom N:N relationship between account and contact. */
export const accountContact: SampleEntity = {
  logicalName: 'new_accountcontact',
  schemaName: 'new_accountcontact',
  displayName: 'new_accountcontact',
  entitySetName: 'new_accountcontactset',
  primaryIdAttribute: 'new_accountcontactid',
  primaryNameAttribute: null,
  objectTypeCode: 10001,
  metadataId: 'c6d1f1a2-7f3e-4b8e-9a51-0d2a3c4b5e60',
  isIntersect: true,
  attributes: [
    attr({ logicalName: 'new_accountcontactid', kind: 'uniqueidentifier' }),
    attr({ logicalName: 'accountid', schemaName: 'accountid', kind: 'uniqueidentifier' }),
    attr({ logicalName: 'contactid', schemaName: 'contactid', kind: 'uniqueidentifier' }),
    attr({ logicalName: 'versionnumber', displayName: 'Version Number', kind: 'bigint', readOnly: true }),
  ],
};

export const accountContactRelationship: SampleRelationship = {
  schemaName: 'new_accountcontact',
  metadataId: 'c6d1f1a2-7f3e-4b8e-9a51-0d2a3c4b5e61',
  intersectEntityName: 'new_accountcontact',
  entity1LogicalName: 'account',
  entity1IntersectAttribute: 'accountid',
  entity1NavigationPropertyName: 'new_accountcontact',
  entity2LogicalName: 'contact',
  entity2IntersectAttribute: 'contactid',
  entity2NavigationPropertyName: 'new_accountcontact',
};

export const entities: readonly SampleEntity[] = [account, contact, accountContact];

export function entityByName(logicalName: string): SampleEntity | undefined {
  return entities.find((e) => e.logicalName === logicalName);
}

export function entityBySet(entitySetName: string): SampleEntity | undefined {
  return entities.find((e) => e.entitySetName === entitySetName);
}
