#!/usr/bin/env bash
# Builds the example WebAssembly task modules in examples/wasm/ for WASI
# preview 1 and copies them next to their sources:
#
#   examples/wasm/montecarlo.wasm      Monte Carlo estimate of pi
#   examples/wasm/sandbox-probe.wasm   test helper for the sandbox tests
#
# The checked-in .wasm files are what the tests and the examples use, so CI
# needs no wasm toolchain. Rerun this after changing a module's source and
# commit the rebuilt .wasm files with it.
#
#   scripts/build-wasm-examples.sh
#
# Needs: the wasm32-wasip1 target (`rustup target add wasm32-wasip1`).
# The crates use std only, so the build works offline.
set -euo pipefail
cd "$(dirname "$0")/.."

target=wasm32-wasip1
modules=(montecarlo sandbox-probe)

if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$target"; then
    echo "error: the $target target is missing; run: rustup target add $target" >&2
    exit 2
fi

for name in "${modules[@]}"; do
    echo "building $name"
    cargo build --release --target "$target" --manifest-path "examples/wasm/$name/Cargo.toml"
    # install, not cp: rustc marks the .wasm executable, which git would record.
    install -m 0644 "examples/wasm/$name/target/$target/release/$name.wasm" "examples/wasm/$name.wasm"
done

echo
for name in "${modules[@]}"; do
    file="examples/wasm/$name.wasm"
    printf '%-36s %8d bytes  sha256 %s\n' "$file" "$(wc -c <"$file")" "$(sha256sum "$file" | cut -d' ' -f1)"
done
