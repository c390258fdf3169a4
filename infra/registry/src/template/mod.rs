//! Renders `template.yaml` from the job registry: the hand-written shared part
//! (`infra/template/shared.yaml`: parameters, globals, tables, the SES identity, the alarm topic)
//! with every job's resources and outputs rendered where its two marker lines stand.
//!
//! Invariants: a job's resources say only what its [`JobSpec`] declares (a role grants the
//! tables, indexes, tokens, SMS and queues its `Uses` names, nothing else), and rendering is a
//! pure function of the shared text and the specs, so `template.yaml` can be checked against it
//! byte for byte (`jobctl template --check`, and `infra/jobctl/tests/template.rs`).

mod job;
mod role;
mod schedule;

use std::path::{Path, PathBuf};

use crate::{self as registry, JobSpec, RegistryError};

/// The rendered template, relative to the repository's root.
pub const TEMPLATE: &str = "template.yaml";

/// The hand-written part of the template, relative to the repository's root.
pub const SHARED: &str = "infra/template/shared.yaml";

/// The command that renders the template again, for messages that ask for it.
pub const WRITE_COMMAND: &str = "cargo run -p jobctl -- template --write";

/// The line of [`SHARED`] that each job's resources replace.
const RESOURCES_MARKER: &str = "  # <jobctl template: each job's resources>";

/// The line of [`SHARED`] that each job's queue and DLQ URL outputs replace.
const OUTPUTS_MARKER: &str = "  # <jobctl template: each job's queue and DLQ URLs>";

/// The parameter of [`SHARED`] that names the optional customer managed KMS key (empty: none).
pub const KMS_KEY_PARAMETER: &str = "KmsKeyArn";

/// The condition of [`SHARED`] that holds when [`KMS_KEY_PARAMETER`] names a key.
pub const KMS_KEY_CONDITION: &str = "HasKmsKey";

/// What the rendered file says first, so no one edits it by hand.
const BANNER: &str = "\
# GENERATED FILE: do not edit. `cargo run -p jobctl -- template --write` renders it from the job
# registry (infra/registry/src/lib.rs) and infra/template/shared.yaml; edit those and
# render again. infra/jobctl/tests/template.rs fails while this file differs from the render.
#
";

/// The template could not be rendered, read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// Which file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The template could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// Which file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The shared part does not hold a marker line exactly once.
    #[error("{SHARED} must hold the line {marker:?} once; it holds it {found} times")]
    Marker {
        /// The line.
        marker: &'static str,
        /// How often it is there.
        found: usize,
    },
    /// A job declares that it enqueues a job the registry does not have.
    #[error("{job} declares that it enqueues {target}, which is no job of the registry")]
    UnknownEnqueued {
        /// The declaring job.
        job: &'static str,
        /// The job it names.
        target: &'static str,
    },
    /// A schedule's arguments are not a JSON object the tick's `$schedule` can join.
    #[error("{job}'s schedule {rule}: its arguments must be a JSON object without \"$schedule\", not {args}")]
    ScheduleArgs {
        /// The job.
        job: &'static str,
        /// The rule.
        rule: &'static str,
        /// The arguments as declared.
        args: &'static str,
    },
    /// A schedule the template cannot say (the registry's own check lets none through).
    #[error("{job}'s schedule {rule}: {source}")]
    Schedule {
        /// The job.
        job: &'static str,
        /// The schedule's name.
        rule: &'static str,
        /// Why.
        source: crate::schedule::ScheduleError,
    },
    /// Two statements of one role would have the same `Sid` (two uses of one table or index).
    #[error("{job}: two statements of its role would be named {sid}; declare each table or index once")]
    DuplicateSid {
        /// The job.
        job: &'static str,
        /// The statement id.
        sid: String,
    },
    /// A function's description would be longer than Lambda takes.
    #[error(
        "{job}: the function's description (\"<job>: <summary>\") has {length} characters; Lambda takes 256"
    )]
    Description {
        /// The job.
        job: &'static str,
        /// Its length.
        length: usize,
    },
    /// The registry could not be built.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// The repository this jobctl was built from (rust-analyzer finds its generated files so):
