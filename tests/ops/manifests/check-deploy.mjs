// Checks of deploy/ and docker-compose.yml, run by ctest (tests/ops/CMakeLists.txt):
//   node check-deploy.mjs render        overlays render; equal to real kustomize's output
//   node check-deploy.mjs schema        every rendered object valid against the Kubernetes schemas
//   node check-deploy.mjs requirements  what the operations issue asks of the manifests
//   node check-deploy.mjs compose       docker-compose.yml is complete and consistent with deploy/
//   node check-deploy.mjs promql FIXTURE
//       dashboard and alert expressions parse (promtool) and name only series that FIXTURE
//       (quantd-metric-series-names: a dump of quantd's registry) exports;
//       every alert has a promtool unit test
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { compareRenderings } from "./compare.mjs";
import { parseYamlDocuments, render } from "./kustomize.mjs";
import { dashboardExpressions, metricNames, PROMETHEUS_SERIES, ruleExpressions } from "./promql.mjs";
import { validateObject } from "./schema.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../../..");
const deploy = path.join(repo, "deploy");
const monitoring = path.join(deploy, "base/monitoring");
const overlays = fs.readdirSync(path.join(deploy, "overlays")).sort();

const errors = [];
const fail = (message) => errors.push(message);
const readYaml = (file) => parseYamlDocuments(fs.readFileSync(file, "utf8"), file);

function renderAll() {
  return new Map(overlays.map((o) => [o, render(path.join(deploy, "overlays", o))]));
}

