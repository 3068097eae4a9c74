// Every meshca subcommand, listed once.
import type { Command } from '../command.ts';
import { agentCommand } from './agent.ts';
import { caInitCommand } from './ca_init.ts';
import { serveCommand } from './serve.ts';
import { signCommand } from './sign.ts';
import { tokenMintCommand } from './token_mint.ts';
import { versionCommand } from './version.ts';

export const COMMANDS: readonly Command[] = [agentCommand, caInitCommand, serveCommand, signCommand, tokenMintCommand, versionCommand];
