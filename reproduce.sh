#!/usr/bin/env bash
# Regenerate every paper's tables and figures, or run the whole test suite.
#
#   ./reproduce.sh            run all notebooks on the embedded synthetic phantoms (profile quick)
#   ./reproduce.sh --test     run the whole test suite (fast + slow + browser)
#
# Needs only python3 (>= 3.10; 3.11 recommended) and pip. Creates or reuses a virtual
# environment (.venv/ at the repo root, or $BRAINLIB_VENV), installs brainlib with its pinned
# dependencies once, and registers the Jupyter kernel `brainlib` inside that environment.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"

usage() {
  cat <<'EOF'
Usage: ./reproduce.sh [options]          regenerate results (notebooks -> outputs/, REPORT.md)
       ./reproduce.sh --test [PYTEST_ARGS...]   run the whole test suite

Options:
  --profile smoke|quick|full   experiment size (default: quick; full = the papers' settings)
  --only KEY[,KEY]             run only these notebooks (paper keys, e.g. he2024,wang_drct2)
  --data-root DIR              real dataset root (default: synthetic phantoms, generated once
                               into .cache/brainlib and reused)
  --out DIR                    output folder (default: outputs/)
  --device auto|cpu|cuda       compute device (default: auto = CUDA when present)
  --force                      re-run notebooks even if nothing they depend on changed
  --jobs N                     notebooks run at once (default: one per CPU core for smoke and
                               quick, 1 for full; each notebook keeps its own torch threads,
                               so its numbers are the same as when run alone)
  --nproc N                    train on N processes of this node (torch.distributed, DDP; a
                               distributed run re-runs every notebook; docs/scale.md)
  --test [ARGS...]             run the test suite: pytest -m "" (arguments after --test go to pytest)
  -h, --help                   show this help

Environment:
  BRAINLIB_VENV   virtual environment to create/reuse (default: <repo>/.venv). An already
                  active venv or conda env in which brainlib imports from this checkout is
                  used as is.
  PYTHON          interpreter used to create the environment (default: python3.11, else python3)
  BRAINLIB_CACHE  cache folder for phantoms and tensors (default: <repo>/.cache/brainlib)

Exit status is non-zero if any notebook failed (the others still run) or any test failed;
75 if another run is writing into the same --out (one run per output folder), 2 if --out is,
is inside, or contains --data-root.
EOF
}

die() { echo "reproduce.sh: $*" >&2; exit 2; }

profile=quick; nproc=1; jobs=""; only=""; data_root=""; out="outputs"; device=auto; force=0; mode=run
notebooks="${BRAINLIB_NOTEBOOKS:-}"  # hidden: another notebooks folder (tests use it)
pytest_args=()
while (($#)); do
  opt=""
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --test) mode=test; shift; pytest_args=("$@"); break ;;
    --force) force=1; shift ;;
    --profile|--only|--data-root|--out|--device|--notebooks|--nproc|--jobs)
      (($# >= 2)) || die "$1 needs a value"
      opt="$1"; val="$2"; shift 2 ;;
    --profile=*|--only=*|--data-root=*|--out=*|--device=*|--notebooks=*|--nproc=*|--jobs=*)
      opt="${1%%=*}"; val="${1#*=}"; shift ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
  case "$opt" in
    --profile) profile="$val" ;;
    --only) only="$val" ;;
    --data-root) data_root="$val" ;;
    --out) out="$val" ;;
    --device) device="$val" ;;
    --nproc) nproc="$val" ;;
    --jobs) jobs="$val" ;;
    --notebooks) notebooks="$val" ;;
  esac
done
case "$profile" in smoke|quick|full) ;; *) die "--profile must be smoke, quick or full (got '$profile')" ;; esac
case "$device" in auto|cpu|cuda) ;; *) die "--device must be auto, cpu or cuda (got '$device')" ;; esac
[[ "$nproc" =~ ^[1-9][0-9]*$ ]] || die "--nproc must be a positive integer (got '$nproc')"
[[ -z "$jobs" || "$jobs" =~ ^[1-9][0-9]*$ ]] || die "--jobs must be a positive integer (got '$jobs')"
if [[ -n "$data_root" && ! -d "$data_root" ]]; then die "--data-root $data_root is not a folder"; fi

