// The Redactor's public side and the machinery all protocols share; the
// protocols' own lexers are in redact-imap.cc, redact-pop3.cc and
// redact-smtp.cc.
#include "redact-internal.hh"

namespace rawlog_ext {
namespace redact {

const char marker[] = "***";
const size_t marker_len = sizeof(marker) - 1;

void SecretLine::feed(unsigned char c, std::string &out)
{
	if (cr_) {
		// Not the line end: part of the secret.
		cr_ = false;
		mark(out);
	}
	if (c == '\r') {
		cr_ = true;
		return;
	}
	if (state_ == State::empty && keep_ != 0 && c == keep_) {
		state_ = State::kept;
		return;
	}
	mark(out);
}

void SecretLine::end(std::string &out)
{
	if (state_ == State::kept)
		out.push_back((char)keep_);
	if (cr_)
		out.push_back('\r');
	state_ = State::empty;
	cr_ = false;
}

void SecretLine::mark(std::string &out)
{
	if (state_ != State::marked) {
		out.append(marker, marker_len);
		state_ = State::marked;
	}
}

void LiteralTail::feed(unsigned char c)
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
			state_ = State::closed;
			return;
		}
		break;
	case State::plus:
		if (c == '}') {
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

} // namespace redact

using redact::Mode;

void Redactor::Impl::client_data(const unsigned char *data, size_t size,
				 std::string &out)
{
	flush(out);
	out_ = &out;
	run(data, data + size);
}

void Redactor::Impl::server_data(const unsigned char *data, size_t size)
{
	const unsigned char *p = data, *end = data + size;
	// Bytes the client sent get resolved into released_.
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

void Redactor::Impl::flush(std::string &out)
{
	if (released_.empty())
		return;
	if (out.empty())
		out.swap(released_);
	else
		out += released_;
	released_.clear();
}

void Redactor::Impl::finish(std::string &out)
{
	flush(out);
	out_ = &out;
	// What was held may hold another wait: each round parses at least
	// one held byte.
	while (mode_ == Mode::wait)
		give_up_waiting();
	if (mode_ == Mode::secret_line)
		response_.end(out);
	else if (mode_ == Mode::command)
		finish_command();
	mode_ = Mode::passthrough;
}

size_t Redactor::Impl::held() const
{
	return pending_.size() + held_tokens() +
		(mode_ == Mode::secret_line ? response_.held() : 0);
}

void Redactor::Impl::begin_raw(uint64_t size, bool secret)
{
	if (size == 0) {
		raw_done();
		return;
	}
	mode_ = Mode::raw;
	raw_left_ = size;
	raw_secret_ = secret;
}

void Redactor::Impl::resolve_wait(bool accepted)
{
	if (mode_ != Mode::wait)
		return;
	mode_ = Mode::command;
	wait_over(accepted);
	rerun_pending();
}

void Redactor::Impl::begin_unsure()
{
	// Reading on from the command's reply was tried, and the fuzzer
	// beside Dovecot's parser kept finding where imap-login had stopped
	// elsewhere (a literal taken or not, a line skipped from a point not
	// known): nothing after this point is read, so nothing can be read
	// wrong. Only clients that pipeline through such ambiguities get
	// here.
	emit_marker();
	mode_ = Mode::raw;
	raw_left_ = UINT64_MAX;
	raw_secret_ = true;
}

void Redactor::Impl::run(const unsigned char *p, const unsigned char *end)
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
			if (pending_.size() + (size_t)(end - p) <= max_pending) {
				pending_.append((const char *)p, end - p);
				return;
			}
			// The client does not wait for the server: read it
			// as sending commands.
			give_up_waiting();
			break;
		case Mode::passthrough:
			emit(p, end);
			return;
		}
	}
}

// At the first byte of a line: true if that changed the mode.
bool Redactor::Impl::begin_line()
{
	line_start_ = false;
	bool unasked_marked = unasked_marked_;
	unasked_marked_ = false;
	if (asked_ > 0 && !authenticated_) {
		asked_--;
		begin_response(true);
		return true;
	}
	if (exchange_ == Exchange::open) {
		unasked_marked_ = unasked_marked;
		begin_response(false);
		return true;
	}
	exchange_ = Exchange::none;
	if (authenticated_) {
		mode_ = Mode::passthrough;
		return true;
	}
	return false;
}

void Redactor::Impl::begin_response(bool asked)
{
	mode_ = Mode::secret_line;
	plus_hidden_ = false;
	response_.start('*');
	// IMAP lines no challenge asked for may be read again as commands
	// whose literal they are: hidden line ends and all, one marker for
	// the run.
	response_whole_ = !asked && server_literals();
	if (response_whole_ && !unasked_marked_) {
		emit_marker();
		unasked_marked_ = true;
	}
	recording_ = !asked && !unasked_lost_;
	if (recording_)
		unasked_.emplace_back();
}

const unsigned char *Redactor::Impl::secret_line(const unsigned char *p,
						 const unsigned char *end)
{
	const unsigned char *start = p;
	while (p < end) {
		unsigned char c = *p++;
		if (c == '\n') {
			if (recording_)
				unasked_add(start, p);
			if (!response_whole_) {
				response_.end(*out_);
				emit('\n');
			} else {
				std::string none;
				response_.end(none);
			}
			mode_ = Mode::command;
			line_start_ = true;
			recording_ = false;
			bool plus = plus_hidden_;
			plus_hidden_ = false;
			if (reread_line_) {
				reread_line_ = false;
				std::string line;
				line.swap(unasked_.back());
				unasked_.pop_back();
				unasked_size_ -= line.size();
				reread(line, true);
				if (plus && mode_ == Mode::wait &&
				    pending_.empty()) {
					// A "+ OK" came while it was hidden:
					// maybe its literal's.
					mode_ = Mode::command;
					wait_over(false);
					begin_unsure();
				}
			}
			return p;
		}
		if (!response_whole_) {
			response_.feed(c, *out_);
		} else {
			std::string none;
			response_.feed(c, none);
		}
	}
	if (recording_)
		unasked_add(start, p);
	return p;
}

