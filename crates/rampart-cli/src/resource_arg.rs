//! `VERB RESOURCE` arguments read the way kubectl reads them: short names and singulars
//! (`po`, `deploy`, `pod`), `RESOURCE.GROUP` (`deployments.apps`), `TYPE/NAME`
//! (`pods/web`), plus a known subresource after the slash (`pods/log`, `deployments.apps/scale`).
//! An unknown verb or resource is an error naming what was not understood, never a silent "no".

/// What a resource argument names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub resource: String,
    pub group: String,
    pub subresource: String,
    /// From `TYPE/NAME`.
    pub name: Option<String>,
}

/// (short names, plural, group, subresources) of the built-in API, as `kubectl api-resources`
/// lists them.
const BUILT_IN: &[(&[&str], &str, &str, &[&str])] = &[
    (
        &["po"],
        "pods",
        "",
        &[
            "log",
            "exec",
            "attach",
            "portforward",
            "proxy",
            "status",
            "eviction",
            "binding",
            "ephemeralcontainers",
            "resize",
        ],
    ),
    (&["svc"], "services", "", &["proxy", "status"]),
    (&["cm"], "configmaps", "", &[]),
    (&[], "secrets", "", &[]),
    (&["sa"], "serviceaccounts", "", &["token"]),
    (&["ns"], "namespaces", "", &["status", "finalize"]),
    // proxy and status in the API; the rest are the kubelet API's authorization subresources.
    (
        &["no"],
        "nodes",
        "",
        &["proxy", "status", "metrics", "stats", "log", "spec", "configz", "healthz", "pods", "checkpoint"],
    ),
    (&["pv"], "persistentvolumes", "", &["status"]),
    (&["pvc"], "persistentvolumeclaims", "", &["status"]),
    (&["ev"], "events", "", &[]),
    (&["ep"], "endpoints", "", &[]),
    (&[], "bindings", "", &[]),
    (&["cs"], "componentstatuses", "", &[]),
    (&["rc"], "replicationcontrollers", "", &["scale", "status"]),
    (&["limits"], "limitranges", "", &[]),
    (&["quota"], "resourcequotas", "", &["status"]),
    (&[], "podtemplates", "", &[]),
    (&["deploy"], "deployments", "apps", &["scale", "status"]),
    (&["rs"], "replicasets", "apps", &["scale", "status"]),
    (&["sts"], "statefulsets", "apps", &["scale", "status"]),
    (&["ds"], "daemonsets", "apps", &["status"]),
    (&[], "controllerrevisions", "apps", &[]),
    (&[], "jobs", "batch", &["status"]),
    (&["cj"], "cronjobs", "batch", &["status"]),
    (&["hpa"], "horizontalpodautoscalers", "autoscaling", &["status"]),
    (&["pdb"], "poddisruptionbudgets", "policy", &["status"]),
    (&[], "roles", "rbac.authorization.k8s.io", &[]),
    (&[], "rolebindings", "rbac.authorization.k8s.io", &[]),
    (&[], "clusterroles", "rbac.authorization.k8s.io", &[]),
    (&[], "clusterrolebindings", "rbac.authorization.k8s.io", &[]),
    (&["netpol"], "networkpolicies", "networking.k8s.io", &[]),
    (&["ing"], "ingresses", "networking.k8s.io", &["status"]),
    (&[], "ingressclasses", "networking.k8s.io", &[]),
    (&["sc"], "storageclasses", "storage.k8s.io", &[]),
    (&[], "csidrivers", "storage.k8s.io", &[]),
    (&[], "csinodes", "storage.k8s.io", &[]),
    (&[], "volumeattachments", "storage.k8s.io", &["status"]),
    (&[], "leases", "coordination.k8s.io", &[]),
    (&["crd", "crds"], "customresourcedefinitions", "apiextensions.k8s.io", &["status"]),
    (&[], "validatingwebhookconfigurations", "admissionregistration.k8s.io", &[]),
    (&[], "mutatingwebhookconfigurations", "admissionregistration.k8s.io", &[]),
    (&[], "validatingadmissionpolicies", "admissionregistration.k8s.io", &["status"]),
    (&[], "validatingadmissionpolicybindings", "admissionregistration.k8s.io", &[]),
    // nodeclient and selfnodeclient: the CSR approver's authorization subresources.
    (
        &["csr"],
        "certificatesigningrequests",
        "certificates.k8s.io",
        &["approval", "status", "nodeclient", "selfnodeclient"],
    ),
    (&[], "tokenreviews", "authentication.k8s.io", &[]),
    (&[], "selfsubjectreviews", "authentication.k8s.io", &[]),
    (&[], "subjectaccessreviews", "authorization.k8s.io", &[]),
    (&[], "selfsubjectaccessreviews", "authorization.k8s.io", &[]),
    (&[], "selfsubjectrulesreviews", "authorization.k8s.io", &[]),
    (&[], "localsubjectaccessreviews", "authorization.k8s.io", &[]),
    (&[], "endpointslices", "discovery.k8s.io", &[]),
    (&["pc"], "priorityclasses", "scheduling.k8s.io", &[]),
    (&[], "runtimeclasses", "node.k8s.io", &[]),
    (&[], "flowschemas", "flowcontrol.apiserver.k8s.io", &["status"]),
    (&[], "prioritylevelconfigurations", "flowcontrol.apiserver.k8s.io", &["status"]),
    (&[], "apiservices", "apiregistration.k8s.io", &["status"]),
    (&[], "policies", "cedar.k8s.aws", &["status"]),
    (&[], "podidentityassociations", "rampart.dev", &[]),
];

