//! `rampart demo`: the talk's live demo, replayed against a real in-process HTTPS server.
//!
//! `sample-user` is in the group `requires-labels`. The demo's `label-enforcement-policy`
//! forbids that group to list or watch without `-l owner=<self>`, and forbids creating,
//! updating or deleting objects not labelled `owner=<self>`.
//!
//! With `--kubeconfig`, the same six requests go through a real cluster's apiserver as
//! sample-user (impersonated), so what is checked is the whole chain: authentication,
//! Rampart's authorization and admission webhooks, and the messages users see.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use rampart_policy::store::{LiveEngine, PolicySources};
use rampart_server::tls::{CertSource, default_names};
use rampart_server::{AppState, ServeConfig, Transport};
use serde_json::{Value, json};

use crate::embedded::write_demo_policies;
use crate::output::{self, Format};

#[derive(Debug, clap::Args)]
#[command(after_long_help = "EXAMPLES:
    rampart demo                             # in-process, no cluster needed
    rampart demo --kubeconfig ~/.kube/config # through a cluster running Rampart

Against a real cluster, Rampart must serve the demo policies
(examples/policies/demo) and the kubeconfig's user must be allowed to impersonate
sample-user and its groups (system:masters can).")]
pub struct Args {
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: Format,
    /// Run the demo through this cluster's apiserver instead of an in-process server.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Namespace of the demo's ConfigMaps (the demo policy permits `default`).
    #[arg(long, default_value = "default", requires = "kubeconfig")]
    pub namespace: String,
}

const USER: &str = "sample-user";
const GROUPS: [&str; 3] = ["sample-group", "requires-labels", "system:authenticated"];

struct Step {
    what: &'static str,
    kubectl: &'static str,
    endpoint: &'static str,
    body: Value,
    expect_allowed: bool,
}

fn sar(verb: &str, label_selector: Option<&str>) -> Value {
    let mut attrs =
        json!({"verb": verb, "group": "", "version": "v1", "resource": "configmaps", "namespace": "default"});
    if let Some(owner) = label_selector {
        attrs["labelSelector"] =
            json!({"requirements": [{"key": "owner", "operator": "In", "values": [owner]}]});
    }
    json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
           "spec": {"user": USER, "groups": GROUPS, "resourceAttributes": attrs}})
}

fn configmap(name: &str, owner: Option<&str>, data: &str) -> Value {
    let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"}, "data": {"greeting": data}});
    if let Some(owner) = owner {
        cm["metadata"]["labels"] = json!({"owner": owner});
    }
    cm
}

fn review(operation: &str, name: &str, object: Value, old: Value) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": format!("demo-{operation}-{name}").to_lowercase(),
        "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
        "resource": {"group": "", "version": "v1", "resource": "configmaps"},
        "requestKind": {"group": "", "version": "v1", "kind": "ConfigMap"},
        "requestResource": {"group": "", "version": "v1", "resource": "configmaps"},
        "name": name, "namespace": "default", "operation": operation,
        "userInfo": {"username": USER, "groups": GROUPS},
        "object": object, "oldObject": old, "dryRun": false}})
}

fn steps() -> Vec<Step> {
    vec![
        Step {
            what: "list without a label selector",
            kubectl: "kubectl get configmaps",
            endpoint: "/v1/authorize",
            body: sar("list", None),
            expect_allowed: false,
        },
        Step {
            what: "create without an owner label",
            kubectl: "kubectl create configmap sample-config",
            endpoint: "/v1/admit",
            body: review("CREATE", "sample-config", configmap("sample-config", None, "hi"), Value::Null),
            expect_allowed: false,
        },
        Step {
            what: "update someone else's object",
            kubectl: "kubectl edit configmap other-config  # owner=some-user",
            endpoint: "/v1/admit",
            body: review(
                "UPDATE",
                "other-config",
                configmap("other-config", Some("some-user"), "changed"),
                configmap("other-config", Some("some-user"), "hello"),
            ),
            expect_allowed: false,
        },
        Step {
            what: "create is authorized (admission still checks labels)",
            kubectl: "kubectl create configmap sample-config",
            endpoint: "/v1/authorize",
            body: sar("create", None),
            expect_allowed: true,
        },
        Step {
            what: "create of own labelled object",
            kubectl: "kubectl create configmap sample-config -l owner=sample-user",
            endpoint: "/v1/admit",
            body: review(
                "CREATE",
                "sample-config",
                configmap("sample-config", Some(USER), "hi"),
                Value::Null,
            ),
            expect_allowed: true,
        },
        Step {
            what: "list with -l owner=sample-user",
            kubectl: "kubectl get configmaps -l owner=sample-user",
            endpoint: "/v1/authorize",
            body: sar("list", Some(USER)),
            expect_allowed: true,
        },
    ]
}

