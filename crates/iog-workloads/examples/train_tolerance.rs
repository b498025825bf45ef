//! How far apart two builds of the ML runtime that round differently take
//! the same training and inference tasks, against the tolerances replicas
//! are judged by ([`TRAIN_RELATIVE_ERROR`], [`INFER_RELATIVE_ERROR`]).
//!
//! Replicas of a task on two machines agree bit for bit only when their
//! CPUs pick the same matrix kernels. Two builds here stand in for two
//! CPUs: the default one (burn's scalar kernels) and one with burn's `simd`
//! feature, which sums in another order:
//!
//! ```text
//! cargo run --release -p iog-workloads --example train_tolerance -- run /tmp/scalar
//! cargo run --release -p iog-workloads --example train_tolerance --features iog-ml/simd -- run /tmp/simd
//! cargo run --release -p iog-workloads --example train_tolerance -- compare /tmp/scalar /tmp/simd
//! ```
//!
//! `run` plans round 0 of a few train jobs (an MLP on spirals and a CharLm
//! on grammar text, each at a short and a long round) and an infer job per
//! model, runs every task and writes its input and output; `compare` reads
//! two such folders and prints, per job, the largest relative gap between
//! the two builds' losses, the gap between their pseudo-gradients (or
//! outputs) in L2 relative to the larger norm, and whether
//! [`outputs_agree`] takes them as one result.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use iog_ml::ModelSpec;
use iog_types::BlobId;
use iog_workloads::diloco::Int8Blocks;
use iog_workloads::infer::{InferData, InferSpec};
use iog_workloads::{
    DataSpec, FileRef, INFER_RELATIVE_ERROR, TRAIN_RELATIVE_ERROR, TrainSpec, WorkloadSpec, outputs_agree,
};

fn train_jobs() -> Vec<(String, TrainSpec)> {
    let mlp = TrainSpec {
        model: ModelSpec::Mlp { inputs: 2, hidden: vec![32, 32], outputs: 3 },
        data: DataSpec::Spirals { examples: 2000, classes: 3, seed: 7 },
        workers: 2,
        rounds: 1,
        inner_steps: 40,
        batch_size: 32,
        lr: 0.01,
        weight_decay: 0.0,
        outer_lr: 0.7,
        outer_momentum: 0.9,
        eval_share: 0.1,
        seed: 1,
    };
    let lm = TrainSpec {
        model: ModelSpec::CharLm { vocab: 28, context: 32, d_model: 48, heads: 4, layers: 2 },
        data: DataSpec::Grammar { chars: 40_000, seed: 3 },
        inner_steps: 50,
        batch_size: 16,
        lr: 0.003,
        ..mlp.clone()
    };
    vec![
        ("mlp-h40".into(), mlp.clone()),
        ("mlp-h400".into(), TrainSpec { inner_steps: 400, ..mlp }),
        ("charlm-h50".into(), lm.clone()),
        ("charlm-h500".into(), TrainSpec { inner_steps: 500, ..lm }),
    ]
}

/// The infer jobs: each model's fresh weights as a blob, over generated
/// spirals or a few prompts.
fn infer_jobs() -> Vec<(String, InferSpec, Vec<Vec<u8>>)> {
    let mut jobs = Vec::new();
    for (name, spec) in train_jobs().into_iter().filter(|(name, _)| name.ends_with("h40") || name.ends_with("h50")) {
        let weights = iog_ml::init_weights(&spec.model, 5).expect("weights");
        let mut metadata = BTreeMap::new();
        let (data, files, examples) = match &spec.data {
            DataSpec::Grammar { chars, seed } => {
                let text = iog_ml::grammar_text(*chars, *seed);
                let vocab: String = iog_ml::CharVocab::from_text(&text).chars().iter().collect();
                metadata.insert("vocab".to_owned(), vocab.clone());
                let prompts: Vec<String> = text.lines().take(20).map(|l| l[..l.len().min(20)].to_owned()).collect();
                let bytes = (prompts.join("\n") + "\n").into_bytes();
                let file = FileRef::Blob { name: "p.txt".into(), blob: BlobId::of(&bytes) };
                (InferData::Prompts { file }, vec![bytes], Some(prompts.len()))
            }
            _ => (InferData::Spirals { examples: 5000, classes: 3, seed: 99 }, Vec::new(), None),
        };
        let weights_file =
            iog_workloads::infer::weights_safetensors(&spec.model, &weights, metadata.clone()).expect("weights file");
        let infer = InferSpec {
            model: Some(spec.model.clone()),
            weights: FileRef::Blob { name: "w.safetensors".into(), blob: BlobId::of(&weights_file) },
            data,
            tasks: 2,
            examples,
            output: None,
            vocab: metadata.get("vocab").cloned(),
            generate: matches!(spec.model, ModelSpec::CharLm { .. }).then_some(40),
        };
        let mut blobs = files;
        blobs.push(weights_file);
        jobs.push((format!("infer-{}", name.split('-').next().unwrap_or("")), infer, blobs));
    }
    jobs
}

