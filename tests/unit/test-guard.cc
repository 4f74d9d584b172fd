// guard() and the failure paths it protects: what our code throws inside a
// Dovecot callback stops logging with one Error, and the data still
// passes. Allocations are made to fail here, so this binary replaces
// operator new and is not run under valgrind (which replaces it again;
// see run-test-valgrind.exclude): the ASan/UBSan build runs it.
#include "dovecot/compat.hh"
DOVECOT_EXTERN_C_BEGIN
#include "test-common.h"
DOVECOT_EXTERN_C_END

#include "test-common.hh"

#include "dovecot/guard.hh"
#include "dovecot/session-log.hh"

#include <cstdio>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <vector>

using namespace rawlog_ext;

// The replacement pair is malloc/free by design.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

// Allocations of at least this many bytes fail (throw), to drive the
// failure paths: the core is linked into this binary, so its allocations
// come here too.
size_t fail_allocations_from = SIZE_MAX;

void *operator new(size_t size)
{
	void *p = size >= fail_allocations_from ? nullptr :
		malloc(size == 0 ? 1 : size);
	if (p == nullptr)
		throw std::bad_alloc();
	return p;
}

void operator delete(void *p) noexcept
{
	free(p);
}

// valgrind puts its own operator new in place of ours.
bool can_fail_allocations()
{
	fail_allocations_from = 1;
	bool failed = false;
	try {
		// volatile: a new/delete pair may otherwise be left out.
		char *volatile p = new char(0);
		delete p;
	} catch (const std::bad_alloc &) {
		failed = true;
	}
	fail_allocations_from = SIZE_MAX;
	return failed;
}

void operator delete(void *p, size_t) noexcept
{
	free(p);
}

using namespace rawlog_ext;

namespace {

const std::string base = log_base_name(fixed_parts());

std::vector<std::string> captured_log;

void capture_log(const struct failure_context *ctx, const char *format,
		 va_list args)
{
	// Recording is not what a test makes fail.
	size_t fail_from = fail_allocations_from;
	fail_allocations_from = SIZE_MAX;
	char message[1024];
	vsnprintf(message, sizeof(message), format, args);
	captured_log.push_back(std::string(ctx->type == LOG_TYPE_WARNING ?
					   "Warning: " : "Error: ") + message);
	fail_allocations_from = fail_from;
}

std::string test_data()
{
	std::string data = "a1 NOOP\r\n";
	for (int i = 0; i < 40; i++)
		data += "a2 SELECT INBOX\r\n";
	return data;
}

SessionLog *open_log(const std::string &dir)
{
	Settings set;
	set.dir = dir;
	set.timestamps = Timestamps::none;
	std::unique_ptr<Sink> sink;
	std::string message;
	if (Sink::open(set, fixed_parts(), sink, message) != OpenResult::opened)
		fail_msg("Sink::open failed: %s", message.c_str());
	struct event *event = log_event_create(nullptr);
	SessionLog *log = new SessionLog(std::move(sink), event);
	event_unref(&event);
	return log;
}

std::string read_rest(struct istream *input)
{
	std::string got;
	while (i_stream_read(input) > 0 || i_stream_get_data_size(input) > 0) {
		size_t size;
		const unsigned char *data = i_stream_get_data(input, &size);
		got.append((const char *)data, size);
		i_stream_skip(input, size);
	}
	return got;
}

void test_guard_reports_what_failed_and_why(void **)
{
	struct event *event = log_event_create(nullptr);
	failure_callback_t *fatal, *error, *info, *debug;
	i_get_failure_handlers(&fatal, &error, &info, &debug);
	captured_log.clear();
	i_set_error_handler(capture_log);
	bool ran = false;
	bool ok = guard(event, "a", [&] { ran = true; });
	bool oom = guard(event, "b", [] { throw std::bad_alloc(); });
	bool std = guard(event, "c", [] {
		throw std::runtime_error("boom");
	});
	bool other = guard(event, "d", [] { throw 42; });
	i_set_error_handler(error);
	event_unref(&event);

	assert_true(ok && ran);
	assert_false(oom || std || other);
	assert_int_equal(captured_log.size(), 3);
	assert_string_equal(captured_log[0].c_str(), "Error: rawlog_ext: "
			    "b failed: out of memory: logging stopped");
	assert_string_equal(captured_log[1].c_str(), "Error: rawlog_ext: "
			    "c failed: boom: logging stopped");
	assert_string_equal(captured_log[2].c_str(), "Error: rawlog_ext: "
			    "d failed: unexpected internal error: logging "
			    "stopped");
	captured_log.clear();
}

// A failure of ours inside the stream's read: one Error, logging stops
// for good, and the reader gets every byte as if nothing had happened.
void test_failure_in_read_stops_logging_and_data_passes(void **state)
{
	if (!can_fail_allocations())
		fail_msg("operator new is not this binary's (valgrind?)");
	const TmpDir &tmp = tmpdir(state);
	const std::string data = test_data();
	SessionLog *log = open_log(tmp.path());
	log->set_redactor(std::make_unique<Redactor>(RedactProtocol::imap),
			  Direction::in);
	struct istream *parent = test_istream_create_data(data.data(),
							  data.size());
	test_istream_set_max_buffer_size(parent, 64);
	struct istream *input = istream_create_logging(parent, log);

	failure_callback_t *fatal, *error, *info, *debug;
	i_get_failure_handlers(&fatal, &error, &info, &debug);
	captured_log.clear();
	i_set_error_handler(capture_log);
	// The first read: the redactor's buffer cannot be allocated.
	std::string got;
	got.reserve(data.size());
	fail_allocations_from = 1;
	assert_true(i_stream_read(input) > 0);
	size_t size;
	const unsigned char *bytes = i_stream_get_data(input, &size);
	got.append((const char *)bytes, size);
	i_stream_skip(input, size);
	fail_allocations_from = SIZE_MAX;
	got += read_rest(input);
	SessionLog::unref(&log);
	i_stream_unref(&input);
	i_set_error_handler(error);
	i_stream_unref(&parent);

	assert_true(got == data);
	assert_int_equal(captured_log.size(), 1);
	assert_string_equal(captured_log[0].c_str(), "Error: rawlog_ext: "
			    "writing the log failed: out of memory: logging "
			    "stopped");
	captured_log.clear();
	// Nothing after the failure.
	assert_true(read_file(tmp.path(base + ".in")).empty());
}

} // namespace

int main(void)
{
	lib_init();
	struct ioloop *ioloop = io_loop_create();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_guard_reports_what_failed_and_why),
		cmocka_unit_test_setup_teardown(test_failure_in_read_stops_logging_and_data_passes, tmpdir_setup, tmpdir_teardown),
	};
	int ret = cmocka_run_group_tests(tests, NULL, NULL);
	io_loop_destroy(&ioloop);
	lib_deinit();
	return ret;
}
