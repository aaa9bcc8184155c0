#!/usr/bin/env bash
# The operator console's browser tests (server/console-tests/console.test.mjs): the real
# `agentpolicy serve` binary driven by headless Debian Chromium (/usr/bin/chromium)
# through playwright-core, pinned below and installed under target/ (no browser is
# downloaded: `npx playwright install` needs a CDN), and axe-core for the accessibility
# checks. Needs node, npm and chromium
# (`.ci/run` installs chromium). `--screenshots` also writes the screenshots the tests
# take into docs/ (made smaller with Pillow, pinned below, in a venv under target/). Extra arguments go to `node --test`.
set -euo pipefail
cd "$(dirname "$0")/../.."

PLAYWRIGHT_CORE_VERSION=1.65.2
AXE_CORE_VERSION=4.14.1   # the accessibility checks (WCAG 2 A and AA)
PILLOW_VERSION=11.3.0   # only for --screenshots

shots=0
args=()
for a in "$@"; do
  if [ "$a" = "--screenshots" ]; then shots=1; else args+=("$a"); fi
done

npm_dir=target/console-npm
if ! grep -qs "\"version\": \"$PLAYWRIGHT_CORE_VERSION\"" "$npm_dir/node_modules/playwright-core/package.json" \
  || ! grep -qs "\"version\": \"$AXE_CORE_VERSION\"" "$npm_dir/node_modules/axe-core/package.json"; then
  mkdir -p "$npm_dir"
  [ -f "$npm_dir/package.json" ] || echo '{"private": true}' > "$npm_dir/package.json"
  (cd "$npm_dir" && npm install --silent --no-audit --no-fund \
    "playwright-core@$PLAYWRIGHT_CORE_VERSION" "axe-core@$AXE_CORE_VERSION")
fi
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || { echo "chromium not found at ${CHROMIUM:-/usr/bin/chromium} (apt-get install chromium)" >&2; exit 2; }

cargo build --quiet -p agentpolicy-cli
rm -rf target/console-screenshots
node --test --test-concurrency=1 "${args[@]}" server/console-tests/console.test.mjs
if [ "$shots" = 1 ]; then
  # Chromium's PNGs, reduced to 64 colours (a third of the bytes) with pinned Pillow.
  venv=target/png-venv
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -c "import PIL; assert PIL.__version__ == '$PILLOW_VERSION'" 2>/dev/null \
    || "$venv/bin/pip" install --quiet "pillow==$PILLOW_VERSION"
  "$venv/bin/python" - <<'PY'
import glob, os
from PIL import Image
for path in sorted(glob.glob("target/console-screenshots/*.png")):
    out = os.path.join("docs", os.path.basename(path))
    image = Image.open(path).convert("RGB")
    image.quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(out, optimize=True)
    print(f"{out}: {os.path.getsize(out)} bytes")
PY
fi