#[derive(serde::Serialize)]
struct Row {
    step: usize,
    what: &'static str,
    kubectl: &'static str,
    endpoint: &'static str,
    decision: String,
    reason: String,
    as_expected: bool,
}

/// `(decision, reason)` from a review response.
fn summarize(endpoint: &str, resp: &Value) -> (bool, String, String) {
    if endpoint == "/v1/authorize" {
        let s = &resp["status"];
        let allowed = s["allowed"] == true;
        let decision = if allowed {
            "Allow"
        } else if s["denied"] == true {
            "Deny"
        } else {
            "NoOpinion"
        };
        (allowed, decision.into(), reason_text(s["reason"].as_str().unwrap_or_default(), "reasons"))
    } else {
        let r = &resp["response"];
        let allowed = r["allowed"] == true;
        let message = r["status"]["message"].as_str().unwrap_or_default();
        let reason =
            if allowed { "implicit allow-all admission tier".into() } else { reason_text(message, "") };
        (allowed, if allowed { "Allowed" } else { "Denied" }.into(), reason)
    }
}

/// Render Go-style reason JSON as `policy (file:line:col)`.
fn reason_text(json: &str, key: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(json) else { return json.to_owned() };
    let list = if key.is_empty() { &v } else { &v[key] };
    list.as_array()
        .map(|items| {
            items
                .iter()
                .map(|r| {
                    let p = &r["position"];
                    format!(
                        "{} ({}:{}:{})",
                        r["policy"].as_str().unwrap_or_default(),
                        p["filename"].as_str().unwrap_or_default(),
                        p["line"],
                        p["column"]
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(kubeconfig) = &args.kubeconfig {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let rows = runtime.block_on(live::run(kubeconfig, &args.namespace))?;
        if args.output == Format::Table {
            crate::outln!("Rampart demo through the cluster of {}\n", kubeconfig.display());
            crate::outln!("{USER} (impersonated) is in groups {GROUPS:?}\n");
        }
        return report(args.output, rows);
    }
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies)?;
    write_demo_policies(&policies)?;
    let sources = PolicySources::new(vec![policies], Default::default());
    let (live, _) = LiveEngine::load(sources)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let rows = runtime.block_on(async {
        let config = ServeConfig {
            addr: "127.0.0.1:0".parse()?,
            transport: Transport::Tls(CertSource::SelfSigned {
                dir: dir.path().join("certs"),
                names: default_names(),
            }),
        };
        let server = rampart_server::start(&config, AppState::new(live, Default::default()))?;
        let ca = std::fs::read(server.cert_file.as_ref().context("server has no certificate")?)?;
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca)?)
            .timeout(Duration::from_secs(10))
            .build()?;
        if args.output == Format::Table {
            crate::outln!(
                "Rampart demo: policies of the cedar-access-control-for-k8s demo, served over HTTPS at {}\n",
                server.url()
            );
            crate::outln!("{USER} is in groups {GROUPS:?}\n");
        }
        let mut rows = Vec::new();
        for (i, step) in steps().into_iter().enumerate() {
            let url = format!("https://localhost:{}{}", server.addr.port(), step.endpoint);
            let resp: Value =
                client.post(url).json(&step.body).send().await?.error_for_status()?.json().await?;
            let (allowed, decision, reason) = summarize(step.endpoint, &resp);
            rows.push(Row {
                step: i + 1,
                what: step.what,
                kubectl: step.kubectl,
                endpoint: step.endpoint,
                decision,
                reason,
                as_expected: allowed == step.expect_allowed,
            });
        }
        server.shutdown(Duration::from_secs(1)).await?;
        anyhow::Ok(rows)
    })?;
    report(args.output, rows)
}

fn report(output: Format, rows: Vec<Row>) -> anyhow::Result<ExitCode> {
    let all_good = rows.iter().all(|r| r.as_expected);
    match output {
        Format::Json => crate::outln!("{}", serde_json::to_string_pretty(&rows)?),
        Format::Table => {
            let mut t =
                output::table(&["#", "request", "webhook", "decision", "deciding policy (file:line:col)"]);
            for r in &rows {
                let mark = if r.as_expected { "" } else { "  (UNEXPECTED)" };
                t.add_row(vec![
                    r.step.to_string(),
                    format!("{}\n$ {}", r.what, r.kubectl),
                    r.endpoint.to_owned(),
                    format!("{}{mark}", r.decision),
                    r.reason.clone(),
                ]);
            }
            crate::outln!("{t}");
            if all_good {
                crate::outln!("\nEvery request was decided as in the talk.");
            }
        }
    }
    Ok(if all_good { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The demo through a real apiserver.
mod live {
    use std::path::Path;

    use anyhow::Context;
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    };
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};

    use super::{GROUPS, Row, USER, configmap, steps};

    /// Allowed, and what the apiserver said (a denial's message, or an access review's reason).
    type Answer = (bool, String);

    fn answer<T>(result: Result<T, kube::Error>) -> anyhow::Result<Answer> {
        match result {
            Ok(_) => Ok((true, String::new())),
            Err(kube::Error::Api(status)) if status.code == 403 => Ok((false, status.message)),
            Err(e) => Err(e).context("the apiserver did not answer as expected"),
        }
    }

    /// `forbidden by policy x (f:l:c)` out of the apiserver's message, else the message.
    fn deciding_policy(message: &str) -> String {
        match message.find(" by polic") {
            // One policy per line, as the in-process table shows them.
            Some(at) => message[at + 4..]
                .trim_start_matches("policy ")
                .trim_start_matches("policies ")
                .replace("), ", ")\n"),
            None => message.to_owned(),
        }
    }

    pub async fn run(kubeconfig: &Path, namespace: &str) -> anyhow::Result<Vec<Row>> {
        let admin = crate::cmd::cluster::client(Some(kubeconfig)).await?;
        let kc = kube::config::Kubeconfig::read_from(kubeconfig)
            .with_context(|| format!("cannot read kubeconfig {}", kubeconfig.display()))?;
        let mut config =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default()).await?;
        config.auth_info.impersonate = Some(USER.into());
        config.auth_info.impersonate_groups = Some(GROUPS.iter().map(|g| g.to_string()).collect());
        let user = kube::Client::try_from(config)?;

        let as_admin: Api<ConfigMap> = Api::namespaced(admin, namespace);
        let as_user: Api<ConfigMap> = Api::namespaced(user.clone(), namespace);
        let (sample, other) = ("demo-sample-config", "demo-other-config");
        let cleanup = async || {
            for name in [sample, other] {
                let _ = as_admin.delete(name, &DeleteParams::default()).await;
            }
        };
        cleanup().await;
        let mut setup = serde_json::from_value::<ConfigMap>(configmap(other, Some("some-user"), "hello"))?;
        setup.metadata.namespace = Some(namespace.into());
        as_admin
            .create(&PostParams::default(), &setup)
            .await
            .context("cannot create the demo's other-config as the kubeconfig's user")?;

        let cm = |name: &str, owner: Option<&str>| -> anyhow::Result<ConfigMap> {
            let mut cm = serde_json::from_value::<ConfigMap>(configmap(name, owner, "hi"))?;
            cm.metadata.namespace = Some(namespace.into());
            Ok(cm)
        };
        let lp = ListParams::default();
        let answers: Vec<Answer> = vec![
            answer(as_user.list(&lp).await)?,
            answer(as_user.create(&PostParams::default(), &cm(sample, None)?).await)?,
            answer(
                as_user
                    .patch(
                        other,
                        &PatchParams::default(),
                        &Patch::Merge(serde_json::json!({"data": {"greeting": "changed"}})),
                    )
                    .await,
            )?,
            {
                let review = SelfSubjectAccessReview {
                    spec: SelfSubjectAccessReviewSpec {
                        resource_attributes: Some(ResourceAttributes {
                            verb: Some("create".into()),
                            resource: Some("configmaps".into()),
                            namespace: Some(namespace.into()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                let api: Api<SelfSubjectAccessReview> = Api::all(user.clone());
                let status = api.create(&PostParams::default(), &review).await?.status.unwrap_or_default();
                (status.allowed, status.reason.unwrap_or_default())
            },
            answer(as_user.create(&PostParams::default(), &cm(sample, Some(USER))?).await)?,
            answer(as_user.list(&lp.clone().labels(&format!("owner={USER}"))).await)?,
        ];
        cleanup().await;
        Ok(steps()
            .into_iter()
            .zip(answers)
            .enumerate()
            .map(|(i, (step, (allowed, message)))| Row {
                step: i + 1,
                what: step.what,
                kubectl: step.kubectl,
                endpoint: "kube-apiserver",
                decision: match (allowed, step.endpoint) {
                    (true, "/v1/authorize") => "Allow",
                    (false, "/v1/authorize") => "Deny",
                    (true, _) => "Allowed",
                    (false, _) => "Denied",
                }
                .into(),
                reason: if message.is_empty() { "—".into() } else { deciding_policy(&message) },
                as_expected: allowed == step.expect_allowed,
            })
            .collect())
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn the_deciding_policy_is_cut_out_of_the_message() {
            assert_eq!(
                super::deciding_policy(
                    "configmaps is forbidden: User \"u\" cannot list …: forbidden by policy p1 (f:2:1)"
                ),
                "p1 (f:2:1)"
            );
            assert_eq!(super::deciding_policy("no policy named"), "no policy named");
        }
    }
}
