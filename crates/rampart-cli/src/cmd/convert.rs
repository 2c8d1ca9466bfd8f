//! `rampart convert rbac`: RBAC bindings and roles → Cedar policies.

use std::path::PathBuf;
use std::process::ExitCode;

use rampart_rbac::convert::convert_world;
use rampart_rbac::manifest::World;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Convert RoleBindings and ClusterRoleBindings (with their roles) to Cedar `permit`s that
    /// allow exactly what RBAC allows (upstream converter bugs fixed; see the README).
    #[command(after_long_help = "EXAMPLES:
    kubectl get roles,rolebindings,clusterroles,clusterrolebindings -A \\
        -o yaml > rbac.yaml
    rampart convert rbac rbac.yaml > rbac.cedar
    rampart convert rbac -o crd manifests/rbac/ > policies.yaml")]
    Rbac {
        /// RBAC manifests (files or directories).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Output: Cedar text or a Policy object.
        #[arg(long, short = 'o', value_enum, default_value = "cedar")]
        output: ConvertFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConvertFormat {
    /// Cedar policy text.
    Cedar,
    /// One `cedar.k8s.aws/v1alpha1` `Policy` object, strictly validated.
    Crd,
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    let Command::Rbac { paths, output } = command;
    let world = World::from_paths(&paths)?;
    let (text, missing) = convert_world(&world);
    for m in &missing {
        eprintln!("warning: skipped {m}");
    }
    match output {
        ConvertFormat::Cedar => crate::out!("{text}"),
        ConvertFormat::Crd => {
            let policy = serde_json::json!({
                "apiVersion": "cedar.k8s.aws/v1alpha1",
                "kind": "Policy",
                "metadata": {"name": "converted-rbac"},
                "spec": {"validation": {"enforced": true, "validationMode": "strict"}, "content": text},
            });
            crate::out!("{}", serde_yaml::to_string(&policy)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
