#!/usr/bin/python3
"""Benchmark: what loading a module costs a process (never pass/fail).

    python3 bench/modload.py [--module-dir DIR] [--rounds N] [--processes N]
                             [--baseline-module-dir DIR]

A process per session (imap-login with Dovecot's default service_count = 1,
a short imap or pop3 session) loads its plugins each time, before it does
any work. This measures that part alone: a small C program linked with
libdovecot, libdovecot-storage and libdovecot-login (the libraries a login
or mail process already has) forks --processes children per window; each
dlopen()s the given modules as Dovecot's module_dir_load() does
(RTLD_GLOBAL | RTLD_NOW) and exits with exit() (destructors run). Variants:
  none     fork and exit, nothing loaded
  trivial  a small C plugin of Dovecot's own (lib02_lazy_expunge_plugin.so)
  login    rawlog_ext's login companion (lib20_rawlog_ext_login_plugin.so)
  mail     rawlog_ext's mail plugin (lib90_rawlog_ext_plugin.so)
  login-base, mail-base  the same from --baseline-module-dir (another
           build, e.g. before a change; only with that option)
The figure is the parent's wall clock per child (fork, load, exit, wait:
the machine has 2 cores, the child runs while the parent waits), the
median over rounds in rotating order (rounded up to a multiple of the
variants), and the median of the per-round differences to none with a 95%
interval (run.py's spread()); with --baseline-module-dir also the paired
differences of each module to its baseline build. Not measured: the
plugin's init function (Dovecot calls it after loading), which for the
modules here reads settings and registers hooks. The loader has both
libdovecot-storage and libdovecot-login, which no Dovecot process has
together: ld.so's symbol lookups walk one library more than in imap or
imap-login. Only Dovecot 2.3's layout (/usr/lib/dovecot) was measured.
"""

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from run import median, spread  # noqa: E402

DOVECOT_LIB = pathlib.Path("/usr/lib/dovecot")
TRIVIAL = DOVECOT_LIB / "modules" / "lib02_lazy_expunge_plugin.so"

LOADER = r"""
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* argv: count, then the modules to load in each child. Prints the
   microseconds per child. */
int main(int argc, char **argv)
{
	int n = atoi(argv[1]);
	double start = now();
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			for (int j = 2; j < argc; j++) {
				if (dlopen(argv[j], RTLD_GLOBAL | RTLD_NOW) == NULL) {
					fprintf(stderr, "%s\n", dlerror());
					_exit(1);
				}
			}
			exit(0);	/* as Dovecot's processes do: destructors run */
		}
		int status;
		if (pid < 0 || waitpid(pid, &status, 0) != pid || status != 0)
			return 1;
	}
	printf("%.3f\n", (now() - start) / n * 1e6);
	return 0;
}
"""


def build_loader(work: pathlib.Path) -> pathlib.Path:
    src, exe = work / "loader.c", work / "loader"
    src.write_text(LOADER)
    libs = [str(DOVECOT_LIB / f"lib{n}.so")
            for n in ("dovecot", "dovecot-storage", "dovecot-login")]
    subprocess.run(["cc", "-O2", "-o", str(exe), str(src), "-Wl,--no-as-needed",
                    f"-Wl,-rpath,{DOVECOT_LIB}", *libs, "-ldl"], check=True)
    return exe


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--module-dir", default=os.environ.get("RAWLOG_EXT_MODULE_DIR"))
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--processes", type=int, default=1000, help="per window")
    ap.add_argument("--baseline-module-dir")
    args = ap.parse_args()
    if not args.module_dir:
        ap.error("--module-dir (or RAWLOG_EXT_MODULE_DIR) is needed")
    mods = pathlib.Path(args.module_dir)
    variants = {"none": [], "trivial": [TRIVIAL],
                "login": [mods / "lib20_rawlog_ext_login_plugin.so"],
                "mail": [mods / "lib90_rawlog_ext_plugin.so"]}
    if args.baseline_module_dir:
        base = pathlib.Path(args.baseline_module_dir)
        variants["login-base"] = [base / "lib20_rawlog_ext_login_plugin.so"]
        variants["mail-base"] = [base / "lib90_rawlog_ext_plugin.so"]
    for v, paths in variants.items():
        for p in paths:
            if not p.exists():
                ap.error(f"{v}: {p} not found")
    names = list(variants)
    per = {v: [] for v in names}
    with tempfile.TemporaryDirectory(prefix="rawlog-ext-modload-") as work:
        exe = build_loader(pathlib.Path(work))
        for v in names:   # warm-up: page cache, first faults
            subprocess.run([str(exe), "50", *map(str, variants[v])], check=True,
                           stdout=subprocess.DEVNULL)
        rounds = -(-args.rounds // len(names)) * len(names)
        for rnd in range(rounds):
            order = names[rnd % len(names):] + names[:rnd % len(names)]
            for v in order:
                out = subprocess.run([str(exe), str(args.processes),
                                      *map(str, variants[v])],
                                     check=True, stdout=subprocess.PIPE, text=True).stdout
                per[v].append(float(out))
    print(f"{args.processes} processes per window, {rounds} rounds; "
          "microseconds per process (fork, load, exit)")
    print(f"{'variant':10} {'median':>8} {'over none [95% interval]':>34}")

    def paired(v: str, base: str) -> str:
        diffs = [a - b for a, b in zip(per[v], per[base])]
        sp = spread(diffs)
        interval = f" [{sp['ci95'][0]:.1f} to {sp['ci95'][1]:.1f}]" if sp else ""
        return f"{median(diffs):>+14.1f}{interval:>20}"

    for v in names:
        over = f"{'-':>14}" if v == "none" else paired(v, "none")
        print(f"{v:10} {median(per[v]):>8.1f} {over}")
    for v in ("login", "mail"):
        if v + "-base" in per:
            print(f"{v} over {v}-base (paired per round): {paired(v, v + '-base')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
