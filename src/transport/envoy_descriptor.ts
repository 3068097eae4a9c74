// Builds the small descriptor of Envoy's SDS that src/transport loads at run time (protos/envoy/
// sds.json): only the SDS service and the messages it and Secret reach, pruned from the Envoy API
// tree @grpc/grpc-js-xds ships. Loading that whole tree through proto-loader cost ~27 MB of RSS in
// every agent. Run by `npm run protos`; test/transport checks the committed file is current.
// Never imported at run time.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import protobuf from 'protobufjs';

/** Include directories inside @grpc/grpc-js-xds/deps that Envoy's imports resolve against. */
export const ENVOY_PROTO_DEPS = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'];
export const SDS_PROTO_FILES = ['envoy/service/secret/v3/sds.proto', 'envoy/extensions/transport_sockets/tls/v3/secret.proto'];
export const SDS_ROOT_TYPES = ['envoy.service.secret.v3.SecretDiscoveryService', 'envoy.extensions.transport_sockets.tls.v3.Secret'];

export function envoyIncludeDirs(): string[] {
  const root = dirname(createRequire(import.meta.url).resolve('@grpc/grpc-js-xds/package.json'));
  return ENVOY_PROTO_DEPS.map((dir) => join(root, 'deps', dir));
}

/** google/protobuf/descriptor.proto and friends as bundled files, as proto-loader's addCommonProtos does. */
function addCommonProtos(): void {
  const require = createRequire(import.meta.url);
  for (const name of ['api', 'descriptor', 'source_context', 'type']) {
    const json = require(`protobufjs/google/protobuf/${name}.json`) as { nested: { google: { nested: { protobuf: { nested: Record<string, unknown> } } } } };
    protobuf.common(name, json.nested.google.nested.protobuf.nested as never);
  }
}

function loadEnvoyRoot(): protobuf.Root {
  addCommonProtos();
  const root = new protobuf.Root();
  const dirs = envoyIncludeDirs();
  root.resolvePath = (_origin, target) => {
    for (const dir of dirs) {
      const candidate = join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    return target;
  };
  root.loadSync(SDS_PROTO_FILES, { keepCase: true, alternateCommentMode: false });
  root.resolveAll();
  return root;
}

/** Every type the roots reach through fields, map values, oneofs and methods. */
function reachable(root: protobuf.Root): Set<protobuf.Type | protobuf.Enum | protobuf.Service> {
  const seen = new Set<protobuf.Type | protobuf.Enum | protobuf.Service>();
  const visit = (t: protobuf.ReflectionObject | null | undefined) => {
    if (!t || seen.has(t as protobuf.Type)) return;
    if (t instanceof protobuf.Service) {
      seen.add(t);
      for (const m of t.methodsArray) {
        visit(m.resolvedRequestType);
        visit(m.resolvedResponseType);
      }
    } else if (t instanceof protobuf.Type) {
      seen.add(t);
      for (const f of t.fieldsArray) visit(f.resolvedType);
    } else if (t instanceof protobuf.Enum) {
      seen.add(t);
    }
  };
  for (const name of SDS_ROOT_TYPES) visit(root.lookup(name));
  return seen;
}

/** Options do not change the wire format; validation annotations and the like are dropped. */
function withoutOptions(json: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(json)) {
    if (k === 'options' || k === 'comment' || k === 'nested') continue;
    if (k === 'fields' || k === 'methods' || k === 'oneofs') {
      out[k] = Object.fromEntries(
        Object.entries(v as Record<string, Record<string, unknown>>).map(([name, f]) => {
          const packed = (f.options as Record<string, unknown> | undefined)?.packed;
          const g = withoutOptions(f);
          return [name, packed === undefined ? g : { ...g, options: { packed } }];
        }),
      );
    } else {
      out[k] = v;
    }
  }
  return out;
}

/** The pruned descriptor as protobufjs JSON (nested namespaces), stable key order. */
export function buildEnvoySdsDescriptor(): Record<string, unknown> {
  const root = loadEnvoyRoot();
  const tree: Record<string, unknown> = { nested: {} };
  const types = [...reachable(root)].sort((a, b) => a.fullName.localeCompare(b.fullName));
  for (const t of types) {
    const path = t.fullName.slice(1).split('.');
    let node = tree;
    for (const part of path.slice(0, -1)) {
      const nested = (node.nested ??= {}) as Record<string, Record<string, unknown>>;
      node = nested[part] ??= {};
    }
    const nested = (node.nested ??= {}) as Record<string, Record<string, unknown>>;
    const own = withoutOptions(t.toJSON({ keepComments: false }) as unknown as Record<string, unknown>);
    nested[path.at(-1)!] = { ...own, ...(nested[path.at(-1)!] ?? {}) };
  }
  return tree;
}

if (import.meta.main) {
  const { writeFileSync } = await import('node:fs');
  const target = new URL('../../protos/envoy/sds.json', import.meta.url);
  writeFileSync(target, `${JSON.stringify(buildEnvoySdsDescriptor())}\n`);
  process.stdout.write(`wrote ${target.pathname}\n`);
}
