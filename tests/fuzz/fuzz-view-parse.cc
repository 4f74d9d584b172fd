// libFuzzer target for the log parser (src/core/log-parse.cc).
//
// Input: the first byte picks the mode: b0 % 2 == 0 parses the rest as a
// log (b0 / 2 % 2: transcript or split); otherwise the rest is wire data,
// cut into chunks at 0x01 bytes (0x02 switches direction), formatted by
// the module's own Formatter in the layout b0 / 2 % 5 picks (the
// unambiguous ones) and parsed back.
// Checked:
//   - never a crash, a hang or undefined behaviour, whatever the bytes;
//   - the result (bytes per direction, success, error offset) does not
//     depend on how the input is fed (whole and byte by byte agree);
//   - what the Formatter wrote is read back to exactly the data (unless
//     the data holds the truncation marker's text);
//   - the viewer's protocol tracker (src/view/fold.cc), given that wire
//     data as IMAP, POP3, SMTP or unknown, cuts it into the same items
//     whether each chunk comes whole or byte by byte, every body begun
//     ends, and no body is larger than the bytes given;
//   - the reading of log file names (src/view/sessions.cc), given the
//     input as a name: a name it takes, written again by the module's own
//     log_base_name(), is taken again with the same parts (the module's
//     names and the viewer's reading cannot drift apart unseen).
//
// Built with -DRAWLOG_EXT_FUZZ_DRIVER it has its own main() (no libFuzzer
// needed; tests/fuzz/fuzz-driver.hh).
#include "core/log-parse.hh"
#include "core/naming.hh"
#include "view/fold.hh"
#include "view/sessions.hh"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

using namespace rawlog_ext;

