//! `Option<Vec<u8>>` as an optional base64 string in JSON messages, and
//! `Vec<u8>` as a required one ([`required`]).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serializer};

pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, serializer: S) -> Result<S::Ok, S::Error> {
    match bytes {
        Some(bytes) => serializer.serialize_some(&STANDARD.encode(bytes)),
        None => serializer.serialize_none(),
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<u8>>, D::Error> {
    let text: Option<String> = Option::deserialize(deserializer)?;
    text.map(|text| STANDARD.decode(text).map_err(serde::de::Error::custom)).transpose()
}

/// `Vec<u8>` as a base64 string.
pub mod required {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use iog_types::{BlobId, JobId, LeaseToken, TaskId};

    use crate::stream::CoordinatorMessage;

    #[test]
    fn inline_bytes_round_trip_and_stay_out_when_absent() {
        let task_id = TaskId::new(JobId(1), 2);
        let with = CoordinatorMessage::Assign {
            task_id,
            token: LeaseToken(3),
            input: BlobId::of(b"abc"),
            input_bytes: Some(b"abc".to_vec()),
        };
        let text = serde_json::to_string(&with).unwrap();
        assert!(text.contains("\"input_bytes\":\"YWJj\""), "{text}");
        assert_eq!(serde_json::from_str::<CoordinatorMessage>(&text).unwrap(), with);
        let without =
            CoordinatorMessage::Assign { task_id, token: LeaseToken(3), input: BlobId::of(b"abc"), input_bytes: None };
        let text = serde_json::to_string(&without).unwrap();
        assert!(!text.contains("input_bytes"), "{text}");
        assert_eq!(serde_json::from_str::<CoordinatorMessage>(&text).unwrap(), without);
    }
}
