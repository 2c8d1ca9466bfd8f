//! `rampart audit`, `rampart replay` and `rampart scan` as users run them: formats, exit
//! codes, stdin, gzip, SARIF structure, the baseline file and error messages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../rampart-detect/tests/fixtures");
const BASIC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/policies/basic");

fn rampart(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

fn falco_corpus() -> Vec<u8> {
    let mut all = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(format!("{FIXTURES}/falco/k8s_audit"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for p in paths {
        all.extend(std::fs::read(p).unwrap());
        all.push(b'\n');
    }
    all
}

#[test]
fn audit_reads_stdin_and_gzip_and_sets_the_exit_code() {
    let corpus = falco_corpus();
    let out = rampart(&["audit", "-o", "json", "-"], Some(&corpus));
    assert_eq!(
        out.status.code(),
        Some(1),
        "high findings fail the run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    assert_eq!(report["stats"]["skipped"], 1, "the malformed fixture is skipped, not fatal");
    let ids: Vec<&str> =
        report["findings"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"falco/Create Privileged Pod"));
    assert!(!ids.iter().any(|i| i.starts_with("falco/K8s ")), "informational activity hidden by default");
    let f = &report["findings"][0];
    for key in ["id", "family", "severity", "tactic", "title", "message", "remediation", "events"] {
        assert!(f.get(key).is_some(), "finding has {key}: {f}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("events") && stderr.contains("findings"), "summary: {stderr}");

    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("audit.log.gz");
    let mut enc = gzip_writer(&gz);
    enc.write_all(&corpus).unwrap();
    drop(enc);
    let all = rampart(
        &["audit", "--min-severity", "info", "--fail-on", "critical", "-o", "json", gz.to_str().unwrap()],
        None,
    );
    assert_eq!(all.status.code(), Some(0), "nothing critical: {}", String::from_utf8_lossy(&all.stderr));
    let ids: Vec<String> = json(&all)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(ids.iter().any(|i| i == "falco/K8s Deployment Created"), "info included on request");
}

fn gzip_writer(path: &std::path::Path) -> impl Write {
    // gzip through the system tool keeps this test free of a compression dependency.
    struct Gz(std::process::Child);
    impl Write for Gz {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.stdin.as_mut().unwrap().write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Drop for Gz {
        fn drop(&mut self) {
            drop(self.0.stdin.take());
            self.0.wait().unwrap();
        }
    }
    let file = std::fs::File::create(path).unwrap();
    Gz(Command::new("gzip").arg("-c").stdin(Stdio::piped()).stdout(file).spawn().unwrap())
}

#[test]
fn audit_sarif_points_at_file_and_line() {
    let path = format!("{FIXTURES}/falco/k8s_audit/create_nginx_pod_privileged.json");
    let out = rampart(&["audit", "-o", "sarif", &path], None);
    let sarif = json(&out);
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    let result = &run["results"][0];
    assert_eq!(result["ruleId"], "falco/Create Privileged Pod");
    assert_eq!(
        result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        format!("file://{path}")
    );
    assert_eq!(result["locations"][0]["physicalLocation"]["region"]["startLine"], 1);
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"falco/Create Privileged Pod"));
}

#[test]
fn audit_keeps_a_baseline_and_refuses_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("baseline.json");
    let log = format!("{FIXTURES}/audit2rbac-demo.log");
    let out =
        rampart(&["audit", "--state", state.to_str().unwrap(), "--learning-events", "1000", &log], None);
    assert!(out.status.code().is_some_and(|c| c <= 1), "{}", String::from_utf8_lossy(&out.stderr));
    let baseline: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(baseline["eventsSeen"], 37);
    std::fs::write(&state, "not json").unwrap();
    let bad = rampart(&["audit", "--state", state.to_str().unwrap(), &log], None);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a rampart baseline"));
    let threats = dir.path().join("threats.txt");
    std::fs::write(&threats, "203.0.113.0/24\nnot-an-ip\n").unwrap();
    let bad = rampart(&["audit", "--threat-list", threats.to_str().unwrap(), &log], None);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("threats.txt:2"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let missing = rampart(&["audit", "/nonexistent/audit.log"], None);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot open /nonexistent/audit.log"));
}

#[test]
fn replay_reports_what_would_change_and_exits_accordingly() {
    let log = format!("{FIXTURES}/audit2rbac-demo.log");
    let same = rampart(&["replay", "-p", BASIC, &log], None);
    assert_eq!(same.status.code(), Some(0), "{}", String::from_utf8_lossy(&same.stderr));
    assert!(String::from_utf8_lossy(&same.stdout).contains("No decision would change"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("deny.cedar"), "forbid (principal, action == k8s::Action::\"list\", resource is k8s::Resource) when { resource.resource == \"pods\" };").unwrap();
    let changed = rampart(
        &["replay", "-p", dir.path().to_str().unwrap(), "--bootstrap-roles", "-o", "json", &log],
        None,
    );
    assert_eq!(changed.status.code(), Some(1));
    let report = json(&changed);
    let groups = report["changes"].as_array().unwrap();
    let bob = groups.iter().find(|g| g["user"] == "bob").unwrap();
    assert_eq!(bob["change"], "allowed-to-denied");
    assert!(bob["decidedBy"].as_str().unwrap().contains("deny.cedar:1:1"), "{bob}");
    assert_eq!(bob["requests"][0], "list pods -n default");
}

/// The apiserver chain: `system:masters` and kubelets are decided before Rampart, the control
/// plane and Rampart's own user skip it, `system:anonymous` meets RBAC after it.
#[test]
fn replay_models_the_apiserver_chain() {
    fn event(
        id: &str,
        user: &str,
        groups: &[&str],
        verb: &str,
        uri: &str,
        object: &str,
        allowed: bool,
    ) -> String {
        let (code, decision) = if allowed { (200, "allow") } else { (403, "forbid") };
        format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"{id}","stage":"ResponseComplete","verb":"{verb}","requestURI":"{uri}","user":{{"username":"{user}","groups":{groups}}},{object}"responseStatus":{{"code":{code}}},"annotations":{{"authorization.k8s.io/decision":"{decision}"}}}}"#,
            groups = serde_json::to_string(groups).unwrap()
        )
    }
    let secret = r#""objectRef":{"resource":"secrets","namespace":"team","name":"db","apiVersion":"v1"},"#;
    let log = [
        event(
            "1",
            "admin",
            &["system:masters", "system:authenticated"],
            "get",
            "/api/v1/namespaces/team/secrets/db",
            secret,
            true,
        ),
        event(
            "2",
            "system:node:n1",
            &["system:nodes", "system:authenticated"],
            "get",
            "/api/v1/namespaces/team/secrets/db",
            secret,
            true,
        ),
        event(
            "3",
            "system:kube-controller-manager",
            &["system:authenticated"],
            "get",
            "/api/v1/namespaces/team/secrets/db",
            secret,
            true,
        ),
        event(
            "4",
            "system:serviceaccount:rampart-system:rampart",
            &["system:serviceaccounts", "system:authenticated"],
            "get",
            "/api/v1/namespaces/team/secrets/db",
            secret,
            true,
        ),
        event("5", "system:anonymous", &["system:unauthenticated"], "get", "/healthz", "", true),
        event(
            "6",
            "alice",
            &["system:authenticated"],
            "get",
            "/api/v1/namespaces/team/secrets/db",
            secret,
            false,
        ),
    ]
    .join("\n");
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(
        policies.join("no-secrets.cedar"),
        "forbid (principal, action, resource is k8s::Resource) when { resource.resource == \"secrets\" };",
    )
    .unwrap();
    let rbac = dir.path().join("rbac.yaml");
    std::fs::write(
        &rbac,
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: secret-reader}\n\
         rules: [{apiGroups: [\"\"], resources: [secrets], verbs: [get]}]\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: readers}\n\
         roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: secret-reader}\n\
         subjects:\n- {kind: User, name: system:kube-controller-manager}\n\
         - {kind: ServiceAccount, name: rampart, namespace: rampart-system}\n",
    )
    .unwrap();
    let base = [
        "replay",
        "-p",
        policies.to_str().unwrap(),
        "--rbac",
        rbac.to_str().unwrap(),
        "--bootstrap-roles",
        "-o",
        "json",
        "-",
    ];
    let chain = rampart(&base, Some(log.as_bytes()));
    assert_eq!(chain.status.code(), Some(0), "{}", String::from_utf8_lossy(&chain.stderr));
    let stats = &json(&chain)["stats"];
    assert_eq!(
        (stats["requests"].as_u64(), stats["outside"].as_u64(), stats["changed"].as_u64()),
        (Some(6), Some(2), Some(0)),
        "{stats}"
    );

    let mut engine_only = base.to_vec();
    engine_only.insert(1, "--engine-only");
    let naive = rampart(&engine_only, Some(log.as_bytes()));
    assert_eq!(naive.status.code(), Some(1));
    let report = json(&naive);
    let mut locked_out: Vec<&str> =
        report["changes"].as_array().unwrap().iter().map(|g| g["user"].as_str().unwrap()).collect();
    locked_out.sort_unstable();
    assert_eq!(
        locked_out,
        ["admin", "system:node:n1", "system:serviceaccount:rampart-system:rampart"],
        "without the chain, the break-glass group, the kubelet and Rampart itself look locked out"
    );
}

#[test]
fn scan_scores_the_snapshot_in_every_format() {
    let snap = format!("{FIXTURES}/snapshot");
    let table = rampart(&["scan", &snap], None);
    assert_eq!(table.status.code(), Some(1), "failing checks fail the run");
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("CIS-EKS 4.1.1") && text.contains("User alice via ClusterRoleBinding alice-admin"),
        "{text}"
    );
    // Each offender read from a file is shown where its object starts: the binding is the
    // second item of rbac.yaml's List, on line 13.
    let rbac = format!("{snap}/rbac.yaml");
    assert!(text.contains(&format!("User alice via ClusterRoleBinding alice-admin ({rbac}:13)")), "{text}");
    assert!(String::from_utf8_lossy(&table.stderr).starts_with("score "));
    let report = json(&rampart(&["scan", "-o", "json", &snap], None));
    assert!(report["score"].as_u64().unwrap() < 50);
    let admins = report["results"].as_array().unwrap().iter().find(|r| r["id"] == "CIS-EKS 4.1.1").unwrap();
    let alice =
        admins["offenders"].as_array().unwrap().iter().position(|o| o.as_str().unwrap().contains("alice"));
    assert_eq!(admins["places"][alice.unwrap()], serde_json::json!({"file": rbac, "line": 13}), "{admins}");
    let sarif = json(&rampart(&["scan", "-o", "sarif", &snap], None));
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(results.iter().any(|r| r["ruleId"] == "CIS-EKS 4.2.1"));
    let alice = results
        .iter()
        .find(|r| r["ruleId"] == "CIS-EKS 4.1.1" && r["message"]["text"].as_str().unwrap().contains("alice"))
        .unwrap();
    let physical = &alice["locations"][0]["physicalLocation"];
    assert_eq!(physical["region"]["startLine"], 13, "{alice}");
    assert!(
        physical["artifactLocation"]["uri"].as_str().unwrap().ends_with("/snapshot/rbac.yaml"),
        "{alice}"
    );
    let missing = rampart(&["scan", "/nonexistent/snapshot"], None);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/snapshot"));
}

/// `rampart scan --from-cluster` against a stand-in apiserver serving real list responses.
#[test]
fn scan_reads_a_live_cluster() {
    use axum::extract::Path;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let url = runtime.block_on(async {
        async fn list(Path(rest): Path<String>) -> (axum::http::StatusCode, String) {
            let items = match rest.as_str() {
                "api/v1/namespaces" => serde_json::json!([{"metadata": {"name": "team"}}]),
                "apis/apps/v1/deployments" => serde_json::json!([{"metadata": {"name": "miner", "namespace": "team"},
                    "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x", "securityContext": {"privileged": true}}]}}}}]),
                "apis/rbac.authorization.k8s.io/v1/clusterrolebindings" => serde_json::json!([{"metadata": {"name": "eve-admin"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                    "subjects": [{"kind": "User", "name": "eve"}]}]),
                "api/v1/namespaces/kube-system/configmaps/aws-auth" => {
                    return (axum::http::StatusCode::NOT_FOUND, r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"#.into());
                }
                _ => serde_json::json!([]),
            };
            (axum::http::StatusCode::OK, serde_json::json!({"kind": "List", "apiVersion": "v1", "metadata": {}, "items": items}).to_string())
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().route("/{*rest}", axum::routing::get(list));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    });
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"{url}\"}}\nusers:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n"),
    )
    .unwrap();
    let out = rampart(
        &["scan", "--from-cluster", "--kubeconfig", kubeconfig.to_str().unwrap(), "-o", "json"],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let report = json(&out);
    let check =
        |id: &str| report["results"].as_array().unwrap().iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(check("CIS-EKS 4.2.1")["offenders"], serde_json::json!(["Deployment team/miner"]));
    assert_eq!(
        check("CIS-EKS 4.1.1")["offenders"],
        serde_json::json!(["User eve via ClusterRoleBinding eve-admin"])
    );
    drop(runtime);
}

