// --external-root-cert with --external-root-key: an existing root to put the CA under (ca init,
// root prepare). Not --root-cert, which everywhere else names the root a client trusts.
import { MeshcaError } from '../../errors/index.ts';

export interface ExistingRootPaths {
  readonly certPath: string;
  readonly keyPath: string;
}

/** Both files or neither; one without the other is a usage error. */
export function existingRootPaths(v: { readonly 'external-root-cert'?: string; readonly 'external-root-key'?: string }): ExistingRootPaths | undefined {
  const certPath = v['external-root-cert'];
  const keyPath = v['external-root-key'];
  if (certPath === undefined && keyPath === undefined) return undefined;
  if (certPath === undefined || keyPath === undefined) throw new MeshcaError('BAD_CONFIG', '--external-root-cert and --external-root-key go together');
  return { certPath, keyPath };
}
