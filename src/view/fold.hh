// The viewer's protocol tracker (issue #17 item 3): follows one IMAP,
// POP3 or SMTP/LMTP conversation far enough to tell commands and replies
// from bodies (IMAP literals both ways, SMTP DATA up to its "." line,
// BDAT chunks, the message after a POP3 "+OK" to RETR or TOP up to its
// "." line), to pair IMAP tags with their tagged completion and to
// spot the redactor's "***". It cuts the byte stream into display items;
// renderers (render.hh) decide what to show. Memory stays bounded: a line
// longer than max_line is handed out in pieces, bodies are hashed as they
// pass.
#ifndef RAWLOG_EXT_VIEW_FOLD_HH
#define RAWLOG_EXT_VIEW_FOLD_HH

#include "core/format.hh"

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <sys/time.h>

namespace rawlog_ext {

enum class ViewProtocol { unknown, imap, pop3, smtp };

// From a log file's name ("<time>_<service>_<session>_..."): imap*, pop3*,
// submission*, lmtp*, smtp*; unknown otherwise (the tracker then guesses
// from the first line). *client_out_r: whether the client's bytes are the
// ".out" file (a leg Dovecot opens: "-relay", "-proxy").
ViewProtocol view_protocol_from_name(const std::string &path,
				     bool *client_out_r);

struct ViewItem {
	enum class Kind {
		line,		// a line (or a piece of one) of a direction
		body_begin,	// a body starts: its lines follow (body = true)
		body_end,	// ... and ends here: size and sha256
	};
	Kind kind = Kind::line;
	Direction direction = Direction::in;
	bool client = true;
	// line: the bytes without their line end.
	std::string text;
	bool newline = true;	// the line ended with LF
	bool body = false;	// a line of a body (literal, DATA, BDAT, RETR/TOP)
	bool failure = false;	// NO/BAD/-ERR/4xx/5xx
	// Offset of a redaction marker "***" in text, or npos.
	size_t redacted = std::string::npos;
	// A tagged IMAP completion: its command's latency in microseconds
	// (-1: unknown, no timestamps or no command seen).
	int64_t latency_us = -1;
	// The rest of a line whose IMAP literal just ended (often only the
	// command's line end: renderers may leave that empty line out).
	bool after_literal = false;
	// body_begin / body_end:
	const char *what = "";	// "literal", "message", "BDAT chunk"
	uint64_t size = 0;	// body_end: its bytes (DATA, RETR: unstuffed)
	std::string sha256;	// body_end: hex, all 64 digits
	bool complete = true;	// body_end: false if the log ended inside
};

class ViewTracker {
public:
	using Emit = std::function<void(const ViewItem &)>;
	static constexpr size_t max_line = 65536;

	// body_lines: whether bodies' lines are handed out (not needed
	// when every body is folded: that is the fast path).
	ViewTracker(ViewProtocol protocol, Direction client_direction,
		    Emit emit, bool body_lines = true);
	~ViewTracker();
	ViewTracker(const ViewTracker &) = delete;
	ViewTracker &operator=(const ViewTracker &) = delete;

	void feed(Direction direction, bool has_time, const struct timeval &tv,
		  const char *data, size_t size);
	// Hands out what is held (partial lines, an unfinished body).
	void flush();

	ViewProtocol protocol() const { return protocol_; }

	struct Side;

private:
	void line(Side &s, bool newline);
	void client_line(Side &s, ViewItem &item);
	void server_line(Side &s, ViewItem &item);
	void begin_body(Side &s, int kind, uint64_t size, const char *what);
	const char *body_bytes(Side &s, const char *p, const char *end);
	void end_body(Side &s, bool complete);
	void body_line(Side &s, bool newline);
	void sniff(const std::string &line, bool client);

	ViewProtocol protocol_;
	Direction client_dir_;
	Emit emit_;
	bool body_lines_;
	std::unique_ptr<Side> side_[2];
	bool has_time_ = false;
	struct timeval now_ = { 0, 0 };
	// IMAP: tags of commands not yet completed, with their time.
	std::map<std::string, struct timeval> tags_;
	// The client's synchronizing literal, until its first byte comes: a
	// tagged reply to its command then means the server refused it.
	std::string sync_tag_;
	// SMTP: client commands sent / server final replies read (not the
	// greeting); DATA's reply number while its body is unconfirmed.
	uint64_t commands_ = 0, replies_ = 0;
	bool greeted_ = false;
	int64_t data_reply_ = -1;
	// POP3: the replies the client's commands still wait for, in order
	// (Pop3Reply in fold.cc: what "+OK" is followed by); whether the
	// server is inside a multi-line reply that is no message (LIST,
	// UIDL, CAPA) and whether the client's next line answers a SASL
	// challenge; pop3_next_: what follows the "+OK" line being read;
	// whether the server's first line (a greeting or "+OK Logged in.":
	// no reply) was read, and whether the client's first command came
	// before it and is one of before the login.
	std::deque<int> pop3_pending_;
	int pop3_next_ = 0;
	bool pop3_in_list_ = false;
	bool pop3_sasl_ = false;
	bool pop3_server_spoke_ = false;
	bool pop3_login_cmd_ = false;
};

} // namespace rawlog_ext

#endif
