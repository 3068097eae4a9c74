// Every setting meshca reads, in one table: its flag, its MESHCA_* variable, its type, default and
// help. Commands pick the settings they accept by name. Nothing else in meshca reads process.env.
// A default is the owning module's named constant, never a second literal of it; a setting whose
// owner config must not load (the ledger, rotation) takes its default from the command's options.

// The owners' constants come from their folders' settings/ faces, which load no gRPC or ASN.1
// library: every command, `meshca version` included, loads this table (test/architecture).
import { DEFAULT_LEAF_TTL_MS, DEFAULT_MAX_RENEWAL_AGE_MS, MAX_LEAF_TTL_MS } from '../ca/settings/index.ts';
import { DEFAULT_CA_TTL_MS, DEFAULT_KEY_TYPE, DEFAULT_ROOT_TTL_MS, KEY_TYPES } from '../pki/settings/index.ts';
import type { SpiffeId } from '../spiffe/index.ts';
import {
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_PEER,
  DEFAULT_MAX_STREAMS_PER_CONNECTION,
  DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS,
  type ListenAddress,
} from '../transport/settings/index.ts';
import { MINUTE_MS, SECOND_MS } from '../time/index.ts';

/** What a setting's text becomes once parsed (durations are whole milliseconds). */
interface TypeValues {
  string: string;
  duration: number;
  int: number;
  number: number;
  bool: boolean;
  list: readonly string[];
  /** A list of Kubernetes namespace names (DNS-1123 labels). */
  namespaces: readonly string[];
  enum: string;
  'spiffe-ids': readonly SpiffeId[];
  /** host:port to listen on; port 0 picks a free one. */
  address: ListenAddress;
}

export type SettingType = keyof TypeValues;

/** A setting's key in SETTINGS is its flag without the dashes; its variable is MESHCA_ + upper snake case of it. */
export interface SettingSpec<T extends SettingType = SettingType> {
  readonly type: T;
  readonly help: string;
  /** Already parsed: milliseconds for a duration, a KeyType for --key-type. */
  readonly default?: TypeValues[T];
  readonly choices?: readonly string[];
  /** One-letter alias, e.g. h for help. */
  readonly short?: string;
  /**
   * Given on the command line only, never from MESHCA_* or --config: what one invocation asks
   * (a filter, a CSR, --force), which a shared environment or file must not decide for every run.
   */
  readonly flagOnly?: boolean;
}

type Extra<T extends SettingType> = Omit<Partial<SettingSpec<T>>, 'type' | 'help'>;

function s<T extends SettingType, const E extends Extra<T> = {}>(type: T, help: string, extra?: E): { readonly type: T; readonly help: string } & E {
  return { ...(extra as E), type, help };
}

const NONE: readonly never[] = [];

/**
 * All settings, keyed by flag. Extend here; never rename (docs/architecture.md, "Contracts", fixes
 * the common names). One name, one meaning: a setting means the same in every command that accepts
 * it, so one MESHCA_* variable or one shared --config file can serve every command.
 */
