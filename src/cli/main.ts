// meshca's command line: finds the subcommand, loads its settings, runs it, and turns any error
// into one line on stderr and a non-zero exit.

import { formatHelp, loadSettings } from '../config/index.ts';
import { describeError, MeshcaError } from '../errors/index.ts';
import { systemClock } from '../time/index.ts';
import type { CommandContext } from './command.ts';
import { COMMANDS, type CommandEntry } from './commands/index.ts';

export const EXIT_USAGE = 2;
export const EXIT_FAILURE = 1;

function findCommand(argv: readonly string[]): { command?: CommandEntry; rest: string[] } {
  let best: CommandEntry | undefined;
  for (const cmd of COMMANDS) {
    if (cmd.path.every((word, i) => argv[i] === word) && (!best || cmd.path.length > best.path.length)) best = cmd;
  }
  return { ...(best ? { command: best } : {}), rest: argv.slice(best?.path.length ?? 0) };
}

function overview(): string {
  const lines = ['Usage: meshca <command> [options]', '', 'meshca: a certificate authority and workload identity service for service meshes.', '', 'Commands:'];
  const width = Math.max(...COMMANDS.map((c) => c.path.join(' ').length)) + 2;
  for (const cmd of COMMANDS) lines.push(`  ${cmd.path.join(' ').padEnd(width)} ${cmd.summary}`);
  lines.push('', 'Run "meshca <command> --help" for its options.');
  return lines.join('\n');
}

export async function main(argv: readonly string[], partial: Partial<CommandContext> = {}): Promise<number> {
  const ctx: CommandContext = {
    env: partial.env ?? process.env,
    clock: partial.clock ?? systemClock,
    stdout: partial.stdout ?? ((t) => process.stdout.write(t)),
    stderr: partial.stderr ?? ((t) => process.stderr.write(t)),
    signal: partial.signal ?? new AbortController().signal,
  };
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    ctx.stdout(`${overview()}\n`);
    return argv.length === 0 ? EXIT_USAGE : 0;
  }
  const { command: entry, rest } = findCommand(argv);
  if (!entry) {
    const group = COMMANDS.filter((c) => c.path[0] === argv[0]);
    const hint = group.length > 0 ? `; try ${group.map((c) => `"meshca ${c.path.join(' ')}"`).join(', ')}` : '; run "meshca --help"';
    ctx.stderr(`meshca: unknown command "${argv.slice(0, 2).join(' ')}"${hint}\n`);
    return EXIT_USAGE;
  }
  const name = `meshca ${entry.path.join(' ')}`;
  try {
    const command = await entry.load();
    const { values, positionals } = loadSettings(command.options, rest, ctx.env);
    if (values.help) {
      ctx.stdout(`${formatHelp(command.usage, entry.summary, command.options)}\n`);
      return 0;
    }
    return await command.run(values, ctx, positionals);
  } catch (err) {
    ctx.stderr(`${name}: ${describeError(err)}\n`);
    return err instanceof MeshcaError && err.code === 'BAD_CONFIG' ? EXIT_USAGE : EXIT_FAILURE;
  }
}
