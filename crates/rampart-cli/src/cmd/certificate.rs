//! `rampart certificate`: the webhook's serving certificate for an in-cluster install without
//! cert-manager — a private CA and a certificate for the Service's names, kept in a directory
//! (reused and renewed by the same CA on later runs, so the CA bundle stays the same), printed
//! as a `kubernetes.io/tls` Secret for `kubectl apply` or as the CA bundle for the chart's
//! `tls.caBundle`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use base64::Engine as _;
use rampart_server::tls::{CertSource, ensure_files};
use serde_json::json;

#[derive(Debug, clap::Args)]
#[command(after_long_help = "EXAMPLES:
    The Helm chart's Secret and CA bundle (release `rampart` in rampart-system):
        rampart certificate --service rampart --namespace rampart-system \\
            --secret | kubectl apply -f -
        helm install rampart deploy/helm/rampart -n rampart-system \\
            --set tls.caBundle=$(rampart certificate --service rampart \\
                --namespace rampart-system --ca-bundle)

    Run it again before the certificate expires (a year): it is reissued by the same CA, so
    only the Secret changes and Rampart picks it up without a restart.")]
pub struct Args {
    /// The Service in front of Rampart (the chart's: the release's full name).
    #[arg(long, value_name = "NAME")]
    pub service: String,
    /// Its namespace.
    #[arg(long, short = 'n', value_name = "NS")]
    pub namespace: String,
    /// Where the CA and certificate are kept (default ./rampart-certs-SERVICE). Keep ca.key
    /// private: whoever holds it can impersonate the webhook.
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Print a Secret (tls.crt, tls.key, ca.crt) named --secret-name.
    #[arg(long, conflicts_with = "ca_bundle")]
    pub secret: bool,
    /// Name of the Secret (default: SERVICE-tls, as the chart expects).
    #[arg(long, value_name = "NAME")]
    pub secret_name: Option<String>,
    /// Print the CA bundle, base64-encoded, for a webhook configuration's caBundle.
    #[arg(long)]
    pub ca_bundle: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dir =
        args.cert_dir.clone().unwrap_or_else(|| PathBuf::from(format!("rampart-certs-{}", args.service)));
    let (service, ns) = (&args.service, &args.namespace);
    let names = vec![
        format!("{service}.{ns}.svc"),
        format!("{service}.{ns}.svc.cluster.local"),
        format!("{service}.{ns}"),
        service.clone(),
    ];
    let (cert, key) = ensure_files(&CertSource::SelfSigned { dir: dir.clone(), names })?;
    let read =
        |path: &PathBuf| std::fs::read(path).with_context(|| format!("cannot read {}", path.display()));
    let b64 = |bytes: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(bytes);
    let ca = read(&dir.join("ca.crt"))?;
    if args.ca_bundle {
        crate::outln!("{}", b64(ca));
        return Ok(ExitCode::SUCCESS);
    }
    if !args.secret {
        eprintln!(
            "CA and certificate for {service}.{ns}.svc are in {}; print them with --secret (a Secret \
             to apply) or --ca-bundle (for the chart's tls.caBundle)",
            dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let name = args.secret_name.clone().unwrap_or_else(|| format!("{service}-tls"));
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": ns, "labels": {"app.kubernetes.io/part-of": "rampart"}},
        "data": {"tls.crt": b64(read(&cert)?), "tls.key": b64(read(&key)?), "ca.crt": b64(ca)},
    });
    crate::out!("{}", serde_yaml::to_string(&secret)?);
    Ok(ExitCode::SUCCESS)
}