fn run(dir: &Path) {
    std::fs::create_dir_all(dir).expect("output folder");
    for (name, spec) in train_jobs() {
        let inputs = iog_workloads::plan(&WorkloadSpec::Train(spec)).expect("plans");
        for (k, input) in inputs.iter().enumerate() {
            let started = std::time::Instant::now();
            let output = iog_workloads::run_task(input).expect("runs").output;
            eprintln!("{name} task {k}: {:.2} s", started.elapsed().as_secs_f64());
            std::fs::write(dir.join(format!("{name}-{k}.in")), input).expect("write");
            std::fs::write(dir.join(format!("{name}-{k}.out")), output).expect("write");
        }
    }
    for (name, spec, files) in infer_jobs() {
        let blobs: BTreeMap<BlobId, Arc<Vec<u8>>> =
            files.into_iter().map(|bytes| (BlobId::of(&bytes), Arc::new(bytes))).collect();
        let inputs = iog_workloads::plan(&WorkloadSpec::Infer(spec)).expect("plans");
        for (k, input) in inputs.iter().enumerate() {
            let iog_workloads::Decoded::Infer(task) = iog_workloads::decode_task(input).expect("decodes") else {
                panic!("an infer task")
            };
            let output = iog_workloads::infer::run(&task, &blobs).expect("runs").output;
            std::fs::write(dir.join(format!("{name}-{k}.in")), input).expect("write");
            std::fs::write(dir.join(format!("{name}-{k}.out")), output).expect("write");
        }
    }
}

fn floats(json: &serde_json::Value, key: &str) -> Vec<f32> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(json[key].as_str().unwrap_or("")).expect("base64");
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

fn relative_l2(a: &[f32], b: &[f32]) -> f64 {
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let gap = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum::<f64>().sqrt();
    gap / norm(a).max(norm(b)).max(f64::MIN_POSITIVE)
}

fn compare(a_dir: &Path, b_dir: &Path) {
    println!("| task | bits equal | largest loss gap | L2 gap | agree (tolerance) |");
    println!("|---|---|---|---|---|");
    let mut names: Vec<PathBuf> = std::fs::read_dir(a_dir)
        .expect("first folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "out"))
        .collect();
    names.sort();
    for out_a in names {
        let stem = out_a.file_stem().expect("a name").to_string_lossy().into_owned();
        let input = std::fs::read(a_dir.join(format!("{stem}.in"))).expect("input");
        let a = std::fs::read(&out_a).expect("output");
        let b = std::fs::read(b_dir.join(format!("{stem}.out"))).expect("the other build's output");
        let (ja, jb): (serde_json::Value, serde_json::Value) =
            (iog_workloads::json_view(&a).expect("an output"), iog_workloads::json_view(&b).expect("an output"));
        let (loss_gap, l2_gap, tolerance) = if stem.starts_with("infer") {
            let same_text = ja["completions"] == jb["completions"];
            let gap = relative_l2(&floats(&ja, "values"), &floats(&jb, "values"));
            (if same_text { "—".to_owned() } else { "completions differ".to_owned() }, gap, INFER_RELATIVE_ERROR)
        } else {
            let losses = |j: &serde_json::Value| -> Vec<f64> {
                j["losses"].as_array().expect("losses").iter().map(|v| v.as_f64().expect("a loss")).collect()
            };
            let (la, lb) = (losses(&ja), losses(&jb));
            let loss_gap = la.iter().zip(&lb).map(|(x, y)| (x - y).abs() / x.abs().max(y.abs())).fold(0.0, f64::max);
            let delta = |j: &serde_json::Value| {
                let bytes =
                    base64::engine::general_purpose::STANDARD.decode(j["delta"].as_str().expect("delta")).expect("b64");
                Int8Blocks::decode(&bytes).expect("a pseudo-gradient").decompress()
            };
            (format!("{loss_gap:.2e}"), relative_l2(&delta(&ja), &delta(&jb)), TRAIN_RELATIVE_ERROR)
        };
        let agree = outputs_agree(&input, &a, &b).expect("a task input");
        println!("| {stem} | {} | {loss_gap} | {l2_gap:.2e} | {agree} ({tolerance:.0e}) |", a == b);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["run", dir] => run(Path::new(dir)),
        ["compare", a, b] => compare(Path::new(a), Path::new(b)),
        _ => {
            eprintln!("usage: train_tolerance run DIR | train_tolerance compare DIR_A DIR_B");
            std::process::exit(2);
        }
    }
}
