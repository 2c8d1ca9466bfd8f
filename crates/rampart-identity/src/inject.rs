//! Workload identity injection: the mutating webhook that gives pods AWS credentials per
//! service account — IRSA (projected OIDC token + `AWS_ROLE_ARN`) or Pod Identity (projected
//! token + container credentials URI) — with amazon-eks-pod-identity-webhook's semantics
//! (spec §1.4–1.9). Edits are computed on the raw JSON, so fields this code does not know
//! (newer container fields) survive; the result is an RFC 6902 patch of `add` operations.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Value, json};

/// Webhook settings (upstream flag defaults).
#[derive(Debug, Clone)]
pub struct InjectConfig {
    pub annotation_prefix: String,
    pub audience: String,
    pub mount_path: String,
    pub volume_name: String,
    pub token_path: String,
    pub token_expiration: i64,
    pub region: Option<String>,
    pub sts_regional: bool,
    pub pi_audience: String,
    pub pi_mount_path: String,
    pub pi_volume_name: String,
    pub pi_token_path: String,
    pub pi_full_uri: String,
    /// `--compose-role-arn`: `role-arn` annotations holding only a role name or path become
    /// `arn:<partition>:iam::<account>:role/<value>` with this account and region (upstream
    /// reads them from IMDS; here they are given, so it works off EC2 too).
    pub compose_role_arn: Option<(String, String)>,
}

impl Default for InjectConfig {
    fn default() -> Self {
        InjectConfig {
            annotation_prefix: "eks.amazonaws.com".into(),
            audience: "sts.amazonaws.com".into(),
            mount_path: "/var/run/secrets/eks.amazonaws.com/serviceaccount".into(),
            volume_name: "aws-iam-token".into(),
            token_path: "token".into(),
            token_expiration: 86_400,
            region: None,
            sts_regional: false,
            pi_audience: "pods.eks.amazonaws.com".into(),
            pi_mount_path: "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount".into(),
            pi_volume_name: "eks-pod-identity-token".into(),
            pi_token_path: "eks-pod-identity-token".into(),
            pi_full_uri: "http://169.254.170.23/v1/credentials".into(),
            compose_role_arn: None,
        }
    }
}

/// Service accounts' annotations by `namespace/name`, the Pod Identity associations, and
/// upstream's `pod-identity-webhook` ConfigMap entries (`namespace/name`, namespace may be `*`).
#[derive(Debug, Clone, Default)]
pub struct IdentitySources {
    pub service_accounts: BTreeMap<String, BTreeMap<String, String>>,
    pub pod_identity: HashSet<(String, String)>,
    pub configured: BTreeMap<String, ConfiguredRole>,
    /// Associations with their roles (for the broker), by `(namespace, service account)`.
    pub associations: crate::pod_identity::broker::Associations,
}

/// One entry of the `pod-identity-webhook` ConfigMap (spec §1.5).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfiguredRole {
    pub role_arn: String,
    pub audience: Option<String>,
    pub use_regional_sts: bool,
    /// 0 means the flag default.
    pub token_expiration: i64,
}

/// The partition a region belongs to (spec §1.6).
pub fn partition_of_region(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else if region.starts_with("eusc-") {
        "aws-eusc"
    } else {
        "aws"
    }
}

/// Minimum projected-token lifetime the API server accepts.
const MIN_EXPIRATION: i64 = 600;
const PI_LABEL: &str = "eks.amazonaws.com/pod-identity";

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn parse_expiration(s: Option<&String>) -> Option<i64> {
    s.and_then(|v| v.parse::<i64>().ok()).map(|v| v.max(MIN_EXPIRATION))
}

#[derive(Debug, Clone, PartialEq)]
enum Mode {
    Irsa { role_arn: String },
    PodIdentity,
}

/// Settings resolved for one pod.
#[derive(Debug, Clone)]
struct Resolved {
    mode: Mode,
    audience: String,
    regional: bool,
    expiration: i64,
}

fn env_names(container: &Value) -> Vec<&str> {
    container
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("name")?.as_str())
        .collect()
}

