//! Models, flat weights, training, evaluation and inference, run for real
//! on burn's CPU backend.

mod support;

use iog_ml::{
    Dataset, InnerConfig, Inputs, MlErrorKind, Model, ModelSpec, evaluate, infer, init_weights, param_count,
    param_layout, spirals, train_inner, waves,
};
use support::*;

fn cfg(steps: u64, batch_size: usize, lr: f64, seed: u64) -> InnerConfig {
    InnerConfig { steps, batch_size, lr, weight_decay: 0.01, seed }
}

#[test]
fn mlp_training_lowers_the_loss_on_spirals_and_waves() {
    let data = spirals(600, 3, 1).unwrap();
    let spec = spirals_spec();
    let w = init_weights(&spec, 1).unwrap();
    let before = evaluate(&spec, &w, &data, 0..600).unwrap();
    let out = train_inner(&spec, &w, &data, 0..600, &cfg(300, 32, 1e-2, 5)).unwrap();
    let after = evaluate(&spec, &out.weights, &data, 0..600).unwrap();
    assert_eq!(out.losses.len(), 300);
    // Cross-entropy of a uniform guess over 3 classes is ln 3 ≈ 1.10.
    assert!(before > 1.0 && after < 0.75 * before, "spirals loss {before} -> {after}");

    let data = waves(600, 2).unwrap();
    let spec = ModelSpec::Mlp { inputs: 2, hidden: vec![32], outputs: 1 };
    let w = init_weights(&spec, 3).unwrap();
    let before = evaluate(&spec, &w, &data, 0..600).unwrap();
    let out = train_inner(&spec, &w, &data, 0..600, &cfg(300, 32, 1e-2, 6)).unwrap();
    let after = evaluate(&spec, &out.weights, &data, 0..600).unwrap();
    assert!(after < 0.1 * before, "waves loss {before} -> {after}");
}

#[test]
fn char_lm_training_lowers_the_loss() {
    let (spec, data, vocab) = char_lm_data();
    let w = init_weights(&spec, 1).unwrap();
    let held_out = data.len() - 512..data.len();
    let before = evaluate(&spec, &w, &data, held_out.clone()).unwrap();
    let out = train_inner(&spec, &w, &data, 0..data.len() - 512, &cfg(80, 16, 3e-3, 5)).unwrap();
    let after = evaluate(&spec, &out.weights, &data, held_out).unwrap();
    // A uniform guess scores ln 28 ≈ 3.33; the grammar's words are learnt quickly.
    assert!(before > 3.0, "initial loss {before}");
    assert!(after < 2.2, "held-out loss {before} -> {after}");
    let first: f32 = out.losses[..10].iter().sum::<f32>() / 10.0;
    let last: f32 = out.losses[70..].iter().sum::<f32>() / 10.0;
    assert!(last < first - 1.0, "step losses {first} -> {last}");
    // The trained model's greedy next character after "the farm" is 'e'.
    let prompt = vocab.encode("the farm").unwrap();
    let logits = infer(&spec, &out.weights, Inputs::Tokens { ids: &prompt, len: prompt.len() }).unwrap();
    let best = (0..vocab.len()).max_by(|&a, &b| logits[a].total_cmp(&logits[b])).unwrap();
    assert_eq!(vocab.decode(&[best as u32]), "e");
}

#[test]
fn weights_round_trip_exactly() {
    let (lm, data, _) = char_lm_data();
    for spec in [spirals_spec(), lm.clone(), ModelSpec::Mlp { inputs: 5, hidden: vec![], outputs: 2 }] {
        let w = init_weights(&spec, 9).unwrap();
        assert_eq!(w.len(), param_count(&spec).unwrap());
        let back = Model::new(&spec, &w).unwrap().weights();
        assert!(same_bits(&w, &back), "{spec:?} did not round trip");
    }
    // Trained weights (no zeros or ones left) too.
    let w = init_weights(&lm, 2).unwrap();
    let trained = train_inner(&lm, &w, &data, 0..data.len(), &cfg(3, 4, 1e-3, 1)).unwrap().weights;
    assert!(!same_bits(&w, &trained));
    assert!(same_bits(&trained, &Model::new(&lm, &trained).unwrap().weights()));
    // Values that are not plain numbers survive too: subnormals and -0.0.
    let spec = ModelSpec::Mlp { inputs: 1, hidden: vec![], outputs: 3 };
    let odd = [f32::from_bits(1), -0.0, f32::MIN_POSITIVE, 1e-40, f32::MAX, -f32::MAX];
    assert!(same_bits(&odd, &Model::new(&spec, &odd).unwrap().weights()));
}

