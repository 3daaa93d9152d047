import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RoutingCache } from '../../lib/profiles/routing-cache.js';
import type { ExportProfile } from '../../lib/profiles/schema.js';

describe('the ingest routing cache', () => {
  const profile = (id: string) => ({ id }) as ExportProfile;

  it('asks the store once per organization within the time to live, and again after it', async () => {
    let now = 0;
    const asked: string[] = [];
    const cache = new RoutingCache(
      async (org) => {
        asked.push(org);
        return [profile(`p-${asked.length}`)];
      },
      1_000,
      () => now,
    );
    const burst = await Promise.all(Array.from({ length: 50 }, () => cache.activeProfilesFor('ORG-A')));
    assert.equal(asked.length, 1);
    assert.ok(burst.every((p) => p[0].id === 'p-1'));
    await cache.activeProfilesFor('org-b');
    assert.equal(asked.length, 2);
    now = 999;
    await cache.activeProfilesFor('org-a');
    assert.equal(asked.length, 2, 'case-insensitive and still fresh');
    now = 1_000;
    assert.equal((await cache.activeProfilesFor('org-a'))[0].id, 'p-3');
  });

  it('forgets everything when this instance changes a profile', async () => {
    let calls = 0;
    const cache = new RoutingCache(async () => [profile(String(++calls))]);
    await cache.activeProfilesFor('org');
    cache.invalidate();
    assert.equal((await cache.activeProfilesFor('org'))[0].id, '2');
  });

  it('does not remember a failed read', async () => {
    let fail = true;
    const cache = new RoutingCache(async () => {
      if (fail) throw new Error('database down');
      return [profile('ok')];
    });
    await assert.rejects(cache.activeProfilesFor('org'), /database down/);
    fail = false;
    assert.equal((await cache.activeProfilesFor('org'))[0].id, 'ok');
  });
});
