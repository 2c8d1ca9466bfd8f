//! The live sources Rampart reads from the cluster: namespace labels (Pod Security), RBAC
//! (queries and `--rbac-from-cluster`), aws-auth (IAM mapping), workload-identity sources
//! (`/v1/mutate`), the service-account JWKS, and scan snapshots.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};

use crate::KubeError;

/// Every namespace's labels (needs `list` on `namespaces`).
pub async fn namespace_labels(
    client: &kube::Client,
) -> Result<HashMap<String, BTreeMap<String, String>>, KubeError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(KubeError::api("list namespaces", "list on namespaces"))?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|ns| Some((ns.metadata.name?, ns.metadata.labels.unwrap_or_default())))
        .collect())
}

/// Every Role, ClusterRole, RoleBinding and ClusterRoleBinding of the cluster (needs `list` on
/// those four resources), as an RBAC world.
pub async fn rbac_world(client: &kube::Client) -> Result<rampart_rbac::manifest::World, KubeError> {
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
    use rampart_rbac::model;

    let lp = ListParams::default();
    let rule = |r: k8s_openapi::api::rbac::v1::PolicyRule| model::PolicyRule {
        verbs: r.verbs,
        api_groups: r.api_groups.unwrap_or_default(),
        resources: r.resources.unwrap_or_default(),
        resource_names: r.resource_names.unwrap_or_default(),
        non_resource_urls: r.non_resource_urls.unwrap_or_default(),
    };
    let subjects = |s: Option<Vec<k8s_openapi::api::rbac::v1::Subject>>| -> Vec<model::Subject> {
        s.unwrap_or_default()
            .into_iter()
            .map(|s| model::Subject {
                kind: s.kind,
                name: s.name,
                namespace: s.namespace.unwrap_or_default(),
            })
            .collect()
    };
    let selector = |s: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector| model::LabelSelector {
        match_labels: s.match_labels.unwrap_or_default(),
        match_expressions: s
            .match_expressions
            .unwrap_or_default()
            .into_iter()
            .map(|e| model::LabelRequirement {
                key: e.key,
                operator: e.operator,
                values: e.values.unwrap_or_default(),
            })
            .collect(),
    };
    let mut world = rampart_rbac::manifest::World::default();
    let context = || {
        KubeError::api(
            "list RBAC objects",
            "list on roles, rolebindings, clusterroles and clusterrolebindings",
        )
    };
    for r in Api::<ClusterRole>::all(client.clone()).list(&lp).await.map_err(context())? {
        world.cluster_roles.push(model::Role {
            name: r.metadata.name.unwrap_or_default(),
            namespace: String::new(),
            labels: r.metadata.labels.unwrap_or_default(),
            rules: r.rules.unwrap_or_default().into_iter().map(rule).collect(),
            aggregation_rule: r.aggregation_rule.map(|a| model::AggregationRule {
                cluster_role_selectors: a
                    .cluster_role_selectors
                    .unwrap_or_default()
                    .into_iter()
                    .map(selector)
                    .collect(),
            }),
        });
    }
    for r in Api::<Role>::all(client.clone()).list(&lp).await.map_err(context())? {
        world.roles.push(model::Role {
            name: r.metadata.name.unwrap_or_default(),
            namespace: r.metadata.namespace.unwrap_or_default(),
            labels: r.metadata.labels.unwrap_or_default(),
            rules: r.rules.unwrap_or_default().into_iter().map(rule).collect(),
            aggregation_rule: None,
        });
    }
    for b in Api::<ClusterRoleBinding>::all(client.clone()).list(&lp).await.map_err(context())? {
        world.cluster_role_bindings.push(model::Binding {
            name: b.metadata.name.unwrap_or_default(),
            namespace: String::new(),
            role_ref: model::RoleRef { kind: b.role_ref.kind, name: b.role_ref.name },
            subjects: subjects(b.subjects),
        });
    }
    for b in Api::<RoleBinding>::all(client.clone()).list(&lp).await.map_err(context())? {
        world.role_bindings.push(model::Binding {
            name: b.metadata.name.unwrap_or_default(),
            namespace: b.metadata.namespace.unwrap_or_default(),
            role_ref: model::RoleRef { kind: b.role_ref.kind, name: b.role_ref.name },
            subjects: subjects(b.subjects),
        });
    }
    Ok(world)
}

/// The `kube-system/aws-auth` ConfigMap as YAML text, or `None` when it does not exist
/// (needs `get` on that ConfigMap).
pub async fn aws_auth_configmap(client: &kube::Client) -> Result<Option<String>, KubeError> {
    use k8s_openapi::api::core::v1::ConfigMap;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
    let cm = api
        .get_opt("aws-auth")
        .await
        .map_err(KubeError::api("read kube-system/aws-auth", "get on that ConfigMap"))?;
    cm.map(|cm| serde_yaml::to_string(&cm).map_err(|e| KubeError::invalid("kube-system/aws-auth", e)))
        .transpose()
}

