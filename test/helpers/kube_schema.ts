// Kubernetes objects as the API server would judge them: `kubectl kustomize` renders a directory,
// kubernetes-models validates each object against the Kubernetes OpenAPI schema.

import { execFileSync } from 'node:child_process';
import { parseAllDocuments } from 'yaml';
import { expect } from 'vitest';
import { REPO_ROOT as ROOT } from './serve.ts';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [k: string]: unknown;
}

export function render(dir: string): K8sObject[] {
  const text = execFileSync('kubectl', ['kustomize', dir], { cwd: ROOT, encoding: 'utf8' });
  return parseAllDocuments(text).map((d) => d.toJS() as K8sObject).filter(Boolean);
}

/** kubernetes-models' module for an apiVersion/kind: core v1 lives at "v1/<Kind>", groups at "<group>/<version>/<Kind>". */
async function modelOf(apiVersion: string, kind: string): Promise<(new (o: unknown) => { validate(): void }) | undefined> {
  if (apiVersion.startsWith('monitoring.coreos.com/')) {
    const mod = (await import(/* @vite-ignore */ `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`)) as Record<string, new (o: unknown) => { validate(): void }>;
    return mod[kind];
  }
  try {
    const mod = (await import(/* @vite-ignore */ `kubernetes-models/${apiVersion}/${kind}`)) as Record<string, new (o: unknown) => { validate(): void }>;
    return mod[kind];
  } catch {
    return undefined;
  }
}

/** CloudNativePG ships no model package: check the fields its CRD requires and that we rely on. */
function validateCnpgCluster(o: K8sObject): void {
  const spec = o.spec as { instances?: unknown; storage?: { size?: unknown }; bootstrap?: { initdb?: { database?: unknown; owner?: unknown } } };
  expect(Number.isInteger(spec.instances) && (spec.instances as number) >= 1).toBe(true);
  expect(typeof spec.storage?.size).toBe('string');
  expect(spec.bootstrap?.initdb?.database).toBe('meshca');
}

export async function validateObject(o: K8sObject): Promise<void> {
  if (o.apiVersion === 'postgresql.cnpg.io/v1' && o.kind === 'Cluster') return validateCnpgCluster(o);
  const Model = await modelOf(o.apiVersion, o.kind);
  if (!Model) throw new Error(`no schema for ${o.apiVersion} ${o.kind}`);
  new Model(o).validate();
}