/// `template` is a command for the repository's developers, not for a deployed stack.
pub fn repository_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.ancestors().nth(2).map_or_else(|| manifest.join("../.."), Path::to_path_buf)
}

/// The template `specs` render into `shared`, the text of [`SHARED`].
///
/// # Errors
/// A marker line missing from `shared` or there twice, or a declaration the template cannot
/// say (see [`TemplateError`]).
pub fn render(shared: &str, specs: &[JobSpec]) -> Result<String, TemplateError> {
    let resources = specs.iter().map(|spec| job::resources(spec, specs)).collect::<Result<Vec<_>, _>>()?;
    // One blank line between two jobs' blocks: each block ends with its last resource's line.
    let resources = resources.join("\n");
    let outputs: String = specs.iter().map(job::outputs).collect();
    let mut text = String::from(BANNER);
    let mut found = (0, 0);
    for line in shared.split_inclusive('\n') {
        match line.trim_end_matches('\n') {
            RESOURCES_MARKER => {
                found.0 += 1;
                text.push_str(&resources);
            }
            OUTPUTS_MARKER => {
                found.1 += 1;
                text.push_str(&outputs);
            }
            _ => text.push_str(line),
        }
    }
    for (marker, found) in [(RESOURCES_MARKER, found.0), (OUTPUTS_MARKER, found.1)] {
        if found != 1 {
            return Err(TemplateError::Marker { marker, found });
        }
    }
    Ok(text)
}

/// The template the registry renders into the repository's [`SHARED`] (under `root`).
///
/// # Errors
/// [`SHARED`] unreadable, the registry failing to build, or [`render`]'s errors.
pub fn render_repository(root: &Path) -> Result<String, TemplateError> {
    let path = root.join(SHARED);
    let shared = std::fs::read_to_string(&path).map_err(|source| TemplateError::Read { path, source })?;
    render(&shared, &registry::specs()?)
}

/// Where two texts first differ: the line (from 1) and each one's line there (`None` past its
/// end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The line number, from 1.
    pub line: usize,
    /// The expected text's line.
    pub expected: Option<String>,
    /// The actual text's line.
    pub actual: Option<String>,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |line: &Option<String>| {
            line.as_deref().map_or_else(|| "(end of file)".to_owned(), |l| format!("{l:?}"))
        };
        write!(f, "line {}: rendered {}, file {}", self.line, show(&self.expected), show(&self.actual))
    }
}

/// The first line where `actual` is not `expected`, if any.
pub fn first_difference(expected: &str, actual: &str) -> Option<Difference> {
    let (mut expected_lines, mut actual_lines) = (expected.lines(), actual.lines());
    let mut line = 0;
    loop {
        line += 1;
        match (expected_lines.next(), actual_lines.next()) {
            (None, None) if expected == actual => return None,
            // Same lines, different line endings or a missing final newline.
            (None, None) => return Some(Difference { line, expected: None, actual: None }),
            (e, a) if e == a => continue,
            (e, a) => {
                return Some(Difference {
                    line,
                    expected: e.map(str::to_owned),
                    actual: a.map(str::to_owned),
                });
            }
        }
    }
}

