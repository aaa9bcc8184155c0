# Source this file to build agentpolicy against the Z3 of the `z3-solver` wheel from
# PyPI instead of Debian's libz3-dev (docs/performance.md, "Which Z3"):
#
#   . bench/z3-wheel-env.sh            # Z3 5.4.1 by default; Z3_WHEEL_VERSION=4.16.0.0 for another
#   cargo build --release -p agentpolicy-cli
#   target/z3-wheel/release/agentpolicy --version    # agentpolicy 0.1.0 (Z3 5.4.1)
#
# It installs the wheel into target/z3-wheel/venv (once), and sets: the library's folder
# for z3-sys (`Z3_LIBRARY_PATH_OVERRIDE`, with pkg-config off so Debian's Z3 is not
# found first), the version z3-sys cannot detect without a `z3` binary, an rpath so the
# binaries find the wheel's libz3.so.5.4 at run time (without it they fail to start;
# they never fall back to Debian's libz3.so.4), a target directory of its own (the
# rpath flag would otherwise rebuild everything in target/), and AGENTPOLICY_EXPECT_Z3,
# which cli/tests/cli.rs checks against `agentpolicy --version`.
_ap_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
_ap_version="${Z3_WHEEL_VERSION:-5.4.1.0}"
_ap_venv="$_ap_root/target/z3-wheel/venv"
if [ ! -x "$_ap_venv/bin/python" ]; then
  python3 -m venv "$_ap_venv"
fi
"$_ap_venv/bin/pip" install -q "z3-solver==$_ap_version"
_ap_lib="$("$_ap_venv/bin/python" -c 'import os, z3; print(os.path.join(os.path.dirname(z3.__file__), "lib"))')"
export Z3_NO_PKG_CONFIG=1
export Z3_LIBRARY_PATH_OVERRIDE="$_ap_lib"
export Z3_SYS_Z3_VERSION="${_ap_version%.0}"
export AGENTPOLICY_EXPECT_Z3="${_ap_version%.0}"
export RUSTFLAGS="-C link-arg=-Wl,-rpath,$_ap_lib"
export CARGO_TARGET_DIR="$_ap_root/target/z3-wheel"
unset _ap_root _ap_version _ap_venv _ap_lib
