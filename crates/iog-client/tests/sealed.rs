//! Sealed jobs on the submitter's side, without a coordinator: sealing,
//! the wire spec, the worker's view, opening and assembling, the record
//! file, and checking key requests.

use iog_client::sealed::{self, PreparedJob, SealedError, SealedRecord};
use iog_host::Identity;
use iog_proto::api::{KeyRequest, TaskStatus};
use iog_seal::{JobSecret, Purpose, SealSecret, WrappedKey};
use iog_types::{BlobId, JobId, TaskId, TaskState};
use iog_workloads::JobSpec;

const MARKER: &str = "plaintext-marker-7f3a";

fn hash_spec() -> JobSpec {
    let text = format!(
        "[job]\nname = \"sealed-hash\"\nworkload = \"hash\"\nsealed = true\n\n\
         [hash]\nalgorithm = \"blake3\"\ndata = \"{MARKER}\"\nnonce_count = 20000\nnonces_per_task = 5000\n\
         difficulty_bits = 6\n"
    );
    iog_workloads::parse_job_file_with(&text, &mut |_: &str| Err("no scene files".to_owned())).expect("parses")
}

fn noop_spec() -> JobSpec {
    let text = "[job]\nname = \"sealed-noop\"\nworkload = \"noop\"\nsealed = true\n\n[noop]\nn_tasks = 5\n\n\
                [verify]\npolicy = \"replicate\"\nreplicas = 2\n";
    iog_workloads::parse_job_file_with(text, &mut |_: &str| Err("no scene files".to_owned())).expect("parses")
}

fn render_spec() -> JobSpec {
    let mut spec = iog_workloads::demo_job();
    spec.job.sealed = true;
    let render = spec.render.as_mut().expect("the demo renders");
    render.width = 40;
    render.height = 24;
    render.tile_size = 16;
    render.samples_per_pixel = 2;
    render.max_bounces = 3;
    spec.validate().expect("still valid");
    spec
}

/// What a plain job gives: plan, run every task, assemble.
fn plain_artifacts(spec: &JobSpec) -> Vec<iog_workloads::Artifact> {
    let workload = spec.workload().unwrap();
    let inputs = iog_workloads::plan(&workload).unwrap();
    let outputs: Vec<Vec<u8>> = inputs.iter().map(|input| iog_workloads::run_task(input).unwrap().output).collect();
    iog_workloads::assemble(&workload, &outputs, &vec![7; outputs.len()]).unwrap()
}

/// A worker's signed request for the key of `task_idx`.
fn key_request(worker: &Identity, job_id: JobId, task_idx: u32) -> KeyRequest {
    let worker_id = worker.worker_id();
    let seal_key = worker.seal_secret().public();
    let signature = worker.sign(&iog_seal::seal_key_signing_message(&worker_id.0, &seal_key));
    KeyRequest {
        task_id: TaskId::new(job_id, task_idx),
        token: 40 + u64::from(task_idx),
        worker_id,
        seal_key: seal_key.to_hex(),
        seal_key_signature: hex::encode(signature),
    }
}

/// The worker's side: gets its key through a grant, opens the input from
/// the coordinator, runs the task and seals the output.
fn work(record: &SealedRecord, prepared: &PreparedJob, worker: &Identity, job_id: JobId, task_idx: u32) -> Vec<u8> {
    let grant = sealed::grant_for(record, job_id, &key_request(worker, job_id, task_idx)).expect("granted");
    let context = iog_seal::task_context(job_id.0, task_idx, &worker.worker_id().0);
    let key = iog_seal::unwrap(&worker.seal_secret(), &context, &WrappedKey::from_hex(&grant.wrapped).unwrap())
        .expect("the grant unwraps for its worker");
    let n_tasks = prepared.inputs.len() as u32;
    let manifest = iog_proto::manifest::decode_manifest(&prepared.manifest, n_tasks).unwrap();
    let input = &prepared.inputs[(task_idx % n_tasks) as usize];
    assert_eq!(BlobId::of(input), manifest[(task_idx % n_tasks) as usize]);
    let plain = key.open(Purpose::Input, input).expect("the input opens with the granted key");
    key.seal(Purpose::Output, &iog_workloads::run_task(&plain).expect("runs").output)
}