#[test]
fn a_check_that_read_nothing_says_so_and_fails() {
    let out = rampart(&["audit", "-"], Some(b"not an audit event\n{\"kind\":\"Other\"}\n"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("read no audit events, so nothing was checked"), "{err}");
    let out = rampart(&["audit", "-"], Some(b""));
    assert!(!out.status.success());

    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.yaml");
    std::fs::write(&empty, "apiVersion: v1\nkind: List\nitems: []\n").unwrap();
    let out = rampart(&["scan", empty.to_str().unwrap()], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("holds no objects, so nothing was checked"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("score"));
}

/// The controller-manager creating its controllers' service accounts in kube-system is the
/// control plane, quiet by default; the same creation by anyone else is Falco's finding, and
/// `--strict-falco` keeps Falco's rule as shipped.
#[test]
fn controller_service_accounts_are_quiet_and_other_creations_are_not() {
    let event = |user: &str, name: &str| {
        serde_json::json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
            "auditID": format!("id-{user}-{name}"), "stage": "ResponseComplete",
            "requestURI": "/api/v1/namespaces/kube-system/serviceaccounts", "verb": "create",
            "user": {"username": user, "groups": ["system:authenticated"]},
            "sourceIPs": ["10.0.0.1"],
            "objectRef": {"resource": "serviceaccounts", "namespace": "kube-system", "name": name, "apiVersion": "v1"},
            "responseStatus": {"metadata": {}, "code": 201},
            "requestReceivedTimestamp": "2026-12-04T10:00:00.000000Z",
            "stageTimestamp": "2026-12-04T10:00:00.010000Z"
        })
        .to_string()
    };
    let log = format!(
        "{}\n{}\n",
        event("system:kube-controller-manager", "clusterrole-aggregation-controller"),
        event("mallory", "backdoor")
    );
    let found = |extra: &[&str]| -> Vec<String> {
        let out = rampart(
            &[&["audit", "-o", "json", "--no-group"][..], extra, &["-"]].concat(),
            Some(log.as_bytes()),
        );
        json(&out)["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["id"] == "falco/Service Account Created in Kube Namespace")
            .map(|f| f["events"][0]["user"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(found(&[]), ["mallory"]);
    assert_eq!(found(&["--strict-falco"]), ["system:kube-controller-manager", "mallory"]);
}
