// Starting a real meshca CA for tests: in-process (fast, shares the clock and logs) or as a child
// process through the real command line (`node bin/meshca.js serve`).

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:net';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { loadSettings } from '../../src/config/index.ts';
import { createLogger } from '../../src/observability/index.ts';
import { main } from '../../src/cli/main.ts';
import type { CommandContext } from '../../src/cli/command.ts';
import { serveConfigFrom, SERVE_OPTIONS, startCaServer, type RunningCaServer, type ServeDeps } from '../../src/server/index.ts';
import { systemClock, type Clock } from '../../src/time/index.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const MESHCA_BIN = join(REPO_ROOT, 'bin/meshca.js');

export function tempDir(prefix = 'meshca-test-'): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

export interface TestCa {
  server: RunningCaServer;
  keysDir: string;
  rootPem: string;
  /** Every log line written, parsed. */
  logs: Record<string, unknown>[];
  /** The raw log text, to search for secrets. */
  rawLogs: () => string;
  stop: () => Promise<void>;
}

/** Starts `meshca serve` in-process on free loopback ports with the given extra flags. */
export async function startTestCa(flags: string[] = [], opts: { clock?: Clock; deps?: Partial<ServeDeps>; keysDir?: string } = {}): Promise<TestCa> {
  const dir = tempDir();
  const keysDir = opts.keysDir ?? join(dir.path, 'keys');
  const { values } = loadSettings(
    SERVE_OPTIONS,
    ['--keys', keysDir, '--db', 'memory:', '--listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', '--log-level', 'debug', ...flags],
    {},
  );
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const log = createLogger('debug', sink);
  const server = await startCaServer(serveConfigFrom(values), { clock: opts.clock ?? systemClock, log, ...opts.deps });
  const rawLogs = () => chunks.join('');
  return {
    server,
    keysDir,
    rootPem: readFileSync(join(keysDir, 'root-cert.pem'), 'utf8'),
    get logs() {
      return rawLogs().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    rawLogs,
    stop: async () => {
      await server.close(2000);
      dir.cleanup();
    },
  };
}

export interface ServeProcess {
  child: ChildProcess;
  grpcAddress: string;
  httpAddress: string;
  output: () => string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

/** Runs `node bin/meshca.js serve …` and waits for its "listening" log line. */
export async function startServeProcess(args: string[], env: Record<string, string> = {}, timeoutMs = 20_000): Promise<ServeProcess> {
  const child = spawn(process.execPath, [MESHCA_BIN, 'serve', '--listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const addresses = await new Promise<{ grpc: string; http: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`meshca serve did not start within ${timeoutMs} ms:\n${out}`)), timeoutMs);
    // Scan only complete new lines, and stop listening once found: the log keeps growing.
    let pending = '';
    const check = (chunk: Buffer | string) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.includes('meshca serve listening')) continue;
        clearTimeout(timer);
        child.stdout!.off('data', check);
        child.stderr!.off('data', check);
        resolve(JSON.parse(line) as { grpc: string; http: string });
        return;
      }
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`meshca serve exited with ${code} before listening:\n${out}`));
    });
  });
  return { child, grpcAddress: addresses.grpc, httpAddress: addresses.http, output: () => out, exited };
}

/** Runs `node bin/meshca.js serve …` until its first log line (written before any port is bound), for stopping it while it starts. */
export async function startServeUntilFirstLine(args: string[]): Promise<{ child: ChildProcess; exited: Promise<number | null>; output: () => string }> {
  const child = spawn(process.execPath, [MESHCA_BIN, 'serve', '--listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve) => {
    const onData = (d: Buffer) => {
      out += d;
      if (out.includes('\n')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
  });
  return { child, exited, output: () => out };
}

/** Runs a meshca subcommand to completion. */
export function runMeshca(args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MESHCA_BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

/** Runs a meshca subcommand in this process (fast; shares the clock given), capturing its output. */
export async function meshcaInProcess(args: string[], ctx: Partial<CommandContext> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { ...ctx, stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

/** A plain TCP listener on 127.0.0.1 (port 0 picks one), to hold a port busy. */
export function listenOn(port: number): Promise<Server> {
  const server = createServer();
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

export const closeNet = (server: Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()));
