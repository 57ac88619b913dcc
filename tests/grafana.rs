//! The Grafana dashboard `deploy/grafana/model-exporter.json`: every PromQL
//! query in it (panel targets and the template variables' series selectors)
//! is parsed by the real PromQL parser of `promtool check rules` (Debian
//! package `prometheus`), every metric it reads is one docs/metrics.md
//! documents, and the panels are well-formed. The main panels' queries are
//! also evaluated by `promtool test rules` on the series of a two-sidecar
//! fleet, against the values they should give.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

const DASHBOARD: &str = include_str!("../deploy/grafana/model-exporter.json");
const METRICS_DOC: &str = include_str!("../docs/metrics.md");

/// Grafana's built-in interval variables, all replaced by a valid duration.
const BUILTIN_DURATIONS: &[&str] = &["__rate_interval", "__interval", "__range"];

/// Panel types that ship with Grafana (no external plugins).
const CORE_PANELS: &[&str] = &[
    "row",
    "timeseries",
    "stat",
    "bargauge",
    "gauge",
    "table",
    "heatmap",
    "barchart",
    "histogram",
    "piechart",
    "state-timeline",
    "status-history",
    "text",
];

fn dashboard() -> Value {
    serde_json::from_str(DASHBOARD).expect("deploy/grafana/model-exporter.json is valid JSON")
}

/// Every panel, rows' nested panels (collapsed rows) included.
fn all_panels(panels: &[Value]) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in panels {
        out.push(p);
        if let Some(children) = p["panels"].as_array() {
            out.extend(all_panels(children));
        }
    }
    out
}

fn variables(dash: &Value) -> &[Value] {
    dash["templating"]["list"]
        .as_array()
        .expect("templating.list")
}

/// A PromQL query of the dashboard and where it comes from.
struct Query {
    origin: String,
    expr: String,
}

/// Panel targets' `expr`, and the series selector of each query variable's
/// `label_values(SELECTOR, LABEL)` (Grafana syntax around a PromQL selector).
fn queries(dash: &Value) -> Vec<Query> {
    let mut out = Vec::new();
    for p in all_panels(dash["panels"].as_array().expect("panels")) {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(Query {
                origin: format!("panel {} {:?} target {}", p["id"], p["title"], t["refId"]),
                expr: t["expr"].as_str().unwrap_or_default().to_owned(),
            });
        }
    }
    for v in variables(dash) {
        if v["type"] != "query" {
            continue;
        }
        let q = variable_query(v);
        let (selector, _label) = label_values(&q).unwrap_or_else(|| {
            panic!(
                "variable {}: only label_values(SELECTOR, LABEL) is checked, got {q:?}",
                v["name"]
            )
        });
        out.push(Query {
            origin: format!("variable {}", v["name"]),
            expr: selector.to_owned(),
        });
    }
    out
}

/// A query variable's query, stored as a string (older Grafana) or as
/// `{"query": ...}` (Grafana 10 and later).
fn variable_query(v: &Value) -> String {
    match &v["query"] {
        Value::String(s) => s.clone(),
        q => q["query"]
            .as_str()
            .unwrap_or_else(|| panic!("variable {} has no query", v["name"]))
            .to_owned(),
    }
}

/// Splits `label_values(SELECTOR, LABEL)` at its last comma.
fn label_values(q: &str) -> Option<(&str, &str)> {
    let inner = q.trim().strip_prefix("label_values(")?.strip_suffix(')')?;
    let (selector, label) = inner.rsplit_once(',')?;
    let label = label.trim();
    let valid = !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (valid && !selector.trim().is_empty()).then_some((selector.trim(), label))
}

