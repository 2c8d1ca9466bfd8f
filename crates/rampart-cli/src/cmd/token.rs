//! `rampart token`: an ExecCredential for kubectl, like `aws eks get-token`.

use std::process::ExitCode;

use anyhow::Context;
use rampart_identity::client::{assume_role, exec_credential, now, presign, resolve_credentials, sts_host};

#[derive(Debug, clap::Args)]
#[command(after_long_help = "EXAMPLES:
    rampart token --cluster-id my-cluster --region eu-west-1
    rampart token --cluster-id my-cluster \\
        --role-arn arn:aws:iam::111122223333:role/k8s-admin

CREDENTIALS:
    AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN; a web identity
    (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN); the profile AWS_PROFILE, with
    keys in the credentials file or, through the AWS SDK's provider, a
    credential_process, IAM Identity Center (sso_session) or role_arn with
    source_profile; container credentials; the instance's. With --role-arn the
    role is assumed first (AWS_ENDPOINT_URL_STS overrides the STS endpoint).

IAM IDENTITY CENTER:
    After `aws sso login --profile admin`, either point AWS_PROFILE at that
    profile, or give another profile
        credential_process = aws configure export-credentials --profile admin
                             --format process
    (one line) to reuse what the AWS CLI cached.")]
pub struct Args {
    /// The cluster id signed into the token (`x-k8s-aws-id`; the cluster name on EKS).
    #[arg(long, short = 'i')]
    pub cluster_id: String,
    /// Assume this role and sign with its credentials.
    #[arg(long)]
    pub role_arn: Option<String>,
    /// Region of the STS endpoint (default: AWS_REGION, AWS_DEFAULT_REGION, else the global endpoint).
    #[arg(long)]
    pub region: Option<String>,
    /// Session name when assuming --role-arn.
    #[arg(long, default_value = "rampart")]
    pub session_name: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let region = args
        .region
        .clone()
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut creds = runtime.block_on(resolve_credentials(&env))?;
    let now = now();
    if let Some(role) = &args.role_arn {
        let endpoint = env("AWS_ENDPOINT_URL_STS")
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| format!("https://{}", sts_host(&region)));
        creds = runtime
            .block_on(assume_role(&creds, &endpoint, &region, role, &args.session_name, now))
            .with_context(|| format!("cannot assume {role}"))?;
    }
    let (token, expires) = presign(&creds, &args.cluster_id, &region, now)?;
    // kubectl passes the exec API version it wants in KUBERNETES_EXEC_INFO.
    let api_version = env("KUBERNETES_EXEC_INFO")
        .and_then(|info| serde_json::from_str::<serde_json::Value>(&info).ok())
        .and_then(|v| v.get("apiVersion").and_then(|a| a.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "client.authentication.k8s.io/v1beta1".into());
    crate::outln!("{}", serde_json::to_string(&exec_credential(&api_version, &token, expires))?);
    Ok(ExitCode::SUCCESS)
}
