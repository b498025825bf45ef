//! What the kernel tests share: the adapter they run on.

use iog_gpu::{DiscoverOptions, Gpu};

/// The first adapter, software ones included; `None` (after saying why)
/// where there is none and none is required (`IOG_REQUIRE_GPU_ADAPTER`).
pub fn gpu() -> Option<Gpu> {
    let discovery = iog_gpu::discover(DiscoverOptions { software: true });
    let Some(adapter) = discovery.adapters.first() else {
        let why = discovery.notes.join("; ");
        assert!(std::env::var_os("IOG_REQUIRE_GPU_ADAPTER").is_none(), "IOG_REQUIRE_GPU_ADAPTER is set but {why}");
        eprintln!("skipped: {why} (install mesa-vulkan-drivers for software Vulkan)");
        return None;
    };
    eprintln!("running on {} through {}", adapter.model(), adapter.backend());
    Some(Gpu::open("gpu0", adapter).expect("the adapter opens and the kernels compile"))
}
