#!/usr/bin/env bash
# System packages acpcheck's tests and demo need on a fresh Debian machine (run as root).
# Installs only what is missing, so repeated `make` calls cost nothing.
set -euo pipefail

need=()
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv python3-pip)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-system: missing packages ${need[*]}; run as root or install them" >&2
    exit 1
  fi
  echo "setup-system: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