fn check_sealed_round_trip(spec: &JobSpec, marker: Option<&str>) {
    let prepared = sealed::prepare(spec).expect("prepares");
    let plain_inputs = iog_workloads::plan(&spec.workload().unwrap()).unwrap();
    assert_eq!(prepared.inputs.len(), plain_inputs.len());
    assert_eq!(prepared.record.n_tasks() as usize, plain_inputs.len());
    for (sealed_input, plain) in prepared.inputs.iter().zip(&plain_inputs) {
        assert!(iog_seal::is_sealed(sealed_input));
        assert!(!contains(sealed_input, &plain[..plain.len().min(16)]), "the input leaks its plaintext");
        if let Some(marker) = marker {
            assert!(contains(plain, marker.as_bytes()), "the marker is in the plaintext");
            assert!(!contains(sealed_input, marker.as_bytes()), "the marker leaks");
        }
    }

    // The wire spec: no workload section, accepted by the coordinator's parser.
    let wire_json = serde_json::to_vec(&prepared.wire).unwrap();
    let wire_value: serde_json::Value = serde_json::from_slice(&wire_json).unwrap();
    for section in ["render", "hash", "noop"] {
        assert!(wire_value.get(section).is_none_or(serde_json::Value::is_null), "{section} in {wire_value}");
    }
    if let Some(marker) = marker {
        assert!(!contains(&wire_json, marker.as_bytes()));
    }
    let parsed = iog_workloads::parse_job_json(&wire_json).expect("the coordinator accepts the wire spec");
    let sealed_section = parsed.sealed.expect("a [sealed] section");
    assert_eq!(sealed_section.manifest, BlobId::of(&prepared.manifest));
    assert_eq!(sealed_section.manifest, prepared.record.manifest());
    assert_eq!(sealed_section.n_tasks as usize, plain_inputs.len());

    // Workers run the tasks; the client opens and assembles.
    let job_id = JobId(0x1234_5678_9abc_def0);
    let mut record = prepared.record.clone();
    record.set_job_id(job_id);
    let worker = Identity::from_seed([3; 32]);
    let sealed_outputs: Vec<(TaskId, BlobId, Vec<u8>)> = (0..record.n_tasks())
        .map(|task_idx| {
            let output = work(&record, &prepared, &worker, job_id, task_idx);
            assert!(iog_seal::is_sealed(&output));
            (TaskId::new(job_id, task_idx), BlobId::of(&output), output)
        })
        .collect();
    let durations = vec![7; sealed_outputs.len()];
    let artifacts = sealed::open_and_assemble(&record, &sealed_outputs, &durations).expect("opens and assembles");
    assert_eq!(artifacts, plain_artifacts(spec));
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|window| window == needle)
}

#[test]
fn sealed_hash_job_round_trips_to_the_plain_artifacts() {
    check_sealed_round_trip(&hash_spec(), Some(MARKER));
}

#[test]
fn sealed_noop_job_round_trips_to_the_plain_artifacts() {
    check_sealed_round_trip(&noop_spec(), None);
}

#[test]
fn sealed_render_job_round_trips_to_the_plain_artifacts() {
    check_sealed_round_trip(&render_spec(), Some("\"samples_per_pixel\""));
}

#[test]
fn only_sealed_job_files_are_prepared() {
    let mut plain = hash_spec();
    plain.job.sealed = false;
    assert!(matches!(sealed::prepare(&plain), Err(SealedError::NotSealed)));
    let prepared = sealed::prepare(&hash_spec()).unwrap();
    assert!(matches!(sealed::prepare(&prepared.wire), Err(SealedError::AlreadyWire)));
}

#[test]
fn outputs_of_another_task_or_tampered_ones_do_not_open() {
    let prepared = sealed::prepare_with_secret(&noop_spec(), JobSecret::from_bytes([5; 32])).unwrap();
    let record = prepared.record;
    let job_id = JobId(9);
    let output = |task_idx: u32| record.task_key(task_idx).seal(Purpose::Output, b"");
    let mut outputs: Vec<_> = (0..5).map(|i| (TaskId::new(job_id, i), BlobId::of(&output(i)), output(i))).collect();
    sealed::open_and_assemble(&record, &outputs, &[0; 5]).expect("the right outputs open");
    outputs[2].2 = output(3);
    let err = sealed::open_and_assemble(&record, &outputs, &[0; 5]).unwrap_err();
    assert!(matches!(err, SealedError::OpenOutput { task_id, .. } if task_id.task_idx == 2), "{err}");
    outputs[2].2 = record.task_key(2).seal(Purpose::Input, b"");
    assert!(sealed::open_and_assemble(&record, &outputs, &[0; 5]).is_err());
}

