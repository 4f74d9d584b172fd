// The viewer's protocol tracker (fold.hh).
#include "view/fold.hh"

#include <openssl/evp.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace rawlog_ext {

namespace {

enum BodyKind { no_body = 0, counted_body, data_body };

// POP3: what the reply to a client's command is, once it says "+OK".
enum Pop3Reply {
	pop3_line = 0,	// one line
	pop3_list,	// lines up to ".": LIST, UIDL (no argument), CAPA,
			// AUTH without a mechanism (Dovecot lists them)
	pop3_message,	// a dot-stuffed message up to ".": RETR, TOP
	pop3_auth,	// AUTH <mechanism>: "+ " challenges, then one line
};

// Bytes outside any body: the IMAP tag map is dropped when it grows past
// this (a client that never waits for completions).
constexpr size_t max_tags = 4096;

std::string upper_word(const std::string &s, size_t from, size_t *end_r)
{
	size_t e = s.find(' ', from);
	if (e == std::string::npos)
		e = s.size();
	std::string w = s.substr(from, e - from);
	for (char &c : w)
		c = (char)toupper((unsigned char)c);
	if (end_r != nullptr)
		*end_r = e;
	return w;
}

bool ends_with(const std::string &s, const char *suffix)
{
	size_t n = strlen(suffix);
	return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// An IMAP literal header ending the line: "{N}", "{N+}", "~{N}"
// (literal8). *sync_r: whether the sender waits for "+".
bool literal_at_end(const std::string &text, uint64_t *size_r, bool *sync_r)
{
	if (!ends_with(text, "}"))
		return false;
	size_t i = text.size() - 1;
	bool plus = i > 0 && text[i - 1] == '+';
	if (plus)
		i--;
	size_t digits_end = i;
	while (i > 0 && isdigit((unsigned char)text[i - 1]))
		i--;
	size_t digits = digits_end - i;
	if (digits == 0 || digits > 19 || i == 0 || text[i - 1] != '{')
		return false;
	*size_r = strtoull(text.c_str() + i, nullptr, 10);
	*sync_r = !plus;
	return true;
}

int64_t micros_between(const struct timeval &a, const struct timeval &b)
{
	return ((int64_t)b.tv_sec - a.tv_sec) * 1000000 +
		((int64_t)b.tv_usec - a.tv_usec);
}

} // namespace

ViewProtocol view_protocol_from_name(const std::string &path,
				     bool *client_out_r)
{
	size_t slash = path.rfind('/');
	std::string base = path.substr(slash == std::string::npos ? 0 : slash + 1);
	// "<YYYYMMDD>T<HHMMSS>Z_<service>_...": the service is the 2nd field.
	size_t a = base.find('_');
	size_t b = a == std::string::npos ? a : base.find('_', a + 1);
	std::string service = b == std::string::npos ? "" :
		base.substr(a + 1, b - a - 1);
	if (client_out_r != nullptr)
		*client_out_r = ends_with(service, "-relay") ||
			ends_with(service, "-proxy");
	auto starts = [&](const char *p) {
		return service.compare(0, strlen(p), p) == 0;
	};
	if (starts("imap"))
		return ViewProtocol::imap;
	if (starts("pop3"))
		return ViewProtocol::pop3;
	if (starts("submission") || starts("lmtp") || starts("smtp"))
		return ViewProtocol::smtp;
	return ViewProtocol::unknown;
}

struct ViewTracker::Side {
	Direction direction;
	bool client;
	std::string line;		// the current line, up to max_line
	bool cmd_start = true;		// the next line starts a command/reply
	bool continued = false;		// the next bytes continue a piece
	bool after_literal = false;	// the next line follows a literal
	bool sniffed = false;
	std::string tag, name;		// IMAP client: the current command
	// The body being read.
	int body = no_body;
	bool begun = false;		// its first byte came (body_begin out)
	const char *what = "";
	uint64_t left = 0;		// counted_body: bytes still to come
	uint64_t size = 0;		// bytes hashed
	int dot = 0;			// data_body: 0 mid-line, 1 line start,
					// 2 ".", 3 ".\r"
	std::string body_line;
	EVP_MD_CTX *md = nullptr;

