// Metric names found in PromQL expressions.
import assert from "node:assert/strict";
import { test } from "node:test";
import { dashboardExpressions, metricNames, ruleExpressions } from "../promql.mjs";

test("finds metric names, not functions, keywords, labels or numbers", () => {
  assert.deepEqual(metricNames('sum by (le, method) (rate(a_bucket{code!="OK",x=~"y|z"}[5m])) > 1e-3'), ["a_bucket"]);
  assert.deepEqual(
    metricNames('histogram_quantile(0.95, sum without (instance) (rate(b_seconds_bucket[$__rate_interval])))'),
    ["b_seconds_bucket"]);
  assert.deepEqual(metricNames("x_total / on (job) group_left c_info and up == 0 offset 5m"),
                   ["x_total", "c_info", "up"]);
  assert.deepEqual(metricNames('sum(rate(m_total{s="sum(fake_metric)"}[1h])) / 2.5e3'), ["m_total"]);
  assert.deepEqual(metricNames("ns:recorded:rate5m"), ["ns:recorded:rate5m"]);
});

test("collects expressions from dashboards and rule files", () => {
  const dashboard = { panels: [{ title: "t", targets: [{ refId: "A", expr: "a" }] },
                               { title: "row", panels: [{ title: "u", targets: [{ refId: "B", expr: "b" }] }] }] };
  assert.deepEqual(dashboardExpressions(dashboard).map((e) => e.expr), ["a", "b"]);
  const rules = { groups: [{ rules: [{ alert: "X", expr: "c > 1" }, { record: "r", expr: "d" }] }] };
  assert.deepEqual(ruleExpressions(rules).map((e) => e.where), ["rule X", "rule r"]);
});
