//! Scenario 5: mutation. A pod of an IRSA-annotated service account and a pod with a Pod
//! Identity association are created through the apiserver, which validates Rampart's patch and
//! defaults the result; `kubectl get pod -o json` shows exactly what was injected.

use serde_json::{Value, json};

use crate::admission::{BUILDERS, build};
use crate::shared;

fn created_pod(c: &crate::Cluster, name: &str, service_account: &str) -> Value {
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: e2e-identity}}\nspec:\n  serviceAccountName: {service_account}\n  containers: [{{name: app, image: registry.k8s.io/pause:3.10}}]\n"
    );
    build(c, &["create", "-f", "-"], Some(&pod)).ok();
    c.admin().run(&["get", "pod", name, "-n", "e2e-identity", "-o", "json"]).json()
}

fn named<'a>(list: &'a Value, name: &str) -> Vec<&'a Value> {
    list.as_array().map(|items| items.iter().filter(|i| i["name"] == name).collect()).unwrap_or_default()
}

#[test]
fn irsa_and_pod_identity_are_injected_through_the_apiserver() {
    let (_gate, c) = shared();
    c.apply(BUILDERS);
    c.namespace("e2e-identity");
    c.apply(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: s3-reader\n  namespace: e2e-identity\n  annotations: {eks.amazonaws.com/role-arn: 'arn:aws:iam::123456789012:role/s3-reader'}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: dynamo-writer, namespace: e2e-identity}\n---\napiVersion: rampart.dev/v1alpha1\nkind: PodIdentityAssociation\nmetadata: {name: e2e-dynamo-writer}\nspec: {namespace: e2e-identity, serviceAccount: dynamo-writer, roleArn: 'arn:aws:iam::123456789012:role/dynamo-writer'}\n",
    );

    // IRSA: the service account was created just now; Rampart looks it up (grace period).
    let pod = created_pod(c, "irsa", "s3-reader");
    let spec = &pod["spec"];
    assert_eq!(
        spec["containers"][0]["env"],
        json!([
            {"name": "AWS_DEFAULT_REGION", "value": "us-east-1"},
            {"name": "AWS_REGION", "value": "us-east-1"},
            {"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::123456789012:role/s3-reader"},
            {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"},
        ]),
        "{pod}"
    );
    assert_eq!(
        named(&spec["volumes"], "aws-iam-token"),
        [&json!({"name": "aws-iam-token", "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"}}]}})]
    );
    assert_eq!(
        named(&spec["containers"][0]["volumeMounts"], "aws-iam-token"),
        [
            &json!({"mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount", "name": "aws-iam-token", "readOnly": true})
        ]
    );

    // Pod Identity: the association is read from the cluster (refreshed every second here).
    let pod = crate::eventually("the association is picked up", std::time::Duration::from_secs(20), || {
        let name = format!("pod-identity-{}", std::time::UNIX_EPOCH.elapsed().unwrap().as_millis());
        let pod = created_pod(c, &name, "dynamo-writer");
        if pod["spec"]["containers"][0]["env"].is_array() {
            Ok(pod)
        } else {
            Err(format!("{name}: nothing injected"))
        }
    });
    let spec = &pod["spec"];
    assert_eq!(
        spec["containers"][0]["env"],
        json!([
            {"name": "AWS_DEFAULT_REGION", "value": "us-east-1"},
            {"name": "AWS_REGION", "value": "us-east-1"},
            {"name": "AWS_CONTAINER_CREDENTIALS_FULL_URI", "value": "http://169.254.170.23/v1/credentials"},
            {"name": "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "value": "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"},
        ]),
        "{pod}"
    );
    let volume = named(&spec["volumes"], "eks-pod-identity-token");
    assert_eq!(volume.len(), 1, "{pod}");
    assert_eq!(
        volume[0]["projected"]["sources"][0]["serviceAccountToken"]["audience"],
        "pods.eks.amazonaws.com"
    );
    assert_eq!(
        named(&spec["containers"][0]["volumeMounts"], "eks-pod-identity-token"),
        [
            &json!({"mountPath": "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount", "name": "eks-pod-identity-token", "readOnly": true})
        ]
    );

    // The opt-out label keeps a pod away from the webhook.
    let opted_out = "apiVersion: v1\nkind: Pod\nmetadata: {name: opted-out, namespace: e2e-identity, labels: {eks.amazonaws.com/skip-pod-identity-webhook: 'true'}}\nspec:\n  serviceAccountName: s3-reader\n  containers: [{name: app, image: registry.k8s.io/pause:3.10}]\n";
    build(c, &["create", "-f", "-"], Some(opted_out)).ok();
    let pod = c.admin().run(&["get", "pod", "opted-out", "-n", "e2e-identity", "-o", "json"]).json();
    assert!(pod["spec"]["containers"][0]["env"].is_null(), "{pod}");
}
