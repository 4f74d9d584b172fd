// One session's log as Dovecot code sees it: the core Sink plus the event
// that reports its problems, shared by the stream filters that feed it.
#ifndef RAWLOG_EXT_SESSION_LOG_HH
#define RAWLOG_EXT_SESSION_LOG_HH

#include "compat.hh"
#include "../core/hold.hh"
#include "../core/redact.hh"
#include "../core/sink.hh"

#include <vector>

namespace rawlog_ext {

// Something else that follows a session's bytes (e.g. to cut per-recipient
// logs out of an LMTP connection). It must not throw.
class SessionTap {
public:
	virtual ~SessionTap() = default;
	virtual void data(Direction direction, const unsigned char *data,
			  size_t size, const struct timeval &now) noexcept = 0;
};

class SessionLog {
public:
	// Takes a reference on event; the log starts with one reference.
	// sink may be null when only the tap wants the bytes.
	SessionLog(std::unique_ptr<Sink> sink, struct event *event,
		   std::unique_ptr<SessionTap> tap = nullptr);
	void ref() { refcount_++; }
	static void unref(SessionLog **log);

	void write(Direction direction, const void *data, size_t size) noexcept
	{ write_at(direction, data, size, ioloop_timeval); }
	// With the time the bytes passed, when that was earlier than now.
	void write_at(Direction direction, const void *data, size_t size,
		      const struct timeval &time) noexcept;
	bool logs(Direction direction) const
	{ return (sink_ != nullptr && sink_->logs(direction)) ||
		 tap_ != nullptr || holding_; }

	// Without a sink yet (the login process does not know the user at
	// first): keep what would be written, in at most max bytes of
	// memory, bookkeeping included (see HeldData), until attach_sink()
	// writes it out or drop() forgets it; format: the settings the sink
	// will have. attach_sink() replaces (closes) a sink already there;
	// drop() stops logging.
	void hold(uint64_t max, const Settings &format)
	{ held_ = std::make_unique<HeldData>(max, format); holding_ = true; }
	void attach_sink(std::unique_ptr<Sink> sink) noexcept;
	void drop() noexcept;
	// Bytes that did not fit while holding (not in the log).
	uint64_t held_dropped() const { return held_dropped_; }
	// Memory the held bytes take now.
	size_t held_cost() const
	{ return held_ == nullptr ? 0 : held_->cost(); }
	struct event *event() const { return event_; }
	// Writes input the sink still holds back (e.g. before the protocol
	// logs "Disconnected": whoever reads the log then finds it whole).
	void flush() noexcept;
	// Short output is held back too until release_output() (see
	// Sink::hold_output()).
	void hold_output() noexcept
	{ if (sink_ != nullptr) sink_->hold_output(); }
	void release_output() noexcept;
	// Credentials in client_direction's bytes (which the client of this
	// connection sends: "in" for a client session, "out" for a connection
	// Dovecot opened) reach the sink as "***".
	void set_redactor(std::unique_ptr<Redactor> redactor,
			  Direction client_direction)
	{ redactor_ = std::move(redactor); client_direction_ = client_direction; }
	// While paused, bytes are dropped (e.g. TLS handshake bytes below
	// a layer we are about to move above).
	void set_paused(bool paused) { paused_ = paused; }
	// Something of ours failed (guard() has said what): nothing more is
	// written or held, for good (attach_sink() then closes its sink).
	void abandon() noexcept;
	bool failed() const { return failed_; }

private:
	~SessionLog();
	void report_problems() noexcept;
	// These two may throw: their callers guard them.
	void sink_write(Direction direction, const void *data, size_t size,
			const struct timeval &time);
	void redact_write(Direction direction, const void *data, size_t size,
			  const struct timeval &time);

	std::unique_ptr<Sink> sink_;
	struct event *event_;
	std::unique_ptr<SessionTap> tap_;
	bool paused_ = false;
	bool failed_ = false;
	std::unique_ptr<Redactor> redactor_;
	Direction client_direction_ = Direction::in;
	std::string redacted_;		// reused buffer
	bool holding_ = false;
	uint64_t held_dropped_ = 0;
	std::unique_ptr<HeldData> held_;
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
// For a filter that takes another stream's place: its offsets go on from
// the parent's (v_offset starts at the parent's, nothing is added when
// seeking it), as if it had been there from the start. Code that compares
// offsets across the stack then sees what it expects (2.4's COMPRESS with
// core rawlog_dir, whose streams we go on top of after input was read).
void istream_continue_offsets(struct istream *input);
// Leaves input's parent where input's reader stopped (as destroying input
// would), e.g. before putting the parent back in input's place.
void istream_seek_parent(struct istream *input);
void ostream_stop_logging(struct ostream *output);

// Says in event's log how Sink::open() went: a Debug line, or an Error for
// a failure. Returns the sink if it opened.
std::unique_ptr<Sink> sink_opened(OpenResult result, std::unique_ptr<Sink> sink,
				  const std::string &message,
				  struct event *event);

// The log's event: the user's event with a "rawlog_ext: " prefix.
struct event *log_event_create(struct event *parent);

} // namespace rawlog_ext

#endif