function kubectlKustomize(dir) {
  const probe = spawnSync("kubectl", ["kustomize", "--help"], { encoding: "utf8" });
  if (probe.error || probe.status !== 0) return null;
  return parseYamlDocuments(execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8" }), dir);
}

function checkRender() {
  for (const [overlay, objects] of renderAll()) {
    const golden = path.join(here, "golden", `${overlay}.yaml`);
    if (!fs.existsSync(golden)) {
      fail(`${overlay}: no golden rendering ${path.relative(repo, golden)}; run tests/ops/manifests/update-golden.sh`);
      continue;
    }
    for (const d of compareRenderings(objects, readYaml(golden))) {
      fail(`${overlay}: this renderer vs golden (real kustomize): ${d}`);
    }
    const live = kubectlKustomize(path.join(deploy, "overlays", overlay));
    if (live === null) {
      console.log(`${overlay}: kubectl not found; compared with the golden rendering only`);
      continue;
    }
    for (const d of compareRenderings(readYaml(golden), live)) {
      fail(`${overlay}: golden vs kubectl kustomize (stale golden? run update-golden.sh): ${d}`);
    }
    console.log(`${overlay}: ${objects.length} objects; equal to kubectl kustomize and the golden file`);
  }
}

async function checkSchema() {
  for (const [overlay, objects] of renderAll()) {
    for (const object of objects) {
      for (const e of await validateObject(object)) fail(`${overlay}: ${e}`);
    }
    console.log(`${overlay}: validated ${objects.length} objects`);
  }
}

function find(objects, kind, name) {
  return objects.find((o) => o.kind === kind && o.metadata?.name === name);
}

function containerPort(container, name) {
  return (container.ports ?? []).find((p) => p.name === name);
}

function checkPodWorkload(overlay, workload, role) {
  const where = `${overlay}: ${workload.kind}/${workload.metadata.name}`;
  const pod = workload.spec.template;
  const labels = pod.metadata?.labels ?? {};
  for (const [k, v] of Object.entries(workload.spec.selector?.matchLabels ?? {})) {
    if (labels[k] !== v) fail(`${where}: selector ${k}=${v} does not match the pod template's labels`);
  }
  for (const c of pod.spec.containers) {
    if (!containerPort(c, "metrics")) fail(`${where}: container ${c.name} has no port named metrics`);
    if (c.livenessProbe?.httpGet?.path !== "/healthz" || c.livenessProbe?.httpGet?.port !== "metrics") {
      fail(`${where}: container ${c.name}: livenessProbe must GET /healthz on port metrics`);
    }
    if (c.readinessProbe?.httpGet?.path !== "/readyz" || c.readinessProbe?.httpGet?.port !== "metrics") {
      fail(`${where}: container ${c.name}: readinessProbe must GET /readyz on port metrics`);
    }
    if (!c.resources?.requests?.cpu || !c.resources?.requests?.memory) {
      fail(`${where}: container ${c.name}: resources.requests needs cpu and memory`);
    }
    if (role === "worker" && !c.resources?.limits?.["nvidia.com/gpu"]) {
      fail(`${where}: container ${c.name}: resources.limits needs nvidia.com/gpu`);
    }
    const address = (c.env ?? []).find((e) => e.name === "QUANTD_METRICS_ADDRESS")?.value ?? "";
    if (Number(address.split(":").pop()) !== containerPort(c, "metrics")?.containerPort) {
      fail(`${where}: QUANTD_METRICS_ADDRESS "${address}" does not serve the metrics port`);
    }
  }
  if (role === "worker" && !pod.spec.nodeSelector && !pod.spec.affinity) {
    fail(`${where}: workers need a nodeSelector or affinity for GPU nodes`);
  }
  if (role === "worker" && !(pod.spec.tolerations ?? []).some((t) => t.key === "nvidia.com/gpu")) {
    fail(`${where}: workers need a toleration for nvidia.com/gpu taints`);
  }
}

// Secret-backed volume of a pod template mounted by its containers: {volume, mountPath}, or undefined.
function secretMount(workload, secretName) {
  const spec = workload.spec.template.spec;
  const volume = (spec.volumes ?? []).find((v) => v.secret?.secretName === secretName);
  if (!volume) return undefined;
  const mount = spec.containers.flatMap((c) => c.volumeMounts ?? []).find((m) => m.name === volume.name);
  return mount ? { volume, mountPath: mount.mountPath } : undefined;
}

// TLS and credentials (docs/security.md): the server serves TLS with identities from Secrets and
// probes over https; workers verify it with the CA only (never the server's key) and authenticate
// with their token; Prometheus' configuration scrapes with TLS and tokens.
function checkSecurity(overlay, objects) {
  const server = find(objects, "Deployment", "quantd");
  const worker = find(objects, "DaemonSet", "quantd-worker");
  const env = (w) => Object.fromEntries((w?.spec.template.spec.containers[0].env ?? []).map((e) => [e.name, e.value]));
  const serverEnv = env(server), workerEnv = env(worker);
  const tls = secretMount(server, "quantd-tls"), ids = secretMount(server, "quantd-identities");
  if (!tls || serverEnv.QUANTD_TLS_CERT !== `${tls.mountPath}/tls.crt` || serverEnv.QUANTD_TLS_KEY !== `${tls.mountPath}/tls.key`) {
    fail(`${overlay}: Deployment/quantd must serve TLS with tls.crt and tls.key of Secret quantd-tls`);
  }
  if (!ids || serverEnv.QUANTD_IDENTITIES !== `${ids.mountPath}/identities.json`) {
    fail(`${overlay}: Deployment/quantd must read QUANTD_IDENTITIES from Secret quantd-identities`);
  }
  if (serverEnv.QUANTD_INSECURE) fail(`${overlay}: Deployment/quantd must not set QUANTD_INSECURE`);
  for (const probe of ["livenessProbe", "readinessProbe", "startupProbe"]) {
    const get = server?.spec.template.spec.containers[0][probe]?.httpGet;
    if (get && serverEnv.QUANTD_METRICS_TLS === "true" && get.scheme !== "HTTPS") {
      fail(`${overlay}: Deployment/quantd: ${probe} must use scheme HTTPS (QUANTD_METRICS_TLS)`);
    }
  }
  const ca = secretMount(worker, "quantd-tls");
  const items = ca?.volume.secret.items ?? [];
  if (!ca || items.length !== 1 || items[0].key !== "ca.crt" || workerEnv.QUANTD_TLS_CA !== `${ca.mountPath}/${items[0].path}`) {
    fail(`${overlay}: DaemonSet/quantd-worker must mount only ca.crt of Secret quantd-tls as QUANTD_TLS_CA`);
  }
  const token = secretMount(worker, "quantd-worker-token");
  if (!token || workerEnv.QUANTD_TOKEN_FILE !== `${token.mountPath}/token`) {
    fail(`${overlay}: DaemonSet/quantd-worker must read QUANTD_TOKEN_FILE from Secret quantd-worker-token`);
  }
  const [prometheus] = readYaml(path.join(monitoring, "prometheus.yml"));
  for (const job of prometheus.scrape_configs) {
    if (!job.authorization?.credentials_file) fail(`prometheus.yml: job ${job.job_name} sends no bearer token`);
  }
  const quantdJob = prometheus.scrape_configs.find((c) => c.job_name === "quantd");
  if (quantdJob?.scheme !== "https" || !quantdJob?.tls_config?.ca_file) {
    fail("prometheus.yml: job quantd must scrape over https with the CA");
  }
}

// mountPath of the volume backed by PVC `claim` in a pod template, or undefined.
function claimMountPath(workload, claim) {
  const spec = workload.spec.template.spec;
  const volume = (spec.volumes ?? []).find((v) => v.persistentVolumeClaim?.claimName === claim);
  if (!volume) return undefined;
  const mounts = spec.containers.flatMap((c) => c.volumeMounts ?? []);
  return mounts.find((m) => m.name === volume.name)?.mountPath;
}

function checkService(overlay, objects, name, ports, workload) {
  const service = find(objects, "Service", name);
  if (!service) return fail(`${overlay}: Service/${name} missing`);
  const labels = workload?.spec.template.metadata.labels ?? {};
  for (const [k, v] of Object.entries(service.spec.selector ?? {})) {
    if (labels[k] !== v) fail(`${overlay}: Service/${name} selector ${k}=${v} selects no ${workload?.kind} pod`);
  }
  for (const port of ports) {
    if (!(service.spec.ports ?? []).some((p) => p.name === port)) fail(`${overlay}: Service/${name} has no port ${port}`);
  }
  return service;
}

function checkRequirements() {
  for (const [overlay, objects] of renderAll()) {
    const server = find(objects, "Deployment", "quantd");
    const worker = objects.find((o) => ["DaemonSet", "Deployment"].includes(o.kind) && o.metadata.name === "quantd-worker");
    if (!server) fail(`${overlay}: Deployment/quantd (the server) missing`);
    if (!worker) fail(`${overlay}: DaemonSet or Deployment quantd-worker missing`);
    if (!server || !worker) continue;
    checkPodWorkload(overlay, server, "server");
    checkPodWorkload(overlay, worker, "worker");
    if (server.spec.replicas !== 1 || server.spec.strategy?.type !== "Recreate") {
      fail(`${overlay}: the server has one SQLite writer: replicas 1 and strategy Recreate`);
    }
    if (!find(objects, "PersistentVolumeClaim", "quantd-state") || !claimMountPath(server, "quantd-state")) {
      fail(`${overlay}: the server must mount PersistentVolumeClaim quantd-state`);
    }
    const serverModels = claimMountPath(server, "quantd-models");
    const workerModels = claimMountPath(worker, "quantd-models");
    if (!find(objects, "PersistentVolumeClaim", "quantd-models") || !serverModels || serverModels !== workerModels) {
      fail(`${overlay}: PVC quantd-models must be mounted at the same path in server (${serverModels}) ` +
           `and workers (${workerModels})`);
    }
    const roots = server.spec.template.spec.containers[0].env?.find((e) => e.name === "QUANTD_ALLOWED_ROOTS")?.value;
    if (roots !== serverModels) fail(`${overlay}: QUANTD_ALLOWED_ROOTS (${roots}) should be the model volume ${serverModels}`);
    checkService(overlay, objects, "quantd", ["grpc", "metrics"], server);
    const workerService = checkService(overlay, objects, "quantd-worker", ["metrics"], worker);
    if (workerService && workerService.spec.clusterIP !== "None") {
      fail(`${overlay}: Service/quantd-worker must be headless (DNS discovery of every worker)`);
    }
    const prometheus = find(objects, "ConfigMap", "quantd-prometheus");
    if (!prometheus?.data?.["prometheus.yml"] || !prometheus?.data?.["alerts.yml"]) {
      fail(`${overlay}: ConfigMap quantd-prometheus needs prometheus.yml and alerts.yml`);
    }
    const dashboard = find(objects, "ConfigMap", "quantd-grafana-dashboard");
    if (!dashboard?.data?.["quantd-dashboard.json"] || dashboard.metadata.labels?.grafana_dashboard !== "1") {
      fail(`${overlay}: ConfigMap quantd-grafana-dashboard needs the dashboard and label grafana_dashboard: "1"`);
    }
    const monitors = objects.filter((o) => o.kind === "ServiceMonitor");
    for (const name of monitors.length ? ["quantd", "quantd-worker"] : []) {
      const service = find(objects, "Service", name);
      const scraping = monitors.filter((monitor) =>
        Object.entries(monitor.spec.selector?.matchLabels ?? {}).every(([k, v]) => service?.metadata.labels?.[k] === v) &&
        monitor.spec.endpoints.every((e) => (service?.spec.ports ?? []).some((p) => p.name === e.port)));
      if (scraping.length !== 1) fail(`${overlay}: Service/${name} is scraped by ${scraping.length} ServiceMonitors, expected 1`);
      for (const e of scraping.flatMap((m) => m.spec.endpoints)) {
        // /metrics needs a token everywhere, and the server serves it over TLS (docs/security.md).
        if (!e.authorization?.credentials?.name) fail(`${overlay}: scraping Service/${name} sends no bearer token`);
        if (name === "quantd" && (e.scheme !== "https" || !e.tlsConfig?.ca)) {
          fail(`${overlay}: Service/quantd must be scraped over https with the CA of quantd-tls`);
        }
      }
    }
    checkSecurity(overlay, objects);
    console.log(`${overlay}: requirements checked`);
  }
  if (!renderAll().get("production")?.some((o) => o.kind === "ServiceMonitor")) {
    fail("production: a ServiceMonitor is expected");
  }
}

function checkCompose() {
  const file = path.join(repo, "docker-compose.yml");
  const [compose] = readYaml(file);
  const services = compose?.services ?? {};
  for (const name of ["quantd", "quantd-worker", "prometheus", "grafana"]) {
    if (!services[name]) fail(`docker-compose.yml: service ${name} missing`);
  }
  const mounts = new Map();  // container path -> host path, per service
  for (const [name, service] of Object.entries(services)) {
    for (const volume of service.volumes ?? []) {
      const [source, target] = String(volume).split(":");
      if (source.startsWith("./")) {
        if (!fs.existsSync(path.join(repo, source))) fail(`docker-compose.yml: ${name} mounts ${source}, which does not exist`);
        mounts.set(`${name}:${target}`, path.normalize(source));
      }
    }
  }
  const build = services.quantd?.build;
  if (!build || !fs.existsSync(path.join(repo, build.context ?? build, build.dockerfile ?? "Dockerfile"))) {
    fail("docker-compose.yml: quantd must build from the repository's Dockerfile");
  }
  const devices = services["quantd-worker"]?.deploy?.resources?.reservations?.devices ?? [];
  if (!devices.some((d) => d.driver === "nvidia" && (d.capabilities ?? []).includes("gpu"))) {
    fail("docker-compose.yml: quantd-worker must reserve NVIDIA GPUs");
  }
  const expected = {
    "prometheus:/etc/prometheus/prometheus.yml": "deploy/base/monitoring/prometheus.yml",
    "prometheus:/etc/prometheus/alerts.yml": "deploy/base/monitoring/alerts.yml",
    "grafana:/var/lib/grafana/dashboards/quantd.json": "deploy/base/monitoring/quantd-dashboard.json",
    "grafana:/etc/grafana/provisioning": "deploy/compose/grafana/provisioning",
  };
  for (const [target, source] of Object.entries(expected)) {
    if (mounts.get(target) !== source) fail(`docker-compose.yml: ${target} should mount ./${source} (the file deploy/ uses)`);
  }
  // The scrape targets' ports are the ports the processes serve metrics on.
  const [prometheus] = readYaml(path.join(monitoring, "prometheus.yml"));
  const jobPort = (job) => {
    const config = prometheus.scrape_configs.find((c) => c.job_name === job);
    return Number(config?.static_configs?.[0]?.targets?.[0]?.split(":")[1] ?? config?.dns_sd_configs?.[0]?.port);
  };
  for (const [service, job] of [["quantd", "quantd"], ["quantd-worker", "quantd-worker"]]) {
    const env = services[service]?.environment ?? {};
    const address = env.QUANTD_METRICS_ADDRESS ?? "0.0.0.0:7451";  // the image's default
    if (Number(address.split(":").pop()) !== jobPort(job)) {
      fail(`docker-compose.yml: ${service} serves metrics at ${address} but prometheus.yml scrapes port ${jobPort(job)}`);
    }
  }
  if (prometheus.rule_files?.[0] !== "/etc/prometheus/alerts.yml") fail("prometheus.yml must load /etc/prometheus/alerts.yml");
  console.log(`docker-compose.yml: ${Object.keys(services).length} services checked`);
}

function checkPromql(seriesNames) {
  if (!seriesNames) return fail("promql: pass the path of quantd-metric-series-names");
  const series = new Set(execFileSync(seriesNames, [], { encoding: "utf8" }).split("\n").filter(Boolean));
  const dashboard = JSON.parse(fs.readFileSync(path.join(monitoring, "quantd-dashboard.json"), "utf8"));
  const [rules] = readYaml(path.join(monitoring, "alerts.yml"));
  const expressions = [...dashboardExpressions(dashboard), ...ruleExpressions(rules)];
  for (const { where, expr } of expressions) {
    for (const name of metricNames(expr)) {
      if (!series.has(name) && !PROMETHEUS_SERIES.has(name)) {
        fail(`${where}: ${name} is not exported by quantd (not in quantd_metrics.h): ${expr}`);
      }
    }
  }
  // Let promtool parse every expression: as recording rules, Grafana's $__rate_interval as 5m.
  const groups = [{
    name: "dashboard",
    rules: expressions.map(({ expr }, i) => ({ record: `quantd_check:expr_${i}`, expr: expr.replaceAll("$__rate_interval", "5m") })),
  }];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "quantd-promql-"));
  try {
    fs.writeFileSync(path.join(dir, "rules.yml"), YAML.stringify({ groups }));
    const result = spawnSync("promtool", ["check", "rules", path.join(dir, "rules.yml")], { encoding: "utf8" });
    if (result.status !== 0) fail(`promtool rejects an expression:\n${result.stdout}${result.stderr}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  // Every alert has a promtool unit test (tests/ops/prometheus/alerts_test.yml, ctest ops_alert_rules).
  const [alertTests] = readYaml(path.join(repo, "tests/ops/prometheus/alerts_test.yml"));
  const tested = new Set(alertTests.tests.flatMap((t) => (t.alert_rule_test ?? []).map((a) => a.alertname)));
  for (const group of rules.groups) {
    for (const rule of group.rules) {
      if (rule.alert && !tested.has(rule.alert)) fail(`alert ${rule.alert} has no test in tests/ops/prometheus/alerts_test.yml`);
    }
  }
  const titles = dashboard.panels.map((p) => p.title.toLowerCase()).join("\n");
  for (const topic of ["queue depth", "running jobs", "job duration", "layer time", "gpu memory", "error rate"]) {
    if (!titles.includes(topic)) fail(`dashboard: no panel titled with "${topic}"`);
  }
  console.log(`promql: ${expressions.length} expressions against ${series.size} exported series`);
}

const [command, argument] = process.argv.slice(2);
const commands = {
  render: checkRender, schema: checkSchema, requirements: checkRequirements, compose: checkCompose,
  promql: () => checkPromql(argument),
};
if (!commands[command]) {
  console.error(`usage: node check-deploy.mjs ${Object.keys(commands).join("|")} [quantd-metric-series-names]`);
  process.exit(2);
}
try {
  await commands[command]();
} catch (e) {
  fail(e.message);
}
for (const e of errors) console.error(`FAIL ${e}`);
process.exit(errors.length === 0 ? 0 : 1);