namespace {

struct Result {
	std::string bytes[2];
	bool ok;
	uint64_t offset;
	bool truncated;
};

Result parse(bool transcript, const char *p, size_t n, size_t step)
{
	Result r;
	LogParser parser(transcript, Direction::out, [&r](const LogPiece &piece) {
		r.bytes[(int)piece.direction].append(piece.data, piece.size);
	});
	bool ok = true;
	for (size_t i = 0; i < n && ok; i += step)
		ok = parser.feed(p + i, n - i < step ? n - i : step);
	r.ok = ok && parser.finish();
	r.offset = r.ok ? 0 : parser.error_offset();
	r.truncated = parser.truncated();
	if (!r.ok && parser.error().empty())
		abort();
	return r;
}

void same(const Result &a, const Result &b)
{
	if (a.ok != b.ok || a.offset != b.offset ||
	    a.bytes[0] != b.bytes[0] || a.bytes[1] != b.bytes[1] ||
	    a.truncated != b.truncated) {
		fprintf(stderr, "feeding whole and byte by byte differ\n");
		abort();
	}
}

struct Chunk {
	Direction dir;
	std::string data;
};

std::vector<std::string> track(ViewProtocol proto, const std::vector<Chunk> &chunks,
			       size_t step, bool body_lines)
{
	std::vector<std::string> items;
	int open = 0;
	uint64_t total = 0;
	ViewTracker t(proto, Direction::in, [&](const ViewItem &i) {
		std::string s = i.client ? "C" : "S";
		switch (i.kind) {
		case ViewItem::Kind::body_begin:
			if (open++ != 0 && false)
				abort();
			s += "begin";
			break;
		case ViewItem::Kind::body_end:
			open--;
			if (i.size > total || i.sha256.size() != 64)
				abort();
			s += "end " + std::to_string(i.size) + i.sha256 +
				(i.complete ? "+" : "-");
			break;
		case ViewItem::Kind::line:
			if (i.text.size() > ViewTracker::max_line)
				abort();
			s += (i.body ? "body " : "line ") + i.text +
				(i.newline ? "\n" : "") + std::to_string(i.failure) +
				std::to_string(i.redacted) + std::to_string(i.latency_us);
			break;
		}
		items.push_back(s);
	}, body_lines);
	struct timeval tv = { 1700000000, 0 };
	for (const Chunk &c : chunks) {
		total += c.data.size();
		for (size_t i = 0; i < c.data.size(); i += step)
			t.feed(c.dir, true, tv, c.data.data() + i,
			       std::min(step, c.data.size() - i));
		tv.tv_usec++;
	}
	t.flush();
	if (open != 0)
		abort();
	return items;
}

void check_tracker(const std::vector<Chunk> &chunks)
{
	for (ViewProtocol proto : { ViewProtocol::imap, ViewProtocol::pop3,
				    ViewProtocol::smtp, ViewProtocol::unknown }) {
		std::vector<std::string> whole = track(proto, chunks, SIZE_MAX, true);
		if (track(proto, chunks, 1, true) != whole) {
			fprintf(stderr, "tracker: whole and byte by byte differ\n");
			abort();
		}
		std::vector<std::string> folded;
		for (const std::string &s : whole)
			if (s.compare(1, 5, "body ") != 0)
				folded.push_back(s);
		if (track(proto, chunks, 3, false) != folded) {
			fprintf(stderr, "tracker: without body lines differs\n");
			abort();
		}
	}
}

void round_trip(unsigned int layout, const uint8_t *data, size_t size)
{
	struct Layout { bool transcript; Timestamps ts; bool boundaries; };
	static const Layout layouts[] = {
		{ true, Timestamps::none, false },
		{ true, Timestamps::chunks, true },
		{ true, Timestamps::lines, false },
		{ false, Timestamps::lines, false },
		{ false, Timestamps::chunks, false },
	};
	const Layout &l = layouts[layout % 5];
	// A split file holds one direction: two formatters, as the Sink has.
	Formatter f[2] = { Formatter(l.transcript, l.ts, l.boundaries),
			   Formatter(l.transcript, l.ts, l.boundaries) };
	std::string log[2], expected[2];
	Direction dir = Direction::in;
	struct timeval now = { 1700000000, 0 };
	size_t start = 0;
	std::vector<Chunk> chunks;
	for (size_t i = 0; i <= size; i++) {
		if (i < size && data[i] != 1 && data[i] != 2)
			continue;
		const unsigned char *chunk = data + start;
		size_t n = i - start;
		int file = l.transcript ? 0 : (int)dir;
		f[file].format(log[file], dir, chunk, n, now);
		expected[(int)dir].append((const char *)chunk, n);
		chunks.push_back({ dir, std::string((const char *)chunk, n) });
		now.tv_usec++;
		if (i < size && data[i] == 2)
			dir = dir == Direction::in ? Direction::out : Direction::in;
		start = i + 1;
	}
	check_tracker(chunks);
	// Data ending in the marker's own line reads as a truncated log
	// (like "<<<"/">>>" with rawlog -b, the marker can be mimicked).
	for (const std::string &e : expected)
		if (e.find(truncation_marker_prefix) != std::string::npos)
			return;
	for (int file = 0; file < (l.transcript ? 1 : 2); file++) {
		Result r = parse(l.transcript, log[file].data(), log[file].size(),
				 log[file].size() + 1);
		if (!l.transcript) {
			// A split file's bytes are all of its own direction.
			r.bytes[file].swap(r.bytes[(int)Direction::out]);
			if (file == 0)
				r.bytes[1].clear();
		}
		bool good = r.ok && (l.transcript ?
			r.bytes[0] == expected[0] && r.bytes[1] == expected[1] :
			r.bytes[file] == expected[file]);
		if (!good) {
			fprintf(stderr, "layout %u: not read back (%s)\n",
				layout % 5, r.ok ? "bytes differ" : "refused");
			abort();
		}
	}
}

bool same_name(const LogName &a, const LogName &b)
{
	return a.parts.time == b.parts.time &&
		a.parts.service == b.parts.service &&
		a.parts.session == b.parts.session &&
		a.parts.pid == b.parts.pid &&
		a.parts.hostname == b.parts.hostname &&
		a.parts.peer == b.parts.peer && a.parts.ip == b.parts.ip &&
		a.ext == b.ext && a.sealed == b.sealed && a.n == b.n;
}

void check_name(const uint8_t *data, size_t size)
{
	const std::string name((const char *)data, size < 256 ? size : 256);
	LogName first;
	if (!parse_log_name(name, first))
		return;
	(void)leg_of(first.parts.service);
	const std::string again = log_base_name(first.parts, first.n) + "." +
		first.ext + (first.sealed ? ".age" : "");
	LogName second;
	if (!parse_log_name(again, second) || !same_name(first, second)) {
		fprintf(stderr, "log name read back differs: %s -> %s\n",
			name.c_str(), again.c_str());
		abort();
	}
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	check_name(data + 1, size - 1);
	(void)user_from_login_dir(std::string((const char *)data, size));
	const char *p = (const char *)data + 1;
	const size_t n = size - 1;
	if (data[0] % 2 == 0) {
		const bool transcript = (data[0] / 2) % 2 != 0;
		Result whole = parse(transcript, p, n, n + 1);
		same(whole, parse(transcript, p, n, 1));
		same(whole, parse(transcript, p, n, 7));
	} else {
		round_trip(data[0] / 2, data + 1, n);
	}
	return 0;
}

#ifdef RAWLOG_EXT_FUZZ_DRIVER
static const char *const fuzz_driver_tokens[] = {
	"1700000000.000001 ", "<<<\n", ">>>\n", "I: ", "O: ", "I+ ", "O+ ",
	"*** rawlog_ext: log truncated: ", "\n", "\x01", "\x02",
};
#define FUZZ_DRIVER_NAME "fuzz-view-parse"
#include "fuzz-driver.hh"
#endif
