// Metric names used by PromQL expressions, for checking that dashboards and alert rules ask only
// for series the processes export.

// Series Prometheus itself attaches to every scrape target (not exported by quantd).
export const PROMETHEUS_SERIES = new Set([
  "up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
  "scrape_series_added",
]);

const KEYWORDS = new Set([
  "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset",
  "bool", "inf", "nan", "atan2",
]);

// The metric names in `expr` (Grafana variables such as $__rate_interval allowed).
export function metricNames(expr) {
  let text = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, " ")  // string literals
    .replace(/\$\{[^}]*\}|\$\w+/g, " ")                             // Grafana variables
    .replace(/\{[^}]*\}/g, " ")                                     // label matchers
    .replace(/\[[^\]]*\]/g, " ")                                    // ranges and subqueries
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ")
    .replace(/(^|[^\w:])(\d+(ms|s|m|h|d|w|y))+(?![\w:])/g, "$1 ")                // durations
    .replace(/(^|[^\w:])(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?(?![\w:])/g, "$1 ");  // numbers
  const names = new Set();
  for (const m of text.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const after = text.slice(m.index + m[0].length);
    if (/^\s*\(/.test(after)) continue;  // a function or aggregation
    if (KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

// Every `expr` of a Grafana dashboard's panels (rows and nested panels included).
export function dashboardExpressions(dashboard) {
  const found = [];
  const visit = (panels, where) => {
    for (const panel of panels ?? []) {
      for (const target of panel.targets ?? []) {
        if (typeof target.expr === "string") found.push({ where: `${where} "${panel.title}" ${target.refId}`, expr: target.expr });
      }
      visit(panel.panels, where);
    }
  };
  visit(dashboard.panels, "panel");
  return found;
}

// Every expression of a Prometheus rule file.
export function ruleExpressions(rules) {
  const found = [];
  for (const group of rules.groups ?? []) {
    for (const rule of group.rules ?? []) {
      found.push({ where: `rule ${rule.alert ?? rule.record}`, expr: String(rule.expr) });
    }
  }
  return found;
}
