#include "redact.hh"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>

namespace rawlog_ext {

namespace {

const char marker[] = "***";
const size_t marker_len = sizeof(marker) - 1;

// Commands sent and not answered yet. A client that gets further ahead
// of the server than this is no longer followed (see desync_).
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
	// At a LF: the CR before it ends the line, not the word.
	void drop_cr()
	{
		if (len_ > 0 && len_ <= max_stored && data_[len_ - 1] == '\r')
			len_--;
	}
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

// Recognises an IMAP literal header, "{n}" or "{n+}" (so also "~{n}"),
// ending a line: fed the line's bytes outside quoted strings except the
// LF, then asked at the LF.
class LiteralTail {
public:
	void reset() { state_ = State::none; }
	void feed(unsigned char c)
	{
		switch (state_) {
		case State::brace:
			if (is_digit(c) && digits_ < max_digits) {
				size_ = size_ * 10 + (uint64_t)(c - '0');
				digits_++;
				return;
			}
			if (digits_ > 0 && c == '+') {
				state_ = State::plus;
				return;
			}
			if (digits_ > 0 && c == '}') {
				sync_ = true;
				state_ = State::closed;
				return;
			}
			break;
		case State::plus:
			if (c == '}') {
				sync_ = false;
				state_ = State::closed;
				return;
			}
			break;
		case State::closed:
			if (c == '\r') {
				state_ = State::closed_cr;
				return;
			}
			break;
		case State::none:
		case State::closed_cr:
			break;
		}
		if (c == '{') {
			state_ = State::brace;
			size_ = 0;
			digits_ = 0;
		} else {
			state_ = State::none;
		}
	}
	bool in_progress() const { return state_ != State::none; }
	bool complete() const
	{
		return state_ == State::closed || state_ == State::closed_cr;
	}
	uint64_t size() const { return size_; }
	bool sync() const { return sync_; }

private:
	// More digits than a uint64_t holds safely: not a literal.
	static const unsigned int max_digits = 18;
	enum class State { none, brace, plus, closed, closed_cr };

	State state_ = State::none;
	uint64_t size_ = 0;
	unsigned int digits_ = 0;
	bool sync_ = true;
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

enum class Mode {
	command,	// protocol commands (the protocol's own lexer)
	secret_line,	// a response line of an authentication exchange
	raw,		// counted bytes: a literal or a BDAT chunk
	content,	// SMTP DATA up to the "." line
	wait,		// the server decides what the next bytes are
	passthrough,	// logged in: nothing more to inspect
};

} // namespace

// The machinery all protocols share: modes other than command, the
// exchange's response lines, bytes held for the server, server lines.
struct Redactor::Impl {
	virtual ~Impl() = default;

	void client_data(const unsigned char *data, size_t size,
			 std::string &out)
	{
		flush(out);
		out_ = &out;
		run(data, data + size);
	}

	void server_data(const unsigned char *data, size_t size)
	{
		const unsigned char *p = data, *end = data + size;
		// Bytes the client sends get resolved into released_.
		out_ = &released_;
		while (p < end && mode_ != Mode::passthrough) {
			if (server_skip_ > 0) {
				size_t n = (size_t)std::min<uint64_t>(
					server_skip_, (uint64_t)(end - p));
				server_skip_ -= n;
				p += n;
				continue;
			}
			const unsigned char *lf = (const unsigned char *)
				memchr(p, '\n', end - p);
			const unsigned char *stop = lf != nullptr ? lf : end;
			for (; p < stop; p++) {
				server_line_.add(*p);
				if (server_literals())
					server_tail_.feed(*p);
			}
			if (lf == nullptr)
				break;
			p = lf + 1;
			server_lf();
		}
	}

	void flush(std::string &out)
	{
		if (released_.empty())
			return;
		if (out.empty())
			out.swap(released_);
		else
			out += released_;
		released_.clear();
	}

