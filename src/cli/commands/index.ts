// Every meshca subcommand, listed once.
import type { Command } from '../command.ts';
import { caInitCommand } from './ca_init.ts';
import { signCommand } from './sign.ts';
import { versionCommand } from './version.ts';

export const COMMANDS: readonly Command[] = [caInitCommand, signCommand, versionCommand];
