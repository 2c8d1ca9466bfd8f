//! Tail latency of a Pod AdmissionReview through Pod Security restricted plus 100 Cedar
//! admission policies that all apply to the pod (decode + guardrails + Cedar), in-process.
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark setup

use std::str::FromStr;
use std::time::Instant;

use rampart_guardrails::admission::Guardrails;
use rampart_policy::document::{DocumentKind, parse_document};
use rampart_policy::{Engine, EngineOptions};
use rampart_types::admission;

#[path = "../../../bench/rust/noise_floor.rs"]
mod noise_floor;

/// The allocator `rampart serve` ships with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const REVIEW: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
 "uid":"705ab4f5-6393-11e8-b7cc-42010a800002","kind":{"group":"","version":"v1","kind":"Pod"},
 "resource":{"group":"","version":"v1","resource":"pods"},"name":"web-7d4b9c","namespace":"shop",
 "operation":"CREATE","userInfo":{"username":"system:serviceaccount:kube-system:replicaset-controller",
 "uid":"a1","groups":["system:serviceaccounts","system:serviceaccounts:kube-system","system:authenticated"]},
 "object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-7d4b9c","namespace":"shop",
  "labels":{"app":"web","pod-template-hash":"7d4b9c","team":"checkout"},
  "annotations":{"kubectl.kubernetes.io/restartedAt":"2026-11-01T10:00:00Z"},
  "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-7d4b9c","uid":"r1","controller":true}]},
  "spec":{"automountServiceAccountToken":false,"securityContext":{"runAsNonRoot":true,"seccompProfile":{"type":"RuntimeDefault"}},
   "containers":[{"name":"app","image":"registry.k8s.io/app:1.2","ports":[{"containerPort":8080}],
     "resources":{"limits":{"cpu":"500m","memory":"256Mi"}},
     "readinessProbe":{"httpGet":{"path":"/healthz","port":8080}},
     "securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]},"readOnlyRootFilesystem":true}},
    {"name":"sidecar","image":"public.ecr.aws/proxy:3","securityContext":{"allowPrivilegeEscalation":false,
     "capabilities":{"drop":["ALL"]},"readOnlyRootFilesystem":true}}],
   "volumes":[{"name":"cache","emptyDir":{}},{"name":"token","projected":{"sources":[{"serviceAccountToken":{"path":"token"}}]}}]}},
 "oldObject":null,"dryRun":false}}"#;

/// `n` label-checking forbids. With `mixed`, they are spread over ten kinds and the four
/// operations (a realistic library: about one in ten applies to a Pod CREATE); otherwise every
/// one applies to the pod (the worst case).
fn policies(n: usize, mixed: bool) -> String {
    const KINDS: [&str; 10] = [
        "core::v1::Pod",
        "apps::v1::Deployment",
        "core::v1::ConfigMap",
        "core::v1::Secret",
        "core::v1::Service",
        "apps::v1::StatefulSet",
        "batch::v1::Job",
        "networking::v1::Ingress",
        "rbac::v1::RoleBinding",
        "core::v1::ServiceAccount",
    ];
    const OPS: [&str; 4] = ["create", "update", "delete", "connect"];
    (0..n)
        .map(|i| {
            let (kind, op) = if mixed { (KINDS[i % 10], OPS[(i / 10) % 4]) } else { (KINDS[0], OPS[0]) };
            let op = if mixed && i % 10 == 0 { "create" } else { op };
            format!(
                "forbid (principal, action == k8s::admission::Action::\"{op}\", resource is {kind}) \
                 when {{ resource has metadata && resource.metadata has labels && resource.metadata.labels.contains({{\"key\": \"team\", \"value\": \"banned-{i}\"}}) }};\n"
            )
        })
        .collect()
}

fn main() {
    let namespaces = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {pod-security.kubernetes.io/enforce: restricted}}\n";
    let guardrails =
        Guardrails::new(Default::default(), Guardrails::namespaces_from_yaml(namespaces).unwrap()).unwrap();
    println!(
        "Pod AdmissionReview through PSS restricted + 100 Cedar admission policies (decode + guardrails + Cedar)"
    );
    for (label, mixed) in
        [("mixed library, ~10 apply to the pod", true), ("worst case, all 100 apply", false)]
    {
        let loaded =
            parse_document(&DocumentKind::Memory { name: "bench".into() }, &policies(100, mixed)).unwrap();
        let engine = Engine::new(vec![("bench".into(), loaded)], EngineOptions::default()).unwrap();
        let decide = || {
            let review = admission::decode(REVIEW.as_bytes()).unwrap();
            let guard = guardrails.admit(&review.request);
            assert!(guard.denial.is_none());
            let verdict = engine.admit(&review.request);
            assert!(verdict.response.allowed);
        };
        for _ in 0..500 {
            decide();
        }
        let mut measured = noise_floor::measure(10_000, decide);
        let review = admission::decode(REVIEW.as_bytes()).unwrap();
        let mapped = engine.map_admission(&review.request).unwrap();
        let evaluated = engine.tiers()[0].evaluate(&cedar_policy::Authorizer::new(), &mapped).evaluated;
        let plain = cedar_policy::PolicySet::from_str(&policies(100, mixed)).unwrap();
        let authorizer = cedar_policy::Authorizer::new();
        let t = Instant::now();
        for _ in 0..1_000 {
            std::hint::black_box(authorizer.is_authorized(&mapped.request, &plain, &mapped.entities));
        }
        let plain_us = t.elapsed().as_nanos() / 1_000 / 1_000;
        println!(
            "  {};  plain Cedar over the 100, evaluation only: {plain_us} µs",
            measured.line(&format!("{label} ({evaluated} evaluated)"))
        );
    }
}
