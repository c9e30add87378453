# acpcheck node probe: POSIX sh (dash, bash, busybox ash), no python on the node.
#
# Runs as `sh -s` with this text on stdin, after a preamble of variable
# assignments written by acpcheck.facts.model.probe_script() (which also puts the
# sections declared with their fact in model.py at the line marked below):
#   SYSCTLS      name=/proc/sys/path pairs        PACKAGES    package names to ask about
#   BINARIES     commands to look up on PATH      PATHS_ASKED paths whose existence matters
#   DISK_PATHS   paths whose filesystem to df     LIMIT       seconds allowed per command
# It only READS, and prints ONE JSON document of raw sections:
#   {"probe":1,"clock":"<date +%s.%N>","sections":{"<name>":{"out":"…","err":"…","rc":N},…}}
# For a file section rc is 0 (read), 1 (absent) or 2 (not readable); for a
# command its exit status. A section that does not apply is left out. All
# interpretation happens in Python (acpcheck/facts/parse.py).
#
# Every command runs with stdin from /dev/null: this script arrives on stdin,
# and a command that read it would swallow the rest of the probe.

# The node's clock comes first: the controller times the arrival of these bytes.
printf '{"probe":1,"clock":"%s",' "$(date +%s.%N </dev/null 2>/dev/null)"

LC_ALL=C; export LC_ALL  # byte-oriented awk, untranslated error messages
# The sbin directories: the installer runs as root, but a non-root login's PATH lacks them.
PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"; export PATH
umask 077

D=$(mktemp -d 2>/dev/null </dev/null) || D=$(mktemp -d /dev/shm/acpcheck.XXXXXX 2>/dev/null </dev/null) || {
	echo "acpcheck probe: cannot create a temporary directory" >&2
	exit 3
}
trap 'rm -rf "$D"' EXIT
trap 'exit 129' HUP INT TERM PIPE
n=0
rc=0

# rec NAME RC OUTFILE ERRFILE NOTE: one line of the manifest the JSON writer reads.
rec() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$D/manifest"; }

# F NAME PATH: a file, read later by awk straight from PATH (no process per file).
F() {
	if [ -f "$2" ] && [ -r "$2" ]; then rec "$1" 0 "$2" "" ""
	elif [ -e "$2" ]; then rec "$1" 2 "" "" "not a readable file"
	else rec "$1" 1 "" "" "absent"
	fi
}

# C NAME COMMAND...: a command; stdout and stderr kept apart; exit status in $rc.
C() {
	name=$1
	shift
	n=$((n + 1))
	"$@" </dev/null >"$D/$n.out" 2>"$D/$n.err"
	rc=$?
	rec "$name" "$rc" "$D/$n.out" "$D/$n.err" ""
}

# V NAME VALUE: something the probe worked out itself.
V() {
	n=$((n + 1))
	printf '%s\n' "$2" >"$D/$n.out"
	rec "$1" 0 "$D/$n.out" "" ""
}

has() { command -v "$1" >/dev/null 2>&1; }

# A hung systemctl, df on a dead NFS mount or a slow rpm must cost one section,
# not the whole probe.
T=""
has timeout && T="timeout $LIMIT"

# --- who we are, and how we become root -----------------------------------
C id_uid id -u
uid=""
{ read -r uid <"$D/$n.out"; } 2>/dev/null
C id_user id -un
SUDO=""
if [ "$uid" != 0 ]; then
	C sudo_n $T sudo -n true
	[ "$rc" = 0 ] && SUDO="sudo -n"
fi
# R NAME COMMAND...: a command that needs root. A non-root user without
# passwordless sudo runs it as themself, so the error says why it failed.
R() {
	name=$1
	shift
	C "$name" $T $SUDO "$@"
}

pid1=""
{ read -r pid1 </proc/1/comm; } 2>/dev/null
if [ "$pid1" = systemd ] || { [ -z "$pid1" ] && [ -d /run/systemd/system ]; }; then systemd=yes; else systemd=no; fi
V systemd "$systemd"

# --- OS, kernel, hardware ---------------------------------------------------
F os_release /etc/os-release
# The minor release (CentOS) and service pack (Kylin) that os-release leaves out.
F centos_release /etc/centos-release
F kylin_productinfo /etc/.productinfo
F osrelease /proc/sys/kernel/osrelease
C uname_m uname -m
F cpuinfo /proc/cpuinfo
F meminfo /proc/meminfo
F swaps /proc/swaps
F cmdline /proc/cmdline
F modules /proc/modules
# Built-in modules (and every module on a kernel without /proc/modules) show up here only.
C sys_module ls /sys/module
for pair in $SYSCTLS; do
	F "sysctl:${pair%%=*}" "${pair#*=}"
