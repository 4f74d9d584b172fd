#!/bin/sh
# Sets everything up (packages, build) and runs the whole test suite:
# unit tests under valgrind, the same under ASan/UBSan, a build whose
# guarded callbacks can be made to fail, 30 s of fuzzing of the credential
# redactor and 30 s of it beside Dovecot's parsers, make distcheck, and the
# integration tests against a private Dovecot on 127.0.0.1.
# The tests start Dovecot as root (it drops to the test users itself).
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh

echo "== unit tests (valgrind)"
make -C build -j"$(nproc)" check
# Not a test, but it must keep compiling (bench/run.py runs it).
make -C build bench/sink-bench >/dev/null

echo "== unit tests (ASan/UBSan)"
mkdir -p build-asan
# valgrind and ASan do not mix: run these binaries directly.
(cd build-asan && { [ -f Makefile ] || ../configure --quiet --enable-sanitizers; } &&
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	make -j"$(nproc)" check LOG_COMPILER=)

echo "== fault-injection build (for tests/integration/test_guard.py)"
mkdir -p build-fault
(cd build-fault && { [ -f Makefile ] || ../configure --quiet --enable-fault-injection; } &&
	make -j"$(nproc)" >/dev/null)

echo "== fuzz redactor"
sh tests/fuzz/run.sh 30 redact
# Differential, against Dovecot's own parsers: a secret Dovecot took must
# not show in the log (issue #12; the divergences found so far are the
# seeds in run.sh, all passing). Longer runs still find new ones within
# minutes (and a lib-smtp panic of Dovecot 2.3.19 itself): not fatal
# until they stop, then drop the "||".
sh tests/fuzz/run.sh 30 dovecot ||
	echo "fuzz dovecot: FAILED (issue #12: divergences still found); not fatal yet"

echo "== make distcheck"
make -C build distcheck >/dev/null
echo "distcheck ok"

echo "== integration tests"
# Debian's python3 (with python3-pytest), whatever else is first in PATH.
set -- env RAWLOG_EXT_MODULE_DIR="$PWD/build/src/.libs" \
	RAWLOG_EXT_FAULT_MODULE_DIR="$PWD/build-fault/src/.libs" \
	/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration
if [ "$(id -u)" -ne 0 ]; then
	exec sudo "$@"
fi
exec "$@"
