// The meshca command line run in-process for security tests: real settings loading, real key
// store, output captured.

import { main } from '../../src/cli/main.ts';

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export async function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { env, stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

/** A development token for ns/sa from the key store's dev issuer. */
export async function mintToken(keys: string, ns: string, sa: string): Promise<string> {
  const r = await cli(['token', 'mint', '--keys', keys, '--ns', ns, '--sa', sa]);
  if (r.code !== 0) throw new Error(`token mint failed: ${r.stderr}`);
  return r.stdout.trim();
}
