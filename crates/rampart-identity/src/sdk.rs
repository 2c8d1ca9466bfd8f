//! The official AWS SDK's configuration, shared by the crates that call AWS through it (KMS,
//! profile credentials, CloudWatch Logs, Kinesis, Security Hub).

/// The SDK's HTTP client on the workspace's rustls provider (ring): its default client would
/// add aws-lc-rs to rustls, and two providers leave rustls without a process default (kube
/// then panics at start).
pub fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// The SDK's configuration from the environment (credentials chain, region, `AWS_ENDPOINT_URL*`),
/// with `region` when given and the ring client.
pub async fn config(region: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http_client());
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_string()));
    }
    loader.load().await
}

/// Credentials of the profile `AWS_PROFILE` (or `default`) through the SDK's profile provider:
/// `credential_process` (e.g. `aws configure export-credentials --profile X --format
/// process`, which serves what `aws sso login` cached), IAM Identity Center (`sso_session`,
/// `sso_start_url`, from the SSO token cache), `role_arn` with `source_profile`.
pub async fn profile_credentials() -> Result<aws_credential_types::Credentials, String> {
    use aws_credential_types::provider::ProvideCredentials;
    let config = aws_config::provider_config::ProviderConfig::default().with_http_client(http_client());
    let provider = aws_config::profile::ProfileFileCredentialsProvider::builder().configure(&config).build();
    provider.provide_credentials().await.map_err(|e| error_chain(&e))
}

/// An SDK error with its causes (the SDK's Display alone says only "service error").
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
