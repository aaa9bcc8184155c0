#!/usr/bin/env bash
# Generators of the verifier's cliff cases (issue 20, "No cliffs"), sourced by
# bench/z3_compare.sh and bench/cliffs.sh:
#   gen_set N FILE        a literal set of N members on one text argument
#   gen_glob FILE [LEN]   one glob of at most LEN characters (default: the original
#                         "~100-character" case, 122 characters)
#   gen_globs FILE [N]    N globs (default 32) on one parameter
#   gen_rules N FILE      N rules on one (agent, tool) cell

gen_set() {
  local n=$1 file=$2
  {
    echo "policy set_$n version \"1\""
    printf 'set payees = ['
    for i in $(seq 1 "$n"); do
      [ "$i" -gt 1 ] && printf ', '
      printf '"payee-%05d@vendors.example"' "$i"
    done
    echo ']'
    echo 'tool pay(to: text, amount: money) { effect financial }'
    echo 'agent clerk {'
    echo '  owner "ap@example.com"'
    echo '  allow pay when to in payees and amount < $1,000'
    echo '  deny pay when amount >= $1,000'
    echo '}'
    echo 'assert never clerk calls pay when amount >= $1,000 and to in payees'
  } >"$file"
}

gen_glob() {
  local file=$1 n=9 long
  # "https://*." + n segments of 11 characters + "example.com/*".
  [ -n "${2:-}" ] && n=$((($2 - 23) / 11))
  long=$(printf 'segment-%02d-' $(seq 1 "$n"))
  {
    echo 'policy long_glob version "1"'
    echo 'tool fetch(url: text) { effect read }'
    echo 'agent browser {'
    echo '  owner "web@example.com"'
    echo "  allow fetch when url matches \"https://*.${long}example.com/*\""
    echo '}'
    echo "assert never browser calls fetch when url matches \"http://*\""
  } >"$file"
}

gen_globs() {
  local file=$1 n=${2:-32}
  {
    echo 'policy many_globs version "1"'
    echo 'tool fetch(url: text) { effect read }'
    echo 'agent browser {'
    echo '  owner "web@example.com"'
    for i in $(seq 1 "$n"); do
      echo "  allow fetch when url matches \"https://site-$i.example.com/*\""
    done
    echo '}'
    echo "assert never browser calls fetch when url matches \"http://*\""
  } >"$file"
}

# N rules on one cell: per payee an allow under a limit, every tenth payee an
# escalation above a smaller limit, every seventh a deny; a confidence floor.
gen_rules() {
  local n=$1 file=$2
  python3 - "$n" >"$file" <<'PY'
import sys
n = int(sys.argv[1])
print(f'policy rules_{n} version "1"')
print('escalation finance { notify "finance@example.com" timeout 1h then deny }')
print('tool pay(to: text, amount: money) { effect financial }')
print('agent clerk {')
print('  owner "ap@example.com"')
print('  deny pay when amount > $10,000')
i = 0
k = 1
while k < n:
    i += 1
    payee = f'"payee-{i:05d}@vendors.example"'
    print(f'  allow pay when to == {payee} and amount < ${(i % 50 + 1) * 100}')
    k += 1
    if k < n and i % 10 == 0:
        print(f'  escalate pay to finance when to == {payee} and amount > ${(i % 50 + 1) * 20}')
        k += 1
    if k < n and i % 7 == 0:
        print(f'  deny pay when to == {payee} and confidence < 0.{i % 9 + 1}')
        k += 1
print('}')
print('assert never clerk calls pay when amount > $10,000')
PY
}
