// IMAP, as imap-login reads a client before login (Dovecot 2.3: the tag
// and command name as imap_parser_read_tag() / read_command_name() take
// them (a byte 2.4 reads otherwise makes a literal on the line unsure), the arguments as imap_parser_read_args() with no flags, i.e. no
// literal8; AUTHENTICATE as cmd_authenticate() reads it: mechanism, then
// the rest of the line as the initial response, literals not parsed; ID
// as cmd_id() reads it).
//
// A line imap-login refuses (bad tag or name, a syntax error, a line or
// literal too long) is skipped by it up to the next LF: a literal header
// on it is not one, the next bytes are commands. The lexer goes on
// reading such a line loosely to its LF, so that a password on it is
// still hidden; on a refused LOGIN everything from where the syntax
// breaks is. If a refused LOGIN's secret ends like a literal header, the
// bytes the client meant as the literal are read as commands (as
// imap-login does) but hidden.
#include "redact-internal.hh"

#include <deque>

namespace rawlog_ext {

using redact::Mode;
using redact::Word;

namespace {

// imap-login's parser limits (IMAP_LOGIN_MAX_LINE_LENGTH, IMAP_TAG_MAX_LEN).
const uint64_t max_line = 8192;
// IMAP_LOGIN_LIST_COUNT_LIMIT (imap-login-client.h): lists per command.
const unsigned int imap_login_list_limit = 1;
const size_t max_tag = 126;

// imap_parser_read_next_atom(): what a tag (or, with '+', a command name)
// may hold.
bool is_tag_char(unsigned char c, bool name)
{
	switch (c) {
	case '(': case ')': case '{': case '%': case '*': case '"':
	case '\\': case ']':
		return false;
	case '+':
		return name;
	default:
		return c >= ' ' && c < 0x80;
	}
}

// is_valid_atom_char() without IMAP_PARSE_FLAG_ATOM_ALLCHARS.
bool is_atom_char(unsigned char c)
{
	return !(c == '(' || c == ')' || c == '{' || c == '"' || c <= ' ' ||
		 c >= 0x7f);
}

// Secret: LOGIN's second argument and everything after it,
// AUTHENTICATE's initial response.
class ImapRedactor final : public Redactor::Impl {
public:
	ImapRedactor() { reset_command(); }

protected:
	const unsigned char *command(const unsigned char *p,
				     const unsigned char *end) override
	{
		while (p < end && mode_ == Mode::command && !line_start_) {
			if (shadow_ == 0) {
				byte(*p++);
				continue;
			}
			// Read as commands, as imap-login does, but hidden.
			if (!shadow_marked_) {
				emit_marker();
				shadow_marked_ = true;
			}
			std::string *real = redirect(&shadowed_);
			byte(*p++);
			redirect(real);
			shadowed_.clear();
			shadow_--;
		}
		return p;
	}

