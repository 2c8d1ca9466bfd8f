//! Mutation of a typical pod (two containers, one init container, three volumes) for IRSA
//! and Pod Identity, beside the baseline every webhook pays anyway: decoding the pod JSON and
//! encoding a reply of the same size. Target ≤ 50 µs per mutation.
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark setup

use std::collections::BTreeMap;

use criterion::{Criterion, criterion_group, criterion_main};
use rampart_identity::inject::{IdentitySources, InjectConfig};
use serde_json::{Value, json};

fn pod() -> Value {
    let container = |name: &str| {
        json!({"name": name, "image": format!("registry.example.com/{name}:1.2.3"),
               "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "PORT", "value": "8080"}],
               "ports": [{"containerPort": 8080}], "resources": {"limits": {"cpu": "1", "memory": "512Mi"}},
               "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}, {"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}]})
    };
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "web-7d4b9", "namespace": "team-a", "labels": {"app": "web", "tier": "frontend"}},
           "spec": {"serviceAccountName": "app",
                    "initContainers": [container("migrate")],
                    "containers": [container("web"), container("sidecar")],
                    "volumes": [{"name": "config", "configMap": {"name": "web"}}, {"name": "kube-api-access", "projected": {"sources": []}}, {"name": "tmp", "emptyDir": {}}]}})
}

fn bench(c: &mut Criterion) {
    let config = InjectConfig { region: Some("eu-west-1".into()), ..InjectConfig::default() };
    let irsa = IdentitySources {
        service_accounts: BTreeMap::from([(
            "team-a/app".into(),
            BTreeMap::from([(
                "eks.amazonaws.com/role-arn".into(),
                "arn:aws:iam::111122223333:role/app".into(),
            )]),
        )]),
        ..IdentitySources::default()
    };
    let mut pod_identity = IdentitySources::default();
    pod_identity.pod_identity.insert(("team-a".into(), "app".into()));
    let text = serde_json::to_vec(&pod()).unwrap();
    let mut group = c.benchmark_group("inject");
    group.bench_function("baseline: decode pod + encode reply", |b| {
        b.iter(|| {
            let pod: Value = serde_json::from_slice(std::hint::black_box(&text)).unwrap();
            serde_json::to_vec(&pod).unwrap()
        })
    });
    for (name, sources) in [("irsa", &irsa), ("pod-identity", &pod_identity)] {
        group.bench_function(format!("{name}: decode + mutate + encode patch"), |b| {
            b.iter(|| {
                let pod: Value = serde_json::from_slice(std::hint::black_box(&text)).unwrap();
                let ops = config.mutate(&pod, "team-a", sources, &mut || 0).unwrap();
                serde_json::to_vec(&ops).unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