/// Replaces Grafana variables (`$name`, `${name}`, `${name:format}`,
/// `[[name]]`) by PromQL stand-ins: intervals by `5m`, multi-value
/// variables by `.*`, which is only valid where they stand, inside a regex
/// matcher (`label=~"$name"`), and single-value ones by their stand-in.
fn substitute(expr: &str, stand_ins: &BTreeMap<String, Variable>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(i) = rest.find(['$', '[']) {
        let (before, at) = rest.split_at(i);
        out.push_str(before);
        let (name, len) = if let Some(braced) = at.strip_prefix("${") {
            let end = braced.find('}').ok_or("unclosed ${")?;
            let name = braced[..end].split(':').next().unwrap_or_default();
            (name, end + 3)
        } else if let Some(old) = at.strip_prefix("[[") {
            let end = old.find("]]").ok_or("unclosed [[")?;
            let name = old[..end].split(':').next().unwrap_or_default();
            (name, end + 4)
        } else if let Some(plain) = at.strip_prefix('$') {
            let end = plain
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(plain.len());
            (&plain[..end], end + 1)
        } else {
            // A range or subquery bracket.
            out.push('[');
            rest = &at[1..];
            continue;
        };
        if BUILTIN_DURATIONS.contains(&name) {
            out.push_str("5m");
        } else if let Some(v) = stand_ins.get(name) {
            if v.multi && !(out.ends_with("=~\"") || out.ends_with("!~\"")) {
                return Err(format!(
                    "multi-value variable ${name} outside a regex matcher (label=~\"${name}\")"
                ));
            }
            out.push_str(&v.stand_in);
        } else {
            return Err(format!("unknown variable ${name}"));
        }
        rest = &at[len..];
    }
    out.push_str(rest);
    Ok(out)
}

struct Variable {
    multi: bool,
    stand_in: String,
}

/// The dashboard's query and custom variables with a PromQL stand-in each.
fn stand_ins(dash: &Value) -> BTreeMap<String, Variable> {
    variables(dash)
        .iter()
        .filter(|v| v["type"] == "query" || v["type"] == "custom")
        .map(|v| {
            let multi = v["multi"] == true || v["includeAll"] == true;
            let stand_in = if multi {
                ".*".to_owned()
            } else {
                v["current"]["value"].as_str().unwrap_or("x").to_owned()
            };
            let name = v["name"].as_str().expect("variable name").to_owned();
            (name, Variable { multi, stand_in })
        })
        .collect()
}

/// PromQL keywords that look like identifiers: aggregation operators, set
/// and comparison modifiers, `@` modifiers and special numbers.
const KEYWORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "and",
    "or",
    "unless",
    "atan2",
    "start",
    "end",
    "inf",
    "nan",
];

/// Modifiers followed by a parenthesised list of label names.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names a PromQL expression reads: identifiers outside strings,
/// label matchers, ranges and label lists that are not function calls or
/// keywords.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut skip_list = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' && c != '`' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while i < chars.len() && chars[i] != close {
                    if chars[i] == '"' {
                        i += 1;
                        while i < chars.len() && chars[i] != '"' {
                            if chars[i] == '\\' {
                                i += 1;
                            }
                            i += 1;
                        }
                    }
                    i += 1;
                }
                i += 1;
            }
            '(' if skip_list => {
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                i += 1;
                skip_list = false;
            }
            c if c.is_ascii_digit() || c == '.' => {
                // Numbers and durations (0.99, 1e3, 5m).
                skip_list = false;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let next = chars[i..].iter().find(|c| !c.is_whitespace());
                let lower = word.to_ascii_lowercase();
                skip_list = false;
                if LABEL_LISTS.contains(&lower.as_str()) {
                    skip_list = true;
                } else if KEYWORDS.contains(&lower.as_str()) || next == Some(&'(') {
                    // A keyword or a function call.
                } else {
                    names.insert(word);
                }
            }
            _ => {
                if !c.is_whitespace() {
                    skip_list = false;
                }
                i += 1;
            }
        }
    }
    names
}

/// Metric names docs/metrics.md documents, with their type, from the first
/// two cells of the rows of its catalogue tables (`| \`name\` | type | ...`;
/// other tables, such as the one of histogram buckets, have no type there).
fn documented_metrics() -> BTreeMap<String, String> {
    METRICS_DOC
        .lines()
        .filter_map(|l| {
            let mut cells = l.strip_prefix('|')?.split('|').map(str::trim);
            let name = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
            let kind = cells.next()?;
            let typed = ["counter", "gauge", "histogram", "summary", ""]
                .iter()
                .any(|t| kind.split(' ').next() == Some(*t));
            typed.then(|| (name.to_owned(), kind.to_owned()))
        })
        .collect()
}

