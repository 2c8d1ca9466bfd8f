//! `rampart test`: policy tests for CI. A test file names the policy tiers (as `serve -p`
//! takes them, with RBAC and access entries), then requests — a SubjectAccessReview or
//! AdmissionReview file, or the fields `check` takes — each with the decision expected and,
//! optionally, the policy that must decide it and a text the denial must contain.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde::Deserialize;

use super::check::{Request, decide_request, decide_review};
use super::{PolicyArgs, ValidationArg};

#[derive(Debug, clap::Args)]
#[command(after_long_help = "TEST FILES:
    YAML with a `tests:` list; a directory is searched for them (*.yaml, *.yml).
        policies: [../authorization]     # tiers, relative to this file
        rbac: [rbac.yaml]                # optional, as --rbac
        accessEntries: entries.yaml      # optional, as --access-entries
        tests:
          - name: sample-user lists her configmaps
            check: {user: sample-user, groups: [requires-labels], verb: list,
                    resource: configmaps, namespace: default,
                    labelSelector: owner=sample-user}
            expect: allow                # allow, deny or no-opinion
            policy: label-owner          # optional: a deciding policy's id
          - name: an unlabelled configmap is refused
            review: reviews/configmap.json   # SubjectAccessReview/AdmissionReview
            expect: deny
            message: owner               # optional: in the denial message

EXAMPLES:
    rampart test examples/
    rampart test tests/ -o junit > rampart-junit.xml

EXIT STATUS:
    0 every test passed, 1 some failed, 2 a file could not be read.")]
