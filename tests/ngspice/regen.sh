#!/usr/bin/env bash
# Regenerate the ngspice goldens in tests/ngspice/golden/ with Debian's ngspice
# (apt-get install ngspice). CI does not run this; the tests read the CSVs.
#   fi.csv    neuron,current_a,rate_hz,first_spike_s   (0.2 s runs, rate from the mean ISI after the first spike)
#   sine.csv  neuron,time_s                            (every spike of the 1 s sine bench)
#   mif_wave.csv time_s,v_mem_v                         (MIF at 2.5 nA, first 20 ms, every accepted ngspice point)
# Spike rule: LIF = the peak of V(mem) at -50 mV, where the reset switch closes;
# MIF/MIF2 = upward crossing of max(x1[,x2]) = 0.5, both linearly interpolated;
# a crossing counts again only after x fell below 0.3.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here"/tsm.lib "$work"/
command -v ngspice >/dev/null || { echo "ngspice not found (apt-get install ngspice)" >&2; exit 1; }

# spikes FILE NEURON -> one spike time per line
spikes() {
  awk -v neuron="$2" '
    { t=$1; v=$2; if (neuron=="lif") {
        # The switch closes at V = -50 mV (a breakpoint in ngspice), so the
        # spike is the peak of V: the last point before V starts to fall.
        if (NR==1) armed=1;
        if (armed && NR>1 && pv > -0.0505 && v < pv) { printf "%.10e\n", pt; armed=0 }
        if (!armed && v < -0.06) armed=1;
        pt=t; pv=v; next }
      s=$4+0; if (neuron=="mif2" && $6+0>s) s=$6+0; lvl=0.5; rearm=0.2
      # Schmitt trigger: re-arm only after the signal fell well below the level,
      # so chatter around the crossing (seen on ngspice output) counts once.
      if (NR==1) armed=1;
      if (armed && NR>1 && ps<lvl && s>=lvl) { printf "%.10e\n", pt + (t-pt)*(lvl-ps)/(s-ps); armed=0 }
      if (!armed && s < lvl - rearm) armed=1;
      pt=t; ps=s }' "$1"
}

run() { # NEURON NETLIST-TEMPLATE IIN -> data file path
  local n=$1 tpl=$2 iin=$3 out="$work/$1_$3.dat"
  sed -e "s|OUTFILE|$out|" -e "s|^\.param iin=.*|.param iin=$iin|" "$here/$tpl" > "$work/run.cir"
  (cd "$work" && ngspice -b run.cir >/dev/null 2>&1)
  echo "$out"
}

echo "neuron,current_a,rate_hz,first_spike_s" > "$here/golden/fi.csv"
for n in lif mif mif2; do
  for i in 0 1e-9 1.8e-9 1.9e-9 2.0e-9 2.1e-9 2.2e-9 2.4e-9 2.6e-9 2.8e-9 3.0e-9; do
    f=$(run $n $n.cir $i)
    spikes "$f" $n | awk -v n=$n -v i=$i '{ s[NR]=$1 } END {
      if (NR>=2) r=(NR-1)/(s[NR]-s[1]); else r=0;
      first = (NR>=1) ? sprintf("%.10e", s[1]) : "";
      printf "%s,%s,%.6f,%s\n", n, i, r, first }' >> "$here/golden/fi.csv"
  done
done

echo "neuron,time_s" > "$here/golden/sine.csv"
for n in lif mif mif2; do
  f=$(run $n ${n}_sine.cir 0)
  spikes "$f" $n | sed "s/^/$n,/" >> "$here/golden/sine.csv"
done

f=$(run mif mif.cir 2.5e-9)
echo "time_s,v_mem_v" > "$here/golden/mif_wave.csv"
awk '$1 <= 0.02 { printf "%.9e,%.9e\n", $1, $2 }' "$f" | awk 'NR % 5 == 1' >> "$here/golden/mif_wave.csv"
echo "goldens written to $here/golden"
