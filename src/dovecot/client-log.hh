// The part of the protocol glue that imap and pop3 share: keeping our
// logging filters the outermost streams of a client.
//
// Both protocols create the client, run the created hooks, and only then
// stack the bytes their login process read after the login command
// (commands pipelined with LOGIN/PASS) on top of client->input. So the
// filters installed in the hook are checked again at the first output (the
// login reply, or pop3's cork before it handles that data): if something
// was stacked on top, logging moves above it. Nothing has been read at
// that point, so no byte is logged twice or missed. The same check, run
// from imap's command post-hook, handles COMPRESS.
#ifndef RAWLOG_EXT_CLIENT_LOG_HH
#define RAWLOG_EXT_CLIENT_LOG_HH

#include "session-log.hh"

namespace rawlog_ext {

class ClientLog {
public:
	// Wraps *input and *output (the client's own stream pointers, which
	// must stay valid until begin_destroy()). streams_changed, if set,
	// runs after logging moved to new streams (e.g. to re-point parsers).
	ClientLog(SessionLog *log, struct istream **input,
		  struct ostream **output,
		  void (*streams_changed)(void *context), void *context);
	ClientLog(const ClientLog &) = delete;
	ClientLog &operator=(const ClientLog &) = delete;

	// Moves logging back to the outermost streams if something was
	// stacked on top of ours. Not from within our own stream calls.
	void sync() { sync(true); }
	// Drops our references to our outermost streams, logging on, so that
	// whoever replaces them frees them (2.4's COMPRESS frees what it
	// takes for core rawlog's streams). The next sync() wraps what
	// replaced them, or keeps them if they are still the client's.
	void release();
	// Takes our filters off the client's streams, putting back the ones
	// they wrap, and stops logging for good (the caller says so): for a
	// protocol step that needs the streams below ours on top. False (and
	// nothing done) if ours are not the outermost ones.
	bool unstack();
	// Call before the client's own destroy: from then on nothing is
	// re-stacked. Then delete the object after that destroy.
	void begin_destroy() { destroying_ = true; log_->flush(); }
	~ClientLog();

private:
	static void first_output(void *context);
	static void input_destroyed(void *context);
	static void output_destroyed(void *context);
	void sync(bool output_too);
	void wrap_input();
	void wrap_output();
	void drop_input();
	void drop_output();
	void reclaim();

	SessionLog *log_;
	struct istream **client_input_;
	struct ostream **client_output_;
	void (*streams_changed_)(void *context);
	void *context_;
	// Our outermost filters (referenced).
	struct istream *input_ = nullptr;
	struct ostream *output_ = nullptr;
	// After release(): input_/output_ are not referenced by us, and
	// become nullptr when freed.
	bool released_ = false;
	bool first_output_seen_ = false;
	bool destroying_ = false;
	bool unstacked_ = false;
};

// A ClientLog for log (whose reference it takes over either way), or
// nullptr if that failed (then said in the log's event).
ClientLog *client_log_create(SessionLog *log, struct istream **input,
			     struct ostream **output,
			     void (*streams_changed)(void *context),
			     void *context) noexcept;

// For a protocol's destroy override: runs the protocol's own destroy
// (which frees the client and the module context), then the ClientLog --
// our streams must live until that destroy is done.
template <typename Destroy>
void destroy_with_client_log(ClientLog *log, Destroy &&protocol_destroy)
{
	log->begin_destroy();
	protocol_destroy();
	delete log;
}

} // namespace rawlog_ext

#endif
