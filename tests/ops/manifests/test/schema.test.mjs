// The schema check rejects what `kubectl apply --validate=strict` would.
import assert from "node:assert/strict";
import { test } from "node:test";
import { validateObject } from "../schema.mjs";

const service = () => ({
  apiVersion: "v1",
  kind: "Service",
  metadata: { name: "s", labels: { any: "label" } },
  spec: { selector: { app: "a" }, ports: [{ name: "http", port: 80, targetPort: "http" }] },
});

test("a valid object passes", async () => {
  assert.deepEqual(await validateObject(service()), []);
});

test("wrong types and missing required fields are reported", async () => {
  const s = service();
  s.spec.ports[0].port = "eighty";
  delete s.spec.ports[0].name;
  const errors = await validateObject(s);
  assert.match(errors.join("\n"), /port must be integer/);
});

test("unknown fields are reported with their path, however deep", async () => {
  const s = service();
  s.spec.selectr = {};
  s.spec.ports[0].protocl = "TCP";
  const errors = await validateObject(s);
  assert.deepEqual(errors.sort(), [
    "Service/s.spec.ports[0].protocl: unknown field (ServicePort has no such property)",
    "Service/s.spec.selectr: unknown field (ServiceSpec has no such property)",
  ]);
});

test("CRDs (ServiceMonitor) are checked too", async () => {
  const monitor = {
    apiVersion: "monitoring.coreos.com/v1",
    kind: "ServiceMonitor",
    metadata: { name: "m" },
    spec: { selector: {}, endpoints: [{ port: "metrics", interval: 15 }] },
  };
  assert.match((await validateObject(monitor)).join("\n"), /interval must be string/);
});

test("kinds without a schema are an error, not a pass", async () => {
  const errors = await validateObject({ apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" } });
  assert.match(errors[0], /no schema for apiVersion example.com\/v1 kind Widget/);
});

test("fields of the interfaces a type extends are declared too, and checked deeply", async () => {
  const monitor = (tlsConfig) => ({
    apiVersion: "monitoring.coreos.com/v1",
    kind: "ServiceMonitor",
    metadata: { name: "m" },
    spec: {
      selector: { matchLabels: { a: "b" } },
      endpoints: [{ port: "metrics", scheme: "https", tlsConfig,
                    authorization: { credentials: { name: "t", key: "token" } } }],
    },
  });
  assert.deepEqual(await validateObject(monitor({ ca: { secret: { name: "tls", key: "ca.crt" } } })), []);
  const errors = await validateObject(monitor({ caa: {} }));
  assert.match(errors.join("\n"), /endpoints\[0\]\.tlsConfig\.caa: unknown field/);
});
