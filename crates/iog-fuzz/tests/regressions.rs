//! Every input saved under `fuzz/corpus/<target>/` (the seeds, and each
//! input that once crashed a target, kept there by name) runs through its
//! target here, on stable, in `cargo test`.

use std::path::PathBuf;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut inputs: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("read {}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "{} holds no inputs", dir.display());
    inputs
}

fn run(target: &str, body: fn(&[u8])) {
    for (path, bytes) in inputs(target) {
        let outcome = std::panic::catch_unwind(|| body(&bytes));
        assert!(outcome.is_ok(), "{} crashed {target}", path.display());
    }
}

#[test]
fn worker_message_corpus() {
    run("worker_message", iog_fuzz::worker_message);
}

#[test]
fn job_spec_corpus() {
    run("job_spec", iog_fuzz::job_spec);
}

#[test]
fn blob_upload_corpus() {
    run("blob_upload", iog_fuzz::blob_upload);
}
