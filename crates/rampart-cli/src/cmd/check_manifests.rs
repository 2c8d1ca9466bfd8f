//! `rampart check-manifests`: the admission guardrails, offline, over YAML manifests (CI use).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use rampart_guardrails::admission::Guardrails;
use rampart_guardrails::pss::{self, Level, LevelVersion, pod::PodView};
use rampart_guardrails::rules::Mode;
use rampart_types::source_lines::{DocumentLines, document_lines};
use rampart_types::workload::pod_template;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::output;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
}

#[derive(Debug, clap::Args)]
#[command(after_long_help = "EXAMPLES:
    rampart check-manifests k8s/            # restricted:latest, as a table
    rampart check-manifests --level baseline:v1.30 deploy.yaml
    helm template ./chart | rampart check-manifests -
    rampart check-manifests --guardrails guardrails.yaml \\
        --namespaces namespaces.yaml -o sarif k8s/ > rampart.sarif
    rampart check-manifests --verify-images --image-policy policies/ k8s/

EXIT STATUS:
    0 no violations; 1 violations at error level (or warnings with
    --fail-on-warnings); 2 a file could not be read or parsed (it is reported
    with the others' findings, which were all checked), or a usage error")]
pub struct Args {
    /// Manifest files or directories (searched recursively for .yaml, .yml, .json);
    /// `-` reads stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Pod Security level to enforce everywhere, `LEVEL[:VERSION]`. Default: the namespaces'
    /// enforce labels and configured defaults when --guardrails/--namespaces are given, else
    /// restricted:latest.
    #[arg(long, value_name = "LEVEL[:VERSION]")]
    pub level: Option<String>,
    /// Guardrails config (Pod Security defaults, exemptions, best-practice rules).
    #[arg(long, value_name = "FILE")]
    pub guardrails: Option<PathBuf>,
    /// Namespaces with their Pod Security labels (`kubectl get ns -o yaml`).
    #[arg(long, value_name = "FILE")]
    pub namespaces: Option<PathBuf>,
    /// Namespace for objects that do not name one.
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// Exit 1 on warnings too.
    #[arg(long)]
    pub fail_on_warnings: bool,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: ReportFormat,
    /// Verify image signatures and attestations too, against --image-policy, as the
    /// admission webhook would (the registries must be reachable; nothing is pinned).
    #[arg(long, requires = "image_policies")]
    pub verify_images: bool,
    #[command(flatten)]
    pub images: super::images::ImageArgs,
}

/// Image verification for check-manifests: the admitter and a runtime to drive it.
struct ImageCheck {
    runtime: tokio::runtime::Runtime,
    admitter: rampart_images::admission::ImageAdmitter,
    /// Images an ImagePolicy covered, across all manifests.
    covered: std::cell::Cell<usize>,
}

impl ImageCheck {
    fn new(args: &super::images::ImageArgs) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        let admitter = runtime.block_on(async {
            let ecr = super::images::ecr_credentials(&args.ecr_regions).await?;
            args.admitter(&super::images::Keys { secrets: None }, ecr).await
        })?;
        Ok(ImageCheck { runtime, admitter, covered: std::cell::Cell::new(0) })
    }

    /// (image, message) for every image that fails its policies.
    fn refusals(&self, namespace: &str, object: &Value) -> Vec<(String, String)> {
        let empty = rampart_images::registry::Credentials::default();
        let answer = self.runtime.block_on(self.admitter.admit(namespace, object, None, &empty));
        self.covered.set(self.covered.get() + answer.facts.len() + answer.refusals.len());
        answer.refusals
    }
}

#[derive(Debug, Clone, Serialize)]
struct Finding {
    file: String,
    line: usize,
    kind: String,
    namespace: String,
    name: String,
    rule: String,
    level: &'static str,
    message: String,
}

