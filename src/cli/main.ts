// meshca's command line: finds the subcommand, loads its settings, runs it, and turns any error
// into one line on stderr and a non-zero exit.

import { formatHelp, loadSettings } from '../config/index.ts';
import { describeError, MeshcaError } from '../errors/index.ts';
import { systemClock } from '../time/index.ts';
import type { CommandContext } from './command.ts';
import { COMMANDS, type CommandEntry } from './commands/index.ts';

export const EXIT_USAGE = 2;
export const EXIT_FAILURE = 1;

function findCommand(commands: readonly CommandEntry[], argv: readonly string[]): { command?: CommandEntry; rest: string[] } {
  let best: CommandEntry | undefined;
  for (const cmd of commands) {
    if (cmd.path.every((word, i) => argv[i] === word) && (!best || cmd.path.length > best.path.length)) best = cmd;
  }
  return { ...(best ? { command: best } : {}), rest: argv.slice(best?.path.length ?? 0) };
}

/** Lists commands from their entries alone: help never loads a command's module. */
function listing(commands: readonly CommandEntry[]): string[] {
  const width = Math.max(...commands.map((c) => c.path.join(' ').length)) + 2;
  return commands.map((cmd) => `  ${cmd.path.join(' ').padEnd(width)} ${cmd.summary}`);
}

function overview(commands: readonly CommandEntry[]): string {
  const lines = ['Usage: meshca <command> [options]', '', 'meshca: a certificate authority and workload identity service for service meshes.', '', 'Commands:'];
  lines.push(...listing(commands), '', 'Run "meshca <command> --help" for its options; "meshca --version" prints the version.');
  return lines.join('\n');
}

/** `meshca root`, `meshca audit --help`: the group's commands with their summaries. */
function groupHelp(group: string, commands: readonly CommandEntry[]): string {
  const lines = [`Usage: meshca ${group} <command> [options]`, '', 'Commands:', ...listing(commands), '', `Run "meshca ${group} <command> --help" for its options.`];
  return lines.join('\n');
}

const HELP_WORDS = new Set(['--help', '-h', 'help']);

export async function main(argv: readonly string[], partial: Partial<CommandContext> = {}, commands: readonly CommandEntry[] = COMMANDS): Promise<number> {
  const ctx: CommandContext = {
    env: partial.env ?? process.env,
    clock: partial.clock ?? systemClock,
    stdout: partial.stdout ?? ((t) => process.stdout.write(t)),
    stderr: partial.stderr ?? ((t) => process.stderr.write(t)),
    signal: partial.signal ?? new AbortController().signal,
  };
  // "meshca help root status" is "meshca root status --help".
  if (argv[0] === 'help' && argv.length > 1) return main([...argv.slice(1), '--help'], ctx, commands);
  if (argv.length === 0 || HELP_WORDS.has(argv[0]!)) {
    ctx.stdout(`${overview(commands)}\n`);
    return argv.length === 0 ? EXIT_USAGE : 0;
  }
  if (argv[0] === '--version' || argv[0] === '-V') return main(['version', ...argv.slice(1)], ctx, commands);
  const { command: entry, rest } = findCommand(commands, argv);
  if (!entry) {
    const group = commands.filter((c) => c.path.length > 1 && c.path[0] === argv[0]);
    if (group.length > 0 && (argv.length === 1 || HELP_WORDS.has(argv[1]!))) {
      // A group alone is a question about what it holds: help on stdout, exit 2 unless asked for.
      ctx.stdout(`${groupHelp(argv[0]!, group)}\n`);
      return argv.length === 1 ? EXIT_USAGE : 0;
    }
    const hint = group.length > 0 ? `; "meshca ${argv[0]}" has ${group.map((c) => c.path.slice(1).join(' ')).join(', ')}` : '; run "meshca --help"';
    const words = argv.slice(0, 2).filter((w) => !w.startsWith('-'));
    ctx.stderr(words.length === 0 ? `meshca: unknown option ${argv[0]}${hint}\n` : `meshca: unknown command "${words.join(' ')}"${hint}\n`);
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
