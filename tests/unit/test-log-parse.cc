// LogParser: logs written by the real Sink in every layout are read back
// to exactly the bytes that were written, per direction, with their times.
#include "test-common.hh"

#include "core/log-parse.hh"
#include "core/sink.hh"

using namespace rawlog_ext;

namespace {

struct Chunk {
	Direction dir;
	std::string data;
};

// Partial lines, lines starting with digits (chunks mode stamps them),
// a CR LF, a NUL and a high byte; the last chunk ends mid-line.
const std::vector<Chunk> chunks = {
	{ Direction::out, "* OK ready\r\n" },
	{ Direction::in, "a1 LOGIN u p\r\na2 SELECT" },
	{ Direction::in, " INBOX\r\n" },
	{ Direction::out, "* 12 EXISTS\r\n12345 digits\r\na2 OK\r\n" },
	{ Direction::in, std::string("a3 APPEND x {5}\r\nb\0\xff\n!\r\n", 23) },
	{ Direction::out, "\n\na3 OK\r\n" },
	{ Direction::in, "a4 LOGOUT" },
};

struct Parsed {
	std::string bytes[2];
	std::vector<struct timeval> times;
	bool any_time = false;
	bool all_time = true;
};

void parse_file(const std::string &path, bool transcript, Direction dir,
		Parsed &out, bool &truncated_r, size_t feed_size)
{
	std::string text = read_file(path);
	LogParser parser(transcript, dir, [&out](const LogPiece &piece) {
		out.bytes[(int)piece.direction].append(piece.data, piece.size);
		if (piece.has_time) {
			out.any_time = true;
			out.times.push_back(piece.time);
		} else {
			out.all_time = false;
		}
	});
	for (size_t i = 0; i < text.size(); i += feed_size) {
		size_t n = std::min(feed_size, text.size() - i);
		if (!parser.feed(text.data() + i, n))
			fail_msg("%s: feed: %s at %llu", path.c_str(),
				 parser.error().c_str(),
				 (unsigned long long)parser.error_offset());
	}
	if (!parser.finish())
		fail_msg("%s: finish: %s at %llu: %s", path.c_str(),
			 parser.error().c_str(),
			 (unsigned long long)parser.error_offset(),
			 escape(text).c_str());
	truncated_r = parser.truncated();
}

void round_trip(const std::string &dir, Format format, Timestamps ts,
		bool boundaries, uint64_t max_size, size_t feed_size)
{
	Settings set;
	set.dir = dir;
	set.format = format;
	set.timestamps = ts;
	set.boundaries = boundaries;
	set.max_size = max_size;
	std::unique_ptr<Sink> sink;
	std::string message;
	NameParts parts = fixed_parts();
	static unsigned int serial = 0;
	parts.pid = 1000 + ++serial;
	if (Sink::open(set, parts, sink, message) != OpenResult::opened)
		fail_msg("open: %s", message.c_str());
	std::string expected[2];
	for (size_t i = 0; i < chunks.size(); i++) {
		struct timeval now = { (time_t)(1700000000 + i), (long)i * 7 };
		sink->write(chunks[i].dir, chunks[i].data.data(),
			    chunks[i].data.size(), now);
		expected[(int)chunks[i].dir] += chunks[i].data;
	}
	(void)sink->flush_deferred();
	sink.reset();

	const std::string base = dir + "/" + log_base_name(parts);
	Parsed got;
	bool truncated[2] = { false, false };
	if (format == Format::transcript) {
		parse_file(base + ".log", true, Direction::in, got, truncated[0],
			   feed_size);
		truncated[1] = truncated[0];
	} else {
		parse_file(base + ".in", false, Direction::in, got, truncated[0],
			   feed_size);
		parse_file(base + ".out", false, Direction::out, got,
			   truncated[1], feed_size);
	}
	for (int d = 0; d < 2; d++) {
		if (max_size == 0) {
			if (got.bytes[d] != expected[d])
				fail_msg("dir %d: got \"%s\" expected \"%s\"", d,
					 escape(got.bytes[d]).c_str(),
					 escape(expected[d]).c_str());
			assert_false(truncated[d]);
		} else {
			// A prefix, and the marker was recognised.
			if (expected[d].compare(0, got.bytes[d].size(),
						got.bytes[d]) != 0)
				fail_msg("dir %d: \"%s\" is no prefix of \"%s\"", d,
					 escape(got.bytes[d]).c_str(),
					 escape(expected[d]).c_str());
			assert_true(truncated[d]);
		}
	}
	if (ts == Timestamps::none) {
		assert_false(got.any_time);
	} else {
		assert_true(got.any_time);
		assert_true(got.all_time);
		for (const struct timeval &tv : got.times) {
			assert_true(tv.tv_sec >= 1700000000 &&
				    tv.tv_sec < 1700000000 + (time_t)chunks.size());
			assert_int_equal(tv.tv_usec, (tv.tv_sec - 1700000000) * 7);
		}
	}
}

void every_layout(void **state, uint64_t max_size)
{
	const Format formats[] = { Format::split, Format::transcript };
	const Timestamps stamps[] = { Timestamps::none, Timestamps::lines,
				      Timestamps::chunks };
	const size_t feeds[] = { 1, 3, 4096 };
	for (Format f : formats)
		for (Timestamps t : stamps)
			for (int b = 0; b < 2; b++)
				for (size_t feed : feeds)
					round_trip(tmpdir(state).path(), f, t,
						   b != 0, max_size, feed);
}

void test_every_layout_round_trips(void **state)
{
	every_layout(state, 0);
}

void test_truncated_logs_give_a_prefix_and_the_marker(void **state)
{
	every_layout(state, 40);
	every_layout(state, 100);
}

// Bad input: the offset of the first bad line.
void expect_error(bool transcript, const std::string &text, uint64_t offset)
{
	LogParser parser(transcript, Direction::in, [](const LogPiece &) {});
	bool ok = parser.feed(text.data(), text.size()) && parser.finish();
	assert_false(ok);
	assert_false(parser.error().empty());
	if (parser.error_offset() != offset)
		fail_msg("\"%s\": offset %llu (%s), expected %llu",
			 escape(text).c_str(),
			 (unsigned long long)parser.error_offset(),
			 parser.error().c_str(), (unsigned long long)offset);
}

void test_bad_input_named_by_offset(void **)
{
	expect_error(true, "I: a1 LOGIN\nhello\n", 12);
	expect_error(true, "\x7f" "ELF\x02\x01\n", 0);
	expect_error(true, "I: a1 LOGIN\nO+ trunc", 12);
	expect_error(true, "<<<\nI: x\n", 9);
	expect_error(true, ">>>\n", 0);
	expect_error(false, "<<<\n1700000000.000001 x\n", 24);
	expect_error(false, "<<<\nx\n>>>\ny\n", 12);	// ">>>" was data
	expect_error(false, "1700000000.000001 x\n12 y\n", 20);
	const std::string marker = std::string(truncation_marker_prefix) +
		"rawlog_ext_max_size=5 bytes reached ***\n";
	expect_error(true, "I: x\n" + marker + "I: y\n", 5);
}

// In a split file only the last line can be the marker: elsewhere a line
// like it is data (found by the fuzzer).
void test_marker_like_data_in_split_is_data(void **)
{
	const std::string marker = std::string(truncation_marker_prefix) +
		"rawlog_ext_max_size=5 bytes reached ***\n";
	for (const std::string &text : { "abc\n" + marker + "more",
					  "abc\n" + marker }) {
		std::string got;
		LogParser parser(false, Direction::in, [&got](const LogPiece &p) {
			got.append(p.data, p.size);
		});
		assert_true(parser.feed(text.data(), text.size()));
		assert_true(parser.finish());
		const bool last = text.size() == 4 + marker.size();
		assert_int_equal(parser.truncated(), last);
		assert_string_equal(escape(got).c_str(),
				    escape(last ? "abc" : text).c_str());
	}
}

// --follow: at the file's current end a held line end is data (the
// marker comes with its own "\n" in one write); a marker after it is
// still recognised, a partial line or a chunk's ">>>" is not released.
void test_release_held_at_a_followed_end(void **)
{
	const std::string marker = std::string(truncation_marker_prefix) +
		"rawlog_ext_max_size=5 bytes reached ***\n";
	std::string got;
	LogParser parser(false, Direction::in, [&got](const LogPiece &p) {
		got.append(p.data, p.size);
	});
	const std::string line = "1700000000.000001 a1 NOOP\r\n";
	assert_true(parser.feed(line.data(), line.size()));
	assert_string_equal(escape(got).c_str(), escape("a1 NOOP\r").c_str());
	parser.release_held();
	assert_string_equal(escape(got).c_str(), escape("a1 NOOP\r\n").c_str());
	parser.release_held();
	const std::string rest = "1700000000.000002 a2 NO";
	assert_true(parser.feed(rest.data(), rest.size()));
	parser.release_held();	// mid-line: the last bytes still wait
	const std::string end = "OP\r\n" + std::string("\n") + marker;
	assert_true(parser.feed(end.data(), end.size()));
	parser.release_held();	// the marker's line: nothing
	assert_true(parser.finish());
	assert_true(parser.truncated());
	assert_string_equal(escape(got).c_str(),
			    escape("a1 NOOP\r\na2 NOOP\r\n").c_str());

	std::string chunks;
	LogParser bparser(false, Direction::in, [&chunks](const LogPiece &p) {
		chunks.append(p.data, p.size);
	});
	const std::string b = "<<<\n1700000000.000001 a1 NOOP\r\n>>>\n";
	assert_true(bparser.feed(b.data(), b.size()));
	bparser.release_held();
	assert_string_equal(escape(chunks).c_str(), escape("a1 NOOP\r\n").c_str());
	assert_true(bparser.finish());
	assert_string_equal(escape(chunks).c_str(), escape("a1 NOOP\r\n").c_str());
}

void test_stamp_syntax(void **)
{
	struct timeval tv;
	assert_int_equal(parse_stamp("1700000000.000005 x", 19, tv), 18);
	assert_int_equal(tv.tv_sec, 1700000000);
	assert_int_equal(tv.tv_usec, 5);
	assert_int_equal(parse_stamp("1700000000.00005 x", 18, tv), 0);
	assert_int_equal(parse_stamp("1700000000.000005", 17, tv), 0);
	assert_int_equal(parse_stamp(".000005 ", 8, tv), 0);
}

} // namespace

int main()
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_every_layout_round_trips, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_truncated_logs_give_a_prefix_and_the_marker, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test(test_bad_input_named_by_offset),
		cmocka_unit_test(test_marker_like_data_in_split_is_data),
		cmocka_unit_test(test_release_held_at_a_followed_end),
		cmocka_unit_test(test_stamp_syntax),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
