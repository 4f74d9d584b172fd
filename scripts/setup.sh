#!/bin/sh
# Installs what building and testing rawlog_ext needs (Debian/Ubuntu) and
# builds it out of tree in ./build. Safe to run again. (debootstrap: for
# the Debian 13 tree with Dovecot 2.4, scripts/dovecot24-tree.sh.)
#
# Installing dovecot-core on a fresh machine would start the system's own
# Dovecot on the standard ports; the tests never use it, so a temporary
# policy-rc.d keeps it from being started by this install. The same goes
# for redis-server (the control dict tests start their own on a free
# loopback port): it is installed, never enabled or left running on 6379.
set -eu
cd "$(dirname "$0")/.."

PACKAGES="build-essential autoconf automake libtool pkg-config
dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd dovecot-submissiond
dovecot-dev libcmocka-dev libssl-dev age valgrind python3 python3-pytest openssl debhelper lintian rpm
debootstrap chromium redis-server"

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=""
for pkg in $PACKAGES; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $pkg"
done
if [ -n "$missing" ]; then
	echo "setup: installing:$missing"
	policy=/usr/sbin/policy-rc.d
	added_policy=no
	if [ ! -e "$policy" ]; then
		as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
		added_policy=yes
	fi
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends $missing >/dev/null
	[ "$added_policy" = no ] || as_root rm -f "$policy"
	# A Dovecot installed only for this project must not come up on the
	# standard ports at the next boot either.
	case "$missing" in
	*dovecot-core*)
		if command -v systemctl >/dev/null 2>&1; then
			as_root systemctl disable dovecot.service dovecot.socket \
				>/dev/null 2>&1 || true
		fi ;;
	esac
	case "$missing" in
	*redis-server*)
		if [ -d /run/systemd/system ]; then
			as_root systemctl disable --now redis-server.service \
				>/dev/null 2>&1 || true
		elif command -v systemctl >/dev/null 2>&1; then
			as_root systemctl disable redis-server.service \
				>/dev/null 2>&1 || true
		fi
		# Without systemd (a container) an init script may have run
		# anyway: whatever the package started goes.
		pidfile=/run/redis/redis-server.pid
		if [ -s "$pidfile" ]; then
			as_root sh -c "kill \$(cat $pidfile)" 2>/dev/null || true
		fi
		if grep -q '^ *[0-9]*: [0-9A-F]*:18EB .* 0A ' /proc/net/tcp 2>/dev/null; then
			echo "setup: warning: something listens on port 6379" >&2
		fi ;;
	esac
fi

# libFuzzer for the redactor's fuzz run: optional (names differ between
# releases; tests/fuzz/run.sh falls back to replaying its corpus).
for pkg in clang libclang-rt-dev; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends "$pkg" >/dev/null 2>&1 ||
		echo "setup: $pkg not installed: fuzzing falls back to the corpus"
done

[ -x configure ] || ./autogen.sh >/dev/null
mkdir -p build
cd build
[ -f Makefile ] || ../configure --quiet
make -j"$(nproc)" >/dev/null
echo "setup: built build/src/.libs/lib90_rawlog_ext_plugin.so"
