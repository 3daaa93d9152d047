import { loadConfig } from '../../lib/config.js';
import type { ProfileReach } from '../../lib/profiles/profile-reach.js';

/**
 * What a profile may reach in tests that use the sample organization on http://127.0.0.1: the app's defaults,
 * read through the settings, with AllowLoopbackDataverse=true as the local stack sets it.
 */
export const loopbackReach: ProfileReach = loadConfig({
  ControlStoreKind: 'postgres',
  ControlStoreConnection: 'postgres://unused',
  ServiceBusConnection: 'Endpoint=sb://unused',
  PayloadStorageConnection: 'UseDevelopmentStorage=true',
  AllowLoopbackDataverse: 'true',
}).profileReach;