/// Whether `name` is a documented metric, a histogram's `_bucket`, `_sum`
/// or `_count` series, or matches a documented `prefix_*` family.
fn is_documented(name: &str, docs: &BTreeMap<String, String>) -> bool {
    if docs.contains_key(name) {
        return true;
    }
    let histogram_series = ["_bucket", "_sum", "_count"].iter().any(|s| {
        name.strip_suffix(s)
            .and_then(|base| docs.get(base))
            .is_some_and(|kind| kind == "histogram")
    });
    histogram_series
        || docs.keys().any(|d| {
            d.strip_suffix('*')
                .is_some_and(|prefix| name.starts_with(prefix))
        })
}

/// Runs `promtool check rules` on the expressions as recording rules.
/// Returns whether promtool accepted them, and its output.
fn promtool_check(dir: &Path, exprs: &[(String, String)]) -> (bool, String) {
    let mut yaml = String::from("groups:\n  - name: grafana-dashboard\n    rules:\n");
    for (i, (origin, expr)) in exprs.iter().enumerate() {
        // A JSON string is a valid YAML double-quoted scalar.
        yaml.push_str(&format!(
            "      # {origin}\n      - record: dashboard:query_{i}\n        expr: {}\n",
            serde_json::to_string(expr).unwrap()
        ));
    }
    let file = dir.join("dashboard-rules.yml");
    std::fs::write(&file, &yaml).unwrap();
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("promtool not found: install the Debian package `prometheus` (.ci/run does)");
    let report = format!(
        "{}{}\n{yaml}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), report)
}

#[test]
fn every_query_parses_with_promtool() {
    let dash = dashboard();
    let vars = stand_ins(&dash);
    let mut exprs = Vec::new();
    for q in queries(&dash) {
        assert!(!q.expr.trim().is_empty(), "{}: empty query", q.origin);
        let expr = substitute(&q.expr, &vars).unwrap_or_else(|e| panic!("{}: {e}", q.origin));
        assert!(!expr.contains('$'), "{}: variable left in {expr}", q.origin);
        exprs.push((q.origin, expr));
    }
    assert!(exprs.len() >= 20, "only {} queries found", exprs.len());
    let dir = tempfile::tempdir().unwrap();
    let (ok, report) = promtool_check(dir.path(), &exprs);
    assert!(ok, "promtool rejected a dashboard query:\n{report}");
}

#[test]
fn promtool_check_catches_a_broken_query() {
    // The same check on queries known to be wrong must fail, so the test
    // above cannot pass by not checking anything.
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        // Unbalanced parenthesis.
        "sum by (le) (rate(model_request_duration_seconds_bucket[5m])",
        // A Grafana variable left in place is not PromQL.
        "rate(model_requests_total[$__rate_interval])",
        // A range vector where an instant vector is needed.
        "histogram_quantile(0.99, model_request_duration_seconds_bucket[5m])",
    ] {
        let (ok, report) = promtool_check(dir.path(), &[("known bad".into(), bad.into())]);
        assert!(!ok, "promtool accepted {bad}:\n{report}");
    }
    let (ok, report) = promtool_check(
        dir.path(),
        &[(
            "known good".into(),
            "sum(rate(model_requests_total[5m]))".into(),
        )],
    );
    assert!(ok, "{report}");
}

