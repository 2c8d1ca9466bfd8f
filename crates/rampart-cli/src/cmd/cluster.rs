//! Reading from a live cluster with `kube`: namespace labels for Pod Security.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::Context;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// A client from `kubeconfig`, or from the environment (`KUBECONFIG`, `~/.kube/config`, or the
/// in-cluster service account) when none is given.
pub async fn client(kubeconfig: Option<&Path>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .with_context(|| format!("invalid kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no cluster configuration found (set KUBECONFIG, pass --kubeconfig, or run in a pod)")?,
    };
    kube::Client::try_from(config).context("cannot build a Kubernetes client")
}

/// Every namespace's labels (needs `list` on `namespaces`).
pub async fn namespace_labels(
    client: &kube::Client,
) -> anyhow::Result<HashMap<String, BTreeMap<String, String>>> {
    let api: Api<Namespace> = Api::all(client.clone());
    let list =
        api.list(&ListParams::default()).await.context("cannot list namespaces (RBAC: list namespaces)")?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|ns| Some((ns.metadata.name?, ns.metadata.labels.unwrap_or_default())))
        .collect())
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
                let body = if request.starts_with("GET /api/v1/namespaces") {
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
        let client = client(Some(&kubeconfig)).await.unwrap();
        let labels = namespace_labels(&client).await.unwrap();
        assert_eq!(labels["prod"]["pod-security.kubernetes.io/enforce"], "restricted");
        assert!(labels["dev"].is_empty());
    }
}
