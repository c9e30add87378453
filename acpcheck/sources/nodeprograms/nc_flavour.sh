# Which nc this is (NCV): the flavours differ in their flags.
# shellcheck disable=SC2034  # NCV is read by listener.sh and connector.sh, which follow this fragment
if [ "$T" = nc ]; then
  case $(nc -h 2>&1 | head -n 3) in
    *OpenBSD*) NCV=openbsd ;; *BusyBox*) NCV=busybox ;; *Ncat*) NCV=ncat ;; *) NCV=traditional ;;
  esac
fi
