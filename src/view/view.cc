// rawlog-ext-view: a session's log as one conversation (issue #17).
// Exit status: 0 shown, 1 bad input, 2 usage.
#include "core/age-read.hh"
#include "core/log-parse.hh"
#include "view/fold.hh"
#include "view/render.hh"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <string>
#include <unistd.h>
#include <vector>

using namespace rawlog_ext;

namespace {

struct Record {
	Direction direction;
	bool has_time;
	struct timeval time;
	std::string file;
	std::string data;
	size_t order;
};

bool ends_with(const std::string &s, const char *suffix)
{
	size_t n = strlen(suffix);
	return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

bool file_exists(const std::string &path)
{
	return access(path.c_str(), F_OK) == 0;
}

// A sealed log's name is the plain one with ".age" appended.
std::string unsealed(const std::string &name)
{
	return ends_with(name, ".age") ? name.substr(0, name.size() - 4) : name;
}

// What a sealed file that lacks its final chunk says, once the output
// shown (its authenticated part) is out.
std::vector<std::string> sealed_notes;

enum class Bytes { all, failed, truncated };

// Hands a log file's bytes to take, decrypted when it is sealed (.age):
// only authenticated chunks. failed: a message is printed (none when
// take refused: its own error says why). truncated: a sealed file that
// ends after a chunk that is not its last; its note is kept.
Bytes file_bytes(const std::string &path, const AgeIdentities &ids,
		 const std::function<bool(const char *, size_t)> &take)
{
	const bool sealed = ends_with(path, ".age");
	if (sealed && ids.size() == 0) {
		fprintf(stderr, "rawlog-ext-view: %s: sealed: give --identity\n",
			path.c_str());
		return Bytes::failed;
	}
	int fd = open(path.c_str(), O_RDONLY);
	if (fd == -1) {
		fprintf(stderr, "rawlog-ext-view: %s: %s\n", path.c_str(),
			strerror(errno));
		return Bytes::failed;
	}
	bool taken = true;
	AgeReader reader(ids, [&](const unsigned char *p, size_t n) {
		if (taken)
			taken = take((const char *)p, n);
	});
	static char buf[65536];
	Bytes got = Bytes::all;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0) {
			fprintf(stderr, "rawlog-ext-view: %s: %s\n",
				path.c_str(), strerror(errno));
			got = Bytes::failed;
			break;
		}
		bool ok = !sealed ? n == 0 || take(buf, n) :
			n == 0 ? reader.finish() : reader.feed(buf, n);
		if (!ok || !taken) {
			got = Bytes::failed;
			break;
		}
		if (n == 0)
			break;
	}
	close(fd);
	if (sealed && taken && reader.kind() != AgeReadError::none) {
		std::string msg = "rawlog-ext-view: " + path + ": ";
		if (reader.kind() != AgeReadError::no_identity)
			msg += "byte " + std::to_string(reader.error_offset()) +
				": ";
		msg += reader.error();
		if (reader.kind() == AgeReadError::truncated) {
			sealed_notes.push_back(msg);
			return Bytes::truncated;
		}
		fprintf(stderr, "%s\n", msg.c_str());
	}
	return got;
}

// Reads one log file into records; false (message printed) on bad input.
bool read_log(const std::string &path, const AgeIdentities &ids,
	      bool transcript, Direction dir, std::vector<Record> &records)
{
	LogParser parser(transcript, dir, [&](const LogPiece &piece) {
		// Pieces of one stamp and direction form one record.
		if (!records.empty() && records.back().file == path &&
		    records.back().direction == piece.direction &&
		    records.back().has_time == piece.has_time &&
		    (!piece.has_time ||
		     (records.back().time.tv_sec == piece.time.tv_sec &&
		      records.back().time.tv_usec == piece.time.tv_usec))) {
			records.back().data.append(piece.data, piece.size);
			return;
		}
		records.push_back({ piece.direction, piece.has_time, piece.time,
				    path, std::string(piece.data, piece.size),
				    records.size() });
	});
	Bytes got = file_bytes(path, ids, [&](const char *p, size_t n) {
		return parser.feed(p, n);
	});
	// Truncated: what the sealed file holds is shown, its unfinished
	// last record (if any) is not an error of its own.
	bool ok = got == Bytes::all ? parser.finish() : got == Bytes::truncated;
	if (got == Bytes::truncated)
		(void)parser.finish();
	if (!ok && !parser.error().empty())
		fprintf(stderr, "rawlog-ext-view: %s: %sbyte %llu: %s\n",
			path.c_str(), ends_with(path, ".age") ? "decrypted " : "",
			(unsigned long long)parser.error_offset(),
			parser.error().c_str());
	if (ok && parser.truncated())
		records.push_back({ Direction::out, false, { 0, 0 }, path,
				    std::string(), records.size() });
	return ok;
}

