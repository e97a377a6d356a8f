// The renderer's kustomize semantics, on small kustomizations written to a temporary directory.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { render, strategicMerge } from "../kustomize.mjs";
import { compareRenderings } from "../compare.mjs";

function tree(files) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "quantd-kustomize-"));
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

const deployment = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  selector: {matchLabels: {app: a}}
  template:
    metadata: {labels: {app: a}}
    spec:
      containers:
        - name: main
          image: app
          env: [{name: A, value: "1"}, {name: B, value: "2"}]
          ports: [{containerPort: 80}]
        - name: sidecar
          image: registry:5000/side:1.0
`;

test("overlay applies namespace, images, patches and generators", () => {
  const dir = tree({
    "base/kustomization.yaml": `resources: [deployment.yaml]
generatorOptions: {disableNameSuffixHash: true}
configMapGenerator:
  - name: cfg
    files: [conf/a.txt, renamed=conf/b.txt]
    literals: [x=1]
    options: {labels: {l: v}}
`,
    "base/deployment.yaml": deployment,
    "base/conf/a.txt": "alpha\n",
    "base/conf/b.txt": "beta\n",
    "overlay/kustomization.yaml": `namespace: ns
resources: [../base]
images:
  - {name: app, newName: reg.example/app, newTag: "2"}
  - {name: registry:5000/side, newTag: "1.1"}
patches:
  - path: patch.yaml
  - patch: |
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: cfg}
      data: {x: "2"}
`,
    "overlay/patch.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: main
          env: [{name: B, value: "20"}, {name: C, value: "3"}]
`,
  });
  const [app, cfg] = render(path.join(dir, "overlay"));
  assert.equal(app.metadata.namespace, "ns");
  assert.equal(cfg.metadata.namespace, "ns");
  assert.equal(app.spec.replicas, 3);
  const [main, sidecar] = app.spec.template.spec.containers;
  assert.equal(main.image, "reg.example/app:2");
  assert.equal(sidecar.image, "registry:5000/side:1.1");
  // Merged by name; the patch's entries first, as kustomize orders them.
  assert.deepEqual(main.env, [{ name: "B", value: "20" }, { name: "C", value: "3" }, { name: "A", value: "1" }]);
  assert.deepEqual(main.ports, [{ containerPort: 80 }]);
  assert.deepEqual(cfg.data, { "a.txt": "alpha\n", renamed: "beta\n", x: "2" });
  assert.deepEqual(cfg.metadata.labels, { l: "v" });
});

test("lists without a merge key are replaced, null deletes", () => {
  const merged = strategicMerge({ args: ["a", "b"], keep: 1, drop: 2 }, { args: ["c"], drop: null }, "", "t");
  assert.deepEqual(merged, { args: ["c"], keep: 1 });
});

test("unsupported fields and directives are refused, not guessed", () => {
  const dir = tree({
    "kustomization.yaml": "resources: [d.yaml]\ncommonLabels: {a: b}\n",
    "d.yaml": deployment,
  });
  assert.throws(() => render(dir), /field "commonLabels" is not implemented/);
  const hashed = tree({ "kustomization.yaml": "configMapGenerator: [{name: c, literals: [a=b]}]\n" });
  assert.throws(() => render(hashed), /disableNameSuffixHash/);
  assert.throws(() => strategicMerge({}, { $patch: "delete" }, "", "t"), /patch directives/);
});

test("a patch must match exactly one resource", () => {
  const dir = tree({
    "kustomization.yaml": "resources: [d.yaml]\npatches: [{path: p.yaml}]\n",
    "d.yaml": deployment,
    "p.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: typo}\nspec: {replicas: 2}\n",
  });
  assert.throws(() => render(dir), /patch for Deployment\/typo matches 0 resources/);
});

test("generator files outside the kustomization directory are refused", () => {
  const dir = tree({
    "k/kustomization.yaml": "generatorOptions: {disableNameSuffixHash: true}\nconfigMapGenerator: [{name: c, files: [../x.txt]}]\n",
    "x.txt": "x",
  });
  assert.throws(() => render(path.join(dir, "k")), /outside the kustomization directory/);
});

test("renderings compare regardless of order", () => {
  const a = [{ kind: "A", metadata: { name: "1" }, x: { p: 1, q: 2 } }, { kind: "B", metadata: { name: "2" } }];
  const b = [{ kind: "B", metadata: { name: "2" } }, { kind: "A", metadata: { name: "1" }, x: { q: 2, p: 1 } }];
  assert.deepEqual(compareRenderings(a, b), []);
  b[1].x.q = 3;
  assert.deepEqual(compareRenderings(a, b), ["A/1.x.q: 2 vs 3"]);
});
