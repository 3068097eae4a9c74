// Every meshca subcommand, listed once.
import type { Command } from '../command.ts';
import { agentCommand } from './agent.ts';
import { auditExportCommand } from './audit_export.ts';
import { auditPruneCommand } from './audit_prune.ts';
import { auditQueryCommand } from './audit_query.ts';
import { auditVerifyCommand } from './audit_verify.ts';
import { caInitCommand } from './ca_init.ts';
import { requestCommand } from './request.ts';
import { rootCommands } from './root.ts';
import { serveCommand } from './serve.ts';
import { signCommand } from './sign.ts';
import { tokenMintCommand } from './token_mint.ts';
import { versionCommand } from './version.ts';

export const COMMANDS: readonly Command[] = [agentCommand, auditExportCommand, auditPruneCommand, auditQueryCommand, auditVerifyCommand, caInitCommand, requestCommand, ...rootCommands, serveCommand, signCommand, tokenMintCommand, versionCommand];