// After the output: the sealed files that lack their final chunk; 1 if
// any (a truncated file is bad input, as a truncated plain log).
int sealed_status()
{
	for (const std::string &note : sealed_notes)
		fprintf(stderr, "%s\n", note.c_str());
	return sealed_notes.empty() ? 0 : 1;
}

std::string base64(const std::string &in)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	std::string out;
	size_t i = 0;
	for (; i + 2 < in.size(); i += 3) {
		unsigned v = (unsigned char)in[i] << 16 |
			(unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
		out += tab[v >> 18]; out += tab[(v >> 12) & 63];
		out += tab[(v >> 6) & 63]; out += tab[v & 63];
	}
	if (i + 1 == in.size()) {
		unsigned v = (unsigned char)in[i] << 16;
		out += tab[v >> 18]; out += tab[(v >> 12) & 63]; out += "==";
	} else if (i + 2 == in.size()) {
		unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8;
		out += tab[v >> 18]; out += tab[(v >> 12) & 63];
		out += tab[(v >> 6) & 63]; out += '=';
	}
	return out;
}

std::string json_string(const std::string &s)
{
	std::string out = "\"";
	for (unsigned char c : s) {
		if (c == '"' || c == '\\') {
			out += '\\';
			out += (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			char e[8];
			snprintf(e, sizeof(e), "\\u%04x", c);
			out += e;
		} else {
			out += (char)c;
		}
	}
	return out + "\"";
}

const char usage_text[] =
	"usage: rawlog-ext-view [--json | --html OUT] [--bodies[=headers]] "
	"[--no-pager] [--identity KEYFILE]... FILE...\n";

int usage()
{
	fprintf(stderr, "%s", usage_text);
	return 2;
}

} // namespace

