// Compares two renderings (lists of Kubernetes objects) regardless of object and key order:
// `kubectl apply` does not depend on either. Returns human-readable differences.
import { resourceId } from "./kustomize.mjs";

function firstDifference(a, b, where) {
  if (typeof a !== typeof b || Array.isArray(a) !== Array.isArray(b) || (a === null) !== (b === null)) {
    return `${where}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
  }
  if (Array.isArray(a)) {
    if (a.length !== b.length) return `${where}: ${a.length} items vs ${b.length}`;
    for (let i = 0; i < a.length; ++i) {
      const d = firstDifference(a[i], b[i], `${where}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  if (a !== null && typeof a === "object") {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      if (!(key in a) || !(key in b)) return `${where}.${key}: only in the ${key in a ? "first" : "second"}`;
      const d = firstDifference(a[key], b[key], `${where}.${key}`);
      if (d) return d;
    }
    return null;
  }
  return a === b ? null : `${where}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
}

export function compareRenderings(first, second) {
  const index = (list) => new Map(list.map((o) => [resourceId(o), o]));
  const [a, b] = [index(first), index(second)];
  const differences = [];
  for (const id of new Set([...a.keys(), ...b.keys()])) {
    if (!a.has(id) || !b.has(id)) {
      differences.push(`${id}: only in the ${a.has(id) ? "first" : "second"}`);
      continue;
    }
    const d = firstDifference(a.get(id), b.get(id), id);
    if (d) differences.push(d);
  }
  return differences;
}
