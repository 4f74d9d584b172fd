#!/bin/sh
# A Debian 13 (trixie) tree with Dovecot 2.4 and the build/test tools, for
# building and testing rawlog_ext against Dovecot 2.4 on a Debian 12 host.
#
#   scripts/dovecot24-tree.sh create        make the tree (reused when complete)
#   scripts/dovecot24-tree.sh run CMD...    run CMD inside it, this checkout
#                                           bind-mounted at the same path
#   scripts/dovecot24-tree.sh shell         an interactive shell inside it
#   scripts/dovecot24-tree.sh status        print what is there
#   scripts/dovecot24-tree.sh destroy       delete it (only a tree we made)
#
# RAWLOG_EXT_TRIXIE_DIR   where the tree lives (default
#                         /var/cache/rawlog-ext/trixie, outside the checkout
#                         so that every clone reuses it)
# RAWLOG_EXT_MIRROR       Debian mirror URL (default: read from this machine's
#                         apt sources); RAWLOG_EXT_SECURITY_MIRROR likewise
#
# Mounts (proc, sys, dev, dev/pts, the checkout) exist only while a command
# runs: they are made in a private mount namespace when unshare(1) works and
# are unmounted by an exit trap in any case, also on failure or a signal.
# Needs root.
set -eu

SUITE=trixie
TREE=${RAWLOG_EXT_TRIXIE_DIR:-/var/cache/rawlog-ext/trixie}
MARKER=.rawlog-ext-tree          # written before debootstrap: "ours, may delete"
COMPLETE=.rawlog-ext-complete    # written last: "everything installed"
PACKAGES="dovecot-dev dovecot-imapd dovecot-pop3d dovecot-lmtpd dovecot-submissiond
	g++ make autoconf automake libtool pkg-config libcmocka-dev libssl-dev age valgrind
	python3 python3-pytest openssl ca-certificates procps
	debhelper dpkg-dev fakeroot lintian rpm"
PROJECT=$(cd "$(dirname "$0")/.." && pwd -P)

die() { echo "dovecot24-tree: $*" >&2; exit 1; }
say() { echo "dovecot24-tree: $*" >&2; }

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, mount, chroot)"
case $TREE in
/*) ;;
*) die "RAWLOG_EXT_TRIXIE_DIR must be absolute: $TREE" ;;
esac
case $TREE in
*[[:space:]]* | / | //*) die "refusing tree path '$TREE'" ;;
esac
TREE=${TREE%/}
case $PROJECT in
*[[:space:]]*) die "checkout path contains whitespace: $PROJECT" ;;
esac

# -- mirrors ----------------------------------------------------------------

# Prints "URI SUITE" for every Debian source of this machine (one-line and
# deb822 formats).
host_sources() {
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		sed -n 's/^[[:space:]]*deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]\{1,\}\)\{0,1\}\([^[:space:]]\{1,\}\)[[:space:]]\{1,\}\([^[:space:]]\{1,\}\).*/\2 \3/p' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk '
		function flush() {
			if (uris != "" && suites != "" && types ~ /(^| )deb( |$)/) {
				nu = split(uris, u, " "); ns = split(suites, s, " ")
				for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++) print u[i], s[j]
			}
			uris = suites = types = ""
		}
		/^[[:space:]]*$/ { flush(); next }
		/^[[:space:]]*#/ { next }
		tolower($1) == "types:"  { sub(/^[^:]*:[[:space:]]*/, ""); types = $0 }
		tolower($1) == "uris:"   { sub(/^[^:]*:[[:space:]]*/, ""); uris = $0 }
		tolower($1) == "suites:" { sub(/^[^:]*:[[:space:]]*/, ""); suites = $0 }
		END { flush() }' "$f"
	done
}

# The mirror that serves the host's own release (or, for "-security", its
# security suite).
host_mirror() { # $1: suite suffix ("" or "-security")
	codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	[ -n "$codename" ] || die "no VERSION_CODENAME in /etc/os-release"
	host_sources | awk -v s="$codename$1" '$2 == s { print $1; exit }'
}

mirrors() {
	MIRROR=${RAWLOG_EXT_MIRROR:-$(host_mirror "")}
	[ -n "$MIRROR" ] || die "no Debian mirror found in /etc/apt; set RAWLOG_EXT_MIRROR"
	SECURITY=${RAWLOG_EXT_SECURITY_MIRROR:-$(host_mirror -security)}
	if [ -z "$SECURITY" ]; then
		SECURITY=${MIRROR%/debian}/debian-security
		say "no security mirror in /etc/apt, guessing $SECURITY"
	fi
}

# -- mounts -----------------------------------------------------------------

MOUNTED=

