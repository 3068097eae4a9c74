// `meshca version`
import { readFileSync } from 'node:fs';
import { defineCommand, report } from '../command.ts';

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export const versionCommand = defineCommand({
  path: ['version'],
  usage: 'meshca version [--json]',
  options: { settings: ['json'] },
  async run(values, ctx) {
    const data = { version: packageVersion(), node: process.version };
    report(ctx, values, `meshca ${data.version} (node ${data.node})`, data);
    return 0;
  },
});
