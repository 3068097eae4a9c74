// The rules between src/ modules, measured rather than read from comments: the import graph has
// no cycle, src/agent imports nothing from src/server, loading the agent (which runs in every
// pod) loads no ledger, no pg, no node:sqlite, no Kubernetes client and no ASN.1 library, and the command line
// itself (`meshca version`, the settings every command reads) loads no gRPC, protobuf, ASN.1,
// YAML or logging library.
//
// The graph is the one Node itself links: a child process imports every module under src/ with a
// resolve hook that records each (importer → imported) pair, so type-only imports, which Node
// erases, are left out and nothing is guessed by parsing. Dynamic `import('./…')` of a relative
// path is added from the source, since it runs only when its branch does.

import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SRC = join(ROOT, 'src');
const AGENT_ENTRIES = ['src/agent/index.ts', 'src/cli/commands/agent.ts'];
/** What `meshca agent` loads: the command line (which loads a command's module only when it runs) and the agent. */
const AGENT_PROCESS = ['src/cli/main.ts', ...AGENT_ENTRIES];
/** What a process that only runs the agent must never load. */
const NOT_FOR_THE_AGENT: ReadonlyArray<[string, RegExp]> = [
  ['src/ledger', /\/src\/ledger\//],
  ['pg', /\/node_modules\/pg(-[a-z-]+)?\//],
  ['node:sqlite', /^node:sqlite$/],
  ['@kubernetes/client-node', /\/node_modules\/@kubernetes\/client-node\//],
  // The agent's CSR and chain checks are plain DER (src/pki/workload): no ASN.1 library per pod.
  ['@peculiar/asn1-*', /\/node_modules\/@peculiar\/asn1-[a-z0-9-]+\//],
  ['asn1js', /\/node_modules\/asn1js\//],
];

/** What `meshca version` loads: the command line, its settings table and the command. */
const VERSION_PROCESS = ['src/cli/main.ts', 'src/cli/commands/version.ts'];
/** Libraries only the commands that use them may load: not the command line, not the settings. */
const NOT_FOR_THE_COMMAND_LINE: ReadonlyArray<[string, RegExp]> = [
  ['@grpc/grpc-js', /\/node_modules\/@grpc\/grpc-js\//],
  ['@grpc/proto-loader', /\/node_modules\/@grpc\/proto-loader\//],
  ['protobufjs', /\/node_modules\/protobufjs\//],
  ['@peculiar/asn1-*', /\/node_modules\/@peculiar\/asn1-[a-z0-9-]+\//],
  ['asn1js', /\/node_modules\/asn1js\//],
  ['yaml', /\/node_modules\/yaml\//],
  ['pino', /\/node_modules\/pino\//],
  ['prom-client', /\/node_modules\/prom-client\//],
];

const HOOK = `
import { registerHooks } from 'node:module';
const edges = [];
registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); edges.push([context.parentURL ?? '', r.url]); return r; } });
for (const url of JSON.parse(process.env.MODULES)) await import(url);
process.stdout.write(JSON.stringify(edges), () => process.exit(0));
`;

/** Imports `files` in a fresh Node process; returns every resolution it made, as [importer URL, imported URL]. */
function loadEdges(files: readonly string[]): Array<[string, string]> {
  const modules = JSON.stringify(files.map((f) => pathToFileURL(join(ROOT, f)).href));
  const r = spawnSync(process.execPath, ['--input-type=module', '--no-warnings', '-e', HOOK], { cwd: ROOT, env: { ...process.env, MODULES: modules }, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`importing ${files.join(', ')} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout) as Array<[string, string]>;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [relative(ROOT, join(dir, e.name))] : [],
  );
}

const srcPath = (url: string): string | undefined => {
  if (!url.startsWith('file:')) return undefined;
  const path = relative(ROOT, fileURLToPath(url));
  return path.startsWith('src/') ? path : undefined;
};

/**
 * src/ module → the src/ modules it imports, statically (as Node links them) or by a relative
 * dynamic import; and every URL that loading all of src/ resolved.
 */
function moduleGraph(): { graph: Map<string, Set<string>>; loaded: string[] } {
  const files = sourceFiles(SRC);
  const graph = new Map(files.map((f) => [f, new Set<string>()]));
  const edges = loadEdges(files);
  for (const [from, to] of edges) {
    const a = srcPath(from);
    const b = srcPath(to);
    if (a && b) graph.get(a)!.add(b);
  }
  for (const file of files) {
    const js = stripTypeScriptTypes(readFileSync(join(ROOT, file), 'utf8'));
    for (const m of js.matchAll(/\bimport\(\s*(['"])(\.{1,2}\/[^'"]+)\1\s*\)/g)) {
      graph.get(file)!.add(relative(ROOT, join(ROOT, file, '..', m[2]!)));
    }
  }
  return { graph, loaded: edges.map(([, url]) => url) };
}

/** One cycle per strongly connected component with more than one module (or a self-import). */
function cyclesOf(graph: Map<string, Set<string>>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): void => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of graph.keys()) if (!state.has(node)) visit(node);
  return cycles;
}

function reachable(graph: Map<string, Set<string>>, from: readonly string[]): Set<string> {
  const seen = new Set<string>();
  const todo = [...from];
  while (todo.length > 0) {
    const node = todo.pop()!;
    if (seen.has(node)) continue;
    seen.add(node);
    todo.push(...(graph.get(node) ?? []));
  }
  return seen;
}

/** Which of `rules` (NOT_FOR_THE_AGENT by default) a set of loaded URLs contains, with the first URL that matched. */
function forbiddenIn(urls: Iterable<string>, rules: ReadonlyArray<[string, RegExp]> = NOT_FOR_THE_AGENT): string[] {
  const list = [...urls];
  return rules.flatMap(([name, pattern]) => {
    const hit = list.find((u) => pattern.test(u));
    return hit ? [`${name} (${hit})`] : [];
  });
}

const { graph, loaded: loadedBySrc } = moduleGraph();

describe('the module graph of src/', () => {
  it('is read from the real imports', () => {
    // If the hook or the source scan broke, the graph would be empty and every rule would pass.
    expect(graph.get('src/server/serve.ts')).toContain('src/server/context.ts');
    expect(graph.get('src/server/bootstrap.ts')).toContain('src/authn/kubernetes/index.ts');
    expect(reachable(graph, ['src/server/index.ts'])).toContain('src/ledger/index.ts');
  });

  it('has no import cycle', () => {
    expect(cyclesOf(graph).map((c) => c.join(' → '))).toEqual([]);
  });

  it('has no cycle between folders either (if two folders need each other, one of them is wrong)', () => {
    const folderOf = (m: string) => m.split('/')[1]!;
    const folders = new Map<string, Set<string>>();
    for (const [from, to] of graph) {
      const deps = folders.get(folderOf(from)) ?? new Set<string>();
      for (const t of to) if (folderOf(t) !== folderOf(from)) deps.add(folderOf(t));
      folders.set(folderOf(from), deps);
    }
    expect(cyclesOf(folders).map((c) => c.join(' → '))).toEqual([]);
  });

  it('has src/agent import nothing from src/server', () => {
    const offending = [...graph].filter(([from]) => from.startsWith('src/agent/')).flatMap(([from, to]) => [...to].filter((t) => t.startsWith('src/server/')).map((t) => `${from} → ${t}`));
    expect(offending).toEqual([]);
  });

  it('reaches no ledger from the agent', () => {
    expect([...reachable(graph, AGENT_ENTRIES)].filter((m) => m.startsWith('src/ledger/') || m.startsWith('src/server/'))).toEqual([]);
  });
});

describe('loading the agent', () => {
  it('loads no ledger, pg, node:sqlite, Kubernetes client or ASN.1 library', () => {
    const loaded = loadEdges(AGENT_PROCESS).map(([, url]) => url);
    expect(loaded.length).toBeGreaterThan(50);
    expect(forbiddenIn(loaded)).toEqual([]);
  });

  it('would notice if it did: each pattern matches what loading all of src/ really loads', () => {
    // src/ imports @kubernetes/client-node only dynamically (src/kube, for exec/auth-provider
    // kubeconfigs), so its pattern is checked against loading that package itself.
    const clientNode = loadEdges(['node_modules/@kubernetes/client-node/dist/index.js']).map(([, url]) => url);
    expect(forbiddenIn([...loadedBySrc, ...clientNode]).map((f) => f.split(' ')[0])).toEqual(NOT_FOR_THE_AGENT.map(([name]) => name));
  });
});

/** Node's own modules that importing `files` in a fresh process loaded (process.moduleLoadList). */
function builtinsLoaded(files: readonly string[]): string[] {
  const modules = JSON.stringify(files.map((f) => (f.startsWith('node:') ? f : pathToFileURL(join(ROOT, f)).href)));
  const script = 'for (const url of JSON.parse(process.env.MODULES)) await import(url); process.stdout.write(JSON.stringify(process.moduleLoadList));';
  const r = spawnSync(process.execPath, ['--input-type=module', '--no-warnings', '-e', script], { cwd: ROOT, env: { ...process.env, MODULES: modules }, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`importing ${files.join(', ')} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout) as string[];
}

const UNDICI = /undici/;

describe("loading the agent's Node built-ins", () => {
  // An ES import of node:http reads every export, and its lazy WebSocket getters load undici
  // (~6 MB); src/transport/http_server.ts takes createServer through process.getBuiltinModule.
  it("loads no undici (Node's fetch)", () => {
    expect(builtinsLoaded(AGENT_PROCESS).filter((m) => UNDICI.test(m))).toEqual([]);
  });

  it('would notice if it did: an ES import of node:http loads it', () => {
    expect(builtinsLoaded(['node:http']).some((m) => UNDICI.test(m))).toBe(true);
  });
});

describe('loading the command line', () => {
  it('runs `meshca version` without gRPC, protobuf, ASN.1, YAML or logging libraries', () => {
    const loaded = loadEdges(VERSION_PROCESS).map(([, url]) => url);
    expect(loaded.some((u) => u.endsWith('/src/config/settings.ts'))).toBe(true);
    expect(forbiddenIn(loaded, NOT_FOR_THE_COMMAND_LINE)).toEqual([]);
  });

  it('would notice if it did: each pattern matches what loading all of src/ really loads', () => {
    expect(forbiddenIn(loadedBySrc, NOT_FOR_THE_COMMAND_LINE).map((f) => f.split(' ')[0])).toEqual(NOT_FOR_THE_COMMAND_LINE.map(([name]) => name));
  });
});