/// `filepath.Join`, and the Windows form of it when the pod targets Windows.
fn token_file(mount: &str, path: &str, windows: bool) -> String {
    let joined = format!("{}/{}", mount.trim_end_matches('/'), path.trim_start_matches('/'));
    if windows { format!("C:{}", joined.replace('/', "\\")) } else { joined }
}

impl InjectConfig {
    fn resolve(
        &self,
        pod: &Value,
        namespace: &str,
        sources: &IdentitySources,
        jitter: &mut dyn FnMut() -> i64,
    ) -> Option<Resolved> {
        let sa = pod.pointer("/spec/serviceAccountName").and_then(Value::as_str).unwrap_or("default");
        let key = |k: &str| format!("{}/{k}", self.annotation_prefix);
        let annotations = sources.service_accounts.get(&format!("{namespace}/{sa}"));
        let sa_ann = |k: &str| annotations.and_then(|a| a.get(&key(k)));
        let pod_expiration: Option<i64> = pod
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(key("token-expiration")))
            .and_then(Value::as_str)
            .and_then(|v| v.parse::<i64>().ok())
            .map(|v| v.max(MIN_EXPIRATION));
        let default_expiration = self.token_expiration.max(MIN_EXPIRATION);
        let configured_expiration = |c: &ConfiguredRole| {
            if c.token_expiration == 0 { default_expiration } else { c.token_expiration.max(MIN_EXPIRATION) }
        };
        let exact = sources.configured.get(&format!("{namespace}/{sa}"));
        let (mut regional, mut base_expiration) = (self.sts_regional, default_expiration);
        match (annotations, exact) {
            (Some(_), _) => {
                regional = sa_ann("sts-regional-endpoints").and_then(|v| parse_bool(v)).unwrap_or(regional);
                base_expiration = parse_expiration(sa_ann("token-expiration")).unwrap_or(base_expiration);
            }
            // Upstream quirk Q6, reproduced: without a cached SA, Pod Identity takes these two
            // settings from the ConfigMap entry with the exact namespace (never `*`).
            (None, Some(c)) => {
                regional = c.use_regional_sts;
                base_expiration = configured_expiration(c);
            }
            (None, None) => {}
        }
        if sources.pod_identity.contains(&(namespace.to_owned(), sa.to_owned())) {
            let mut expiration = pod_expiration.unwrap_or(base_expiration);
            // Spread refreshes of pods created together (Pod Identity only, as upstream).
            if expiration == 86_400 {
                expiration = 79_200 + jitter().rem_euclid(7_201);
            }
            return Some(Resolved {
                mode: Mode::PodIdentity,
                audience: self.pi_audience.clone(),
                regional,
                expiration,
            });
        }
        if let Some(role_arn) = sa_ann("role-arn").filter(|r| !r.is_empty()) {
            let role_arn = match &self.compose_role_arn {
                Some((account, region)) if !role_arn.starts_with("arn:") => {
                    format!("arn:{}:iam::{account}:role/{role_arn}", partition_of_region(region))
                }
                _ => role_arn.clone(),
            };
            return Some(Resolved {
                mode: Mode::Irsa { role_arn },
                audience: sa_ann("audience").cloned().unwrap_or_else(|| self.audience.clone()),
                regional,
                expiration: pod_expiration.unwrap_or(base_expiration),
            });
        }
        // An annotated SA wins; otherwise the ConfigMap, exact namespace first, then a literal `*`.
        let c = exact.or_else(|| sources.configured.get(&format!("*/{sa}")))?;
        Some(Resolved {
            mode: Mode::Irsa { role_arn: c.role_arn.clone() },
            // Upstream leaves the audience empty here, giving a token STS rejects (Q4); fixed.
            audience: c.audience.clone().filter(|a| !a.is_empty()).unwrap_or_else(|| self.audience.clone()),
            regional: c.use_regional_sts,
            expiration: pod_expiration.unwrap_or_else(|| configured_expiration(c)),
        })
    }

    /// The JSON patch for a pod being created in `namespace`, or `None` when it is not mutated.
    /// `jitter` supplies randomness for Pod Identity token lifetimes.
    pub fn mutate(
        &self,
        pod: &Value,
        namespace: &str,
        sources: &IdentitySources,
        jitter: &mut dyn FnMut() -> i64,
    ) -> Option<Vec<Value>> {
        let r = self.resolve(pod, namespace, sources, jitter)?;
        let pi = r.mode == Mode::PodIdentity;
        let (volume_name, mount_path, token_path) = if pi {
            (&self.pi_volume_name, &self.pi_mount_path, &self.pi_token_path)
        } else {
            (&self.volume_name, &self.mount_path, &self.token_path)
        };
        let node_selector = pod.pointer("/spec/nodeSelector");
        let windows = ["kubernetes.io/os", "beta.kubernetes.io/os"]
            .iter()
            .any(|k| node_selector.and_then(|n| n.get(*k)).and_then(Value::as_str) == Some("windows"));
        let token = token_file(mount_path, token_path, windows);
        // Skip list: one CSV record, no trimming (upstream quirk: "a, b" skips "a" and " b").
        let skip: Vec<String> = pod
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(format!("{}/skip-containers", self.annotation_prefix)))
            .and_then(Value::as_str)
            .map(|s| s.split(',').map(str::to_owned).collect())
            .unwrap_or_default();

        let inject = |c: &Value| -> Value {
            let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
            if skip.iter().any(|s| s == name) {
                return c.clone();
            }
            let names = env_names(c);
            let has = |n: &str| names.contains(&n);
            let wi = has("AWS_ROLE_ARN") || has("AWS_WEB_IDENTITY_TOKEN_FILE");
            let cc =
                has("AWS_CONTAINER_CREDENTIALS_FULL_URI") || has("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
            let region_set = has("AWS_REGION") || has("AWS_DEFAULT_REGION");
            let sts_set = has("AWS_STS_REGIONAL_ENDPOINTS");
            let own_set = if pi { cc } else { wi };
            if own_set && region_set && sts_set {
                return c.clone();
            }
            let mut out = c.clone();
            let mut env: Vec<Value> = c.get("env").and_then(Value::as_array).cloned().unwrap_or_default();
            let mut push = |n: &str, v: &str| env.push(json!({"name": n, "value": v}));
            if !sts_set && r.regional {
                push("AWS_STS_REGIONAL_ENDPOINTS", "regional");
            }
            if let (false, Some(region)) = (region_set, self.region.as_deref().filter(|r| !r.is_empty())) {
                push("AWS_DEFAULT_REGION", region);
                push("AWS_REGION", region);
            }
            match &r.mode {
                Mode::PodIdentity if !cc => {
                    push("AWS_CONTAINER_CREDENTIALS_FULL_URI", &self.pi_full_uri);
                    push("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token);
                }
                Mode::Irsa { role_arn } if !wi => {
                    push("AWS_ROLE_ARN", role_arn);
                    push("AWS_WEB_IDENTITY_TOKEN_FILE", &token);
                }
                _ => {}
            }
            out["env"] = Value::Array(env);
            let mounts = c.get("volumeMounts").and_then(Value::as_array).cloned().unwrap_or_default();
            if !mounts.iter().any(|m| m.get("name").and_then(Value::as_str) == Some(volume_name)) {
                let mut mounts = mounts;
                mounts.push(json!({"name": volume_name, "readOnly": true, "mountPath": mount_path}));
                out["volumeMounts"] = Value::Array(mounts);
            }
            out
        };

        let mut ops = Vec::new();
        if pi {
            match pod.pointer("/metadata/labels") {
                Some(Value::Object(_)) => {
                    ops.push(json!({"op": "add", "path": "/metadata/labels/eks.amazonaws.com~1pod-identity", "value": "enabled"}))
                }
                _ => ops.push(json!({"op": "add", "path": "/metadata/labels", "value": {PI_LABEL: "enabled"}})),
            }
        }
        let volumes = pod.pointer("/spec/volumes").and_then(Value::as_array);
        if !volumes.into_iter().flatten().any(|v| v.get("name").and_then(Value::as_str) == Some(volume_name))
        {
            let volume = json!({"name": volume_name, "projected": {"sources": [{"serviceAccountToken": {
                "audience": r.audience, "expirationSeconds": r.expiration, "path": token_path}}]}});
            match volumes {
                Some(_) => ops.push(json!({"op": "add", "path": "/spec/volumes/0", "value": volume})),
                None => ops.push(json!({"op": "add", "path": "/spec/volumes", "value": [volume]})),
            }
        }
        let containers: Vec<Value> = pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(&inject)
            .collect();
        ops.push(json!({"op": "add", "path": "/spec/containers", "value": containers}));
        if let Some(init) =
            pod.pointer("/spec/initContainers").and_then(Value::as_array).filter(|i| !i.is_empty())
        {
            ops.push(json!({"op": "add", "path": "/spec/initContainers", "value": init.iter().map(&inject).collect::<Vec<_>>()}));
        }
        Some(ops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "arn:aws:iam::111122223333:role/s3-reader";
    const IRSA_TOKEN: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token";

    fn sources(annotations: &[(&str, &str)]) -> IdentitySources {
        let a = annotations.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        IdentitySources {
            service_accounts: BTreeMap::from([("default/app".into(), a)]),
            pod_identity: HashSet::new(),
            configured: BTreeMap::new(),
            associations: Default::default(),
        }
    }

    fn pod(spec: Value) -> Value {
        let mut p = json!({"metadata": {"name": "p"}, "spec": {"serviceAccountName": "app", "containers": [{"name": "app", "image": "img"}]}});
        for (k, v) in spec.as_object().unwrap() {
            p["spec"][k] = v.clone();
        }
        p
    }

    fn env_of(ops: &[Value], c: usize) -> Vec<String> {
        let containers = ops.iter().find(|o| o["path"] == "/spec/containers").unwrap();
        containers["value"][c]["env"]
            .as_array()
            .map(|e| {
                e.iter()
                    .map(|v| format!("{}={}", v["name"].as_str().unwrap(), v["value"].as_str().unwrap()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn zero() -> impl FnMut() -> i64 {
        || 0
    }

    #[test]
    fn w01_w02_w03_basic_irsa() {
        let cfg = InjectConfig::default();
        let ops = cfg
            .mutate(
                &pod(json!({})),
                "default",
                &sources(&[("eks.amazonaws.com/role-arn", ROLE)]),
                &mut zero(),
            )
            .unwrap();
        assert_eq!(ops[0]["path"], "/spec/volumes");
        assert_eq!(
            ops[0]["value"][0],
            json!({"name": "aws-iam-token", "projected": {"sources": [{"serviceAccountToken": {"audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"}}]}})
        );
        assert_eq!(
            env_of(&ops, 0),
            [format!("AWS_ROLE_ARN={ROLE}"), format!("AWS_WEB_IDENTITY_TOKEN_FILE={IRSA_TOKEN}")]
        );
        assert_eq!(
            ops[1]["value"][0]["volumeMounts"],
            json!([{"name": "aws-iam-token", "readOnly": true, "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount"}])
        );
        assert_eq!(ops[1]["value"][0]["image"], "img");
        assert!(cfg.mutate(&pod(json!({})), "default", &sources(&[]), &mut zero()).is_none());
        let ops = cfg
            .mutate(
                &pod(json!({"volumes": [{"name": "my-volume"}]})),
                "default",
                &sources(&[("eks.amazonaws.com/role-arn", ROLE)]),
                &mut zero(),
            )
            .unwrap();
        assert_eq!(ops[0]["path"], "/spec/volumes/0");
    }

    #[test]
    fn w04_to_w07_region_and_regional_sts() {
        let cfg = InjectConfig { region: Some("us-west-2".into()), ..Default::default() };
        let s = sources(&[("eks.amazonaws.com/role-arn", ROLE)]);
        let ops = cfg.mutate(&pod(json!({})), "default", &s, &mut zero()).unwrap();
        assert_eq!(env_of(&ops, 0)[..2], ["AWS_DEFAULT_REGION=us-west-2", "AWS_REGION=us-west-2"]);
        let p =
            pod(json!({"containers": [{"name": "app", "env": [{"name": "AWS_REGION", "value": "paris"}]}]}));
        assert_eq!(
            env_of(&cfg.mutate(&p, "default", &s, &mut zero()).unwrap(), 0)[..2],
            ["AWS_REGION=paris".to_owned(), format!("AWS_ROLE_ARN={ROLE}")]
        );
        let regional = sources(&[
            ("eks.amazonaws.com/role-arn", ROLE),
            ("eks.amazonaws.com/sts-regional-endpoints", "true"),
        ]);
        assert_eq!(
            env_of(&cfg.mutate(&pod(json!({})), "default", &regional, &mut zero()).unwrap(), 0)[0],
            "AWS_STS_REGIONAL_ENDPOINTS=regional"
        );
        let cfg_true = InjectConfig { sts_regional: true, ..cfg };
        let off = sources(&[
            ("eks.amazonaws.com/role-arn", ROLE),
            ("eks.amazonaws.com/sts-regional-endpoints", "false"),
        ]);
        assert!(
            !env_of(&cfg_true.mutate(&pod(json!({})), "default", &off, &mut zero()).unwrap(), 0)
                .iter()
                .any(|e| e.starts_with("AWS_STS"))
        );
    }

    #[test]
    fn w08_expiration_precedence_and_clamping() {
        let cfg = InjectConfig::default();
        let s =
            sources(&[("eks.amazonaws.com/role-arn", ROLE), ("eks.amazonaws.com/token-expiration", "3600")]);
        let exp = |annotation: Option<&str>| {
            let mut p = pod(json!({}));
            if let Some(a) = annotation {
                p["metadata"]["annotations"] = json!({"eks.amazonaws.com/token-expiration": a});
            }
            cfg.mutate(&p, "default", &s, &mut zero()).unwrap()[0]["value"][0]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"].as_i64().unwrap()
        };
        assert_eq!([exp(None), exp(Some("7200")), exp(Some("0")), exp(Some("abc"))], [3600, 7200, 600, 3600]);
    }

    #[test]
    fn w09_to_w14_containers_mounts_and_windows() {
        let cfg = InjectConfig { region: Some("us-west-2".into()), ..Default::default() };
        let s = sources(&[("eks.amazonaws.com/role-arn", ROLE)]);
        let mut p = pod(
            json!({"containers": [{"name": "sidecar"}, {"name": "app"}], "initContainers": [{"name": "init"}, {"name": "side", "restartPolicy": "Always"}]}),
        );
        p["metadata"]["annotations"] = json!({"eks.amazonaws.com/skip-containers": "sidecar"});
        let ops = cfg.mutate(&p, "default", &s, &mut zero()).unwrap();
        assert_eq!(ops[1]["value"][0], json!({"name": "sidecar"}));
        assert!(!env_of(&ops, 1).is_empty());
        assert_eq!(ops[2]["path"], "/spec/initContainers");
        assert_eq!(ops[2]["value"][1]["restartPolicy"], "Always");
        assert!(ops[2]["value"][1]["env"].as_array().unwrap().iter().any(|e| e["name"] == "AWS_ROLE_ARN"));
        let partial = pod(
            json!({"containers": [{"name": "app", "env": [{"name": "AWS_ROLE_ARN", "value": "already-defined"}]}]}),
        );
        assert_eq!(
            env_of(&cfg.mutate(&partial, "default", &s, &mut zero()).unwrap(), 0),
            ["AWS_ROLE_ARN=already-defined", "AWS_DEFAULT_REGION=us-west-2", "AWS_REGION=us-west-2"]
        );
        let done = pod(
            json!({"containers": [{"name": "app", "env": [{"name": "AWS_REGION", "value": "x"}, {"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"}, {"name": "AWS_ROLE_ARN", "value": "x"}]}]}),
        );
        let ops = cfg.mutate(&done, "default", &s, &mut zero()).unwrap();
        assert!(ops[1]["value"][0].get("volumeMounts").is_none(), "early exit leaves the container as is");
        let existing = pod(
            json!({"volumes": [{"name": "aws-iam-token", "hostPath": {"path": "/x"}}], "containers": [{"name": "app", "volumeMounts": [{"name": "aws-iam-token", "mountPath": "/other"}]}]}),
        );
        let ops = cfg.mutate(&existing, "default", &s, &mut zero()).unwrap();
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0]["value"][0]["volumeMounts"][0]["mountPath"], "/other");
        let win = pod(json!({"nodeSelector": {"kubernetes.io/os": "windows"}}));
        let ops = cfg.mutate(&win, "default", &s, &mut zero()).unwrap();
        assert!(
            env_of(&ops, 0).contains(
                &r"AWS_WEB_IDENTITY_TOKEN_FILE=C:\var\run\secrets\eks.amazonaws.com\serviceaccount\token"
                    .to_owned()
            )
        );
        assert_eq!(
            ops[1]["value"][0]["volumeMounts"][0]["mountPath"],
            "/var/run/secrets/eks.amazonaws.com/serviceaccount"
        );
        // W28: the skip list is not trimmed.
        let mut ws = pod(json!({"containers": [{"name": "a"}, {"name": "b"}]}));
        ws["metadata"]["annotations"] = json!({"eks.amazonaws.com/skip-containers": "a, b"});
        let ops = cfg.mutate(&ws, "default", &s, &mut zero()).unwrap();
        assert_eq!(ops[1]["value"][0], json!({"name": "a"}));
        assert!(ops[1]["value"][1].get("env").is_some());
    }

    #[test]
    fn w15_to_w21_audience_and_pod_identity() {
        let cfg = InjectConfig::default();
        let aud = sources(&[("eks.amazonaws.com/role-arn", ROLE), ("eks.amazonaws.com/audience", "my-aud")]);
        assert_eq!(
            cfg.mutate(&pod(json!({})), "default", &aud, &mut zero()).unwrap()[0]["value"][0]["projected"]["sources"]
                [0]["serviceAccountToken"]["audience"],
            "my-aud"
        );
        let mut s = sources(&[]);
        s.pod_identity.insert(("default".into(), "app".into()));
        let ops = cfg.mutate(&pod(json!({})), "default", &s, &mut zero()).unwrap();
        assert_eq!(
            ops[0],
            json!({"op": "add", "path": "/metadata/labels", "value": {"eks.amazonaws.com/pod-identity": "enabled"}})
        );
        assert_eq!(
            ops[1]["value"][0]["projected"]["sources"][0]["serviceAccountToken"],
            json!({"audience": "pods.eks.amazonaws.com", "expirationSeconds": 79200, "path": "eks-pod-identity-token"})
        );
        assert_eq!(
            env_of(&ops, 0),
            [
                "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://169.254.170.23/v1/credentials",
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"
            ]
        );
        let mut n = 12_345;
        let exp = cfg
            .mutate(&pod(json!({})), "default", &s, &mut || {
                n += 1;
                n
            })
            .unwrap()[1]["value"][0]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"]
            .as_i64()
            .unwrap();
        assert!((79_200..=86_400).contains(&exp));
        let mut labelled = pod(json!({}));
        labelled["metadata"]["labels"] = json!({"app": "x"});
        assert_eq!(
            cfg.mutate(&labelled, "default", &s, &mut zero()).unwrap()[0]["path"],
            "/metadata/labels/eks.amazonaws.com~1pod-identity"
        );
        // W18: Pod Identity wins over an IRSA annotation; SA settings still apply, 10000 is not jittered.
        let mut both = sources(&[
            ("eks.amazonaws.com/role-arn", ROLE),
            ("eks.amazonaws.com/sts-regional-endpoints", "true"),
            ("eks.amazonaws.com/token-expiration", "10000"),
        ]);
        both.pod_identity.insert(("default".into(), "app".into()));
        let ops = cfg.mutate(&pod(json!({})), "default", &both, &mut zero()).unwrap();
        assert_eq!(env_of(&ops, 0)[0], "AWS_STS_REGIONAL_ENDPOINTS=regional");
        assert!(!env_of(&ops, 0).iter().any(|e| e.starts_with("AWS_ROLE_ARN")));
        assert_eq!(
            ops[1]["value"][0]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            10000
        );
        assert!(
            cfg.mutate(&pod(json!({})), "other", &s, &mut zero()).is_none(),
            "associations match namespace exactly"
        );
    }

    #[test]
    fn w22_w23_configmap_wildcard_and_precedence() {
        let cfg = InjectConfig::default();
        let cm = |role: &str| ConfiguredRole { role_arn: role.into(), ..ConfiguredRole::default() };
        let mut s = IdentitySources::default();
        s.configured.insert("*/app".into(), cm("arn:aws:iam::111122223333:role/r"));
        let ops = cfg.mutate(&pod(json!({})), "anything", &s, &mut zero()).unwrap();
        assert_eq!(env_of(&ops, 0)[0], "AWS_ROLE_ARN=arn:aws:iam::111122223333:role/r");
        // Q4 fixed: no Audience in the entry → the flag audience, not an audience-less token.
        assert_eq!(
            ops[0]["value"][0]["projected"]["sources"][0]["serviceAccountToken"]["audience"],
            "sts.amazonaws.com"
        );
        assert_eq!(
            ops[0]["value"][0]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            86400
        );
        // `test-*` is not a glob.
        let mut glob = IdentitySources::default();
        glob.configured.insert("test-*/app".into(), cm("arn:aws:iam::111122223333:role/r"));
        assert!(cfg.mutate(&pod(json!({})), "test-a", &glob, &mut zero()).is_none());
        // W23: an annotated service account beats the ConfigMap.
        let mut both = sources(&[("eks.amazonaws.com/role-arn", ROLE)]);
        both.configured.insert("default/app".into(), cm("arn:aws:iam::111122223333:role/cm"));
        let ops = cfg.mutate(&pod(json!({})), "default", &both, &mut zero()).unwrap();
        assert_eq!(env_of(&ops, 0)[0], format!("AWS_ROLE_ARN={ROLE}"));
        // An unannotated (cached) SA still falls back to the ConfigMap.
        let mut plain = sources(&[]);
        plain.configured.insert("default/app".into(), cm("arn:aws:iam::111122223333:role/cm"));
        let ops = cfg.mutate(&pod(json!({})), "default", &plain, &mut zero()).unwrap();
        assert_eq!(env_of(&ops, 0)[0], "AWS_ROLE_ARN=arn:aws:iam::111122223333:role/cm");
    }

    #[test]
    fn w29_compose_role_arn() {
        let config = InjectConfig {
            compose_role_arn: Some(("111122223333".into(), "cn-north-1".into())),
            ..InjectConfig::default()
        };
        let pod =
            json!({"metadata": {}, "spec": {"serviceAccountName": "app", "containers": [{"name": "c"}]}});
        let ops = config
            .mutate(&pod, "default", &sources(&[("eks.amazonaws.com/role-arn", "team/s3-reader")]), &mut || 0)
            .unwrap();
        let env = ops.iter().find_map(|op| op["value"][0].get("env").cloned()).unwrap_or_default();
        let text = serde_json::to_string(&ops).unwrap();
        assert!(text.contains("arn:aws-cn:iam::111122223333:role/team/s3-reader"), "{text} {env}");
        let full = config
            .mutate(&pod, "default", &sources(&[("eks.amazonaws.com/role-arn", ROLE)]), &mut || 0)
            .unwrap();
        assert!(serde_json::to_string(&full).unwrap().contains(ROLE), "full ARNs are kept");
        assert_eq!(partition_of_region("us-isob-east-1"), "aws-iso-b");
        assert_eq!(partition_of_region("eu-west-1"), "aws");
    }

    #[test]
    fn w30_custom_annotation_prefix_keeps_the_label_key() {
        let config = InjectConfig { annotation_prefix: "example.com".into(), ..InjectConfig::default() };
        let mut s = sources(&[]);
        s.pod_identity.insert(("default".into(), "app".into()));
        let pod = json!({"metadata": {"labels": {}}, "spec": {"serviceAccountName": "app", "containers": [{"name": "c"}]}});
        let ops = config.mutate(&pod, "default", &s, &mut || 0).unwrap();
        assert_eq!(
            ops[0],
            json!({"op": "add", "path": "/metadata/labels/eks.amazonaws.com~1pod-identity", "value": "enabled"})
        );
    }
}
