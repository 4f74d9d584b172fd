// Formatter: split and transcript layouts, timestamps, boundaries, and
// lossless reconstruction of the logged bytes.
#include "test-common.hh"

#include "core/format.hh"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

using namespace rawlog_ext;

namespace {

const struct timeval t1 = { 1700000000, 5 };
const struct timeval t2 = { 1700000001, 250000 };
const struct timeval t3 = { 1700000002, 999999 };
const std::string s1 = "1700000000.000005 ";
const std::string s2 = "1700000001.250000 ";
const std::string s3 = "1700000002.999999 ";

struct Chunk {
	Direction direction;
	std::string data;
	struct timeval now;
};

std::string format_chunks(Formatter formatter, const std::vector<Chunk> &chunks)
{
	std::string out;
	for (const Chunk &c : chunks) {
		formatter.format(out, c.direction,
				 (const unsigned char *)c.data.data(),
				 c.data.size(), c.now);
	}
	return out;
}

Timestamps stamps_if(bool timestamps)
{
	return timestamps ? Timestamps::lines : Timestamps::none;
}

std::string split_as(Timestamps timestamps, const std::vector<std::string> &parts,
		     bool boundaries, const std::vector<struct timeval> &times)
{
	std::vector<Chunk> chunks;
	for (size_t i = 0; i < parts.size(); i++)
		chunks.push_back({ Direction::in, parts[i], times[i % times.size()] });
	return format_chunks(Formatter(false, timestamps, boundaries), chunks);
}

std::string split(const std::vector<std::string> &parts,
		  bool timestamps, bool boundaries,
		  const std::vector<struct timeval> &times = { t1, t2, t3 })
{
	return split_as(stamps_if(timestamps), parts, boundaries, times);
}

// rawlog_ext_timestamps=chunks, chunk i stamped with times[i % 3].
std::string split_chunks(const std::vector<std::string> &parts,
			 bool boundaries = false,
			 const std::vector<struct timeval> &times = { t1, t2, t3 })
{
	return split_as(Timestamps::chunks, parts, boundaries, times);
}

// The documented way to read a chunks-stamped split file: remove a
// "<digits>.<6 digits> " wherever a line starts with one.
std::string unsplit_chunks(const std::string &log)
{
	std::string data;
	size_t pos = 0;
	while (pos < log.size()) {
		size_t i = pos;
		while (i < log.size() && isdigit((unsigned char)log[i]))
			i++;
		if (i > pos && i + 8 <= log.size() && log[i] == '.' &&
		    std::all_of(&log[i + 1], &log[i + 7],
				[](char c) { return isdigit((unsigned char)c); }) &&
		    log[i + 7] == ' ')
			pos = i + 8;
		size_t lf = log.find('\n', pos);
		size_t end = lf == std::string::npos ? log.size() : lf + 1;
		data.append(log, pos, end - pos);
		pos = end;
	}
	return data;
}

// Undoes split formatting with one known stamp: a stamp must start the
// file and follow every '\n' that has more data behind it.
std::string unsplit(const std::string &log, const std::string &stamp)
{
	std::string data;
	size_t pos = 0;
	while (pos < log.size()) {
		if (log.compare(pos, stamp.size(), stamp) != 0)
			fail_msg("no stamp at offset %zu of \"%s\"", pos,
				 escape(log).c_str());
		pos += stamp.size();
		size_t lf = log.find('\n', pos);
		size_t end = lf == std::string::npos ? log.size() : lf + 1;
		data.append(log, pos, end - pos);
		pos = end;
	}
	return data;
}

// Undoes transcript formatting: returns the in and out byte streams.
// Every record starts with stamp, or (stamp_optional) some do.
void untranscript(const std::string &log, const std::string &stamp,
		  std::string &in_r, std::string &out_r,
		  bool stamp_optional = false)
{
	in_r.clear();
	out_r.clear();
	size_t pos = 0;
	while (pos < log.size()) {
		if (log.compare(pos, stamp.size(), stamp) == 0)
			pos += stamp.size();
		else if (!stamp_optional)
			fail_msg("no stamp at offset %zu", pos);
		if (pos + 3 > log.size())
			fail_msg("bad record at offset %zu", pos);
		char dir = log[pos], kind = log[pos + 1];
		if ((dir != 'I' && dir != 'O') || (kind != ':' && kind != '+') ||
		    log[pos + 2] != ' ')
			fail_msg("bad record header at offset %zu", pos);
		pos += 3;
		size_t lf = log.find('\n', pos);
		if (lf == std::string::npos)
			fail_msg("record at offset %zu does not end in \\n", pos);
		// "+": the '\n' was added by the log and is not data.
		size_t end = kind == ':' ? lf + 1 : lf;
		(dir == 'I' ? in_r : out_r).append(log, pos, end - pos);
		pos = lf + 1;
	}
}

// Dovecot's rawlog -t/-b rule, written independently as an oracle: stamp
// before the first byte of the file and after every '\n' that is not the
// last byte of its chunk, and before a chunk's first byte if the previous
// chunk ended in '\n'.
std::string rawlog_model(const std::vector<std::string> &parts, bool timestamps,
			 bool boundaries, const std::string &stamp)
{
	std::string out;
	bool prev_lf = true;
	for (const std::string &part : parts) {
		if (part.empty())
			continue;
		if (boundaries)
			out += "<<<\n";
		if (timestamps && prev_lf)
			out += stamp;
		for (size_t i = 0; i < part.size(); i++) {
			out += part[i];
			if (timestamps && part[i] == '\n' && i + 1 != part.size())
				out += stamp;
		}
		prev_lf = part.back() == '\n';
		if (boundaries)
			out += ">>>\n";
	}
	return out;
}

// The per-chunk rule, written independently: the stamp of chunk i goes
// before its first line start (a byte that starts the file or follows a
// '\n'), if it has one, and before every other line start in it that is
// a digit -- with boundaries also before a digit that continues a line
// right after "<<<\n".
std::string chunk_stamp_model(const std::vector<std::string> &parts,
			      bool boundaries,
			      const std::vector<std::string> &stamps)
{
	std::string out;
	bool prev_lf = true;
	for (size_t c = 0; c < parts.size(); c++) {
		const std::string &part = parts[c];
		if (part.empty())
			continue;
		if (boundaries)
			out += "<<<\n";
		bool stamped = false;
		for (size_t i = 0; i < part.size(); i++) {
			bool line_start = i == 0 ? prev_lf : part[i - 1] == '\n';
			bool digit = part[i] >= '0' && part[i] <= '9';
			if (i == 0 && !prev_lf && boundaries && digit)
				out += stamps[c % stamps.size()];
			if (line_start && (!stamped || digit)) {
				out += stamps[c % stamps.size()];
				stamped = true;
			}
			out += part[i];
		}
		prev_lf = part.back() == '\n';
		if (boundaries)
			out += ">>>\n";
	}
	return out;
}

// Test inputs for the reconstruction tests.
std::vector<std::string> sample_inputs()
{
	std::string all_bytes;
	for (int i = 0; i < 256; i++)
		all_bytes += (char)i;
	return {
		"a",
		"\n",
		"\n\n\n",
		"\r",
		"\r\n",
		"line\r\nline2\n\nlast",
		"no newline at all",
		std::string("\0\n\0", 3),
		all_bytes,
		all_bytes + all_bytes,
		"\n" + all_bytes + "\r\n\n",
		// Data that looks like stamps, at line starts and elsewhere.
		"1700000000.000005 forged\r\n2 apples\r\nx 1.000000 \r\n9",
		"a\n0\n\n5.123456 b\n",
	};
}

// Splits data as the three feeding patterns: whole, byte by byte, and
// irregular sizes that cut lines at varying points.
std::vector<std::vector<std::string>> chunkings(const std::string &data)
{
	std::vector<std::string> whole = { data }, bytes, irregular;
	for (char c : data)
		bytes.push_back(std::string(1, c));
	static const size_t sizes[] = { 3, 1, 7, 2, 13, 5 };
	for (size_t pos = 0, i = 0; pos < data.size(); i++) {
		size_t n = sizes[i % 6];
		irregular.push_back(data.substr(pos, n));
		pos += n;
	}
	return { whole, bytes, irregular };
}

void test_format_timestamp_values(void **)
{
	static const struct {
		struct timeval tv;
		const char *expected;
	} cases[] = {
		{ { 0, 0 }, "0.000000 " },
		{ { 1700000000, 5 }, "1700000000.000005 " },
		{ { 1700000000, 999999 }, "1700000000.999999 " },
		{ { 1, 100000 }, "1.100000 " },
		{ { 9, 10 }, "9.000010 " },
		{ { 9223372036854775807LL, 999999 }, "9223372036854775807.999999 " },
	};
	for (const auto &c : cases) {
		char buf[32];
		memset(buf, 'X', sizeof(buf));
		size_t len = format_timestamp(buf, c.tv);
		if (len != strlen(c.expected) || memcmp(buf, c.expected, len) != 0)
			fail_msg("format_timestamp: \"%.*s\", expected \"%s\"",
				 (int)len, buf, c.expected);
	}
}

void test_split_without_timestamps_is_identity(void **)
{
	for (const std::string &data : sample_inputs()) {
		for (const auto &parts : chunkings(data))
			assert_bytes_equal(split(parts, false, false), data);
	}
}

void test_split_stamps_at_file_start_and_line_starts(void **)
{
	assert_bytes_equal(split({ "a\nb" }, true, false), s1 + "a\n" + s1 + "b");
	assert_bytes_equal(split({ "a\n\nb\n" }, true, false),
			   s1 + "a\n" + s1 + "\n" + s1 + "b\n");
	assert_bytes_equal(split({ "\n" }, true, false), s1 + "\n");
}

void test_split_stamp_after_chunk_final_lf_waits_for_next_chunk(void **)
{
	// The line that "c\n" ends starts in chunk 3: it gets chunk 3's time.
	assert_bytes_equal(split({ "a\nb", "c\n", "d" }, true, false),
			   s1 + "a\n" + s1 + "bc\n" + s3 + "d");
	assert_bytes_equal(split({ "a\n" }, true, false), s1 + "a\n");
	assert_bytes_equal(split({ "a\n", "\n", "\n" }, true, false),
			   s1 + "a\n" + s2 + "\n" + s3 + "\n");
}

void test_split_partial_line_across_chunks_has_no_inner_stamp(void **)
{
	assert_bytes_equal(split({ "ab", "cd", "e\n" }, true, false),
			   s1 + "abcde\n");
}

void test_split_boundaries_around_each_chunk(void **)
{
	// Like rawlog -b: the closing marker follows even a partial line.
	assert_bytes_equal(split({ "abc", "d\n" }, false, true),
			   "<<<\nabc>>>\n<<<\nd\n>>>\n");
	assert_bytes_equal(split({ "abc", "d\n", "x" }, true, true),
			   "<<<\n" + s1 + "abc>>>\n<<<\nd\n>>>\n<<<\n" + s3 + "x>>>\n");
}

void test_split_matches_dovecot_rawlog_model(void **)
{
	for (bool boundaries : { false, true }) {
		for (bool timestamps : { false, true }) {
			for (const std::string &data : sample_inputs()) {
				for (const auto &parts : chunkings(data)) {
					assert_bytes_equal(
						split(parts, timestamps, boundaries, { t1 }),
						rawlog_model(parts, timestamps, boundaries, s1));
				}
			}
		}
	}
}

void test_split_chunk_stamps_examples(void **)
{
	// One stamp per chunk, where its first line starts.
	assert_bytes_equal(split_chunks({ "a\nb\nc\n" }), s1 + "a\nb\nc\n");
	// Chunk 2 continues a line: its stamp goes after that line's end.
	assert_bytes_equal(split_chunks({ "a\nb", "c\nd\ne", "f\n" }),
			   s1 + "a\nb" + "c\n" + s2 + "d\ne" + "f\n");
	// Lines that start with a digit always get one: they could pass
	// for a stamp.
	assert_bytes_equal(split_chunks({ "a\n1\nb\n2" }),
			   s1 + "a\n" + s1 + "1\nb\n" + s1 + "2");
	assert_bytes_equal(split_chunks({ "x", "9\n", "\n7" }),
			   s1 + "x9\n" + s3 + "\n" + s3 + "7");
	// With boundaries, a line continued after "<<<\n" is a file line.
	assert_bytes_equal(split_chunks({ "a", "1.000000 x\nb" }, true),
			   "<<<\n" + s1 + "a>>>\n<<<\n" + s2 + "1.000000 x\n" + s2 +
			   "b>>>\n");
	assert_bytes_equal(split_chunks({ "a", "b\n" }, true),
			   "<<<\n" + s1 + "a>>>\n<<<\nb\n>>>\n");
	// A chunk that starts no line gets none.
	assert_bytes_equal(split_chunks({ "ab", "cd", "e\n", "f" }),
			   s1 + "abcde\n" + s1 + "f");
	assert_bytes_equal(split_chunks({ "a\n", "\n", "\n" }),
			   s1 + "a\n" + s2 + "\n" + s3 + "\n");
	assert_bytes_equal(split_chunks({ "abc", "d\n", "x\ny" }, true),
			   "<<<\n" + s1 + "abc>>>\n<<<\nd\n>>>\n<<<\n" + s3 +
			   "x\ny>>>\n");
}

void test_split_chunk_stamps_match_model(void **)
{
	for (bool boundaries : { false, true }) {
		for (const std::string &data : sample_inputs()) {
			for (const auto &parts : chunkings(data)) {
				assert_bytes_equal(
					split_chunks(parts, boundaries),
					chunk_stamp_model(parts, boundaries,
							  { s1, s2, s3 }));
			}
		}
	}
}

void test_transcript_chunk_stamps_first_record_only(void **)
{
	std::vector<Chunk> chunks = {
		{ Direction::in, "a\nbc", t1 },
		{ Direction::out, "d\ne\n", t2 },
		{ Direction::in, "f\n", t3 },
	};
	assert_bytes_equal(format_chunks(Formatter(true, Timestamps::chunks, false), chunks),
			   s1 + "I: a\nI+ bc\n" + s2 + "O: d\nO: e\n" +
			   s3 + "I: f\n");
}

void test_empty_chunk_writes_nothing(void **)
{
	for (bool transcript : { false, true }) {
		Formatter formatter(transcript, Timestamps::lines, true);
		std::string out;
		formatter.format(out, Direction::in, (const unsigned char *)"", 0, t1);
		assert_bytes_equal(out, "");
	}
	// Nor does it end a line: "b" continues the line "a" started.
	assert_bytes_equal(split({ "a", "", "b" }, true, false), s1 + "ab");
}

void test_transcript_records_whole_and_partial_lines(void **)
{
	std::vector<Chunk> chunks = {
		{ Direction::in, "a\nbc", t1 },
		{ Direction::out, "d\n", t1 },
		{ Direction::in, "e\n", t1 },
		{ Direction::out, "\n\nx", t1 },
	};
	assert_bytes_equal(format_chunks(Formatter(true, Timestamps::none, false), chunks),
			   "I: a\nI+ bc\nO: d\nI: e\nO: \nO: \nO+ x\n");
}

void test_transcript_stamps_every_record(void **)
{
	std::vector<Chunk> chunks = {
		{ Direction::in, "a\nbc", t1 },
		{ Direction::out, "d\n", t2 },
		{ Direction::in, "e\n", t3 },
	};
	assert_bytes_equal(format_chunks(Formatter(true, Timestamps::lines, false), chunks),
			   s1 + "I: a\n" + s1 + "I+ bc\n" + s2 + "O: d\n" +
			   s3 + "I: e\n");
}

void test_transcript_boundaries_around_each_chunk(void **)
{
	std::vector<Chunk> chunks = {
		{ Direction::in, "a\nb", t1 },
		{ Direction::out, "c\n", t1 },
	};
	assert_bytes_equal(format_chunks(Formatter(true, Timestamps::none, true), chunks),
			   "<<<\nI: a\nI+ b\n>>>\n<<<\nO: c\n>>>\n");
}

void test_split_reconstructs_original_bytes(void **)
{
	for (bool timestamps : { false, true }) {
		const std::string stamp = timestamps ? s1 : "";
		for (const std::string &data : sample_inputs()) {
			for (const auto &parts : chunkings(data)) {
				std::string log = split(parts, timestamps, false, { t1 });
				assert_bytes_equal(unsplit(log, stamp), data);
			}
		}
	}
	for (const std::string &data : sample_inputs()) {
		for (const auto &parts : chunkings(data))
			assert_bytes_equal(unsplit_chunks(split_chunks(parts)), data);
	}
}

void test_transcript_reconstructs_both_directions(void **)
{
	for (Timestamps timestamps : { Timestamps::none, Timestamps::lines,
				       Timestamps::chunks }) {
		const std::string stamp = timestamps == Timestamps::none ? "" : s1;
		for (const std::string &data : sample_inputs()) {
			// Out is the input reversed, so the streams differ.
			std::string rdata(data.rbegin(), data.rend());
			for (const auto &parts : chunkings(data)) {
				// Interleave: each in chunk is followed by the
				// same-sized out chunk.
				std::vector<Chunk> chunks;
				size_t pos = 0;
				for (const std::string &part : parts) {
					chunks.push_back({ Direction::in, part, t1 });
					chunks.push_back({ Direction::out,
							   rdata.substr(pos, part.size()), t1 });
					pos += part.size();
				}
				std::string log = format_chunks(
					Formatter(true, timestamps, false), chunks);
				std::string in, out;
				untranscript(log, stamp, in, out,
					     timestamps == Timestamps::chunks);
				assert_bytes_equal(in, data);
				assert_bytes_equal(out, rdata);
			}
		}
	}
}

} // namespace

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_timestamp_values),
		cmocka_unit_test(test_split_without_timestamps_is_identity),
		cmocka_unit_test(test_split_stamps_at_file_start_and_line_starts),
		cmocka_unit_test(test_split_stamp_after_chunk_final_lf_waits_for_next_chunk),
		cmocka_unit_test(test_split_partial_line_across_chunks_has_no_inner_stamp),
		cmocka_unit_test(test_split_boundaries_around_each_chunk),
		cmocka_unit_test(test_split_matches_dovecot_rawlog_model),
		cmocka_unit_test(test_split_chunk_stamps_examples),
		cmocka_unit_test(test_split_chunk_stamps_match_model),
		cmocka_unit_test(test_transcript_chunk_stamps_first_record_only),
		cmocka_unit_test(test_empty_chunk_writes_nothing),
		cmocka_unit_test(test_transcript_records_whole_and_partial_lines),
		cmocka_unit_test(test_transcript_stamps_every_record),
		cmocka_unit_test(test_transcript_boundaries_around_each_chunk),
		cmocka_unit_test(test_split_reconstructs_original_bytes),
		cmocka_unit_test(test_transcript_reconstructs_both_directions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
