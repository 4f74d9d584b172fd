#!/bin/sh
# Sets everything up (packages, build), then shows rawlog_ext at work: a
# throwaway Dovecot on 127.0.0.1, a scripted IMAP and POP3 session, and the
# logs they left. Dovecot is started as root and drops to the demo user.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
run() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}
run env RAWLOG_EXT_MODULE_DIR="$PWD/build/src/.libs" /usr/bin/python3 scripts/demo.py
