// A renderer for the subset of kustomize that deploy/ uses, so that the manifests can be rendered
// and validated where no kustomize binary exists (Debian 12 packages none). It refuses every
// kustomization field and directive it does not implement, rather than guess. Its output is
// compared with real kustomize's (golden files made by `kubectl kustomize`, see update-golden.sh).
//
// Implemented (kustomize v5 semantics):
//   resources          files (multi-document YAML) and directories (another kustomization)
//   configMapGenerator name, files ("path" or "key=path"), literals, options.labels/annotations;
//                      requires generatorOptions.disableNameSuffixHash: true
//   patches            strategic merge patches given by `path` or inline `patch`, several
//                      documents per file; list merge keys as in the Kubernetes API
//   namespace          set on every namespaced object
//   images             name -> newName / newTag on containers and initContainers
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";

const SUPPORTED_FIELDS = new Set([
  "apiVersion", "kind", "resources", "namespace", "images", "patches", "configMapGenerator",
  "generatorOptions",
]);

const CLUSTER_SCOPED_KINDS = new Set([
  "Namespace", "Node", "PersistentVolume", "StorageClass", "ClusterRole", "ClusterRoleBinding",
  "CustomResourceDefinition", "PriorityClass", "RuntimeClass", "IngressClass",
  "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService", "CSIDriver",
]);

// List fields merged by key in strategic merge patches (the Kubernetes API's patchMergeKey).
const MERGE_KEYS = {
  containers: "name", initContainers: "name", ephemeralContainers: "name", volumes: "name",
  env: "name", imagePullSecrets: "name", volumeMounts: "mountPath", volumeDevices: "devicePath",
  hostAliases: "ip", topologySpreadConstraints: "topologyKey",
};

export class KustomizeError extends Error {}

export function parseYamlDocuments(text, where) {
  const documents = YAML.parseAllDocuments(text);
  const objects = [];
  for (const document of documents) {
    if (document.errors.length > 0) {
      throw new KustomizeError(`${where}: invalid YAML: ${document.errors[0].message}`);
    }
    const value = document.toJS();
    if (value !== null && value !== undefined) objects.push(value);
  }
  return objects;
}

function readKustomization(dir) {
  for (const name of ["kustomization.yaml", "kustomization.yml", "Kustomization"]) {
    const file = path.join(dir, name);
    if (fs.existsSync(file)) {
      const [k] = parseYamlDocuments(fs.readFileSync(file, "utf8"), file);
      return { file, k: k ?? {} };
    }
  }
  throw new KustomizeError(`${dir}: no kustomization.yaml`);
}

export function resourceId(o) {
  return `${o.kind}/${o.metadata?.namespace ? o.metadata.namespace + "/" : ""}${o.metadata?.name}`;
}

function generateConfigMap(dir, file, spec, options) {
  const where = `${file}: configMapGenerator ${spec.name ?? "(unnamed)"}`;
  for (const key of Object.keys(spec)) {
    if (!["name", "files", "literals", "options"].includes(key)) {
      throw new KustomizeError(`${where}: field "${key}" is not implemented by this renderer`);
    }
  }
  if (!spec.name) throw new KustomizeError(`${where}: name is required`);
  if (options?.disableNameSuffixHash !== true) {
    throw new KustomizeError(`${where}: set generatorOptions.disableNameSuffixHash: true ` +
                             `(name hash suffixes are not implemented by this renderer)`);
  }
  const data = {};
  for (const entry of spec.files ?? []) {
    const [key, relative] = entry.includes("=") ? entry.split("=", 2) : [path.basename(entry), entry];
    const source = path.resolve(dir, relative);
    if (!source.startsWith(path.resolve(dir) + path.sep)) {
      throw new KustomizeError(`${where}: ${entry} is outside the kustomization directory ` +
                               `(kustomize refuses it)`);
    }
    if (!fs.existsSync(source)) throw new KustomizeError(`${where}: ${entry} does not exist`);
    data[key] = fs.readFileSync(source, "utf8");
  }
  for (const literal of spec.literals ?? []) {
    const at = literal.indexOf("=");
    if (at < 0) throw new KustomizeError(`${where}: literal "${literal}" is not KEY=VALUE`);
    data[literal.slice(0, at)] = literal.slice(at + 1);
  }
  const metadata = { name: spec.name };
  if (spec.options?.labels) metadata.labels = { ...spec.options.labels };
  if (spec.options?.annotations) metadata.annotations = { ...spec.options.annotations };
  return { apiVersion: "v1", kind: "ConfigMap", metadata, data };
}

function isPlainObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

// Strategic merge of `patch` into `target` (both plain JSON values); returns the merged value.
export function strategicMerge(target, patch, fieldName, where) {
  if (isPlainObject(patch)) {
    if ("$patch" in patch || Object.keys(patch).some((k) => k.startsWith("$"))) {
      throw new KustomizeError(`${where}: patch directives ($patch, $setElementOrder...) ` +
                               `are not implemented by this renderer`);
    }
    const merged = isPlainObject(target) ? { ...target } : {};
    for (const [key, value] of Object.entries(patch)) {
      if (value === null) {
        delete merged[key];
      } else {
        merged[key] = strategicMerge(merged[key], value, key, `${where}.${key}`);
      }
    }
    return merged;
  }
  if (Array.isArray(patch)) {
    let mergeKey = MERGE_KEYS[fieldName];
    if (fieldName === "ports") {
      mergeKey = patch.every((p) => isPlainObject(p) && "containerPort" in p) ? "containerPort" : "port";
    }
    if (!mergeKey || !Array.isArray(target) || !patch.every((p) => isPlainObject(p) && mergeKey in p)) {
      return structuredClone(patch);  // lists without a merge key are replaced
    }
    // As kustomize orders them: the patch's items first (merged into their originals), then the
    // originals the patch does not name, each group in its own order.
    const patchKeys = new Set(patch.map((item) => item[mergeKey]));
    const merged = patch.map((item) => {
      const original = target.find((existing) => existing?.[mergeKey] === item[mergeKey]);
      return original === undefined ? structuredClone(item)
          : strategicMerge(original, item, "", `${where}[${mergeKey}=${item[mergeKey]}]`);
    });
    for (const item of target) {
      if (!patchKeys.has(item?.[mergeKey])) merged.push(structuredClone(item));
    }
    return merged;
  }
  return patch;
}