done
F selinux_enforce /sys/fs/selinux/enforce
F selinux_config /etc/selinux/config
F apparmor_enabled /sys/module/apparmor/parameters/enabled
C cgroup_fs stat -fc %T /sys/fs/cgroup

# --- services: firewall, resolver, tasks limit, time zone --------------------
if [ "$systemd" = yes ]; then
	C systemctl_is_active $T systemctl is-active firewalld ufw nftables systemd-resolved
	C default_tasks_max $T systemctl show --property=DefaultTasksMax
	C timedatectl $T timedatectl show -p Timezone --value
fi
F ufw_conf /etc/ufw/ufw.conf
has nft && R nft_ruleset nft list ruleset
has iptables && R iptables_rules iptables -S
if has sshd; then R sshd_t sshd -T; else R sshd_t /usr/sbin/sshd -T; fi
F system_conf /etc/systemd/system.conf
for f in /etc/systemd/system.conf.d/*.conf; do
	[ -e "$f" ] && F "system_conf_d:${f##*/}" "$f"
done
F timezone_file /etc/timezone
[ -L /etc/localtime ] && C localtime_link readlink /etc/localtime

# --- names and network --------------------------------------------------------
if has hostname; then C hostname hostname; else C hostname uname -n; fi
F etc_hosts /etc/hosts
F resolv_conf /etc/resolv.conf
[ -L /etc/resolv.conf ] && C resolv_conf_link readlink /etc/resolv.conf
C ip_addr ip -o addr show
C ip_route ip route show
C ip6_route ip -6 route show
# -H (no header) is missing from old iproute2 (CentOS 7); parse.py skips a header.
listening() { ss -H"$1"lnp 2>/dev/null || ss -"$1"lnp; }
C ss_tcp listening t
C ss_udp listening u

# --- software -------------------------------------------------------------
if has dpkg-query; then
	V package_manager dpkg
	C packages $T dpkg-query -W -f='${Package}\t${Status}\n' $PACKAGES
elif has rpm; then
	V package_manager rpm
	C packages $T rpm -q --qf '%{NAME}\n' $PACKAGES
fi
has snap && C snaps $T snap list
n=$((n + 1))
for b in $BINARIES; do
	printf '%s\t' "$b"
	command -v "$b" || echo
done >"$D/$n.out" 2>/dev/null
rec binaries 0 "$D/$n.out" "" ""
C usr_local_bin ls -A /usr/local/bin
# As root: a non-root user cannot see into /var/lib/kubelet and the like.
R existing_paths sh -c 'for p in "$@"; do [ -e "$p" ] && printf "%s\n" "$p"; done; exit 0' sh $PATHS_ASKED

# --- filesystems -----------------------------------------------------------
F mounts /proc/mounts
for p in $DISK_PATHS; do
	q=$p  # the nearest existing parent: where the path would be created
	while [ ! -e "$q" ]; do
		q=${q%/*}
		[ -n "$q" ] || q=/
	done
	C "df:$p" $T df -Pk "$q"
done

# --- sections declared with their fact in acpcheck/facts/model.py -----------------
#@DECLARED-SECTIONS@

# --- one JSON document, escaped in a single awk pass ---------------------------
# Strings are escaped per JSON (RFC 8259): backslash, quote and every control
# character; other bytes pass through (Python decodes them as UTF-8).
awk -F '\t' '
BEGIN {
	for (i = 1; i < 32; i++) E[sprintf("%c", i)] = sprintf("\\u%04x", i)
	E["\t"] = "\\t"; E["\r"] = "\\r"; E["\\"] = "\\\\"; E["\""] = "\\\""
	special = "[\\\\\"" sprintf("%c", 1) "-" sprintf("%c", 31) "]"
	printf "\"sections\":{"
}
function esc(s,    r) {
	r = ""
	while (match(s, special)) {
		r = r substr(s, 1, RSTART - 1) E[substr(s, RSTART, 1)]
		s = substr(s, RSTART + 1)
	}
	return r s
}
function emit(path,    line, got) {
	if (path == "") return 1
	while ((got = (getline line < path)) > 0) printf "%s\\n", esc(line)
	close(path)
	return got == 0
}
{
	printf "%s\"%s\":{\"out\":\"", sep, esc($1)
	sep = ","
	readable = emit($3)
	printf "\",\"err\":\"%s%s", esc($5), (readable ? "" : "read error\\n")
	emit($4)
	printf "\",\"rc\":%d}", (readable ? $2 : 2)
}
END { print "}}" }
' "$D/manifest"
