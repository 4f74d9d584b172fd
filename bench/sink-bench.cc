// The write path alone: replays IMAP-like traffic through Sink into a
// directory (give it one on tmpfs) and compares the CPU it takes with one
// plain write() of the bytes per read or write, i.e. an unformatted log.
// No Dovecot, no network: the figures move by a few percent between runs,
// not by the tens of percent of a loaded server.
//
//     bench/sink-bench DIR [TRIALS]
//
// Never a pass/fail test; prints one line per layout.
#include "core/sink.hh"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

using namespace rawlog_ext;

namespace {

struct Chunk {
	Direction direction;
	std::string data;
};

// A mail body as bench/loadgen.py sends: lines of 40-76 letters, and in
// every other message a base64 attachment (76 columns; about one line in
// six starts with a digit and gets its own stamp with timestamps=chunks)
// for half of it.
std::string mail_body(std::mt19937 &rng, size_t size, bool attachment)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	std::string body;
	const size_t text_size = attachment ? size / 2 : size;
	while (body.size() < text_size) {
		unsigned int n = 40 + rng() % 37;
		for (unsigned int i = 0; i < n; i++)
			body += (char)('a' + rng() % 26);
		body += "\r\n";
	}
	while (body.size() < size) {
		for (unsigned int i = 0; i < 76; i++)
			body += b64[rng() % 64];
		body += "\r\n";
	}
	return body;
}

// Sizes 2 KB to 100 KB, log-uniform (as the load generator's messages);
// FETCH replies are handed to the log in pieces of up to 32 KiB (imap's
// corked output as rawlog_ext holds it), APPEND literals in reads of up to
// 4 KiB.
std::vector<Chunk> make_traffic(unsigned int commands)
{
	std::mt19937 rng(1);
	std::vector<Chunk> traffic;
	for (unsigned int i = 0; i < commands; i++) {
		const std::string tag = "a" + std::to_string(i);
		const std::string body =
			mail_body(rng, (size_t)(2048 * std::pow(50.0, (rng() % 1000) / 1000.0)),
				  i % 2 == 1);
		if (i % 3 == 0) {
			traffic.push_back({ Direction::in, tag + " APPEND INBOX {" +
					    std::to_string(body.size()) + "}\r\n" });
			traffic.push_back({ Direction::out, "+ OK\r\n" });
			std::string literal = body + "\r\n";
			for (size_t off = 0; off < literal.size(); off += 4096)
				traffic.push_back({ Direction::in, literal.substr(off, 4096) });
			traffic.push_back({ Direction::out, tag + " OK [APPENDUID 1 " +
					    std::to_string(i) + "] Append completed.\r\n" });
		} else {
			traffic.push_back({ Direction::in, tag + " FETCH " +
					    std::to_string(i) + " BODY.PEEK[]\r\n" });
			std::string reply = "* " + std::to_string(i) + " FETCH (BODY[] {" +
				std::to_string(body.size()) + "}\r\n" + body + ")\r\n" +
				tag + " OK Fetch completed.\r\n";
			for (size_t off = 0; off < reply.size(); off += 32768)
				traffic.push_back({ Direction::out, reply.substr(off, 32768) });
		}
	}
	return traffic;
}

double cpu_seconds()
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
		(double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Empties the bench's own directory.
void remove_files(const std::string &dir)
{
	DIR *d = opendir(dir.c_str());
	if (d == nullptr)
		return;
	while (struct dirent *e = readdir(d)) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			(void)unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
}

// The baseline: the same bytes, no formatting, one write() per chunk.
bool write_plain(const std::string &dir, const std::vector<Chunk> &traffic)
{
	int fds[2];
	for (int i = 0; i < 2; i++) {
		std::string path = dir + "/sink-bench" + (i == 0 ? ".in" : ".out");
		fds[i] = open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600);
		if (fds[i] == -1) {
			fprintf(stderr, "open(%s): %s\n", path.c_str(), strerror(errno));
			return false;
		}
	}
	struct timeval now;
	for (const Chunk &c : traffic) {
		gettimeofday(&now, nullptr);	// as the sink layouts do
		if (write(fds[(int)c.direction], c.data.data(), c.data.size()) !=
		    (ssize_t)c.data.size()) {
			perror("write");
			return false;
		}
	}
	close(fds[0]);
	close(fds[1]);
	return true;
}

