//! The manifest of a sealed job: the blob ids of its task inputs, in task
//! order, uploaded as one blob that the job's spec names. Keeping the list
//! out of the spec keeps the spec small for a job of a million tasks.

use iog_types::BlobId;

/// Bytes per task in a manifest: one blake3 blob id.
pub const MANIFEST_ENTRY_BYTES: usize = 32;

/// The manifest listing `inputs`, task 0 first.
pub fn encode_manifest(inputs: &[BlobId]) -> Vec<u8> {
    inputs.iter().flat_map(|blob| blob.0).collect()
}

/// The inputs a manifest lists, when it lists exactly `n_tasks` of them.
pub fn decode_manifest(bytes: &[u8], n_tasks: u32) -> Result<Vec<BlobId>, String> {
    let expected = n_tasks as usize * MANIFEST_ENTRY_BYTES;
    if bytes.len() != expected {
        return Err(format!(
            "the manifest is {} bytes; {n_tasks} tasks take {expected} ({MANIFEST_ENTRY_BYTES} per input blob id)",
            bytes.len()
        ));
    }
    Ok(bytes
        .chunks_exact(MANIFEST_ENTRY_BYTES)
        .map(|entry| BlobId(entry.try_into().expect("chunks are one blob id long")))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_round_trip_and_wrong_lengths_are_refused() {
        let inputs = vec![BlobId::of(b"a"), BlobId::of(b"b"), BlobId::of(b"c")];
        let bytes = encode_manifest(&inputs);
        assert_eq!(bytes.len(), 96);
        assert_eq!(decode_manifest(&bytes, 3).expect("decodes"), inputs);
        let err = decode_manifest(&bytes, 4).expect_err("one short");
        assert!(err.contains("4 tasks take 128"), "{err}");
        assert!(decode_manifest(&bytes[..95], 3).is_err());
    }
}