	void finish(std::string &out)
	{
		flush(out);
		out_ = &out;
		// What was held may hold another wait: each round parses at
		// least one held byte.
		while (mode_ == Mode::wait)
			give_up_waiting();
		if (mode_ == Mode::secret_line) {
			if (line_star_)
				emit('*');
			if (line_cr_)
				emit('\r');
		} else if (mode_ == Mode::command) {
			finish_command();
		}
		mode_ = Mode::passthrough;
	}

	bool passthrough() const { return mode_ == Mode::passthrough; }
	bool drained() const { return released_.empty(); }
	size_t held() const
	{
		return pending_.size() + held_tokens() +
			(mode_ == Mode::secret_line ?
			 (size_t)line_star_ + (size_t)line_cr_ : 0);
	}

protected:
	// Mode::command: consumes bytes until the mode changes or the line
	// (IMAP: the command) ends, which sets line_start_.
	virtual const unsigned char *command(const unsigned char *p,
					     const unsigned char *end) = 0;
	// A server line (IMAP: one not inside a literal).
	virtual void server_line(const ServerLine &line) = 0;
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

	void emit(unsigned char c) { out_->push_back((char)c); }
	void emit(const unsigned char *p, const unsigned char *end)
	{
		out_->append((const char *)p, end - p);
	}
	void emit(const std::string &s) { out_->append(s); }
	void emit_marker() { out_->append(marker, marker_len); }

	void begin_raw(uint64_t size, bool secret)
	{
		if (size == 0) {
			raw_done();
			return;
		}
		mode_ = Mode::raw;
		raw_left_ = size;
		raw_secret_ = secret;
	}
	// seq: the command whose reply decides (0: none will).
	void begin_wait(uint64_t seq)
	{
		mode_ = Mode::wait;
		wait_seq_ = seq;
	}
	bool waiting_for(uint64_t seq) const
	{
		return mode_ == Mode::wait && seq != 0 && wait_seq_ == seq;
	}
	// From server_line(): the server decided; the held bytes are
	// parsed accordingly into released_.
	void resolve_wait(bool accepted)
	{
		if (mode_ != Mode::wait)
			return;
		mode_ = Mode::command;
		wait_over(accepted);
		rerun_pending();
	}
	// An authentication exchange: client lines are responses until the
	// command seq (0: none, so never) is answered.
	void start_exchange(uint64_t seq, bool answered)
	{
		exchange_ = true;
		exchange_seq_ = seq;
		exchange_done_ = answered;
	}
	void answered(uint64_t seq)
	{
		if (exchange_ && seq != 0 && seq == exchange_seq_)
			exchange_done_ = true;
	}

	Mode mode_ = Mode::command;
	// The next client byte starts a line (IMAP: a command).
	bool line_start_ = true;
	bool authenticated_ = false;
	uint64_t seq_ = 0;		// numbers commands from 1

private:
	void run(const unsigned char *p, const unsigned char *end)
	{
		while (p < end) {
			switch (mode_) {
			case Mode::command:
				if (line_start_ && begin_line())
					break;
				p = command(p, end);
				break;
			case Mode::secret_line:
				p = secret_line(p, end);
				break;
			case Mode::raw: {
				size_t n = (size_t)std::min<uint64_t>(
					raw_left_, (uint64_t)(end - p));
				if (!raw_secret_)
					emit(p, p + n);
				p += n;
				raw_left_ -= n;
				if (raw_left_ == 0) {
					mode_ = Mode::command;
					raw_done();
				}
				break;
			}
			case Mode::content:
				p = content(p, end);
				break;
			case Mode::wait:
				if (pending_.size() + (size_t)(end - p) <=
				    max_pending) {
					pending_.append((const char *)p, end - p);
					return;
				}
				// The client does not wait for the server:
				// read it as sending commands.
				give_up_waiting();
				break;
			case Mode::passthrough:
				emit(p, end);
				return;
			}
		}
	}

