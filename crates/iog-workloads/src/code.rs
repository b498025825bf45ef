//! What the workloads that run users' own code share: the files a job
//! names ([`FileRef`]), their arguments and environment, one task per input
//! file or a task count, and how task outputs (a [`Bundle`] of `/out` and
//! standard output) become the job's artifacts. `wasm` and `process` use it.

use std::collections::{BTreeMap, BTreeSet};

use iog_types::BlobId;
use serde::{Deserialize, Serialize};

use crate::bundle::Bundle;
use crate::task::MAX_TASKS;
use crate::{Artifact, AssembleError, SpecError, check};

/// Most files `inputs` or `files` may list.
pub const CODE_FILES_MAX: usize = 10_000;
/// Largest program, module or data file a job may name, in bytes.
pub const CODE_FILE_BYTES_MAX: u64 = 256 << 20;
/// Most arguments `args` may hold.
pub const CODE_ARGS_MAX: usize = 256;
/// Most variables `env` may hold.
pub const CODE_ENV_MAX: usize = 256;
/// Longest argument, variable name or value, in bytes.
pub const CODE_TEXT_BYTES_MAX: usize = 4_096;
/// Longest file name a task sees in `/in`, in bytes.
pub const CODE_FILE_NAME_BYTES_MAX: usize = 255;

/// A file a job names: a path in the job file, a content address once
/// `iog job submit` has uploaded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FileRef {
    /// A path relative to the job file's folder.
    Path(String),
    /// The uploaded file: the name the task sees and its blob.
    Blob {
        /// The file's name (its path's last part).
        name: String,
        /// Its content address.
        blob: BlobId,
    },
}

impl FileRef {
    /// The file's name and blob, or an error naming `field` when it is
    /// still a path.
    pub(crate) fn resolved(&self, field: &str) -> Result<(&str, BlobId), SpecError> {
        match self {
            FileRef::Blob { name, blob } => Ok((name, *blob)),
            FileRef::Path(path) => Err(SpecError::invalid(
                field,
                format!(
                    "is the path {path:?}, which only the submitter's machine can read; submit the job file \
                     with `iog job submit`, which uploads the file and sends its content address"
                ),
            )),
        }
    }

    /// The name a task sees: the path's last part, or the uploaded name.
    pub fn name(&self) -> &str {
        match self {
            FileRef::Path(path) => path.rsplit(['/', '\\']).next().unwrap_or(path),
            FileRef::Blob { name, .. } => name,
        }
    }
}

/// The fields a code workload's section shares, borrowed for checks.
pub(crate) struct CodeFields<'a> {
    /// The section's name (`wasm`), which error fields start with.
    pub(crate) section: &'static str,
    pub(crate) args: &'a [String],
    pub(crate) env: &'a BTreeMap<String, String>,
    pub(crate) tasks: Option<u64>,
    pub(crate) inputs: &'a [FileRef],
    pub(crate) files: &'a [FileRef],
}

impl CodeFields<'_> {
    /// How many tasks the job splits into: one per input, else `tasks`.
    pub(crate) fn n_tasks(&self) -> u64 {
        if self.inputs.is_empty() { self.tasks.unwrap_or(1) } else { self.inputs.len() as u64 }
    }

    /// Checks the shared fields; `extra` names files besides `inputs` and
    /// `files` (a wasm module), with their fields.
    pub(crate) fn validate(&self, extra: &[(String, &FileRef)]) -> Result<(), SpecError> {
        let section = self.section;
        match (self.tasks, self.inputs.is_empty()) {
            (Some(_), false) => {
                return Err(SpecError::invalid(
                    format!("{section}.tasks"),
                    format!(
                        "cannot be set together with {section}.inputs, which makes one task per file; remove \
                         one of them"
                    ),
                ));
            }
            (Some(tasks), true) => check::between(&format!("{section}.tasks"), tasks, 1, MAX_TASKS)?,
            (None, _) => {}
        }
        for (field, list) in [("inputs", self.inputs), ("files", self.files)] {
            if list.len() > CODE_FILES_MAX {
                return Err(SpecError::invalid(
                    format!("{section}.{field}"),
                    format!("lists at most {CODE_FILES_MAX} files, got {}", list.len()),
                ));
            }
        }
        if self.args.len() > CODE_ARGS_MAX {
            return Err(SpecError::invalid(
                format!("{section}.args"),
                format!("holds at most {CODE_ARGS_MAX} arguments"),
            ));
        }
        for (i, arg) in self.args.iter().enumerate() {
            check_text(&format!("{section}.args[{i}]"), arg)?;
        }
        if self.env.len() > CODE_ENV_MAX {
            return Err(SpecError::invalid(
                format!("{section}.env"),
                format!("holds at most {CODE_ENV_MAX} variables"),
            ));
        }
        for (name, value) in self.env {
            let field = format!("{section}.env.{name}");
            let good_name = !name.is_empty()
                && name.len() <= CODE_TEXT_BYTES_MAX
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !name.as_bytes()[0].is_ascii_digit();
            if !good_name {
                return Err(SpecError::invalid(
                    field,
                    "is not a variable name (letters, digits and _, not first a digit)",
                ));
            }
            if name.starts_with("IOG_") {
                return Err(SpecError::invalid(field, "starts with IOG_, which is kept for the variables iog sets"));
            }
            check_text(&field, value)?;
        }
        let listed = self.inputs.iter().enumerate().map(|(i, file)| (format!("{section}.inputs[{i}]"), file));
        let listed =
            listed.chain(self.files.iter().enumerate().map(|(i, file)| (format!("{section}.files[{i}]"), file)));
        for (field, file) in extra.iter().map(|(field, file)| (field.clone(), *file)).chain(listed) {
            let name = file.name();
            if let Some(why) = bad_file_name(name) {
                return Err(SpecError::invalid(field, format!("names the file {name:?}, which {why}")));
            }
        }
        // What one task sees at /in must not hold two files of one name.
        let shared: Vec<&str> = self.files.iter().map(FileRef::name).collect();
        for (i, name) in shared.iter().enumerate() {
            if shared[..i].contains(name) {
                return Err(SpecError::invalid(
                    format!("{section}.files[{i}]"),
                    format!(
                        "is named {name:?} like another of {section}.files; each task sees them in one folder, /in"
                    ),
                ));
            }
        }
        for (i, input) in self.inputs.iter().enumerate() {
            let name = input.name();
            if shared.contains(&name) {
                return Err(SpecError::invalid(
                    format!("{section}.inputs[{i}]"),
                    format!("is named {name:?} like one of {section}.files; each task sees both in one folder, /in"),
                ));
            }
        }
        Ok(())
    }

    /// Each task's files at `/in`, by name and blob: the shared files,
    /// then the task's own input.
    pub(crate) fn task_files(&self) -> Result<Vec<Vec<(String, BlobId)>>, SpecError> {
        let section = self.section;
        let mut shared = Vec::with_capacity(self.files.len());
        for (i, file) in self.files.iter().enumerate() {
            let (name, blob) = file.resolved(&format!("{section}.files[{i}]"))?;
            shared.push((name.to_owned(), blob));
        }
        let mut own = Vec::with_capacity(self.inputs.len());
        for (i, file) in self.inputs.iter().enumerate() {
            let (name, blob) = file.resolved(&format!("{section}.inputs[{i}]"))?;
            own.push((name.to_owned(), blob));
        }
        Ok((0..self.n_tasks() as usize)
            .map(|task_idx| {
                let mut files = shared.clone();
                files.extend(own.get(task_idx).cloned());
                files
            })
            .collect())
    }
}

