// PEM (RFC 7468) encoding and decoding for certificates, CSRs and keys.

import { MeshcaError } from '../errors/index.ts';

const LINE = 64;

export function toPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  let body = '';
  for (let i = 0; i < b64.length; i += LINE) body += `${b64.slice(i, i + LINE)}\n`;
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

export interface PemBlock {
  label: string;
  der: Buffer;
}

export function decodePemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK)) {
    const body = m[2]!.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) {
      throw new MeshcaError('BAD_REQUEST', `PEM block "${m[1]}" is not valid base64`);
    }
    blocks.push({ label: m[1]!, der: Buffer.from(body, 'base64') });
  }
  return blocks;
}

/** Decodes exactly one PEM block with one of the given labels; `what` names it in errors. */
export function decodeSinglePem(text: string, labels: readonly string[], what: string): Buffer {
  const blocks = decodePemBlocks(text);
  if (blocks.length === 0) throw new MeshcaError('BAD_REQUEST', `${what} is not PEM (no BEGIN/END block found)`);
  if (blocks.length > 1) throw new MeshcaError('BAD_REQUEST', `${what} holds ${blocks.length} PEM blocks; expected one`);
  const block = blocks[0]!;
  if (!labels.includes(block.label)) {
    throw new MeshcaError('BAD_REQUEST', `${what} is a PEM "${block.label}"; expected ${labels.join(' or ')}`);
  }
  return block.der;
}

/** Splits a PEM bundle into its certificates' DER. */
export function decodeCertificates(text: string, what: string): Buffer[] {
  const blocks = decodePemBlocks(text);
  const certs = blocks.filter((b) => b.label === 'CERTIFICATE').map((b) => b.der);
  if (certs.length === 0) throw new MeshcaError('BAD_CHAIN', `${what} holds no PEM certificate`);
  return certs;
}