	// At the first byte of a line: true if that changed the mode.
	bool begin_line()
	{
		line_start_ = false;
		if (exchange_ && !exchange_done_) {
			mode_ = Mode::secret_line;
			line_marked_ = line_star_ = line_cr_ = false;
			return true;
		}
		exchange_ = false;
		if (authenticated_) {
			mode_ = Mode::passthrough;
			return true;
		}
		return false;
	}

	// One response line: "***" for whatever it holds, except a lone
	// "*" (cancel) or nothing; the line end is kept.
	const unsigned char *secret_line(const unsigned char *p,
					 const unsigned char *end)
	{
		while (p < end) {
			unsigned char c = *p++;
			if (c == '\n') {
				if (line_star_)
					emit('*');
				if (line_cr_)
					emit('\r');
				emit('\n');
				mode_ = Mode::command;
				line_start_ = true;
				return p;
			}
			if (line_cr_) {
				// Not the line end: part of the response.
				line_cr_ = false;
				mark_line();
			}
			if (c == '\r') {
				line_cr_ = true;
			} else if (!line_marked_) {
				if (c == '*' && !line_star_)
					line_star_ = true;
				else
					mark_line();
			}
		}
		return p;
	}

	void mark_line()
	{
		if (!line_marked_) {
			emit_marker();
			line_marked_ = true;
			line_star_ = false;
		}
	}

	void give_up_waiting()
	{
		mode_ = Mode::command;
		wait_over(false);
		rerun_pending();
	}

	void rerun_pending()
	{
		// run() may start waiting again and refill pending_.
		std::string pending;
		pending.swap(pending_);
		const unsigned char *p = (const unsigned char *)pending.data();
		run(p, p + pending.size());
	}

	void server_lf()
	{
		bool literal = server_literals() && server_tail_.complete();
		uint64_t literal_size = server_tail_.size();
		// A line continued after a literal is not a new response.
		bool continued = server_continued_;
		server_continued_ = literal;
		server_tail_.reset();
		if (!continued)
			server_line(server_line_);
		server_line_.clear();
		if (literal)
			server_skip_ = literal_size;
	}

	std::string *out_ = nullptr;
	std::string pending_;		// Mode::wait
	std::string released_;		// resolved by server_data()
	uint64_t wait_seq_ = 0;
	uint64_t raw_left_ = 0;
	bool raw_secret_ = false;

	bool exchange_ = false, exchange_done_ = false;
	uint64_t exchange_seq_ = 0;
	bool line_marked_ = false, line_star_ = false, line_cr_ = false;

	ServerLine server_line_;
	LiteralTail server_tail_;
	bool server_continued_ = false;
	uint64_t server_skip_ = 0;
};

namespace {

// IMAP: "tag command args CRLF", where args may hold quoted strings and
// literals, after which the command goes on. Secret: LOGIN's second
// argument and everything after it, AUTHENTICATE's second argument.
class ImapRedactor final : public Redactor::Impl {
public:
	ImapRedactor() { reset_command(); }

protected:
	const unsigned char *command(const unsigned char *p,
				     const unsigned char *end) override
	{
		while (p < end && mode_ == Mode::command && !line_start_)
			byte(*p++);
		return p;
	}

	void server_line(const ServerLine &line) override
	{
		if (line.first.at(0) == '+') {
			// Continuation: a waited-for literal may come.
			resolve_wait(true);
			return;
		}
		if (line.first.is("*")) {
			if (line.second.is("PREAUTH"))
				authenticated_ = true;
			return;
		}
		bool ok = line.second.is("OK");
		if (!ok && !line.second.is("NO") && !line.second.is("BAD"))
			return;
		for (auto it = outstanding_.begin(); it != outstanding_.end(); ++it) {
			if (it->tag == line.first) {
				Outstanding cmd = *it;
				outstanding_.erase(it);
				command_answered(cmd, ok);
				return;
			}
		}
	}

