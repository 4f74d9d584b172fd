// What the protocol redactors (redact-imap.cc, redact-pop3.cc,
// redact-smtp.cc) share: the modes other than reading commands, the
// response lines of an authentication exchange, client bytes held for the
// server's answer, the server's lines. Internal to the core library.
#ifndef RAWLOG_EXT_REDACT_INTERNAL_HH
#define RAWLOG_EXT_REDACT_INTERNAL_HH

#include "redact.hh"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <string>

namespace rawlog_ext {
namespace redact {

extern const char marker[];
extern const size_t marker_len;

// Commands sent and not answered yet. A client that gets further ahead
// of the server than this is no longer followed.
const size_t max_outstanding = 1024;

inline unsigned char ascii_upper(unsigned char c)
{
	return c >= 'a' && c <= 'z' ? (unsigned char)(c - 'a' + 'A') : c;
}

inline bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

// The start of a word (tag, command, reply code) and its full length, so
// an overlong word never equals a short name.
class Word {
public:
	static constexpr size_t max_stored = 64;

	void clear() { len_ = 0; }
	void add(unsigned char c)
	{
		if (len_ < max_stored)
			data_[len_] = c;
		len_++;
	}
	size_t size() const { return len_; }
	unsigned char at(size_t i) const
	{
		return i < len_ && i < max_stored ? data_[i] : 0;
	}
	// Case-insensitive; name is upper case.
	bool is(const char *name) const
	{
		size_t n = strlen(name);
		if (n != len_ || n > max_stored)
			return false;
		for (size_t i = 0; i < n; i++) {
			if (ascii_upper(data_[i]) != (unsigned char)name[i])
				return false;
		}
		return true;
	}
	// Exact, as IMAP tags compare. Overlong words are equal when their
	// stored starts and lengths are.
	bool operator==(const Word &other) const
	{
		return len_ == other.len_ &&
			memcmp(data_, other.data_,
			       std::min(len_, max_stored)) == 0;
	}

private:
	unsigned char data_[max_stored];
	size_t len_ = 0;
};

// What the redactor needs of one server line: its first two words.
struct ServerLine {
	Word first, second;
	size_t length = 0;		// without the LF
	bool cr_last = false;
	int word = 0;

	void clear() { *this = ServerLine(); }
	void add(unsigned char c)
	{
		length++;
		cr_last = c == '\r';
		if (c == '\r' || word > 1)
			return;
		if (c == ' ')
			word++;
		else
			(word == 0 ? first : second).add(c);
	}
	// Without the line end.
	size_t content_length() const { return length - (cr_last ? 1 : 0); }
};

// Recognises an IMAP literal header, "{n}" or "{n+}" (so also "~{n}"),
// ending a server line: fed the line's bytes except the LF, then asked
// at the LF. (Client lines follow imap-login's parser instead.)
class LiteralTail {
public:
	void reset() { state_ = State::none; }
	void feed(unsigned char c);
	bool complete() const
	{
		return state_ == State::closed || state_ == State::closed_cr;
	}
	uint64_t size() const { return size_; }

private:
	// More digits than a uint64_t holds safely: not a literal.
	static constexpr unsigned int max_digits = 18;
	enum class State { none, brace, plus, closed, closed_cr };

	State state_ = State::none;
	uint64_t size_ = 0;
	unsigned int digits_ = 0;
};

enum class Mode {
	command,	// protocol commands (the protocol's own lexer)
	secret_line,	// a response line of an authentication exchange
	raw,		// counted bytes: a literal or a BDAT chunk
	content,	// SMTP DATA up to the "." line
	wait,		// the server decides what the next bytes are
	passthrough,	// logged in: nothing more to inspect
};

// A response line of an authentication exchange (also the rest of a
// line that carries an initial response) as Dovecot reads it: up to the
// LF, a CR before it dropped. Kept: nothing, a lone "*" (cancel) and,
// where allowed, a lone "=" (an empty initial response); anything else
// becomes one marker. The line end is kept.
class SecretLine {
public:
	// keep: the one byte kept when alone ('*' or '='), 0 for none.
	void start(unsigned char keep)
	{
		keep_ = keep;
		state_ = State::empty;
		cr_ = false;
	}
	// Feeds one byte that is not the LF.
	void feed(unsigned char c, std::string &out);
	// At the LF (not written): what was held.
	void end(std::string &out);
	// Bytes held that may still be kept.
	size_t held() const
	{
		return (state_ == State::kept ? 1 : 0) + (cr_ ? 1 : 0);
	}

private:
	enum class State { empty, kept, marked };

