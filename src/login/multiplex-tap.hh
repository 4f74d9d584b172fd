// The backend leg's input, decoded when the backend multiplexes.
//
// On 2.4 a proxy asks the backend for x-multiplex (imap-login's ID); a
// backend that trusts the proxy answers "* MULTIPLEX 0" and from then on
// sends a multiplex stream: a header, then channel 0 (the session) with
// the switch prefix escaped, and switches to other channels (side channel
// commands for the proxy). Our filter sits below Dovecot's demultiplexer
// (it went on when the backend first spoke), so it sees the framing: this
// tap passes on channel 0 only, as the bytes the client leg sees. Framing
// it does not understand stops the leg's log with one Warning rather than
// logging garbage. Output to the backend is never multiplexed.
#ifndef RAWLOG_EXT_LOGIN_MULTIPLEX_TAP_HH
#define RAWLOG_EXT_LOGIN_MULTIPLEX_TAP_HH

#include "../dovecot/session-log.hh"

#include <string>

namespace rawlog_ext {

class MultiplexTap : public SessionTap {
public:
	// Writes what it decodes into log (takes over a reference).
	explicit MultiplexTap(SessionLog *log) : log_(log) {}
	~MultiplexTap() override;
	MultiplexTap(const MultiplexTap &) = delete;
	MultiplexTap &operator=(const MultiplexTap &) = delete;

	void data(Direction direction, const unsigned char *data, size_t size,
		  const struct timeval &now) noexcept override;
	// Whether "* MULTIPLEX 0" was seen: Dovecot demultiplexes from then
	// on, though the stream header after it may still be on its way.
	bool multiplexing() const { return state_ >= State::header; }
	// Nothing more is logged (said once by the caller or by us).
	void stop() { state_ = State::stopped; }
	bool stopped() const { return state_ == State::stopped; }

private:
	enum class State {
		lines,		// before "* MULTIPLEX 0": plain lines
		// After the line (multiplexing() from here on):
		header,		// checking the stream header after it
		normal, prefix1, prefix2, channel,
		stopped,
	};
	void decode(const unsigned char *data, size_t size, std::string &out);

	SessionLog *log_;
	State state_ = State::lines;
	// The current line's start (lines), or the header bytes so far.
	std::string held_;
	bool line_start_ = true;
	unsigned char channel_ = 0;
};

} // namespace rawlog_ext

#endif