	void wait_over(bool accepted) override
	{
		if (accepted) {
			begin_literal();
		} else {
			// The literal will not come: the command is over.
			reset_command();
			line_start_ = true;
		}
	}

	void raw_done() override
	{
		// The literal was (part of) an argument; the command goes on.
		in_arg_ = true;
		arg_closed_ = true;
		tail_.reset();
	}

	void finish_command() override
	{
		if (hold_kind_ == Hold::literal)
			start_redacting();
		else if (hold_kind_ == Hold::equals)
			emit(hold_);
		if (cr_held_)
			emit('\r');
		reset_command();
	}

	size_t held_tokens() const override
	{
		return hold_.size() + (cr_held_ ? 1 : 0);
	}

	bool server_literals() const override { return true; }

private:
	enum class Phase { tag, name, args };
	enum class Kind { other, login, authenticate };
	// Bytes held at the start of a secret argument: a literal header
	// is kept, so is an initial response "=".
	enum class Hold { none, literal, equals };
	struct Outstanding {
		Word tag;
		Kind kind;
		uint64_t seq;
	};

	void byte(unsigned char c)
	{
		switch (phase_) {
		case Phase::tag:
			emit(c);
			if (c == '\n') {
				reset_command();
				line_start_ = true;
			} else if (c == ' ') {
				phase_ = Phase::name;
			} else {
				tag_.add(c);
			}
			break;
		case Phase::name:
			emit(c);
			if (c == '\n') {
				name_.drop_cr();
				start_command();
				end_command();
			} else if (c == ' ') {
				start_command();
				phase_ = Phase::args;
			} else {
				name_.add(c);
			}
			break;
		case Phase::args:
			arg_byte(c);
			break;
		}
	}

	void start_command()
	{
		current_seq_ = ++seq_;
		current_answered_ = false;
		if (name_.is("LOGIN")) {
			kind_ = Kind::login;
			secret_arg_ = 1;
		} else if (name_.is("AUTHENTICATE")) {
			kind_ = Kind::authenticate;
			secret_arg_ = 1;
			allow_equals_ = true;
		} else if (tag_.is("LOGIN")) {
			// "LOGIN user pass" typed without a tag: rejected, but
			// the password is real.
			secret_arg_ = 0;
		}
		if (outstanding_.size() < max_outstanding)
			outstanding_.push_back({ tag_, kind_, current_seq_ });
	}

	void end_command()
	{
		if (kind_ == Kind::authenticate)
			start_exchange(current_seq_, current_answered_);
		reset_command();
		line_start_ = true;
	}

	void command_answered(const Outstanding &cmd, bool ok)
	{
		if (cmd.seq == current_seq_) {
			current_answered_ = true;
			// Answered while its literal was awaited: refused.
			resolve_wait(false);
		}
		answered(cmd.seq);
		if (ok && cmd.kind != Kind::other)
			authenticated_ = true;
	}

	void arg_byte(unsigned char c)
	{
		if (hold_kind_ != Hold::none) {
			hold_byte(c);
			return;
		}
		if (c == '\n') {
			line_feed();
			return;
		}
		if (redacting_) {
			// A CR not followed by LF is part of the secret.
			cr_held_ = c == '\r';
			lex(c);
			return;
		}
		if (!quoted_ && c != ' ' && c != '\r' &&
		    (!in_arg_ || arg_closed_)) {
			int index = args_;
			if (args_ < 100)
				args_++;
			in_arg_ = true;
			arg_closed_ = false;
			if (secret_arg_ >= 0 && index >= secret_arg_) {
				if (c == '{') {
					hold_kind_ = Hold::literal;
					hold_.assign(1, '{');
					tail_.reset();
					tail_.feed(c);
					return;
				}
				if (c == '=' && allow_equals_) {
					hold_kind_ = Hold::equals;
					hold_.assign(1, '=');
					return;
				}
				start_redacting();
				lex(c);
				return;
			}
		}
		emit(c);
		lex(c);
	}

