// The logging istream/ostream filters on real Dovecot streams: data passes
// unchanged and the log files hold exactly the bytes that passed.
#include "dovecot/compat.hh"
DOVECOT_EXTERN_C_BEGIN
#include "buffer.h"
#include "test-common.h"
DOVECOT_EXTERN_C_END

#include "test-common.hh"

#include "dovecot/session-log.hh"

#include <cstdio>

using namespace rawlog_ext;

namespace {

const std::string base = log_base_name(fixed_parts());

// Timestamps off, so the files must equal the data byte for byte.
Settings plain_settings(const std::string &dir)
{
	Settings set;
	set.dir = dir;
	set.timestamps = Timestamps::none;
	return set;
}

SessionLog *open_log(const Settings &set)
{
	std::unique_ptr<Sink> sink;
	std::string message;
	if (Sink::open(set, fixed_parts(), sink, message) != OpenResult::opened)
		fail_msg("Sink::open failed: %s", message.c_str());
	struct event *event = log_event_create(nullptr);
	SessionLog *log = new SessionLog(std::move(sink), event);
	event_unref(&event);
	return log;
}

std::string test_data()
{
	std::string data = "a1 LOGIN user pass\r\n\r\n\n\r";
	for (int i = 0; i < 40; i++) {
		for (int c = 0; c < 256; c++)
			data += (char)(c ^ i);
	}
	return data + "a2 LOGOUT\r\n";
}

std::string buffer_string(const buffer_t *buf)
{
	return std::string((const char *)buf->data, buf->used);
}

struct ReadPattern {
	size_t max_buffer_size;	// of the test istream
	size_t size_step;	// bytes made available at a time, 0 = all
	size_t consume;		// bytes skipped after each read, 0 = all
};

// Reads input to EOF the way the pattern says; returns what was read.
std::string read_all(struct istream *input, const ReadPattern &pattern)
{
	std::string got;
	uoff_t available = 0;
	for (;;) {
		ssize_t ret = i_stream_read(input);
		if (ret == 0) {
			if (pattern.size_step == 0)
				fail_msg("read returned 0 with all data available");
			available += pattern.size_step;
			test_istream_set_size(input, available);
			continue;
		}
		// New data, a full buffer (-2) or EOF (-1) with unread data
		// still buffered: consume some of it.
		size_t size;
		const unsigned char *data = i_stream_get_data(input, &size);
		if (ret == -1 && size == 0)
			break;
		if (pattern.consume != 0 && size > pattern.consume)
			size = pattern.consume;
		got.append((const char *)data, size);
		i_stream_skip(input, size);
	}
	if (input->stream_errno != 0 || !input->eof)
		fail_msg("read failed: %s", i_stream_get_error(input));
	return got;
}

void test_istream_logs_exactly_the_bytes_read(void **state)
{
	static const ReadPattern patterns[] = {
		{ SIZE_MAX, 0, 0 },	// everything in one read
		{ SIZE_MAX, 1, 0 },	// one new byte per read
		{ SIZE_MAX, 0, 3 },	// reader leaves data in the buffer
		{ 7, 0, 0 },		// small parent buffer
		{ 64, 5, 3 },		// all of the above
		{ 16, 0, 5 },
	};
	const std::string data = test_data();
	unsigned int i = 0;
	for (const ReadPattern &pattern : patterns) {
		std::string dir = tmpdir(state).path("case" + std::to_string(i++));
		if (mkdir(dir.c_str(), 0700) < 0)
			fail_msg("mkdir(%s) failed", dir.c_str());
		SessionLog *log = open_log(plain_settings(dir));

		struct istream *parent = test_istream_create_data(data.data(), data.size());
		test_istream_set_max_buffer_size(parent, pattern.max_buffer_size);
		if (pattern.size_step != 0)
			test_istream_set_size(parent, 0);
		struct istream *input = istream_create_logging(parent, log);
		// The stream keeps the log alive from here on.
		SessionLog::unref(&log);

		std::string got = read_all(input, pattern);
		if (got != data)
			fail_msg("case %u: data changed in the filter", i);
		// The log (and so its held-back input) ends with the stream.
		i_stream_unref(&input);
		i_stream_unref(&parent);
		if (read_file(dir + "/" + base + ".in") != data)
			fail_msg("case %u: .in differs from the data read", i);
		assert_string_equal(read_file(dir + "/" + base + ".out").c_str(), "");
	}
}

void test_istream_stop_logging_stops_logging_later_reads(void **state)
{
	const TmpDir &tmp = tmpdir(state);
	const std::string data = test_data();
	const size_t half = data.size() / 2;
	SessionLog *log = open_log(plain_settings(tmp.path()));
	struct istream *parent = test_istream_create_data(data.data(), data.size());
	test_istream_set_size(parent, half);
	struct istream *input = istream_create_logging(parent, log);
	SessionLog::unref(&log);

	std::string got;
	while (i_stream_read(input) > 0) {
		size_t size;
		const unsigned char *p = i_stream_get_data(input, &size);
		got.append((const char *)p, size);
		i_stream_skip(input, size);
	}
	assert_int_equal(got.size(), half);

	istream_stop_logging(input);
	test_istream_set_size(parent, data.size());
	got += read_all(input, { SIZE_MAX, 0, 0 });
	assert_true(got == data);
	assert_true(read_file(tmp.path(base + ".in")) == data.substr(0, half));
	i_stream_unref(&input);
	i_stream_unref(&parent);
}

void test_istream_without_in_direction_only_passes_data(void **state)
{
	const TmpDir &tmp = tmpdir(state);
	const std::string data = test_data();
	Settings set = plain_settings(tmp.path());
	set.log_in = false;
	SessionLog *log = open_log(set);
	struct istream *parent = test_istream_create_data(data.data(), data.size());
	struct istream *input = istream_create_logging(parent, log);
	SessionLog::unref(&log);

	assert_true(read_all(input, { SIZE_MAX, 0, 3 }) == data);
	assert_true(list_dir(tmp.path()) == std::vector<std::string>{ base + ".out" });
	i_stream_unref(&input);
	i_stream_unref(&parent);
}

void test_ostream_logs_exactly_the_bytes_sent(void **state)
{
	const TmpDir &tmp = tmpdir(state);
	const std::string data = test_data();
	SessionLog *log = open_log(plain_settings(tmp.path()));
	buffer_t *buf = buffer_create_dynamic(default_pool, 256);
	struct ostream *parent = o_stream_create_buffer(buf);
	struct ostream *output = ostream_create_logging(parent, log);
	SessionLog::unref(&log);

	// Single sends and iovecs (with an empty one) of varying sizes.
	for (size_t pos = 0, n = 1; pos < data.size(); n = n * 2 % 1021) {
		size_t len = std::min(n, data.size() - pos);
		if (n % 3 == 0) {
			size_t first = len / 2;
			struct const_iovec iov[3] = {
				{ data.data() + pos, first },
				{ data.data() + pos + first, 0 },
				{ data.data() + pos + first, len - first },
			};
			o_stream_nsendv(output, iov, 3);
		} else {
			o_stream_nsend(output, data.data() + pos, len);
		}
		pos += len;
	}
	assert_int_equal(o_stream_finish(output), 1);
	assert_int_equal(output->offset, data.size());
	o_stream_unref(&output);
	o_stream_unref(&parent);

	assert_true(buffer_string(buf) == data);
	assert_true(read_file(tmp.path(base + ".out")) == data);
	assert_string_equal(read_file(tmp.path(base + ".in")).c_str(), "");
	buffer_free(&buf);
}

void test_ostream_logs_before_sending_and_never_twice(void **state)
{
	const TmpDir &tmp = tmpdir(state);
	const std::string data = test_data();
	SessionLog *log = open_log(plain_settings(tmp.path()));
	buffer_t *buf = buffer_create_dynamic(default_pool, 256);
	// Takes 10 bytes, buffers 8 more, then refuses.
	struct ostream *parent = test_ostream_create_nonblocking(buf, 8);
	test_ostream_set_max_output_size(parent, 10);
	struct ostream *output = ostream_create_logging(parent, log);
	SessionLog::unref(&log);

	// Logged as offered, before the parent could put it on the wire.
	ssize_t ret = o_stream_send(output, data.data(), 30);
	assert_int_equal(ret, 18);
	assert_true(read_file(tmp.path(base + ".out")) == data.substr(0, 30));
	// The refused bytes come again: not logged a second time.
	assert_int_equal(o_stream_send(output, data.data() + 18, 20), 0);
	assert_true(read_file(tmp.path(base + ".out")) == data.substr(0, 38));
	assert_int_equal(o_stream_send(output, data.data() + 18, 5), 0);
	assert_true(read_file(tmp.path(base + ".out")) == data.substr(0, 38));

	test_ostream_set_max_output_size(parent, SIZE_MAX);
	assert_int_equal(o_stream_flush(output), 1);
	ret = o_stream_send(output, data.data() + 18, data.size() - 18);
	assert_int_equal(ret, data.size() - 18);
	assert_int_equal(o_stream_finish(output), 1);
	o_stream_unref(&output);
	o_stream_unref(&parent);

	assert_true(buffer_string(buf) == data);
	assert_true(read_file(tmp.path(base + ".out")) == data);
	buffer_free(&buf);
}

// What the activity callback saw when it ran.
struct Activity {
	unsigned int calls = 0;
	size_t parent_bytes = SIZE_MAX;
	size_t logged_bytes = SIZE_MAX;
	const buffer_t *buf;
	std::string log_path;
};

void activity_callback(void *context)
{
	Activity *activity = static_cast<Activity *>(context);
	activity->calls++;
	activity->parent_bytes = activity->buf->used;
	activity->logged_bytes = read_file(activity->log_path).size();
}

void test_ostream_activity_runs_once_on_first_cork(void **state)
{
	const TmpDir &tmp = tmpdir(state);
	SessionLog *log = open_log(plain_settings(tmp.path()));
	buffer_t *buf = buffer_create_dynamic(default_pool, 256);
	Activity activity;
	activity.buf = buf;
	activity.log_path = tmp.path(base + ".out");
	struct ostream *parent = o_stream_create_buffer(buf);
	struct ostream *output = ostream_create_logging(parent, log);
	ostream_set_activity(output, activity_callback, &activity);
	SessionLog::unref(&log);
	assert_int_equal(activity.calls, 0);

	o_stream_cork(output);
	assert_int_equal(activity.calls, 1);
	assert_int_equal(activity.parent_bytes, 0);
	assert_int_equal(activity.logged_bytes, 0);
	o_stream_nsend_str(output, "abc");
	o_stream_uncork(output);
	o_stream_cork(output);
	o_stream_nsend_str(output, "def");
	o_stream_uncork(output);
	assert_int_equal(activity.calls, 1);

	assert_int_equal(o_stream_finish(output), 1);
	o_stream_unref(&output);
	o_stream_unref(&parent);
	assert_string_equal(buffer_string(buf).c_str(), "abcdef");
	assert_string_equal(read_file(activity.log_path).c_str(), "abcdef");
	buffer_free(&buf);
}

void test_ostream_activity_runs_once_before_first_byte_sent(void **state)
{
	const TmpDir &tmp = tmpdir(state);
	SessionLog *log = open_log(plain_settings(tmp.path()));
	buffer_t *buf = buffer_create_dynamic(default_pool, 256);
	Activity activity;
	activity.buf = buf;
	activity.log_path = tmp.path(base + ".out");
	struct ostream *parent = o_stream_create_buffer(buf);
	struct ostream *output = ostream_create_logging(parent, log);
	ostream_set_activity(output, activity_callback, &activity);
	SessionLog::unref(&log);

	// Nothing passes, so no activity yet.
	o_stream_nsend(output, "", 0);
	assert_int_equal(activity.calls, 0);
	o_stream_nsend_str(output, "x");
	assert_int_equal(activity.calls, 1);
	assert_int_equal(activity.parent_bytes, 0);
	assert_int_equal(activity.logged_bytes, 0);
	o_stream_nsend_str(output, "y");
	o_stream_cork(output);
	o_stream_uncork(output);
	assert_int_equal(activity.calls, 1);

	assert_int_equal(o_stream_finish(output), 1);
	o_stream_unref(&output);
	o_stream_unref(&parent);
	assert_string_equal(read_file(activity.log_path).c_str(), "xy");
	buffer_free(&buf);
}

void test_ostream_corked_output_is_logged_once_when_passed_on(void **state)
{
	const TmpDir &tmp = tmpdir(state);
	SessionLog *log = open_log(plain_settings(tmp.path()));
	buffer_t *buf = buffer_create_dynamic(default_pool, 256);
	struct ostream *parent = o_stream_create_buffer(buf);
	struct ostream *output = ostream_create_logging(parent, log);
	SessionLog::unref(&log);
	const std::string path = tmp.path(base + ".out");

	// Small pieces while corked are held: nothing logged, nothing passed.
	std::string sent;
	o_stream_cork(output);
	for (unsigned int i = 0; i < 100; i++) {
		std::string piece = "* " + std::to_string(i) + " FETCH (FLAGS ())\r\n";
		o_stream_nsend(output, piece.data(), piece.size());
		sent += piece;
	}
	assert_true(read_file(path).empty());
	assert_int_equal(buf->used, 0);
	assert_int_equal(o_stream_get_buffer_used_size(output), sent.size());
	// Uncork: logged first, then passed on, all of it.
	o_stream_uncork(output);
	assert_true(read_file(path) == sent);
	assert_true(buffer_string(buf) == sent);

	// More than the hold limit while corked: passed on as it fills, in
	// order; a flush passes on the rest.
	o_stream_cork(output);
	const std::string data = test_data();
	for (unsigned int round = 0; round < 40; round++) {
		o_stream_nsend(output, data.data(), data.size());
		sent += data;
	}
	assert_true(buf->used > 0 && buf->used < sent.size());
	assert_true(read_file(path) == std::string(buffer_string(buf)));
	assert_int_equal(o_stream_flush(output), 1);
	assert_true(read_file(path) == sent);
	assert_true(buffer_string(buf) == sent);
	o_stream_uncork(output);

	// Closing passes on what is held.
	o_stream_cork(output);
	o_stream_nsend_str(output, "last\r\n");
	sent += "last\r\n";
	// Since 2.4.1 o_stream_close() no longer counts as checking the
	// nsend: say so, without flushing what close is to pass on.
	o_stream_ignore_last_errors(output);
	o_stream_close(output);
	assert_true(read_file(path) == sent);
	assert_true(buffer_string(buf) == sent);
	o_stream_unref(&output);
	o_stream_unref(&parent);
	buffer_free(&buf);
}

void test_ostream_stop_logging_stops_logging_and_activity(void **state)
{
	const TmpDir &tmp = tmpdir(state);
	SessionLog *log = open_log(plain_settings(tmp.path()));
	buffer_t *buf = buffer_create_dynamic(default_pool, 256);
	Activity activity;
	activity.buf = buf;
	activity.log_path = tmp.path(base + ".out");
	struct ostream *parent = o_stream_create_buffer(buf);
	struct ostream *first = ostream_create_logging(parent, log);
	struct ostream *second = ostream_create_logging(parent, log);
	ostream_set_activity(second, activity_callback, &activity);
	SessionLog::unref(&log);

	o_stream_nsend_str(first, "abc");
	ostream_stop_logging(first);
	o_stream_nsend_str(first, "def");
	// Stopped before any output: its activity never runs.
	ostream_stop_logging(second);
	o_stream_cork(second);
	o_stream_nsend_str(second, "ghi");
	o_stream_uncork(second);
	assert_int_equal(activity.calls, 0);

	assert_int_equal(o_stream_finish(first), 1);
	assert_int_equal(o_stream_finish(second), 1);
	o_stream_unref(&first);
	o_stream_unref(&second);
	o_stream_unref(&parent);
	assert_string_equal(buffer_string(buf).c_str(), "abcdefghi");
	assert_string_equal(read_file(activity.log_path).c_str(), "abc");
	buffer_free(&buf);
}

std::vector<std::string> captured_log;

void capture_log(const struct failure_context *ctx, const char *format,
		 va_list args)
{
	char message[1024];
	vsnprintf(message, sizeof(message), format, args);
	captured_log.push_back(std::string(ctx->type == LOG_TYPE_WARNING ?
					   "Warning: " : "Error: ") + message);
}

void test_cap_warning_is_logged_once_and_data_still_passes(void **state)
{
	const TmpDir &tmp = tmpdir(state);
	const std::string data = test_data();
	Settings set = plain_settings(tmp.path());
	set.max_size = 100;
	SessionLog *log = open_log(set);
	struct istream *parent = test_istream_create_data(data.data(), data.size());
	test_istream_set_max_buffer_size(parent, 64);
	struct istream *input = istream_create_logging(parent, log);
	SessionLog::unref(&log);

	failure_callback_t *fatal, *error, *info, *debug;
	i_get_failure_handlers(&fatal, &error, &info, &debug);
	captured_log.clear();
	i_set_error_handler(capture_log);
	std::string got = read_all(input, { 64, 0, 0 });
	i_set_error_handler(error);

	assert_true(got == data);
	assert_true(read_file(tmp.path(base + ".in")) ==
		    data.substr(0, 100) + "\n*** rawlog_ext: log truncated: "
		    "rawlog_ext_max_size=100 bytes reached ***\n");
	assert_int_equal(captured_log.size(), 1);
	assert_string_equal(captured_log[0].c_str(), "Warning: rawlog_ext: "
			    "log reached rawlog_ext_max_size=100 bytes: truncated, "
			    "logging stopped for this session");
	captured_log.clear();
	i_stream_unref(&input);
	i_stream_unref(&parent);
}

} // namespace

int main(void)
{
	lib_init();
	// Dovecot streams and SessionLog's timestamps need an ioloop.
	struct ioloop *ioloop = io_loop_create();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_istream_logs_exactly_the_bytes_read, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_istream_stop_logging_stops_logging_later_reads, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_istream_without_in_direction_only_passes_data, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_ostream_logs_exactly_the_bytes_sent, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_ostream_logs_before_sending_and_never_twice, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_ostream_activity_runs_once_on_first_cork, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_ostream_activity_runs_once_before_first_byte_sent, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_ostream_corked_output_is_logged_once_when_passed_on, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_ostream_stop_logging_stops_logging_and_activity, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_cap_warning_is_logged_once_and_data_still_passes, tmpdir_setup, tmpdir_teardown),
	};
	int ret = cmocka_run_group_tests(tests, NULL, NULL);
	io_loop_destroy(&ioloop);
	lib_deinit();
	return ret;
}