/// Verbs the apiserver authorizes (`*` matches any).
const VERBS: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "impersonate",
    "bind",
    "escalate",
    "approve",
    "sign",
    "use",
    "proxy",
    "attest",
    "*",
];

/// The singular kubectl also accepts: `pods` → `pod`, `ingresses` → `ingress`, `policies` → `policy`.
fn singular(plural: &str) -> String {
    if let Some(stem) = plural.strip_suffix("ies") {
        format!("{stem}y")
    } else if plural.ends_with("sses") || plural.ends_with("ches") {
        plural.trim_end_matches("es").to_owned()
    } else {
        plural.trim_end_matches('s').to_owned()
    }
}

type Entry = (&'static [&'static str], &'static str, &'static str, &'static [&'static str]);

fn lookup(alias: &str, group: Option<&str>) -> Option<&'static Entry> {
    let alias = alias.to_ascii_lowercase();
    BUILT_IN.iter().find(|(short, plural, g, _)| {
        (short.contains(&alias.as_str()) || *plural == alias || singular(plural) == alias)
            && group.is_none_or(|want| want == *g)
    })
}

/// Check a verb.
pub fn verb(verb: &str) -> Result<(), String> {
    if VERBS.contains(&verb) {
        Ok(())
    } else {
        Err(format!("unknown verb {verb:?}: expected one of {}", VERBS.join(", ")))
    }
}

/// Resolve a resource argument (not a non-resource path).
pub fn resolve(arg: &str) -> Result<Target, String> {
    let (head, tail) = match arg.split_once('/') {
        Some((h, t)) => (h, Some(t)),
        None => (arg, None),
    };
    if head == "*" {
        return Ok(Target {
            resource: "*".into(),
            group: "*".into(),
            subresource: tail.unwrap_or_default().into(),
            name: None,
        });
    }
    let (alias, group) = match head.split_once('.') {
        Some((a, g)) => (a, Some(g)),
        None => (head, None),
    };
    // The core group has no name; `pods.` or `pods.core` is not how kubectl spells it either.
    let (resource, group, subresources): (String, String, &[&str]) = match lookup(alias, group) {
        Some((_, plural, g, subs)) => ((*plural).into(), (*g).into(), subs),
        None => match group {
            // A custom resource: its plural and group, as the apiserver names it.
            Some(g) if !g.is_empty() => (alias.to_ascii_lowercase(), g.to_owned(), &["status", "scale"]),
            _ => {
                return Err(format!(
                    "unknown resource {head:?}: use a built-in resource (pods, deploy, \
                     deployments.apps…) or a custom resource's plural with its group (widgets.example.com)"
                ));
            }
        },
    };
    // `finalizers` is RBAC's subresource of every resource (setting blockOwnerDeletion in an
    // owner reference needs update on it).
    let known = |t: &str| subresources.contains(&t) || t == "finalizers";
    let (subresource, name) = match tail {
        None | Some("") => (String::new(), None),
        Some(t) if known(t) => (t.to_owned(), None),
        Some(t) => match t.split_once('/') {
            // TYPE/NAME/SUBRESOURCE
            Some((n, s)) if known(s) => (s.to_owned(), Some(n.to_owned())),
            _ => (String::new(), Some(t.to_owned())),
        },
    };
    Ok(Target { resource, group, subresource, name })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(resource: &str, group: &str, subresource: &str, name: Option<&str>) -> Target {
        Target {
            resource: resource.into(),
            group: group.into(),
            subresource: subresource.into(),
            name: name.map(Into::into),
        }
    }

    #[test]
    fn reads_resources_as_kubectl_does() {
        for arg in ["deploy", "deployment", "deployments", "deployments.apps", "Deployments"] {
            assert_eq!(resolve(arg).unwrap(), t("deployments", "apps", "", None), "{arg}");
        }
        assert_eq!(resolve("po").unwrap(), t("pods", "", "", None));
        assert_eq!(resolve("pods/web").unwrap(), t("pods", "", "", Some("web")));
        assert_eq!(resolve("pods/log").unwrap(), t("pods", "", "log", None));
        assert_eq!(resolve("pods/web/exec").unwrap(), t("pods", "", "exec", Some("web")));
        assert_eq!(resolve("deployments.apps/scale").unwrap(), t("deployments", "apps", "scale", None));
        assert_eq!(resolve("ingress").unwrap(), t("ingresses", "networking.k8s.io", "", None));
        assert_eq!(resolve("policy.cedar.k8s.aws").unwrap(), t("policies", "cedar.k8s.aws", "", None));
        assert_eq!(
            resolve("widgets.example.com/status").unwrap(),
            t("widgets", "example.com", "status", None)
        );
        assert_eq!(resolve("serviceaccounts/token").unwrap(), t("serviceaccounts", "", "token", None));
    }

    #[test]
    fn unknown_verbs_and_resources_are_errors() {
        assert!(resolve("pids").unwrap_err().contains("unknown resource \"pids\""));
        assert!(verb("gte").unwrap_err().contains("unknown verb \"gte\""));
        verb("impersonate").unwrap();
        // A built-in name with the wrong group is not that resource.
        assert!(
            resolve("deployments.batch").is_ok_and(|t| t.group == "batch" && t.resource == "deployments")
        );
    }
}