# ---------------------------------------------------------------- environment
uses_this_checkout() {  # $1 = python: does brainlib import from this checkout?
  local where
  where="$("$1" -c 'import os, brainlib; print(os.path.dirname(os.path.dirname(os.path.realpath(brainlib.__file__))))' 2>/dev/null)" || return 1
  [[ "$where" == "$(cd "$ROOT" && pwd -P)" ]]
}

find_base_python() {
  local candidate
  for candidate in "${PYTHON:-}" python3.11 python3; do
    [[ -n "$candidate" ]] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  die "no python >= 3.10 found (install python3.11, or set PYTHON=/path/to/python)"
}

PY=""
active="${VIRTUAL_ENV:-${CONDA_PREFIX:-}}"
if [[ -n "$active" && -x "$active/bin/python" ]] && uses_this_checkout "$active/bin/python"; then
  PY="$active/bin/python"   # an active environment with brainlib from this checkout: use as is
else
  VENV="${BRAINLIB_VENV:-$ROOT/.venv}"
  if [[ ! -x "$VENV/bin/python" ]]; then
    base="$(find_base_python)"
    echo "reproduce.sh: creating the environment $VENV with $base"
    "$base" -m venv "$VENV"
  fi
  PY="$VENV/bin/python"
  stamp="$VENV/.brainlib-install-stamp"
  want="$( { cat "$ROOT/pyproject.toml"; "$PY" -c 'import sys; print(sys.version)'; echo "$ROOT"; } \
           | "$PY" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
  if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]] || ! uses_this_checkout "$PY"; then
    echo "reproduce.sh: installing brainlib and its pinned dependencies into $VENV"
    echo "              (first time: several minutes, PyTorch is large)"
    start=$SECONDS
    "$PY" -m pip install --disable-pip-version-check --progress-bar off -q -e "$ROOT[notebooks,dev]"
    echo "$want" > "$stamp"
    echo "reproduce.sh: installed in $((SECONDS - start)) s"
  fi
fi

# The Jupyter kernel papermill runs the notebooks under, registered inside the environment.
if ! "$PY" - <<'EOF' 2>/dev/null
import sys
from pathlib import Path
from jupyter_client.kernelspec import KernelSpecManager
spec = KernelSpecManager().get_kernel_spec("brainlib")
sys.exit(0 if Path(spec.argv[0]).resolve() == Path(sys.executable).resolve() else 1)
EOF
then
  "$PY" -m ipykernel install --sys-prefix --name brainlib --display-name "Python (brainlib)" >/dev/null
  echo "reproduce.sh: registered the Jupyter kernel 'brainlib' in $("$PY" -c 'import sys; print(sys.prefix)')"
fi

# ---------------------------------------------------------------- the two jobs
if [[ "$mode" == test ]]; then
  exec "$PY" -m pytest -m "" "${pytest_args[@]}"
fi

run_args=(--profile "$profile" --out "$out" --device "$device")
((nproc > 1)) && run_args+=(--nproc "$nproc")
[[ -n "$only" ]] && run_args+=(--only "$only")
[[ -n "$jobs" ]] && run_args+=(--jobs "$jobs")
[[ -n "$data_root" ]] && run_args+=(--data-root "$data_root")
[[ -n "$notebooks" ]] && run_args+=(--notebooks "$notebooks")
((force)) && run_args+=(--force)

# One run at a time per output folder, which may not overlap the data root: fd 9 holds
# <out>/.lock until this script ends (brainlib run and report inherit it: BRAINLIB_LOCK_FD).
"$PY" -m brainlib.run_guard check "$out" ${data_root:+"$data_root"} || exit 2
mkdir -p "$out"
exec 9<>"$out/.lock"
"$PY" -m brainlib.run_guard lock "$out" 9 || exit $?
export BRAINLIB_LOCK_FD=9

start=$SECONDS
status=0
"$PY" -m brainlib run "${run_args[@]}" || status=$?
report_args=(--out "$out")
[[ -n "$notebooks" ]] && report_args+=(--notebooks "$notebooks")
"$PY" -m brainlib report "${report_args[@]}" || status=$?
echo "reproduce.sh: done in $((SECONDS - start)) s; report: $out/REPORT.md (and REPORT.html)"
if ((status)); then echo "reproduce.sh: some notebooks failed (see the report)" >&2; fi
exit "$status"
