// The fake API server's object store: ConfigMaps, Secrets, Leases, Namespaces and MutatingWebhookConfigurations with the API
// server's bookkeeping (one global resourceVersion, uid, creationTimestamp), optimistic-concurrency
// conflicts, merge and JSON patches, label/field selectors and a watch event log. Test use only.

import { randomUUID } from 'node:crypto';
import { kubeError, successStatus, type KubeStatus } from './kube_status.ts';

export interface ResourceKind {
  readonly resource: string;
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly namespaced: boolean;
}

export const RESOURCES: readonly ResourceKind[] = [
  { resource: 'configmaps', group: '', version: 'v1', kind: 'ConfigMap', namespaced: true },
  { resource: 'secrets', group: '', version: 'v1', kind: 'Secret', namespaced: true },
  { resource: 'namespaces', group: '', version: 'v1', kind: 'Namespace', namespaced: false },
  { resource: 'leases', group: 'coordination.k8s.io', version: 'v1', kind: 'Lease', namespaced: true },
  { resource: 'pods', group: '', version: 'v1', kind: 'Pod', namespaced: true },
  { resource: 'mutatingwebhookconfigurations', group: 'admissionregistration.k8s.io', version: 'v1', kind: 'MutatingWebhookConfiguration', namespaced: false },
];

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name?: string;
    generateName?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    creationTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

export interface WatchEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: KubeObject;
  readonly rv: number;
  readonly resource: string;
  readonly namespace?: string;
}

