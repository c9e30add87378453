#!/usr/bin/env bash
# System packages acpcheck's tests and demo need on a fresh Debian machine (run as root).
# Installs only what is missing, so repeated `make` calls cost nothing.
set -euo pipefail

need=()
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv python3-pip)

# The local lab (lab/): one network namespace, sshd and root file system per
# node, a SOCKS5 proxy, and the tools the lab's nodes must have (see lab/README.md).
#   command (or file)                              package
lab_tools=(
  "ip                                              iproute2"
  "unshare                                         util-linux"
  "/usr/sbin/sshd                                  openssh-server"
  "ssh-keygen                                      openssh-client"
  "microsocks                                      microsocks"
  "sudo                                            sudo"
  "nft                                             nftables"
  "openssl                                         openssl"
  "modprobe                                        kmod"
  "ss                                              iproute2"
  "tar                                             tar"
  "/usr/share/zoneinfo/Asia/Shanghai               tzdata"
  "/usr/bin/python3                                python3"
  # the load-balancer lab (lab/acpcheck_lab/lb.py): an LB and a VRRP speaker in front of the
  # nodes, and the listener tools the LB proof falls back to on nodes without python3/perl
  "haproxy                                         haproxy"
  "keepalived                                      keepalived"
  "socat                                           socat"
  "/usr/bin/nc.openbsd                             netcat-openbsd"
  # etcd on lab control-plane nodes (lab/acpcheck_lab/etcd.py): the encryption checks read its bytes
  "/usr/bin/etcd                                   etcd-server"
  # a real OCI registry (the CNCF distribution registry) in its own namespace, with TLS
  # and htpasswd (bcrypt) auth: the image-source checks' lab (lab/acpcheck_lab/ociregistry.py)
  "/usr/bin/docker-registry                        docker-registry"
  "htpasswd                                        apache2-utils"
)
for entry in "${lab_tools[@]}"; do
  read -r tool package <<<"$entry"
  if [[ $tool == /* ]]; then [ -e "$tool" ] && continue; else command -v "$tool" >/dev/null 2>&1 && continue; fi
  [[ " ${need[*]} " == *" $package "* ]] || need+=("$package")
done
ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1 || need+=(libfaketime)
# The node programs (acpcheck/sources/nodeprograms/*.sh) are linted as shell by the suite
# (tests/checks/test_nodeprograms.py), as the probe is run with sh -n.
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
# `acpcheck completion zsh` is tried in a real zsh (tests/cli/test_help_and_completion.py).
command -v zsh >/dev/null 2>&1 || need+=(zsh)
# The report tests open report.html in headless Chromium, as its readers do (tests/unit/test_report_browser.py).
command -v chromium >/dev/null 2>&1 || need+=(chromium fonts-dejavu-core)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-system: missing packages ${need[*]}; run as root or install them" >&2
    exit 1
  fi
  echo "setup-system: installing ${need[*]}"
  # Packages must not start services here (openssh-server would start sshd on port 22
  # of this machine): a policy-rc.d that says "no" for the duration of the install,
  # unless the machine already has its own.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${need[@]}" >/dev/null
  if [[ " ${need[*]} " == *" openssh-server "* ]]; then
    # The lab runs its own sshds in namespaces; this machine's sshd stays off, also after a reboot.
    update-rc.d ssh disable >/dev/null 2>&1 || true  # Debian's: the init.d and the systemd links
    systemctl disable --quiet ssh.service >/dev/null 2>&1 || true
  fi
  if [[ " ${need[*]} " == *" etcd-server "* ]]; then
    # The lab runs its own etcd in a node's namespace; the machine's stays off.
    update-rc.d etcd disable >/dev/null 2>&1 || true
    systemctl disable --quiet etcd.service >/dev/null 2>&1 || true
  fi
  for service in haproxy keepalived docker-registry; do
    # The lab runs its own haproxy and keepalived in namespaces; the machine's stay off.
    if [[ " ${need[*]} " == *" $service "* ]]; then
      update-rc.d "$service" disable >/dev/null 2>&1 || true
      systemctl disable --quiet "$service.service" >/dev/null 2>&1 || true
    fi
  done
fi

# Allure's own command line (npm; a Java app) reads the Allure results in tests/unit/test_allure.py,
# which says so and skips when it is absent.
allure_tools=/opt/acpcheck-test-tools
if [ ! -x "$allure_tools/node_modules/.bin/allure" ] && [ "$(id -u)" -eq 0 ] && command -v npm >/dev/null 2>&1 && command -v java >/dev/null 2>&1; then
  npm install --silent --no-audit --no-fund --prefix "$allure_tools" allure-commandline@2.46.1 >/dev/null \
    || echo "setup-system: allure-commandline was not installed; tests/unit/test_allure.py will skip its Allure CLI test" >&2
fi
