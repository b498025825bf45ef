//! The host's CPU as a device: model from /proc/cpuinfo, logical cores from
//! the standard library, memory from /proc/meminfo.

use iog_types::{Device, DeviceKind};

/// The CPU's device: `cpu0`, found by the `cpu` discovery path. Anything that
/// cannot be read gets a fallback and a note.
pub(super) fn discover(notes: &mut Vec<String>) -> Device {
    let (vendor, model) = match std::fs::read_to_string("/proc/cpuinfo") {
        Ok(text) => parse_cpuinfo(&text),
        Err(_) => (None, None),
    };
    let model = model.unwrap_or_else(|| {
        notes.push("cpu: model name unknown (no \"model name\" in /proc/cpuinfo)".to_owned());
        format!("unknown {} cpu", std::env::consts::ARCH)
    });
    let vendor = vendor.unwrap_or_else(|| "unknown".to_owned());

    // Honours CPU affinity and cgroup quotas, so a worker in a container
    // offers what it may use rather than what the host has.
    let compute_units = match std::thread::available_parallelism() {
        Ok(cores) => u32::try_from(cores.get()).unwrap_or(u32::MAX),
        Err(err) => {
            notes.push(format!("cpu: number of cores unknown ({err}); offering 1"));
            1
        }
    };

    let mem_total_bytes =
        std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| parse_meminfo_total_bytes(&text));
    let cgroup_limit_bytes =
        std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok().and_then(|text| parse_cgroup_memory_max_bytes(&text));
    let memory_bytes = match (mem_total_bytes, cgroup_limit_bytes) {
        (Some(total), Some(limit)) => total.min(limit),
        (Some(total), None) => total,
        (None, Some(limit)) => limit,
        (None, None) => {
            notes.push("cpu: memory size unknown (no MemTotal in /proc/meminfo); offering 0 bytes".to_owned());
            0
        }
    };

    Device {
        kind: DeviceKind::Cpu,
        name: "cpu0".to_owned(),
        vendor,
        model,
        memory_bytes,
        compute_units,
        source: "cpu".to_owned(),
        driver: None,
        compute_capability: None,
        uuid: None,
        kernels: false,
    }
}

/// The vendor and model name of the first processor listed in
/// /proc/cpuinfo, where present (ARM kernels often omit both).
fn parse_cpuinfo(text: &str) -> (Option<String>, Option<String>) {
    let field = |key: &str| {
        text.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            let value = value.trim();
            (name.trim() == key && !value.is_empty()).then(|| value.to_owned())
        })
    };
    let vendor = field("vendor_id").map(|id| match id.as_str() {
        "GenuineIntel" => "Intel".to_owned(),
        "AuthenticAMD" => "AMD".to_owned(),
        _ => id,
    });
    (vendor, field("model name"))
}

/// `MemTotal` from /proc/meminfo, in bytes; `None` when absent or zero.
fn parse_meminfo_total_bytes(text: &str) -> Option<u64> {
    crate::memory::meminfo_bytes(text, "MemTotal").filter(|&bytes| bytes > 0)
}

/// The cgroup v2 memory limit in bytes; `None` when unlimited (`max`) or
/// unreadable.
fn parse_cgroup_memory_max_bytes(text: &str) -> Option<u64> {
    text.trim().parse::<u64>().ok().filter(|&bytes| bytes > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpuinfo_fields() {
        let text = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13 64-Core Processor\n\n\
                    processor\t: 1\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13 64-Core Processor\n";
        assert_eq!(parse_cpuinfo(text), (Some("AMD".to_owned()), Some("AMD EPYC 7B13 64-Core Processor".to_owned())));
        assert_eq!(parse_cpuinfo("processor\t: 0\nBogoMIPS\t: 50.00\n"), (None, None));
    }

    #[test]
    fn reads_meminfo_total() {
        let text = "MemTotal:       16314456 kB\nMemFree:         1234 kB\n";
        assert_eq!(parse_meminfo_total_bytes(text), Some(16_314_456 * 1024));
        assert_eq!(parse_meminfo_total_bytes("MemFree: 1 kB\n"), None);
        assert_eq!(parse_meminfo_total_bytes("MemTotal: lots kB\n"), None);
    }

    #[test]
    fn reads_cgroup_limit() {
        assert_eq!(parse_cgroup_memory_max_bytes("max\n"), None);
        assert_eq!(parse_cgroup_memory_max_bytes("8589934592\n"), Some(8_589_934_592));
    }
}
