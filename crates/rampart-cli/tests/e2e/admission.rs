//! Scenario 4: admission. Cedar validating policies, Pod Security driven by real namespace
//! labels (the apiserver's own PodSecurity plugin is off: Rampart replaces it), and the
//! best-practice rules, all seen as kubectl shows them.

use std::time::Duration;

use crate::{Cluster, eventually, shared};

/// Builders may create workloads and ConfigMaps anywhere (RBAC); admission then decides.
pub const BUILDERS: &str = "
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: e2e-builder}
rules:
- {apiGroups: [''], resources: [pods, configmaps], verbs: [get, list, create, update, patch, delete]}
- {apiGroups: [apps], resources: [deployments], verbs: [get, list, create, update, patch, delete]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: e2e-builders}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: e2e-builder}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: e2e-builders}]
";

/// kubectl as a builder (not system:masters, so every webhook applies).
pub fn build(c: &Cluster, args: &[&str], stdin: Option<&str>) -> crate::Out {
    let mut all = vec!["--as=bob-builder", "--as-group=e2e-builders"];
    all.extend_from_slice(args);
    match stdin {
        Some(text) => c.admin().stdin(text).run(&all),
        None => c.admin().run(&all),
    }
}

/// Creating a ConfigMap in `namespace` as a builder: `Ok(())` when allowed, `Err(stderr)` when not.
pub fn builder_creates_configmap(c: &Cluster, namespace: &str) -> Result<(), String> {
    let name = format!("cm-{}", std::time::UNIX_EPOCH.elapsed().unwrap().as_nanos());
    let out = build(c, &["create", "configmap", &name, "-n", namespace], None);
    if out.ok { Ok(()) } else { Err(out.stderr) }
}

pub fn pod(name: &str, namespace: &str, image: &str, extra_container_fields: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n  containers:\n  - name: app\n    image: {image}\n{extra_container_fields}"
    )
}

const PRIVILEGED: &str = "    securityContext: {privileged: true}\n";

#[test]
fn cedar_policies_pod_security_and_best_practices_at_admission() {
    let (_gate, c) = shared();
    c.apply(BUILDERS);

    // Cedar: ConfigMaps named prod-* are refused in e2e-admission, others pass.
    c.namespace("e2e-admission");
    build(c, &["create", "configmap", "staging-settings", "-n", "e2e-admission"], None).ok();
    let err = build(c, &["create", "configmap", "prod-settings", "-n", "e2e-admission"], None).fails();
    assert!(
        err.contains("admission webhook \"vpolicy.rampart.dev\" denied the request: forbidden by policy e2e-no-prod-configmaps (admission.cedar:4:1): prod-* ConfigMaps are written by the release pipeline only"),
        "{err}"
    );

    // Pod Security from the namespace's labels, read live from the cluster.
    c.namespace("e2e-psa");
    build(
        c,
        &["create", "-f", "-"],
        Some(&pod("before-label", "e2e-psa", "registry.k8s.io/pause:3.10", PRIVILEGED)),
    )
    .ok();
    c.admin().run(&["label", "ns", "e2e-psa", "pod-security.kubernetes.io/enforce=restricted"]).ok();
    let err = eventually("the restricted label is enforced", Duration::from_secs(20), || {
        let name = format!("priv-{}", fastrand_suffix());
        let out = build(
            c,
            &["create", "-f", "-"],
            Some(&pod(&name, "e2e-psa", "registry.k8s.io/pause:3.10", PRIVILEGED)),
        );
        if out.ok { Err(format!("{name} was admitted")) } else { Ok(out.stderr) }
    });
    // Upstream PSA's message, word for word in its structure.
    assert!(err.contains("is forbidden: violates PodSecurity \"restricted:latest\": privileged (container \"app\" must not set securityContext.privileged=true)"), "{err}");
    assert!(err.contains("allowPrivilegeEscalation != false"), "{err}");

    // A Deployment with the same pod template is admitted with the warnings kubectl prints.
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: e2e-psa}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - name: app\n        image: registry.k8s.io/pause:latest\n        securityContext: {privileged: true}\n";
    let out = build(c, &["create", "-f", "-"], Some(deployment));
    let warnings = out.stderr.clone();
    out.ok();
    assert!(
        warnings.contains("Warning: would violate PodSecurity \"restricted:latest\": privileged"),
        "{warnings}"
    );
    // The best-practice rule in warn mode: a :latest tag.
    assert!(warnings.contains("Warning:") && warnings.contains("latest"), "{warnings}");

    // A restricted-compliant pod is admitted.
    let good = "    securityContext:\n      allowPrivilegeEscalation: false\n      runAsNonRoot: true\n      runAsUser: 1000\n      capabilities: {drop: [ALL]}\n      seccompProfile: {type: RuntimeDefault}\n";
    build(c, &["create", "-f", "-"], Some(&pod("compliant", "e2e-psa", "registry.k8s.io/pause:3.10", good)))
        .ok();

    // The registry allow-list, enforced in e2e-registries only.
    c.namespace("e2e-registries");
    let err = build(
        c,
        &["create", "-f", "-"],
        Some(&pod("elsewhere", "e2e-registries", "docker.io/library/nginx:1.27", "")),
    )
    .fails();
    assert!(err.contains("not from an allowed registry"), "{err}");
    build(
        c,
        &["create", "-f", "-"],
        Some(&pod("allowed", "e2e-registries", "public.ecr.aws/nginx/nginx:1.27", "")),
    )
    .ok();
}

/// A short unique suffix for retried object names.
fn fastrand_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}