pub struct Args {
    /// Test files, or directories searched for them.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    /// Output: a table, JUnit XML (for CI test reports), or JSON.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: TestFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TestFormat {
    Table,
    Junit,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Expect {
    Allow,
    Deny,
    NoOpinion,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Case {
    name: String,
    review: Option<PathBuf>,
    check: Option<Request>,
    expect: Expect,
    policy: Option<String>,
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    policies: Vec<PathBuf>,
    #[serde(default)]
    rbac: Vec<PathBuf>,
    access_entries: Option<PathBuf>,
    #[serde(default)]
    bootstrap_roles: bool,
    #[serde(default)]
    rbac_first: bool,
    /// The release whose default roles `bootstrapRoles` adds.
    kubernetes_version: Option<String>,
    tests: Vec<Case>,
}

/// One test's outcome.
#[derive(Debug, serde::Serialize)]
struct Outcome {
    file: String,
    name: String,
    expected: String,
    got: String,
    deciding: Vec<String>,
    /// Why it failed; `None` when it passed.
    failure: Option<String>,
}

fn test_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot list {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            for entry in entries {
                if entry.is_dir() {
                    out.extend(test_files(&[entry])?);
                } else if matches!(entry.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
                    let text = std::fs::read_to_string(&entry).unwrap_or_default();
                    if serde_yaml::from_str::<serde_yaml::Value>(&text)
                        .is_ok_and(|v| v.get("tests").is_some())
                    {
                        out.push(entry);
                    }
                }
            }
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

fn relative(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() { path.to_path_buf() } else { base.join(path) }
}

fn run_file(path: &Path) -> anyhow::Result<Vec<Outcome>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: TestFile =
        serde_yaml::from_str(&text).with_context(|| format!("{}: not a test file", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let policies = PolicyArgs {
        tiers: file.policies.iter().map(|p| relative(base, p)).collect(),
        rbac: file.rbac.iter().map(|p| relative(base, p)).collect(),
        rbac_first: file.rbac_first,
        access_entries: file.access_entries.as_deref().map(|p| relative(base, p)),
        bootstrap_roles: file.bootstrap_roles,
        kubernetes_version: file
            .kubernetes_version
            .unwrap_or_else(|| rampart_rbac::bootstrap::DEFAULT_VERSION.into()),
        validation: ValidationArg::default(),
        schema: None,
    };
    policies.ensure_any().with_context(|| format!("{}: name the policies under test", path.display()))?;
    let loaded = policies.sources(Default::default())?.load()?;
    let engine = &loaded.engine;
    let mut out = Vec::new();
    for case in file.tests {
        let report = match (&case.review, &case.check) {
            (Some(review), None) => decide_review(engine, &relative(base, review)),
            (None, Some(request)) => decide_request(engine, request),
            _ => Err(anyhow::anyhow!("give `review` or `check`, one of them")),
        }
        .with_context(|| format!("{}: test {:?}", path.display(), case.name))?;
        let got = match report.decision.as_str() {
            "Allow" | "Allowed" => Expect::Allow,
            "NoOpinion" => Expect::NoOpinion,
            _ => Expect::Deny,
        };
        let deciding: Vec<String> = report.diagnostic.reasons.iter().map(|r| r.policy.clone()).collect();
        let mut failure = None;
        if got != case.expect {
            failure = Some(format!("expected {:?}, got {:?} ({})", case.expect, got, report.reason));
        } else if let Some(policy) = case.policy.as_ref().filter(|p| !deciding.contains(p)) {
            failure = Some(format!("expected {policy} to decide, decided by {deciding:?}"));
        } else if let Some(text) = &case.message {
            let message = report.message.clone().unwrap_or_else(|| report.reason.clone());
            if !message.contains(text.as_str()) {
                failure = Some(format!("the message {message:?} does not contain {text:?}"));
            }
        }
        out.push(Outcome {
            file: path.display().to_string(),
            name: case.name,
            expected: format!("{:?}", case.expect),
            got: format!("{got:?}"),
            deciding,
            failure,
        });
    }
    Ok(out)
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// JUnit XML: a suite per file, a case per test, a `<failure>` saying what differed.
fn junit(outcomes: &[Outcome]) -> String {
    let failures = outcomes.iter().filter(|o| o.failure.is_some()).count();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"rampart\" tests=\"{}\" failures=\"{failures}\">\n",
        outcomes.len()
    );
    let mut files: Vec<&str> = outcomes.iter().map(|o| o.file.as_str()).collect();
    files.dedup();
    for file in files {
        let cases: Vec<&Outcome> = outcomes.iter().filter(|o| o.file == file).collect();
        let failed = cases.iter().filter(|o| o.failure.is_some()).count();
        out += &format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\">\n",
            xml(file),
            cases.len()
        );
        for case in cases {
            out += &format!("    <testcase classname=\"{}\" name=\"{}\"", xml(file), xml(&case.name));
            match &case.failure {
                None => out += "/>\n",
                Some(why) => {
                    out += &format!(">\n      <failure message=\"{}\"/>\n    </testcase>\n", xml(why));
                }
            }
        }
        out += "  </testsuite>\n";
    }
    out += "</testsuites>\n";
    out
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let files = test_files(&args.paths)?;
    anyhow::ensure!(
        !files.is_empty(),
        "no test files in {}: nothing was tested (a test file is YAML with a `tests:` list)",
        args.paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    );
    let mut outcomes = Vec::new();
    for file in &files {
        outcomes.extend(run_file(file)?);
    }
    let failed = outcomes.iter().filter(|o| o.failure.is_some()).count();
    match args.output {
        TestFormat::Junit => crate::out!("{}", junit(&outcomes)),
        TestFormat::Json => crate::outln!("{}", serde_json::to_string_pretty(&outcomes)?),
        TestFormat::Table => {
            let mut t = crate::output::table(&["", "test", "expected", "got", "deciding policies"]);
            for o in &outcomes {
                let mark = if o.failure.is_some() { "FAIL" } else { "ok" };
                let got = match &o.failure {
                    Some(why) => format!("{}\n{why}", o.got),
                    None => o.got.clone(),
                };
                t.add_row(vec![
                    mark.to_string(),
                    format!("{}\n{}", o.name, o.file),
                    o.expected.clone(),
                    got,
                    o.deciding.join(", "),
                ]);
            }
            crate::outln!("{t}");
        }
    }
    eprintln!(
        "{} tests in {} files: {} passed, {failed} failed",
        outcomes.len(),
        files.len(),
        outcomes.len() - failed
    );
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
