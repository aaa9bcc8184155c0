#!/usr/bin/env bash
# The verifier's cliff cases (issue 20, "No cliffs"): for each generated case, the wall
# time, peak memory (`/usr/bin/time -v`, maximum resident set size) and the verdict
# counts of `agentpolicy check` with the release binary. docs/performance.md ("Verifier
# cliffs") has the results. Not part of `cargo test`.
#
#   bench/cliffs.sh                 # every case
#   CASES="set_100000 rules_1000" bench/cliffs.sh
#   TIMEOUT=900 bench/cliffs.sh     # seconds per case before it is killed (default 300)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/cliff_cases.sh
. bench/cliff_cases.sh
limit=${TIMEOUT:-300}
cases=${CASES:-"set_1000 set_3000 set_100000 glob_100 glob_256 globs_32 rules_1000 rules_3000 rules_10000"}

echo "building the release binary" >&2
cargo build --release -q -p agentpolicy-cli --bin agentpolicy
bin=$PWD/target/release/agentpolicy
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "load: $(uptime)"
echo "| case | proved / cex / unknown | wall s | peak MiB | exit |"
echo "|---|---|---|---|---|"
for c in $cases; do
  f=$work/$c.agentpolicy
  case $c in
    set_*) gen_set "${c#set_}" "$f" ;;
    glob_*) gen_glob "$f" "${c#glob_}" ;;
    globs_*) gen_globs "$f" "${c#globs_}" ;;
    rules_*) gen_rules "${c#rules_}" "$f" ;;
    *) echo "unknown case $c" >&2; exit 2 ;;
  esac
  set +e
  /usr/bin/time -v -o "$work/time" timeout "$limit" "$bin" check "$f" --format json >"$work/out.json" 2>/dev/null
  rc=$?
  set -e
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time" |
    awk -F: '{ if (NF == 3) print $1 * 3600 + $2 * 60 + $3; else print $1 * 60 + $2 }')
  kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time")
  counts=$(python3 - "$work/out.json" <<'PY'
import json, sys
try:
    report = json.load(open(sys.argv[1]))
    props = [p for pol in report["policies"] for p in pol.get("properties", [])]
except Exception:
    print("killed (no report)")
    sys.exit(0)
n = lambda v: sum(1 for p in props if p.get("verdict") == v)
print(f'{n("proved")} / {n("counterexample")} / {n("unknown")}')
PY
)
  [ "$rc" = 124 ] && counts="killed after ${limit} s"
  echo "| \`$c\` | $counts | $wall | $((kib / 1024)) | $rc |"
done
