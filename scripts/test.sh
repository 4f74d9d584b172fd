#!/bin/sh
# Sets everything up (packages, build) and runs the whole test suite on
# both Dovecot lines.
#
# Dovecot 2.3 (this machine's): unit tests under valgrind, the same under
# ASan/UBSan, a build whose guarded callbacks can be made to fail, 30 s
# each of fuzzing the credential redactor, the viewer's log parser and the
# redactor beside Dovecot's parsers, make distcheck, and the integration
# tests against a private Dovecot on 127.0.0.1.
# Dovecot 2.4 (Debian 13's, in a tree made or reused by
# scripts/dovecot24-tree.sh): the same build and fault-injection build from
# a copy of the checkout (build-2.4/), unit tests under valgrind, 30 s of
# the differential fuzzing beside 2.4's parsers, and the integration tests
# against the tree's Dovecot.
#
# RAWLOG_EXT_TEST_LINES   the lines to test (default "2.3 2.4"); e.g. "2.3"
#                         leaves the 2.4 stages out (said so at the end)
# RAWLOG_EXT_TRIXIE_DIR   the tree (default /var/cache/rawlog-ext/trixie)
#
# The tests start Dovecot as root (it drops to the test users itself); the
# tree needs root too. Every stage is timed; a failed integration suite
# does not stop the other line's stages, but fails the run.
set -eu
cd "$(dirname "$0")/.."
LINES=${RAWLOG_EXT_TEST_LINES:-2.3 2.4}
TREE=${RAWLOG_EXT_TRIXIE_DIR:-/var/cache/rawlog-ext/trixie}
TREE=${TREE%/}
export RAWLOG_EXT_TRIXIE_DIR="$TREE"

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

in_line() { case " $LINES " in *" $1 "*) return 0 ;; esac; return 1; }