bool write_sink(const std::vector<Chunk> &traffic, const Settings &settings)
{
	NameParts parts;
	parts.time = 1;
	parts.service = "imap";
	parts.session = "bench";
	parts.pid = 1;
	parts.hostname = "sink-bench";
	std::unique_ptr<Sink> sink;
	std::string message;
	if (Sink::open(settings, parts, sink, message) != OpenResult::opened) {
		fprintf(stderr, "%s\n", message.c_str());
		return false;
	}
	struct timeval now;
	for (const Chunk &c : traffic) {
		gettimeofday(&now, nullptr);
		sink->write(c.direction, c.data.data(), c.data.size(), now);
	}
	(void)sink->flush_deferred();
	Sink::Level level;
	if (sink->take_report(level, message)) {
		fprintf(stderr, "%s\n", message.c_str());
		return false;
	}
	return true;
}

} // namespace

int main(int argc, char **argv)
{
	const int trials = argc > 2 ? atoi(argv[2]) : 15;
	if (argc < 2 || argc > 3 || trials < 1) {
		fprintf(stderr, "usage: %s DIR [TRIALS]  (DIR: where to write, "
			"best on tmpfs; TRIALS >= 1, default 15)\n", argv[0]);
		return 2;
	}
	// Sink wants an absolute directory.
	char base[PATH_MAX];
	if (realpath(argv[1], base) == nullptr) {
		fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	std::string templ = std::string(base) + "/sink-bench.XXXXXX";
	if (mkdtemp(&templ[0]) == nullptr) {
		fprintf(stderr, "mkdtemp(%s): %s\n", templ.c_str(), strerror(errno));
		return 1;
	}
	const std::string dir = templ;
	const std::vector<Chunk> traffic = make_traffic(1500);
	double wire = 0;
	for (const Chunk &c : traffic)
		wire += (double)c.data.size();

	struct Layout {
		const char *name;
		bool sink, transcript;
		Timestamps timestamps;
		double best = 1e9;
	} layouts[] = {
		{ "plain write() per chunk", false, false, Timestamps::none },
		{ "split, timestamps=yes", true, false, Timestamps::lines },
		{ "split, timestamps=chunks", true, false, Timestamps::chunks },
		{ "split, timestamps=no", true, false, Timestamps::none },
		{ "transcript, timestamps=yes", true, true, Timestamps::lines },
		{ "transcript, timestamps=chunks", true, true, Timestamps::chunks },
	};
	// Layouts alternate within each trial; the fastest trial of each
	// counts (the others were disturbed by something else).
	for (int trial = 0; trial < trials; trial++) {
		for (Layout &l : layouts) {
			Settings settings;
			settings.dir = dir;
			settings.format = l.transcript ? Format::transcript : Format::split;
			settings.timestamps = l.timestamps;
			remove_files(dir);
			double start = cpu_seconds();
			bool ok = l.sink ? write_sink(traffic, settings) :
				write_plain(dir, traffic);
			double used = cpu_seconds() - start;
			remove_files(dir);
			if (!ok) {
				(void)rmdir(dir.c_str());
				return 1;
			}
			l.best = std::min(l.best, used);
		}
	}
	(void)rmdir(dir.c_str());
	printf("write path alone: %.1f MB of IMAP-like traffic into %s, "
	       "fastest of %d trials\n", wire / 1e6, argv[1], trials);
	for (const Layout &l : layouts) {
		printf("  %-30s %6.3f us/KB on the wire  %5.2fx plain\n", l.name,
		       l.best / wire * 1e9, l.best / layouts[0].best);
	}
	return 0;
}