int main(int argc, char **argv)
{
	bool json = false, pager = true;
	BodiesMode bodies = BodiesMode::fold;
	std::string html;
	std::vector<std::string> files;
	AgeIdentities ids;
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		if (a == "--json")
			json = true;
		else if (a == "--no-pager")
			pager = false;
		else if (a == "--identity" || a.compare(0, 11, "--identity=") == 0) {
			// age -i's identity files, for sealed (.age) logs.
			if (a == "--identity" && i + 1 == argc)
				return usage();
			std::string err;
			if (!ids.add_file(a == "--identity" ? argv[++i] :
					  a.substr(11), err)) {
				fprintf(stderr, "rawlog-ext-view: %s\n", err.c_str());
				return 1;
			}
		} else if (a == "--bodies" || a == "--bodies=full")
			bodies = BodiesMode::full;
		else if (a == "--bodies=headers")
			bodies = BodiesMode::headers;
		else if (a == "--html" && i + 1 < argc)
			html = argv[++i];
		else if (a.compare(0, 7, "--html=") == 0 && a.size() > 7)
			html = a.substr(7);
		else if (a == "--help" || a == "-h") {
			printf("%s", usage_text);
			return 0;
		} else if (a.size() > 1 && a[0] == '-')
			return usage();
		else
			files.push_back(a);
	}
	if (files.empty() || (json && !html.empty()))
		return usage();

	// Either file of a split pair brings the other (a sealed pair, the
	// sealed other).
	std::vector<std::string> logs;
	for (const std::string &f : files) {
		std::vector<std::string> add;
		const std::string base = unsealed(f), seal = f.substr(base.size());
		if (ends_with(base, ".in") || ends_with(base, ".out")) {
			std::string stem = base.substr(0, base.rfind('.'));
			for (const char *ext : { ".in", ".out" })
				if (stem + ext + seal == f ||
				    file_exists(stem + ext + seal))
					add.push_back(stem + ext + seal);
		} else if (ends_with(base, ".log")) {
			add.push_back(f);
		} else {
			fprintf(stderr, "rawlog-ext-view: %s: not a rawlog_ext log "
				"(.in, .out or .log, sealed: .age after it)\n",
				f.c_str());
			return 1;
		}
		for (const std::string &l : add)
			if (std::find(logs.begin(), logs.end(), l) == logs.end())
				logs.push_back(l);
	}

	std::vector<Record> records;
	bool all_timed = true;
	for (const std::string &l : logs) {
		const bool transcript = ends_with(unsealed(l), ".log");
		const Direction dir = ends_with(unsealed(l), ".out") ?
			Direction::out : Direction::in;
		size_t first = records.size();
		if (!read_log(l, ids, transcript, dir, records))
			return 1;
		for (size_t i = first; i < records.size(); i++)
			if (!records[i].has_time && !records[i].data.empty())
				all_timed = false;
	}
	for (size_t i = 0; i < records.size(); i++)
		records[i].order = i;
	// By time; without timestamps one file after the other. Input the
	// module wrote before the output that followed it comes first.
	// A transcript alone is in order already (its records are written as
	// things happen; a clock step must not reorder them). Markers (no
	// data, no time) go last.
	const bool merging = logs.size() > 1 ||
		(logs.size() == 1 && !ends_with(unsealed(logs[0]), ".log"));
	if (all_timed && merging)
		std::stable_sort(records.begin(), records.end(),
				 [](const Record &a, const Record &b) {
			if (a.data.empty() || b.data.empty())
				return !a.data.empty() && b.data.empty();
			if (a.time.tv_sec != b.time.tv_sec)
				return a.time.tv_sec < b.time.tv_sec;
			if (a.time.tv_usec != b.time.tv_usec)
				return a.time.tv_usec < b.time.tv_usec;
			return a.direction < b.direction;
		});

	FILE *out = stdout;
	const bool tty = isatty(STDOUT_FILENO);
	std::unique_ptr<Renderer> renderer;
	if (!html.empty() && html != "-") {
		out = fopen(html.c_str(), "w");
		if (out == nullptr) {
			fprintf(stderr, "rawlog-ext-view: %s: %s\n", html.c_str(),
				strerror(errno));
			return 1;
		}
	}
	if (!html.empty()) {
		std::string name = logs[0].substr(logs[0].rfind('/') + 1);
		renderer = html_renderer(out, bodies, name);
	} else if (!json) {
		if (tty && pager) {
			setenv("LESS", getenv("LESS") != nullptr ?
			       getenv("LESS") : "FRX", 1);
			const char *p = getenv("PAGER");
			FILE *pipe = popen(p != nullptr && *p != '\0' ? p :
					   "less -R", "w");
			if (pipe != nullptr)
				out = pipe;
		}
		renderer = text_renderer(out, bodies, tty);
	}
	// The protocol from the first file's name (the tracker guesses it
	// from the first lines if the name does not say).
	bool client_out = false;
	const ViewProtocol protocol = view_protocol_from_name(logs[0], &client_out);
	ViewTracker tracker(protocol, client_out ? Direction::out : Direction::in,
			    [&](const ViewItem &item) { renderer->item(item); },
			    !html.empty() || bodies != BodiesMode::fold);
	if (renderer && !all_timed && logs.size() > 1)
		renderer->notice("no timestamps: the directions cannot be "
				 "interleaved; shown one after the other");
	for (const Record &r : records) {
		if (renderer) {
			if (r.data.empty() && !r.has_time) {
				tracker.flush();
				renderer->truncated();
			} else {
				tracker.feed(r.direction, r.has_time, r.time,
					     r.data.data(), r.data.size());
			}
			continue;
		}
		if (r.data.empty())
			continue;
		std::string t = "null";
		if (r.has_time) {
			char b[40];
			snprintf(b, sizeof(b), "%lld.%06ld", (long long)r.time.tv_sec,
				 (long)r.time.tv_usec);
			t = b;
		}
		fprintf(out, "{\"time\": %s, \"from\": \"%s\", \"leg\": \"session\", "
			"\"file\": %s, \"data_b64\": \"%s\"}\n", t.c_str(),
			r.direction == Direction::in ? "client" : "server",
			json_string(r.file).c_str(), base64(r.data).c_str());
	}
	if (renderer) {
		tracker.flush();
		renderer->finish();
	}
	if (out != stdout && html.empty())
		pclose(out);
	else if (out != stdout) {
		if (fclose(out) != 0) {
			fprintf(stderr, "rawlog-ext-view: %s: %s\n", html.c_str(),
				strerror(errno));
			return 1;
		}
	} else if (fflush(stdout) != 0)
		return 1;
	return sealed_status();
}
