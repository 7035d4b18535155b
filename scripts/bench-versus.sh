#!/usr/bin/env bash
# Times the training-step rows of two latent-bench binaries in alternating runs (old, new, old, new, …) and prints,
# per row, each binary's median samples/s and the median of the paired ratios new/old: the check that a change
# elsewhere does not slow the step (docs/PERFORMANCE.md § Comparing two builds).
#
#   scripts/bench-versus.sh OLD_LATENT_BENCH NEW_LATENT_BENCH [ROUNDS]     default: 5 rounds of `--quick --only steps`
set -euo pipefail
old=${1:?usage: scripts/bench-versus.sh OLD_LATENT_BENCH NEW_LATENT_BENCH [ROUNDS]}
new=${2:?usage: scripts/bench-versus.sh OLD_LATENT_BENCH NEW_LATENT_BENCH [ROUNDS]}
rounds=${3:-5}
for binary in "$old" "$new"; do
    [ -x "$binary" ] || { echo "bench-versus: $binary is not an executable; build it with swift build -c release --product latent-bench" >&2; exit 2; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for round in $(seq 1 "$rounds"); do
    for side in old new; do
        binary=$old; [ "$side" = new ] && binary=$new
        echo "bench-versus: round $round/$rounds, $side" >&2
        "$binary" --quick --only steps --json "$work/$side-$round.json" >/dev/null
    done
done
python3 - "$work" "$rounds" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
def rows(path):
    out = {}
    for row in json.load(open(path))["rows"]:
        if row.get("kind") == "train_step":
            key = (row["batch"], row["latent"], row["posterior"], row.get("samples", 1), row["threads"])
            out[key] = row["samples_per_second"]
    return out
runs = {side: [rows(f"{work}/{side}-{r}.json") for r in range(1, rounds + 1)] for side in ("old", "new")}
print("| batch | k | posterior | m | threads | old samples/s | new samples/s | new/old (median of pairs) |")
print("|---:|---:|---|---:|---:|---:|---:|---:|")
for key in sorted(runs["old"][0]):
    old = [r[key] for r in runs["old"]]; new = [r[key] for r in runs["new"]]
    ratio = statistics.median(n / o for n, o in zip(new, old))
    print(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {key[4]} | {statistics.median(old):.0f} | "
          f"{statistics.median(new):.0f} | {ratio:.3f} |")
PY
