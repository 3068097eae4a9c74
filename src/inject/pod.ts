// What injecting the meshca agent into a pod means, as a pure function of the pod: the agent as a
// native sidecar (an init container with restartPolicy Always), its projected token, the SDS
// socket's emptyDir shared with the containers that ask for it, and the root ConfigMap. It never
// touches a pod that opted out or already has the agent, and never edits the app's containers
// beyond adding the socket mount.

import { MeshcaError } from '../errors/index.ts';

export const INJECT_ANNOTATION = 'meshca.io/inject';
/** Comma-separated container names that get the SDS socket; default: every container. */
export const SDS_CONTAINERS_ANNOTATION = 'meshca.io/sds-containers';
export const INJECTED_ANNOTATION = 'meshca.io/injected';
export const AGENT_CONTAINER = 'meshca-agent';
export const TOKEN_VOLUME = 'meshca-token';
export const SDS_VOLUME = 'workload-spiffe-uds';
export const ROOT_VOLUME = 'meshca-root-cert';
export const TOKEN_DIR = '/var/run/secrets/tokens';
export const TOKEN_FILE = 'meshca-token';
export const SDS_DIR = '/var/run/secrets/workload-spiffe-uds';
export const ROOT_DIR = '/var/run/secrets/meshca';
export const ROOT_CONFIGMAP = 'meshca-root-cert';
export const ROOT_CONFIGMAP_KEY = 'root-cert.pem';
/** The design's token lifetime: the kubelet renews a projected token at 80% of it. */
export const TOKEN_EXPIRATION_SECONDS = 3600;
/** The agent's HTTP port (/healthz, /readyz, /metrics), as `meshca agent` defaults it; named for PodMonitors. */
export const AGENT_HTTP_PORT = 15020;
export const AGENT_HTTP_PORT_NAME = 'http-meshca';
/** The agent's numeric non-root user (the image's USER). */
export const AGENT_UID = 10001;
/**
 * Sized from the agent's measured footprint (docs/kubernetes.md, "What the injector adds"): 71 MiB
 * resident once it serves a certificate with AGENT_NODE_OPTIONS, 25 MiB of it its own (the rest is
 * the node binary's pages, shared); a renewal costs a few ms of CPU per half-lifetime, so the CPU
 * request is small. The SDS fan-out to many streams needs headroom above that (~13 KB each).
 */
/**
 * V8 flags for the agent, set through NODE_OPTIONS so they apply to whatever command the image
 * runs. An agent is idle nearly always and runs little code, so it gives up the compilers for
 * memory: --jitless runs bytecode only (no JIT code pages; V8's compilers are never paged in from
 * the node binary), and --max-semi-space-size=1 keeps the young generation at 1 MB per semi-space
 * instead of letting it grow to 16. Together ~17 MB less resident memory (docs/performance.md,
 * Footprint). --lite-mode saves the same but is not allowed in NODE_OPTIONS. Nothing the agent
 * loads uses WebAssembly, which --jitless turns off.
 */
export const AGENT_NODE_OPTIONS = '--jitless --max-semi-space-size=1';
export const AGENT_RESOURCES = { requests: { cpu: '10m', memory: '128Mi' }, limits: { memory: '256Mi' } } as const;

export interface InjectOptions {
  readonly image: string;
  /** host:port of the CA's gRPC port. */
  readonly caAddr: string;
  readonly audience: string;
  readonly imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
}

// The few Pod fields injection reads and writes; everything else passes through untouched.
type Json = Record<string, unknown>;
interface Container extends Json {
  name: string;
  volumeMounts?: Json[];
}
export interface PodSpec extends Json {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Json[];
}
export interface ObjectMeta extends Json {
  name?: string;
  namespace?: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
}

export type InjectDecision = { readonly inject: true } | { readonly inject: false; readonly reason: string };

/** Whether this pod gets the agent: not when it opted out, nor when it already has one. */
export function injectDecision(meta: ObjectMeta | undefined, spec: PodSpec): InjectDecision {
  const optOut = meta?.annotations?.[INJECT_ANNOTATION] ?? meta?.labels?.[INJECT_ANNOTATION];
  if (optOut === 'false') return { inject: false, reason: `${INJECT_ANNOTATION}: "false"` };
  const all = [...(spec.initContainers ?? []), ...spec.containers];
  if (all.some((c) => c.name === AGENT_CONTAINER)) return { inject: false, reason: `already has the ${AGENT_CONTAINER} container` };
  return { inject: true };
}

