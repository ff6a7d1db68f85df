#!/usr/bin/env bash
# The whole test suite on the .venv (scripts/setup.sh makes it), in parallel, one file per worker
# at a time (tests in a file share fixtures). Extra arguments go to pytest:
#   scripts/test.sh tests/unit -k archive        WORKERS=auto scripts/test.sh
# The last line is pytest's summary; the exit status is pytest's, and "nothing collected" fails.
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x .venv/bin/python ]]; then
    echo "test: .venv is missing: run scripts/setup.sh (or make test) first" >&2
    exit 2
fi

.venv/bin/python -m pytest -n "${WORKERS:-2}" --dist loadfile "$@"
rc=$?
if ((rc == 5)); then
    echo "test: FAILED: pytest collected no tests (arguments: ${*:-none})" >&2
    exit 1
fi
exit "$rc"
