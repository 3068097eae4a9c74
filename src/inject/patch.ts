// The injection as an RFC 6902 JSONPatch against the pod the API server sent, as an admission
// webhook must answer. Arrays are replaced whole (or added when absent): exact, and immune to the
// index shifts that element-wise ops suffer when another webhook reorders the pod.

import type { InjectedPod, ObjectMeta, PodSpec } from './pod.ts';

export interface JsonPatchOp {
  readonly op: 'add' | 'replace';
  readonly path: string;
  readonly value: unknown;
}

/** RFC 6901: "~" → "~0", "/" → "~1". */
export function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

export function podPatch(before: { meta: ObjectMeta | undefined; spec: PodSpec }, after: InjectedPod): JsonPatchOp[] {
  const ops: JsonPatchOp[] = [];
  const set = (path: string, existed: boolean, value: unknown) => ops.push({ op: existed ? 'replace' : 'add', path, value });
  const annotations = after.meta.annotations ?? {};
  if (!before.meta?.annotations) set('/metadata/annotations', false, annotations);
  else {
    for (const [k, v] of Object.entries(annotations)) {
      if (before.meta.annotations[k] !== v) set(`/metadata/annotations/${escapePointer(k)}`, k in before.meta.annotations, v);
    }
  }
  set('/spec/initContainers', before.spec.initContainers !== undefined, after.spec.initContainers);
  set('/spec/volumes', before.spec.volumes !== undefined, after.spec.volumes);
  after.spec.containers.forEach((c, i) => {
    const old = before.spec.containers[i]!;
    if (c === old) return;
    set(`/spec/containers/${i}/volumeMounts`, old.volumeMounts !== undefined, c.volumeMounts);
  });
  return ops;
}