export interface Selectors {
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function apiVersionOf(kind: ResourceKind): string {
  return kind.group ? `${kind.group}/${kind.version}` : kind.version;
}

function qualified(kind: ResourceKind): string {
  return kind.group ? `${kind.resource}.${kind.group}` : kind.resource;
}

function matchesLabels(obj: KubeObject, selector: string | undefined): boolean {
  if (!selector) return true;
  const labels = obj.metadata.labels ?? {};
  return selector.split(',').every((term) => {
    const t = term.trim();
    if (!t) return true;
    let m = /^([^!=]+)!=(.*)$/.exec(t);
    if (m) return labels[m[1]!.trim()] !== m[2]!.trim();
    m = /^([^!=]+)==?(.*)$/.exec(t);
    if (m) return labels[m[1]!.trim()] === m[2]!.trim();
    if (t.startsWith('!')) return !(t.slice(1) in labels);
    return t in labels;
  });
}

function matchesFields(obj: KubeObject, selector: string | undefined): boolean {
  if (!selector) return true;
  return selector.split(',').every((term) => {
    const m = /^([^!=]+)(!=|==?)(.*)$/.exec(term.trim());
    if (!m) return true;
    const field = m[1]!.trim();
    const spec = obj.spec as { nodeName?: string } | undefined;
    const value = field === 'metadata.name' ? obj.metadata.name : field === 'metadata.namespace' ? obj.metadata.namespace : field === 'spec.nodeName' ? (spec?.nodeName ?? '') : undefined;
    return m[2] === '!=' ? value !== m[3] : value === m[3];
  });
}

/** RFC 7386 JSON merge patch (strategic merge is treated the same for the kinds we serve). */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function pointerParts(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw kubeError('BadRequest', `invalid JSON pointer "${path}"`);
  return path.slice(1).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** RFC 6902 JSON patch: add, remove, replace, test (what client-node sends by default). */
export function jsonPatch(doc: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw kubeError('BadRequest', 'json patch must be an array of operations');
  let root = structuredClone(doc);
  for (const op of ops as { op?: string; path?: string; value?: unknown }[]) {
    const parts = pointerParts(op.path ?? '');
    if (parts.length === 0) {
      if (op.op === 'replace' || op.op === 'add') root = structuredClone(op.value);
      continue;
    }
    let parent: unknown = root;
    for (const p of parts.slice(0, -1)) {
      parent = (parent as Record<string, unknown> | undefined)?.[p];
      if (parent === undefined || parent === null || typeof parent !== 'object') {
        throw kubeError('Invalid', `json patch ${op.op} operation does not apply: doc is missing path: "${op.path}"`);
      }
    }
    const last = parts[parts.length - 1]!;
    const obj = parent as Record<string, unknown>;
    const arr = Array.isArray(parent) ? (parent as unknown[]) : undefined;
    const index = last === '-' && arr ? arr.length : Number(last);
    const has = arr ? index >= 0 && index < arr.length : last in obj;
    switch (op.op) {
      case 'add':
        if (arr) arr.splice(index, 0, structuredClone(op.value));
        else obj[last] = structuredClone(op.value);
        break;
      case 'replace':
        if (!has) throw kubeError('Invalid', `json patch replace operation does not apply: doc is missing key: "${op.path}"`);
        if (arr) arr[index] = structuredClone(op.value);
        else obj[last] = structuredClone(op.value);
        break;
      case 'remove':
        if (!has) throw kubeError('Invalid', `json patch remove operation does not apply: doc is missing path: "${op.path}"`);
        if (arr) arr.splice(index, 1);
        else delete obj[last];
        break;
      case 'test':
        if (JSON.stringify(arr ? arr[index] : obj[last]) !== JSON.stringify(op.value)) {
          throw kubeError('Invalid', `json patch test operation failed at "${op.path}"`);
        }
        break;
      default:
        throw kubeError('BadRequest', `json patch operation "${op.op}" is not supported by the fake`);
    }
  }
  return root;
}

export class KubeStore {
  private rv = 1;
  private readonly objects = new Map<string, KubeObject>();
  private readonly log: WatchEvent[] = [];
  private readonly listeners = new Set<(e: WatchEvent) => void>();
  private readonly now: () => number;

  constructor(namespaces: readonly string[], now: () => number) {
    this.now = now;
    for (const ns of namespaces) this.create(kindOf('namespaces'), undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  }

  get resourceVersion(): number {
    return this.rv;
  }

  private key(kind: ResourceKind, ns: string | undefined, name: string): string {
    return `${kind.resource}/${ns ?? ''}/${name}`;
  }

  private emit(kind: ResourceKind, type: WatchEvent['type'], obj: KubeObject): void {
    const event: WatchEvent = { type, object: structuredClone(obj), rv: Number(obj.metadata.resourceVersion), resource: kind.resource, ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}) };
    this.log.push(event);
    for (const l of this.listeners) l(event);
  }

  private requireNamespace(kind: ResourceKind, ns: string | undefined): void {
    if (!kind.namespaced) return;
    if (!ns || !this.objects.has(this.key(kindOf('namespaces'), undefined, ns))) {
      throw kubeError('NotFound', `namespaces "${ns}" not found`, { name: ns ?? '', kind: 'namespaces' });
    }
  }

  private validate(kind: ResourceKind, obj: KubeObject): void {
    const name = obj.metadata.name ?? '';
    const re = kind.resource === 'namespaces' ? DNS_LABEL : DNS_SUBDOMAIN;
    if (!re.test(name) || name.length > 253) {
      throw kubeError('Invalid', `${kind.kind} "${name}" is invalid: metadata.name: Invalid value: "${name}": a lowercase RFC 1123 name must consist of lower case alphanumeric characters, '-' or '.'`, { name, kind: kind.kind });
    }
    if (kind.resource === 'mutatingwebhookconfigurations') {
      for (const [i, w] of ((obj.webhooks as { clientConfig?: { caBundle?: unknown } }[] | undefined) ?? []).entries()) {
        const bundle = w.clientConfig?.caBundle;
        if (bundle !== undefined && (typeof bundle !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(bundle))) {
          throw kubeError('BadRequest', `MutatingWebhookConfiguration in version "v1" cannot be handled as a MutatingWebhookConfiguration: webhooks[${i}].clientConfig.caBundle: illegal base64 data`);
        }
      }
    }
    if (kind.resource === 'secrets' && obj.data && typeof obj.data === 'object') {
      for (const [k, v] of Object.entries(obj.data as Record<string, unknown>)) {
        if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) {
          throw kubeError('Invalid', `Secret "${name}" is invalid: data[${k}]: Invalid value: illegal base64 data`, { name, kind: 'Secret' });
        }
      }
    }
  }

