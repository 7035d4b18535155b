#!/usr/bin/env bash
# Counts the public symbols of the library modules that have no doc comment, with DocC's coverage report: every
# symbol the modules declare themselves (conformances' synthesized members, such as `init(rawValue:)` or `==`, are
# the standard library's and are left out). Prints each undocumented symbol and exits 1 if there is any.
# Articles are left out too: DocC's coverage report takes an abstract only from a symbol, so it lists every article
# as having none, whatever the article says.
#
#   scripts/doc-coverage.sh [MODULE…]        default: every library module
set -euo pipefail
cd "$(dirname "$0")/.."
modules=("$@")
if [ ${#modules[@]} -eq 0 ]; then modules=(LatentCore LatentData LatentModels LatentEvaluation LatentTraining); fi
missing=0
for module in "${modules[@]}"; do
    log=$(mktemp)
    swift package generate-documentation --target "$module" --experimental-documentation-coverage \
        --coverage-summary-level detailed >"$log" 2>&1
    count=$(python3 - "$log" "$module" <<'PY'
import sys
synthesized = {"init(rawValue:)", "rawValue", "hashValue", "hash(into:)", "encode(to:)", "init(from:)", "==(_:_:)",
               "!=(_:_:)", "localizedDescription", "helpAnchor", "failureReason", "recoverySuggestion", "allCases",
               "AllCases", "RawValue", "<(_:_:)", ">(_:_:)", "<=(_:_:)", ">=(_:_:)", "...(_:_:)", "..<(_:_:)",
               "...(_:)", "..<(_:)"}
rows = [line.split("|") for line in open(sys.argv[1]) if line.count("|") >= 7 and "doc://" in line]
undocumented = []
for row in rows:
    name, kind, abstract = row[0].strip(), row[1].strip(), row[2].strip()
    if kind in ("CollectionGroup", "Article") or abstract != "false" or name in synthesized:
        continue
    undocumented.append(row[-1].strip().split("/documentation/")[-1])
for path in sorted(set(undocumented)):
    print("undocumented: " + path, file=sys.stderr)
print(len(set(undocumented)))
PY
)
    echo "doc-coverage: $module: $count undocumented public symbols" >&2
    missing=$((missing + count))
    rm -f "$log"
done
[ "$missing" -eq 0 ]
