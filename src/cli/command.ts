// The shape of a meshca subcommand. Each lives in src/cli/commands/<name>.ts and is listed once, with
// its one-line summary, in src/cli/commands/index.ts, which loads only the module of the command run. `run` gets validated, frozen settings and a context; it prints one or
// two human lines (or JSON with --json) and returns the exit code.

import type { CommandOptions, Settings } from '../config/index.ts';
import type { Clock } from '../time/index.ts';

export interface CommandContext {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly clock: Clock;
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Aborted on SIGINT/SIGTERM for long-running commands (serve, agent). */
  readonly signal: AbortSignal;
}

export interface Command<O extends CommandOptions = CommandOptions> {
  /** Words after `meshca`, e.g. ["root", "status"]. */
  readonly path: readonly string[];
  readonly usage: string;
  readonly options: O;
  /** `values` is typed from the settings table: defaulted and required settings are always set. */
  run(values: Settings<O>, ctx: CommandContext, positionals: string[]): Promise<number>;
}

/** Declares a command; its settings' types follow from `options`, so `run` needs no `!`. */
export function defineCommand<const O extends CommandOptions>(command: Command<O>): Command {
  return command as unknown as Command;
}

/** Prints `data` as JSON with --json, else the human line(s). */
export function report(ctx: CommandContext, values: { readonly json?: boolean }, human: string, data: unknown): void {
  if (values.json) ctx.stdout(`${JSON.stringify(data, null, 2)}\n`);
  else ctx.stdout(`${human}\n`);
}
