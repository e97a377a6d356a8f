// Validates Kubernetes objects against the Kubernetes API schemas, as packaged on npm by
// kubernetes-models (core and apps APIs, generated from Kubernetes' OpenAPI specification) and
// @kubernetes-models/prometheus-operator (the monitoring.coreos.com CRDs):
//   1. the package's JSON-schema validator (types, required fields, enums, formats);
//   2. unknown fields, which those schemas let through but `kubectl apply --validate=strict`
//      rejects: every field must be a property of its type, read from the package's type
//      declarations (one interface per API type, one file per interface).
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeModules = path.join(here, "node_modules");

// apiVersion -> module directory of its models.
const API_PACKAGES = {
  "v1": "kubernetes-models/v1",
  "apps/v1": "kubernetes-models/apps/v1",
  "batch/v1": "kubernetes-models/batch/v1",
  "policy/v1": "kubernetes-models/policy/v1",
  "networking.k8s.io/v1": "kubernetes-models/networking.k8s.io/v1",
  "rbac.authorization.k8s.io/v1": "kubernetes-models/rbac.authorization.k8s.io/v1",
  "monitoring.coreos.com/v1": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1",
};

function declarationFile(apiVersion, kind) {
  const dir = API_PACKAGES[apiVersion];
  if (!dir) return null;
  const file = path.join(nodeModules, dir, `${kind}.d.ts`);
  return fs.existsSync(file) ? file : null;
}

// Parsed declaration files: file -> { properties: Map(name -> type text), imports: Map(name -> file) }.
const declarations = new Map();

function parseDeclaration(file) {
  if (declarations.has(file)) return declarations.get(file);
  const text = fs.readFileSync(file, "utf8");
  const imports = new Map();
  for (const m of text.matchAll(/^import \{ ([^}]+) \} from "([^"]+)";$/gm)) {
    let target = m[2].replace(/\.js$/, "");
    target = target.startsWith(".") ? path.resolve(path.dirname(file), target) : path.join(nodeModules, target);
    for (const name of m[1].split(",")) imports.set(name.trim(), `${target}.d.ts`);
  }
  let properties = null;
  const lines = text.split("\n");
  const start = lines.findIndex((l) => /^export interface I\w+( extends [\w, ]+)? \{$/.test(l));
  if (start >= 0) {
    properties = new Map();
    // Properties of the interfaces it extends (e.g. an Endpoint's HTTP config: tlsConfig,
    // authorization), then its own.
    const bases = /extends ([\w, ]+) \{$/.exec(lines[start])?.[1].split(",").map((b) => b.trim()) ?? [];
    for (const base of bases) {
      const baseFile = imports.get(base);
      if (!baseFile || !fs.existsSync(baseFile)) continue;
      const inherited = parseDeclaration(baseFile);
      for (const [name, type] of inherited.properties ?? []) properties.set(name, type);
      for (const [name, target] of inherited.imports) if (!imports.has(name)) imports.set(name, target);
    }
    for (let i = start + 1; i < lines.length && lines[i] !== "}"; ++i) {
      const m = /^ {4}"([^"]+)"\??: (.*)$/.exec(lines[i]);
      if (!m) continue;
      // Inline object types ("labels"?: { [key: string]: string }) are free-form: no check below.
      properties.set(m[1], m[2].startsWith("{") ? null : m[2].replace(/;$/, ""));
    }
  }
  const parsed = { properties, imports };
  declarations.set(file, parsed);
  return parsed;
}

// The declaration file of a property's type, or null when it is not a declared object type.
function typeFile(typeText, parsed) {
  if (!typeText) return null;
  const element = /^Array<(\w+)>$/.exec(typeText)?.[1] ?? typeText;
  return parsed.imports.get(element) ?? null;
}

function checkFields(value, file, where, errors) {
  if (value === null || typeof value !== "object") return;
  if (Array.isArray(value)) {
    value.forEach((item, i) => checkFields(item, file, `${where}[${i}]`, errors));
    return;
  }
  const parsed = parseDeclaration(file);
  if (!parsed.properties) return;  // a type alias (IntOrString, Quantity, ...)
  for (const [key, child] of Object.entries(value)) {
    if (!parsed.properties.has(key)) {
      errors.push(`${where}.${key}: unknown field (${path.basename(file, ".d.ts")} has no such property)`);
      continue;
    }
    const childFile = typeFile(parsed.properties.get(key), parsed);
    if (childFile && fs.existsSync(childFile)) checkFields(child, childFile, `${where}.${key}`, errors);
  }
}

// Returns a list of error strings for one object (empty when valid).
export async function validateObject(object) {
  const id = `${object?.kind}/${object?.metadata?.name}`;
  const file = declarationFile(object?.apiVersion, object?.kind);
  if (!file) return [`${id}: no schema for apiVersion ${object?.apiVersion} kind ${object?.kind}`];
  const module = await import(file.replace(/\.d\.ts$/, ".js"));
  const Model = module[object.kind];
  const errors = [];
  try {
    new Model(object).validate();
  } catch (e) {
    errors.push(`${id}: ${e.message}`);
  }
  checkFields(object, file, id, errors);
  return errors;
}
