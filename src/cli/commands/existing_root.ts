// --root-cert with --root-key: an existing root to put the CA under (ca init, root prepare).
import { MeshcaError } from '../../errors/index.ts';

export interface ExistingRootPaths {
  readonly certPath: string;
  readonly keyPath: string;
}

/** Both files or neither; one without the other is a usage error. */
export function existingRootPaths(v: { readonly 'root-cert'?: string; readonly 'root-key'?: string }): ExistingRootPaths | undefined {
  const certPath = v['root-cert'];
  const keyPath = v['root-key'];
  if (certPath === undefined && keyPath === undefined) return undefined;
  if (certPath === undefined || keyPath === undefined) throw new MeshcaError('BAD_CONFIG', '--root-cert and --root-key go together');
  return { certPath, keyPath };
}