/// The cluster's service-account JWKS (`/openid/v1/jwks`; needs the
/// system:service-account-issuer-discovery role).
pub async fn cluster_jwks(client: &kube::Client) -> Result<jsonwebtoken::jwk::JwkSet, KubeError> {
    let request = http::Request::get("/openid/v1/jwks")
        .body(Vec::new())
        .map_err(|e| KubeError::invalid("/openid/v1/jwks", e))?;
    let text = client.request_text(request).await.map_err(KubeError::api(
        "read /openid/v1/jwks",
        "the system:service-account-issuer-discovery role",
    ))?;
    serde_json::from_str(&text)
        .map_err(|e| KubeError::invalid("the cluster's /openid/v1/jwks is not a JWKS", e))
}

/// Workload-identity sources from the cluster: every ServiceAccount (their
/// `eks.amazonaws.com/*` annotations), the `PodIdentityAssociation` objects
/// (`rampart.dev/v1alpha1`, cluster-scoped; skipped when the CRD is not installed) and
/// upstream's `pod-identity-webhook` ConfigMap in kube-system, if any.
pub async fn identity_sources(
    client: &kube::Client,
) -> Result<rampart_identity::inject::IdentitySources, KubeError> {
    use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    let mut sources = rampart_identity::inject::IdentitySources::default();
    let lp = ListParams::default();
    let sas: Api<ServiceAccount> = Api::all(client.clone());
    let list =
        sas.list(&lp).await.map_err(KubeError::api("list serviceaccounts", "list on serviceaccounts"))?;
    let items: Vec<serde_json::Value> = list
        .items
        .into_iter()
        .map(|mut sa| {
            sa.metadata.managed_fields = None;
            serde_json::json!({"kind": "ServiceAccount", "metadata": sa.metadata})
        })
        .collect();
    sources
        .add_manifests(
            "cluster serviceaccounts",
            &serde_json::json!({"kind": "List", "items": items}).to_string(),
        )
        .map_err(|e| KubeError::invalid("serviceaccounts", e))?;
    let gvk = GroupVersionKind::gvk("rampart.dev", "v1alpha1", "PodIdentityAssociation");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "podidentityassociations");
    let associations: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    match associations.list(&lp).await {
        Ok(list) => {
            let items: Vec<serde_json::Value> = list
                .items
                .into_iter()
                .map(|o| {
                    let mut v = serde_json::to_value(&o).unwrap_or_default();
                    v["kind"] = "PodIdentityAssociation".into();
                    v
                })
                .collect();
            sources
                .add_manifests(
                    "cluster podidentityassociations",
                    &serde_json::json!({"kind": "List", "items": items}).to_string(),
                )
                .map_err(|e| KubeError::invalid("podidentityassociations", e))?;
        }
        Err(kube::Error::Api(e)) if e.code == 404 => {
            tracing::debug!("PodIdentityAssociation CRD not installed; associations come from files only")
        }
        Err(e) => {
            return Err(KubeError::api("list podidentityassociations.rampart.dev", "list on that resource")(
                e,
            ));
        }
    }
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
    if let Some(cm) = cms
        .get_opt("pod-identity-webhook")
        .await
        .map_err(KubeError::api("read kube-system/pod-identity-webhook", "get on that ConfigMap"))?
    {
        let v = serde_json::json!({"kind": "ConfigMap", "metadata": {"name": "pod-identity-webhook"}, "data": cm.data});
        sources
            .add_manifests("kube-system/pod-identity-webhook", &v.to_string())
            .map_err(|e| KubeError::invalid("kube-system/pod-identity-webhook", e))?;
    }
    Ok(sources)
}

/// A kind as `(group, version, kind, plural)`.
type Kind = (&'static str, &'static str, &'static str, &'static str);

/// Every object of one kind in every namespace, each with its `kind` set (lists leave it out).
async fn list_all(
    client: &kube::Client,
    (group, version, kind, plural): Kind,
) -> Result<Vec<serde_json::Value>, kube::Error> {
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let list = api.list(&ListParams::default()).await?;
    Ok(list
        .items
        .into_iter()
        .map(|item| {
            let mut v = serde_json::to_value(&item).unwrap_or_default();
            v["kind"] = kind.into();
            v
        })
        .collect())
}

/// The admin tiers of network policy: CRDs (sigs.k8s.io/network-policy-api) a cluster may not
/// have installed, so a 404 on their list means "none".
const ADMIN_NETWORK_POLICY_KINDS: [Kind; 2] = [
    ("policy.networking.k8s.io", "v1alpha1", "AdminNetworkPolicy", "adminnetworkpolicies"),
    ("policy.networking.k8s.io", "v1alpha1", "BaselineAdminNetworkPolicy", "baselineadminnetworkpolicies"),
];

