//! Status conditions of `Policy` objects, written by one replica at a time.
//!
//! Every replica watches and decides on its own (decisions stay stateless); only the status
//! writer is elected, through a `coordination.k8s.io` Lease, so replicas never fight over
//! `status.conditions`. A Lease not renewed within its duration is taken over.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject, ObjectMeta, Patch, PatchParams, PostParams};
use tokio::sync::watch;

use crate::KubeError;
use crate::policies::{PolicyStatus, policy_resource};

/// How long a Lease stays valid without renewal.
const LEASE_SECONDS: i32 = 15;
/// How often the holder renews and followers retry.
const RENEW_EVERY: Duration = Duration::from_secs(5);

/// A Lease-based election for one role.
pub struct Election {
    api: Api<Lease>,
    name: String,
    identity: String,
}

impl Election {
    pub fn new(client: kube::Client, namespace: &str, name: &str, identity: &str) -> Self {
        Election { api: Api::namespaced(client, namespace), name: name.into(), identity: identity.into() }
    }

    /// Acquire or renew the Lease; `true` while this replica holds it.
    pub async fn try_lead(&self) -> Result<bool, KubeError> {
        let now = MicroTime(Timestamp::now());
        let needs = "get, create and update on leases in Rampart's namespace";
        let current =
            self.api.get_opt(&self.name).await.map_err(KubeError::api("read the status Lease", needs))?;
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(self.name.clone()), ..Default::default() },
                spec: Some(self.spec(now.clone(), now, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false), // another replica won the race
                Err(e) => Err(KubeError::api("create the status Lease", needs)(e)),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let renewed = spec.renew_time.as_ref().map(|t| t.0).unwrap_or(Timestamp::UNIX_EPOCH);
        let duration = i64::from(spec.lease_duration_seconds.unwrap_or(LEASE_SECONDS));
        let expired = now.0.as_second() - renewed.as_second() > duration;
        if holder != self.identity && !expired && !holder.is_empty() {
            return Ok(false);
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(holder != self.identity);
        let acquired =
            if holder == self.identity { spec.acquire_time.unwrap_or(now.clone()) } else { now.clone() };
        lease.spec = Some(self.spec(acquired, now, transitions));
        // The resourceVersion read above makes this a compare-and-swap: a concurrent taker
        // gets 409 and stays a follower.
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(KubeError::api("renew the status Lease", needs)(e)),
        }
    }

    fn spec(&self, acquired: MicroTime, renewed: MicroTime, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(LEASE_SECONDS),
            acquire_time: Some(acquired),
            renew_time: Some(renewed),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }
}

/// The `status` of a Policy for `status`.
pub fn status_body(status: &PolicyStatus) -> serde_json::Value {
    serde_json::json!({"status": {"conditions": [{
        "type": "Ready",
        "status": if status.ready { "True" } else { "False" },
        "reason": if status.ready { "Valid" } else { "Invalid" },
        "message": status.message,
        "observedGeneration": status.generation,
        "lastTransitionTime": Timestamp::now().to_string(),
    }]}})
}

/// Write the statuses published on `statuses` while this replica leads `election`.
pub async fn run_writer(
    client: kube::Client,
    election: Election,
    mut statuses: watch::Receiver<BTreeMap<String, PolicyStatus>>,
) {
    let api: Api<DynamicObject> = Api::all_with(client, &policy_resource());
    let mut written: BTreeMap<String, PolicyStatus> = BTreeMap::new();
    let mut leading = false;
    loop {
        match election.try_lead().await {
            Ok(now_leading) => {
                if now_leading && !leading {
                    tracing::info!("this replica writes Policy status");
                    written.clear(); // a new leader rewrites everything once
                }
                leading = now_leading;
            }
            Err(e) => {
                tracing::warn!("Policy status election: {e}");
                leading = false;
            }
        }
        if leading {
            let wanted = statuses.borrow_and_update().clone();
            written.retain(|name, _| wanted.contains_key(name));
            for (name, status) in wanted {
                if written.get(&name) == Some(&status) {
                    continue;
                }
                let body = status_body(&status);
                match api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&body)).await {
                    Ok(_) => {
                        written.insert(name, status);
                    }
                    Err(e) => {
                        tracing::warn!(policy = %name, "cannot write Policy status (needs patch on policies/status): {e}")
                    }
                }
            }
        }
        // Wake on new statuses (quickly, so kubectl sees them) or to renew the Lease.
        if let Ok(Err(_)) = tokio::time::timeout(RENEW_EVERY, statuses.changed()).await {
            tokio::time::sleep(RENEW_EVERY).await; // the publisher is gone: only renew
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_carry_the_generation_and_reason() {
        let body = status_body(&PolicyStatus { generation: 3, ready: false, message: "bad".into() });
        let c = &body["status"]["conditions"][0];
        assert_eq!(
            (c["type"].as_str(), c["status"].as_str(), c["reason"].as_str()),
            (Some("Ready"), Some("False"), Some("Invalid"))
        );
        assert_eq!(c["observedGeneration"], 3);
    }
}
