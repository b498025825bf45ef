//! Inner-training speed of the CharLm on this machine's CPU: AdamW steps
//! per second and tokens per second for a few model sizes, each trained
//! from fresh weights on the seeded grammar text.
//!
//! ```text
//! cargo run --release -p iog-ml --example train_rate [-- STEPS]
//! ```
//!
//! STEPS (default 40) steps a size, after 2 warm-up steps; one thread (the
//! backend runs on the calling thread).

use std::time::Instant;

use iog_ml::{CharVocab, Dataset, InnerConfig, ModelSpec, grammar_text, init_weights, param_count, train_inner};

fn main() {
    let steps: u64 = std::env::args().nth(1).map_or(40, |text| text.parse().expect("STEPS is a number"));
    let text = grammar_text(50_000, 7);
    let vocab = CharVocab::from_text(&text);
    let tokens = vocab.encode(&text).expect("the grammar's characters are its vocabulary's");
    println!("| model | parameters | context | batch | steps/s | tokens/s | loss, first → last step |");
    println!("|---|---|---|---|---|---|---|");
    for (d_model, heads, layers, context, batch_size) in [(32, 4, 2, 16, 16), (64, 4, 2, 32, 32), (128, 8, 4, 64, 32)] {
        let spec = ModelSpec::CharLm { vocab: vocab.len(), context, d_model, heads, layers };
        let data = Dataset::text(tokens.clone(), vocab.len(), context).expect("the text fits the context");
        let weights = init_weights(&spec, 1).expect("the spec is valid");
        let config = |steps| InnerConfig { steps, batch_size, lr: 3e-3, weight_decay: 0.01, seed: 5 };
        let warm = train_inner(&spec, &weights, &data, 0..data.len(), &config(2)).expect("warm-up trains");
        let started = Instant::now();
        let run = train_inner(&spec, &warm.weights, &data, 0..data.len(), &config(steps)).expect("training runs");
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "| d_model {d_model}, {heads} heads, {layers} layers | {} | {context} | {batch_size} | {:.1} | {:.0} | {:.2} → {:.2} |",
            param_count(&spec).expect("the spec is valid"),
            steps as f64 / seconds,
            (steps as usize * batch_size * context) as f64 / seconds,
            run.losses.first().copied().unwrap_or(f32::NAN),
            run.losses.last().copied().unwrap_or(f32::NAN),
        );
    }
}
