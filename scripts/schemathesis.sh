#!/usr/bin/env bash
# Runs Schemathesis (from PyPI) against the OpenAPI document of a live
# coordinator: it generates requests for every operation from the schema
# and checks that no answer is a 5xx, that every status code, content type
# and body conforms to the schema.
#
#   scripts/schemathesis.sh           # 50 examples per operation
#   scripts/schemathesis.sh 500
#
# Needs python3 with venv; installs Schemathesis into target/schemathesis-venv.
# The coordinator runs with plain HTTP on loopback (--insecure), no rate
# limit, a faucet, and a funded wallet whose bearer token authenticates the
# generated requests.
set -euo pipefail
cd "$(dirname "$0")/.."
max_examples="${1:-50}"
venv="target/schemathesis-venv"
if [ ! -x "$venv/bin/st" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "schemathesis>=4,<5"
fi
cargo build --quiet --bin iog
iog="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/iog"

work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"
"$iog" coordinator --insecure --listen "127.0.0.1:$port" --data-dir "$work/coordinator" \
    --faucet-max-io 1000 --rate-limit-per-s 0 >"$work/coordinator.log" 2>&1 &
coordinator=$!
trap 'kill $coordinator 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do
    curl -fsS "$url/v1/health" >/dev/null 2>&1 && break
    sleep 0.1
done
export IOG_COORDINATOR="$url" IOG_WALLET_DIR="$work/wallet"
"$iog" wallet faucet 100 >/dev/null
# A job of its own, so that the job endpoints have something to find.
"$iog" job submit examples/hash-blake3.toml >/dev/null
token="$("$iog" wallet token)"

"$venv/bin/st" run "$url/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples "$max_examples" \
    --report junit --report-dir "$work/report" \
    | tee "target/schemathesis.log"
echo "coordinator log: tail of $work/coordinator.log"
tail -5 "$work/coordinator.log"