	// Quoting, argument boundaries and the literal header.
	void lex(unsigned char c)
	{
		if (quoted_) {
			if (escaped_)
				escaped_ = false;
			else if (c == '\\')
				escaped_ = true;
			else if (c == '"') {
				quoted_ = false;
				arg_closed_ = true;
			}
			return;
		}
		if (c == ' ') {
			in_arg_ = false;
			arg_closed_ = false;
			tail_.reset();
		} else if (c == '"') {
			quoted_ = true;
			escaped_ = false;
			tail_.reset();
		} else {
			tail_.feed(c);
		}
	}

	void hold_byte(unsigned char c)
	{
		if (hold_kind_ == Hold::equals) {
			if (c == '\n') {
				emit(hold_);
				emit(c);
				hold_kind_ = Hold::none;
				hold_.clear();
				end_command();
				return;
			}
			if (c == '\r' && hold_.size() == 1) {
				hold_ += '\r';
				return;
			}
		} else if (c == '\n') {
			if (tail_.complete()) {
				emit(hold_);
				emit(c);
				hold_kind_ = Hold::none;
				hold_.clear();
				uint64_t size = tail_.size();
				bool sync = tail_.sync();
				tail_.reset();
				start_literal(size, sync, true);
				return;
			}
		} else {
			tail_.feed(c);
			if (tail_.in_progress() && c != '{') {
				hold_ += (char)c;
				return;
			}
		}
		// Not a literal header (or more than "="): the held bytes
		// begin the secret.
		hold_kind_ = Hold::none;
		hold_.clear();
		tail_.reset();
		start_redacting();
		arg_byte(c);
	}

	void line_feed()
	{
		quoted_ = escaped_ = false;
		if (tail_.complete()) {
			uint64_t size = tail_.size();
			bool sync = tail_.sync();
			tail_.reset();
			if (redacting_)
				cr_held_ = false;
			else
				emit('\n');
			start_literal(size, sync, redacting_);
			return;
		}
		if (redacting_ && cr_held_)
			emit('\r');
		emit('\n');
		end_command();
	}

	void start_literal(uint64_t size, bool sync, bool secret)
	{
		literal_size_ = size;
		literal_secret_ = secret;
		if (sync)
			begin_wait(current_seq_);
		else
			begin_literal();
	}

	void begin_literal()
	{
		if (literal_secret_)
			start_redacting();
		begin_raw(literal_size_, literal_secret_);
	}

	void start_redacting()
	{
		if (!redacting_) {
			emit_marker();
			redacting_ = true;
		}
	}

	void reset_command()
	{
		phase_ = Phase::tag;
		tag_.clear();
		name_.clear();
		kind_ = Kind::other;
		secret_arg_ = -1;
		allow_equals_ = false;
		args_ = 0;
		in_arg_ = arg_closed_ = quoted_ = escaped_ = false;
		redacting_ = cr_held_ = false;
		tail_.reset();
		hold_kind_ = Hold::none;
		hold_.clear();
	}

	Phase phase_;
	Word tag_, name_;
	Kind kind_;
	int secret_arg_;	// index of the first secret argument, or -1
	bool allow_equals_;
	int args_;		// arguments started so far
	bool in_arg_, arg_closed_;	// closed: a quoted string or literal ended
	bool quoted_, escaped_;
	bool redacting_;	// the marker is out; the rest is swallowed
	bool cr_held_;		// redacting: a CR that may end the line
	LiteralTail tail_;
	Hold hold_kind_;
	std::string hold_;
	uint64_t literal_size_ = 0;
	bool literal_secret_ = false;
	uint64_t current_seq_ = 0;
	bool current_answered_ = false;
	std::deque<Outstanding> outstanding_;
};

// POP3 and SMTP: "VERB args" lines, replies in command order.
class LineRedactor : public Redactor::Impl {
protected:
	enum class Phase {
		verb,
		rest,		// kept up to the line end
		word,		// kept up to a space: APOP user, AUTH mechanism
		secret,		// the secret may start here
		equals,		// an initial response "=" so far
		redact,		// marker out, the rest swallowed
		number,		// BDAT size
	};
	enum class Kind {
		single, multiline, credential, auth, data, data_end, bdat
	};
	struct Command {
		Kind kind;
		uint64_t seq;
	};

