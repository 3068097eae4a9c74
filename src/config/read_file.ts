// Reading a file a setting names (--csr, --root-cert, --config…): one error shape everywhere,
// naming the setting, the path and the reason, never the content.

import { readFileSync } from 'node:fs';
import { MeshcaError } from '../errors/index.ts';

export function readSettingFile(path: string, setting: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new MeshcaError('BAD_CONFIG', `${setting} ${path}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
}