/// What `rampart netpol` analyses, from the cluster: namespaces, workloads, NetworkPolicies
/// and, where their CRDs are installed, AdminNetworkPolicies and the
/// BaselineAdminNetworkPolicy. Unlike the scan, every list must succeed: a NetworkPolicy left unread
/// would show its pods open, a picture more permissive than the cluster.
pub async fn network_objects(client: &kube::Client) -> Result<Vec<serde_json::Value>, KubeError> {
    let kinds: [Kind; 9] = [
        ("", "v1", "Namespace", "namespaces"),
        ("", "v1", "Pod", "pods"),
        ("apps", "v1", "Deployment", "deployments"),
        ("apps", "v1", "DaemonSet", "daemonsets"),
        ("apps", "v1", "StatefulSet", "statefulsets"),
        ("apps", "v1", "ReplicaSet", "replicasets"),
        ("batch", "v1", "Job", "jobs"),
        ("batch", "v1", "CronJob", "cronjobs"),
        ("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies"),
    ];
    let mut objects = Vec::new();
    for kind in kinds {
        let listed = list_all(client, kind).await.map_err(KubeError::api(
            format!("list {} in every namespace", kind.3),
            "list on namespaces, pods, deployments, daemonsets, statefulsets, replicasets, jobs, cronjobs and networkpolicies",
        ))?;
        objects.extend(listed);
    }
    // A cluster without the admin tiers' CRDs has none, which is not an error; any other
    // failure is.
    for kind in ADMIN_NETWORK_POLICY_KINDS {
        match list_all(client, kind).await {
            Ok(listed) => objects.extend(listed),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => {
                return Err(KubeError::api(
                    format!("list {} (policy.networking.k8s.io)", kind.3),
                    "list on adminnetworkpolicies and baselineadminnetworkpolicies",
                )(e));
            }
        }
    }
    Ok(objects)
}

/// The objects `rampart scan` reads, listed from the cluster (kinds the user may not list are
/// skipped with a warning rather than failing the scan).
pub async fn snapshot(client: &kube::Client) -> Result<rampart_detect::scan::snapshot::Snapshot, KubeError> {
    let kinds: Vec<Kind> = [
        ("", "v1", "Namespace", "namespaces"),
        ("", "v1", "Pod", "pods"),
        ("", "v1", "ServiceAccount", "serviceaccounts"),
        ("", "v1", "Service", "services"),
        ("apps", "v1", "Deployment", "deployments"),
        ("apps", "v1", "DaemonSet", "daemonsets"),
        ("apps", "v1", "StatefulSet", "statefulsets"),
        ("apps", "v1", "ReplicaSet", "replicasets"),
        ("batch", "v1", "Job", "jobs"),
        ("batch", "v1", "CronJob", "cronjobs"),
        ("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies"),
        ("networking.k8s.io", "v1", "Ingress", "ingresses"),
        ("rbac.authorization.k8s.io", "v1", "Role", "roles"),
        ("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles"),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings"),
    ]
    .into_iter()
    .chain(ADMIN_NETWORK_POLICY_KINDS)
    .collect();
    let mut snapshot = rampart_detect::scan::snapshot::Snapshot::default();
    let mut refused = Vec::new();
    for &(group, version, kind, plural) in &kinds {
        match list_all(client, (group, version, kind, plural)).await {
            Ok(objects) => snapshot.objects.extend(objects),
            // A CRD that is not installed (the admin network policy tiers): nothing to read.
            Err(kube::Error::Api(status))
                if status.code == 404 && ADMIN_NETWORK_POLICY_KINDS.iter().any(|admin| admin.3 == plural) => {
            }
            Err(e) => {
                tracing::warn!("cannot list {plural} ({e}); checks that need them will see none");
                refused.push(plural);
            }
        }
    }
    if refused.len() == kinds.len() {
        return Err(KubeError::invalid(
            "scan",
            format!("every list was refused ({}): nothing to check; grant list on them", refused.join(", ")),
        ));
    }
    match aws_auth_configmap(client).await {
        Ok(Some(text)) => {
            let mut cm: serde_json::Value =
                serde_yaml::from_str(&text).map_err(|e| KubeError::invalid("kube-system/aws-auth", e))?;
            cm["kind"] = "ConfigMap".into();
            cm["metadata"]["namespace"] = "kube-system".into();
            cm["metadata"]["name"] = "aws-auth".into();
            snapshot.objects.push(cm);
        }
        Ok(None) => {}
        Err(e) => tracing::warn!("{e}"),
    }
    Ok(snapshot)
}

