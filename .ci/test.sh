#!/usr/bin/env bash
# The test command (README): installs what the tests need when missing, then runs the whole
# suite with the format and lint checks. Works on a machine that has only the Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x /usr/sbin/apache2 ] || command -v apache2 >/dev/null 2>&1 || need+=(apache2)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
# PHP sites, HTTPS certificates and several hosts (this round's issues) need these too.
ls /usr/sbin/php-fpm* >/dev/null 2>&1 || need+=(php-fpm)
command -v php >/dev/null 2>&1 || need+=(php-cli)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v rsync >/dev/null 2>&1 || need+=(rsync)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing from Debian's packages: ${need[*]}"
  # Installing must not start the system's services (php-fpm, sshd, apache2): tests run
  # private instances. policy-rc.d answering 101 tells the packages' scripts not to start them.
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
  [ -z "$policy" ] || $sudo rm -f "$policy"
fi

cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
