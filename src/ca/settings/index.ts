// The CA's lifetime limits, on their own so that meshca's settings table (src/config), which every
// command loads, can default to them without loading the CA and its ASN.1 libraries. Constants only.

import { HOUR_MS } from '../../time/index.ts';

export const DEFAULT_LEAF_TTL_MS = HOUR_MS;
export const MAX_LEAF_TTL_MS = 24 * HOUR_MS;
/** Shortest lifetime worth issuing; below it a renewal loop would spin. */
export const MIN_LEAF_TTL_MS = 10_000;

/** How long renewals over mTLS may keep an identity alive after its last token grant (--max-renewal-age). */
export const DEFAULT_MAX_RENEWAL_AGE_MS = 24 * HOUR_MS;
