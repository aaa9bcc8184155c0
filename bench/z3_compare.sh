#!/usr/bin/env bash
# Two Z3s side by side: the verifier's verdicts and times with Debian's libz3 (4.8.12)
# and with the `z3-solver` wheel's (bench/z3-wheel-env.sh), on the project's own
# verification corpus. Prints one markdown table: per corpus entry and Z3, the verdict
# counts (proved, counterexamples, unknown) and the median wall time of RUNS runs,
# the two binaries run one after the other for each run (interleaved), on the same
# machine. docs/performance.md ("Which Z3") has the results and the decision.
#
#   bench/z3_compare.sh              # 5 runs each
#   RUNS=9 bench/z3_compare.sh
#
# The corpus: every example and its broken/ variant, every verifier fixture
# (tests/fixtures/verify), and generated cliff cases (a literal set of 1,000 and 3,000
# members, a 100-character glob, 32 globs on one parameter). Not part of `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}

echo "building both binaries (release)" >&2
cargo build --release -q -p agentpolicy-cli --bin agentpolicy
(
  # shellcheck source=bench/z3-wheel-env.sh
  . bench/z3-wheel-env.sh
  cargo build --release -q -p agentpolicy-cli --bin agentpolicy
)
a=target/release/agentpolicy
b=target/z3-wheel/release/agentpolicy
va=$("$a" --version | sed 's/.*(Z3 \(.*\))/\1/')
vb=$("$b" --version | sed 's/.*(Z3 \(.*\))/\1/')
if [ "$va" = "$vb" ]; then
  echo "both binaries link Z3 $va: the wheel build did not take" >&2
  exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Generated cliff cases (bench/cliff_cases.sh).
# shellcheck source=bench/cliff_cases.sh
. bench/cliff_cases.sh
mkdir -p "$work/cliffs"
gen_set 1000 "$work/cliffs/set_1000.agentpolicy"
gen_set 3000 "$work/cliffs/set_3000.agentpolicy"
gen_glob "$work/cliffs/glob_100.agentpolicy"
gen_globs "$work/cliffs/globs_32.agentpolicy"

corpus=()
for e in examples/*/; do
  corpus+=("${e%/}")
  [ -d "${e}broken" ] && corpus+=("${e}broken")
done
for f in tests/fixtures/verify/*.agentpolicy; do corpus+=("$f"); done
for f in "$work"/cliffs/*.agentpolicy; do corpus+=("$f"); done

# One `check` run: "proved counterexamples unknown seconds", and the verdict of every
# property (for comparing verdicts one by one) in $work/verdicts.
one() {
  local bin=$1 path=$2 start end
  start=$(date +%s.%N)
  "$bin" check "$path" --format json >"$work/out.json" 2>/dev/null || true
  end=$(date +%s.%N)
  python3 - "$work/out.json" "$start" "$end" "$work/verdicts" <<'PY'
import json, sys
path, start, end, verdicts = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
try:
    report = json.load(open(path))
    props = [p for pol in report["policies"] for p in pol.get("properties", [])]
except Exception:
    print("? ? ?", f"{end - start:.3f}")
    sys.exit(0)
count = lambda v: sum(1 for p in props if p.get("verdict") == v)
with open(verdicts, "w") as f:
    for p in props:
        f.write(f"{p.get('property')}|{p.get('subject')}|{p.get('verdict')}\n")
print(count("proved"), count("counterexample"), count("unknown"), f"{end - start:.3f}")
PY
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }

echo "| corpus entry | Z3 $va: proved / cex / unknown | median s | Z3 $vb: proved / cex / unknown | median s | same verdicts |"
echo "|---|---|---|---|---|---|"
for path in "${corpus[@]}"; do
  ta=(); tb=(); ra=""; rb=""
  for _ in $(seq 1 "$runs"); do
    read -r p c u s < <(one "$a" "$path"); ra="$p / $c / $u"; ta+=("$s")
    cp "$work/verdicts" "$work/verdicts.a"
    read -r p c u s < <(one "$b" "$path"); rb="$p / $c / $u"; tb+=("$s")
  done
  ma=$(printf '%s\n' "${ta[@]}" | median)
  mb=$(printf '%s\n' "${tb[@]}" | median)
  same=$(cmp -s "$work/verdicts.a" "$work/verdicts" && echo yes || echo "**no**")
  if [ "$same" != yes ]; then
    diff "$work/verdicts.a" "$work/verdicts" >&2 || true
  fi
  name=${path#"$work/"}
  echo "| \`$name\` | $ra | $ma | $rb | $mb | $same |"
done
