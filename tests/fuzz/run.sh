#!/bin/sh
# Fuzzes the credential redactor for N seconds (default 30): builds
# tests/fuzz/fuzz-redact.cc with the redactor's sources (src/core/redact*.cc,
# smtp-follow.cc) in a temp dir with
# clang++ -fsanitize=fuzzer,address,undefined (libFuzzer comes with clang's
# runtime; Debian: libclang-rt-14-dev) and runs it from a seed corpus
# written here. Where libFuzzer cannot be linked it builds the target with
# its own deterministic driver (mutations from a fixed seed) instead.
# On failure the temp dir with the crashing input is kept.
#   sh tests/fuzz/run.sh [seconds]
set -eu
cd "$(dirname "$0")/../.."
seconds=${1:-30}
work=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-redact.XXXXXX")
src="tests/fuzz/fuzz-redact.cc src/core/redact.cc src/core/redact-imap.cc
	src/core/redact-pop3.cc src/core/redact-smtp.cc src/core/redact-line.cc
	src/core/smtp-follow.cc"
flags="-std=gnu++17 -g -O1 -Wall -Wextra -Isrc"

# probe SOURCE COMPILER [FLAGS]: whether that compiles and links.
probe() {
	printf '%s\n' "$1" >"$work/probe.cc"
	shift
	"$@" "$work/probe.cc" -o "$work/probe" >/dev/null 2>&1
}

cxx=${FUZZ_CXX:-clang++}
if command -v "$cxx" >/dev/null 2>&1 &&
	probe 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char *, unsigned long) { return 0; }' \
		"$cxx" -fsanitize=fuzzer,address,undefined; then
	mode=libfuzzer
	# -fno-sanitize-recover: undefined behaviour is a crash the fuzzer
	# reports, not a message it ignores.
	"$cxx" $flags -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined $src -o "$work/fuzz-redact"
else
	mode=driver
	echo "fuzz: cannot link libFuzzer with $cxx (Debian: install clang and" \
		"libclang-rt-14-dev); using the deterministic driver"
	cxx=${CXX:-c++}
	san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
	probe 'int main() { return 0; }' "$cxx" $san || san=""
	"$cxx" $flags $san -DRAWLOG_EXT_FUZZ_DRIVER $src -o "$work/fuzz-redact"
fi

