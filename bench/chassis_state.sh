#!/bin/sh
# The chassis of a benchmark BMC: ipmi_sim runs this (its chassis_control)
# for every power and boot request, as `chassis_state.sh STATEDIR get power|boot ...`
# or `... set power 0|1 | reset 1 | shutdown 1 | boot DEVICE`.  There is no
# machine: the power is a 0 or 1 in STATEDIR/power, so that what is measured
# is the IPMI side.  Shell builtins only, as ipmi_sim waits for it.
dir=$1
verb=$2
shift 2
if [ "$verb" = get ]; then
    for item in "$@"; do
        case $item in
        power)
            read -r power <"$dir/power" 2>/dev/null || power=0
            echo "power:$power"
            ;;
        boot) echo "boot:none" ;;
        esac
    done
else
    while [ $# -ge 2 ]; do
        case $1 in
        power) echo "$2" >"$dir/power" ;;
        shutdown) echo 0 >"$dir/power" ;;
        esac
        shift 2
    done
fi
