// Issuance with the intermediate's key in a PKCS#11 token (SoftHSM2) beside the in-memory key:
// the same issueSvid path, sequential and with 8 in flight (the token's session pool is 4).
// Run with `npm run bench:pkcs11` (needs softhsm2); prints a table, writes no document.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPkcs11Custody } from '../src/pkcs11/index.ts';
import { createCsrPem, createIntermediateCa, createLocalSigner, createRootCa, generateKeyPair, issueSvid, LOCAL_KEY_CUSTODY, loadSigningAuthority, parseCsrPem, toPem, type KeyCustody } from '../src/pki/index.ts';
import { systemClock } from '../src/time/index.ts';
import { fmt, machineLine, measureRate } from './report.ts';

const DURATION_MS = Number(process.env.BENCH_SECONDS ?? 3) * 1000;
const IN_FLIGHT = 8;
const SPIFFE = 'spiffe://cluster.local/ns/bench/sa/bench';
const MODULE = ['/usr/lib/softhsm/libsofthsm2.so', '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so'].find((p) => existsSync(p));

async function issuanceRates(custody: KeyCustody): Promise<{ sequential: number; concurrent: number }> {
  const now = Date.now();
  const base = { trustDomain: 'cluster.local', organization: 'bench', keyType: 'ec-p256' as const, nowMs: now };
  const root = await createRootCa({ ...base, ttlMs: 3650 * 86400e3 });
  const inter = await createIntermediateCa({ ...base, ttlMs: 365 * 86400e3, rootCertificateDer: root.certificateDer, rootSigner: createLocalSigner(root.privateKey), rootNotAfterMs: now + 3650 * 86400e3, custody });
  const authority = loadSigningAuthority({ chainPem: toPem(inter.certificateDer, 'CERTIFICATE'), rootsPem: toPem(root.certificateDer, 'CERTIFICATE'), signer: custody.signerFor(inter.privateKey), nowMs: now });
  const csrPem = createCsrPem(generateKeyPair('ec-p256').privateKey);
  const issue = async () => {
    const csr = parseCsrPem(csrPem);
    return (await issueSvid(authority, SPIFFE, { spkiDer: csr.spkiDer, keyAlgorithm: csr.keyAlgorithm, ttlMs: 3600e3, nowMs: now })).pem;
  };
  const sequential = await measureRate(issue, DURATION_MS);
  const concurrent = IN_FLIGHT * (await measureRate(() => Promise.all(Array.from({ length: IN_FLIGHT }, issue)), DURATION_MS, 20));
  return { sequential, concurrent };
}

async function main(): Promise<void> {
  if (!MODULE) throw new Error('softhsm2 is not installed (apt-get install softhsm2)');
  const dir = mkdtempSync(join(tmpdir(), 'meshca-bench-hsm-'));
  try {
    mkdirSync(join(dir, 'tokens'));
    writeFileSync(join(dir, 'softhsm2.conf'), `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
    process.env.SOFTHSM2_CONF = join(dir, 'softhsm2.conf');
    execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'bench', '--pin', '1234', '--so-pin', '87654321'], { stdio: 'ignore' });
    writeFileSync(join(dir, 'pin'), '1234', { mode: 0o600 });
    const hsm = openPkcs11Custody(`pkcs11:token=bench;object=bench-intermediate?module-path=${MODULE}&pin-source=${join(dir, 'pin')}`, { clock: systemClock });
    const memory = await issuanceRates(LOCAL_KEY_CUSTODY);
    const token = await issuanceRates(hsm);
    hsm.close();
    process.stdout.write(
      [
        '## Issuance with the key in a PKCS#11 token (SoftHSM2)',
        '',
        `Parse and verify a P-256 CSR, build, sign with a P-256 intermediate key, encode PEM; ${DURATION_MS / 1000} s windows; sequential and ${IN_FLIGHT} in flight.`,
        '',
        '| intermediate key | issuances/s sequential | issuances/s, 8 in flight |',
        '| --- | ---: | ---: |',
        `| in memory (node:crypto) | ${fmt(memory.sequential)} | ${fmt(memory.concurrent)} |`,
        `| SoftHSM2 via pkcs11js | ${fmt(token.sequential)} | ${fmt(token.concurrent)} |`,
        '',
        `_Measured on ${machineLine()}._`,
        '',
      ].join('\n'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
