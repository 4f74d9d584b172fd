#!/usr/bin/python3
"""How fast rawlog-ext-view reads a big session, and in how much memory
(issue #17 item 4: at least 200 MB/s, memory that does not grow with the
log).

Generates, in a temporary directory, one IMAP session as the module logs
it: a split pair (.in/.out), timestamps on (lines), written by the
module's own Formatter (src/core/format.cc, compiled here into a small
generator): rounds of APPEND with a 1 MiB literal from the client and a
FETCH of it from the server, in 16 KiB chunks, 76-character lines. Then
runs the viewer on it --runs times, output to /dev/null: the text view
(bodies folded) and --json. Prints MB/s of log read (both files) as the
median and the range, and the largest resident size of a run (from
/usr/bin/time, else wait4). Prints measurements; never passes or fails.

usage: bench/view-big.py [--view PATH] [--mb N] [--runs N]
                         [--timestamps lines|chunks|none] [--keep DIR]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time

GENERATOR = r'''
#include "core/format.hh"
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
using namespace rawlog_ext;
int main(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	const std::string stem = argv[1];
	const unsigned long long total = strtoull(argv[2], nullptr, 10) << 20;
	const Timestamps ts = strcmp(argv[3], "none") == 0 ? Timestamps::none :
		strcmp(argv[3], "chunks") == 0 ? Timestamps::chunks :
		Timestamps::lines;
	FILE *f[2] = { fopen((stem + ".in").c_str(), "wb"),
		       fopen((stem + ".out").c_str(), "wb") };
	if (f[0] == nullptr || f[1] == nullptr)
		return 1;
	Formatter fmt[2] = { Formatter(false, ts, false),
			     Formatter(false, ts, false) };
	unsigned long long written = 0;
	struct timeval now = { 1764633600, 0 };
	auto chunk = [&](Direction d, const std::string &s) {
		FILE *out = f[(int)d];
		auto emit = [&](const char *p, size_t n) {
			fwrite(p, 1, n, out);
			written += n;
		};
		fmt[(int)d].format(emit, d, (const unsigned char *)s.data(),
				   s.size(), now);
		now.tv_usec += 37;
		if (now.tv_usec >= 1000000) {
			now.tv_sec++;
			now.tv_usec -= 1000000;
		}
	};
	const size_t literal = 1 << 20;
	std::string body;
	for (unsigned i = 0; body.size() < literal; i++) {
		std::string line;
		for (int c = 0; c < 76; c++)
			line += (char)('A' + (i * 7 + c * 13) % 58);
		body += line + "\r\n";
	}
	body.resize(literal - 2);
	body += "\r\n";
	chunk(Direction::out, "* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n");
	chunk(Direction::in, "a0 LOGIN alice ***\r\n");
	chunk(Direction::out, "a0 OK Logged in\r\n");
	for (unsigned n = 1; written < total; n++) {
		const std::string size = std::to_string(body.size());
		chunk(Direction::in, "a" + std::to_string(n) +
		      " APPEND INBOX {" + size + "}\r\n");
		chunk(Direction::out, "+ OK\r\n");
		for (size_t at = 0; at < body.size(); at += 16384)
			chunk(Direction::in, body.substr(at, 16384));
		chunk(Direction::in, "\r\n");
		chunk(Direction::out, "a" + std::to_string(n) +
		      " OK [APPENDUID 1 " + std::to_string(n) +
		      "] Append completed.\r\n");
		chunk(Direction::in, "b" + std::to_string(n) + " FETCH " +
		      std::to_string(n) + " BODY[]\r\n");
		chunk(Direction::out, "* " + std::to_string(n) +
		      " FETCH (BODY[] {" + size + "}\r\n");
		for (size_t at = 0; at < body.size(); at += 16384)
			chunk(Direction::out, body.substr(at, 16384));
		chunk(Direction::out, ")\r\nb" + std::to_string(n) +
		      " OK Fetch completed.\r\n");
	}
	chunk(Direction::in, "z LOGOUT\r\n");
	chunk(Direction::out, "* BYE Logging out\r\nz OK Logout completed.\r\n");
	return fclose(f[0]) == 0 && fclose(f[1]) == 0 ? 0 : 1;
}
'''


def generate(src: str, tmp: str, mb: int, timestamps: str) -> str:
    """The pair's .in path."""
    gen_src = os.path.join(tmp, "gen.cc")
    gen = os.path.join(tmp, "gen")
    with open(gen_src, "w") as f:
        f.write(GENERATOR)
    subprocess.run(["g++", "-std=c++17", "-O2", "-I", src, gen_src,
                    os.path.join(src, "core", "format.cc"), "-o", gen],
                   check=True)
    stem = os.path.join(tmp, "20251202T000000Z_imap_BENCHviewBIGAAAB_4242_mx1")
    subprocess.run([gen, stem, str(mb), timestamps], check=True)
    return stem + ".in"


def run(cmd: list[str], runs: int) -> tuple[list[float], list[int]]:
    """Each run's seconds and max RSS (KiB): /usr/bin/time's, else wait4's
    (which may count the forking Python's pages)."""
    times, rss = [], []
    gnu_time = os.access("/usr/bin/time", os.X_OK)
    for _ in range(runs):
        t0 = time.monotonic()
        p = subprocess.Popen((["/usr/bin/time", "-f", "%M"] if gnu_time
                              else []) + cmd, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        err = p.stderr.read()
        _, status, usage = os.wait4(p.pid, 0)
        times.append(time.monotonic() - t0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{cmd}: exit {status}: {err.decode()}")
        rss.append(int(err.split()[-1]) if gnu_time else usage.ru_maxrss)
    return times, rss


def main() -> None:
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--view", default=os.environ.get("RAWLOG_EXT_VIEW",
                    os.path.join(here, "..", "build", "src", "view",
                                 "rawlog-ext-view")))
    ap.add_argument("--mb", type=int, default=1024,
                    help="size of the pair, MiB (default 1024)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--timestamps", default="lines",
                    choices=("lines", "chunks", "none"))
    ap.add_argument("--keep", help="write the log here and keep it")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rawlog-ext-view-big-")
    try:
        where = args.keep or tmp
        os.makedirs(where, exist_ok=True)
        t0 = time.monotonic()
        path = generate(os.path.join(here, "..", "src"), where, args.mb,
                        args.timestamps)
        other = path[:-3] + ".out"
        size = os.path.getsize(path) + os.path.getsize(other)
        print(f"log: {size / 1e6:.0f} MB ({os.path.getsize(path) / 1e6:.0f} + "
              f"{os.path.getsize(other) / 1e6:.0f}), timestamps "
              f"{args.timestamps} ({time.monotonic() - t0:.1f} s to write)")
        # A first run brings the files into the page cache: the runs
        # measure the viewer, not the disk. Its RSS is the baseline.
        run([args.view, "--no-pager", "--json", path], 1)
        for label, extra in (("text, bodies folded", ["--no-pager"]),
                             ("--json", ["--json"])):
            times, rss = run([args.view, *extra, path], args.runs)
            rates = sorted(size / t / 1e6 for t in times)
            print(f"{label}: {statistics.median(rates):.0f} MB/s median "
                  f"({rates[0]:.0f}-{rates[-1]:.0f}, {args.runs} runs); "
                  f"max RSS {min(rss)}-{max(rss)} KiB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
