use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An identifier could not be parsed from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id {text:?}: {reason}")]
pub struct IdParseError {
    pub kind: &'static str,
    pub text: String,
    pub reason: &'static str,
}

/// A job, chosen at random by the coordinator when the job is accepted, so
/// that ids cannot be enumerated by counting.
///
/// Written as `j-` followed by 16 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "j-{:016x}", self.0)
    }
}

impl FromStr for JobId {
    type Err = IdParseError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason| IdParseError { kind: "job", text: text.to_owned(), reason };
        let hex = text.strip_prefix("j-").ok_or_else(|| err("a job id starts with `j-`"))?;
        if hex.len() != 16 {
            return Err(err("a job id has 16 hex digits after `j-`"));
        }
        u64::from_str_radix(hex, 16).map(JobId).map_err(|_| err("a job id has 16 hex digits after `j-`"))
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> String {
        id.to_string()
    }
}

impl TryFrom<String> for JobId {
    type Error = IdParseError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

/// One task of a job: the job and the task's index in the job's plan.
///
/// Written as `j-<hex>/<idx>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct TaskId {
    pub job_id: JobId,
    pub task_idx: u32,
}

impl TaskId {
    pub fn new(job_id: JobId, task_idx: u32) -> TaskId {
        TaskId { job_id, task_idx }
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.job_id, self.task_idx)
    }
}

impl FromStr for TaskId {
    type Err = IdParseError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason| IdParseError { kind: "task", text: text.to_owned(), reason };
        let (job, idx) = text.split_once('/').ok_or_else(|| err("a task id is `<job id>/<index>`"))?;
        let job_id = job.parse().map_err(|_| err("the part before `/` is not a job id"))?;
        let task_idx = idx.parse().map_err(|_| err("the part after `/` is not a task index"))?;
        Ok(TaskId { job_id, task_idx })
    }
}

impl From<TaskId> for String {
    fn from(id: TaskId) -> String {
        id.to_string()
    }
}

impl TryFrom<String> for TaskId {
    type Error = IdParseError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

/// A worker, named by its ed25519 public key written in base58. The id is
/// derived from the key, so a worker cannot claim another worker's id without
/// that worker's private key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WorkerId(pub String);

impl WorkerId {
    /// The first characters of the id, enough to tell workers apart on screen.
    pub fn short(&self) -> &str {
        let end = self.0.char_indices().nth(8).map_or(self.0.len(), |(i, _)| i);
        &self.0[..end]
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A content address: the blake3 hash of a blob's bytes, written as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct BlobId(pub [u8; 32]);

impl BlobId {
    /// The id of `bytes`.
    pub fn of(bytes: &[u8]) -> BlobId {
        BlobId(*blake3::hash(bytes).as_bytes())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({})", &self.to_hex()[..12])
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl FromStr for BlobId {
    type Err = IdParseError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason| IdParseError { kind: "blob", text: text.to_owned(), reason };
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| err("a blob id is 64 hex digits"))?;
        Ok(BlobId(bytes))
    }
}

impl From<BlobId> for String {
    fn from(id: BlobId) -> String {
        id.to_hex()
    }
}

impl TryFrom<String> for BlobId {
    type Error = IdParseError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

/// A fencing token. Every lease of a task gets a larger token than the lease
/// before it, so a result carrying an older token is recognisably stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LeaseToken(pub u64);

impl fmt::Display for LeaseToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        let job = JobId(0x0123_4567_89ab_cdef);
        assert_eq!(job.to_string(), "j-0123456789abcdef");
        assert_eq!(job.to_string().parse::<JobId>(), Ok(job));
        let task = TaskId::new(job, 42);
        assert_eq!(task.to_string().parse::<TaskId>(), Ok(task));
        let blob = BlobId::of(b"hello");
        assert_eq!(blob.to_string().parse::<BlobId>(), Ok(blob));
    }

    #[test]
    fn bad_ids_say_what_is_expected() {
        let err = "x-12".parse::<JobId>().unwrap_err();
        assert_eq!(err.to_string(), "invalid job id \"x-12\": a job id starts with `j-`");
        assert!("j-0123456789abcdef/x".parse::<TaskId>().is_err());
        assert!("zz".parse::<BlobId>().is_err());
    }
}