#[test]
fn param_layout_is_the_documented_order() {
    let spec = ModelSpec::CharLm { vocab: 5, context: 3, d_model: 4, heads: 2, layers: 1 };
    let layout = param_layout(&spec).unwrap();
    let names: Vec<&str> = layout.iter().map(|t| t.name.as_str()).collect();
    let linear = |p: &str| [format!("{p}.weight"), format!("{p}.bias")];
    let mut expected = vec!["token_embedding.weight".to_owned(), "position_embedding.weight".to_owned()];
    expected.extend(["blocks.0.attention_norm.gamma".to_owned(), "blocks.0.attention_norm.beta".to_owned()]);
    for part in ["query", "key", "value", "output"] {
        expected.extend(linear(&format!("blocks.0.attention.{part}")));
    }
    expected.extend(["blocks.0.ff_norm.gamma".to_owned(), "blocks.0.ff_norm.beta".to_owned()]);
    expected.extend(linear("blocks.0.ff_in"));
    expected.extend(linear("blocks.0.ff_out"));
    expected.extend(["final_norm.gamma".to_owned(), "final_norm.beta".to_owned()]);
    expected.extend(linear("head"));
    assert_eq!(names, expected);
    let shapes: Vec<Vec<usize>> = layout.iter().map(|t| t.shape.clone()).collect();
    assert_eq!(shapes[0], [5, 4]);
    assert_eq!(shapes[1], [3, 4]);
    assert_eq!(shapes[14], [4, 16]); // ff_in.weight is [d_in, d_out]
    assert_eq!(shapes[shapes.len() - 2], [4, 5]);
    // Offsets are contiguous from zero and end at the count.
    let mut offset = 0;
    for t in &layout {
        assert_eq!(t.offset, offset, "{}", t.name);
        offset += t.len();
    }
    assert_eq!(offset, param_count(&spec).unwrap());

    let mlp = ModelSpec::Mlp { inputs: 3, hidden: vec![7, 5], outputs: 2 };
    assert_eq!(param_count(&mlp).unwrap(), 3 * 7 + 7 + 7 * 5 + 5 + 5 * 2 + 2);
}

#[test]
fn init_weights_are_seeded_and_pinned() {
    let spec = spirals_spec();
    let a = init_weights(&spec, 42).unwrap();
    assert!(same_bits(&a, &init_weights(&spec, 42).unwrap()));
    assert!(!same_bits(&a, &init_weights(&spec, 43).unwrap()));
    // The values are part of the format: a change here changes every
    // network's starting point.
    assert_eq!(bits_hash(&a), 0x7a54_c8a3_483d_cb1f, "init_weights changed");
    let layout = param_layout(&spec).unwrap();
    let w0 = tensor(&layout, &a, "layers.0.weight");
    assert!(w0.iter().all(|v| v.abs() <= 1.0 / 2f32.sqrt()));
    assert!(tensor(&layout, &a, "layers.1.bias").iter().all(|&v| v == 0.0));
    let (lm, _, _) = char_lm_data();
    let b = init_weights(&lm, 1).unwrap();
    let layout = param_layout(&lm).unwrap();
    assert!(tensor(&layout, &b, "final_norm.gamma").iter().all(|&v| v == 1.0));
    assert!(tensor(&layout, &b, "token_embedding.weight").iter().all(|v| v.abs() <= 0.1));
}

