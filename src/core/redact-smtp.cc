// SMTP, as lib-smtp's server reads a client (Dovecot 2.3:
// smtp-command-parser.c, used by submission-login): the command name is
// letters, compared without case, ended by a space, CR or LF; anything
// else there refuses the line (skipped to its LF). AUTH's parameters are
// split at spaces (smtp-server-cmd-auth.c): mechanism, then the initial
// response; response lines are read to the LF (CR LF or a bare LF).
// DATA and BDAT follow the server (smtp-follow.hh): DATA only once it is
// answered 354. A BDAT chunk is data only if the server offered CHUNKING
// and then takes the chunk: submission-login lists the backend's
// CHUNKING in its EHLO reply but its own smtp-server has no CHUNKING
// capability, so it answers "502 Unsupported command" at once and reads
// the would-be chunk as commands. The chunk's bytes wait for the reply
// to BDAT: a 2xx (after the chunk) makes them data, anything else
// commands.
#include "redact-line.hh"
#include "smtp-follow.hh"

namespace rawlog_ext {

using redact::LineRedactor;
using redact::Mode;

namespace {

bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

class SmtpRedactor final : public LineRedactor {
protected:
	VerbEnd verb_byte(unsigned char c) override
	{
		if (is_alpha(c)) {
			verb_.add(c);
			return VerbEnd::more;
		}
		if (c == ' ')
			return VerbEnd::space;
		if (c == '\n')
			return VerbEnd::line;
		// A CR: the line end, if a LF follows; else refused.
		bad_verb_ = c != '\r';
		return VerbEnd::here;
	}

	void verb_end(VerbEnd how) override
	{
		if (verb_.is("AUTH")) {
			if (bad_verb_) {
				// Refused ("AUTH\tPLAIN ..."), hidden all the
				// same.
				begin_secret(0);
			} else if (how != VerbEnd::line) {
				kind_ = Kind::auth;
				phase_ = Phase::word;
				mechanism_ = true;
			}
		} else if (bad_verb_) {
			return;
		} else if (verb_.is("DATA")) {
			kind_ = Kind::data;
		} else if (verb_.is("BDAT")) {
			kind_ = Kind::bdat;
			if (how == VerbEnd::space)
				phase_ = Phase::params;
		}
	}

	void line_done() override
	{
		Kind kind = kind_;
		bad_verb_ = false;
		if (kind == Kind::auth && word_len_ == 0)
			kind = Kind::single;
		uint64_t seq = push(kind);
		uint64_t size;
		bool last;
		if (kind == Kind::auth)
			start_exchange(seq, false);
		else if (kind == Kind::data)
			begin_wait(seq);
		else if (kind == Kind::bdat && chunking_ && !params_long_ &&
			 smtp_bdat_chunk(params_, size, last) && size > 0) {
			chunk_ = size;
			begin_wait(seq);
		}
	}

	void wait_over(bool accepted) override
	{
		if (chunk_ > 0) {
			uint64_t size = chunk_;
			chunk_ = 0;
			if (accepted)
				begin_raw(size, false);
		} else if (accepted) {
			mode_ = Mode::content;
			data_end_.reset();
		}
	}

	const unsigned char *content(const unsigned char *p,
				     const unsigned char *end) override
	{
		bool ended;
		size_t n = data_end_.scan(p, (size_t)(end - p), ended);
		emit(p, p + n);
		if (ended) {
			mode_ = Mode::command;
			line_start_ = true;
		}
		return p + n;
	}

	void server_line(const redact::ServerLine &line) override
	{
		unsigned char start[4];
		size_t n = std::min<size_t>(line.first.size(), sizeof(start));
		for (size_t i = 0; i < n; i++)
			start[i] = line.first.at(i);
		SmtpReplyLine reply = smtp_reply_line(start, n);
		if (reply.code == 0)
			return;
		if (reply.code == 250 && (line.first.is("250-CHUNKING") ||
		    (line.first.is("250") && line.second.is("CHUNKING"))))
			chunking_ = true;
		if (reply.more)
			return;		// more lines of this reply follow
		if (!greeted_) {
			greeted_ = true;
			return;
		}
		// 334: the AUTH exchange goes on, a response is wanted.
		if (reply.code == 334) {
			continuation();
			return;
		}
		final_reply();
		if (replies_.empty())
			return;
		Command cmd = *replies_.front();
		unsigned int index;
		switch (replies_.reply(reply.code, 1, index)) {
		case Replies::Answer::go_ahead:
			if (waiting_for(cmd.seq))
				resolve_wait(true);
			return;
		case Replies::Answer::refused:
			answered(cmd.seq);
			if (waiting_for(cmd.seq))
				resolve_wait(false);
			return;
		case Replies::Answer::none:
		case Replies::Answer::partial:
			return;
		case Replies::Answer::last:
			break;
		}
		bool login = cmd.kind == Kind::auth && reply.code == 235;
		answered(cmd.seq, login);
		if (cmd.kind == Kind::bdat && waiting_for(cmd.seq))
			resolve_wait(reply.code / 100 == 2);
		if (login)
			authenticated_ = true;
	}

	size_t outstanding() const override { return replies_.size(); }
	void enqueue(Kind kind, uint64_t seq) override
	{
		replies_.push(kind == Kind::data ? Replies::Kind::data :
			      Replies::Kind::single, Command{ kind, seq });
	}

private:
	using Replies = SmtpReplies<Command>;

	Replies replies_;		// commands waiting for replies
	SmtpDataEnd data_end_;
	bool bad_verb_ = false;
	// The server offered CHUNKING (EHLO): BDAT chunks may be data.
	bool chunking_ = false;
	uint64_t chunk_ = 0;		// the BDAT chunk waiting for its reply
};

} // namespace

namespace redact {

std::unique_ptr<Redactor::Impl> make_smtp()
{
	return std::unique_ptr<Redactor::Impl>(new SmtpRedactor());
}

} // namespace redact
} // namespace rawlog_ext
