// One session's log as Dovecot code sees it: the core Sink plus the event
// that reports its problems, shared by the stream filters that feed it.
#ifndef RAWLOG_EXT_SESSION_LOG_HH
#define RAWLOG_EXT_SESSION_LOG_HH

#include "compat.hh"
#include "../core/sink.hh"

namespace rawlog_ext {

class SessionLog {
public:
	// Takes a reference on event; the log starts with one reference.
	SessionLog(std::unique_ptr<Sink> sink, struct event *event);
	void ref() { refcount_++; }
	static void unref(SessionLog **log);

	void write(Direction direction, const void *data, size_t size) noexcept;
	bool logs(Direction direction) const { return sink_->logs(direction); }

private:
	~SessionLog();
	void report_problems();

	std::unique_ptr<Sink> sink_;
	struct event *event_;
	unsigned int refcount_ = 1;
};

// Stream filters that copy what passes through them into log. They never
// change the data, its timing or the parent's errors.
struct istream *istream_create_logging(struct istream *parent,
				       SessionLog *log);
struct ostream *ostream_create_logging(struct ostream *parent,
				       SessionLog *log);
// activity (or nullptr) runs once, before the first output passes through
// (a write or a cork): the glue checks there what the protocol stacked on
// its input meanwhile.
void ostream_set_activity(struct ostream *output,
			  void (*activity)(void *context), void *context);
// Stop logging in a filter that is no longer the outermost stream (e.g.
// after COMPRESS stacked zlib on top of it); it logs and passes on what it
// still holds, then only passes data.
void istream_stop_logging(struct istream *input);
void ostream_stop_logging(struct ostream *output);

// The log's event: the user's event with a "rawlog_ext: " prefix.
struct event *log_event_create(struct event *parent);

} // namespace rawlog_ext

#endif