	// After the verb (at a space or the line end): sets kind_, phase_.
	virtual void verb_end(bool space) = 0;
	// At the line end: the command is complete.
	virtual void line_done() = 0;

	const unsigned char *command(const unsigned char *p,
				     const unsigned char *end) override
	{
		while (p < end && mode_ == Mode::command && !line_start_) {
			if (phase_ == Phase::rest || phase_ == Phase::redact) {
				const unsigned char *lf = (const unsigned char *)
					memchr(p, '\n', end - p);
				if (phase_ == Phase::rest)
					emit(p, lf != nullptr ? lf + 1 : end);
				if (lf == nullptr) {
					if (phase_ == Phase::redact)
						cr_held_ = end[-1] == '\r';
					return end;
				}
				if (phase_ == Phase::redact) {
					bool cr = lf > p ? lf[-1] == '\r' : cr_held_;
					if (cr)
						emit('\r');
					emit('\n');
				}
				p = lf + 1;
				end_line();
			} else {
				byte(*p++);
			}
		}
		return p;
	}

	void raw_done() override {}

	void wait_over(bool) override {}

	void finish_command() override
	{
		emit(hold_);
		if (cr_held_)
			emit('\r');
		reset_line();
	}

	size_t held_tokens() const override
	{
		return hold_.size() + (cr_held_ ? 1 : 0);
	}

	// Returns the command's number, 0 if it cannot be followed.
	uint64_t push(Kind kind)
	{
		uint64_t seq = ++seq_;
		if (desync_ || fifo_.size() >= max_outstanding) {
			// Replies could no longer be matched to commands:
			// stop for good (no exchange ends, no passthrough).
			desync_ = true;
			return 0;
		}
		fifo_.push_back({ kind, seq });
		return seq;
	}

	Phase phase_ = Phase::verb;
	Word verb_;
	Kind kind_ = Kind::single;
	bool allow_equals_ = false;
	size_t word_len_ = 0;
	uint64_t number_ = 0;
	unsigned int number_digits_ = 0;
	bool number_ok_ = false;
	bool greeted_ = false;		// the server's first reply was seen
	std::deque<Command> fifo_;

private:
	void byte(unsigned char c)
	{
		switch (phase_) {
		case Phase::verb:
			emit(c);
			if (c == '\n') {
				verb_.drop_cr();
				verb_end(false);
				end_line();
			} else if (c == ' ') {
				verb_end(true);
				if (phase_ == Phase::verb)
					phase_ = Phase::rest;
			} else {
				verb_.add(c);
			}
			break;
		case Phase::word:
			emit(c);
			if (c == '\n')
				end_line();
			else if (c == ' ')
				phase_ = Phase::secret;
			else if (c != '\r')
				word_len_++;
			break;
		case Phase::number:
			emit(c);
			if (c == '\n') {
				end_line();
			} else if (is_digit(c) && number_digits_ < 18) {
				number_ = number_ * 10 + (uint64_t)(c - '0');
				number_digits_++;
			} else if (c == ' ') {
				phase_ = Phase::rest;
			} else if (c != '\r') {
				number_ok_ = false;
				phase_ = Phase::rest;
			}
			break;
		case Phase::secret:
			if (c == '\n' || c == '\r') {
				emit(c);
				if (c == '\n')
					end_line();
			} else if (c == '=' && allow_equals_) {
				hold_.assign(1, '=');
				phase_ = Phase::equals;
			} else {
				emit_marker();
				phase_ = Phase::redact;
			}
			break;
		case Phase::equals:
			if (c == '\n') {
				emit(hold_);
				hold_.clear();
				emit(c);
				end_line();
			} else if (c == '\r' && hold_.size() == 1) {
				hold_ += '\r';
			} else {
				hold_.clear();
				emit_marker();
				phase_ = Phase::redact;
				cr_held_ = c == '\r';
			}
			break;
		case Phase::rest:
		case Phase::redact:
			// command() handles these in bulk.
			break;
		}
	}

