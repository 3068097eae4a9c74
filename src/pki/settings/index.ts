// Key types and CA lifetimes, on their own so that meshca's settings table (src/config), which
// every command loads, can offer and default to them without loading the ASN.1 libraries.
// Constants only.

import { DAY_MS } from '../../time/index.ts';

export const KEY_TYPES = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'] as const;
export type KeyType = (typeof KEY_TYPES)[number];
export const DEFAULT_KEY_TYPE: KeyType = 'ec-p256';

export const DEFAULT_ROOT_TTL_MS = 3650 * DAY_MS;
export const DEFAULT_CA_TTL_MS = 365 * DAY_MS;
