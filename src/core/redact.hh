// Removes credentials from what a client sends in one IMAP, POP3 or SMTP
// session before it reaches a log. Every byte that is not a secret is
// kept exactly; each secret becomes the marker "***":
//
//   IMAP  tag LOGIN user <password>          (atom, quoted or literal)
//         tag AUTHENTICATE mech [<initial response>]
//         <response lines>                   until the tagged reply
//   POP3  PASS <password> / APOP user <digest>
//         AUTH mech [<initial response>], <response lines>
//   SMTP  AUTH mech [<initial response>], <response lines>
//
// The rule: redaction follows Dovecot's own parsers (2.3: imap-login's
// imap_parser, pop3-login's command reader, lib-smtp's command parser),
// not a stricter grammar of its own. Whatever Dovecot would take as
// credentials is hidden, written however Dovecot accepts it (case, bare
// LF, "PA\rSS" in POP3, empty literals, ...). Where the redactor cannot
// tell -- a line Dovecot refuses, syntax it does not model -- it errs
// towards hiding, never towards copying bytes through unread: a line
// Dovecot refuses has no literal on it (its bytes after the LF are
// commands, as Dovecot reads them), and a secret on a refused line
// (a password in a LOGIN with a bad tag, an AUTH line with a tab) is
// hidden all the same.
//
// A secret runs to the end of its line (IMAP: its command): whatever
// follows a password (a broken client's unquoted password with a space
// in it) goes too. An initial response "=" (empty) is kept, and so is a
// response line that is empty or a lone "*" (the client cancels). A
// literal's header stays ("{6}\r\n***"): it shows the line's shape, at
// the price of the length.
//
// The redactor follows the protocol far enough to never take data for a
// command: IMAP literals that imap-login reads, SMTP DATA up to the "."
// line and BDAT chunks (only where the server offered CHUNKING) are
// streamed through untouched. Whether the client's next bytes are data
// sometimes depends on the server (a synchronizing literal, DATA): those
// bytes are held until the server's answer, at most max_pending of them.
// A client that sends more without waiting is read as sending commands
// from there on: a secret among them is still redacted, data that looks
// like a credential command may be too.
//
// Responses pair with the server's continuation requests (IMAP and POP3
// "+", SMTP 334), in order: each makes the client's next line a
// response, whatever the redactor made of it. A line the client sent
// before its exchange's final reply and that no continuation asked for
// (after an AUTH that failed at once) was a command to Dovecot: it stays
// hidden, as it was logged, but is read again as a command, so that an
// AUTH there has its exchange followed.
//
// Once the server accepts a login (from the client's next line on),
// nothing more is inspected: client_data() only copies. A mail process
// (after login) redacts no client session; its one Redactor is on the
// submission relay leg, where Dovecot is the client.
#ifndef RAWLOG_EXT_REDACT_HH
#define RAWLOG_EXT_REDACT_HH

#include <cstddef>
#include <memory>
#include <string>

namespace rawlog_ext {

enum class RedactProtocol { imap, pop3, smtp };

class Redactor {
public:
	// Client bytes held while the server decides what they are.
	static constexpr size_t max_pending = 8192;
	// held() never exceeds this: max_pending plus the start of one
	// argument that may turn out to be a literal header ("{123+}\r").
	static constexpr size_t max_held = max_pending + 32;

	explicit Redactor(RedactProtocol protocol);
	~Redactor();
	Redactor(const Redactor &) = delete;
	Redactor &operator=(const Redactor &) = delete;

	// Client-to-server bytes. Appends to out what can be logged now;
	// bytes that may still turn out to be (part of) a secret, or whose
	// meaning waits for the server, are held back.
	void client_data(const unsigned char *data, size_t size,
			 std::string &out);
	// Server-to-client bytes, logged as they are: they only move the
	// state on (continuation requests, replies, a successful login).
	void server_data(const unsigned char *data, size_t size);
	// Client bytes that server_data() resolved (say, a literal the
	// server accepted). They would also come out before the next
	// client_data(); call this after server_data() to log them now.
	void flush(std::string &out);
	// End of the session: appends everything still held, a held secret
	// still redacted. Nothing is inspected after this.
	void finish(std::string &out);

	// True once the server accepted a login and the client is at a
	// command boundary: client_data() then only copies.
	bool passthrough() const;
	// Client bytes taken but not given back yet (not counting what
	// flush() would give).
	size_t held() const;

	// The protocols' state machines (redact-internal.hh and
	// redact-{imap,pop3,smtp}.cc); public only so that they can derive
	// from it there.
	struct Impl;

private:
	std::unique_ptr<Impl> impl_;
};

} // namespace rawlog_ext

#endif