#[test]
fn variables_are_substituted_in_their_context() {
    let dash = dashboard();
    let vars = stand_ins(&dash);
    assert_eq!(
        substitute(
            r#"rate(x{model=~"$model", version=~"${version}"}[$__rate_interval])"#,
            &vars
        )
        .unwrap(),
        r#"rate(x{model=~".*", version=~".*"}[5m])"#
    );
    assert_eq!(
        substitute(r#"y{window="$window"}[${__range}]"#, &vars).unwrap(),
        r#"y{window="5m"}[5m]"#
    );
    // A multi-value variable in an equality matcher breaks when several
    // values are selected.
    assert!(substitute(r#"x{model="$model"}"#, &vars).is_err());
    assert!(substitute("x{a=~\"$undefined\"}", &vars).is_err());
}

#[test]
fn every_metric_is_documented() {
    let dash = dashboard();
    let docs = documented_metrics();
    assert!(docs.contains_key("model_requests_total"), "{docs:?}");
    let mut used = BTreeSet::new();
    for q in queries(&dash) {
        let names = metric_names(&q.expr);
        assert!(
            !names.is_empty(),
            "{}: reads no metric: {}",
            q.origin,
            q.expr
        );
        for name in names {
            assert!(
                is_documented(&name, &docs),
                "{}: metric {name} is not in docs/metrics.md",
                q.origin
            );
            used.insert(name);
        }
    }
    // The panels the dashboard is for.
    for name in [
        "model_request_duration_seconds_bucket",
        "model_requests_total",
        "model_window_positive_ratio",
        "model_prediction_confidence_sum",
        "model_prediction_confidence_count",
        "model_window_low_confidence_ratio",
        "model_feature_drift",
        "model_feature_value_bucket",
        "model_business_counts_total",
        "model_age_seconds",
        "model_window_accuracy",
        "model_alerts",
    ] {
        assert!(used.contains(name), "no panel reads {name}");
    }
}

#[test]
fn metric_names_skips_functions_labels_and_keywords() {
    let names = metric_names(
        r#"histogram_quantile(0.99, sum by (le, model) (rate(a_bucket{x="y{z}", le!="1"}[5m:1m] offset 1h)))
           / on (job) group_left (model) b:rate5m or f * on (g) group_left h or vector(0) > bool 1e3 and c unless sum without (d) (e)"#,
    );
    let expected: BTreeSet<String> = ["a_bucket", "b:rate5m", "c", "e", "f", "h"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(names, expected);
    let docs = documented_metrics();
    assert!(is_documented("model_prediction_value_bucket", &docs));
    assert!(is_documented("process_resident_memory_bytes", &docs));
    // Only histograms have _bucket series.
    assert!(!is_documented("model_requests_total_bucket", &docs));
    assert!(!is_documented(
        "model_request_duration_seconds_total",
        &docs
    ));
}

#[test]
fn template_variables_read_documented_metrics() {
    let dash = dashboard();
    let docs = documented_metrics();
    let vars = variables(&dash);
    let ds: Vec<&Value> = vars.iter().filter(|v| v["type"] == "datasource").collect();
    assert_eq!(ds.len(), 1, "one datasource variable");
    assert_eq!(ds[0]["query"], "prometheus");
    let names: BTreeSet<&str> = vars.iter().filter_map(|v| v["name"].as_str()).collect();
    for wanted in ["datasource", "model", "version", "feature"] {
        assert!(names.contains(wanted), "no ${wanted} variable");
    }
    for v in vars.iter().filter(|v| v["type"] == "query") {
        let q = variable_query(v);
        let (selector, label) = label_values(&q).expect("label_values(SELECTOR, LABEL)");
        let metric = selector.split('{').next().unwrap().trim();
        assert!(
            is_documented(metric, &docs),
            "variable {}: {metric} is not in docs/metrics.md",
            v["name"]
        );
        assert!(!label.is_empty());
        assert_eq!(v["datasource"]["uid"], "${datasource}", "{}", v["name"]);
        if v["multi"] == true || v["includeAll"] == true {
            // "All" must also match series without the label (an unversioned
            // model has no version label), which a list of values would not.
            assert_eq!(v["allValue"], ".*", "variable {}", v["name"]);
        }
    }
}

#[test]
fn dashboard_structure() {
    let dash = dashboard();
    assert_eq!(dash["uid"], "model-exporter");
    assert!(dash["title"].as_str().is_some_and(|t| !t.is_empty()));
    let schema = dash["schemaVersion"].as_u64().expect("schemaVersion");
    assert!((36..=41).contains(&schema), "schemaVersion {schema}");
    let var_names: BTreeSet<&str> = variables(&dash)
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();

    let top = dash["panels"].as_array().expect("panels");
    let panels = all_panels(top);
    let mut ids = BTreeSet::new();
    for p in &panels {
        let id = p["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("panel without id: {p}"));
        assert!(ids.insert(id), "duplicate panel id {id}");
        let what = format!("panel {id} {:?}", p["title"]);
        let kind = p["type"].as_str().unwrap_or_default();
        assert!(CORE_PANELS.contains(&kind), "{what}: panel type {kind:?}");
        let g = &p["gridPos"];
        let [x, _y, w, h] = ["x", "y", "w", "h"].map(|k| {
            g[k].as_u64()
                .unwrap_or_else(|| panic!("{what}: gridPos.{k} missing"))
        });
        assert!(w > 0 && h > 0 && x + w <= 24, "{what}: gridPos {g}");
        if let Some(var) = p["repeat"].as_str() {
            assert!(var_names.contains(var), "{what}: repeats unknown ${var}");
        }
        if kind == "row" {
            let children = p["panels"].as_array().map_or(0, Vec::len);
            if p["collapsed"] == true {
                assert!(children > 0, "{what}: collapsed row without panels");
            } else {
                assert_eq!(children, 0, "{what}: open row holding panels");
            }
            continue;
        }
        assert_eq!(p["datasource"]["type"], "prometheus", "{what}");
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{what}");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{what}: no target");
        let mut refs = BTreeSet::new();
        for t in targets {
            assert!(
                t["expr"].as_str().is_some_and(|e| !e.trim().is_empty()),
                "{what}: target without expr"
            );
            let r = t["refId"].as_str().expect("refId");
            assert!(refs.insert(r), "{what}: duplicate refId {r}");
            if !t["datasource"].is_null() {
                assert_eq!(t["datasource"], p["datasource"], "{what} target {r}");
            }
        }
    }
    assert!(panels.len() > 10);

    // Top-level panels do not overlap.
    let mut cells = BTreeSet::new();
    for p in top {
        let g = &p["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| g[k].as_u64().unwrap());
        for cx in x..x + w {
            for cy in y..y + h {
                assert!(
                    cells.insert((cx, cy)),
                    "panel {} overlaps at {cx},{cy}",
                    p["id"]
                );
            }
        }
    }
}

/// The substituted query of the panel of type `kind` whose title starts
/// with `title`.
fn panel_query(dash: &Value, kind: &str, title: &str, ref_id: &str) -> String {
    let panels = all_panels(dash["panels"].as_array().unwrap());
    let p = panels
        .iter()
        .find(|p| p["type"] == kind && p["title"].as_str().is_some_and(|t| t.starts_with(title)))
        .unwrap_or_else(|| panic!("no {kind} panel {title:?}"));
    let t = p["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["refId"] == ref_id)
        .unwrap_or_else(|| panic!("panel {title:?} has no target {ref_id}"));
    substitute(t["expr"].as_str().unwrap(), &stand_ins(dash)).unwrap()
}

/// Two sidecars (instances `a` and `b`) serving the same model version,
/// scraped every minute for 20 minutes.
const FLEET: &[(&str, &str)] = &[
    (r#"model_requests_total{outcome="ok"}"#, "0+90x20"),
    (r#"model_requests_total{outcome="error"}"#, "0+10x20"),
    (
        r#"model_request_duration_seconds_bucket{le="0.25"}"#,
        "0+50x20",
    ),
    (
        r#"model_request_duration_seconds_bucket{le="0.5"}"#,
        "0+90x20",
    ),
    (
        r#"model_request_duration_seconds_bucket{le="1"}"#,
        "0+100x20",
    ),
    (
        r#"model_request_duration_seconds_bucket{le="+Inf"}"#,
        "0+100x20",
    ),
    ("model_prediction_confidence_sum", "0+45x20"),
    ("model_prediction_confidence_count", "0+60x20"),
    (
        r#"model_business_counts_total{counter="shown"}"#,
        "0+100x20",
    ),
    (
        r#"model_business_counts_total{counter="clicked"}"#,
        "0+5x20",
    ),
    (
        r#"model_feature_value_bucket{feature="amount",le="10"}"#,
        "0+3x20",
    ),
    (
        r#"model_feature_value_bucket{feature="amount",le="100"}"#,
        "0+5x20",
    ),
    (
        r#"model_feature_value_bucket{feature="amount",le="+Inf"}"#,
        "0+6x20",
    ),
];

/// A panel's target and the samples it must give: (panel type, title
/// prefix, refId, [(labels, value)]).
type Check<'a> = (&'a str, &'a str, &'a str, Vec<(&'a str, f64)>);

#[test]
fn panels_compute_the_expected_values() {
    let dash = dashboard();
    let mut series: Vec<(String, String)> = Vec::new();
    for instance in ["a", "b"] {
        for (s, values) in FLEET {
            let extra = format!(r#"model="fraud",version="v1",instance="{instance}""#);
            let s = match s.strip_suffix('}') {
                Some(open) => format!("{open},{extra}}}"),
                None => format!("{s}{{{extra}}}"),
            };
            series.push((s, values.to_string()));
        }
    }
    // Drift as each sidecar computes it: the fleet's highest PSI counts.
    let mv = r#"model="fraud",version="v1""#;
    for (s, v) in [
        (
            r#"feature="amount",method="psi",window="5m",instance="a""#,
            "0.3",
        ),
        (
            r#"feature="amount",method="psi",window="5m",instance="b""#,
            "0.1",
        ),
        (
            r#"feature="amount",method="ks",window="5m",instance="a""#,
            "0.9",
        ),
        (
            r#"feature="amount",method="psi",window="15m",instance="a""#,
            "0.7",
        ),
        (
            r#"feature="age",method="psi",window="5m",instance="a""#,
            "0.05",
        ),
    ] {
        series.push((
            format!("model_feature_drift{{{s},{mv}}}"),
            format!("{v}x20"),
        ));
    }
    series.push((
        format!(r#"model_alerts{{alertname="HighErrorRate",alertstate="firing",severity="critical",instance="a",{mv}}}"#),
        "1x20".into(),
    ));
    series.push((
        format!(r#"model_alerts{{alertname="HighLatency",alertstate="pending",severity="warning",instance="a",{mv}}}"#),
        "1x20".into(),
    ));

    // (panel title prefix, target, expected samples as (labels, value)).
    let fraud = r#"{model="fraud", version="v1"}"#;
    let ts = "timeseries";
    let checks: Vec<Check> = vec![
        (ts, "Error rate", "A", vec![(fraud, 0.1)]),
        ("stat", "Error rate", "A", vec![("{}", 0.1)]),
        ("stat", "Requests/s", "A", vec![("{}", 200.0 / 60.0)]),
        (
            ts,
            "Latency p50 / p95 / p99 (histogram)",
            "A",
            vec![(fraud, 0.25)],
        ),
        (
            ts,
            "Latency p50 / p95 / p99 (histogram)",
            "C",
            vec![(fraud, 0.95)],
        ),
        ("stat", "p99 latency", "A", vec![("{}", 0.95)]),
        (ts, "Mean confidence", "A", vec![(fraud, 0.75)]),
        (ts, "Click-through rate", "A", vec![(fraud, 0.05)]),
        ("stat", "Alerts firing", "A", vec![("{}", 1.0)]),
        (
            "bargauge",
            "Drift per feature",
            "A",
            vec![(r#"{feature="amount"}"#, 0.3), (r#"{feature="age"}"#, 0.05)],
        ),
        (
            // Cumulative counts per bucket over the range (5m here), summed
            // over the fleet; Grafana's heatmap format takes differences.
            "bargauge",
            "Distribution of",
            "A",
            vec![
                (r#"{le="10"}"#, 30.0),
                (r#"{le="100"}"#, 50.0),
                (r#"{le="+Inf"}"#, 60.0),
            ],
        ),
    ];

    let mut yaml = String::from(
        "rule_files: []\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n",
    );
    for (s, values) in &series {
        yaml.push_str(&format!(
            "      - series: {}\n        values: {}\n",
            serde_json::to_string(s).unwrap(),
            serde_json::to_string(values).unwrap()
        ));
    }
    yaml.push_str("    promql_expr_test:\n");
    for (kind, title, ref_id, samples) in &checks {
        let expr = panel_query(&dash, kind, title, ref_id);
        yaml.push_str(&format!(
            "      # {title} {ref_id}\n      - expr: {}\n        eval_time: 10m\n        exp_samples:\n",
            serde_json::to_string(&format!("round({expr}, 0.0001)")).unwrap()
        ));
        for (labels, value) in samples {
            let rounded = (value * 1e4).round() / 1e4;
            yaml.push_str(&format!(
                "          - labels: {}\n            value: {rounded}\n",
                serde_json::to_string(labels).unwrap()
            ));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard-test.yml");
    std::fs::write(&file, &yaml).unwrap();
    let out = Command::new("promtool")
        .args(["test", "rules"])
        .arg(&file)
        .output()
        .expect("promtool not found: install the Debian package `prometheus` (.ci/run does)");
    assert!(
        out.status.success(),
        "{}{}\n{yaml}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