fn manifest_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(p) = stack.pop() {
        if p.as_os_str() == "-" {
            out.push(p);
            continue;
        }
        let meta = std::fs::metadata(&p).with_context(|| format!("cannot read {}", p.display()))?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&p).with_context(|| format!("cannot list {}", p.display()))? {
                let path = entry?.path();
                let manifest =
                    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"));
                if path.is_dir() || manifest {
                    stack.push(path);
                }
            }
        } else {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

fn parse_level(s: &str) -> anyhow::Result<LevelVersion> {
    let (level, version) = s.split_once(':').unwrap_or((s, "latest"));
    Ok(LevelVersion { level: level.parse()?, version: version.parse()? })
}

/// Pod annotations and spec of a Pod or of a controller's template.
fn pod_of(object: &Value) -> Option<anyhow::Result<PodTemplateSpec>> {
    let kind = object.get("kind")?.as_str()?;
    let template = pod_template(object)?;
    Some(
        PodTemplateSpec::deserialize(template)
            .map_err(|e| anyhow::anyhow!("cannot read the pod spec of this {kind}: {e}")),
    )
}

/// The objects of a document: a List's items, else the document itself; and whether it was a
/// List (only then do the document's item lines belong to them).
fn objects(value: Value) -> (Vec<Value>, bool) {
    match value.get("items").and_then(Value::as_array) {
        Some(items) if value.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List")) => {
            (items.clone(), true)
        }
        _ => (vec![value], false),
    }
}

/// The YAML key a Pod Security check or rule is about, to point a finding at its line.
fn field_of(rule: &str) -> Option<&'static str> {
    let id = rule.rsplit('/').next().unwrap_or(rule);
    Some(match id {
        "privileged" => "privileged",
        "allowPrivilegeEscalation" => "allowPrivilegeEscalation",
        "capabilities_baseline" | "capabilities_restricted" => "capabilities",
        "runAsNonRoot" => "runAsNonRoot",
        "runAsUser" => "runAsUser",
        "seccompProfile_baseline" | "seccompProfile_restricted" => "seccompProfile",
        "hostPathVolumes" => "hostPath",
        "hostPorts" => "hostPort",
        "procMount" => "procMount",
        "sysctls" => "sysctls",
        "appArmorProfile" => "appArmorProfile",
        "seLinuxOptions" => "seLinuxOptions",
        "restrictedVolumes" => "volumes",
        "hostProbesAndHostLifecycle" => "host",
        "windowsHostProcess" => "hostProcess",
        "disallowLatestTag" | "imageRegistries" | "requireDigest" | "signature" => "image",
        "resources" | "requireResources" => "resources",
        _ => return None,
    })
}

/// The line a finding points at, within the document `lines[start..end]` (0-based indexes):
/// the offending field of the named container, else that container, else the first
/// occurrence of the field (pod-level settings such as `hostNetwork`), else the document.
fn locate(lines: &[&str], start: usize, end: usize, rule: &str, message: &str) -> usize {
    let start = start.min(lines.len());
    let doc = &lines[start..end.clamp(start, lines.len())];
    // `key:` in block style (`  privileged: true`) or flow style (`{privileged: true}`).
    let key_at = |from: usize, key: &str| {
        let needle = format!("{key}:");
        doc.iter().enumerate().skip(from).find_map(|(i, l)| {
            l.match_indices(&needle)
                .any(|(at, _)| at == 0 || matches!(l.as_bytes()[at - 1], b' ' | b'{' | b',' | b'"' | b'-'))
                .then_some(i)
        })
    };
    // `container "app"`, `containers "a", "b"`, `pod or container "app"`.
    let container = message.split("ontainer").nth(1).and_then(|rest| rest.split('"').nth(1));
    let container_line = container.and_then(|name| {
        doc.iter().position(|l| {
            let t = l.trim_start().trim_start_matches("- ");
            t == format!("name: {name}") || t == format!("name: \"{name}\"") || t == format!("name: '{name}'")
        })
    });
    // A container's block ends at the next line indented no deeper than its `- name:`.
    let block_end = |c: usize| {
        let indent = |l: &str| l.len() - l.trim_start().len();
        let own = doc.get(c).map_or(0, |l| indent(l));
        doc.iter()
            .enumerate()
            .skip(c + 1)
            .find(|(_, l)| !l.trim().is_empty() && indent(l) <= own)
            .map_or(doc.len(), |(i, _)| i)
    };
    let key_in_container = |c: usize, key: &str| key_at(c, key).filter(|&i| i < block_end(c));
    // `image "registry/app:v1" (…): …`: the line that names that image.
    let image_line = message
        .strip_prefix("image \"")
        .and_then(|rest| rest.split('"').next())
        .and_then(|image| doc.iter().position(|l| l.contains(image)));
    let found = if let Some(line) = image_line {
        Some(line)
    } else if rule.ends_with("hostNamespaces") {
        ["hostNetwork", "hostPID", "hostIPC"].iter().find_map(|k| key_at(0, k))
    } else {
        match (container_line, field_of(rule)) {
            (Some(c), Some(f)) => key_in_container(c, f).or(Some(c)),
            (Some(c), None) => Some(c),
            (None, Some(f)) => key_at(0, f),
            (None, None) => None,
        }
    };
    start + found.unwrap_or(0) + 1
}