# Seeds. First byte: '0' IMAP, '1' POP3, '2' SMTP sessions, where \002
# starts server bytes and \001 client bytes; '3' a credential template
# (next byte: which), then the password, \000, client cut sizes.
corpus="$work/corpus"
mkdir "$corpus"
n=0
seed() {
	n=$((n + 1))
	printf "$1" >"$corpus/seed-$n"
}
seed '0a LOGIN alice s3cret\r\n\002a OK\r\n\001b SELECT INBOX\r\n'
seed '0a LOGIN {5}\r\n\002+ OK\r\n\001alice {6}\r\n\002+ OK\r\n\001s3cret\r\n\002a OK\r\n'
seed '0a login "alice" "pa\\"ss\\\\"\r\nb LOGIN bob {4+}\r\npass\r\n'
seed '0a AUTHENTICATE PLAIN\r\n\002+ \r\n\001AGFsaWNlAHMzY3JldA==\r\n\002a OK\r\n'
seed '0a AUTHENTICATE PLAIN\r\n\002+ \r\n\001*\r\n\002a BAD\r\n\001b AUTHENTICATE XOAUTH2 dXNlcg==\r\n'
seed '0a NOOP\r\na AUTHENTICATE PLAIN =\r\n\002a OK\r\n+ \r\n\001secret\r\n'
seed '0a APPEND INBOX {20}\r\n\002+ OK\r\n\001b LOGIN x y\r\n{3}\r\n\r\n\002a OK\r\n'
seed '0a APPEND INBOX {12+}\r\nc LOGIN a b\r\nd NOOP ~{2+}\r\nxy\r\n'
seed '0a APPEND nobox {9}\r\n\002a NO [TRYCREATE]\r\n\001b LOGIN u p\n'
seed '0a FETCH 1 BODY[]\r\n\002* 1 FETCH (BODY[] {5}\r\nab OK\r\n)\r\na OK\r\n'
seed '0\002* PREAUTH ready\r\n\001a LOGIN x y\r\n'
seed '1\002+OK ready\r\n\001USER alice\r\nPASS s3cret\r\n\002+OK\r\n+OK\r\n\001STAT\r\n'
seed '1\002+OK\r\n\001CAPA\r\nAUTH PLAIN\r\n\002+OK\r\nSASL\r\n.\r\n+ \r\n\001AGFs\r\n\002-ERR\r\n\001APOP a b\r\n'
seed '1\002+OK\n\001AUTH LOGIN dXNlcg==\n\002+ UGFz\n\001*\n\002-ERR\n\001RETR 1\n'
seed '2\002220 hi\r\n\001EHLO x\r\nAUTH LOGIN\r\n\002250 ok\r\n334 VXNl\r\n\001dXNlcg==\r\n\002334 UGFz\r\n\001cGFzcw==\r\n\002235 ok\r\n'
seed '2\002220 hi\r\n\001MAIL FROM:<a>\r\nRCPT TO:<b>\r\nDATA\r\n\002250 ok\r\n250 ok\r\n354 go\r\n\001AUTH PLAIN x\r\n..\r\n.\r\n\002250 ok\r\n\001AUTH PLAIN =\r\n'
seed '2\002220 hi\r\n\001BDAT 5\r\nAUTH BDAT 0 LAST\r\n\002250 ok\r\n250 ok\r\n\001AUTH PLAIN abc\n'
seed '2\002220-hi\r\n220 there\r\n\001DATA\r\nAUTH PLAIN x\r\n\002554 no\r\n'
# Where Dovecot reads differently from a plain grammar: refused lines with
# a literal header, ID, POP3 CRs in the command name, BDAT without a chunk.
seed '0a NOOP x{22+}\r\nb LOGIN alice s3cret\r\na* NOOP {3+}\r\nc LOGIN u pw\r\n'
seed '0a ID NIL {5+}\r\nb ID ("k" {2+}\r\nab) {4+}\r\nc LOGIN alice ~{6+}\r\ns3cret\r\n'
seed '0a AUTHENTICATE PLAIN\rAGFs\r\n\002a NO\r\n\001b AUTHENTICATE {9+}\r\n\002b NO\r\n'
seed '1\002+OK\r\n\001PA\rSS s3cret\r\npass\r\r\r\rs3cret\r\nAUTH PLAIN\rAGFs\r\n'
seed '2\002220 hi\r\n\001EHLO x\r\n\002250-x\r\n250 CHUNKING\r\n\001BDAT 17\r\nAUTH PLAIN AGFs\r\n\002502 no\r\n'
i=0
while [ $i -lt 12 ]; do
	seed "3\\$(printf %03o $i)Secret-pw$i\\000\\003\\001\\007\\020"
	i=$((i + 1))
done

cat >"$work/redact.dict" <<'EOF'
"LOGIN "
"AUTHENTICATE "
"PASS "
"APOP "
"AUTH "
"PLAIN"
"{5}\x0d\x0a"
"{3+}\x0d\x0a"
"~{2}"
"+ OK\x0d\x0a"
"a OK\x0d\x0a"
"a NO\x0d\x0a"
"* PREAUTH"
"+OK\x0d\x0a"
"-ERR\x0d\x0a"
"DATA\x0d\x0a"
"BDAT 4 LAST\x0d\x0a"
"354 go\x0d\x0a"
"334 \x0d\x0a"
"235 ok\x0d\x0a"
"250-x\x0d\x0a"
"\x0d\x0a.\x0d\x0a"
"*\x0d\x0a"
"\x01"
"\x02"
"~{"
"ID "
"NIL"
"\x0d"
"250 CHUNKING\x0d\x0a"
"502 no\x0d\x0a"
EOF

log="$work/fuzz.log"
echo "fuzz: $mode, $seconds s, $n seeds, in $work"
if [ "$mode" = libfuzzer ]; then
	# -max_len above Redactor::max_pending, so that overflow is reached.
	set -- -max_total_time="$seconds" -max_len=20000 -timeout=30 \
		-rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$work/" -dict="$work/redact.dict" "$corpus"
else
	set -- -max_total_time="$seconds" "$corpus"
fi
if ! ASAN_OPTIONS=detect_leaks=1 "$work/fuzz-redact" "$@" >"$log" 2>&1; then
	tail -n 60 "$log"
	echo "fuzz: FAILED; crashing input and log kept in $work"
	exit 1
fi
if [ "$mode" = libfuzzer ]; then
	grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)|^#[0-9]+ *DONE' "$log" || true
else
	tail -n 1 "$log"
fi
rm -rf "$work"
echo "fuzz: ok"
