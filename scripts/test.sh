#!/usr/bin/env bash
# The whole test suite, two workers (one per core), one summary line at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest -q -n 2 --dist loadfile -p no:cacheprovider "$@"
rc=$?
if [[ $rc -eq 5 ]]; then
    echo "test: no tests were collected" >&2
    exit 1
fi
exit $rc
