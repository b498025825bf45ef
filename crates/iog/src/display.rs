//! Formatting for people and for scripts.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use iog_proto::api::JobStatus;
use serde::Serialize;

pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(header.to_vec());
    table
}

pub fn millis(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.2} s", ms as f64 / 1_000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1_000)
    }
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// A job's state as a few lines of text.
pub fn job_summary(status: &JobStatus) -> String {
    let t = &status.tasks;
    let mut text = format!(
        "job {} ({}, {})\n  state: {}\n  tasks: {} total, {} committed, {} running, {} queued, {} failed, {} cancelled\n",
        status.job_id,
        status.name,
        status.workload,
        status.state,
        status.n_tasks,
        t.committed,
        t.leased,
        t.queued,
        t.failed,
        t.cancelled
    );
    if let Some(reason) = &status.reason {
        text.push_str(&format!("  reason: {reason}\n"));
    }
    if let Some(ended_ms) = status.ended_ms {
        text.push_str(&format!("  took: {}\n", millis(ended_ms.saturating_sub(status.created_ms))));
    }
    if !status.workers.is_empty() {
        let mut table = table(&["worker", "tasks", "busy"]);
        for share in &status.workers {
            table.add_row(vec![
                share.worker_id.short().to_owned(),
                share.n_committed.to_string(),
                millis(share.busy_ms),
            ]);
        }
        text.push_str(&format!("{table}\n"));
    }
    for artifact in &status.artifacts {
        text.push_str(&format!(
            "  artifact: {} ({}, {})\n",
            artifact.name,
            artifact.media_type,
            bytes(artifact.size_bytes)
        ));
    }
    text
}

/// A paid job's bill: a table of what each worker earned, then the totals.
pub fn bill(bill: &iog_proto::api::JobBilling) -> String {
    let mut table = table(&["worker", "tasks paid", "device-seconds", "earned"]);
    for worker in &bill.workers {
        let short: String = worker.worker_id.chars().take(8).collect();
        table.add_row(vec![
            short,
            worker.n_paid.to_string(),
            format!("{:.3}", worker.billed_ms as f64 / 1_000.0),
            worker.earned.clone(),
        ]);
    }
    format!(
        "job {} paid by {} at {} per device-hour\n{table}\n  budget: {}\n  spent: {} (network fee {})\n  held: {}\n  refunded: {}\n",
        bill.job_id, bill.payer, bill.price_io_per_hour, bill.budget, bill.spent, bill.fees, bill.held, bill.refunded
    )
}
