#!/usr/bin/env bash
# Runs the test suite under several OpenBLAS kernels and BLAS thread counts, and prints one
# line per combination. Each kernel sums a matrix product in its own order, so a float32
# tolerance that fits one machine's last digits fails under another kernel here.
#
#   scripts/check_portability.sh [--no-notebooks] [--cores "Haswell SkylakeX"] [--threads "1 2"]
#                                [-- PYTEST ARGS...]
#
#   --no-notebooks  adds -m "not notebook" (the notebooks run no float32 tolerance of their
#                   own that the unit tests lack, and take most of the time)
#   --cores         the OPENBLAS_CORETYPE values to try (default below); a name this
#                   OpenBLAS does not build, or one that this CPU cannot run, falls back to
#                   another kernel: the table shows the kernel that ran, and a kernel already
#                   run is not run again
#   --threads       the OPENBLAS_NUM_THREADS values to try (default "1 2")
#   PYTEST ARGS     passed on, e.g. `-- -n 1 tests/test_distributed.py` (default: -n 2, as CI)
#
# Exit status 0 when every combination passes. Uses .venv/bin/python when it exists.
set -uo pipefail
cd "$(dirname "$0")/.."

cores="Haswell SkylakeX Zen Sandybridge Prescott"
threads="1 2"
marker=()
while [ $# -gt 0 ]; do
    case "$1" in
        --no-notebooks) marker=(-m "not notebook"); shift ;;
        --cores) cores="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --) shift; break ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "error: unknown option $1 (see $0 --help)" >&2; exit 2 ;;
    esac
done
pytest_args=("$@")
[ ${#pytest_args[@]} -eq 0 ] && pytest_args=(-n 2)
python=python
[ -x .venv/bin/python ] && python=.venv/bin/python

# The kernel OpenBLAS picked, from the library NumPy loaded (its name depends on the build:
# openblas_get_corename, or scipy-openblas's prefixed and suffixed one).
probe='
import ctypes, numpy
lib = next(line.split()[-1] for line in open("/proc/self/maps") if "openblas" in line.lower())
blas = ctypes.CDLL(lib)
for name in ("openblas_get_corename", "scipy_openblas_get_corename64_",
             "scipy_openblas_get_corename", "openblas_get_corename64_"):
    if hasattr(blas, name):
        getattr(blas, name).restype = ctypes.c_char_p
        print(getattr(blas, name)().decode()); break
else:
    print("unknown")
'

log_dir=$(mktemp -d "${TMPDIR:-/tmp}/portability.XXXXXX")
rows=()
status=0
# The kernel each name selects; a name whose kernel another name already selected is not
# run again.
runs=()
seen=" "
for core in $cores; do
    kernel=$(OPENBLAS_CORETYPE=$core "$python" -c "$probe" 2>/dev/null || echo "unknown")
    if [ "$kernel" != unknown ] && [[ "$seen" == *" $kernel "* ]]; then
        rows+=("$(printf '%-12s %-12s %-7s %s' "$core" "$kernel" "-" "skipped: kernel $kernel already run")")
    else
        seen="$seen$kernel "
        runs+=("$core:$kernel")
    fi
done
# Every kernel with the first thread count before any with the next, so that a run cut
# short has covered the kernels first.
for n in $threads; do
    for run in "${runs[@]}"; do
        core=${run%%:*} kernel=${run#*:}
        log="$log_dir/$core-$n.log"
        echo "== OPENBLAS_CORETYPE=$core ($kernel) OPENBLAS_NUM_THREADS=$n" >&2
        OPENBLAS_CORETYPE=$core OPENBLAS_NUM_THREADS=$n \
            "$python" -m pytest -q -p no:cacheprovider ${marker[@]+"${marker[@]}"} "${pytest_args[@]}" >"$log" 2>&1
        code=$?
        summary=$(grep -E '^(=+ )?[0-9]+ (passed|failed|error)' "$log" | tail -1 | tr -d '=' | xargs)
        failed=$(grep -E '^(FAILED|ERROR) ' "$log" | cut -d' ' -f2 | tr '\n' ' ')
        [ $code -ne 0 ] && status=1
        rows+=("$(printf '%-12s %-12s %-7s %s' "$core" "$kernel" "$n" "${summary:-exit $code} ${failed}")")
        echo "   ${rows[-1]}" >&2
    done
done

echo
printf '%-12s %-12s %-7s %s\n' "CORETYPE" "kernel" "threads" "result"
printf '%s\n' "${rows[@]}"
echo "(logs in $log_dir)"
exit $status