	void end_line()
	{
		line_done();
		reset_line();
		line_start_ = true;
	}

	void reset_line()
	{
		phase_ = Phase::verb;
		verb_.clear();
		kind_ = Kind::single;
		allow_equals_ = false;
		word_len_ = 0;
		hold_.clear();
		cr_held_ = false;
		number_ = 0;
		number_digits_ = 0;
		number_ok_ = false;
	}

	std::string hold_;		// "=" or "=\r"
	bool cr_held_ = false;		// redact: a CR that may end the line
	bool desync_ = false;
};

class Pop3Redactor final : public LineRedactor {
protected:
	void verb_end(bool space) override
	{
		if (verb_.is("PASS")) {
			kind_ = Kind::credential;
			if (space)
				phase_ = Phase::secret;
		} else if (verb_.is("APOP")) {
			kind_ = Kind::credential;
			if (space)
				phase_ = Phase::word;
		} else if (verb_.is("AUTH")) {
			// Without a mechanism it lists them.
			kind_ = space ? Kind::auth : Kind::multiline;
			if (space) {
				phase_ = Phase::word;
				allow_equals_ = true;
			}
		} else if (verb_.is("CAPA") || verb_.is("RETR") ||
			   verb_.is("TOP") ||
			   (!space && (verb_.is("LIST") || verb_.is("UIDL")))) {
			kind_ = Kind::multiline;
		}
	}

	void line_done() override
	{
		Kind kind = kind_;
		if (kind == Kind::auth && word_len_ == 0)
			kind = Kind::multiline;
		uint64_t seq = push(kind);
		if (kind == Kind::auth)
			start_exchange(seq, false);
	}

	void server_line(const ServerLine &line) override
	{
		if (body_) {
			if (line.content_length() == 1 && line.first.is("."))
				body_ = false;
			return;
		}
		if (!greeted_) {
			greeted_ = true;
			return;
		}
		bool ok = line.first.is("+OK");
		if ((!ok && !line.first.is("-ERR")) || fifo_.empty())
			return;
		Command cmd = fifo_.front();
		fifo_.pop_front();
		if (ok && cmd.kind == Kind::multiline)
			body_ = true;
		answered(cmd.seq);
		if (ok && (cmd.kind == Kind::credential || cmd.kind == Kind::auth))
			authenticated_ = true;
	}

private:
	bool body_ = false;		// in a multi-line reply
};

class SmtpRedactor final : public LineRedactor {
protected:
	void verb_end(bool space) override
	{
		if (verb_.is("AUTH")) {
			if (space) {
				kind_ = Kind::auth;
				phase_ = Phase::word;
				allow_equals_ = true;
			}
		} else if (verb_.is("DATA")) {
			kind_ = Kind::data;
		} else if (verb_.is("BDAT")) {
			kind_ = Kind::bdat;
			if (space) {
				phase_ = Phase::number;
				number_ok_ = true;
			}
		}
	}

	void line_done() override
	{
		Kind kind = kind_;
		if (kind == Kind::auth && word_len_ == 0)
			kind = Kind::single;
		uint64_t seq = push(kind);
		if (kind == Kind::auth)
			start_exchange(seq, false);
		else if (kind == Kind::data)
			begin_wait(seq);
		else if (kind == Kind::bdat && number_ok_ && number_digits_ > 0)
			begin_raw(number_, false);
	}

	void wait_over(bool accepted) override
	{
		if (accepted) {
			mode_ = Mode::content;
			dot_ = Dot::line_start;
		}
	}