/// What the reproducibility tests train: CharLm steps from fixed weights.
fn reference_run() -> (Vec<f32>, Vec<f32>) {
    let (spec, data, _) = char_lm_data();
    let w = init_weights(&spec, 11).unwrap();
    let out = train_inner(&spec, &w, &data, 100..4000, &cfg(10, 8, 3e-3, 77)).unwrap();
    (out.weights, out.losses)
}

#[test]
fn the_same_seed_gives_the_same_bits_in_one_process() {
    let (w1, l1) = reference_run();
    let (w2, l2) = reference_run();
    assert!(same_bits(&w1, &w2) && same_bits(&l1, &l2));
    // Also while another training runs on another thread at the same time.
    let handles: Vec<_> = (0..2).map(|_| std::thread::spawn(reference_run)).collect();
    for h in handles {
        let (w, l) = h.join().unwrap();
        assert!(same_bits(&w1, &w) && same_bits(&l1, &l));
    }
    // A different batch seed gives different weights.
    let (spec, data, _) = char_lm_data();
    let w = init_weights(&spec, 11).unwrap();
    let other = train_inner(&spec, &w, &data, 100..4000, &cfg(10, 8, 3e-3, 78)).unwrap();
    assert!(!same_bits(&w1, &other.weights));
}

const CHILD_ENV: &str = "IOG_ML_REPRO_CHILD";

/// Run by `the_same_seed_gives_the_same_bits_across_processes` in a child
/// process; prints the hash of the reference run.
#[test]
fn reproducibility_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let (w, l) = reference_run();
    println!("REPRO {:016x} {:016x}", bits_hash(&w), bits_hash(&l));
}