/// The blobs of `refs`, each once, in order; an error names the first
/// that is still a path.
pub(crate) fn assets<'a>(refs: impl Iterator<Item = (String, &'a FileRef)>) -> Result<Vec<BlobId>, SpecError> {
    let mut blobs = Vec::new();
    for (field, file) in refs {
        let (_, blob) = file.resolved(&field)?;
        if !blobs.contains(&blob) {
            blobs.push(blob);
        }
    }
    Ok(blobs)
}

/// Why `name` cannot be a file in `/in`, if it cannot.
pub(crate) fn bad_file_name(name: &str) -> Option<&'static str> {
    if name.is_empty() || name == "." || name == ".." {
        Some("is not a file name")
    } else if name.len() > CODE_FILE_NAME_BYTES_MAX {
        Some("is longer than 255 bytes")
    } else if name.contains(['/', '\\', '\0']) {
        Some("holds a slash or a NUL character")
    } else {
        None
    }
}

/// Checks an argument or a variable's value.
pub(crate) fn check_text(field: &str, value: &str) -> Result<(), SpecError> {
    if value.len() > CODE_TEXT_BYTES_MAX || value.contains('\0') {
        return Err(SpecError::invalid(
            field,
            format!("must be at most {CODE_TEXT_BYTES_MAX} bytes without NUL characters"),
        ));
    }
    Ok(())
}

/// Each task's files as artifacts named `task-NNNNNN-<path>` (a `/` in a
/// path becomes `-`), and its standard output as `task-NNNNNN-stdout`
/// when there is any. A task whose names would clash with another
/// artifact's is given as its whole bundle, `task-NNNNNN.tar`, instead.
/// A bundle larger than `max_bytes` is refused.
pub(crate) fn assemble_bundles(outputs: &[Vec<u8>], max_bytes: u64) -> Result<Vec<Artifact>, AssembleError> {
    let mut artifacts = Vec::new();
    let mut names = BTreeSet::new();
    for (task_idx, output) in outputs.iter().enumerate() {
        let bundle = Bundle::from_tar(output, max_bytes)
            .map_err(|err| AssembleError::BadOutput { task_idx, reason: err.to_string() })?;
        let prefix = format!("task-{task_idx:06}");
        let mut files: Vec<(String, &[u8])> =
            bundle.out_files().map(|(path, bytes)| (format!("{prefix}-{}", path.replace('/', "-")), bytes)).collect();
        if !bundle.stdout().is_empty() {
            files.push((format!("{prefix}-stdout"), bundle.stdout()));
        }
        let mut own = BTreeSet::new();
        let clash = files.iter().any(|(name, _)| names.contains(name) || !own.insert(name.clone()));
        if clash {
            let name = format!("{prefix}.tar");
            names.insert(name.clone());
            artifacts.push(Artifact { name, media_type: "application/x-tar".to_owned(), bytes: output.clone() });
            continue;
        }
        for (name, bytes) in files {
            names.insert(name.clone());
            let media_type = media_type(&name, bytes).to_owned();
            artifacts.push(Artifact { name, media_type, bytes: bytes.to_vec() });
        }
    }
    Ok(artifacts)
}

/// A file's media type, from its name where that is telling, else text or
/// bytes by whether it is UTF-8.
pub(crate) fn media_type(name: &str, bytes: &[u8]) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase());
    match ext.as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("exr") => "image/x-exr",
        Some("json") => "application/json",
        Some("csv") => "text/csv; charset=utf-8",
        _ if std::str::from_utf8(bytes).is_ok() => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
