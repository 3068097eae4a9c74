// Every setting meshca reads, in one table: its flag, its MESHCA_* variable, its type, default and
// help. Commands pick the settings they accept by name. Nothing else in meshca reads process.env.

export type SettingType = 'string' | 'duration' | 'int' | 'number' | 'bool' | 'list' | 'enum';

export interface SettingSpec {
  /** Flag name without the dashes; the env variable is MESHCA_ + upper snake case of it. */
  readonly flag: string;
  readonly type: SettingType;
  readonly help: string;
  readonly default?: string | number | boolean | readonly string[];
  readonly choices?: readonly string[];
  /** One-letter alias, e.g. h for help. */
  readonly short?: string;
}

function s<T extends SettingType>(flag: string, type: T, help: string, extra: Partial<SettingSpec> = {}): SettingSpec & { readonly type: T } {
  return { ...extra, flag, type, help };
}

/** All settings, keyed by flag. Extend here; never rename (design.md fixes the common names). */
export const SETTINGS = {
  // Common
  config: s('config', 'string', 'YAML file with settings (flags and MESHCA_* variables take precedence)'),
  json: s('json', 'bool', 'print machine-readable JSON', { default: false }),
  help: s('help', 'bool', 'show this help', { default: false, short: 'h' }),
  'log-level': s('log-level', 'enum', 'log level', { default: 'info', choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] }),
  keys: s('keys', 'string', 'key directory (Istio cacerts layout)', { default: 'keys' }),
  'trust-domain': s('trust-domain', 'string', 'SPIFFE trust domain', { default: 'cluster.local' }),
  db: s('db', 'string', 'ledger: sqlite:<path> or postgres://…', { default: 'sqlite:data/meshca.db' }),
  listen: s('listen', 'string', 'gRPC/TLS listen address (host:port; port 0 picks one)', { default: '0.0.0.0:15012' }),
  'http-listen': s('http-listen', 'string', 'HTTP listen address for /healthz, /readyz, /metrics', { default: '0.0.0.0:15014' }),
  audience: s('audience', 'string', 'token audience the CA accepts / the token is minted for', { default: 'meshca' }),
  kubeconfig: s('kubeconfig', 'string', 'kubeconfig file (default: in-cluster config)'),
  // CA material
  'key-type': s('key-type', 'enum', 'key algorithm', { default: 'ec-p256', choices: ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'] }),
  'root-ttl': s('root-ttl', 'duration', 'root certificate lifetime', { default: '3650d' }),
  'ca-ttl': s('ca-ttl', 'duration', 'intermediate certificate lifetime', { default: '365d' }),
  org: s('org', 'string', 'organization name in CA certificates', { default: 'meshca' }),
  'root-cert': s('root-cert', 'string', 'root certificate PEM (ca init/root prepare: an existing root; agent: the root to trust)'),
  'root-key': s('root-key', 'string', 'root private key PEM (with --root-cert)'),
  force: s('force', 'bool', 'do it even though it is unsafe or would overwrite', { default: false }),
  // Issuance
  ttl: s('ttl', 'duration', 'certificate lifetime to issue / ask for', { default: '1h' }),
  'default-ttl': s('default-ttl', 'duration', 'lifetime when a request asks for none', { default: '1h' }),
  'max-ttl': s('max-ttl', 'duration', 'longest lifetime the CA grants; longer requests are refused', { default: '24h' }),
  csr: s('csr', 'string', 'CSR file (PEM)'),
  id: s('id', 'string', 'SPIFFE ID'),
  // Server
  san: s('san', 'list', 'extra DNS names for the CA serving certificate (repeatable or comma-separated)', { default: [] }),
  namespace: s('namespace', 'string', 'namespace the CA runs in (for meshca.<namespace>.svc)', { default: 'meshca-system' }),
  'jwks-file': s('jwks-file', 'string', 'JWKS file of trusted token issuers (JWT authenticator)'),
  'jwks-url': s('jwks-url', 'string', 'JWKS URL of a trusted token issuer (JWT authenticator)'),
  issuer: s('issuer', 'string', 'expected token issuer (iss)'),
  'dev-tokens': s('dev-tokens', 'bool', 'trust tokens minted by "meshca token mint" (development only)', { default: true }),
  authn: s('authn', 'enum', 'Kubernetes token authentication: none, tokenreview, jwks or both', { default: 'none', choices: ['none', 'tokenreview', 'jwks', 'both'] }),
  'allow-legacy-tokens': s('allow-legacy-tokens', 'bool', 'accept secret-based service-account tokens (no exp/audience)', { default: false }),
  'token-cache-ttl': s('token-cache-ttl', 'duration', 'longest time a positive token review is cached', { default: '5m' }),
  'token-cache-size': s('token-cache-size', 'int', 'entries in the token review cache', { default: 100000 }),
  'kube-qps': s('kube-qps', 'number', 'Kubernetes API calls per second (client-side limit)', { default: 50 }),
  'kube-burst': s('kube-burst', 'int', 'Kubernetes API call burst', { default: 100 }),
  'oidc-issuer': s('oidc-issuer', 'string', 'cluster service-account issuer URL for OIDC discovery (jwks mode)'),
  'allow-namespaces': s('allow-namespaces', 'list', 'only these namespaces get identities (comma-separated)', { default: [] }),
  'deny-namespaces': s('deny-namespaces', 'list', 'these namespaces never get identities', { default: [] }),
  'deny-ids': s('deny-ids', 'list', 'SPIFFE IDs that never get certificates', { default: [] }),
  sds: s('sds', 'bool', 'also serve SDS on the gRPC port to token-bearing proxies (CA makes the key)', { default: false }),
  auditors: s('auditors', 'list', 'SPIFFE IDs allowed to query the ledger over gRPC', { default: [] }),
  admins: s('admins', 'list', 'SPIFFE IDs allowed to use the admin API (root rotation)', { default: [] }),
  'keys-poll': s('keys-poll', 'duration', 'how often serve checks the key store for a change made by another process (rotation)', { default: '1s' }),
  'root-expiry-warning': s('root-expiry-warning', 'duration', 'warn (log and metric) when the active root expires within this long', { default: '30d' }),
  'ca-expiry-warning': s('ca-expiry-warning', 'duration', 'warn (log and metric) when the active intermediate expires within this long', { default: '7d' }),
  'distribute-bundle': s('distribute-bundle', 'enum', 'keep the meshca-root-cert ConfigMap in every namespace (auto: when running in a Kubernetes pod)', { default: 'auto', choices: ['auto', 'on', 'off'] }),
  retain: s('retain', 'duration', 'ledger retention (0 keeps everything)', { default: '0s' }),
  'shutdown-grace': s('shutdown-grace', 'duration', 'how long shutdown waits for requests in flight', { default: '10s' }),
  // Token minting (development)
  ns: s('ns', 'string', 'namespace'),
  sa: s('sa', 'string', 'service account'),
  pod: s('pod', 'string', 'pod name'),
  aud: s('aud', 'string', 'token audience', { default: 'meshca' }),
  // Agent
  'ca-addr': s('ca-addr', 'string', 'CA address host:port', { default: 'meshca.meshca-system.svc:15012' }),
  'ca-name': s('ca-name', 'string', 'name expected in the CA serving certificate (default: host of --ca-addr)'),
  'token-file': s('token-file', 'string', 'projected service-account token file', { default: '/var/run/secrets/tokens/meshca-token' }),
  'sds-socket': s('sds-socket', 'string', 'Unix socket the agent serves SDS on', { default: '/var/run/secrets/workload-spiffe-uds/socket' }),
  'output-dir': s('output-dir', 'string', 'also write tls.crt, tls.key and ca.crt here on every renewal'),
  'bundle-poll': s('bundle-poll', 'duration', 'how often the agent re-reads --root-cert for trust bundle changes', { default: '1m' }),
  // Audit
  since: s('since', 'string', 'from this time (ISO 8601 or a duration ago, e.g. 24h)'),
  until: s('until', 'string', 'up to this time (ISO 8601 or a duration ago)'),
  serial: s('serial', 'string', 'certificate serial (hex)'),
  denied: s('denied', 'bool', 'only denied requests', { default: false }),
  limit: s('limit', 'int', 'at most this many records', { default: 100 }),
  csv: s('csv', 'bool', 'print CSV', { default: false }),
  'checkpoint-every': s('checkpoint-every', 'int', 'sign a ledger checkpoint after this many records', { default: 1000 }),
  'checkpoint-interval': s('checkpoint-interval', 'duration', 'or once the oldest unsigned record is this old', { default: '60s' }),
} as const satisfies Record<string, SettingSpec>;

export type SettingName = keyof typeof SETTINGS;

export function envNameOf(flag: string): string {
  return `MESHCA_${flag.toUpperCase().replace(/-/g, '_')}`;
}