export const SETTINGS = {
  // Common
  config: s('string', 'YAML file with settings (flags and MESHCA_* variables take precedence)'),
  json: s('bool', 'print machine-readable JSON', { default: false }),
  help: s('bool', 'show this help', { default: false, short: 'h', flagOnly: true }),
  'log-level': s('enum', 'log level', { default: 'info', choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] }),
  keys: s('string', 'key store: a directory (Istio cacerts layout) or k8s-secret:<namespace>/<name>', { default: 'keys' }),
  'trust-domain': s('string', 'SPIFFE trust domain: named once at ca init (default cluster.local), read from the key store afterwards, where a given value must agree'),
  // No literal default: it follows --keys (ledger's defaultLedgerUrl), so two CAs never share one ledger.
  db: s('string', 'ledger: sqlite:<path> or postgres://… (default sqlite:<keys>/ledger.db, one ledger per key directory)'),
  'new-ledger': s('bool', "start a new, empty ledger although this CA's ledger key anchored another one (recorded in its first record)", { default: false }),
  listen: s('address', 'gRPC/TLS listen address (host:port; port 0 picks one)', { default: { host: '0.0.0.0', port: 15012 } }),
  'http-listen': s('address', 'HTTP listen address for /healthz, /readyz, /metrics', { default: { host: '0.0.0.0', port: 15014 } }),
  audience: s('list', 'workload token audiences (serve: any one is accepted, e.g. istio-ca,meshca for Istio sidecars; token mint: the ones it mints)', { default: ['meshca'] }),
  kubeconfig: s('string', 'kubeconfig file (default: in-cluster config)'),
  // CA material
  'bundle-endpoint': s('string', 'serve the SPIFFE bundle endpoint for federating peers on host:port over TLS (https_spiffe, with the SVID spiffe://<td>/ns/<namespace>/sa/meshca); default off'),
  'federate-with': s('list', 'trust these trust domains: <td>=https://host:port/path[#<endpoint SPIFFE ID>] (https_spiffe) or <td>=https_web+https://… (repeatable)', { default: NONE }),
  'federate-bundle': s('list', "a federated peer's roots to trust its endpoint with the first time: <td>=<PEM file> (repeatable)", { default: NONE }),
  'federated-in-rootca': s('bool', "also put federated trust domains' roots in the bundle workloads get (ROOTCA), for validators that do not know SPIFFE", { default: false }),
  chain: s('string', 'ca install: the certificates above the signed intermediate, up to and including the offline root (PEM)', { flagOnly: true }),
  signer: s('string', "keep the intermediate's key in a PKCS#11 token: pkcs11:token=<label>;object=<key label>?module-path=<library>&pin-source=<file> (RFC 7512; the PIN comes from that file or MESHCA_SIGNER_PIN, never a flag); default: ca-key.pem in --keys"),
  'key-type': s('enum', 'key algorithm', { default: DEFAULT_KEY_TYPE, choices: KEY_TYPES }),
  'root-ttl': s('duration', 'root certificate lifetime', { default: DEFAULT_ROOT_TTL_MS }),
  'ca-ttl': s('duration', 'intermediate certificate lifetime', { default: DEFAULT_CA_TTL_MS }),
  org: s('string', 'organization name in CA certificates', { default: 'meshca' }),
  'external-root-cert': s('string', 'your own root certificate PEM to put the CA under (with --external-root-key)', { flagOnly: true }),
  'external-root-key': s('string', 'the private key PEM of --external-root-cert', { flagOnly: true }),
  force: s('bool', 'do it even though it is unsafe or would overwrite', { default: false, flagOnly: true }),
  // Issuance
  ttl: s('duration', 'certificate lifetime to ask for (sign: to issue)', { default: DEFAULT_LEAF_TTL_MS }),
  'default-ttl': s('duration', 'lifetime when a request asks for none', { default: DEFAULT_LEAF_TTL_MS }),
  'max-ttl': s('duration', 'longest lifetime the CA grants; longer requests are refused', { default: MAX_LEAF_TTL_MS }),
  'max-renewal-age': s('duration', 'renewals over mTLS keep an identity at most this long after its last token grant; then a fresh token is needed', { default: DEFAULT_MAX_RENEWAL_AGE_MS }),
  csr: s('string', 'CSR file (PEM)', { flagOnly: true }),
  id: s('string', "workload's SPIFFE ID (sign: the one to issue; audit: records about it)", { flagOnly: true }),
  // Server
  san: s('list', 'extra DNS names or IP addresses for the CA serving certificate (repeatable or comma-separated)', { default: NONE }),
  namespace: s('string', 'namespace the CA runs in (for meshca.<namespace>.svc)', { default: 'meshca-system' }),
  'cluster-domain': s('string', 'Kubernetes cluster domain (for meshca.<namespace>.svc.<cluster-domain>)', { default: 'cluster.local' }),
  'cluster-id': s('string', "this cluster's id: requests whose ClusterID header is absent or this id are reviewed here (Istio's default)", { default: 'Kubernetes' }),
  cluster: s('list', 'another cluster whose tokens the CA reviews: <id>=<kubeconfig file>, or a directory of kubeconfigs named by cluster id (repeatable; chosen by the ClusterID header)', { default: NONE }),
  'trust-domain-aliases': s('list', 'trust domains accepted as this CA\'s own in identities peers name (ImpersonatedIdentity)', { default: NONE }),
  'trusted-node-accounts': s('list', 'node agents (ztunnel) allowed to ask for the identities of pods on their node: <namespace>/<service account>,…', { default: NONE }),
  'jwks-file': s('string', 'JWKS file of trusted token issuers (JWT authenticator)'),
  'jwks-url': s('string', 'JWKS URL of a trusted token issuer (JWT authenticator)'),
  issuer: s('string', 'expected token issuer (iss)'),
  'dev-tokens': s('bool', 'trust tokens minted by "meshca token mint" (development only)', { default: true }),
  authn: s('enum', 'Kubernetes token authentication: none, tokenreview, jwks or both', { default: 'none', choices: ['none', 'tokenreview', 'jwks', 'both'] }),
  'allow-legacy-tokens': s('bool', 'accept secret-based service-account tokens (no exp/audience)', { default: false }),
  'token-cache-ttl': s('duration', 'longest time a positive token review is cached', { default: 5 * MINUTE_MS }),
  'token-cache-size': s('int', 'entries in the token review cache', { default: 100000 }),
  'kube-qps': s('number', 'Kubernetes API calls per second (client-side limit)', { default: 50 }),
  'kube-burst': s('int', 'Kubernetes API call burst', { default: 100 }),
  'oidc-issuer': s('string', 'cluster service-account issuer URL for OIDC discovery (jwks mode)'),
  'allow-namespaces': s('namespaces', 'only these namespaces get identities (comma-separated)', { default: NONE }),
  'deny-namespaces': s('namespaces', 'these namespaces never get identities', { default: NONE }),
  'deny-ids': s('spiffe-ids', 'SPIFFE IDs that never get certificates', { default: NONE }),
  sds: s('bool', 'also serve SDS on the gRPC port to token-bearing proxies (CA makes the key)', { default: false }),
  auditors: s('spiffe-ids', 'SPIFFE IDs allowed to query the ledger over gRPC', { default: NONE }),
  admins: s('spiffe-ids', 'SPIFFE IDs allowed to use the admin API (root rotation)', { default: NONE }),
  'keys-poll': s('duration', 'how often serve checks the key store for a change made by another process (rotation)'),
  'root-expiry-warning': s('duration', 'warn (log and metric) when the active root expires within this long'),
  'ca-expiry-warning': s('duration', 'warn (log and metric) when the active intermediate expires within this long'),
  'leader-election': s('enum', 'elect one replica (the meshca-leader Lease) for the singleton duties: intermediate auto-rotation and the injection webhook caBundle (auto: when running in a Kubernetes pod)', { default: 'auto', choices: ['auto', 'on', 'off'] }),
  'leader-lease': s('duration', 'how long the meshca-leader Lease lasts without renewal (renewed every third of it); a dead leader is replaced within it'),
  injector: s('bool', 'also answer the agent-injection webhook (AdmissionReview over HTTPS) on --injector-listen', { default: false }),
  'injector-listen': s('address', 'HTTPS listen address of the agent-injection webhook', { default: { host: '0.0.0.0', port: 15017 } }),
  'distribute-bundle': s('enum', 'keep the meshca-root-cert ConfigMap in every namespace (auto: when running in a Kubernetes pod)', { default: 'auto', choices: ['auto', 'on', 'off'] }),
  retain: s('duration', 'ledger retention (0 keeps everything)', { default: 0 }),
  'max-connections': s('int', 'open gRPC connections the CA accepts at once (further ones are closed at once)', { default: DEFAULT_MAX_CONNECTIONS }),
  'max-connections-per-peer': s('int', 'open gRPC connections accepted at once from one IP address', { default: DEFAULT_MAX_CONNECTIONS_PER_PEER }),
  'max-streams-per-connection': s('int', 'concurrent gRPC calls and streams per connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS)', { default: DEFAULT_MAX_STREAMS_PER_CONNECTION }),
  'tls-handshake-timeout': s('duration', 'a connection that has not finished its TLS handshake by then is closed', { default: DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS }),
  workers: s('string', 'processes serving the gRPC port (node:cluster): 1 (one process), a number, or auto (one per CPU this process may use, its CPU limit included); the primary writes the one ledger and serves --http-listen', { default: '1' }),
  'shutdown-grace': s('duration', 'how long shutdown waits for requests in flight', { default: 10 * SECOND_MS }),
  // A workload (token mint: the token's subject; audit: records about it)
  ns: s('string', "workload's namespace (not --namespace, the CA's own)", { flagOnly: true }),
  sa: s('string', "workload's service account", { flagOnly: true }),
  pod: s('string', "workload's pod name", { flagOnly: true }),
  'token-ttl': s('duration', 'lifetime of the development token'),
  // Clients of a running CA (agent, request, and the remote audit and root commands)
  'ca-addr': s('string', 'CA address host:port (agent, request)', { default: 'meshca.meshca-system.svc:15012' }),
  server: s('string', 'ask the running CA at host:port over its audit/admin gRPC API (mTLS with --cert/--key, or --token-file; --root-cert to trust it) instead of reading --db/--keys here'),
  'root-cert': s('string', "root certificate(s) PEM to trust for the CA's serving certificate"),
  'ca-name': s('string', 'name expected in the CA serving certificate (default: host of the CA address)'),
  cert: s('string', 'client certificate chain PEM (leaf first) to authenticate with over mutual TLS, e.g. one meshca issued; ca install: the intermediate the offline root signed'),
  key: s('string', 'private key PEM of --cert'),
  'token-file': s('string', 'service-account token file to authenticate with', { default: '/var/run/secrets/tokens/meshca-token' }),
  'sds-socket': s('string', 'Unix socket the agent serves SDS on', { default: '/var/run/secrets/workload-spiffe-uds/socket' }),
  'output-dir': s('string', 'also write tls.crt, tls.key and ca.crt here on every renewal'),
  'bundle-poll': s('duration', 'how often the agent re-reads --root-cert for trust bundle changes', { default: MINUTE_MS }),
  // Injection (meshca inject, serve --injector)
  file: s('string', 'manifest to inject the agent into (- reads stdin)', { short: 'f', flagOnly: true }),
  'agent-image': s('string', 'image of the injected agent', { default: 'meshca/meshca:0.1.0' }),
  // Audit
  since: s('string', 'from this time (ISO 8601 or a duration ago, e.g. 24h)', { flagOnly: true }),
  until: s('string', 'up to this time (ISO 8601; audit: or a duration ago; deny add: or a duration from now)', { flagOnly: true }),
  reason: s('string', 'why (deny add: shown by deny list and kept in the ledger)', { flagOnly: true }),
  serial: s('string', 'certificate serial (hex)', { flagOnly: true }),
  denied: s('bool', 'only denied requests', { default: false, flagOnly: true }),
  limit: s('int', 'at most this many records (more than 10000 are read in pages)', { flagOnly: true }),
  csv: s('bool', 'print CSV', { default: false }),
  'checkpoint-every': s('int', 'sign a ledger checkpoint after this many records'),
  'checkpoint-interval': s('duration', 'or once the oldest unsigned record is this old'),
} as const satisfies Record<string, SettingSpec>;

export type SettingName = keyof typeof SETTINGS;

type SpecOf<K extends SettingName> = (typeof SETTINGS)[K];

/** The parsed value of a setting: an enum's own choices, e.g. KeyType for --key-type. */
export type SettingValue<K extends SettingName> = SpecOf<K> extends { readonly choices: readonly (infer C)[] } ? C : TypeValues[SpecOf<K>['type']];

/** Settings that always have a value, from the table's default. */
export type DefaultedSetting = { [K in SettingName]: SpecOf<K> extends { readonly default: unknown } ? K : never }[SettingName];

export function envNameOf(flag: string): string {
  return `MESHCA_${flag.toUpperCase().replace(/-/g, '_')}`;
}