/// A manifest's text and the name it is reported under (`-`: stdin).
fn read_manifest(path: &Path) -> anyhow::Result<(String, String)> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut text)
            .context("cannot read stdin")?;
        return Ok(("<stdin>".to_owned(), text));
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok((path.display().to_string(), text))
}

fn check_file(
    path: &Path,
    args: &Args,
    guardrails: &Guardrails,
    forced: Option<LevelVersion>,
    images: Option<&ImageCheck>,
    findings: &mut Vec<Finding>,
) -> anyhow::Result<usize> {
    let (shown, text) = read_manifest(path)?;
    let documents = document_lines(&text);
    let text_lines: Vec<&str> = text.lines().collect();
    let mut checked = 0;
    for (n, doc) in serde_yaml::Deserializer::from_str(&text).enumerate() {
        let document = documents.get(n).cloned().unwrap_or(DocumentLines { start: 1, items: Vec::new() });
        let line = document.start.max(1);
        let value = match Value::deserialize(doc) {
            Ok(v) => v,
            Err(e) => {
                // The rest of the files are still checked; the exit status says one was not.
                let at = e.location().map_or(line, |l| l.line());
                findings.push(Finding {
                    file: shown.clone(),
                    line: at,
                    kind: String::new(),
                    namespace: String::new(),
                    name: String::new(),
                    rule: "manifest/parse".into(),
                    level: "error",
                    message: format!("invalid YAML: {e}"),
                });
                return Err(anyhow::anyhow!("{shown}:{at}: invalid YAML: {e}"));
            }
        };
        let doc_end = documents.get(n + 1).map_or(text_lines.len(), |next| next.start.saturating_sub(1));
        let (objects, list) = objects(value);
        for (i, object) in objects.into_iter().enumerate() {
            // An item of a List is searched for its fields within its own lines.
            let (from, to) = match document.items.get(i).filter(|_| list) {
                Some(&start) => (start, document.items.get(i + 1).map_or(doc_end, |next| next - 1)),
                None => (line, doc_end),
            };
            let Some(pod) = pod_of(&object) else { continue };
            checked += 1;
            let kind = object["kind"].as_str().unwrap_or_default().to_owned();
            let name =
                object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("<unnamed>").to_owned();
            let namespace = object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or(&args.namespace)
                .to_owned();
            let mut add = |rule: String, level: &'static str, message: String| {
                findings.push(Finding {
                    file: shown.clone(),
                    line: locate(&text_lines, from - 1, to, &rule, &message),
                    kind: kind.clone(),
                    namespace: namespace.clone(),
                    name: name.clone(),
                    rule,
                    level,
                    message,
                })
            };
            let pod = match pod {
                Ok(p) => p,
                Err(e) => {
                    add("manifest".into(), "error", e.to_string());
                    continue;
                }
            };
            let annotations = pod.metadata.as_ref().and_then(|m| m.annotations.as_ref());
            let spec = pod.spec.unwrap_or_default();
            let eval = guardrails.evaluate_pod(&namespace, annotations, &spec);
            let (enforce_lv, enforce) = match forced {
                Some(lv) => (lv, pss::evaluate(&PodView::new(annotations, &spec), lv)),
                None => (eval.policy.enforce, eval.enforce.clone()),
            };
            for r in &enforce {
                add(format!("pss/{}", r.id), "error", pss_message(enforce_lv, r));
            }
            if forced.is_none()
                && eval.policy.warn != enforce_lv
                && eval.policy.warn.level != Level::Privileged
            {
                for r in eval.warn.iter().filter(|w| !enforce.iter().any(|e| e.id == w.id)) {
                    add(format!("pss/{}", r.id), "warning", pss_message(eval.policy.warn, r));
                }
            }
            for v in &eval.rules {
                let level = if v.mode == Mode::Enforce { "error" } else { "warning" };
                add(format!("rules/{}", v.rule), level, v.message.clone());
            }
            for (_, message) in images.map(|i| i.refusals(&namespace, &object)).unwrap_or_default() {
                add("images/signature".into(), "error", message);
            }
        }
    }
    Ok(checked)
}