export function agentContainer(o: InjectOptions): Container {
  return {
    name: AGENT_CONTAINER,
    image: o.image,
    ...(o.imagePullPolicy ? { imagePullPolicy: o.imagePullPolicy } : {}),
    // Native sidecar (Kubernetes ≥ 1.29): starts before the app's containers, runs beside them,
    // and stops after them, so the socket is there while the app runs.
    restartPolicy: 'Always',
    args: [
      'agent',
      `--ca-addr=${o.caAddr}`,
      `--root-cert=${ROOT_DIR}/${ROOT_CONFIGMAP_KEY}`,
      `--token-file=${TOKEN_DIR}/${TOKEN_FILE}`,
      `--sds-socket=${SDS_DIR}/socket`,
      `--http-listen=0.0.0.0:${AGENT_HTTP_PORT}`,
    ],
    env: [{ name: 'NODE_OPTIONS', value: AGENT_NODE_OPTIONS }],
    ports: [{ name: AGENT_HTTP_PORT_NAME, containerPort: AGENT_HTTP_PORT, protocol: 'TCP' }],
    // A native sidecar's startup probe holds the app's containers back until it passes: the app
    // starts only once the agent holds a certificate to serve on the socket.
    startupProbe: { httpGet: { path: '/readyz', port: AGENT_HTTP_PORT }, periodSeconds: 1, failureThreshold: 120 },
    livenessProbe: { httpGet: { path: '/healthz', port: AGENT_HTTP_PORT }, periodSeconds: 10, failureThreshold: 3 },
    resources: structuredClone(AGENT_RESOURCES) as unknown as Json,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: AGENT_UID,
      runAsGroup: AGENT_UID,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [
      { name: TOKEN_VOLUME, mountPath: TOKEN_DIR, readOnly: true },
      { name: SDS_VOLUME, mountPath: SDS_DIR },
      { name: ROOT_VOLUME, mountPath: ROOT_DIR, readOnly: true },
    ],
  };
}

export function agentVolumes(o: InjectOptions): Json[] {
  return [
    {
      name: TOKEN_VOLUME,
      projected: { sources: [{ serviceAccountToken: { audience: o.audience, expirationSeconds: TOKEN_EXPIRATION_SECONDS, path: TOKEN_FILE } }] },
    },
    { name: SDS_VOLUME, emptyDir: { medium: 'Memory' } },
    { name: ROOT_VOLUME, configMap: { name: ROOT_CONFIGMAP, items: [{ key: ROOT_CONFIGMAP_KEY, path: ROOT_CONFIGMAP_KEY }] } },
  ];
}

/** The containers the SDS socket is mounted into: those the annotation names, or all. */
export function sdsContainers(meta: ObjectMeta | undefined, spec: PodSpec): Set<string> {
  const named = meta?.annotations?.[SDS_CONTAINERS_ANNOTATION];
  if (named === undefined) return new Set(spec.containers.map((c) => c.name));
  const names = named.split(',').map((n) => n.trim()).filter(Boolean);
  const unknown = names.filter((n) => !spec.containers.some((c) => c.name === n));
  if (unknown.length > 0) {
    throw new MeshcaError('BAD_REQUEST', `${SDS_CONTAINERS_ANNOTATION} names ${unknown.map((n) => `"${n}"`).join(', ')}, which the pod does not have (it has ${spec.containers.map((c) => `"${c.name}"`).join(', ')})`);
  }
  return new Set(names);
}

export interface InjectedPod {
  readonly meta: ObjectMeta;
  readonly spec: PodSpec;
}

/** The pod with the agent added; throws BAD_REQUEST on a pod that cannot take it (a name clash). */
export function injectPod(meta: ObjectMeta | undefined, spec: PodSpec, o: InjectOptions): InjectedPod {
  if (!Array.isArray(spec?.containers) || spec.containers.length === 0) throw new MeshcaError('BAD_REQUEST', 'the pod spec has no containers');
  const volumes = agentVolumes(o);
  const clash = (spec.volumes ?? []).find((v) => volumes.some((a) => a.name === v.name));
  if (clash) throw new MeshcaError('BAD_REQUEST', `the pod already has a volume named "${String(clash.name)}", which the meshca agent needs`);
  const targets = sdsContainers(meta, spec);
  const containers = spec.containers.map((c) => {
    if (!targets.has(c.name)) return c;
    if ((c.volumeMounts ?? []).some((m) => m.mountPath === SDS_DIR)) return c;
    return { ...c, volumeMounts: [...(c.volumeMounts ?? []), { name: SDS_VOLUME, mountPath: SDS_DIR }] };
  });
  return {
    meta: { ...meta, annotations: { ...(meta?.annotations ?? {}), [INJECTED_ANNOTATION]: 'true' } },
    spec: {
      ...spec,
      // First: the identity is there before any other init container runs.
      initContainers: [agentContainer(o), ...(spec.initContainers ?? [])],
      containers,
      volumes: [...(spec.volumes ?? []), ...volumes],
    },
  };
}