	const unsigned char *content(const unsigned char *p,
				     const unsigned char *end) override
	{
		while (p < end) {
			unsigned char c = *p;
			switch (dot_) {
			case Dot::line_start:
				if (c != '.')
					break;
				emit(c);
				p++;
				dot_ = Dot::dot;
				continue;
			case Dot::dot:
				if (c == '\n')
					return end_of_data(p);
				if (c != '\r')
					break;
				emit(c);
				p++;
				dot_ = Dot::dot_cr;
				continue;
			case Dot::dot_cr:
				if (c == '\n')
					return end_of_data(p);
				break;
			case Dot::mid_line:
				break;
			}
			const unsigned char *lf = (const unsigned char *)
				memchr(p, '\n', end - p);
			if (lf == nullptr) {
				emit(p, end);
				dot_ = Dot::mid_line;
				return end;
			}
			emit(p, lf + 1);
			p = lf + 1;
			dot_ = Dot::line_start;
		}
		return p;
	}

	void server_line(const ServerLine &line) override
	{
		const Word &code_word = line.first;
		if (code_word.size() < 3 || !is_digit(code_word.at(0)) ||
		    !is_digit(code_word.at(1)) || !is_digit(code_word.at(2)))
			return;
		if (code_word.size() > 3 && code_word.at(3) == '-')
			return;		// more lines of this reply follow
		unsigned int code = (unsigned int)(code_word.at(0) - '0') * 100 +
			(unsigned int)(code_word.at(1) - '0') * 10 +
			(unsigned int)(code_word.at(2) - '0');
		if (!greeted_) {
			greeted_ = true;
			return;
		}
		// 334: the AUTH exchange goes on.
		if (code == 334 || fifo_.empty())
			return;
		Command &head = fifo_.front();
		if (head.kind == Kind::data && code == 354) {
			// One more reply comes, after the data.
			head.kind = Kind::data_end;
			if (waiting_for(head.seq))
				resolve_wait(true);
			return;
		}
		Command cmd = head;
		fifo_.pop_front();
		answered(cmd.seq);
		if (cmd.kind == Kind::auth && code == 235)
			authenticated_ = true;
		if (cmd.kind == Kind::data && waiting_for(cmd.seq))
			resolve_wait(false);
	}

private:
	const unsigned char *end_of_data(const unsigned char *p)
	{
		emit(*p);
		mode_ = Mode::command;
		line_start_ = true;
		return p + 1;
	}

	// Where a "." line could be.
	enum class Dot { line_start, dot, dot_cr, mid_line };
	Dot dot_ = Dot::line_start;
};

} // namespace

Redactor::Redactor(RedactProtocol protocol)
{
	switch (protocol) {
	case RedactProtocol::imap:
		impl_.reset(new ImapRedactor());
		break;
	case RedactProtocol::pop3:
		impl_.reset(new Pop3Redactor());
		break;
	case RedactProtocol::smtp:
		impl_.reset(new SmtpRedactor());
		break;
	}
}

Redactor::~Redactor() = default;

void Redactor::client_data(const unsigned char *data, size_t size,
			   std::string &out)
{
	if (!impl_) {
		out.append((const char *)data, size);
		return;
	}
	impl_->client_data(data, size, out);
	// Logged in and nothing left to give: drop all state.
	if (impl_->passthrough() && impl_->drained())
		impl_.reset();
}

void Redactor::server_data(const unsigned char *data, size_t size)
{
	if (impl_)
		impl_->server_data(data, size);
}

void Redactor::flush(std::string &out)
{
	if (impl_)
		impl_->flush(out);
}

void Redactor::finish(std::string &out)
{
	if (impl_) {
		impl_->finish(out);
		impl_.reset();
	}
}

bool Redactor::passthrough() const
{
	return !impl_ || impl_->passthrough();
}

size_t Redactor::held() const
{
	return impl_ ? impl_->held() : 0;
}

} // namespace rawlog_ext