#[test]
fn record_files_round_trip_privately_and_atomically() {
    let wallet_dir = tempfile::tempdir().unwrap();
    let prepared = sealed::prepare(&render_spec()).unwrap();
    let mut record = prepared.record.clone();

    let pending = record.save(wallet_dir.path()).expect("saves pending");
    assert_eq!(pending, SealedRecord::pending_path(wallet_dir.path(), record.manifest()));
    assert!(pending.file_name().unwrap().to_str().unwrap().starts_with("pending-"));
    let read = SealedRecord::read(&pending).unwrap();
    assert_eq!(read.job_id(), None);
    assert_eq!(read.secret().as_bytes(), record.secret().as_bytes());
    assert_eq!(read.spec(), record.spec());

    let job_id = JobId(0xfeed);
    record.set_job_id(job_id);
    let path = record.save(wallet_dir.path()).expect("saves by id");
    record.remove_pending(wallet_dir.path()).unwrap();
    assert_eq!(path, wallet_dir.path().join("sealed-jobs").join(format!("{job_id}.json")));
    assert!(!pending.exists());
    let entries: Vec<_> = std::fs::read_dir(wallet_dir.path().join("sealed-jobs")).unwrap().collect();
    assert_eq!(entries.len(), 1, "no temp file is left behind");

    let loaded = SealedRecord::load(wallet_dir.path(), job_id).expect("loads");
    assert_eq!(loaded.job_id(), Some(job_id));
    assert_eq!(loaded.secret().as_bytes(), record.secret().as_bytes());
    assert_eq!(loaded.spec(), record.spec());
    assert_eq!(loaded.manifest(), record.manifest());
    assert_eq!(loaded.n_tasks(), record.n_tasks());
    assert_eq!(loaded.created_ms(), record.created_ms());
    assert_eq!(loaded.task_key(1), record.task_key(1));

    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(json["format"], sealed::RECORD_FORMAT);
    assert_eq!(json["job_id"], job_id.to_string());
    assert_eq!(json["secret"], record.secret().to_hex());
    assert_eq!(json["n_tasks"], record.n_tasks());
    assert!(json["spec"]["render"].is_object(), "the full spec is kept");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode & 0o077, 0, "the folder is private: {dir_mode:o}");
    }

    let missing = JobId(0xdead);
    let err = SealedRecord::load(wallet_dir.path(), missing).unwrap_err();
    assert!(matches!(err, SealedError::RecordMissing { .. }));
    let text = err.to_string();
    assert!(text.contains("is sealed and its key is kept where it was submitted"), "{text}");
    assert!(text.contains(&format!("{missing}.json")), "{text}");

    // A record of one job under another's name is refused.
    std::fs::copy(&path, SealedRecord::path_for(wallet_dir.path(), missing)).unwrap();
    assert!(matches!(SealedRecord::load(wallet_dir.path(), missing), Err(SealedError::RecordOfOtherJob { .. })));
    // A corrupt record says so.
    std::fs::write(&path, b"{ not json").unwrap();
    let err = SealedRecord::load(wallet_dir.path(), job_id).unwrap_err();
    assert!(matches!(err, SealedError::RecordUnreadable { .. }), "{err}");
}

#[test]
fn key_requests_with_a_bad_signature_are_refused() {
    let prepared = sealed::prepare(&noop_spec()).unwrap();
    let mut record = prepared.record;
    let job_id = JobId(77);
    record.set_job_id(job_id);
    let worker = Identity::from_seed([1; 32]);
    let other = Identity::from_seed([2; 32]);

    sealed::grant_for(&record, job_id, &key_request(&worker, job_id, 0)).expect("a good request is granted");

    // Another seal key, substituted for the worker's own.
    let mut substituted = key_request(&worker, job_id, 0);
    substituted.seal_key = other.seal_secret().public().to_hex();
    let err = sealed::grant_for(&record, job_id, &substituted).unwrap_err();
    assert!(matches!(err, SealedError::BadKeyRequest { .. }), "{err}");
    assert!(err.to_string().contains("not signed by the worker"), "{err}");

    // The other worker's signature, under this worker's id.
    let mut forged = key_request(&other, job_id, 0);
    forged.worker_id = worker.worker_id();
    assert!(sealed::grant_for(&record, job_id, &forged).is_err());

    // A signature that is not one.
    let mut garbled = key_request(&worker, job_id, 0);
    garbled.seal_key_signature = "zz".to_owned();
    assert!(sealed::grant_for(&record, job_id, &garbled).is_err());
    let mut flipped = key_request(&worker, job_id, 0);
    let mut bytes = hex::decode(&flipped.seal_key_signature).unwrap();
    bytes[5] ^= 1;
    flipped.seal_key_signature = hex::encode(bytes);
    assert!(sealed::grant_for(&record, job_id, &flipped).is_err());

    // A task of another job.
    let elsewhere = key_request(&worker, JobId(78), 0);
    assert!(sealed::grant_for(&record, job_id, &elsewhere).is_err());
    assert!(sealed::grant_for(&record, JobId(78), &elsewhere).is_err(), "the record is job 77's");
}

