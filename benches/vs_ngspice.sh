#!/usr/bin/env bash
# circsnn vs ngspice -b on the same circuits, side by side in one run.
# Usage: benches/vs_ngspice.sh [repeats]   (needs: apt-get install ngspice)
# Prints wall time, spike count and first spike of each, and the time ratio.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
reps=${1:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/circsnn"
cp "$root/tests/ngspice/tsm.lib" "$work/"

best() { # command... -> best wall seconds over $reps runs
  local b=999999
  for _ in $(seq "$reps"); do
    local s=$(date +%s.%N); "$@" >/dev/null 2>&1; local e=$(date +%s.%N)
    b=$(echo "$e - $s" | bc -l | awk -v b="$b" '{ print ($1 < b) ? $1 : b }')
  done
  echo "$b"
}

printf "%-22s %10s %10s %8s %10s %10s\n" case ngspice_s circsnn_s ratio ng_spikes cs_spikes
for case in "mif_sine:mif_sine.cir:mif_sine.cir:" "mif_2.5nA:mif.cir:mif.cir:--param iin=2.5n"; do
  IFS=: read -r name ngnet csnet extra <<<"$case"
  sed -e "s|OUTFILE|$work/ng.dat|" -e 's/^\.param tstop=.*/.param tstop=1/' -e 's/^\.param iin=.*/.param iin=2.5n/' "$root/tests/ngspice/$ngnet" > "$work/run.cir"
  tn=$(cd "$work" && best ngspice -b run.cir)
  # shellcheck disable=SC2086
  tc=$(best "$bin" sim "$root/netlists/$csnet" $extra --out "$work/cs" -q)
  ng_spikes=$(awk '{ s=$4+0; if (NR>1 && ps<0.5 && s>=0.5 && armed) { n++; armed=0 } if (s<0.1) armed=1; ps=s } BEGIN{armed=1} END{ print n+0 }' "$work/ng.dat")
  cs_spikes=$(($(wc -l < "$work/cs/spikes.csv") - 1))
  printf "%-22s %10.3f %10.3f %8.1f %10s %10s\n" "$name" "$tn" "$tc" "$(echo "$tn / $tc" | bc -l)" "$ng_spikes" "$cs_spikes"
done
