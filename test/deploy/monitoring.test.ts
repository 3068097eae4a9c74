// deploy/monitoring against what meshca really exports: every metric the Grafana dashboard and
// the PrometheusRule name appears in the /metrics of a running CA (with every feature on that
// the manifests turn on) or of a running agent.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { FakeKubeApiServer } from '../fakes/kube_api_server.ts';
import { runTestAgent, writeToken, type TestAgent } from '../agent/harness.ts';
import { REPO_ROOT, startTestCa, tempDir, type TestCa } from '../helpers/serve.ts';

const HISTOGRAM_SUFFIX = /_(bucket|sum|count)$/;

function metricNamesIn(text: string): Set<string> {
  return new Set([...text.matchAll(/\bmeshca_[a-z0-9_]+/g)].map((m) => m[0]));
}

/** Names a /metrics page declares (# TYPE lines), so counters with no sample yet count too. */
function exportedNames(page: string): Set<string> {
  return new Set([...page.matchAll(/^# TYPE (meshca_[a-z0-9_]+) /gm)].map((m) => m[1]!));
}

describe('deploy/monitoring', () => {
  const dir = tempDir('meshca-monitoring-');
  let api: FakeKubeApiServer;
  let ca: TestCa;
  let agent: TestAgent;
  const exported = new Set<string>();

  beforeAll(async () => {
    api = await FakeKubeApiServer.start();
    const kubeconfig = api.writeKubeconfig(dir.path);
    ca = await startTestCa(['--injector', '--injector-listen', '127.0.0.1:0', '--leader-election', 'on', '--distribute-bundle', 'on', '--kubeconfig', kubeconfig, '--authn', 'tokenreview', '--sds']);
    const rootPath = join(dir.path, 'root.pem');
    writeFileSync(rootPath, ca.rootPem);
    await writeToken(ca.keysDir, join(dir.path, 'token'));
    agent = await runTestAgent({ caAddress: ca.server.grpcAddress, dir: dir.path, rootCertPath: rootPath, ttlMs: 600_000 });
    for (const url of [`http://${ca.server.httpAddress}/metrics`, `http://${agent.running.http!.address}/metrics`]) {
      for (const name of exportedNames(await (await fetch(url)).text())) exported.add(name);
    }
  }, 60_000);
  afterAll(async () => {
    await agent?.stop();
    await ca?.stop();
    await api?.close();
    dir.cleanup();
  });

  it('every metric the Grafana dashboard queries is exported', () => {
    const dashboard = JSON.parse(readFileSync(join(REPO_ROOT, 'deploy/monitoring/grafana-dashboard.json'), 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
    expect(dashboard.panels.length).toBeGreaterThanOrEqual(10);
    for (const panel of dashboard.panels) {
      for (const t of panel.targets) {
        const names = metricNamesIn(t.expr);
        expect(names.size, `${panel.title}: ${t.expr}`).toBeGreaterThan(0);
        for (const name of names) expect(exported.has(name) || exported.has(name.replace(HISTOGRAM_SUFFIX, '')), `${panel.title}: ${name}`).toBe(true);
      }
    }
  });

  it('every metric the PrometheusRule alerts on is exported, and each alert says what to do', () => {
    const rule = parseAllDocuments(readFileSync(join(REPO_ROOT, 'deploy/monitoring/prometheusrule.yaml'), 'utf8'))[0]!.toJS() as {
      spec: { groups: { rules: { alert: string; expr: string; annotations: { summary: string; description: string } }[] }[] };
    };
    const alerts = rule.spec.groups.flatMap((g) => g.rules);
    expect(alerts.map((a) => a.alert)).toEqual(expect.arrayContaining(['MeshcaIntermediateExpiringSoon', 'MeshcaRootExpiringSoon', 'MeshcaIssuanceErrors', 'MeshcaLedgerUnavailable', 'MeshcaLedgerCheckpointOverdue', 'MeshcaNoLeader', 'MeshcaAgentsFailingToRenew']));
    for (const a of alerts) {
      expect(a.annotations.summary && a.annotations.description, a.alert).toBeTruthy();
      for (const name of metricNamesIn(a.expr)) expect(exported.has(name) || exported.has(name.replace(HISTOGRAM_SUFFIX, '')), `${a.alert}: ${name}`).toBe(true);
    }
  });

  it('the metrics the alerts need carry values: the leader holds its Lease, the ledger recorded an append and a checkpoint', async () => {
    // The first Lease attempt runs as serve starts; its answer may come just after.
    await vi.waitFor(async () => expect(await (await fetch(`http://${ca.server.httpAddress}/metrics`)).text()).toMatch(/^meshca_leader 1$/m), { timeout: 5000, interval: 100 });
    const page = await (await fetch(`http://${ca.server.httpAddress}/metrics`)).text();
    expect(page).toMatch(/^meshca_ledger_append_duration_seconds_count\{result="ok"\} [1-9]/m);
    // The ledger checkpoints as it binds; its age is read from the ledger at scrape time.
    expect(page).toMatch(/^meshca_ledger_checkpoint_age_seconds \d/m);
    expect(page).toMatch(/^meshca_ca_cert_expiry_timestamp_seconds\{cert="intermediate"\} \d+/m);
  });
});