  private normalise(kind: ResourceKind, obj: KubeObject): void {
    obj.apiVersion = apiVersionOf(kind);
    obj.kind = kind.kind;
    if (kind.resource === 'secrets' && obj.stringData && typeof obj.stringData === 'object') {
      const data = { ...((obj.data as Record<string, string>) ?? {}) };
      for (const [k, v] of Object.entries(obj.stringData as Record<string, string>)) data[k] = Buffer.from(String(v)).toString('base64');
      obj.data = data;
      delete obj.stringData;
    }
    if (kind.resource === 'secrets' && !obj.type) obj.type = 'Opaque';
    if (kind.resource === 'namespaces') {
      obj.metadata.labels = { ...(obj.metadata.labels ?? {}), 'kubernetes.io/metadata.name': obj.metadata.name! };
      obj.spec = { finalizers: ['kubernetes'] };
      obj.status = { phase: 'Active' };
    }
  }

  create(kind: ResourceKind, ns: string | undefined, body: unknown): KubeObject {
    const obj = structuredClone(body) as KubeObject;
    if (!obj || typeof obj !== 'object' || !obj.metadata) throw kubeError('BadRequest', 'the body of the request was in an unknown format');
    if (kind.namespaced) {
      if (obj.metadata.namespace && obj.metadata.namespace !== ns) {
        throw kubeError('BadRequest', 'the namespace of the provided object does not match the namespace sent on the request');
      }
      obj.metadata.namespace = ns;
    } else {
      delete obj.metadata.namespace;
    }
    if (!obj.metadata.name && obj.metadata.generateName) obj.metadata.name = `${obj.metadata.generateName}${randomUUID().slice(0, 5)}`;
    if (obj.metadata.resourceVersion) throw kubeError('BadRequest', 'resourceVersion should not be set on objects to be created');
    this.validate(kind, obj);
    this.requireNamespace(kind, ns);
    const key = this.key(kind, ns, obj.metadata.name!);
    if (this.objects.has(key)) {
      throw kubeError('AlreadyExists', `${qualified(kind)} "${obj.metadata.name}" already exists`, { name: obj.metadata.name!, group: kind.group, kind: kind.resource });
    }
    this.normalise(kind, obj);
    obj.metadata.uid = randomUUID();
    obj.metadata.creationTimestamp = new Date(this.now()).toISOString().replace(/\.\d+Z$/, 'Z');
    obj.metadata.resourceVersion = String(++this.rv);
    this.objects.set(key, obj);
    this.emit(kind, 'ADDED', obj);
    return structuredClone(obj);
  }

  get(kind: ResourceKind, ns: string | undefined, name: string): KubeObject {
    const obj = this.objects.get(this.key(kind, ns, name));
    if (!obj) throw kubeError('NotFound', `${qualified(kind)} "${name}" not found`, { name, group: kind.group, kind: kind.resource });
    return structuredClone(obj);
  }

