# acpcheck's listener with socat or nc (TCP only), after nc_flavour.sh; the caller sets
# N (nonce), I (identity), B (bind address), SPECS (proto/port words) and T (the tool).
# One background loop per TCP port; a port whose first bind fails ends its loop at
# once, which is how "busy" is told. The nc flavours differ in flags.
H="acpcheck $N $I"
ncl() {
  case $NCV in
    openbsd) nc -N -l $B "$1" ;;
    busybox) nc -l -p "$1" -e sh -c "echo $H; read -r x" ;;  # BusyBox's small nc: no address choice, no close on EOF
    ncat) nc -l --send-only $B "$1" ;;
    *) nc -l -p "$1" -q 1 ${B:+-s "$B"} ;;
  esac
}
ports=""
for s in $SPECS; do
  p=${s%/*}; port=${s#*/}
  if [ "$p" != tcp ]; then echo "acpcheck-port $p $port notool"; continue; fi
  if [ "$T" = socat ]; then
    socat TCP-LISTEN:"$port",reuseaddr,fork${B:+,bind=$B} SYSTEM:"echo $H; read -r x" </dev/null >/dev/null 2>&1 &
  else
    ( while printf '%s\n' "$H" | ncl "$port" >/dev/null 2>&1; do :; done ) &
  fi
  eval "pid_$port=\$!"
  ports="$ports $port"
done
sleep 0.3 2>/dev/null || sleep 1
for port in $ports; do
  eval "pid=\$pid_$port"
  if kill -0 "$pid" 2>/dev/null; then echo "acpcheck-port tcp $port ok"; else echo "acpcheck-port tcp $port busy could_not_listen"; fi
done
echo acpcheck-ready
while printf '\n'; do sleep 1; done