# Mount points under the tree, deepest first.
tree_mounts() {
	awk -v t="$TREE" '$5 == t || index($5, t "/") == 1 { print $5 }' \
		/proc/self/mountinfo | sort -r
}

umount_tree() {
	for m in $(tree_mounts); do
		umount "$m" 2>/dev/null || umount -l "$m" || say "could not unmount $m"
	done
	MOUNTED=
}

mount_tree() {
	[ -z "$(tree_mounts)" ] ||
		die "something is already mounted under $TREE (another run?):
$(tree_mounts)"
	MOUNTED=1
	mount -t proc proc "$TREE/proc"
	mount -t sysfs sys "$TREE/sys"
	mount --bind /dev "$TREE/dev"
	mount --bind /dev/pts "$TREE/dev/pts"
	mkdir -p "$TREE$PROJECT"
	mount --bind "$PROJECT" "$TREE$PROJECT"
}

cleanup() {
	rc=$?
	trap - EXIT HUP INT TERM
	[ -z "$MOUNTED" ] || umount_tree
	exit "$rc"
}
# A signal is passed on to the command running in the tree (CHILD), whose
# end is awaited before the mounts go.
CHILD=
forward() { # SIGNAL EXIT-CODE
	if [ -n "$CHILD" ]; then
		kill -"$1" "$CHILD" 2>/dev/null || :
		wait "$CHILD" || :
	fi
	exit "$2"
}
trap cleanup EXIT
trap 'forward HUP 129' HUP
trap 'forward INT 130' INT
trap 'forward TERM 143' TERM

# Re-runs this script in a private mount namespace (once), so that mounts
# never show up on the host and concurrent runs do not see each other's.
in_private_ns() {
	if [ -z "${RAWLOG_EXT_TREE_NS:-}" ] &&
		unshare -m --propagation private true 2>/dev/null; then
		RAWLOG_EXT_TREE_NS=1 exec unshare -m --propagation private \
			sh "$0" "$@"
	fi
}

EXEC=
in_tree() { # CMD...: run inside the (mounted) tree; EXEC=exec: replace the shell
	$EXEC chroot "$TREE" /usr/bin/env -i HOME=/root TERM="${TERM:-dumb}" LANG=C.UTF-8 \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		DEBIAN_FRONTEND=noninteractive "$@"
}

# -- create -----------------------------------------------------------------

is_ours() { [ -f "$TREE/$MARKER" ]; }
is_complete() {
	[ -f "$TREE/$COMPLETE" ] && [ -x "$TREE/usr/sbin/dovecot" ] &&
		[ -f "$TREE/usr/include/dovecot/config.h" ]
}

# Idempotent; also applied to a tree made by an older version of this script.
fixups() {
	if [ ! -x "$TREE/usr/sbin/policy-rc.d" ]; then
		printf '#!/bin/sh\n# No daemon may start inside this tree.\nexit 101\n' >"$TREE/usr/sbin/policy-rc.d"
		chmod 755 "$TREE/usr/sbin/policy-rc.d"
	fi
	# minbase has no /etc/mtab; without it every Dovecot process that looks
	# up mount points logs "setmntent(/etc/mtab) failed".
	[ -e "$TREE/etc/mtab" ] || [ -L "$TREE/etc/mtab" ] ||
		ln -s ../proc/self/mounts "$TREE/etc/mtab"
}

# Packages of PACKAGES a tree made by an older version of this script lacks.
missing_packages() {
	for p in $PACKAGES; do
		chroot "$TREE" dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q "install ok installed" || printf '%s ' "$p"
	done
}