TIMES=$(mktemp)
FAILED=""
T0=$(date +%s)
summary() {
	rc=$?
	trap - EXIT
	# The tree's mounts live in private namespaces; none may be left here
	# (nor test_package's overlay copies of the tree, /tmp/rawlog-ext-pkg-*).
	left=$(awk -v t="$TREE" '$5 == t || index($5, t "/") == 1 ||
		$5 ~ "^/tmp/rawlog-ext-pkg-" { print $5 }' /proc/self/mountinfo)
	if [ -n "$left" ]; then
		echo "test.sh: mounts left under $TREE or /tmp/rawlog-ext-pkg-*:"
		echo "$left"
		rc=1
	fi
	echo "== stage times (s)"
	cat "$TIMES"
	echo "total $(($(date +%s) - T0))"
	rm -f "$TIMES"
	for l in 2.3 2.4; do
		in_line "$l" || echo "test.sh: Dovecot $l NOT tested (RAWLOG_EXT_TEST_LINES=$LINES)"
	done
	if [ -n "$FAILED" ]; then
		echo "test.sh: FAILED:$FAILED"
		[ "$rc" -ne 0 ] || rc=1
	fi
	exit "$rc"
}
trap summary EXIT

# stage NAME CMD...: runs CMD, timed; a failure ends the run. (set -e does
# not act inside CMD here: the functions below chain with &&.)
stage() {
	name=$1
	shift
	echo "== $name"
	s=$(date +%s)
	rc=0
	"$@" || rc=$?
	printf '%-40s %5d%s\n' "$name" "$(($(date +%s) - s))" \
		"$([ "$rc" -eq 0 ] || echo "  FAILED ($rc)")" >>"$TIMES"
	return "$rc"
}
# suite NAME CMD...: the same, but the run goes on to the next stages.
suite() {
	stage "$@" || FAILED="$FAILED [$1]"
}


# Debian's python3 (with python3-pytest), whatever else is first in PATH.
pytest() {
	as_root env "$@" /usr/bin/python3 -m pytest -q -rs -p no:cacheprovider tests/integration
}

stage "setup (packages, 2.3 build)" sh scripts/setup.sh

# -- Dovecot 2.3 ------------------------------------------------------------

unit_23() {
	# sink-bench: not a test, but it must keep compiling (bench/run.py runs it).
	make -C build -j"$(nproc)" check &&
		make -C build bench/sink-bench >/dev/null
}

asan_23() {
	mkdir -p build-asan &&
	# valgrind and ASan do not mix: run these binaries directly.
	(cd build-asan && { [ -f Makefile ] || ../configure --quiet --enable-sanitizers; } &&
		ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		make -j"$(nproc)" check LOG_COMPILER=)
}

fault_23() {
	mkdir -p build-fault &&
	(cd build-fault && { [ -f Makefile ] || ../configure --quiet --enable-fault-injection; } &&
		make -j"$(nproc)" >/dev/null)
}

# Differential, against Dovecot's own parsers: a secret Dovecot took must
# not show in the log (the divergences found are the seeds in run.sh).
fuzz_dovecot() {
	sh tests/fuzz/run.sh 30 dovecot
}

distcheck_23() {
	make -C build distcheck >/dev/null && echo "distcheck ok"
}

if in_line 2.3; then
	stage "2.3 unit tests (valgrind)" unit_23
	stage "2.3 unit tests (ASan/UBSan)" asan_23
	stage "2.3 fault-injection build" fault_23
	stage "fuzz redactor" sh tests/fuzz/run.sh 30 redact
	stage "fuzz log parser (viewer)" sh tests/fuzz/run.sh 30 view
	stage "fuzz sealed-log reader" sh tests/fuzz/run.sh 30 age
	stage "fuzz redactor beside Dovecot 2.3" fuzz_dovecot
	stage "2.3 make distcheck" distcheck_23
	suite "2.3 integration tests" pytest \
		RAWLOG_EXT_MODULE_DIR="$PWD/build/src/.libs" \
		RAWLOG_EXT_FAULT_MODULE_DIR="$PWD/build-fault/src/.libs"
fi

# -- Dovecot 2.4 (Debian 13 tree) --------------------------------------------

# The tree's autogen.sh would rewrite configure in this checkout: build from
# a copy of what git tracks (plus untracked, not ignored files), fresh each
# run, in build-2.4/ (ignored by git, inside the checkout so the tree sees it).
copy_24() {
	rm -rf build-2.4 && mkdir -p build-2.4/src || return
	if git rev-parse --git-dir >/dev/null 2>&1; then
		git ls-files -z --cached --others --exclude-standard |
			tar --null --ignore-failed-read -T - -cf - | tar -xf - -C build-2.4/src
	else
		tar --exclude='./build*' --exclude=./.git -cf - . | tar -xf - -C build-2.4/src
	fi
}

tree() { as_root sh scripts/dovecot24-tree.sh "$@"; }

# make -k: while the port is partial, what builds is tested (the stage is
# still red); the next stages run if the mail plugin built.
build_24() {
	copy_24 && tree run sh -c 'cd build-2.4/src && ./autogen.sh >/dev/null &&
		mkdir -p ../build ../fault && rc=0 &&
		{ (cd ../build && ../src/configure --quiet && make -k -j"$(nproc)" >/dev/null) || rc=1; } &&
		{ (cd ../fault && ../src/configure --quiet --enable-fault-injection &&
			make -k -j"$(nproc)" >/dev/null) || rc=1; } && exit $rc'
}

# check-TESTS, not check: check would first need every module built.
unit_24() {
	tree run sh -c 'make -C build-2.4/build -k -j"$(nproc)" check-TESTS &&
		make -C build-2.4/build bench/sink-bench >/dev/null'
}

if in_line 2.4; then
	stage "2.4 tree (create or reuse)" tree create
	suite "2.4 build (in the tree)" build_24
	if [ -f build-2.4/build/src/.libs/lib90_rawlog_ext_plugin.so ]; then
		suite "2.4 unit tests (valgrind, in the tree)" unit_24
		# The same beside 2.4's libdovecot (its parsers differ from
		# 2.3's); the tree has no libFuzzer: run.sh's own driver.
		suite "fuzz redactor beside Dovecot 2.4 (in the tree)" \
			tree run env FUZZ_CXX=g++ sh tests/fuzz/run.sh 30 dovecot
		# The viewer reads files, not Dovecot: the host's build runs here
		# (the tree's needs the tree's glibc).
		view=""
		[ -x build/src/view/rawlog-ext-view ] &&
			view="RAWLOG_EXT_VIEW=$PWD/build/src/view/rawlog-ext-view"
		suite "2.4 integration tests" pytest $view \
			RAWLOG_EXT_DOVECOT_ROOT="$TREE" \
			RAWLOG_EXT_MODULE_DIR="$PWD/build-2.4/build/src/.libs" \
			RAWLOG_EXT_FAULT_MODULE_DIR="$PWD/build-2.4/fault/src/.libs"
	else
		FAILED="$FAILED [2.4 unit and integration tests: no 2.4 build]"
	fi
fi