#[test]
fn the_same_seed_gives_the_same_bits_across_processes() {
    let (w, l) = reference_run();
    let expected = format!("REPRO {:016x} {:016x}", bits_hash(&w), bits_hash(&l));
    let exe = std::env::current_exe().unwrap();
    // The second child gets a different thread-count hint; the backend is
    // single-threaded, so it must not matter.
    for threads in ["1", "2"] {
        let out = std::process::Command::new(&exe)
            .args(["--exact", "reproducibility_child", "--nocapture", "--test-threads", "1"])
            .env(CHILD_ENV, "1")
            .env("RAYON_NUM_THREADS", threads)
            .output()
            .unwrap();
        assert!(out.status.success(), "child failed: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        // libtest prints the test's name on the same line, before the hash.
        let line = stdout.lines().find_map(|l| l.find("REPRO ").map(|i| &l[i..])).expect("the child printed no hash");
        assert_eq!(line, expected);
    }
}

#[test]
fn mlp_inference_equals_a_hand_written_forward_pass() {
    let spec = ModelSpec::Mlp { inputs: 3, hidden: vec![8, 6], outputs: 2 };
    let data = Dataset::regression(3, (0..60).map(|i| (i as f32 * 0.37).sin()).collect(), 2, vec![0.5; 40]).unwrap();
    let w0 = init_weights(&spec, 4).unwrap();
    // Trained weights, so the biases are not all zero.
    let w = train_inner(&spec, &w0, &data, 0..20, &cfg(20, 4, 1e-2, 3)).unwrap().weights;
    let x: Vec<f32> = (0..15).map(|i| (i as f32 * 0.61).cos() * 2.0).collect();
    let got = infer(&spec, &w, Inputs::Features(&x)).unwrap();
    let want = mlp_forward(&spec, &w, &x);
    assert_eq!(got.len(), 5 * 2);
    assert!(max_abs_diff(&got, &want) < 1e-5, "{got:?} vs {want:?}");
}

#[test]
fn char_lm_inference_and_loss_equal_a_hand_written_forward_pass() {
    let (spec, data, vocab) = char_lm_data();
    let w0 = init_weights(&spec, 8).unwrap();
    let w = train_inner(&spec, &w0, &data, 0..data.len(), &cfg(5, 8, 3e-3, 2)).unwrap().weights;
    let text = vocab.encode("the cat sees a red ball. our").unwrap();
    let window = &text[..CONTEXT];
    let want = char_lm_forward(&spec, &w, window);
    let v = vocab.len();
    // Each prefix's next-token logits are the full window's at its last
    // position: the model is causal.
    for len in [1, 5, CONTEXT] {
        let got = infer(&spec, &w, Inputs::Tokens { ids: &window[..len], len }).unwrap();
        assert!(max_abs_diff(&got, &want[(len - 1) * v..len * v]) < 1e-4, "prefix of {len}");
    }
    // Two rows at once give each row's own logits.
    let rows = [&text[..4], &text[4..8]].concat();
    let got = infer(&spec, &w, Inputs::Tokens { ids: &rows, len: 4 }).unwrap();
    let second = char_lm_forward(&spec, &w, &text[4..8]);
    assert!(max_abs_diff(&got[v..], &second[3 * v..]) < 1e-4);
    // The training loss uses the same causal forward pass at every position.
    let tokens = vocab.encode(&iog_ml::grammar_text(20_000, 7)).unwrap();
    let i = 1234;
    let logits = char_lm_forward(&spec, &w, &tokens[i..i + CONTEXT]);
    let want = cross_entropy(&logits, &tokens[i + 1..i + CONTEXT + 1]);
    let got = evaluate(&spec, &w, &data, i..i + 1).unwrap();
    assert!((f64::from(got) - want).abs() < 1e-4, "loss {got} vs {want}");
}

#[test]
fn evaluate_is_the_example_weighted_mean() {
    let data = spirals(300, 3, 4).unwrap();
    let spec = spirals_spec();
    let w = init_weights(&spec, 5).unwrap();
    // 300 examples are three batches of 128, 128 and 44.
    let whole = evaluate(&spec, &w, &data, 0..300).unwrap();
    let parts: f64 = [(0..128), (128..256), (256..300)]
        .into_iter()
        .map(|r| f64::from(evaluate(&spec, &w, &data, r.clone()).unwrap()) * r.len() as f64)
        .sum();
    assert!((f64::from(whole) - parts / 300.0).abs() < 1e-6);
}

fn err<T: std::fmt::Debug>(result: Result<T, iog_ml::MlError>) -> iog_ml::MlError {
    result.unwrap_err()
}

#[test]
fn bad_inputs_to_training_and_inference_are_refused_clearly() {
    let spec = spirals_spec();
    let data = spirals(100, 3, 1).unwrap();
    let w = init_weights(&spec, 1).unwrap();

    let e = err(train_inner(&spec, &w, &data, 0..100, &cfg(1, 0, 1e-3, 1)));
    assert_eq!((e.kind(), e.field()), (MlErrorKind::Train, Some("batch_size")));
    assert_eq!(e.to_string(), "batch_size must be between 1 and 65536, got 0");
    let e = err(train_inner(&spec, &w, &data, 0..100, &cfg(1, 4, f64::NAN, 1)));
    assert_eq!(e.field(), Some("lr"));
    // A batch whose activations would pass the bound: 2 000 examples of a
    // layer 60 000 wide (120 005 values each).
    let wide = ModelSpec::Mlp { inputs: 2, hidden: vec![60_000], outputs: 3 };
    let e = err(train_inner(&wide, &init_weights(&wide, 1).unwrap(), &data, 0..100, &cfg(1, 2_000, 1e-3, 1)));
    assert_eq!((e.kind(), e.field()), (MlErrorKind::Train, Some("batch_size")));
    assert!(e.to_string().ends_with("take at most 1118 a batch"), "{e}");
    let e = err(train_inner(&spec, &w[1..], &data, 0..100, &cfg(1, 4, 1e-3, 1)));
    assert_eq!(e.kind(), MlErrorKind::Weights);
    assert!(e.to_string().contains(&format!("have {} values but the spec needs {}", w.len() - 1, w.len())), "{e}");
    let e = err(train_inner(&spec, &w, &data, 50..101, &cfg(1, 4, 1e-3, 1)));
    assert_eq!(e.kind(), MlErrorKind::Mismatch);
    assert!(e.to_string().contains("50..101"), "{e}");
    let e = err(evaluate(&spec, &w, &data, 5..5));
    assert_eq!(e.kind(), MlErrorKind::Mismatch);

    let two_classes = ModelSpec::Mlp { inputs: 2, hidden: vec![4], outputs: 2 };
    let e = err(evaluate(&two_classes, &init_weights(&two_classes, 1).unwrap(), &data, 0..10));
    assert!(e.to_string().contains("labels up to 2 but mlp.outputs is 2"), "{e}");
    let (lm, text, _) = char_lm_data();
    let e = err(evaluate(&spec, &w, &text, 0..10));
    assert!(e.to_string().contains("this one is text"), "{e}");
    let e = err(evaluate(&lm, &init_weights(&lm, 1).unwrap(), &data, 0..10));
    assert!(e.to_string().contains("needs a text data set"), "{e}");

    let mut bad = w.clone();
    bad[7] = f32::NAN;
    let e = err(infer(&spec, &bad, Inputs::Features(&[0.0, 1.0])));
    assert_eq!(e.to_string(), "weight 7 is NaN, not a finite number");
    let e = err(infer(&spec, &w, Inputs::Features(&[0.0, 1.0, 2.0])));
    assert!(e.to_string().contains("not a positive whole number of rows of mlp.inputs (2)"), "{e}");
    let lw = init_weights(&lm, 1).unwrap();
    let e = err(infer(&lm, &lw, Inputs::Tokens { ids: &[0; 17], len: 17 }));
    assert!(e.to_string().starts_with("len must be between 1 and char_lm.context (16)"), "{e}");
    let e = err(infer(&lm, &lw, Inputs::Tokens { ids: &[0, 99], len: 2 }));
    assert!(e.to_string().contains("token 1 is 99"), "{e}");

    // A learning rate far too large makes the loss blow up: reported, not returned.
    let huge = InnerConfig { steps: 50, batch_size: 32, lr: 1e30, weight_decay: 0.0, seed: 1 };
    let e = err(train_inner(&spec, &w, &data, 0..100, &huge));
    assert_eq!(e.kind(), MlErrorKind::Diverged, "{e}");
}

#[test]
fn this_build_has_the_runtime() {
    const { assert!(iog_ml::RUNTIME) };
}

#[test]
fn training_on_a_slice_equals_training_on_that_shard() {
    // A worker sent only its shard, as a slice through the binary form,
    // trains to the same bits as one holding the whole set.
    let data = spirals(300, 3, 1).unwrap();
    let spec = spirals_spec();
    let w = init_weights(&spec, 1).unwrap();
    let whole = train_inner(&spec, &w, &data, 100..200, &cfg(20, 16, 1e-2, 9)).unwrap();
    let part = Dataset::decode(&data.slice(100..200).unwrap().encode()).unwrap();
    let sliced = train_inner(&spec, &w, &part, 0..100, &cfg(20, 16, 1e-2, 9)).unwrap();
    assert!(same_bits(&whole.weights, &sliced.weights));
    assert!(same_bits(&whole.losses, &sliced.losses));

    let (lm, text, _) = char_lm_data();
    let lw = init_weights(&lm, 1).unwrap();
    let whole = train_inner(&lm, &lw, &text, 500..600, &cfg(5, 8, 3e-3, 2)).unwrap();
    let part = Dataset::decode(&text.slice(500..600).unwrap().encode()).unwrap();
    let sliced = train_inner(&lm, &lw, &part, 0..100, &cfg(5, 8, 3e-3, 2)).unwrap();
    assert!(same_bits(&whole.weights, &sliced.weights));
    assert_eq!(
        evaluate(&lm, &lw, &text, 500..600).unwrap().to_bits(),
        evaluate(&lm, &lw, &part, 0..100).unwrap().to_bits()
    );
}
