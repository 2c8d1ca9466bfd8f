//! The kube-apiserver authorizer chain that `rampart kube-config` wires, as data.
//!
//! The printed configuration (CEL match conditions) and `rampart replay`'s model of the chain
//! both read these, so what the apiserver does and what a replay assumes it does cannot drift.
//!
//! The chain: the apiserver allows `system:masters` before any authorizer runs; then the Node
//! authorizer; then Rampart's webhook, except for the users its match conditions send past it;
//! then RBAC.

/// The group the apiserver allows before consulting any authorizer.
pub const PRIVILEGED_GROUP: &str = "system:masters";

/// The kubelets' group, decided by the Node authorizer (and NodeRestriction at admission).
pub const NODES_GROUP: &str = "system:nodes";

/// Control-plane users the webhook never sees: the bootstrap RBAC roles grant them exactly
/// what they need, and a policy mistake must not stop the scheduler or the controllers.
pub const CONTROL_PLANE_USERS: [&str; 4] =
    ["system:kube-scheduler", "system:kube-controller-manager", "system:kube-proxy", "system:apiserver"];

/// Controllers running with `--use-service-account-credentials` authenticate as kube-system
/// service accounts; like the control plane, they skip the webhook.
pub const KUBE_SYSTEM_SERVICE_ACCOUNTS: &str = "system:serviceaccounts:kube-system";

/// Rampart's own identity when it reads the cluster, unless configured otherwise.
pub const DEFAULT_SELF_IDENTITY: &str = "system:serviceaccount:rampart-system:rampart";

/// Which authorizer of the chain decides a request from this user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `system:masters`: allowed by the apiserver itself.
    Privileged,
    /// A kubelet: the Node authorizer, then RBAC.
    Node,
    /// The webhook's match conditions skip this user: RBAC alone.
    RbacOnly,
    /// Rampart's webhook, then RBAC for what it has no opinion on.
    Webhook,
}

/// Route a request's user through the chain (`self_identity`: Rampart's own user).
pub fn route(user: &str, groups: &[String], self_identity: &str) -> Route {
    let in_group = |g: &str| groups.iter().any(|have| have == g);
    if in_group(PRIVILEGED_GROUP) {
        Route::Privileged
    } else if in_group(NODES_GROUP) {
        Route::Node
    } else if user == self_identity
        || CONTROL_PLANE_USERS.contains(&user)
        || in_group(KUBE_SYSTEM_SERVICE_ACCOUNTS)
    {
        Route::RbacOnly
    } else {
        Route::Webhook
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(g: &[&str]) -> Vec<String> {
        g.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn routes_like_the_printed_match_conditions() {
        let me = DEFAULT_SELF_IDENTITY;
        assert_eq!(route("admin", &groups(&["system:masters"]), me), Route::Privileged);
        assert_eq!(route("system:node:n1", &groups(&["system:nodes"]), me), Route::Node);
        assert_eq!(route("system:kube-scheduler", &[], me), Route::RbacOnly);
        assert_eq!(route(me, &groups(&["system:serviceaccounts"]), me), Route::RbacOnly);
        let controller = "system:serviceaccount:kube-system:replicaset-controller";
        assert_eq!(route(controller, &groups(&["system:serviceaccounts:kube-system"]), me), Route::RbacOnly);
        assert_eq!(route("system:anonymous", &groups(&["system:unauthenticated"]), me), Route::Webhook);
        assert_eq!(route("alice", &groups(&["devs"]), me), Route::Webhook);
    }
}