/// `store_sync` -> `StoreSync`: the prefix of a job's logical ids (also an index's part of a
/// statement id: `by_status_activity` -> `ByStatusActivity`).
pub fn logical_id(name: &str) -> String {
    name.split(['_', '-'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// `text` as a YAML double-quoted scalar: JSON's string syntax is YAML's.
fn quoted(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// `text` as one comment line's text: a declaration's line break would end the comment.
fn comment(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// `value` when the stack is given a KMS key, else nothing: `!If [HasKmsKey, value, !Ref AWS::NoValue]`.
fn with_kms_key(value: &str) -> String {
    format!("!If [{KMS_KEY_CONDITION}, {value}, !Ref AWS::NoValue]")
}

/// `value` when the stack is given no KMS key, else nothing: `!If [HasKmsKey, !Ref AWS::NoValue, value]`.
fn unless_kms_key(value: &str) -> String {
    format!("!If [{KMS_KEY_CONDITION}, !Ref AWS::NoValue, {value}]")
}

/// The `checkov:` block of a resource's `Metadata`, indented under it: the checks that do not
/// apply to the resource, each `(id, why)`, so checkov reports them skipped with the reason.
fn checkov_skips(skips: &[(&str, String)]) -> String {
    let mut text = String::from("      checkov:\n        skip:\n");
    for (id, why) in skips {
        text.push_str(&format!("          - id: {id}\n            comment: {}\n", quoted(&comment(why))));
    }
    text
}

/// `text` with its first letter upper-case, to open a sentence.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs() -> Vec<JobSpec> {
        registry::specs().expect("the registry builds")
    }

    #[test]
    fn the_markers_are_replaced_by_every_jobs_resources_and_outputs() {
        let shared = format!(
            "Resources:\n  Shared: {{}}\n{RESOURCES_MARKER}\nOutputs:\n{OUTPUTS_MARKER}\n  Tail: {{}}\n"
        );
        let text = render(&shared, &specs()).expect("renders");
        assert!(text.starts_with(BANNER));
        assert!(!text.contains("<jobctl template"), "the markers are gone");
        let resources = text.find("  StoreSyncFunction:").expect("a job's function");
        let outputs = text.find("  StoreSyncQueueUrl:").expect("a job's output");
        assert!(
            text.find("  Shared:").expect("shared") < resources
                && resources < text.find("Outputs:").expect("outputs")
        );
        assert!(outputs < text.find("  Tail:").expect("the shared outputs after the jobs'"));
    }

    #[test]
    fn a_marker_missing_or_doubled_is_an_error() {
        let missing = format!("Resources:\n{RESOURCES_MARKER}\nOutputs:\n");
        assert!(matches!(
            render(&missing, &specs()),
            Err(TemplateError::Marker { marker: OUTPUTS_MARKER, found: 0 })
        ));
        let twice = format!("{RESOURCES_MARKER}\n{RESOURCES_MARKER}\n{OUTPUTS_MARKER}\n");
        assert!(matches!(
            render(&twice, &specs()),
            Err(TemplateError::Marker { marker: RESOURCES_MARKER, found: 2 })
        ));
    }

    #[test]
    fn the_first_difference_names_the_line_and_both_texts() {
        assert_eq!(first_difference("a\nb\n", "a\nb\n"), None);
        let d = first_difference("a\nb\nc\n", "a\nx\nc\n").expect("differs");
        assert_eq!((d.line, d.expected.as_deref(), d.actual.as_deref()), (2, Some("b"), Some("x")));
        let shorter = first_difference("a\nb\n", "a\n").expect("differs");
        assert_eq!((shorter.line, shorter.actual), (2, None));
        assert!(first_difference("a\n", "a").is_some(), "a missing final newline is a difference");
    }

    fn rendered() -> serde_yaml_ng::Value {
        let text = render_repository(&repository_root()).expect("the repository renders");
        serde_yaml_ng::from_str(&text).expect("the render parses")
    }

    /// `!Tag value` as ("Tag", value).
    fn tagged(value: &serde_yaml_ng::Value) -> Option<(String, &serde_yaml_ng::Value)> {
        match value {
            serde_yaml_ng::Value::Tagged(t) => {
                Some((t.tag.to_string().trim_start_matches('!').to_owned(), &t.value))
            }
            _ => None,
        }
    }

    /// Whether `value` is `!Ref <name>`.
    fn is_ref(value: &serde_yaml_ng::Value, name: &str) -> bool {
        tagged(value).is_some_and(|(tag, target)| tag == "Ref" && target.as_str() == Some(name))
    }

    /// `!If [HasKmsKey, then, else]` as (then, else).
    fn if_kms_key(value: &serde_yaml_ng::Value) -> Option<(&serde_yaml_ng::Value, &serde_yaml_ng::Value)> {
        let (tag, args) = tagged(value)?;
        let args = args.as_sequence()?;
        (tag == "If" && args.len() == 3 && args[0].as_str() == Some(KMS_KEY_CONDITION))
            .then(|| (&args[1], &args[2]))
    }

    fn resources(template: &serde_yaml_ng::Value) -> Vec<(String, &serde_yaml_ng::Value)> {
        template["Resources"]
            .as_mapping()
            .expect("Resources")
            .iter()
            .map(|(id, r)| (id.as_str().unwrap_or_default().to_owned(), r))
            .collect()
    }

    #[test]
    fn the_kms_key_is_an_optional_parameter_with_its_condition() {
        let template = rendered();
        assert_eq!(template["Parameters"][KMS_KEY_PARAMETER]["Default"].as_str(), Some(""), "optional");
        assert!(template["Conditions"].get(KMS_KEY_CONDITION).is_some(), "{KMS_KEY_CONDITION}");
    }

    #[test]
    fn what_stores_data_is_encrypted_and_with_the_kms_key_when_one_is_given() {
        let template = rendered();
        let mut seen = std::collections::BTreeMap::<String, usize>::new();
        for (id, resource) in resources(&template) {
            let kind = resource["Type"].as_str().unwrap_or_default().to_owned();
            let props = &resource["Properties"];
            let key = match kind.as_str() {
                "AWS::SQS::Queue" => {
                    // SQS's own keys without one: SSE-SQS, never unencrypted.
                    let (with, without) = if_kms_key(&props["SqsManagedSseEnabled"]).expect(&id);
                    assert!(is_ref(with, "AWS::NoValue") && without.as_bool() == Some(true), "{id}");
                    &props["KmsMasterKeyId"]
                }
                "AWS::DynamoDB::Table" => &props["SSESpecification"]["KMSMasterKeyId"],
                "AWS::Logs::LogGroup" => &props["KmsKeyId"],
                "AWS::SNS::Topic" => &props["KmsMasterKeyId"],
                _ => continue,
            };
            let (with, without) = if_kms_key(key).unwrap_or_else(|| panic!("{id}: {key:?}"));
            assert!(is_ref(with, KMS_KEY_PARAMETER) && is_ref(without, "AWS::NoValue"), "{id}: {key:?}");
            *seen.entry(kind).or_default() += 1;
        }
        assert_eq!(seen.len(), 4, "queues, tables, log groups and the alarm topic: {seen:?}");
    }

    #[test]
    fn every_checkov_skip_names_a_check_and_says_why() {
        let template = rendered();
        let mut skipped = std::collections::BTreeMap::<(String, Vec<String>), usize>::new();
        for (id, resource) in resources(&template) {
            let skips = resource["Metadata"]["checkov"]["skip"].as_sequence().cloned().unwrap_or_default();
            for skip in &skips {
                let check = skip["id"].as_str().unwrap_or_default();
                assert!(check.starts_with("CKV_AWS_"), "{id}: {skip:?}");
                assert!(skip["comment"].as_str().is_some_and(|why| why.len() > 80), "{id}: {check} says why");
            }
            if !skips.is_empty() {
                let kind = resource["Type"].as_str().unwrap_or_default().to_owned();
                let ids = skips.iter().filter_map(|s| s["id"].as_str().map(str::to_owned)).collect();
                *skipped.entry((kind, ids)).or_default() += 1;
            }
        }
        let kinds: Vec<(&str, Vec<&str>)> = skipped
            .keys()
            .map(|(kind, ids)| (kind.as_str(), ids.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("AWS::SNS::Topic", vec!["CKV_AWS_26"]),
                (
                    "AWS::Serverless::Function",
                    vec!["CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"]
                ),
            ],
            "what is skipped, by kind: each is the same for every resource of its kind"
        );
    }

    #[test]
    fn logical_ids_are_pascal_case() {
        assert_eq!(logical_id("share_product_text_message"), "ShareProductTextMessage");
        assert_eq!(logical_id("by_status_activity"), "ByStatusActivity");
    }
}