	void mark(std::string &out);

	unsigned char keep_ = 0;
	State state_ = State::empty;
	bool cr_ = false;		// a CR that may end the line
};

} // namespace redact

// The machinery all protocols share. The protocols derive from it.
struct Redactor::Impl {
	virtual ~Impl() = default;

	void client_data(const unsigned char *data, size_t size,
			 std::string &out);
	void server_data(const unsigned char *data, size_t size);
	void flush(std::string &out);
	void finish(std::string &out);

	bool passthrough() const { return mode_ == redact::Mode::passthrough; }
	bool drained() const { return released_.empty(); }
	size_t held() const;

protected:
	// Mode::command: consumes bytes until the mode changes or the line
	// (IMAP: the command) ends, which sets line_start_.
	virtual const unsigned char *command(const unsigned char *p,
					     const unsigned char *end) = 0;
	// A server line (IMAP: one not inside a literal).
	virtual void server_line(const redact::ServerLine &line) = 0;
	// The wait is over; mode_ is Mode::command again.
	virtual void wait_over(bool accepted) = 0;
	// Mode::raw ended; mode_ is Mode::command again.
	virtual void raw_done() = 0;
	// Mode::content (SMTP).
	virtual const unsigned char *content(const unsigned char *p,
					     const unsigned char *end)
	{
		emit(p, end);
		return end;
	}
	// At finish() in Mode::command: releases held bytes.
	virtual void finish_command() = 0;
	virtual size_t held_tokens() const = 0;
	// Whether server lines can carry literals (IMAP).
	virtual bool server_literals() const { return false; }
	// Mode::wait: the size of the literal waited for (IMAP).
	virtual uint64_t wait_literal() const { return 0; }

	void emit(unsigned char c) { out_->push_back((char)c); }
	void emit(const unsigned char *p, const unsigned char *end)
	{
		out_->append((const char *)p, end - p);
	}
	void emit(const std::string &s) { out_->append(s); }
	void emit_marker() { out_->append(redact::marker, redact::marker_len); }
	std::string &out() { return *out_; }
	// Where emit() writes from now on; returns where it wrote before.
	std::string *redirect(std::string *to)
	{
		std::string *was = out_;
		out_ = to;
		return was;
	}

	void begin_raw(uint64_t size, bool secret);
	// seq: the command whose reply decides (0: none will).
	void begin_wait(uint64_t seq)
	{
		mode_ = redact::Mode::wait;
		wait_seq_ = seq;
	}
	bool waiting_for(uint64_t seq) const
	{
		return mode_ == redact::Mode::wait && seq != 0 &&
			wait_seq_ == seq;
	}
	// From server_line(): the server decided; the held bytes are
	// parsed accordingly into released_.
	void resolve_wait(bool accepted);
	// Whether the next client bytes are a literal or commands is not
	// known: all of them (line ends too) are hidden under one marker,
	// for the rest of the session.
	void begin_unsure();
	// An authentication exchange: client lines are responses until the
	// command seq (0: none, so never) is answered.
	void start_exchange(uint64_t seq, bool answered)
	{
		exchange_ = answered ? Exchange::answered : Exchange::open;
		exchange_seq_ = seq;
		unawaited_ = unawaited_taken_ = false;
	}
	// The server asks for the literal the client did not wait for (IMAP
	// "+ OK") while its lines are hidden: it takes them as that literal.
	// IMAP "+ OK" while a response line is hidden: if it is read again
	// as a command waiting for a literal, that "+ OK" may have been its.
	void plus_while_hidden()
	{
		if (mode_ == redact::Mode::secret_line)
			plus_hidden_ = true;
	}
	bool literal_taken()
	{
		if (exchange_ != Exchange::open || !unawaited_ ||
		    unawaited_taken_)
			return false;
		unawaited_taken_ = true;
		return true;
	}
	// A final reply (IMAP: tagged): a continuation before it that no
	// client line answered is answered no more.
	void final_reply() { asked_ = 0; }
	// The final reply to command seq (logged_in: it accepted a login).
	// If seq's exchange is open, the response lines the server did
	// not ask for were commands to it: they are read again as such.
	void answered(uint64_t seq, bool logged_in = false);
	// The server asks for a response (IMAP and POP3 "+", SMTP 334):
	// the client's next line it has not read is one, whatever the
	// redactor made of it.
	void continuation();

