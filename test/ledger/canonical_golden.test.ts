// Golden vectors for the ledger's on-disk format: the canonical JSON of events and the chain hash.
// The expected strings and hashes are literals, computed outside meshca (RFC 8785's own examples,
// `printf … | sha256sum` and `openssl dgst -sha256`), so any change to the format fails here
// instead of silently producing ledgers that older exports and auditors can no longer verify.

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson, checkpointMessage, GENESIS_HASH, recordHash, type LedgerEvent } from '../../src/ledger/index.ts';

const ISSUANCE: LedgerEvent = {
  type: 'issuance',
  timeMs: 1767225600000,
  decision: 'granted',
  reason: 'issued',
  channel: 'CreateCertificate',
  spiffeId: 'spiffe://cluster.local/ns/default/sa/web',
  namespace: 'default',
  serviceAccount: undefined,
  authenticator: 'jwt',
  serial: '0a1b2c3d4e5f',
  notBeforeMs: 1767225600000,
  notAfterMs: 1767312000000,
  grantedTtlSeconds: 86400,
};
const ISSUANCE_JSON =
  '{"authenticator":"jwt","channel":"CreateCertificate","decision":"granted","grantedTtlSeconds":86400,"namespace":"default",' +
  '"notAfterMs":1767312000000,"notBeforeMs":1767225600000,"reason":"issued","serial":"0a1b2c3d4e5f",' +
  '"spiffeId":"spiffe://cluster.local/ns/default/sa/web","timeMs":1767225600000,"type":"issuance"}';

const CA_EVENT: LedgerEvent = { type: 'ca', timeMs: 1767225601000, event: 'root-prepare', actor: 'cli:ops', detail: { ttlDays: 3650, keyId: 'r2', force: false } };
const CA_EVENT_JSON = '{"actor":"cli:ops","detail":{"force":false,"keyId":"r2","ttlDays":3650},"event":"root-prepare","timeMs":1767225601000,"type":"ca"}';

const AUDIT_EVENT: LedgerEvent = {
  type: 'audit-query',
  timeMs: 1767225603000,
  caller: 'spiffe://cluster.local/ns/sec/sa/auditor',
  decision: 'denied',
  filter: { namespace: 'café' },
  method: 'Query',
  reason: 'not an auditor',
};
const AUDIT_EVENT_JSON =
  '{"caller":"spiffe://cluster.local/ns/sec/sa/auditor","decision":"denied","filter":{"namespace":"café"},"method":"Query",' +
  '"reason":"not an auditor","timeMs":1767225603000,"type":"audit-query"}';

// sha256sum of {"event":<json>,"prev":"<prev>","seq":<seq>} as UTF-8, chained from the genesis hash.
const HASH_1 = 'f046350f418d964f046ad223c7d74dbcc973614a3f6ea08f49ddb279893c8682';
const HASH_2 = 'fe0819a73023b4b8f2e78ac3364bb68ed0ff292ebc96773daeceb66d9cbb21f9';
const HASH_3 = '8c89d0db522ca810f18d60cc00cfc0d0c17146e61979f9117966c3460838e786';

describe('ledger canonical JSON (RFC 8785) golden vectors', () => {
  it('encodes each event kind to the fixed canonical text: keys sorted, undefined dropped, no whitespace', () => {
    expect(canonicalJson(ISSUANCE)).toBe(ISSUANCE_JSON);
    expect(canonicalJson(CA_EVENT)).toBe(CA_EVENT_JSON);
    expect(canonicalJson(AUDIT_EVENT)).toBe(AUDIT_EVENT_JSON);
  });

  it('serialises numbers, strings and literals as RFC 8785 §3.2.2 shows', () => {
    const input = {
      numbers: [333333333.33333329, 1e30, 4.5, 2e-3, 0.000000000000000000000000001],
      string: '\u20ac$\u000F\nA\'B"\\\\"/',
      literals: [null, true, false],
    };
    expect(canonicalJson(input)).toBe(String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`);
    expect(canonicalJson({ zero: -0 })).toBe('{"zero":0}');
  });

  it('sorts keys by UTF-16 code units as RFC 8785 §3.2.3 shows', () => {
    const input = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    expect(canonicalJson(input)).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
        '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  it('refuses numbers that have no JSON form', () => {
    expect(() => canonicalJson({ n: Number.NaN })).toThrow(/not finite/);
    expect(() => canonicalJson({ n: Number.POSITIVE_INFINITY })).toThrow(/not finite/);
  });
});

describe('ledger record hash golden vectors', () => {
  it('starts the chain at 32 zero bytes', () => {
    expect(GENESIS_HASH).toBe('0000000000000000000000000000000000000000000000000000000000000000');
  });

  it('hashes {"event","prev","seq"} with SHA-256 over UTF-8, chaining each record to the one before', () => {
    expect(recordHash(1, GENESIS_HASH, ISSUANCE_JSON)).toBe(HASH_1);
    expect(recordHash(2, HASH_1, CA_EVENT_JSON)).toBe(HASH_2);
    expect(recordHash(3, HASH_2, AUDIT_EVENT_JSON)).toBe(HASH_3);
  });

  it('signs checkpoints over the fixed context, sequence, head hash and time, newline-separated', () => {
    const message = checkpointMessage(2, HASH_2, 1767225602000);
    expect(message.subarray(0, 28).toString('hex')).toBe('6d65736863612d6c65646765722d636865636b706f696e742d76310a');
    // sha256sum of printf 'meshca-ledger-checkpoint-v1\n2\n<HASH_2>\n1767225602000'
    expect(createHash('sha256').update(message).digest('hex')).toBe('9a619bc8cf194d7d6ddd4e6afd0b25f71e4247a70fc241d556e6a1e5125664fc');
  });
});