function applyPatch(resources, patch, where) {
  const name = patch?.metadata?.name;
  if (!patch?.kind || !name) {
    throw new KustomizeError(`${where}: a strategic merge patch needs kind and metadata.name`);
  }
  const matches = resources.filter((r) => r.kind === patch.kind && r.metadata?.name === name &&
      (!patch.apiVersion || r.apiVersion === patch.apiVersion) &&
      (!patch.metadata.namespace || r.metadata?.namespace === patch.metadata.namespace));
  if (matches.length !== 1) {
    throw new KustomizeError(`${where}: patch for ${patch.kind}/${name} matches ` +
                             `${matches.length} resources (expected exactly one)`);
  }
  const target = matches[0];
  const { apiVersion, kind, ...rest } = patch;
  const merged = strategicMerge(target, rest, "", `${where} ${patch.kind}/${name}`);
  resources[resources.indexOf(target)] = merged;
}

function splitImage(image) {
  // name[:tag][@digest]; a ":" before the last "/" belongs to a registry port.
  let rest = image;
  let digest = "";
  const at = rest.indexOf("@");
  if (at >= 0) [rest, digest] = [rest.slice(0, at), rest.slice(at)];
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) return { name: rest.slice(0, colon), tag: rest.slice(colon + 1), digest };
  return { name: rest, tag: "", digest };
}

function podSpecs(resource) {
  const specs = [];
  if (resource.kind === "Pod") specs.push(resource.spec);
  if (resource.spec?.template?.spec) specs.push(resource.spec.template.spec);
  if (resource.spec?.jobTemplate?.spec?.template?.spec) specs.push(resource.spec.jobTemplate.spec.template.spec);
  return specs.filter(Boolean);
}

function applyImages(resources, images, where) {
  for (const image of images) {
    for (const key of Object.keys(image)) {
      if (!["name", "newName", "newTag"].includes(key)) {
        throw new KustomizeError(`${where}: images field "${key}" is not implemented by this renderer`);
      }
    }
    for (const resource of resources) {
      for (const spec of podSpecs(resource)) {
        for (const container of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) {
          const parts = splitImage(container.image ?? "");
          if (parts.name !== image.name) continue;
          const name = image.newName ?? parts.name;
          const tag = image.newTag !== undefined ? String(image.newTag) : parts.tag;
          container.image = name + (tag ? `:${tag}` : "") + parts.digest;
        }
      }
    }
  }
}

// Renders the kustomization in `dir`; returns the list of Kubernetes objects.
export function render(dir) {
  const { file, k } = readKustomization(dir);
  for (const key of Object.keys(k)) {
    if (!SUPPORTED_FIELDS.has(key)) {
      throw new KustomizeError(`${file}: field "${key}" is not implemented by this renderer ` +
                               `(it supports ${[...SUPPORTED_FIELDS].join(", ")})`);
    }
  }
  const resources = [];
  for (const entry of k.resources ?? []) {
    const source = path.resolve(dir, entry);
    if (!fs.existsSync(source)) throw new KustomizeError(`${file}: resource ${entry} does not exist`);
    if (fs.statSync(source).isDirectory()) {
      resources.push(...render(source));
    } else {
      resources.push(...parseYamlDocuments(fs.readFileSync(source, "utf8"), source));
    }
  }
  const options = k.generatorOptions ?? {};
  for (const key of Object.keys(options)) {
    if (key !== "disableNameSuffixHash") {
      throw new KustomizeError(`${file}: generatorOptions.${key} is not implemented by this renderer`);
    }
  }
  for (const spec of k.configMapGenerator ?? []) resources.push(generateConfigMap(dir, file, spec, options));
  for (const [i, patch] of (k.patches ?? []).entries()) {
    const where = `${file}: patches[${i}]`;
    if (patch.target || patch.options) {
      throw new KustomizeError(`${where}: target/options are not implemented by this renderer`);
    }
    let documents;
    if (patch.path) {
      const source = path.resolve(dir, patch.path);
      if (!fs.existsSync(source)) throw new KustomizeError(`${where}: ${patch.path} does not exist`);
      documents = parseYamlDocuments(fs.readFileSync(source, "utf8"), source);
    } else if (patch.patch) {
      documents = parseYamlDocuments(patch.patch, where);
    } else {
      throw new KustomizeError(`${where}: needs path or patch`);
    }
    for (const document of documents) applyPatch(resources, document, patch.path ?? where);
  }
  if (k.namespace) {
    for (const resource of resources) {
      if (!CLUSTER_SCOPED_KINDS.has(resource.kind)) {
        resource.metadata = { ...resource.metadata, namespace: k.namespace };
      }
    }
  }
  applyImages(resources, k.images ?? [], file);
  const seen = new Set();
  for (const resource of resources) {
    const id = resourceId(resource);
    if (seen.has(id)) throw new KustomizeError(`${file}: ${id} is defined twice`);
    seen.add(id);
  }
  return resources;
}

// `node kustomize.mjs DIR` prints the rendered objects as a YAML stream, like `kustomize build`.
if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    process.stdout.write(render(process.argv[2] ?? ".").map((o) => YAML.stringify(o)).join("---\n"));
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
}