/// The cluster's `ImagePolicy` objects (`rampart.dev/v1alpha1`), each as `(name@resourceVersion,
/// object)`, in name order (needs `list imagepolicies.rampart.dev`). An absent CRD is an error:
/// `--image-policies-from-cluster` was asked for, and reading nothing must not pass silently.
pub async fn image_policies(client: &kube::Client) -> Result<Vec<(String, serde_json::Value)>, KubeError> {
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    let gvk = GroupVersionKind::gvk("rampart.dev", "v1alpha1", "ImagePolicy");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "imagepolicies");
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let list = api.list(&ListParams::default()).await.map_err(KubeError::api(
        "list imagepolicies.rampart.dev (is deploy/images/crd.yaml applied?)",
        "list on imagepolicies.rampart.dev",
    ))?;
    let mut out: Vec<(String, serde_json::Value)> = list
        .items
        .into_iter()
        .map(|object| {
            let name = object.metadata.name.clone().unwrap_or_default();
            let version = object.metadata.resource_version.clone().unwrap_or_default();
            let value = serde_json::json!({
                "apiVersion": "rampart.dev/v1alpha1",
                "kind": "ImagePolicy",
                "metadata": {"name": name},
                "spec": object.data.get("spec").cloned().unwrap_or(serde_json::Value::Null),
            });
            (format!("{name}@{version}"), value)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kube-apiserver stand-in answering the one call made: `GET /api/v1/namespaces`.
    async fn fake_apiserver() -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let rbac = |kind: &str, items: &str| {
                    format!(
                        r#"{{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"{kind}","metadata":{{}},"items":[{items}]}}"#
                    )
                };
                let owned;
                let body = if request.starts_with("GET /api/v1/namespaces/kube-system/configmaps/aws-auth") {
                    r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"aws-auth","namespace":"kube-system"},
                        "data":{"mapUsers":"- userarn: arn:aws:iam::1:user/alice\n  username: alice\n"}}"#
                } else if request.starts_with("GET /apis/rbac.authorization.k8s.io/v1/clusterroles") {
                    owned = rbac(
                        "ClusterRoleList",
                        r#"{"metadata":{"name":"reader"},"rules":[{"apiGroups":[""],"resources":["pods"],"verbs":["get"]}]}"#,
                    );
                    owned.as_str()
                } else if request.starts_with("GET /apis/rbac.authorization.k8s.io/v1/clusterrolebindings") {
                    owned = rbac(
                        "ClusterRoleBindingList",
                        r#"{"metadata":{"name":"readers"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"reader"},"subjects":[{"kind":"Group","name":"devs"}]}"#,
                    );
                    owned.as_str()
                } else if request.starts_with("GET /apis/rbac.authorization.k8s.io/v1/roles") {
                    owned = rbac("RoleList", "");
                    owned.as_str()
                } else if request.starts_with("GET /apis/rbac.authorization.k8s.io/v1/rolebindings") {
                    owned = rbac("RoleBindingList", "");
                    owned.as_str()
                } else if request.starts_with("GET /api/v1/namespaces") {
                    r#"{"apiVersion":"v1","kind":"NamespaceList","metadata":{"resourceVersion":"1"},"items":[
                      {"metadata":{"name":"prod","labels":{"pod-security.kubernetes.io/enforce":"restricted"}}},
                      {"metadata":{"name":"dev"}}]}"#
                } else {
                    r#"{"kind":"Status","apiVersion":"v1","status":"Failure","code":404}"#
                };
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn lists_namespace_labels_through_a_kubeconfig() {
        let addr = fake_apiserver().await;
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("config");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: 'http://{addr}'}}\n\
                 users:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"
            ),
        )
        .unwrap();
        let client = crate::client(Some(&kubeconfig)).await.unwrap();
        let labels = namespace_labels(&client).await.unwrap();
        assert_eq!(labels["prod"]["pod-security.kubernetes.io/enforce"], "restricted");
        assert!(labels["dev"].is_empty());
        let aws_auth = aws_auth_configmap(&client).await.unwrap().unwrap();
        let (auth, _) = rampart_identity::mapping::AwsAuth::from_configmap(&aws_auth).unwrap();
        assert_eq!(auth.users[0].username, "alice");
        let world = rbac_world(&client).await.unwrap();
        let groups = vec!["devs".to_owned()];
        let d = world.authorizer().authorize(
            &rampart_rbac::User { name: "alice", groups: &groups },
            &rampart_rbac::Attributes {
                verb: "get",
                resource_request: true,
                resource: "pods",
                namespace: "x",
                ..Default::default()
            },
        );
        assert_eq!(
            d.reason(),
            r#"RBAC: allowed by ClusterRoleBinding "readers" of ClusterRole "reader" to Group "devs""#
        );
    }
}
