#include "redact-line.hh"

namespace rawlog_ext {
namespace redact {

namespace {

// BDAT's parameters: "<size> LAST" and some; longer is no chunk size.
const size_t max_params = 64;

} // namespace

const unsigned char *LineRedactor::command(const unsigned char *p,
					   const unsigned char *end)
{
	while (p < end && mode_ == Mode::command && !line_start_) {
		if (phase_ == Phase::rest) {
			const unsigned char *lf = (const unsigned char *)
				memchr(p, '\n', end - p);
			emit(p, lf != nullptr ? lf + 1 : end);
			if (lf == nullptr)
				return end;
			p = lf + 1;
			end_line();
		} else {
			byte(*p++);
		}
	}
	return p;
}

void LineRedactor::finish_command()
{
	if (phase_ == Phase::secret)
		secret_.end(out());
	reset_line();
}

uint64_t LineRedactor::push(Kind kind)
{
	uint64_t seq = ++seq_;
	if (desync_ || outstanding() >= max_outstanding) {
		// Replies could no longer be matched to commands: stop for
		// good (no exchange ends, no passthrough).
		desync_ = true;
		return 0;
	}
	enqueue(kind, seq);
	return seq;
}

void LineRedactor::byte(unsigned char c)
{
	switch (phase_) {
	case Phase::verb: {
		VerbEnd how = verb_byte(c);
		verb_bytes_++;
		if (how == VerbEnd::more) {
			emit(c);
			return;
		}
		verb_end(how);
		if (how == VerbEnd::here) {
			// The byte is the arguments' first.
			if (phase_ == Phase::verb)
				phase_ = Phase::rest;
			byte(c);
			return;
		}
		emit(c);
		if (how == VerbEnd::line)
			end_line();
		else if (phase_ == Phase::verb)
			phase_ = Phase::rest;
		break;
	}
	case Phase::word:
		word_byte(c);
		break;
	case Phase::secret:
		if (c == '\n') {
			secret_.end(out());
			emit(c);
			end_line();
		} else {
			secret_.feed(c, out());
		}
		break;
	case Phase::params:
		emit(c);
		if (c == '\n') {
			if (!params_.empty() && params_.back() == '\r')
				params_.pop_back();
			end_line();
		} else if (params_.size() < max_params) {
			params_ += (char)c;
		} else {
			params_long_ = true;
		}
		break;
	case Phase::rest:
		// command() takes the rest in bulk; this is the byte that
		// ended the verb.
		emit(c);
		if (c == '\n')
			end_line();
		break;
	}
}

void LineRedactor::word_byte(unsigned char c)
{
	if (c == '\n') {
		emit(c);
		end_line();
		return;
	}
	if (c == ' ') {
		emit(c);
		begin_secret(mechanism_ ? '=' : 0);
		return;
	}
	if (mechanism_ && (c < ' ' || c == 0x7f)) {
		// pop3-login's cmd_auth() ends the mechanism at a CR and
		// takes what follows as the initial response (and a NUL
		// cuts the mechanism's name short). Other control bytes
		// make the line one Dovecot refuses: what follows them is
		// hidden all the same.
		begin_secret('=');
		secret_.feed(c, out());
		return;
	}
	emit(c);
	if (c != '\r')
		word_len_++;
}

void LineRedactor::end_line()
{
	line_done();
	reset_line();
	line_start_ = true;
}

void LineRedactor::reset_line()
{
	phase_ = Phase::verb;
	verb_.clear();
	verb_bytes_ = 0;
	kind_ = Kind::single;
	mechanism_ = false;
	word_len_ = 0;
	params_.clear();
	params_long_ = false;
}

} // namespace redact
} // namespace rawlog_ext
