#!/usr/bin/env bash
# Times `latent train` of two builds in alternating runs (old, new, old, new, …): each run trains one epoch with the
# given flags, and the figure is its samples/s from metrics.jsonl (training time only, not loading or evaluation).
# Prints each build's median and the median of the paired ratios new/old.
#
#   scripts/train-versus.sh OLD_LATENT NEW_LATENT [ROUNDS] [-- TRAIN_FLAGS…]     default: 5 rounds, --epochs 1
set -euo pipefail
old=${1:?usage: scripts/train-versus.sh OLD_LATENT NEW_LATENT [ROUNDS] [-- TRAIN_FLAGS…]}
new=${2:?usage: scripts/train-versus.sh OLD_LATENT NEW_LATENT [ROUNDS] [-- TRAIN_FLAGS…]}
rounds=${3:-5}
shift $(( $# < 3 ? $# : 3 ))
[ "${1:-}" = "--" ] && shift
flags=("$@")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for round in $(seq 1 "$rounds"); do
    for side in old new; do
        binary=$old; [ "$side" = new ] && binary=$new
        "$binary" train --epochs 1 --out "$work/$side-$round" "${flags[@]}" >/dev/null 2>&1
        echo "train-versus: round $round/$rounds, $side" >&2
    done
done
python3 - "$work" "$rounds" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
def rate(side, r):
    lines = open(f"{work}/{side}-{r}/metrics.jsonl").read().split("\n")
    return json.loads([l for l in lines if l.strip()][-1])["samples_per_second"]
old = [rate("old", r) for r in range(1, rounds + 1)]
new = [rate("new", r) for r in range(1, rounds + 1)]
ratios = [n / o for n, o in zip(new, old)]
print(f"old {statistics.median(old):.0f} samples/s, new {statistics.median(new):.0f} samples/s, "
      f"new/old {statistics.median(ratios):.3f} (pairs: {', '.join(f'{x:.3f}' for x in ratios)})")
PY