create() {
	if is_complete; then
		fixups
		missing=$(missing_packages)
		if [ -n "$missing" ]; then
			say "installing in the tree: $missing"
			mount_tree
			in_tree sh -c "apt-get install -y -q -o DPkg::Lock::Timeout=300 $missing ||
				{ apt-get update -q && apt-get install -y -q -o DPkg::Lock::Timeout=300 $missing; } &&
				apt-get clean" >>"$TREE.apt.log" 2>&1 ||
				die "apt-get in the tree failed; see $TREE.apt.log"
			umount_tree
		fi
		say "reusing $TREE ($(cat "$TREE/$COMPLETE"))"
		return 0
	fi
	if [ -e "$TREE" ] && ! is_ours; then
		[ -d "$TREE" ] && [ -z "$(ls -A "$TREE")" ] ||
			die "$TREE exists and was not made by this script; not touching it"
	fi
	command -v debootstrap >/dev/null 2>&1 || {
		say "installing debootstrap on the host"
		apt-get install -y --no-install-recommends debootstrap >/dev/null ||
			{ apt-get update >/dev/null && apt-get install -y --no-install-recommends debootstrap >/dev/null; }
	}
	mirrors
	start=$(date +%s)
	mkdir -p "$TREE"
	[ -f "$TREE/$MARKER" ] || echo "made by rawlog_ext scripts/dovecot24-tree.sh" >"$TREE/$MARKER"
	if [ ! -f "$TREE/.rawlog-ext-debootstrapped" ]; then
		if [ -n "$(find "$TREE" -mindepth 1 -maxdepth 1 ! -name "$MARKER")" ]; then
			say "removing the remains of an interrupted debootstrap"
			umount_tree
			find "$TREE" -mindepth 1 -maxdepth 1 ! -name "$MARKER" \
				-exec rm -rf --one-file-system {} +
		fi
		say "debootstrap $SUITE from $MIRROR"
		# A half-finished debootstrap leaves its own mounts behind.
		MOUNTED=1
		debootstrap --variant=minbase "$SUITE" "$TREE" "$MIRROR" >"$TREE.debootstrap.log" 2>&1 ||
			die "debootstrap failed; see $TREE.debootstrap.log (or $TREE/debootstrap/debootstrap.log)"
		umount_tree
		: >"$TREE/.rawlog-ext-debootstrapped"
	fi
	say "debootstrap done after $(($(date +%s) - start)) s"
	fixups
	cat >"$TREE/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY $SUITE-security main
EOF
	printf 'APT::Install-Recommends "false";\n' >"$TREE/etc/apt/apt.conf.d/90rawlog-ext"
	cp /etc/resolv.conf "$TREE/etc/resolv.conf" 2>/dev/null || :
	mount_tree
	say "apt-get install in the tree"
	# shellcheck disable=SC2086
	in_tree sh -c "apt-get update -q && apt-get install -y -q $(echo $PACKAGES) && apt-get clean" >"$TREE.apt.log" 2>&1 ||
		die "apt-get in the tree failed; see $TREE.apt.log"
	version=$(in_tree dpkg-query -W -f '${Version}' dovecot-dev)
	abi=$(sed -n 's/^#define DOVECOT_ABI_VERSION "\(.*\)"/\1/p' "$TREE/usr/include/dovecot/config.h")
	umount_tree
	echo "dovecot-dev $version ABI $abi" >"$TREE/$COMPLETE"
	say "created $TREE in $(($(date +%s) - start)) s, $(du -sxh "$TREE" | cut -f1): dovecot-dev $version ($abi)"
}

# -- main -------------------------------------------------------------------

# One create/destroy at a time, and none while a command runs in the tree.
lock() { # -s (shared) or -x (exclusive)
	mkdir -p "$(dirname "$TREE")"
	exec 9>"$TREE.lock"
	flock "$1" 9
}

cmd=${1:-}
[ $# -eq 0 ] || shift
case $cmd in
create)
	in_private_ns "$cmd" "$@"
	lock -x
	create
	;;
run | shell)
	is_complete || die "no complete tree at $TREE; run '$0 create' first"
	[ "$cmd" = run ] || set -- /bin/bash -l
	[ $# -gt 0 ] || die "usage: $0 run CMD [ARG...]"
	in_private_ns "$cmd" "$@"
	lock -s
	mount_tree
	# The same directory inside when it is in the checkout, else its top.
	case $PWD/ in
	"$PROJECT"/*) dir=$PWD ;;
	*) dir=$PROJECT ;;
	esac
	# Not exec: the trap must unmount afterwards. In the background so that
	# a signal reaches the trap at once (wait returns); fd 3 hands on stdin,
	# which an asynchronous command would otherwise get as /dev/null.
	exec 3<&0
	(EXEC="exec" in_tree /bin/sh -c 'cd "$1" && shift && exec "$@"' sh "$dir" "$@") <&3 3<&- &
	CHILD=$!
	exec 3<&-
	rc=0
	wait "$CHILD" || rc=$?
	CHILD=
	exit "$rc"
	;;
status)
	if is_complete; then
		echo "$TREE: complete, $(cat "$TREE/$COMPLETE")"
	elif is_ours; then
		echo "$TREE: incomplete (run create)"
	else
		echo "$TREE: absent"
	fi
	m=$(tree_mounts)
	[ -z "$m" ] || echo "mounted under it: $m"
	;;
destroy)
	[ -e "$TREE" ] || { say "nothing at $TREE"; exit 0; }
	is_ours || die "$TREE has no $MARKER; not deleting it"
	lock -x
	umount_tree
	[ -z "$(tree_mounts)" ] || die "still mounted under $TREE; not deleting"
	# -xdev: never follow into anything still mounted.
	rm -rf --one-file-system "$TREE"
	rm -f "$TREE.debootstrap.log" "$TREE.apt.log"
	say "deleted $TREE"
	;;
*)
	sed -n '2,/^set -eu/{/^set -eu/d;s/^# \{0,1\}//;p}' "$0" >&2
	exit 2
	;;
esac