fn pss_message(lv: LevelVersion, r: &pss::CheckResult) -> String {
    let body = pss::reasons_message(std::slice::from_ref(r));
    format!("violates PodSecurity \"{lv}\": {body}")
}

fn sarif(findings: &[Finding]) -> serde_sarif::sarif::Sarif {
    use crate::sarif::{self, Level};
    let mut rules: Vec<&str> = findings.iter().map(|f| f.rule.as_str()).collect();
    rules.sort_unstable();
    rules.dedup();
    let results = findings
        .iter()
        .map(|f| {
            let level = if f.level == "error" { Level::Error } else { Level::Warning };
            let text = format!("{} {}/{}: {}", f.kind, f.namespace, f.name, f.message);
            sarif::result(
                &f.rule,
                level,
                &text,
                sarif::file_location(&sarif::artifact_uri(&f.file), Some(f.line)),
                None,
            )
        })
        .collect();
    sarif::log(rules.iter().map(|r| sarif::rule(r, r, None, None)).collect(), results, None)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let forced = match (&args.level, &args.guardrails, &args.namespaces) {
        (Some(l), _, _) => Some(parse_level(l).with_context(|| format!("--level {l}"))?),
        (None, None, None) => Some(LevelVersion { level: Level::Restricted, version: pss::Version::Latest }),
        _ => None,
    };
    let guardrails = super::guardrails::build(args.guardrails.as_deref(), args.namespaces.as_deref())?;
    let mut findings = Vec::new();
    let mut checked = 0;
    let files = manifest_files(&args.paths)?;
    let mut unreadable = 0;
    let images = if args.verify_images { Some(ImageCheck::new(&args.images)?) } else { None };
    for file in &files {
        match check_file(file, &args, &guardrails, forced, images.as_ref(), &mut findings) {
            Ok(n) => checked += n,
            Err(e) => {
                eprintln!("error: {}", crate::output::error_chain(&e));
                unreadable += 1;
            }
        }
    }
    match args.output {
        ReportFormat::Json => crate::outln!("{}", serde_json::to_string_pretty(&findings)?),
        ReportFormat::Sarif => crate::outln!("{}", serde_json::to_string_pretty(&sarif(&findings))?),
        ReportFormat::Table => {
            if !findings.is_empty() {
                let mut t = output::table(&["object", "file:line", "rule", "level", "finding"]);
                for f in &findings {
                    let object = if f.kind.is_empty() {
                        "(not parsed)".to_owned()
                    } else {
                        format!("{} {}/{}", f.kind, f.namespace, f.name)
                    };
                    t.add_row(vec![
                        object,
                        format!("{}:{}", f.file, f.line),
                        f.rule.clone(),
                        f.level.to_owned(),
                        f.message.clone(),
                    ]);
                }
                crate::outln!("{t}");
            }
            let errors = findings.iter().filter(|f| f.level == "error").count();
            crate::outln!(
                "{checked} workloads in {} files checked: {errors} errors, {} warnings",
                files.len(),
                findings.len() - errors
            );
        }
    }
    if unreadable > 0 {
        eprintln!(
            "{unreadable} of {} files could not be read or parsed; the others were checked",
            files.len()
        );
        return Ok(ExitCode::from(2));
    }
    if checked == 0 {
        // A check that read nothing must not pass silently.
        eprintln!("no workloads found in {} files: nothing was checked", files.len());
        return Ok(ExitCode::from(2));
    }
    if images.as_ref().is_some_and(|i| i.covered.get() == 0) {
        eprintln!(
            "--verify-images: no image in these manifests is covered by an ImagePolicy: nothing was verified"
        );
        return Ok(ExitCode::from(2));
    }
    let failing =
        findings.iter().any(|f| f.level == "error" || (args.fail_on_warnings && f.level == "warning"));
    Ok(if failing { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
