// SMTP follower: reply lines, the end of DATA fed in every cut, BDAT
// parameters as lib-smtp reads them, replies matched to commands.
#include "test-common.hh"

#include "core/smtp-follow.hh"

#include <string>

using namespace rawlog_ext;

namespace {

void test_reply_lines(void **)
{
	SmtpReplyLine r = smtp_reply_line("250-PIPELINING\r\n");
	assert_int_equal(r.code, 250);
	assert_true(r.more);
	r = smtp_reply_line("250 OK\r\n");
	assert_int_equal(r.code, 250);
	assert_false(r.more);
	r = smtp_reply_line("354");
	assert_int_equal(r.code, 354);
	assert_false(r.more);
	assert_int_equal(smtp_reply_line("25").code, 0);
	assert_int_equal(smtp_reply_line("2x0 no\r\n").code, 0);
	assert_int_equal(smtp_reply_line("+OK\r\n").code, 0);
}

// The data, where it ends (npos: it does not), fed whole, in two pieces
// at every offset and byte by byte.
void check_data_end(const std::string &data, size_t expected)
{
	for (size_t cut = 0; cut <= data.size(); cut++) {
		for (int bytes = 0; bytes < 2; bytes++) {
			SmtpDataEnd end;
			size_t pos = 0;
			bool ended = false;
			while (pos < data.size() && !ended) {
				size_t piece = bytes ? 1 :
					pos < cut ? cut - pos : data.size() - pos;
				size_t n = end.scan((const unsigned char *)
						    data.data() + pos, piece,
						    ended);
				assert_true(n <= piece);
				assert_true(ended || n == piece);
				pos += n;
			}
			if (expected == std::string::npos) {
				assert_false(ended);
			} else {
				if (!ended || pos != expected)
					fail_msg("\"%s\": ended %d at %zu, expected %zu",
						 escape(data).c_str(), ended, pos,
						 expected);
			}
		}
	}
}

void test_data_end(void **)
{
	check_data_end(".\r\n", 3);
	check_data_end(".\n", 2);
	check_data_end("a\r\n.\r\nMAIL", 6);
	check_data_end("a\n.\nQUIT\r\n", 4);
	check_data_end("..\r\n.x\r\n. \r\n.\r\r\n.\r\n", 19);
	check_data_end("x.\r\n\r\n.\r\n", 9);
	check_data_end("a\r\n..\r\n", std::string::npos);
	check_data_end(".\rx\r\n", std::string::npos);
	check_data_end("", std::string::npos);
}

// The end of the data by the definition, one byte at a time: after a LF
// (or at the start), ".\n" or ".\r\n". npos: not there.
size_t data_end_reference(const std::string &data)
{
	for (size_t i = 0; i < data.size(); i++) {
		if (data[i] != '.' || (i > 0 && data[i - 1] != '\n'))
			continue;
		if (i + 1 < data.size() && data[i + 1] == '\n')
			return i + 2;
		if (i + 2 < data.size() && data[i + 1] == '\r' &&
		    data[i + 2] == '\n')
			return i + 3;
	}
	return std::string::npos;
}

// Long random data (the scan looks at 16 bytes at a time) in random
// pieces: the same end as the reference.
void test_data_end_random(void **)
{
	uint32_t seed = 12345;
	auto next = [&seed]() {
		seed = seed * 1103515245u + 12345u;
		return seed >> 16;
	};
	const char alphabet[] = { '.', '\r', '\n', 'a', 'a', 'a', '.', '\n' };
	for (int round = 0; round < 20000; round++) {
		std::string data;
		size_t len = next() % 300;
		for (size_t i = 0; i < len; i++)
			data += alphabet[next() % sizeof(alphabet)];
		size_t expected = data_end_reference(data);
		SmtpDataEnd end;
		size_t pos = 0;
		bool ended = false;
		while (pos < data.size() && !ended) {
			size_t piece = 1 + next() % 40;
			if (piece > data.size() - pos)
				piece = data.size() - pos;
			size_t n = end.scan((const unsigned char *)data.data() +
					    pos, piece, ended);
			assert_true(n <= piece);
			assert_true(ended || n == piece);
			pos += n;
		}
		if (ended != (expected != std::string::npos) ||
		    (ended && pos != expected))
			fail_msg("\"%s\": ended %d at %zu, expected %zu",
				 escape(data).c_str(), ended, pos, expected);
	}
}

void test_bdat(void **)
{
	uint64_t size = 99;
	bool last = true;
	assert_true(smtp_bdat_chunk("5", size, last));
	assert_int_equal(size, 5);
	assert_false(last);
	assert_true(smtp_bdat_chunk("0 LAST", size, last));
	assert_int_equal(size, 0);
	assert_true(last);
	assert_true(smtp_bdat_chunk("12 last \t", size, last));
	assert_int_equal(size, 12);
	assert_true(last);
	// Refused by cmd_bdat(), but the chunk is read all the same.
	assert_true(smtp_bdat_chunk("7 LAST x", size, last));
	assert_int_equal(size, 7);
	assert_false(last);
	assert_true(smtp_bdat_chunk("7 FIRST", size, last));
	assert_false(last);
	// No size, so no chunk.
	assert_false(smtp_bdat_chunk("", size, last));
	assert_false(smtp_bdat_chunk(" 5", size, last));	// "BDAT  5"
	assert_false(smtp_bdat_chunk("x", size, last));
	assert_false(smtp_bdat_chunk("5x LAST", size, last));
	assert_false(smtp_bdat_chunk("-5", size, last));
	assert_false(smtp_bdat_chunk("1234567890123456789", size, last));
	assert_true(smtp_bdat_chunk("123456789012345678", size, last));
	assert_true(size == 123456789012345678ULL);
}

// Replies matched to pipelined commands: DATA's 354 and final reply,
// LMTP's final reply per recipient, a refused DATA.
void test_replies(void **)
{
	using Replies = SmtpReplies<int>;
	Replies r;
	unsigned int index;
	assert_true(r.reply(250, 1, index) == Replies::Answer::none);
	r.push(Replies::Kind::single, 1);	// MAIL
	r.push(Replies::Kind::data, 2);		// DATA
	r.push(Replies::Kind::single, 3);	// QUIT, after the data
	assert_int_equal(*r.front(), 1);
	assert_true(r.reply(250, 1, index) == Replies::Answer::last);
	assert_int_equal(*r.front(), 2);
	assert_true(r.reply(354, 2, index) == Replies::Answer::go_ahead);
	assert_int_equal(*r.front(), 2);
	// Two recipients: two final replies.
	assert_true(r.reply(250, 2, index) == Replies::Answer::partial);
	assert_int_equal(index, 0);
	assert_true(r.reply(452, 2, index) == Replies::Answer::last);
	assert_int_equal(index, 1);
	assert_int_equal(*r.front(), 3);
	assert_true(r.reply(221, 1, index) == Replies::Answer::last);
	assert_true(r.empty());

	r.push(Replies::Kind::data, 4);
	r.push(Replies::Kind::single, 5);
	assert_true(r.reply(554, 1, index) == Replies::Answer::refused);
	assert_int_equal(*r.front(), 5);
	r.clear();

	r.push(Replies::Kind::last_chunk, 6);	// BDAT LAST
	assert_true(r.reply(250, 3, index) == Replies::Answer::partial);
	assert_true(r.reply(250, 3, index) == Replies::Answer::partial);
	assert_true(r.reply(250, 3, index) == Replies::Answer::last);
	assert_int_equal(index, 2);
	assert_true(r.front() == nullptr);
}

} // namespace

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_lines),
		cmocka_unit_test(test_data_end),
		cmocka_unit_test(test_data_end_random),
		cmocka_unit_test(test_bdat),
		cmocka_unit_test(test_replies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