	void server_line(const redact::ServerLine &line) override
	{
		if (line.first.at(0) == '+') {
			// Continuation: a waited-for literal may come. A SASL
			// challenge is base64 ("+ " when empty), never "OK":
			// imap-login's parser sends "+ OK" for a literal, even
			// one the lexer does not take for one (its line may
			// be refused later).
			if (mode_ == Mode::wait)
				resolve_wait(true);
			else if (!line.second.is("OK"))
				continuation();
			else if (literal_taken())
				// Hidden lines after a literal the client did
				// not wait for: it is taken.
				;
			else if (mode_ == Mode::secret_line)
				plus_while_hidden();
			else if (mode_ == Mode::command &&
				 (lex_ == Lex::lit_closed ||
				  lex_ == Lex::lit_cr))
				// imap-login's parser asks for the literal
				// once it has "{8}", before the CRLF.
				plus_early_ = true;
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
		// Whatever a "+" before it was for (a literal the lexer
		// did not take for one), the command is over.
		final_reply();
		for (auto it = outstanding_.begin(); it != outstanding_.end();
		     ++it) {
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
		line_size_ += literal_size_;
		lex_ = Lex::between;
		cr_held_ = false;
		arg_len_ = literal_size_;
		arg_done();
	}

	void finish_command() override
	{
		if (lex_ == Lex::auth_ir) {
			ir_.end(out());
		} else {
			if (secret_ == Secret::held)
				start_redacting();
			if (secret_ == Secret::redacting && cr_held_)
				emit('\r');
		}
		reset_command();
	}

	size_t held_tokens() const override
	{
		return hold_.size() + (cr_held_ ? 1 : 0) +
			(lex_ == Lex::auth_ir ? ir_.held() : 0);
	}

	bool server_literals() const override { return true; }
	uint64_t wait_literal() const override { return literal_size_; }

private:
	enum class Lex {
		tag, name,
		auth_mech, auth_ir,		// AUTHENTICATE
		between,			// before an argument
		cr,				// a CR between arguments
		atom, quoted, quoted_escape,
		tilde,				// '~' starting an argument
		lit_size, lit_plus,		// "{123" and "{123+"
		lit_closed, lit_cr,		// "{123}" and "{123}\r"
		skip,				// rejected: up to the LF
	};
	enum class Kind { other, login, authenticate, id };
	enum class Arg { atom, quoted, literal, list };
	// cmd_id() (imap-login-cmd-id.c) reads ID's arguments one at a
	// time: NIL or a list of string keys (at most 30 bytes) and nstring
	// values. After NIL, the list's end or the first other argument it
	// skips the rest of the line unparsed: no literal there.
	enum class Id { list, key, value, done };
	struct Outstanding {
		Word tag;
		Kind kind;
		uint64_t seq;
	};

	void byte(unsigned char c)
	{
		uint64_t pos = line_size_++;
		if (c == '\n' && (rejected_ || (lex_ != Lex::lit_closed &&
						lex_ != Lex::lit_cr))) {
			line_feed();
			return;
		}
		switch (lex_) {
		case Lex::tag:
			tag_byte(c);
			break;
		case Lex::name:
			name_byte(c);
			break;
		case Lex::auth_mech:
			if (c == ' ' || c == '\r') {
				// An empty mechanism is refused; what follows
				// is hidden all the same.
				if (mech_len_ == 0)
					rejected_ = true;
				lex_ = Lex::auth_ir;
				ir_.start('=');
				// A CR ends the mechanism but not the line: it
				// is the line end or the response's first byte.
				if (c == ' ')
					emit(c);
				else
					ir_.feed(c, out());
			} else {
				emit(c);
				mech_len_++;
			}
			break;
		case Lex::auth_ir:
			ir_.feed(c, out());
			break;
		case Lex::between:
			if (c == ' ') {
				out_byte(c);
			} else if (c == '\r') {
				out_byte(c);
				lex_ = Lex::cr;
			} else {
				arg_start(c, pos);
			}
			break;
		case Lex::cr:
			// imap_parser: "CR sent without LF".
			reject();
			out_byte(c);
			break;
		case Lex::atom:
			atom_byte(c);
			break;
		case Lex::quoted:
			if (c == '\0' || c == '\r')
				reject();
			out_byte(c);
			if (lex_ != Lex::quoted)
				break;
			if (c == '"') {
				arg_done();
				lex_ = Lex::between;
			} else if (c == '\\') {
				lex_ = Lex::quoted_escape;
			} else {
				arg_len_++;
			}
			break;
		case Lex::quoted_escape:
			out_byte(c);
			arg_len_++;
			lex_ = Lex::quoted;
			if (c == '\r')
				reject();
			break;
		case Lex::tilde:
			if (c == '{') {
				// "literal8 not allowed here".
				reject();
				out_byte(c);
			} else {
				lex_ = Lex::atom;
				atom_byte(c);
			}
			break;
		case Lex::lit_size:
			out_byte(c);
			if (redact::is_digit(c)) {
				if (literal_size_ > (UINT64_MAX - 9) / 10)
					reject();
				else
					literal_size_ = literal_size_ * 10 +
						(uint64_t)(c - '0');
			} else if (c == '+') {
				lex_ = Lex::lit_plus;
			} else if (c == '}') {
				literal_closed(pos, true);
			} else {
				reject();
			}
			break;
		case Lex::lit_plus:
			out_byte(c);
			if (c == '}')
				literal_closed(pos, false);
			else
				reject();	// "Expecting '}' after '+'"
			break;
		case Lex::lit_closed:
		case Lex::lit_cr:
			if (c == '\n') {
				start_literal();
			} else if (c == '\r') {
				// imap-login's parser skips one CR per read:
				// "{8}\r" and then "\r\n" is a literal; more
				// CRs make it unsure (start_literal()), LITERAL+
				// or not.
				out_byte(c);
				if (lex_ == Lex::lit_cr)
					literal_more_cr_ = true;
				lex_ = Lex::lit_cr;
			} else {
				// "Missing LF after literal size".
				reject();
				out_byte(c);
			}
			break;
		case Lex::skip:
			out_byte(c);
			break;
		}
		if (secret_ != Secret::none)
			secret_tail_.feed(c);
		if (c == '{')
			brace_ = true;
	}

	void tag_byte(unsigned char c)
	{
		emit(c);
		if (c == ' ') {
			if (tag_.size() == 0)
				tag_ok_ = tag_ok_24_ = false;
			lex_ = Lex::name;
		} else if (c == '\r') {
			// The command name would start at the CR: empty.
			lex_ = Lex::skip;
			rejected_ = true;
			if (tag_.size() > 0 && tag_ok_)
				push(Kind::other);
		} else {
			if (!is_tag_char(c, false) || tag_.size() >= max_tag)
				tag_ok_ = false;
			// 2.4: ']' is a tag byte, 0x7f is not.
			if ((!is_tag_char(c, false) && c != ']') || c == 0x7f ||
			    tag_.size() >= max_tag)
				tag_ok_24_ = false;
			tag_.add(c);
		}
	}

	void name_byte(unsigned char c)
	{
		emit(c);
		if (c == ' ' || c == '\r') {
			if (name_.size() == 0) {
				// Refused by both lines (an empty name); a
				// name after more spaces is still read, for
				// what it may hide.
				rejected_ = true;
				name_empty_ = true;
				if (c == ' ')
					return;
				lex_ = Lex::skip;
				if (tag_ok_)
					push(Kind::other);
				return;
			}
			start_command();
			if (kind_ == Kind::authenticate) {
				if (c == '\r') {
					// cmd_authenticate(): no mechanism.
					rejected_ = true;
					lex_ = Lex::skip;
				} else {
					lex_ = Lex::auth_mech;
				}
			} else {
				lex_ = c == ' ' ? Lex::between : Lex::cr;
			}
			return;
		}
		if (!is_tag_char(c, true)) {
			rejected_ = true;
			name_bad_ = true;
		}
		if (!is_tag_char(c, true) || c == 0x7f)
			name_bad_24_ = true;
		name_.add(c);
	}

	// The first byte of an argument (or a list's parenthesis).
	void arg_start(unsigned char c, uint64_t pos)
	{
		arg_start_ = pos;
		arg_len_ = 0;
		atom_.clear();
		if (c == '(' && !rejected_ && ++lists_ > imap_login_list_limit) {
			// "Too many '('" (IMAP_LOGIN_LIST_COUNT_LIMIT, Debian's
			// 2.3.19.1+deb12u7 and later Dovecots); an older
			// imap-login parses on. Refused here, and whatever
			// follows is hidden unless the refusal came first.
			out_byte(c);
			reject();
			lists_refused_ = true;
			return;
		}
		if (c == ')' && depth_ > 0) {
			out_byte(c);
			depth_--;
			arg_ = Arg::list;
			arg_done();
			return;
		}
		if (c != '(' || depth_ == 0) {
			int index = args_;
			if (args_ < 100)
				args_++;
			if (c == '(') {
				depth_++;
				if (kind_ == Kind::id && id_ == Id::list)
					id_ = Id::key;
			}
			if (secret_arg_ >= 0 && index >= secret_arg_ &&
			    secret_ != Secret::redacting) {
				if (c == '{' && !rejected_) {
					// Maybe a literal: its header stays.
					secret_ = Secret::held;
					hold_.assign(1, '{');
					begin_literal_header();
					return;
				}
				start_redacting();
			}
		} else {
			depth_++;
		}
		out_byte(c);
		switch (c) {
		case '(':
			break;
		case ')':
			reject();	// "Unexpected ')'"
			break;
		case '"':
			arg_ = Arg::quoted;
			lex_ = Lex::quoted;
			break;
		case '~':
			arg_ = Arg::atom;
			atom_.add(c);
			lex_ = Lex::tilde;
			break;
		case '{':
			begin_literal_header();
			break;
		default:
			arg_ = Arg::atom;
			atom_.add(c);
			lex_ = Lex::atom;
			if (!is_atom_char(c))
				reject();
			break;
		}
	}

	void atom_byte(unsigned char c)
	{
		if (c == ' ' || c == '\r') {
			out_byte(c);
			arg_done();
			lex_ = c == ' ' ? Lex::between : Lex::cr;
		} else if (c == ')') {
			arg_done();
			// The list ends (or "Unexpected ')'").
			lex_ = Lex::between;
			arg_start(c, line_size_ - 1);
		} else {
			if (!is_atom_char(c))
				reject();
			out_byte(c);
			atom_.add(c);
		}
	}

	// An argument (or a list) ended; depth_ is what is open after it.
	void arg_done()
	{
		// imap_parser_read_args() stops with "IMAP command line too
		// large" after an argument that started beyond the limit.
		if (arg_start_ > max_line)
			reject();
		if (kind_ == Kind::id)
			id_arg();
	}

	void id_arg()
	{
		bool ok;
		switch (id_) {
		case Id::list:
			// NIL, or something other than a list: either way the
			// rest of the line is skipped.
			ok = false;
			break;
		case Id::key:
		case Id::value: {
			// A nested list is refused when it closes.
			if (depth_ >= 2)
				return;
			bool string = arg_ == Arg::quoted ||
				arg_ == Arg::literal;
			if (depth_ == 0) {
				ok = false;	// the list ended
			} else if (id_ == Id::key) {
				// IMAP_ID_KEY_MAX_LEN
				ok = string && arg_len_ <= 30;
				id_ = Id::value;
			} else {
				ok = string ||
					(arg_ == Arg::atom && atom_.is("NIL"));
				id_ = Id::key;
			}
			break;
		}
		case Id::done:
		default:
			return;
		}
		if (!ok) {
			id_ = Id::done;
			rejected_ = true;
		}
	}

	void begin_literal_header()
	{
		plus_early_ = false;
		literal_more_cr_ = false;
		arg_ = Arg::literal;
		lex_ = Lex::lit_size;
		literal_size_ = 0;
	}

	// pos: where the '}' is.
	void literal_closed(uint64_t pos, bool sync)
	{
		literal_sync_ = sync;
		// imap_parser_literal_end(): larger than what is left of the
		// line is "Literal size too large" (and a disconnect).
		uint64_t used = pos + 1;
		if (used >= max_line || literal_size_ > max_line - used)
			reject();
		else
			lex_ = Lex::lit_closed;
	}

	// At the LF after a literal header.
	void start_literal()
	{
		literal_secret_ = secret_ != Secret::none;
		if (secret_ == Secret::held) {
			emit(hold_);
			hold_.clear();
			secret_ = Secret::none;
		}
		if (secret_ != Secret::redacting)
			emit('\n');
		cr_held_ = false;
		if (ambiguous()) {
			// Taken as a literal by one Dovecot line, refused by
			// the other: all that follows is hidden.
			reset_command();
			begin_unsure();
			return;
		}
		if (literal_more_cr_) {
			// CRs after the header: whether imap-login took them
			// (one per read) or refused the line is not known, its
			// "+ OK" (sent at the '}') does not tell, and read
			// again after a failed AUTHENTICATE the fuzzer beside
			// 2.4 found the guess wrong. All that follows is hidden
			// (unless the command's reply came already: refused).
			bool answered = current_answered_;
			bool secret = literal_secret_;
			uint64_t size = literal_size_;
			reset_command();
			if (!answered) {
				begin_unsure();
				return;
			}
			line_start_ = true;
			if (secret) {
				// Refused; the client may still send what it
				// meant as the literal (a "+ OK" came at the
				// '}'): read as commands, hidden.
				shadow_ = std::min(size, max_line);
				shadow_marked_ = false;
				shadow_seq_ = 0;
			}
			return;
		}
		if (literal_sync_ && !plus_early_)
			begin_wait(current_seq_);
		else
			begin_literal();
		plus_early_ = false;
	}

	void begin_literal()
	{
		if (literal_secret_)
			start_redacting();
		lex_ = Lex::between;
		begin_raw(literal_size_, literal_secret_);
	}

	// What the line holds from here is not Dovecot's syntax: read it
	// loosely up to its LF, no literal on it counts.
	void reject()
	{
		rejected_ = true;
		plus_early_ = false;
		lex_ = Lex::skip;
		if (secret_ == Secret::held) {
			// The held header begins the secret.
			hold_.clear();
			start_redacting();
		} else if (secret_arg_ >= 0) {
			// Where a refused LOGIN's arguments end is unclear
			// ("a LOGIN alice\tpw"): hide the rest.
			start_redacting();
		}
	}

	void out_byte(unsigned char c)
	{
		if (secret_ == Secret::held)
			hold_ += (char)c;
		else if (secret_ == Secret::redacting)
			cr_held_ = c == '\r';
		else
			emit(c);
	}

	void line_feed()
	{
		// A secret argument on a refused line that ends like a literal
		// header: the client meant the next bytes as the password.
		// imap-login reads them as commands; so does the lexer, but
		// they are hidden.
		if (rejected_ && secret_ == Secret::redacting &&
		    secret_tail_.complete()) {
			shadow_ = std::min(secret_tail_.size(), max_line);
			shadow_marked_ = false;
			shadow_seq_ = current_seq_;
		}
		if (lex_ == Lex::tag || lex_ == Lex::name) {
			emit('\n');
			bool named = lex_ == Lex::name && name_.size() > 0;
			if (named) {
				start_command();
				if (kind_ == Kind::authenticate)
					rejected_ = true;	// no mechanism
			} else if (tag_.size() > 0 && tag_ok_) {
				push(Kind::other);
			}
			end_command();
			return;
		}
		if (lex_ == Lex::auth_ir) {
			ir_.end(out());
		} else {
			if (secret_ == Secret::held) {
				bool cr = hold_.back() == '\r';
				hold_.clear();
				start_redacting();
				cr_held_ = cr;
			}
			if (secret_ == Secret::redacting && cr_held_)
				emit('\r');
		}
		emit('\n');
		end_command();
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
		} else if (name_.is("ID")) {
			kind_ = Kind::id;
			id_ = Id::list;
		} else if (tag_.is("LOGIN")) {
			// "LOGIN user pass" typed without a tag: rejected, but
			// the password is real.
			secret_arg_ = 0;
		}
		if (!tag_ok_)
			rejected_ = true;
		if (tag_ok_)
			push(rejected_ ? Kind::other : kind_);
	}

	// The command will get a tagged reply (a valid tag).
	void push(Kind kind)
	{
		if (pushed_)
			return;
		pushed_ = true;
		if (current_seq_ == 0) {
			current_seq_ = ++seq_;
			current_answered_ = false;
		}
		if (outstanding_.size() < redact::max_outstanding)
			outstanding_.push_back({ tag_, kind, current_seq_ });
	}

	void end_command()
	{
		// An exchange only where a tagged reply will end it.
		if (kind_ == Kind::authenticate && pushed_)
			start_exchange(current_seq_, current_answered_);
		bool unsure = (lists_refused_ && pushed_ && !current_answered_) ||
			(ambiguous() && brace_);
		reset_command();
		if (unsure)
			// Refused, or (without the list limit) literals of it
			// may follow.
			begin_unsure();
		else
			line_start_ = true;
	}

	void command_answered(const Outstanding &cmd, bool ok)
	{
		// Refused before the client sent more: it did not send the
		// literal (it waited for a "+").
		if (cmd.seq == shadow_seq_ && !shadow_marked_)
			shadow_ = 0;
		if (cmd.seq == current_seq_) {
			current_answered_ = true;
			// Answered while its literal was awaited: refused.
			resolve_wait(false);
		}
		bool login = ok && (cmd.kind == Kind::login ||
				    cmd.kind == Kind::authenticate);
		answered(cmd.seq, login);
		if (login)
			authenticated_ = true;
	}

	// One Dovecot line takes the tag or name, the other refuses it:
	// whether a literal header on the line counts is not known.
	bool ambiguous() const
	{
		// An empty name: both refuse, whatever comes after it.
		if (name_empty_)
			return false;
		return tag_ok_ != tag_ok_24_ || name_bad_ != name_bad_24_;
	}

	void start_redacting()
	{
		if (secret_ != Secret::redacting) {
			emit_marker();
			secret_ = Secret::redacting;
		}
	}

	void reset_command()
	{
		lex_ = Lex::tag;
		tag_.clear();
		name_.clear();
		tag_ok_ = true;
		plus_early_ = false;
		rejected_ = pushed_ = false;
		kind_ = Kind::other;
		secret_arg_ = -1;
		args_ = 0;
		depth_ = 0;
		lists_ = 0;
		lists_refused_ = false;
		tag_ok_24_ = true;
		name_bad_ = name_bad_24_ = name_empty_ = brace_ = false;
		id_ = Id::list;
		arg_ = Arg::atom;
		arg_len_ = 0;
		atom_.clear();
		mech_len_ = 0;
		line_size_ = arg_start_ = 0;
		secret_ = Secret::none;
		cr_held_ = false;
		hold_.clear();
		secret_tail_.reset();
		current_seq_ = 0;
	}

	Lex lex_;
	Word tag_, name_;
	Id id_;
	Arg arg_;		// the current argument's type
	uint64_t arg_len_;	// a quoted string's or literal's length
	Word atom_;		// the current atom
	bool tag_ok_;		// imap-login takes the tag (replies with it)
	// imap-login refuses the line: no literal on it, nothing after it
	// on it matters.
	bool rejected_;
	bool pushed_;		// a tagged reply is expected
	Kind kind_;
	int secret_arg_;	// index of the first secret argument, or -1
	int args_;		// top-level arguments started so far
	unsigned int depth_;	// open lists
	unsigned int lists_;	// lists opened on the line
	bool lists_refused_;	// refused at a '(' over the limit
	// The tag and name as 2.4 reads them (2.3: tag_ok_, name_bad_):
	// ']' is a tag byte, 0x7f is neither a tag nor a name byte.
	bool tag_ok_24_;
	bool name_bad_, name_bad_24_;
	bool name_empty_;	// two spaces after the tag: refused by both
	bool brace_;		// a '{' on the line
	size_t mech_len_;
	uint64_t line_size_;	// bytes of the command so far
	uint64_t arg_start_;
	// The command's secret: none yet; its start held (it may be a
	// literal header, which stays); the marker is out and the rest of
	// the command is swallowed.
	enum class Secret { none, held, redacting };
	Secret secret_;
	bool cr_held_;		// redacting: a CR that may end the line
	std::string hold_;	// Secret::held
	redact::SecretLine ir_;
	uint64_t literal_size_ = 0;
	bool literal_sync_ = true, literal_secret_ = false;
	// The server asked for this literal before its header's LF came.
	bool plus_early_ = false;
	// More than one CR after the literal's "}" (imap-login skips one
	// per read).
	bool literal_more_cr_ = false;
	uint64_t current_seq_;
	bool current_answered_ = false;
	std::deque<Outstanding> outstanding_;
	// The end of a secret argument on a refused line.
	redact::LiteralTail secret_tail_;
	// Bytes after that line still hidden, though read as commands.
	uint64_t shadow_ = 0;
	bool shadow_marked_ = false;
	uint64_t shadow_seq_ = 0;	// the refused command
	std::string shadowed_;		// what they would have logged
};

} // namespace

namespace redact {

std::unique_ptr<Redactor::Impl> make_imap()
{
	return std::unique_ptr<Redactor::Impl>(new ImapRedactor());
}

} // namespace redact
} // namespace rawlog_ext
