// POP3 and SMTP: "VERB args" lines, replies in command order. How a verb
// is read differs (redact-pop3.cc, redact-smtp.cc); what follows it does
// not. Internal to the core library.
#ifndef RAWLOG_EXT_REDACT_LINE_HH
#define RAWLOG_EXT_REDACT_LINE_HH

#include "redact-internal.hh"

namespace rawlog_ext {
namespace redact {

class LineRedactor : public Redactor::Impl {
protected:
	enum class Phase {
		verb,
		rest,		// kept up to the line end
		word,		// kept up to a space: APOP user, AUTH mechanism
		secret,		// the rest of the line is a secret (SecretLine)
		params,		// kept, and remembered (BDAT)
	};
	// How a verb byte ends the verb, if it does.
	enum class VerbEnd {
		more,		// part of the verb
		space,		// a space, consumed: the arguments follow
		line,		// the LF
		here,		// this byte is the arguments' first
	};
	enum class Kind {
		single, multiline, credential, auth, data, bdat
	};
	struct Command {
		Kind kind;
		uint64_t seq;
	};

	// A byte of the verb (before it, verb_ has the verb so far).
	virtual VerbEnd verb_byte(unsigned char c) = 0;
	// After the verb: sets kind_ and phase_ (still Phase::verb: the
	// arguments are kept).
	virtual void verb_end(VerbEnd how) = 0;
	// At the line end: the command is complete.
	virtual void line_done() = 0;
	// The commands waiting for replies (the protocol keeps them).
	virtual size_t outstanding() const = 0;
	virtual void enqueue(Kind kind, uint64_t seq) = 0;

	const unsigned char *command(const unsigned char *p,
				     const unsigned char *end) override;
	void raw_done() override {}
	void wait_over(bool) override {}
	void finish_command() override;
	size_t held_tokens() const override
	{
		return phase_ == Phase::secret ? secret_.held() : 0;
	}

	// Returns the command's number, 0 if it cannot be followed.
	uint64_t push(Kind kind);
	// The rest of the line (from the byte being read) is a secret.
	void begin_secret(unsigned char keep)
	{
		phase_ = Phase::secret;
		secret_.start(keep);
	}

	Phase phase_ = Phase::verb;
	Word verb_;
	size_t verb_bytes_ = 0;		// bytes read as the verb, CRs too
	Kind kind_ = Kind::single;
	// Phase::word: AUTH's mechanism (else APOP's user).
	bool mechanism_ = false;
	size_t word_len_ = 0;
	std::string params_;		// Phase::params, bounded
	bool params_long_ = false;
	bool greeted_ = false;		// the server's first reply was seen

private:
	void byte(unsigned char c);
	void word_byte(unsigned char c);
	void end_line();
	void reset_line();

	SecretLine secret_;
	bool desync_ = false;
};

} // namespace redact
} // namespace rawlog_ext

#endif
