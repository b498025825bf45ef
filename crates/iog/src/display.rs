//! Formatting for people and for scripts.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use iog_proto::api::{JobStatus, TaskStatus};
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
    let verifies = !status.verify.is_empty() && status.verify != "none";
    let mut text = if verifies {
        let n_runs = t.committed + t.leased + t.queued + t.failed + t.cancelled;
        let n_wrong: u32 = status.workers.iter().map(|share| share.n_wrong).sum();
        format!(
            "job {} ({}, {})\n  state: {}\n  tasks: {} total, {} with an accepted result\n  \
             verify: {}; {n_runs} runs: {} committed, {} running, {} queued, {} failed, {} cancelled; \
             {n_wrong} results proven wrong\n",
            status.job_id,
            status.name,
            status.workload,
            status.state,
            status.n_tasks,
            status.n_settled,
            status.verify,
            t.committed,
            t.leased,
            t.queued,
            t.failed,
            t.cancelled
        )
    } else {
        format!(
            "job {} ({}, {})\n  state: {}\n  tasks: {} total, {} committed, {} running, {} queued, {} failed, \
             {} cancelled\n",
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
        )
    };
    if let Some(reason) = &status.reason {
        text.push_str(&format!("  reason: {reason}\n"));
    }
    if status.sealed {
        text.push_str(
            "  sealed: inputs and results are encrypted to the workers that run them; `iog job result` opens \
             them on the submitting machine\n",
        );
    }
    if let Some(waiting) = &status.waiting_reason {
        text.push_str(&format!("  waiting: {waiting}\n"));
    }
    if let Some(ended_ms) = status.ended_ms {
        text.push_str(&format!("  took: {}\n", millis(ended_ms.saturating_sub(status.created_ms))));
    }
    if !status.workers.is_empty() {
        let mut table = table(&["worker", "tasks", "busy", "wrong"]);
        for share in &status.workers {
            table.add_row(vec![
                share.worker_id.short().to_owned(),
                share.n_committed.to_string(),
                millis(share.busy_ms),
                share.n_wrong.to_string(),
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

/// A job's tasks as a table, one row per task or replica: who holds or
/// committed it, and the device and run time of its committed attempt.
pub fn tasks(tasks: &[TaskStatus]) -> String {
    let mut table = table(&["task", "state", "attempts", "worker", "device", "took", "verdict"]);
    for task in tasks {
        let worker = task.committed_by.as_ref().or(task.holder.as_ref());
        table.add_row(vec![
            task.task_id.to_string(),
            task.state.to_string(),
            task.attempts.to_string(),
            worker.map_or_else(|| "-".to_owned(), |worker| worker.short().to_owned()),
            task.device.clone().unwrap_or_else(|| "-".to_owned()),
            task.duration_ms.map_or_else(|| "-".to_owned(), millis),
            task.verdict.clone().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    format!("{table}\n")
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

/// A device group in a few words: `2 × H100 80GB HBM3 (80.0 GiB)`, `cpu × 4 slots`.
pub fn group(group: &iog_sched::DeviceGroup) -> String {
    match group.kind {
        iog_types::DeviceKind::Cpu => format!("{} × {} slots", group.model, group.count),
        iog_types::DeviceKind::Gpu => format!("{} × {} ({})", group.count, group.model, bytes(group.memory_bytes)),
    }
}

/// Whether a worker can take tasks now, in a word or two.
pub fn worker_state(worker: &iog_proto::api::WorkerStatus) -> &'static str {
    match (worker.online, worker.paused, worker.available) {
        (false, _, _) => "offline",
        (true, true, _) => "owner busy",
        (true, false, true) => "available",
        (true, false, false) if worker.challenges_failed_in_row > 0 => "failed challenge",
        (true, false, false) if worker.challenging => "challenged",
        (true, false, false) => "out of hours",
    }
}

/// One worker's offer as lines of text.
pub fn print_offer(worker: &iog_proto::api::WorkerStatus) {
    println!("worker {} ({})", worker.worker_id, worker_state(worker));
    let Some(offer) = &worker.offer else {
        println!("  no offer recorded");
        return;
    };
    println!("  region: {}", offer.region);
    println!("  price: {} per device-hour", offer.price_io_per_device_hour);
    println!("  trust level: {}", worker.trust);
    println!(
        "  reputation: {:.3} ({} tasks committed, {} failed, {} lapsed; {} hours online)",
        f64::from(worker.reputation_milli) / 1000.0,
        worker.tasks_committed,
        worker.tasks_failed,
        worker.leases_lapsed,
        worker.online_hours
    );
    println!(
        "  verified results: {} confirmed, {} proven wrong; {} confirmed in a row",
        worker.results_valid, worker.results_wrong, worker.valid_streak
    );
    let in_row = match worker.challenges_failed_in_row {
        0 => String::new(),
        n => format!("; the last {n} failed"),
    };
    println!("  hardware challenges: {} passed, {} failed{in_row}", worker.challenges_passed, worker.challenges_failed);
    if let Some(coord) = &worker.coord {
        println!("  network coordinate: error {:.2}, height {:.1} ms", coord.error, coord.height_ms);
    }
    if offer.windows.is_empty() {
        println!("  hours: always");
    } else {
        let windows: Vec<String> = offer.windows.iter().map(|w| w.to_string()).collect();
        println!("  hours (UTC): {}", windows.join("; "));
    }
    if offer.idle_only {
        println!("  only while its owner is away");
    }
    if !offer.software.is_empty() {
        let software: Vec<String> = offer.software.iter().map(|s| format!("{} {}", s.name, s.version)).collect();
        println!("  runs: {}", software.join(", "));
    }
    for (idx, g) in offer.groups.iter().enumerate() {
        let in_use = worker.in_use.get(idx).copied().unwrap_or(0);
        println!("  {}: {in_use} in use", group(g));
    }
}

/// Requirements as a `[resources]` section on one line.
pub fn resources_toml(requirements: &iog_sched::Requirements) -> String {
    let mut parts = Vec::new();
    match requirements.kind {
        Some(iog_types::DeviceKind::Gpu) => parts.push("device = \"gpu\"".to_owned()),
        Some(iog_types::DeviceKind::Cpu) => parts.push("device = \"cpu\"".to_owned()),
        None => parts.push("device = \"any\"".to_owned()),
    }
    if requirements.count > 1 {
        parts.push(format!("count = {}", requirements.count));
    }
    if requirements.memory_bytes_min > 0 {
        let gib = requirements.memory_bytes_min as f64 / f64::from(1u32 << 30);
        parts.push(format!("memory_gib_min = {gib}"));
    }
    let list = |items: &[String]| items.iter().map(|i| format!("{i:?}")).collect::<Vec<_>>().join(", ");
    if !requirements.models.is_empty() {
        parts.push(format!("models = [{}]", list(&requirements.models)));
    }
    if !requirements.regions.is_empty() {
        parts.push(format!("regions = [{}]", list(&requirements.regions)));
    }
    if let Some(max) = requirements.price_io_per_device_hour_max {
        let text = max.to_string();
        parts.push(format!("price_io_per_device_hour_max = \"{}\"", text.trim_end_matches(" IO")));
    }
    if requirements.trust_min > 0 {
        parts.push(format!("trust_min = {}", requirements.trust_min));
    }
    parts.join(", ")
}

/// A progress bar over `total` bytes, drawn on standard error.
pub fn bytes_bar(total: u64, message: &'static str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} {bar:30} {bytes}/{total_bytes} ({bytes_per_sec})")
            .expect("a valid progress template"),
    );
    bar.set_message(message);
    bar
}
