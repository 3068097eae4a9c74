// `meshca inject -f`: the same injection the webhook makes, applied to manifests on disk, like
// `istioctl kube-inject`. Finds the pod template in each workload kind; passes everything else
// through unchanged. YAML in, YAML out (comments are not kept).

import { parseAllDocuments, stringify } from 'yaml';
import { MeshcaError } from '../errors/index.ts';
import { injectDecision, injectPod, type InjectOptions, type ObjectMeta, type PodSpec } from './pod.ts';

type Json = Record<string, unknown>;
interface Template {
  metadata?: ObjectMeta;
  spec: PodSpec;
}

/** Where each workload kind keeps its pod (template), as a path from the object. */
const TEMPLATE_PATHS: Readonly<Record<string, readonly string[]>> = {
  Pod: [],
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  ReplicationController: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

export interface InjectReport {
  readonly kind: string;
  readonly name: string;
  readonly injected: boolean;
  readonly reason?: string;
}

function templateOf(obj: Json): Template | undefined {
  const path = TEMPLATE_PATHS[String(obj.kind)];
  if (!path) return undefined;
  let node: unknown = obj;
  for (const key of path) node = (node as Json | undefined)?.[key];
  return node as Template | undefined;
}

/** Injects into one object in place when it is a workload; lists recurse. */
export function injectObject(obj: Json, o: InjectOptions, reports: InjectReport[]): void {
  if (typeof obj.kind === 'string' && obj.kind.endsWith('List') && Array.isArray(obj.items)) {
    for (const item of obj.items as Json[]) injectObject(item, o, reports);
    return;
  }
  const template = templateOf(obj);
  if (!template) return;
  const name = `${String((obj.metadata as ObjectMeta | undefined)?.name ?? '')}`;
  const kind = String(obj.kind);
  if (!template.spec || !Array.isArray(template.spec.containers)) throw new MeshcaError('BAD_REQUEST', `${kind} "${name}" has no pod spec with containers`);
  // A workload's own annotation opts its pods out too, as with istioctl.
  const meta = { ...template.metadata, annotations: { ...((obj.metadata as ObjectMeta | undefined)?.annotations ?? {}), ...(template.metadata?.annotations ?? {}) } };
  const decision = injectDecision(meta, template.spec);
  if (!decision.inject) {
    reports.push({ kind, name, injected: false, reason: decision.reason });
    return;
  }
  const injected = injectPod(template.metadata, template.spec, o);
  template.metadata = injected.meta;
  template.spec = injected.spec;
  reports.push({ kind, name, injected: true });
}

/** Injects into every workload in a multi-document YAML text; returns the YAML and what was done. */
export function injectManifests(text: string, o: InjectOptions): { yaml: string; reports: InjectReport[] } {
  const docs = parseAllDocuments(text);
  const reports: InjectReport[] = [];
  const out: string[] = [];
  docs.forEach((doc, i) => {
    if (doc.errors.length > 0) throw new MeshcaError('BAD_REQUEST', `document ${i + 1}: not valid YAML (${doc.errors[0]!.message.split('\n')[0]})`);
    const obj = doc.toJS() as unknown;
    if (obj === null || obj === undefined) return;
    if (typeof obj !== 'object' || Array.isArray(obj)) throw new MeshcaError('BAD_REQUEST', `document ${i + 1}: not a Kubernetes object`);
    injectObject(obj as Json, o, reports);
    out.push(stringify(obj, { lineWidth: 0 }));
  });
  return { yaml: out.join('---\n'), reports };
}