	Side(Direction d, bool c) : direction(d), client(c) {}
	~Side() { EVP_MD_CTX_free(md); }
};

ViewTracker::ViewTracker(ViewProtocol protocol, Direction client_direction,
			 Emit emit, bool body_lines)
	: protocol_(protocol), client_dir_(client_direction),
	  emit_(std::move(emit)), body_lines_(body_lines)
{
	for (int d = 0; d < 2; d++)
		side_[d].reset(new Side((Direction)d,
					(Direction)d == client_direction));
}

ViewTracker::~ViewTracker() = default;

void ViewTracker::feed(Direction direction, bool has_time,
		       const struct timeval &tv, const char *data, size_t size)
{
	has_time_ = has_time;
	now_ = tv;
	Side &s = *side_[(int)direction];
	const char *p = data, *end = data + size;
	while (p < end) {
		if (s.body != no_body) {
			p = body_bytes(s, p, end);
			continue;
		}
		const char *lf = (const char *)memchr(p, '\n', end - p);
		size_t n = (lf != nullptr ? lf + 1 : end) - p;
		size_t room = max_line - s.line.size();
		if (n > room) {
			s.line.append(p, room);
			p += room;
			line(s, false);
			continue;
		}
		s.line.append(p, n);
		p += n;
		if (lf != nullptr)
			line(s, true);
	}
}

void ViewTracker::flush()
{
	for (auto &sp : side_) {
		Side &s = *sp;
		if (s.body != no_body) {
			if (s.begun)
				end_body(s, false);
			s.body = no_body;
		}
		if (!s.line.empty())
			line(s, false);
	}
}

void ViewTracker::line(Side &s, bool newline)
{
	ViewItem item;
	item.direction = s.direction;
	item.client = s.client;
	item.newline = newline;
	item.after_literal = s.after_literal;
	s.after_literal = false;
	item.text.swap(s.line);
	if (newline) {
		item.text.pop_back();
		if (!item.text.empty() && item.text.back() == '\r')
			item.text.pop_back();
	}
	// The rest of a line handed out in pieces: no command starts here,
	// but a literal header may end it.
	const bool piece = s.continued;
	s.continued = !newline;
	if (piece)
		s.cmd_start = false;
	else if (!s.sniffed) {
		s.sniffed = true;
		sniff(item.text, s.client);
	}
	if (s.client)
		client_line(s, item);
	else
		server_line(s, item);
	if (piece && newline && s.body == no_body)
		s.cmd_start = true;
	emit_(item);
	// A body starts after its line; an empty one ends at once.
	if (s.body == counted_body && s.left == 0) {
		ViewItem begin;
		begin.kind = ViewItem::Kind::body_begin;
		begin.direction = s.direction;
		begin.client = s.client;
		begin.what = s.what;
		emit_(begin);
		end_body(s, true);
	}
}

void ViewTracker::sniff(const std::string &text, bool client)
{
	if (protocol_ != ViewProtocol::unknown)
		return;
	if (!client) {
		if (text.compare(0, 4, "* OK") == 0 ||
		    text.compare(0, 9, "* PREAUTH") == 0)
			protocol_ = ViewProtocol::imap;
		else if (text.compare(0, 3, "+OK") == 0)
			protocol_ = ViewProtocol::pop3;
		else if (text.size() >= 4 && isdigit((unsigned char)text[0]) &&
			 isdigit((unsigned char)text[1]) &&
			 isdigit((unsigned char)text[2]) &&
			 (text[3] == ' ' || text[3] == '-'))
			protocol_ = ViewProtocol::smtp;
		return;
	}
	size_t e;
	std::string first = upper_word(text, 0, &e);
	if (first == "EHLO" || first == "HELO" || first == "LHLO")
		protocol_ = ViewProtocol::smtp;
	else if (first == "USER" || first == "CAPA" || first == "APOP" ||
		 first == "STLS")
		protocol_ = ViewProtocol::pop3;
	else if (e < text.size()) {
		std::string second = upper_word(text, e + 1, nullptr);
		for (const char *c : { "CAPABILITY", "LOGIN", "AUTHENTICATE",
				       "STARTTLS", "ID", "NOOP", "ENABLE" })
			if (second == c)
				protocol_ = ViewProtocol::imap;
	}
}

void ViewTracker::client_line(Side &s, ViewItem &item)
{
	const std::string &t = item.text;
	if (t == "***")
		item.redacted = 0;
	size_t e = 0;
	switch (protocol_) {
	case ViewProtocol::imap: {
		if (s.cmd_start) {
			std::string tag = t.substr(0, t.find(' '));
			s.tag = tag;
			s.name.clear();
			if (tag.size() < t.size())
				s.name = upper_word(t, tag.size() + 1, nullptr);
			// A line with one word is no command (DONE, a SASL
			// response): its "tag" would never complete.
			if (!s.name.empty() && has_time_) {
				if (tags_.size() >= max_tags)
					tags_.clear();
				tags_[tag] = now_;
			}
		}
		if ((s.name == "LOGIN" || s.name == "AUTHENTICATE") &&
		    ends_with(t, " ***"))
			item.redacted = t.size() - 3;
		uint64_t n;
		bool sync;
		if (item.newline && literal_at_end(t, &n, &sync)) {
			s.cmd_start = false;
			// LOGIN's literals are a user name and a password
			// (or the redactor's "***" in place of its bytes,
			// whatever the header says): kept on their lines.
			if (s.name == "LOGIN")
				return;
			if (sync)
				sync_tag_ = s.tag;
			begin_body(s, counted_body, n, "literal");
		} else {
			s.cmd_start = true;
		}
		return;
	}
	case ViewProtocol::pop3: {
		if (!s.cmd_start)
			return;
		if (pop3_sasl_) {
			// A SASL response to the server's "+ " challenge.
			pop3_sasl_ = false;
			return;
		}
		std::string w = upper_word(t, 0, &e);
		// Sent before the server's first line: whether it is one only
		// pop3-login answers (this log starts before the login, so
		// that line is the greeting).
		if (!pop3_server_spoke_ && pop3_pending_.empty())
			pop3_login_cmd_ = w == "USER" || w == "PASS" ||
				w == "APOP" || w == "AUTH" || w == "STLS" ||
				w == "XCLIENT";
		if ((w == "PASS" || w == "APOP" || w == "AUTH") &&
		    ends_with(t, " ***"))
			item.redacted = t.size() - 3;
		const bool arg = t.find_first_not_of(' ', e) != std::string::npos;
		int reply = pop3_line;
		if (w == "RETR" || w == "TOP")
			reply = pop3_message;
		else if (w == "CAPA" || (!arg && (w == "LIST" || w == "UIDL" ||
						  w == "AUTH")))
			reply = pop3_list;
		else if (w == "AUTH")
			reply = pop3_auth;
		if (pop3_pending_.size() >= max_tags)
			pop3_pending_.clear();
		pop3_pending_.push_back(reply);
		return;
	}
	case ViewProtocol::smtp: {
		if (!s.cmd_start)
			return;
		std::string w = upper_word(t, 0, &e);
		if (w == "AUTH" && ends_with(t, " ***"))
			item.redacted = t.size() - 3;
		commands_++;
		// A body starts after its command's line end, as IMAP's
		// literals and POP3's messages do: the first piece of a long
		// line ("DATA" and spaces) is no DATA command.
		if (!item.newline)
			return;
		if (w == "DATA" && t.find_first_not_of(' ', e) == std::string::npos) {
			data_reply_ = (int64_t)commands_ - 1;
			begin_body(s, data_body, 0, "message");
		} else if (w == "BDAT" && e < t.size()) {
			const char *p = t.c_str() + e + 1;
			char *q;
			errno = 0;
			unsigned long long n = strtoull(p, &q, 10);
			if (q != p && isdigit((unsigned char)*p) && errno == 0 &&
			    (*q == '\0' || *q == ' ') && n > 0)
				begin_body(s, counted_body, n, "BDAT chunk");
		}
		return;
	}
	case ViewProtocol::unknown:
		return;
	}
}

void ViewTracker::server_line(Side &s, ViewItem &item)
{
	const std::string &t = item.text;
	Side &client = *side_[(int)client_dir_];
	switch (protocol_) {
	case ViewProtocol::imap: {
		if (s.cmd_start) {
			size_t e;
			std::string tag = t.substr(0, t.find(' '));
			std::string status = tag.size() < t.size() ?
				upper_word(t, tag.size() + 1, &e) : "";
			const bool done = status == "OK" || status == "NO" ||
				status == "BAD";
			item.failure = status == "NO" || status == "BAD";
			if (done && tag != "*" && tag != "+") {
				auto it = tags_.find(tag);
				if (it != tags_.end()) {
					if (has_time_)
						item.latency_us =
							micros_between(it->second, now_);
					tags_.erase(it);
				}
				// Refused before its synchronizing literal
				// came: the client does not send it.
				if (tag == sync_tag_ && client.body != no_body &&
				    !client.begun) {
					client.body = no_body;
					client.cmd_start = true;
				}
				if (tag == sync_tag_)
					sync_tag_.clear();
			}
		}
		uint64_t n;
		bool sync;
		if (item.newline && literal_at_end(t, &n, &sync)) {
			s.cmd_start = false;
			begin_body(s, counted_body, n, "literal");
		} else {
			s.cmd_start = true;
		}
		return;
	}
	case ViewProtocol::pop3: {
		if (s.cmd_start) {
			if (pop3_in_list_) {
				// A multi-line reply's line ("." ends it; a
				// line starting with "." is stuffed: "..").
				if (t == ".")
					pop3_in_list_ = false;
				return;
			}
			item.failure = t.compare(0, 4, "-ERR") == 0;
			const bool first = !pop3_server_spoke_;
			pop3_server_spoke_ = true;
			// Nothing asked (the greeting; in a post-login log the
			// reply to the login process's PASS): one line.
			if (pop3_pending_.empty())
				return;
			// The same when the client did not wait for it: a log
			// from the connection's start (its first command one of
			// before the login) opens with the greeting, a post-login
			// log with pop3's "+OK Logged in." (the commands pipelined
			// with PASS come before it). A log with neither (pop3 run
			// standalone) starts with the first command's reply.
			if (first && (pop3_login_cmd_ || t == "+OK Logged in."))
				return;
			const int reply = pop3_pending_.front();
			if (reply == pop3_auth &&
			    (t == "+" || t.compare(0, 2, "+ ") == 0)) {
				pop3_sasl_ = true;	// the client answers next
				return;
			}
			pop3_pending_.pop_front();
			if (t.compare(0, 3, "+OK") == 0 &&
			    (reply == pop3_message || reply == pop3_list))
				pop3_next_ = reply;
		}
		// What follows the "+OK" starts after its line's end (a long
		// line comes in pieces).
		if (item.newline && pop3_next_ != pop3_line) {
			if (pop3_next_ == pop3_message)
				begin_body(s, data_body, 0, "message");
			else
				pop3_in_list_ = true;
			pop3_next_ = pop3_line;
		}
		return;
	}
	case ViewProtocol::smtp: {
		const bool code = t.size() >= 3 && isdigit((unsigned char)t[0]) &&
			isdigit((unsigned char)t[1]) && isdigit((unsigned char)t[2]);
		if (!code)
			return;
		item.failure = t[0] == '4' || t[0] == '5';
		if (t.size() > 3 && t[3] != ' ')
			return;		// "250-": more lines of the reply
		if (!greeted_) {
			greeted_ = true;
			return;
		}
		// More replies than commands (LMTP: one per recipient after
		// the body) answer nothing new.
		if (replies_ >= commands_)
			return;
		if ((int64_t)replies_++ != data_reply_)
			return;
		data_reply_ = -1;
		if (t.compare(0, 3, "354") != 0 && client.body == data_body &&
		    !client.begun) {
			// DATA refused: what the client sends next are commands.
			client.body = no_body;
		}
		return;
	}
	case ViewProtocol::unknown:
		item.failure = t.compare(0, 4, "-ERR") == 0 ||
			(t.size() >= 3 && (t[0] == '4' || t[0] == '5') &&
			 isdigit((unsigned char)t[1]) && isdigit((unsigned char)t[2]));
		return;
	}
}

void ViewTracker::begin_body(Side &s, int kind, uint64_t size,
			     const char *what)
{
	s.body = kind;
	s.begun = false;
	s.what = what;
	s.left = size;
	s.size = 0;
	s.dot = 1;
	s.body_line.clear();
	if (s.md == nullptr)
		s.md = EVP_MD_CTX_new();
	if (s.md == nullptr || EVP_DigestInit_ex(s.md, EVP_sha256(), nullptr) != 1)
		abort();
}

const char *ViewTracker::body_bytes(Side &s, const char *p, const char *end)
{
	if (!s.begun) {
		s.begun = true;
		if (s.client)
			sync_tag_.clear();
		ViewItem item;
		item.kind = ViewItem::Kind::body_begin;
		item.direction = s.direction;
		item.client = s.client;
		item.what = s.what;
		emit_(item);
	}
	// Wire bytes to the display lines, message bytes to the hash.
	auto wire = [&](const char *q, size_t n) {
		while (body_lines_ && n > 0) {
			const char *lf = (const char *)memchr(q, '\n', n);
			size_t k = lf != nullptr ? (size_t)(lf - q) + 1 : n;
			size_t room = max_line - s.body_line.size();
			if (k > room) {
				s.body_line.append(q, room);
				q += room;
				n -= room;
				body_line(s, false);
				continue;
			}
			s.body_line.append(q, k);
			q += k;
			n -= k;
			if (lf != nullptr)
				body_line(s, true);
		}
	};
	auto hash = [&](const char *q, size_t n) {
		EVP_DigestUpdate(s.md, q, n);
		s.size += n;
	};
	if (s.body == counted_body) {
		size_t n = (uint64_t)(end - p) < s.left ? (size_t)(end - p) :
			(size_t)s.left;
		hash(p, n);
		wire(p, n);
		s.left -= n;
		p += n;
		if (s.left == 0)
			end_body(s, true);
		return p;
	}
	// DATA, POP3 RETR/TOP: dot-stuffed up to the "." line.
	while (p < end) {
		switch (s.dot) {
		case 0: {
			const char *lf = (const char *)memchr(p, '\n', end - p);
			const char *q = lf != nullptr ? lf + 1 : end;
			hash(p, q - p);
			wire(p, q - p);
			p = q;
			if (lf != nullptr)
				s.dot = 1;
			break;
		}
		case 1:
			if (*p == '.') {
				s.dot = 2;
				p++;
			} else {
				s.dot = 0;
			}
			break;
		case 2:
			if (*p == '\r') {
				s.dot = 3;
				p++;
				break;
			}
			if (*p == '\n')
				goto done;
			wire(".", 1);	// a stuffed dot: not the message's
			s.dot = 0;
			break;
		case 3:
			if (*p == '\n')
				goto done;
			wire(".\r", 2);
			hash("\r", 1);
			s.dot = 0;
			break;
		}
	}
	return p;
done:
	p++;
	end_body(s, true);
	{
		ViewItem item;
		item.direction = s.direction;
		item.client = s.client;
		item.text = ".";
		emit_(item);
	}
	if (s.client)
		commands_++;	// SMTP: the "." has its reply
	return p;
}

void ViewTracker::body_line(Side &s, bool newline)
{
	ViewItem item;
	item.direction = s.direction;
	item.client = s.client;
	item.body = true;
	item.newline = newline;
	item.text.swap(s.body_line);
	if (newline) {
		item.text.pop_back();
		if (!item.text.empty() && item.text.back() == '\r')
			item.text.pop_back();
	}
	emit_(item);
}

void ViewTracker::end_body(Side &s, bool complete)
{
	if (s.body == data_body && !complete && body_lines_) {
		// A "." or ".\r" held at the end: the log ends inside.
		if (s.dot == 2)
			s.body_line += ".";
		else if (s.dot == 3)
			s.body_line += ".\r";
	}
	if (!s.body_line.empty())
		body_line(s, false);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	if (EVP_DigestFinal_ex(s.md, md, &len) != 1)
		abort();
	ViewItem item;
	item.kind = ViewItem::Kind::body_end;
	item.direction = s.direction;
	item.client = s.client;
	item.what = s.what;
	item.size = s.size;
	item.complete = complete;
	static const char hex[] = "0123456789abcdef";
	for (unsigned int i = 0; i < len; i++) {
		item.sha256 += hex[md[i] >> 4];
		item.sha256 += hex[md[i] & 15];
	}
	s.after_literal = strcmp(s.what, "literal") == 0;
	s.body = no_body;
	s.begun = false;
	emit_(item);
}

} // namespace rawlog_ext
