// POP3, as pop3-login reads a client before login (Dovecot 2.3:
// client_read_cmd_name() in src/pop3-login/client.c): CRs anywhere in the
// command name are dropped, so "PA\rSS" is PASS; the name ends at a space
// (consumed), a LF, a NUL or after 8 bytes (CRs counted), the byte there
// then starting the arguments; it is compared in upper case. PASS and
// APOP take the rest of the line (i_stream_next_line(): a CR before the
// LF dropped); AUTH's mechanism ends at a space, CR or LF (cmd_auth() in
// client-authenticate.c), and what follows on the line is the initial
// response. Response lines are read by client_auth_read_line().
#include "redact-line.hh"

#include <deque>

namespace rawlog_ext {

using redact::LineRedactor;

namespace {

// CLIENT_MAX_CMD_LEN
const size_t max_name = 8;

class Pop3Redactor final : public LineRedactor {
protected:
	VerbEnd verb_byte(unsigned char c) override
	{
		if (c == '\r')
			return VerbEnd::more;
		if (c == ' ')
			return VerbEnd::space;
		if (c == '\n')
			return VerbEnd::line;
		if (c == '\0' || verb_bytes_ >= max_name)
			return VerbEnd::here;
		verb_.add(c);
		return VerbEnd::more;
	}

	void verb_end(VerbEnd how) override
	{
		bool args = how != VerbEnd::line;
		if (verb_.is("PASS")) {
			kind_ = Kind::credential;
			if (args)
				begin_secret(0);
		} else if (verb_.is("APOP")) {
			kind_ = Kind::credential;
			if (args)
				phase_ = Phase::word;
		} else if (verb_.is("AUTH")) {
			// Without a mechanism it lists them.
			kind_ = args ? Kind::auth : Kind::multiline;
			if (args) {
				phase_ = Phase::word;
				mechanism_ = true;
			}
		} else if (verb_.is("CAPA") || verb_.is("RETR") ||
			   verb_.is("TOP") ||
			   (!args && (verb_.is("LIST") || verb_.is("UIDL")))) {
			kind_ = Kind::multiline;
		}
	}

	void line_done() override
	{
		Kind kind = kind_;
		// cmd_auth(): an empty mechanism lists the mechanisms.
		if (kind == Kind::auth && word_len_ == 0)
			kind = Kind::multiline;
		uint64_t seq = push(kind);
		if (kind == Kind::auth)
			start_exchange(seq, false);
	}

	void server_line(const redact::ServerLine &line) override
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
		if (line.first.is("+")) {
			continuation();
			return;
		}
		bool ok = line.first.is("+OK");
		if (!ok && !line.first.is("-ERR"))
			return;
		final_reply();
		if (fifo_.empty())
			return;
		Command cmd = fifo_.front();
		fifo_.pop_front();
		if (ok && cmd.kind == Kind::multiline)
			body_ = true;
		bool login = ok && (cmd.kind == Kind::credential ||
				    cmd.kind == Kind::auth);
		answered(cmd.seq, login);
		if (login)
			authenticated_ = true;
	}

	size_t outstanding() const override { return fifo_.size(); }
	void enqueue(Kind kind, uint64_t seq) override
	{
		fifo_.push_back({ kind, seq });
	}

private:
	bool body_ = false;		// in a multi-line reply
	std::deque<Command> fifo_;	// replies come in command order
};

} // namespace

namespace redact {

std::unique_ptr<Redactor::Impl> make_pop3()
{
	return std::unique_ptr<Redactor::Impl>(new Pop3Redactor());
}

} // namespace redact
} // namespace rawlog_ext
