# acpcheck's connector with socat or nc, after nc_flavour.sh; the caller sets TO
# (seconds), PAR (targets at a time) and T (the tool). TCP only, PAR targets at a
# time in background subshells.
hex() { od -An -tx1 | tr -d ' \n'; }
one() {
  idx=$1 p=$2 host=$3 port=$4 mode=$5
  if [ "$p" != tcp ]; then echo "acpcheck-conn $idx notool"; return; fi
  f=$(mktemp) || { echo "acpcheck-conn $idx unreachable no_mktemp"; return; }
  if [ "$T" = socat ]; then
    printf 'ACPCHECK?\n' | socat -T"$TO" - TCP:"$host":"$port",connect-timeout="$TO" >"$f.out" 2>"$f" &
  else
    printf 'ACPCHECK?\n' | nc $NCVERBOSE -w "$TO" "$host" "$port" >"$f.out" 2>"$f" &
  fi
  pid=$!
  # some nc never time out a silent peer: end it here
  ( sleep $((TO + 1)); kill "$pid" ) >/dev/null 2>&1 &
  w=$!
  wait "$pid"; rc=$?
  kill "$w" 2>/dev/null
  d=$(hex <"$f.out"); e=$(cat "$f"); rm -f "$f" "$f.out"
  case $e in
    *efused*) r=refused ;;
    *imed\ out*|*imeout*) r=timeout ;;
    *o\ route*|*nreachable*) r="unreachable no_route" ;;
    *) if [ -n "$d" ]; then r="data $d"; elif [ "$mode" = tcp ]; then r=ok; elif [ "$rc" -gt 128 ]; then r=silent; else r=closed; fi ;;
  esac
  echo "acpcheck-conn $idx $r"
}
NCVERBOSE=-v; [ "$NCV" = busybox ] && NCVERBOSE=
n=0
while read -r a b c d e; do
  [ -n "$a" ] || continue
  one "$a" "$b" "$c" "$d" "$e" &
  n=$((n + 1))
  if [ "$n" -ge "$PAR" ]; then wait; n=0; fi
done
wait