  private conflict(kind: ResourceKind, name: string): Error {
    return kubeError(
      'Conflict',
      `Operation cannot be fulfilled on ${qualified(kind)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      { name, group: kind.group, kind: kind.resource },
    );
  }

  /** PUT: replaces the object; a stale metadata.resourceVersion is a 409 Conflict. */
  update(kind: ResourceKind, ns: string | undefined, name: string, body: unknown): KubeObject {
    const current = this.get(kind, ns, name);
    const obj = structuredClone(body) as KubeObject;
    if (!obj?.metadata) throw kubeError('BadRequest', 'the body of the request was in an unknown format');
    if (obj.metadata.name !== name) throw kubeError('BadRequest', 'the name of the object does not match the name on the URL');
    if (obj.metadata.resourceVersion && obj.metadata.resourceVersion !== current.metadata.resourceVersion) throw this.conflict(kind, name);
    return this.store(kind, ns, obj, current);
  }

  patch(kind: ResourceKind, ns: string | undefined, name: string, contentType: string, patch: unknown): KubeObject {
    const current = this.get(kind, ns, name);
    let next: KubeObject;
    if (contentType.startsWith('application/json-patch+json')) {
      next = jsonPatch(current, patch) as KubeObject;
    } else if (contentType.startsWith('application/merge-patch+json') || contentType.startsWith('application/strategic-merge-patch+json')) {
      const rvInPatch = (patch as KubeObject | undefined)?.metadata?.resourceVersion;
      if (rvInPatch && rvInPatch !== current.metadata.resourceVersion) throw this.conflict(kind, name);
      next = mergePatch(current, patch) as KubeObject;
    } else {
      throw kubeError('UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json`);
    }
    if (next.metadata?.name !== name) throw kubeError('BadRequest', 'the name of the object does not match the name on the URL');
    next.metadata.resourceVersion = current.metadata.resourceVersion;
    return this.store(kind, ns, next, current);
  }

  private store(kind: ResourceKind, ns: string | undefined, obj: KubeObject, current: KubeObject): KubeObject {
    obj.metadata.namespace = current.metadata.namespace;
    if (!kind.namespaced) delete obj.metadata.namespace;
    obj.metadata.uid = current.metadata.uid;
    obj.metadata.creationTimestamp = current.metadata.creationTimestamp;
    this.validate(kind, obj);
    this.normalise(kind, obj);
    obj.metadata.resourceVersion = String(++this.rv);
    this.objects.set(this.key(kind, ns, obj.metadata.name!), obj);
    this.emit(kind, 'MODIFIED', obj);
    return structuredClone(obj);
  }

  /** DELETE, honouring DeleteOptions.preconditions (uid, resourceVersion). */
  delete(kind: ResourceKind, ns: string | undefined, name: string, options: unknown): KubeObject | KubeStatus {
    const current = this.get(kind, ns, name);
    const pre = (options as { preconditions?: { uid?: string; resourceVersion?: string } } | undefined)?.preconditions;
    if (pre?.resourceVersion && pre.resourceVersion !== current.metadata.resourceVersion) throw this.conflict(kind, name);
    if (pre?.uid && pre.uid !== current.metadata.uid) {
      throw kubeError('Conflict', `Operation cannot be fulfilled on ${qualified(kind)} "${name}": Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${current.metadata.uid}`, { name, kind: kind.resource });
    }
    if (kind.resource === 'namespaces') {
      for (const [key, obj] of [...this.objects]) {
        if (obj.metadata.namespace !== name) continue;
        this.objects.delete(key);
        obj.metadata.resourceVersion = String(++this.rv);
        this.emit(kindOf(key.slice(0, key.indexOf('/'))), 'DELETED', obj);
      }
    }
    this.objects.delete(this.key(kind, ns, name));
    current.metadata.resourceVersion = String(++this.rv);
    this.emit(kind, 'DELETED', current);
    // Namespaces answer with the object (real ones go Terminating first); others with a Status.
    if (kind.resource === 'namespaces') return current;
    return successStatus({ name, group: kind.group, kind: kind.resource, uid: current.metadata.uid! });
  }

  list(kind: ResourceKind, ns: string | undefined, selectors: Selectors): { items: KubeObject[]; resourceVersion: string } {
    const items = [...this.objects.entries()]
      .filter(([key]) => key.startsWith(`${kind.resource}/`))
      .map(([, obj]) => obj)
      .filter((obj) => !kind.namespaced || ns === undefined || obj.metadata.namespace === ns)
      .filter((obj) => matchesLabels(obj, selectors.labelSelector) && matchesFields(obj, selectors.fieldSelector))
      .sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`))
      .map((obj) => structuredClone(obj));
    return { items, resourceVersion: String(this.rv) };
  }

  /** Events after `sinceRv` for this resource (and namespace), for a watch that resumes. */
  eventsSince(kind: ResourceKind, ns: string | undefined, sinceRv: number, selectors: Selectors): WatchEvent[] {
    return this.log.filter((e) => e.rv > sinceRv && matchesEvent(e, kind, ns, selectors));
  }

  subscribe(listener: (e: WatchEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

export function matchesEvent(e: WatchEvent, kind: ResourceKind, ns: string | undefined, selectors: Selectors): boolean {
  if (e.resource !== kind.resource) return false;
  if (kind.namespaced && ns !== undefined && e.namespace !== ns) return false;
  return matchesLabels(e.object, selectors.labelSelector) && matchesFields(e.object, selectors.fieldSelector);
}

export function kindOf(resource: string, group?: string): ResourceKind {
  const kind = RESOURCES.find((r) => r.resource === resource && (group === undefined || r.group === group));
  if (!kind) throw kubeError('NotFound', `the server could not find the requested resource (${resource})`);
  return kind;
}
