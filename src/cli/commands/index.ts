// Every meshca subcommand, listed once: its words, its one-line summary, and how to load it. A
// command's module (and everything it imports: the ledger, the Kubernetes client, the server) is
// loaded only when that command runs, so `meshca agent` in every pod loads what the agent uses and
// nothing else (test/architecture checks it).
import type { Command } from '../command.ts';

export interface CommandEntry {
  /** Words after `meshca`, e.g. ["root", "status"]. */
  readonly path: readonly string[];
  readonly summary: string;
  load(): Promise<Command>;
}

export const COMMANDS: readonly CommandEntry[] = [
  { path: ['agent'], summary: "get this workload's certificate from the CA and serve it to Envoy over SDS, renewing it before it expires", load: async () => (await import('./agent.ts')).agentCommand },
  { path: ['audit', 'export'], summary: 'write ledger records as JSON lines (oldest first) to stdout', load: async () => (await import('./audit_export.ts')).auditExportCommand },
  { path: ['audit', 'prune'], summary: 'remove ledger records older than --retain, keeping the chain verifiable', load: async () => (await import('./audit_prune.ts')).auditPruneCommand },
  { path: ['audit', 'query'], summary: 'list ledger records matching the filters, newest first', load: async () => (await import('./audit_query.ts')).auditQueryCommand },
  { path: ['audit', 'verify'], summary: 'recompute the ledger hash chain, check signed checkpoints, name the first tampered record', load: async () => (await import('./audit_verify.ts')).auditVerifyCommand },
  { path: ['ca', 'csr'], summary: "make the intermediate's key (here or in the --signer token) and print its CSR for a root kept offline", load: async () => (await import('./ca_offline.ts')).caCsrCommand },
  { path: ['ca', 'install'], summary: 'check the intermediate an offline root signed (key, chain, path length, validity) and install it', load: async () => (await import('./ca_offline.ts')).caInstallCommand },
  { path: ['ca', 'init'], summary: 'make a root and intermediate CA (or an intermediate under your root) in the key directory', load: async () => (await import('./ca_init.ts')).caInitCommand },
  { path: ['deny', 'add'], summary: 'refuse an identity, a namespace or a service account from now on (every serve follows within 5 s)', load: async () => (await import('./deny.ts')).denyAddCommand },
  { path: ['deny', 'list'], summary: 'show the runtime deny list and the static --deny-ids / --deny-namespaces', load: async () => (await import('./deny.ts')).denyListCommand },
  { path: ['deny', 'remove'], summary: 'take an entry off the runtime deny list', load: async () => (await import('./deny.ts')).denyRemoveCommand },
  { path: ['inject'], summary: "print manifests with the meshca agent added to every workload's pods, as the injection webhook adds it", load: async () => (await import('./inject.ts')).injectCommand },
  { path: ['request'], summary: 'ask a running CA for a certificate (with a token, or renewing over mTLS with --cert/--key) and print the chain', load: async () => (await import('./request.ts')).requestCommand },
  { path: ['root', 'status'], summary: 'show every root and intermediate, the trust bundle being distributed and the next safe rotation step', load: async () => (await import('./root.ts')).rootStatusCommand },
  { path: ['root', 'prepare'], summary: 'make a new root and its intermediate and add the root to the trust bundle (it signs nothing yet)', load: async () => (await import('./root.ts')).rootPrepareCommand },
  { path: ['root', 'activate'], summary: 'sign new certificates with the prepared root (refused until its bundle has been out for --max-ttl)', load: async () => (await import('./root.ts')).rootActivateCommand },
  { path: ['root', 'retire'], summary: 'remove the previous root from the trust bundle (refused while anything it signed can be valid)', load: async () => (await import('./root.ts')).rootRetireCommand },
  { path: ['root', 'rotate-intermediate'], summary: 'make a new intermediate under the active root and sign with it now (serve also does this on schedule)', load: async () => (await import('./root.ts')).rootRotateIntermediateCommand },
  { path: ['serve'], summary: 'run the certificate authority (gRPC/TLS CreateCertificate, /healthz, /readyz, /metrics)', load: async () => (await import('./serve.ts')).serveCommand },
  { path: ['sign'], summary: 'issue a certificate for a CSR and print the chain PEM (leaf, intermediate, root)', load: async () => (await import('./sign.ts')).signCommand },
  { path: ['token', 'mint'], summary: 'mint a development service-account token that "meshca serve --dev-tokens" trusts (development only)', load: async () => (await import('./token_mint.ts')).tokenMintCommand },
  { path: ['version'], summary: 'print the meshca version', load: async () => (await import('./version.ts')).versionCommand },
];
