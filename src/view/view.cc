// rawlog-ext-view: a session's log as one conversation (issue #17).
// Exit status: 0 shown, 1 bad input, 2 usage.
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

// Reads one log file into records; false (message printed) on bad input.
bool read_log(const std::string &path, bool transcript, Direction dir,
	      std::vector<Record> &records)
{
	int fd = open(path.c_str(), O_RDONLY);
	if (fd == -1) {
		fprintf(stderr, "rawlog-ext-view: %s: %s\n", path.c_str(),
			strerror(errno));
		return false;
	}
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
	static char buf[65536];
	bool ok = true;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0) {
			fprintf(stderr, "rawlog-ext-view: %s: %s\n",
				path.c_str(), strerror(errno));
			ok = false;
			break;
		}
		if (n == 0) {
			ok = parser.finish();
			break;
		}
		if (!parser.feed(buf, n)) {
			ok = false;
			break;
		}
	}
	close(fd);
	if (!ok && !parser.error().empty())
		fprintf(stderr, "rawlog-ext-view: %s: byte %llu: %s\n",
			path.c_str(), (unsigned long long)parser.error_offset(),
			parser.error().c_str());
	if (ok && parser.truncated())
		records.push_back({ Direction::out, false, { 0, 0 }, path,
				    std::string(), records.size() });
	return ok;
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
	"[--no-pager] FILE...\n";

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
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		if (a == "--json")
			json = true;
		else if (a == "--no-pager")
			pager = false;
		else if (a == "--bodies" || a == "--bodies=full")
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

	// Either file of a split pair brings the other.
	std::vector<std::string> logs;
	for (const std::string &f : files) {
		std::vector<std::string> add;
		if (ends_with(f, ".in") || ends_with(f, ".out")) {
			std::string stem = f.substr(0, f.rfind('.'));
			for (const char *ext : { ".in", ".out" })
				if (stem + ext == f || file_exists(stem + ext))
					add.push_back(stem + ext);
		} else if (ends_with(f, ".log")) {
			add.push_back(f);
		} else {
			fprintf(stderr, "rawlog-ext-view: %s: not a rawlog_ext log "
				"(.in, .out or .log)\n", f.c_str());
			return 1;
		}
		for (const std::string &l : add)
			if (std::find(logs.begin(), logs.end(), l) == logs.end())
				logs.push_back(l);
	}

	std::vector<Record> records;
	bool all_timed = true;
	for (const std::string &l : logs) {
		const bool transcript = ends_with(l, ".log");
		const Direction dir = ends_with(l, ".out") ? Direction::out :
			Direction::in;
		size_t first = records.size();
		if (!read_log(l, transcript, dir, records))
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
		(logs.size() == 1 && !ends_with(logs[0], ".log"));
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
	return 0;
}