#[test]
fn replicas_get_their_tasks_key_wrapped_for_their_own_index() {
    let seed = [4; 32];
    let worker = Identity::from_seed(seed);
    let prepared = sealed::prepare(&noop_spec()).unwrap();
    let mut record = prepared.record;
    let job_id = JobId(0xabc);
    record.set_job_id(job_id);
    let n_tasks = record.n_tasks();
    let replica_idx = 3 + n_tasks; // replica 1 of task 3

    let grant = sealed::grant_for(&record, job_id, &key_request(&worker, job_id, replica_idx)).unwrap();
    assert_eq!(grant.task_id, TaskId::new(job_id, replica_idx));
    assert_eq!(grant.token, 40 + u64::from(replica_idx));
    assert_eq!(grant.worker_id, worker.worker_id());
    let wrapped = WrappedKey::from_hex(&grant.wrapped).unwrap();
    let context = iog_seal::task_context(job_id.0, replica_idx, &worker.worker_id().0);
    let key = iog_seal::unwrap(&SealSecret::derive(&seed), &context, &wrapped).expect("unwraps");
    assert_eq!(key, record.secret().task_key(3));
    assert_eq!(key, record.task_key(replica_idx));

    // Bound to the replica's index and to the worker.
    let plan_context = iog_seal::task_context(job_id.0, 3, &worker.worker_id().0);
    assert!(iog_seal::unwrap(&SealSecret::derive(&seed), &plan_context, &wrapped).is_err());
    assert!(iog_seal::unwrap(&SealSecret::derive(&[5; 32]), &context, &wrapped).is_err());
}

fn task_status(job_id: JobId, task_idx: u32, output: Option<BlobId>, accepted: Option<BlobId>) -> TaskStatus {
    TaskStatus {
        task_id: TaskId::new(job_id, task_idx),
        state: TaskState::Committed,
        attempts: 1,
        holder: None,
        last_error: None,
        committed_by: Some(Identity::from_seed([task_idx as u8; 32]).worker_id()),
        output,
        duration_ms: Some(100 + u64::from(task_idx)),
        device: output.map(|_| "cpu0".to_owned()),
        price_io_per_hour: None,
        verdict: output.map(|_| "valid".to_owned()),
        accepted_output: accepted,
    }
}

#[test]
fn accepted_outputs_take_the_accepted_blob_and_the_run_that_returned_it() {
    let job_id = JobId(1);
    let (good, bad) = (BlobId::of(b"good"), BlobId::of(b"bad"));
    // Task 0 was right; task 1 was wrong, and its replica (index 1 + 3) right.
    let mut tasks = vec![
        task_status(job_id, 0, Some(good), Some(good)),
        task_status(job_id, 1, Some(bad), Some(good)),
        task_status(job_id, 2, Some(bad), Some(bad)),
        task_status(job_id, 4, Some(good), None),
    ];
    tasks[1].verdict = Some("wrong".into());
    let accepted = sealed::accepted_outputs(3, &tasks).unwrap();
    assert_eq!(accepted[0], (TaskId::new(job_id, 0), good, 100));
    assert_eq!(accepted[1], (TaskId::new(job_id, 1), good, 104), "the replica's run time");
    assert_eq!(accepted[2], (TaskId::new(job_id, 2), bad, 102));

    tasks[2].accepted_output = None;
    let err = sealed::accepted_outputs(3, &tasks).unwrap_err();
    assert!(matches!(err, SealedError::MissingOutput { task_id } if task_id.task_idx == 2), "{err}");
    assert!(sealed::accepted_outputs(5, &tasks).is_err(), "tasks missing from the list");
}