void Redactor::Impl::unasked_add(const unsigned char *p,
				 const unsigned char *end)
{
	unasked_size_ += (size_t)(end - p);
	if (unasked_size_ > max_pending) {
		unasked_lost_ = true;
		unasked_drop();
		return;
	}
	unasked_.back().append((const char *)p, end - p);
}

void Redactor::Impl::unasked_drop()
{
	unasked_.clear();
	unasked_size_ = 0;
	recording_ = reread_line_ = false;
}

void Redactor::Impl::answered(uint64_t seq, bool logged_in)
{
	final_reply();
	if (exchange_ != Exchange::open || seq == 0 || seq != exchange_seq_)
		return;
	exchange_ = Exchange::answered;
	// The lines after a literal the client did not wait for, which the
	// server asked for: they start with it, then its line goes on.
	bool taken = unawaited_ && unawaited_taken_;
	uint64_t literal = unawaited_size_;
	unawaited_ = unawaited_taken_ = false;
	if (logged_in || unasked_lost_) {
		// After a login the lines were the mail process's: hidden
		// they stay.
		unasked_drop();
		unasked_lost_ = false;
		return;
	}
	// The line being read, if unasked, is read again at its end.
	std::string current;
	bool in_line = recording_;
	if (in_line) {
		current.swap(unasked_.back());
		unasked_.pop_back();
	}
	std::string lines;
	for (const std::string &line : unasked_)
		lines += line;
	unasked_drop();
	if (!lines.empty() || taken) {
		redact::SecretLine response = response_;
		reread(lines, !taken, taken, literal);
		if (in_line && (mode_ == Mode::raw ||
				(taken && mode_ == Mode::command &&
				 !line_start_))) {
			// The current line's bytes are (in) a literal (LITERAL+)
			// of the lines before: read on as such, and so is the
			// rest of the line.
			reread(current, false);
			return;
		}
		if (in_line) {
			// The current line goes on hidden; it is read again
			// from a command's start.
			bool waited = mode_ == Mode::wait;
			uint64_t seq = wait_seq_;
			uint64_t size = wait_literal();
			while (mode_ == Mode::wait)
				give_up_waiting();
			mode_ = Mode::secret_line;
			line_start_ = false;
			response_ = response;
			if (waited) {
				// The client did not wait for the server's
				// answer to a literal (or DATA): whether the
				// line is data is not known. Its lines are
				// hidden until that command's reply, and read
				// as commands then.
				start_unawaited(seq, size);
				unasked_.push_back(current);
				unasked_size_ += current.size();
				recording_ = true;
				return;
			}
		}
	}
	if (in_line) {
		unasked_.push_back(current);
		unasked_size_ += current.size();
		recording_ = reread_line_ = true;
	}
}

// Lines logged already (hidden), read as commands for their effect on
// the state only.
void Redactor::Impl::reread(const std::string &lines, bool line_start,
			    bool literal, uint64_t size)
{
	std::string discard;
	std::string *real = redirect(&discard);
	if (literal) {
		mode_ = Mode::command;
		line_start_ = false;
		begin_raw(size, true);
	} else if (line_start) {
		mode_ = Mode::command;
		line_start_ = true;
	}
	const unsigned char *p = (const unsigned char *)lines.data();
	run(p, p + lines.size());
	if (mode_ == Mode::wait && !pending_.empty()) {
		// The client did not wait for the server's answer to a
		// literal (or DATA): whether the lines after it are data is
		// up to the server. They were logged hidden; they stay
		// responses of a kind until that command's reply, and are
		// read as commands then.
		uint64_t seq = wait_seq_;
		uint64_t size = wait_literal();
		std::string held;
		held.swap(pending_);
		give_up_waiting();
		start_unawaited(seq, size);
		size_t pos = 0;
		while (pos < held.size() && !unasked_lost_) {
			size_t lf = held.find('\n', pos);
			size_t end = lf == std::string::npos ? held.size() :
				lf + 1;
			unasked_.emplace_back();
			const unsigned char *b =
				(const unsigned char *)held.data();
			unasked_add(b + pos, b + end);
			pos = end;
		}
	}
	redirect(real);
}

void Redactor::Impl::continuation()
{
	// The oldest unasked line was a response after all, unless it is
	// one to be read again (its exchange ended).
	size_t confirmable = unasked_.size() - (reread_line_ ? 1 : 0);
	if (confirmable == 0) {
		asked_++;
		return;
	}
	unasked_size_ -= unasked_.front().size();
	unasked_.pop_front();
	if (unasked_.empty())
		recording_ = false;
}

void Redactor::Impl::give_up_waiting()
{
	mode_ = Mode::command;
	wait_over(false);
	rerun_pending();
}

void Redactor::Impl::rerun_pending()
{
	// run() may start waiting again and refill pending_.
	std::string pending;
	pending.swap(pending_);
	const unsigned char *p = (const unsigned char *)pending.data();
	run(p, p + pending.size());
}

void Redactor::Impl::server_lf()
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

Redactor::Redactor(RedactProtocol protocol)
{
	switch (protocol) {
	case RedactProtocol::imap:
		impl_ = redact::make_imap();
		break;
	case RedactProtocol::pop3:
		impl_ = redact::make_pop3();
		break;
	case RedactProtocol::smtp:
		impl_ = redact::make_smtp();
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