	redact::Mode mode_ = redact::Mode::command;
	// The next client byte starts a line (IMAP: a command).
	bool line_start_ = true;
	bool authenticated_ = false;
	uint64_t seq_ = 0;		// numbers commands from 1

private:
	void run(const unsigned char *p, const unsigned char *end);
	bool begin_line();
	const unsigned char *secret_line(const unsigned char *p,
					 const unsigned char *end);
	void give_up_waiting();
	void rerun_pending();
	void server_lf();
	void begin_response(bool asked);
	void unasked_add(const unsigned char *p, const unsigned char *end);
	void unasked_drop();
	// line_start: from a line's start; else on from where the lexer is.
	// literal: the lines start with a literal of that size (taken).
	void reread(const std::string &lines, bool line_start,
		    bool literal = false, uint64_t size = 0);
	// The exchange is one of lines after a literal the client did not
	// wait for (unawaited_size_ bytes); taken: the server asked for it.
	void start_unawaited(uint64_t seq, uint64_t size)
	{
		start_exchange(seq, false);
		unawaited_ = true;
		unawaited_size_ = size;
	}

	std::string *out_ = nullptr;
	std::string pending_;		// Mode::wait
	std::string released_;		// resolved by server_data()
	uint64_t wait_seq_ = 0;
	uint64_t raw_left_ = 0;
	bool raw_secret_ = false;

	// An authentication exchange: its lines are responses while open;
	// answered, it ends at the next line.
	enum class Exchange { none, open, answered };
	Exchange exchange_ = Exchange::none;
	uint64_t exchange_seq_ = 0;
	bool unawaited_ = false, unawaited_taken_ = false;
	bool plus_hidden_ = false;
	uint64_t unawaited_size_ = 0;
	redact::SecretLine response_;	// Mode::secret_line

	// Response lines read before the server asked for them (by a
	// continuation), oldest first, the current one last: if the
	// exchange ends first, Dovecot reads them as commands. Logged
	// hidden already; read again, they only move the state on.
	std::deque<std::string> unasked_;
	size_t unasked_size_ = 0;
	bool recording_ = false;	// the current response line is unasked
	bool response_whole_ = false;	// hidden with its line end
	bool unasked_marked_ = false;	// a run of such lines is marked
	// Over max_pending: no longer read again (the lines stay
	// responses, as they were taken).
	bool unasked_lost_ = false;
	// The current line (unasked) is read again at its end: the
	// exchange ended while it was being read.
	bool reread_line_ = false;
	// Continuations that no client line has answered yet.
	uint64_t asked_ = 0;

	redact::ServerLine server_line_;
	redact::LiteralTail server_tail_;	// server literals (IMAP)
	bool server_continued_ = false;
	uint64_t server_skip_ = 0;
};

namespace redact {

std::unique_ptr<Redactor::Impl> make_imap();
std::unique_ptr<Redactor::Impl> make_pop3();
std::unique_ptr<Redactor::Impl> make_smtp();

} // namespace redact
} // namespace rawlog_ext

#endif
