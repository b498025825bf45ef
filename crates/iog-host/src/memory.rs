//! How much memory the host could give a worker right now, so that a
//! memory challenge never pushes the owner's programs into swap.

/// Bytes the host could hand out now without swapping: `MemAvailable` from
/// /proc/meminfo, and no more than the cgroup v2 limit leaves unused.
/// `None` where neither can be read (another operating system).
pub fn memory_available_bytes() -> Option<u64> {
    let host = std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| parse_meminfo_available_bytes(&text));
    let cgroup = || -> Option<u64> {
        let max = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok()?.trim().parse::<u64>().ok()?;
        let current = std::fs::read_to_string("/sys/fs/cgroup/memory.current").ok()?.trim().parse::<u64>().ok()?;
        Some(max.saturating_sub(current))
    };
    match (host, cgroup()) {
        (Some(host), Some(cgroup)) => Some(host.min(cgroup)),
        (host, cgroup) => host.or(cgroup),
    }
}

/// `MemAvailable` from /proc/meminfo, in bytes.
fn parse_meminfo_available_bytes(text: &str) -> Option<u64> {
    meminfo_bytes(text, "MemAvailable")
}

/// One `field` of /proc/meminfo, in bytes (the file says kB, meaning KiB).
pub(crate) fn meminfo_bytes(text: &str, field: &str) -> Option<u64> {
    let line = text.lines().find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))?;
    let kib = line.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_meminfo_available() {
        let text = "MemTotal:       16314456 kB\nMemFree:         1000000 kB\nMemAvailable:    8000000 kB\n";
        assert_eq!(parse_meminfo_available_bytes(text), Some(8_000_000 * 1024));
        assert_eq!(parse_meminfo_available_bytes("MemFree: 1 kB\n"), None);
        assert_eq!(parse_meminfo_available_bytes("MemAvailable: some kB\n"), None);
    }

    #[test]
    fn this_host_reports_some_memory_available() {
        // CI and development machines run Linux.
        let available = memory_available_bytes().expect("/proc/meminfo is readable on Linux");
        assert!(available > 0);
    }
}
