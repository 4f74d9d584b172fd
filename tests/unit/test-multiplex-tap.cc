// MultiplexTap: the backend leg's input with x-multiplex framing taken
// out (channel 0 only), plain input unchanged, unknown framing refused.
#include "dovecot/compat.hh"
DOVECOT_EXTERN_C_BEGIN
#include "test-common.h"
DOVECOT_EXTERN_C_END

#include "test-common.hh"

#include "login/multiplex-tap.hh"

using namespace rawlog_ext;

namespace {

// What reaches the leg's log, per direction.
struct Recorder : SessionTap {
	std::string *in, *out;
	Recorder(std::string *in_r, std::string *out_r) : in(in_r), out(out_r) {}
	void data(Direction direction, const unsigned char *data, size_t size,
		  const struct timeval &) noexcept override
	{
		(direction == Direction::in ? in : out)->append(
			(const char *)data, size);
	}
};

const std::string header("\xff\xff\xff\xff\xff\x00\x02\x03\xfe", 9);
std::string channel(char cid) { return std::string("\x03\xfe\x00", 3) + cid; }
const std::string escaped_prefix("\x03\xfe\x01", 3);

// Feeds input to a tap in pieces of step bytes (0: all at once).
std::string decode(const std::string &input, size_t step, bool *stopped_r,
		   bool *multiplexing_r = nullptr)
{
	std::string in, out;
	struct event *event = event_create(nullptr);
	auto *leg = new SessionLog(nullptr, event,
				   std::make_unique<Recorder>(&in, &out));
	MultiplexTap tap(leg);
	struct timeval now = {};
	if (step == 0)
		step = input.size();
	for (size_t i = 0; i < input.size(); i += step) {
		std::string piece = input.substr(i, step);
		tap.data(Direction::in, (const unsigned char *)piece.data(),
			 piece.size(), now);
	}
	*stopped_r = tap.stopped();
	if (multiplexing_r != nullptr)
		*multiplexing_r = tap.multiplexing();
	event_unref(&event);
	return in;
}

void assert_decodes(const std::string &input, const std::string &expected,
		    bool expect_multiplexing)
{
	for (size_t step : { 0, 1, 2, 3, 5, 7 }) {
		bool stopped, multiplexing;
		std::string got = decode(input, step, &stopped, &multiplexing);
		assert_false(stopped);
		assert_true(multiplexing == expect_multiplexing);
		assert_true(got == expected);
	}
}

void test_plain_input_passes_unchanged(void **)
{
	std::string input = "* OK ready\r\n"
		"x * MULTIPLEX 0\r\n"		// not at a line's start
		"* MULTIPLEX 1\r\n" + channel(1) + " binary\r\n";
	assert_decodes(input, input, false);
}

void test_multiplex_stream_keeps_channel_0_only(void **)
{
	std::string line = "* MULTIPLEX 0\r\n";
	std::string input = "* OK ready\r\n" + line + header +
		"I OK Trusted ID completed.\r\n" +
		channel(1) + "compress\tdeflate\tz\n" + channel(0) +
		"L OK Logged in\r\n" + escaped_prefix + "\xfe lone \x03x\r\n";
	std::string expected = "* OK ready\r\n" + line +
		"I OK Trusted ID completed.\r\n" "L OK Logged in\r\n"
		"\x03\xfe lone \x03x\r\n";
	assert_decodes(input, expected, true);
}

void test_line_without_header_is_plain(void **)
{
	std::string input = "* MULTIPLEX 0\r\n\xff\xff" "abc\r\n* OK\r\n";
	assert_decodes(input, input, false);
}

// Dovecot demultiplexes as soon as it has read the line; the header may
// come in a later read (the caller asks multiplexing() in between).
void test_header_in_a_later_segment(void **)
{
	std::string in, out;
	struct event *event = event_create(nullptr);
	auto *leg = new SessionLog(nullptr, event,
				   std::make_unique<Recorder>(&in, &out));
	MultiplexTap tap(leg);
	struct timeval now = {};
	std::string first = "* OK ready\r\n* MULTIPLEX 0\r\n";
	tap.data(Direction::in, (const unsigned char *)first.data(),
		 first.size(), now);
	assert_true(tap.multiplexing());
	std::string second = header.substr(0, 4);
	tap.data(Direction::in, (const unsigned char *)second.data(),
		 second.size(), now);
	assert_true(tap.multiplexing());
	std::string third = header.substr(4) + "a OK\r\n" + channel(1) + "x\n";
	tap.data(Direction::in, (const unsigned char *)third.data(),
		 third.size(), now);
	assert_true(tap.multiplexing() && !tap.stopped());
	assert_true(in == first + "a OK\r\n");
	event_unref(&event);
}

void test_unknown_switch_stops(void **)
{
	std::string input = "* MULTIPLEX 0\r\n" + header + "a OK\r\n" +
		std::string("\x03\xfe\x07", 3) + "garbage\r\n";
	for (size_t step : { 0, 1 }) {
		bool stopped;
		std::string got = decode(input, step, &stopped);
		assert_true(stopped);
		assert_true(got == "* MULTIPLEX 0\r\na OK\r\n");
	}
}

void test_output_passes_unchanged(void **)
{
	std::string in, out;
	struct event *event = event_create(nullptr);
	auto *leg = new SessionLog(nullptr, event,
				   std::make_unique<Recorder>(&in, &out));
	MultiplexTap tap(leg);
	struct timeval now = {};
	std::string data = "* MULTIPLEX 0\r\n" + header + channel(1);
	tap.data(Direction::out, (const unsigned char *)data.data(),
		 data.size(), now);
	assert_true(out == data && in.empty());
	event_unref(&event);
}

} // namespace

int main(void)
{
	lib_init();
	struct ioloop *ioloop = io_loop_create();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_input_passes_unchanged),
		cmocka_unit_test(test_multiplex_stream_keeps_channel_0_only),
		cmocka_unit_test(test_line_without_header_is_plain),
		cmocka_unit_test(test_header_in_a_later_segment),
		cmocka_unit_test(test_unknown_switch_stops),
		cmocka_unit_test(test_output_passes_unchanged),
	};
	int ret = cmocka_run_group_tests(tests, NULL, NULL);
	io_loop_destroy(&ioloop);
	lib_deinit();
	return ret;
}
