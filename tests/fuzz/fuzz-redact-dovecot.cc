// Differential libFuzzer target: Dovecot's own pre-login parsing beside the
// Redactor (src/core/redact.cc) on the same client bytes.
//
// Input: byte 0 is the mode:
//   b0 % 3         protocol: 0 IMAP, 1 POP3, 2 SMTP (submission)
//   b0 / 3 % 4     which authentication attempt succeeds (0: none, so the
//                  whole session stays pre-login)
//   b0 / 12 % 4    challenge rounds of a mechanism other than PLAIN/LOGIN
// The rest is what the client sends; a 0x01 byte is no data but a cut: the
// bytes before it arrive (and are answered) before the bytes after it.
//
// Per chunk, the bytes go through a pipe into an fd istream of the login
// process's size (LOGIN_MAX_INBUF_SIZE) and are read the way the login
// process reads them:
//   IMAP  imap-login's command loop (modelled, imap-login-client.c) over
//         lib-imap's imap_parser (tag, command name, arguments, literals;
//         the parser itself answers synchronizing literals with "+ OK");
//         LOGIN's arguments through imap_arg_get_astring(); AUTHENTICATE
//         and SASL responses as client-authenticate.c and
//         client-common-auth.c read them (modelled);
//   POP3  pop3-login's command reading, modelled from src/pop3-login/
//         client.c and client-authenticate.c (no library parser exists);
//   SMTP  lib-smtp's smtp_command_parser (commands and AUTH responses),
//         dispatched as smtp-server-command.c and smtp-server-cmd-auth.c
//         do before login.
// The auth server is simulated: PLAIN takes one response when there is no
// initial response and none otherwise, LOGIN one more than that, other
// mechanisms Dovecot implements the rounds of the mode byte, unknown ones
// fail at once (in the login process), and so does a response that is not
// base64 (auth-request-handler.c). Every attempt fails except the one the
// mode byte names, which logs in and ends the pre-login part. The replies
// go to the Redactor after the chunk. (The model follows Debian's 2.3.19,
// checked against it in tests/integration/test_dovecot_parsing.py.)
//
// Secrets: what the login process passes on as credentials, as a span of
// the client bytes: the LOGIN password, PASS's argument after a USER, the
// APOP digest, and SASL initial responses and responses the auth server
// would decode (non-empty base64, up to a NUL; "*" cancels). The check, per
// secret s of at least 4 bytes without '*' (its bytes as sent):
//   occurrences of s in the output <= occurrences of s in the client bytes
//                                     that overlap no secret's span.
// Why no false positives: the Redactor only keeps client bytes and turns
// spans into "***" (its contract, which fuzz-redact checks), so each
// occurrence of a '*'-free s in its output lies in bytes it kept, and is an
// occurrence in the client bytes, distinct ones for distinct ones. If it
// hid every secret span, such an occurrence overlaps none, so it is counted
// on the right: the check cannot fail on a Redactor that hides all secrets,
// however much more it hides. A failure is a credential shown in the log.
//
// Where this models less than Dovecot does it takes fewer secrets, which
// can only miss leaks: it stops at ID, STARTTLS and too many bad commands,
// and takes SMTP input buffered across an AUTH only with the next chunk. A
// secret whose bytes as sent are not clear (an odd LOGIN or AUTH line) is
// not checked and hides nothing.
//
// Built with -DRAWLOG_EXT_FUZZ_DRIVER it has its own main() (see
// fuzz-driver.hh).
#include "core/redact.hh"

// Dovecot's config.h first: lib.h includes it only under HAVE_CONFIG_H,
// and its types (uoff_t) need it.
extern "C" {
#include "config.h"
#include "lib.h"
#include "buffer.h"
#include "str.h"
#include "istream.h"
#include "ostream.h"
#include "imap-parser.h"
#include "imap-arg.h"
#include "smtp-command-parser.h"
#include "smtp-parser.h"
#include "unichar.h"

// base64.h's inline wrappers pass 0 for an enum, which C++ refuses: the
// one function needed, declared as there (flags: an enum of int size;
// base64_decode() is this with 0).
struct base64_scheme;
extern struct base64_scheme base64_scheme;
int base64_scheme_decode(const struct base64_scheme *b64, int flags,
			 const void *src, size_t src_size, buffer_t *dest);
}

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <strings.h>
#include <vector>

using rawlog_ext::RedactProtocol;
using rawlog_ext::Redactor;

namespace {

// src/login-common/client-common.h (2.3.19): LOGIN_MAX_INBUF_SIZE is
// MASTER_AUTH_MAX_DATA_SIZE (1024 + 128 + 64 + 2) - 128 - 64;
// LOGIN_MAX_AUTH_BUF_SIZE 8192. imap-login-client.h: IMAP_TAG_MAX_LEN
// (LOGIN_MAX_MASTER_PREFIX_LEN - 2), IMAP_LOGIN_MAX_LINE_LENGTH 8192.
const size_t login_max_inbuf_size = 1024 + 128 + 64 + 2 - 128 - 64;
const size_t login_max_auth_buf_size = 8192;
const size_t imap_tag_max_len = 128 - 2;
const size_t imap_login_max_line_length = 8192;

bool debug = getenv("FUZZ_DEBUG") != nullptr;

struct Secret {
	size_t begin, end;	// in the client bytes
	bool checked;		// false: its bytes as sent are not known
	const char *what;
};

// What the session needs of every protocol's login process.
class Login {
public:
	Login(const std::string &client, unsigned int success_at,
	      unsigned int rounds)
		: client_(client), success_at_(success_at), rounds_(rounds)
	{
		int fds[2];
		if (pipe(fds) < 0)
			abort();
		rfd_ = fds[0];
		wfd_ = fds[1];
		fcntl(rfd_, F_SETFL, O_NONBLOCK);
		fcntl(wfd_, F_SETFL, O_NONBLOCK);
		// client-common.c: i_stream_create_fd(fd, LOGIN_MAX_INBUF_SIZE)
		input_ = i_stream_create_fd(rfd_, login_max_inbuf_size);
	}
	virtual ~Login()
	{
		i_stream_unref(&input_);
		close(rfd_);
		close(wfd_);
	}
	Login(const Login &) = delete;
	Login &operator=(const Login &) = delete;

	virtual std::string greeting() const = 0;

	// The client sent client_[sent_, end): reads it all as the login
	// process would. Returns the server's replies.
	std::string receive(size_t end)
	{
		replies_.clear();
		new_input();
		while (sent_ < end) {
			ssize_t n = write(wfd_, client_.data() + sent_,
					  end - sent_);
			if (n <= 0) {
				stop("pipe full");
				break;
			}
			sent_ += n;
			process();
			if (done_)
				break;
		}
		process();
		return replies_;
	}

	const std::vector<Secret> &secrets() const { return secrets_; }
	bool done() const { return done_; }

protected:
	bool pipe_empty() const
	{
		int avail = 0;
		return ioctl(rfd_, FIONREAD, &avail) < 0 || avail == 0;
	}
	// Where the client's bytes written to the pipe so far end.
	size_t sent() const { return sent_; }
	size_t offset() const
	{
		return (size_t)i_stream_get_absolute_offset(input_);
	}

	// Reads while the client has sent something (client_read() in
	// client-common.c: a full buffer disconnects), handling what is
	// there each time.
	void process()
	{
		for (;;) {
			if (done_)
				return;
			bool more = !pipe_empty();
			size_t before = offset();
			if (more && reads_input()) {
				ssize_t ret = i_stream_read(input_);
				if (ret == -2) {
					stop("input buffer full");
					return;
				}
			}
			handle();
			if (!more || done_)
				return;
			if (!reads_input() && offset() == before) {
				// the parser takes no more
				return;
			}
		}
	}

	// New client bytes are coming (an input event).
	virtual void new_input() {}
	// Whether process() reads (login-common's client_read()) or the
	// protocol's parser does (lib-smtp).
	virtual bool reads_input() const { return true; }
	// Handles the buffered input as far as it goes.
	virtual void handle() = 0;

	void reply(const std::string &line)
	{
		before_reply();
		replies_ += line + "\r\n";
	}
	// For what the protocol's parser wrote itself.
	virtual void before_reply() {}
	void stop(const char *why)
	{
		if (debug)
			fprintf(stderr, "login: stop: %s\n", why);
		done_ = true;
	}
	void secret(size_t begin, size_t end, bool checked, const char *what)
	{
		if (debug)
			fprintf(stderr, "login: secret %s [%zu,%zu) %s\n", what,
				begin, end, checked ? "" : "(unchecked)");
		if (end > begin)
			secrets_.push_back({ begin, end, checked, what });
	}

	// --- the auth server, simulated ---------------------------------
	// sasl-server.c: sasl_server_auth_begin() fails unknown mechanisms
	// (auth_client_find_mech(), strcasecmp) before the auth server. So
	// only a mechanism Dovecot implements can take an initial response
	// as credentials: the others' are not secrets here.
	static bool known_mech(const std::string &mech)
	{
		static const char *const mechs[] = {
			"PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-1",
			"SCRAM-SHA-256", "OAUTHBEARER", "XOAUTH2", "EXTERNAL",
			"ANONYMOUS", "NTLM", "GSSAPI", "GSS-SPNEGO", "OTP",
		};
		for (const char *m : mechs) {
			if (strcasecmp(m, mech.c_str()) == 0)
				return true;
		}
		return false;
	}
	// A SASL response as the login process passes it on, a C string
	// (str_c()), for the auth server, which takes only base64
	// (auth-request-handler.c: libdovecot's base64_decode(), which skips
	// whitespace); "" and "=" are empty. A secret when it takes it and it
	// is not empty. Returns whether it takes it.
	bool sasl_secret(size_t begin, size_t end, const std::string &value,
			 bool checked, const char *what)
	{
		std::string v = value.substr(0, strlen(value.c_str()));
		if (v.empty() || v == "=")
			return true;
		buffer_t *buf = buffer_create_dynamic(default_pool, v.size());
		bool ok = base64_scheme_decode(&base64_scheme, 0, v.data(),
					       v.size(), buf) >= 0;
		buffer_free(&buf);
		if (!ok)
			return false;
		size_t nul = client_.find('\0', begin);
		secret(begin, std::min(end, nul), checked, what);
		return true;
	}

	// Starts an attempt; true if it waits for responses (auth_input()).
	// response_ok: false for an initial response the auth server
	// refuses.
	bool auth_begin(const std::string &mech, bool initial_response,
			bool response_ok = true)
	{
		if (!known_mech(mech)) {
			auth_failed_reply(true);
			return false;
		}
		if (!response_ok) {
			auth_failed_reply(false);
			return false;
		}
		plain_ = strcasecmp(mech.c_str(), "PLAIN") == 0;
		if (plain_)
			rounds_left_ = initial_response ? 0 : 1;
		else if (strcasecmp(mech.c_str(), "LOGIN") == 0)
			rounds_left_ = initial_response ? 1 : 2;
		else
			rounds_left_ = rounds_;
		return auth_next();
	}
	// After a response (or the start): a challenge, or the result.
	bool auth_next()
	{
		if (rounds_left_ > 0) {
			rounds_left_--;
			// PLAIN's is empty; LOGIN asks "Username:", "Password:"
			challenge(plain_ ? "" : rounds_left_ % 2 == 0 ?
				  "UGFzc3dvcmQ6" : "VXNlcm5hbWU6");
			return true;
		}
		if (++attempts_ == success_at_) {
			auth_success_reply();
			stop("logged in");
		} else {
			auth_failed_reply(false);
		}
		return false;
	}
	virtual void challenge(const char *data) = 0;
	virtual void auth_success_reply() = 0;
	virtual void auth_failed_reply(bool unsupported) = 0;

	// client-common-auth.c client_auth_read_line(): up to LF, appended
	// to what an earlier call took; a CR at the end of what is there is
	// dropped each time. Returns 1 with the line, 0 for more, -1 when
	// the login process disconnected.
	int auth_read_line()
	{
		const unsigned char *data;
		size_t size;
		if (line_begin_ == (size_t)-1) {
			line_begin_ = offset();
			line_.clear();
		}
		if (i_stream_read_more(input_, &data, &size) == -1) {
			stop("auth read");
			return -1;
		}
		size_t i = 0;
		while (i < size && data[i] != '\n')
			i++;
		if (line_.size() + i > login_max_auth_buf_size) {
			stop("authentication response too large");
			return -1;
		}
		line_.append((const char *)data, i);
		i_stream_skip(input_, i == size ? size : i + 1);
		if (!line_.empty() && line_.back() == '\r')
			line_.pop_back();
		if (i == size)
			return 0;
		// As sent: up to the LF, without the CR before it.
		line_end_ = offset() - 1;
		if (line_end_ > line_begin_ && client_[line_end_ - 1] == '\r')
			line_end_--;
		line_done_begin_ = line_begin_;
		line_begin_ = (size_t)-1;
		return 1;
	}

	// The SASL response loop: sasl_callback() SASL_SERVER_REPLY_CONTINUE
	// -> client_auth_parse_response(): "*" aborts, anything else goes to
	// the auth server.
	void auth_input()
	{
		while (waiting_ && !done_) {
			if (auth_read_line() <= 0)
				return;
			if (strcmp(line_.c_str(), "*") == 0) {
				waiting_ = false;
				auth_aborted_reply();
				continue;
			}
			if (!sasl_secret(line_done_begin_, line_end_, line_, true,
					 "SASL response")) {
				waiting_ = false;
				auth_failed_reply(false);
				continue;
			}
			waiting_ = auth_next();
		}
	}
	virtual void auth_aborted_reply() = 0;

	const std::string &client_;
	struct istream *input_;
	bool waiting_ = false;	// for a SASL response
	std::string line_;	// auth_read_line()'s line so far
	size_t line_done_begin_ = 0, line_end_ = 0;
	std::string replies_;
	bool done_ = false;

private:
	int rfd_, wfd_;
	size_t sent_ = 0;
	unsigned int success_at_, rounds_;
	unsigned int attempts_ = 0, rounds_left_ = 0;
	bool plain_ = false;
	size_t line_begin_ = (size_t)-1;
	std::vector<Secret> secrets_;
};

// Whether client[pos, pos + s.size()) is s.
bool at(const std::string &client, size_t pos, const std::string &s)
{
	return pos <= client.size() && client.compare(pos, s.size(), s) == 0;
}

// --- IMAP: imap-login --------------------------------------------------

class ImapLogin : public Login {
public:
	ImapLogin(const std::string &client, unsigned int success_at,
		  unsigned int rounds)
		: Login(client, success_at, rounds)
	{
		out_buf_ = buffer_create_dynamic(default_pool, 256);
		output_ = o_stream_create_buffer(out_buf_);
		o_stream_set_no_error_handling(output_, TRUE);
		// imap-login-client.c imap_client_create(); imap_literal_minus
		// is off by default (LITERAL+ is announced). Debian's 2.3.19
		// has 2.4's imap_parser_params backported; 2.4's imap-login
		// passes IMAP_LOGIN_LIST_COUNT_LIMIT (1, imap-login-client.h).
		struct imap_parser_params params;
		memset(&params, 0, sizeof(params));
		params.list_count_limit = 1;
		parser_ = imap_parser_create(input_, output_,
					     imap_login_max_line_length,
					     &params);
	}
	~ImapLogin() override
	{
		imap_parser_unref(&parser_);
		o_stream_unref(&output_);
		buffer_free(&out_buf_);
	}

	std::string greeting() const override
	{
		return "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS "
			"ID ENABLE IDLE LITERAL+ AUTH=PLAIN AUTH=LOGIN] "
			"Dovecot ready.\r\n";
	}

private:
	void handle() override
	{
		while (!done_) {
			if (waiting_) {
				auth_input();
				if (waiting_)
					break;
				continue;
			}
			if (!handle_input())
				break;
		}
		before_reply();
	}

	// The parser's own "+ OK" goes out before what follows it.
	void before_reply() override
	{
		replies_.append((const char *)out_buf_->data, out_buf_->used);
		buffer_set_used_size(out_buf_, 0);
	}
	void tagged(const std::string &text)
	{
		reply(tag_ + " " + text);
	}

	// client_skip_line(): up to and with the next LF.
	bool skip_line()
	{
		const unsigned char *data;
		size_t size;
		data = i_stream_get_data(input_, &size);
		for (size_t i = 0; i < size; i++) {
			if (data[i] == '\n') {
				i_stream_skip(input_, i + 1);
				return true;
			}
		}
		return false;
	}

	// client_invalid_command(): false when it disconnected.
	bool invalid_command()
	{
		if (!have_tag_ || tag_.empty())
			tag_ = "*";
		if (++bad_counter_ >= 3) {
			reply("* BYE Too many invalid IMAP commands.");
			stop("too many invalid commands");
			return false;
		}
		tagged("BAD Error in IMAP command received by server.");
		return true;
	}

	// client_handle_input(): true to go on with the next command.
	bool handle_input()
	{
		const char *word;
		int ret;

		if (cmd_finished_) {
			have_tag_ = have_name_ = false;
			imap_parser_reset(parser_);
			if (skip_line_) {
				if (!skip_line())
					return false;
				skip_line_ = false;
			}
			cmd_finished_ = false;
			line_start_ = offset();
		}
		if (!have_tag_) {
			ret = imap_parser_read_tag(parser_, &word);
			if (ret == 0)
				return false;
			if (ret < 0 || strlen(word) > imap_tag_max_len) {
				skip_line_ = cmd_finished_ = true;
				return invalid_command();
			}
			tag_ = word;
			have_tag_ = true;
		}
		if (!have_name_) {
			ret = imap_parser_read_command_name(parser_, &word);
			if (ret == 0)
				return false;
			if (ret < 0) {
				skip_line_ = cmd_finished_ = true;
				return invalid_command();
			}
			name_ = word;
			have_name_ = true;
		}
		return next_cmd();
	}

	// imap_client_input_next_cmd()
	bool next_cmd()
	{
		int ret;
		if (strcasecmp(name_.c_str(), "AUTHENTICATE") == 0) {
			bool parsed;
			ret = authenticate(parsed);
			if (ret == 0 && !parsed)
				return false;
		} else if (strcasecmp(name_.c_str(), "ID") == 0) {
			// cmd_id() reads its list with a parser of its own;
			// not modelled: take no more secrets.
			stop("ID");
			return false;
		} else {
			const struct imap_arg *args;
			// client_parse_command()
			switch (imap_parser_read_args(parser_, 0, (enum imap_parser_flags)0,
						      &args)) {
			case -1:
				return parser_error();
			case -2:
				return false;
			default:
				if (!skip_line())
					abort();	// i_unreached() there
			}
			ret = tag_.empty() ? -1 : execute(args);
		}
		cmd_finished_ = true;
		if (ret == -2 && strcasecmp(tag_.c_str(), "LOGIN") == 0) {
			tagged("BAD First parameter in line is IMAP's command "
			       "tag, not the command name.");
		} else if (ret < 0) {
			if (!invalid_command())
				return false;
		}
		// An authentication that waits for responses goes on in
		// handle().
		return (ret != 0 || waiting_) && !done_;
	}

	// client_handle_parser_error()
	bool parser_error()
	{
		enum imap_parser_error error;
		const char *msg = imap_parser_get_error(parser_, &error);
		if (error == IMAP_PARSE_ERROR_LITERAL_TOO_BIG) {
			reply(std::string("* BYE ") + msg);
			stop("literal too big");
			return false;
		}
		tagged(std::string("BAD ") + msg);
		cmd_finished_ = skip_line_ = true;
		// client_parse_command() returned -1: the loop goes on.
		return true;
	}

	// client_command_execute() with imap-login's commands.
	int execute(const struct imap_arg *args)
	{
		const char *c = name_.c_str();
		if (strcasecmp(c, "LOGIN") == 0)
			return login(args);
		if (strcasecmp(c, "CAPABILITY") == 0) {
			reply("* CAPABILITY IMAP4rev1 SASL-IR LITERAL+ "
			      "AUTH=PLAIN AUTH=LOGIN");
			tagged("OK Pre-login capabilities listed.");
			return 1;
		}
		if (strcasecmp(c, "STARTTLS") == 0) {
			tagged("OK Begin TLS negotiation now.");
			stop("STARTTLS");
			return 1;
		}
		if (strcasecmp(c, "NOOP") == 0) {
			tagged("OK NOOP completed.");
			return 1;
		}
		if (strcasecmp(c, "LOGOUT") == 0) {
			reply("* BYE Logging out");
			tagged("OK Logout completed.");
			stop("LOGOUT");
			return 1;
		}
		if (strcasecmp(c, "ENABLE") == 0) {
			reply("* ENABLED");
			tagged("OK ENABLE ignored in non-authenticated state.");
			return 1;
		}
		return -2;
	}

	// client-authenticate.c cmd_login(): two astrings, then EOL.
	int login(const struct imap_arg *args)
	{
		const char *user, *pass;
		if (!imap_arg_get_astring(&args[0], &user) ||
		    !imap_arg_get_astring(&args[1], &pass) ||
		    !IMAP_ARG_IS_EOL(&args[2]))
			return -1;
		// An empty user name never logs in (the auth server refuses
		// it): its password is no credential.
		bool ok = *user != '\0';
		if (ok)
			password_span(args[1].type, pass);
		if (auth_begin("PLAIN", true, ok)) {
			waiting_ = true;
			return 0;
		}
		return 1;
	}

	// The password as sent: the line's last argument, right before its
	// CRLF or LF. Atoms and literals are sent as they are (literals
	// come back as IMAP_ARG_STRING too), quoted strings escaped (their
	// bytes between the quotes are the secret). Exactly one reading
	// must fit, or the password is not checked.
	void password_span(enum imap_arg_type type, const char *pass)
	{
		const std::string &c = client_;
		size_t end = offset(), found = 0, begin = 0, pend = 0;
		std::string value = pass;
		for (size_t eol = 1; eol <= 2; eol++) {
			if (end < line_start_ + eol || c[end - 1] != '\n' ||
			    (eol == 2 && c[end - 2] != '\r'))
				continue;
			size_t e = end - eol, b;
			if (e >= line_start_ + value.size() &&
			    at(c, e - value.size(), value)) {
				found++;
				begin = e - value.size();
				pend = e;
			}
			if (type == IMAP_ARG_STRING &&
			    quoted_span(e, value, b)) {
				found++;
				begin = b;
				pend = e - 1;
			}
		}
		if (found == 1)
			secret(begin, pend, true, "LOGIN password");
		else
			secret(0, 1, false, "LOGIN password");
	}

	// A quoted string ending at e (its closing quote at e - 1) whose
	// content unescapes to value: its content's start.
	bool quoted_span(size_t e, const std::string &value, size_t &b)
	{
		const std::string &c = client_;
		if (e <= line_start_ + 1 || c[e - 1] != '"')
			return false;
		// The opening quote: one not escaped by an odd number of
		// backslashes.
		size_t q = e - 1;
		for (;;) {
			if (q-- == line_start_)
				return false;
			if (c[q] != '"')
				continue;
			size_t k = 0;
			while (q - k > line_start_ && c[q - k - 1] == '\\')
				k++;
			if (k % 2 == 0)
				break;
		}
		b = q + 1;
		std::string un;
		for (size_t i = b; i < e - 1; i++) {
			if (c[i] == '\\' && i + 1 < e - 1)
				i++;
			un += c[i];
		}
		return un == value;
	}

	// client-authenticate.c cmd_authenticate(): the mechanism up to SP,
	// CR or LF, then the rest of the line (SASL-IR).
	int authenticate(bool &parsed)
	{
		parsed = false;
		if (!mech_parsed_) {
			const unsigned char *data;
			size_t size, i;
			data = i_stream_get_data(input_, &size);
			for (i = 0; i < size; i++) {
				if (data[i] == ' ' || data[i] == '\r' ||
				    data[i] == '\n')
					break;
			}
			if (i == size)
				return 0;
			if (i == 0) {
				skip_line_ = true;
				return -1;
			}
			// i_strndup(): a C string, up to a NUL.
			mech_.assign((const char *)data, i);
			mech_.resize(strlen(mech_.c_str()));
			mech_parsed_ = true;
			if (data[i] == ' ')
				i++;
			i_stream_skip(input_, i);
		}
		int ret = auth_read_line();
		if (ret <= 0)
			return ret;
		parsed = true;
		mech_parsed_ = false;
		// imap_client_auth_begin(t_strdup(str_c())): "" is none.
		std::string ir = line_.substr(0, strlen(line_.c_str()));
		bool ok = true;
		if (!ir.empty() && known_mech(mech_))
			ok = sasl_secret(line_done_begin_, line_end_, ir, true,
					 "AUTHENTICATE initial response");
		if (auth_begin(mech_, !ir.empty(), ok)) {
			waiting_ = true;
			return 0;
		}
		return 1;
	}

	void challenge(const char *data) override
	{
		// client_auth_send_challenge()
		reply(std::string("+ ") + data);
	}
	void auth_success_reply() override
	{
		tagged("OK [CAPABILITY IMAP4rev1] Logged in");
	}
	void auth_failed_reply(bool unsupported) override
	{
		tagged(unsupported ? "NO Unsupported authentication mechanism." :
		       "NO [AUTHENTICATIONFAILED] Authentication failed.");
	}
	void auth_aborted_reply() override
	{
		tagged("BAD Authentication aborted by client.");
	}

	buffer_t *out_buf_;
	struct ostream *output_;
	struct imap_parser *parser_;
	std::string tag_, name_, mech_;
	bool have_tag_ = false, have_name_ = false;
	bool cmd_finished_ = false, skip_line_ = false, mech_parsed_ = false;
	unsigned int bad_counter_ = 0;
	size_t line_start_ = 0;
};

// --- POP3: pop3-login, modelled ------------------------------------------

class Pop3Login : public Login {
public:
	using Login::Login;

	std::string greeting() const override
	{
		// The APOP challenge is announced (APOP enabled).
		return "+OK Dovecot ready. <1.2.3@host>\r\n";
	}

private:
	void handle() override
	{
		// client.c pop3_client_input(): commands until one starts an
		// authentication, which goes on here.
		while (!done_) {
			if (waiting_) {
				auth_input();
				if (waiting_)
					break;
				continue;
			}
			if (!next_cmd())
				break;
		}
	}

	// client.c client_read_cmd_name() (2.3.19.1 lines 143-164): CRs are
	// skipped anywhere in the name; it ends at SP, LF, NUL or once 8
	// bytes (counting the CRs) are in; upper-cased; only a SP is eaten.
	bool read_cmd_name(std::string &cmd)
	{
		const unsigned char *data;
		size_t size;
		if (i_stream_read_more(input_, &data, &size) <= 0)
			return false;
		cmd.clear();
		for (size_t i = 0; i < size; i++) {
			if (data[i] == '\r')
				continue;
			if (data[i] == ' ' || data[i] == '\n' ||
			    data[i] == '\0' || i >= 8) {
				i_stream_skip(input_, i + (data[i] == ' ' ? 1 : 0));
				return true;
			}
			cmd += (char)i_toupper(data[i]);
		}
		return false;
	}

	// client.c pop3_client_input_next_cmd() (lines 166-202)
	bool next_cmd()
	{
		if (!have_cmd_) {
			if (!read_cmd_name(cmd_))
				return false;
			have_cmd_ = true;
		}
		if (cmd_ == "AUTH") {
			int ret = auth();
			if (ret <= 0)
				return waiting_;
			have_cmd_ = false;
			return true;
		}
		size_t begin = offset();
		const char *args = i_stream_next_line(input_);
		if (args == nullptr)
			return false;
		if (execute(args, begin))
			bad_counter_ = 0;
		else if (++bad_counter_ >= 3) {
			reply("-ERR Too many invalid bad commands.");
			stop("too many bad commands");
			return false;
		}
		have_cmd_ = false;
		return !done_;
	}

	// client.c client_command_execute() (lines 91-116): exact names.
	bool execute(const char *args, size_t begin)
	{
		if (cmd_ == "CAPA") {
			reply("+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nUSER\r\n"
			      "SASL PLAIN LOGIN\r\n.");
			return true;
		}
		if (cmd_ == "USER") {
			// client-authenticate.c cmd_user()
			user_ = true;
			empty_user_ = *args == '\0';
			reply("+OK");
			return true;
		}
		if (cmd_ == "PASS") {
			// cmd_pass(): a password only after USER; args is a C
			// string (up to a NUL).
			if (!user_) {
				reply("-ERR No username given.");
				return true;
			}
			user_ = false;
			// As for LOGIN: no credential with an empty user name.
			if (!empty_user_)
				secret(begin, begin + strlen(args), true, "PASS");
			(void)auth_begin("PLAIN", true, !empty_user_);
			return true;
		}
		if (cmd_ == "APOP") {
			// cmd_apop(): "<user> <32 hex digits>"
			const char *p = strchr(args, ' ');
			if (p == nullptr || strlen(p + 1) != 32) {
				reply("-ERR Invalid parameters.");
				return true;
			}
			for (const char *h = p + 1; *h != '\0'; h++) {
				if (!((*h >= '0' && *h <= '9') ||
				      (*h >= 'a' && *h <= 'f') ||
				      (*h >= 'A' && *h <= 'F'))) {
					reply("-ERR Invalid characters in MD5 "
					      "response.");
					return true;
				}
			}
			size_t d = begin + (p + 1 - args);
			secret(d, d + 32, true, "APOP digest");
			(void)auth_begin("PLAIN", true);
			return true;
		}
		if (cmd_ == "STLS") {
			reply("+OK Begin TLS negotiation now.");
			stop("STLS");
			return true;
		}
		if (cmd_ == "QUIT") {
			reply("+OK Logging out");
			stop("QUIT");
			return true;
		}
		if (cmd_ == "XCLIENT" || cmd_ == "XOIP") {
			reply("+OK You are not from trusted IP - ignoring");
			return true;
		}
		reply("-ERR Unknown command.");
		return false;
	}

	// client-authenticate.c cmd_auth() (lines 79-140)
	int auth()
	{
		if (!mech_parsed_) {
			const unsigned char *data;
			size_t size, i;
			data = i_stream_get_data(input_, &size);
			for (i = 0; i < size; i++) {
				if (data[i] == ' ' || data[i] == '\r' ||
				    data[i] == '\n')
					break;
			}
			if (i == size)
				return 0;
			if (i == 0) {
				// SASL discovery; the rest of the line goes
				// if it is there.
				reply("+OK\r\nPLAIN\r\nLOGIN\r\n.");
				(void)i_stream_read_next_line(input_);
				return 1;
			}
			// i_strndup(): a C string, up to a NUL.
			mech_.assign((const char *)data, i);
			mech_.resize(strlen(mech_.c_str()));
			mech_parsed_ = true;
			if (data[i] == ' ')
				i++;
			i_stream_skip(input_, i);
		}
		int ret = auth_read_line();
		if (ret <= 0)
			return ret;
		mech_parsed_ = false;
		have_cmd_ = false;
		// An initial response if anything was there.
		bool ok = true;
		if (!line_.empty() && known_mech(mech_))
			ok = sasl_secret(line_done_begin_, line_end_, line_, true,
					 "AUTH initial response");
		if (auth_begin(mech_, !line_.empty(), ok)) {
			waiting_ = true;
			return 0;
		}
		return 1;
	}

	void challenge(const char *data) override
	{
		reply(std::string("+ ") + data);
	}
	void auth_success_reply() override
	{
		reply("+OK Logged in.");
	}
	void auth_failed_reply(bool unsupported) override
	{
		reply(unsupported ? "-ERR Unsupported authentication mechanism." :
		      "-ERR [AUTH] Authentication failed.");
	}
	void auth_aborted_reply() override
	{
		reply("-ERR Authentication aborted by client.");
	}

	std::string cmd_, mech_;
	bool have_cmd_ = false, mech_parsed_ = false, user_ = false;
	bool empty_user_ = false;
	unsigned int bad_counter_ = 0;
};

// --- SMTP: submission-login over lib-smtp --------------------------------

class SmtpLogin : public Login {
public:
	SmtpLogin(const std::string &client, unsigned int success_at,
		  unsigned int rounds)
		: Login(client, success_at, rounds)
	{
		// submission-login/client.c: command_limits
		struct smtp_command_limits limits;
		memset(&limits, 0, sizeof(limits));
		limits.max_parameters_size = login_max_inbuf_size;
		limits.max_auth_size = login_max_auth_buf_size;
		parser_ = smtp_command_parser_init(input_, &limits);
	}
	~SmtpLogin() override { smtp_command_parser_deinit(&parser_); }

	std::string greeting() const override
	{
		return "220 host ESMTP Dovecot ready.\r\n";
	}

private:
	bool reads_input() const override { return false; }

	void handle() override
	{
		while (!done_ && !stalled_ &&
		       (waiting_ ? auth_response() : command())) {
		}
	}

	// smtp_server_command_submit_reply(): 500, 501 and 503 are bad;
	// more than max_bad_commands (3) in a row disconnect.
	void status(int code, const std::string &line)
	{
		reply(line);
		if (code == 500 || code == 501 || code == 503) {
			if (++bad_counter_ > 3) {
				reply("421 4.7.0 host Too many invalid commands.");
				stop("too many invalid commands");
			}
		} else {
			bad_counter_ = 0;
		}
	}

	// smtp_server_connection_handle_input()
	bool command()
	{
		const char *name, *params, *error;
		enum smtp_command_parse_error code;
		size_t begin = offset();
		if (stalls()) {
			stop("lib-smtp stalls (and panics once its buffer fills)");
			return false;
		}
		int ret = smtp_command_parse_next(parser_, &name, &params,
						  &code, &error);
		if (ret == 0)
			return false;
		if (ret < 0) {
			switch (code) {
			case SMTP_COMMAND_PARSE_ERROR_BROKEN_COMMAND:
				status(500, "500 5.5.2 Invalid command syntax");
				stop("broken command");
				return false;
			case SMTP_COMMAND_PARSE_ERROR_BAD_COMMAND:
				status(500, "500 5.5.2 Invalid command syntax");
				return true;
			case SMTP_COMMAND_PARSE_ERROR_LINE_TOO_LONG:
				status(500, "500 5.5.2 Line too long");
				return true;
			default:
				stop("broken stream / data too large");
				return false;
			}
		}
		if (debug)
			fprintf(stderr, "smtp: [%zu,%zu) %s '%s'\n", begin,
				offset(), name, params);
		execute(name, params, begin);
		return true;
	}

	// lib-smtp's own bug (2.3.19): smtp_command_parse_parameters() takes
	// uni_utf8_get_char_n()'s 0 for "more bytes needed", but it also
	// returns 0 for a UTF-8 lead byte followed by a NUL where a
	// continuation byte should be. The parser then stops there for good,
	// taking nothing more however much comes, until the input buffer is
	// full: i_stream_read_data() returns -2 and smtp_command_parse()
	// asserts (ret != -2), a panic of submission-login (seen with
	// Debian's 2.3.19). So the session ends there, no later byte read;
	// calling the parser would abort this process instead. Whether the
	// current line gets the parser there: its command name (letters, at
	// most SMTP_COMMAND_PARSER_MAX_COMMAND_LENGTH), a SP, then the
	// parameters as that function reads them, of the bytes sent so far.
	// (AUTH responses are read bytewise: no stall there.)
	bool stalls() const
	{
		size_t pos = offset(), end = sent();
		while (pos > 0 && client_[pos - 1] != '\n')
			pos--;
		const unsigned char *d =
			(const unsigned char *)client_.data();
		size_t i = pos;
		while (i < end && i_isalpha(d[i]))
			i++;
		if (i - pos > 32 || i >= end || d[i] != ' ')
			return false;
		size_t params = ++i;
		while (i < end) {
			unichar_t ch;
			int nch = uni_utf8_get_char_n(d + i, end - i, &ch);
			if (nch < 0)
				return false;	// "Invalid UTF-8 character"
			if (nch == 0) {
				// Stuck for good if a NUL made it 0, else only
				// waiting for the rest of the character.
				if (memchr(d + i + 1, '\0', end - i - 1) ==
				    nullptr)
					return false;
				// "line is too long" comes first.
				return i - params <= login_max_inbuf_size;
			}
			if (nch == 1 && !smtp_char_is_textstr((unsigned char)ch))
				return false;
			i += nch;
		}
		return false;
	}

	// The registered commands (smtp-server-command.c) as they answer
	// before login; those without SMTP_SERVER_CMD_FLAG_PREAUTH get 530.
	void execute(const char *name, const char *params, size_t begin)
	{
		if (strcasecmp(name, "AUTH") == 0) {
			auth(params, begin);
		} else if (strcasecmp(name, "EHLO") == 0 ||
			   strcasecmp(name, "LHLO") == 0) {
			reply("250-host\r\n250-AUTH PLAIN LOGIN\r\n"
			      "250-ENHANCEDSTATUSCODES");
			status(250, "250 SIZE");
		} else if (strcasecmp(name, "HELO") == 0) {
			status(250, "250 host");
		} else if (strcasecmp(name, "NOOP") == 0 ||
			   strcasecmp(name, "RSET") == 0) {
			status(250, "250 2.0.0 OK");
		} else if (strcasecmp(name, "QUIT") == 0) {
			status(221, "221 2.0.0 Bye");
			stop("QUIT");
		} else if (strcasecmp(name, "STARTTLS") == 0) {
			status(220, "220 2.0.0 Begin TLS negotiation now.");
			stop("STARTTLS");
		} else if (strcasecmp(name, "XCLIENT") == 0) {
			status(550, "550 5.7.14 You are not from trusted IP");
		} else if (strcasecmp(name, "MAIL") == 0 ||
			   strcasecmp(name, "RCPT") == 0 ||
			   strcasecmp(name, "DATA") == 0 ||
			   strcasecmp(name, "BDAT") == 0 ||
			   strcasecmp(name, "VRFY") == 0) {
			// DATA and BDAT have no data before login.
			status(530, "530 5.7.0 Authentication required.");
		} else {
			status(500, "500 5.5.1 Unknown command");
		}
	}

	// smtp-server-cmd-auth.c smtp_server_cmd_auth(): the parameters
	// split at each SP (t_strsplit, empty parts kept): a mechanism, then
	// at most one initial response.
	void auth(const char *params, size_t begin)
	{
		auth_state_changed();
		std::string p = params;
		size_t sp = p.find(' ');
		if (p.empty()) {
			status(501, "501 5.5.4 Missing SASL mechanism parameter");
			return;
		}
		if (sp != std::string::npos &&
		    p.find(' ', sp + 1) != std::string::npos) {
			status(501, "501 5.5.4 Invalid parameters");
			return;
		}
		std::string mech = p.substr(0, sp);
		bool ir = sp != std::string::npos, ok = true;
		if (ir && known_mech(mech)) {
			std::string resp = p.substr(sp + 1);
			size_t b = 0;
			bool checked = ir_span(resp, begin, b);
			ok = sasl_secret(b, b + resp.size(), resp, checked,
					 "AUTH initial response");
		}
		if (auth_begin(mech, ir, ok)) {
			waiting_ = true;
			response_begin_ = offset();
		}
	}

	// The initial response as sent: right before the line's CRLF/LF.
	// False if that is not clear.
	bool ir_span(const std::string &resp, size_t begin, size_t &b)
	{
		size_t end = offset(), found = 0;
		for (size_t eol = 1; eol <= 2; eol++) {
			if (end < begin + eol + resp.size() ||
			    client_[end - 1] != '\n' ||
			    (eol == 2 && client_[end - 2] != '\r'))
				continue;
			if (at(client_, end - eol - resp.size(), resp)) {
				found++;
				b = end - eol - resp.size();
			}
		}
		return found == 1;
	}

	// smtp-server-cmd-auth.c cmd_auth_input(), submission-login's
	// cmd_auth_continue(): "*" aborts.
	bool auth_response()
	{
		const char *line, *error;
		enum smtp_command_parse_error code;
		int ret = smtp_command_parse_auth_response(parser_, &line,
							   &code, &error);
		if (ret == 0)
			return false;
		auth_state_changed();
		waiting_ = false;
		if (ret < 0) {
			if (code == SMTP_COMMAND_PARSE_ERROR_LINE_TOO_LONG)
				status(500, "500 5.5.2 Line too long");
			else
				status(500, "500 5.5.2 Invalid AUTH response syntax");
			if (code != SMTP_COMMAND_PARSE_ERROR_BAD_COMMAND &&
			    code != SMTP_COMMAND_PARSE_ERROR_LINE_TOO_LONG) {
				stop("broken AUTH response");
				return false;
			}
			return true;
		}
		if (strcmp(line, "*") == 0) {
			auth_aborted_reply();
			return true;
		}
		std::string resp = line;
		size_t end = offset();
		bool checked = false;
		for (size_t eol = 1; eol <= 2 && !checked; eol++) {
			checked = end == response_begin_ + resp.size() + eol &&
				client_[end - 1] == '\n' &&
				(eol == 1 || client_[end - 2] == '\r') &&
				at(client_, response_begin_, resp);
		}
		if (!sasl_secret(response_begin_, response_begin_ + resp.size(),
				 resp, checked, "AUTH response")) {
			auth_failed_reply(false);
			return true;
		}
		if (auth_next()) {
			waiting_ = true;
			response_begin_ = offset();
		}
		return true;
	}

	void challenge(const char *data) override
	{
		// smtp_server_cmd_auth_send_challenge()
		reply(std::string("334 ") + data);
	}
	void auth_success_reply() override
	{
		status(235, "235 2.7.0 Logged in.");
	}
	void auth_failed_reply(bool unsupported) override
	{
		if (unsupported)
			status(504, "504 5.5.4 Unsupported authentication mechanism.");
		else
			status(535, "535 5.7.8 Authentication failed.");
	}
	void auth_aborted_reply() override
	{
		status(501, "501 5.5.2 Authentication aborted by client.");
	}

	// lib-smtp reads on input events: what was buffered when AUTH sent
	// a challenge or ended stays unread until the client sends more
	// (seen with Debian's 2.3.19: "AUTH LOGIN\r\n<user>\r\n" in one
	// packet gets "334" and nothing more). Taking such bytes later only
	// (at the next chunk) never takes one Dovecot would not.
	void new_input() override { stalled_ = false; }
	void auth_state_changed() { stalled_ = true; }

	struct smtp_command_parser *parser_;
	bool stalled_ = false;
	size_t response_begin_ = 0;
	unsigned int bad_counter_ = 0;
};

// --- the check -----------------------------------------------------------

size_t count(const std::string &hay, const std::string &needle)
{
	size_t n = 0;
	for (size_t pos = hay.find(needle); pos != std::string::npos;
	     pos = hay.find(needle, pos + 1))
		n++;
	return n;
}

// Occurrences of needle in client that overlap no secret span.
size_t count_outside(const std::string &client, const std::string &needle,
		     const std::vector<Secret> &secrets)
{
	size_t n = 0;
	for (size_t pos = client.find(needle); pos != std::string::npos;
	     pos = client.find(needle, pos + 1)) {
		bool inside = false;
		for (const Secret &s : secrets) {
			if (s.checked && pos < s.end &&
			    s.begin < pos + needle.size())
				inside = true;
		}
		if (!inside)
			n++;
	}
	return n;
}

std::string escaped(const std::string &s)
{
	std::string out;
	for (unsigned char c : s) {
		char buf[8];
		if (c == '\r')
			out += "\\r";
		else if (c == '\n')
			out += "\\n\n";
		else if (c == '\\')
			out += "\\\\";
		else if (c < 0x20 || c >= 0x7f) {
			snprintf(buf, sizeof(buf), "\\x%02x", c);
			out += buf;
		} else
			out += (char)c;
	}
	return out;
}

void run(const uint8_t *data, size_t size)
{
	unsigned int mode = data[0];
	unsigned int protocol = mode % 3;
#ifdef FUZZ_ONLY_PROTOCOL
	// While looking for divergences: one protocol (0-2) only.
	protocol = FUZZ_ONLY_PROTOCOL;
#endif
	unsigned int success_at = mode / 3 % 4;
	unsigned int rounds = mode / 12 % 4;

	std::string client;
	std::vector<size_t> cuts;
	for (size_t i = 1; i < size; i++) {
		if (data[i] == 0x01)
			cuts.push_back(client.size());
		else
			client += (char)data[i];
	}
	cuts.push_back(client.size());

	std::unique_ptr<Login> login;
	RedactProtocol rp;
	switch (protocol) {
	case 0:
		login.reset(new ImapLogin(client, success_at, rounds));
		rp = RedactProtocol::imap;
		break;
	case 1:
		login.reset(new Pop3Login(client, success_at, rounds));
		rp = RedactProtocol::pop3;
		break;
	default:
		login.reset(new SmtpLogin(client, success_at, rounds));
		rp = RedactProtocol::smtp;
		break;
	}

	Redactor r(rp);
	std::string out, server;
	std::string greeting = login->greeting();
	r.server_data((const unsigned char *)greeting.data(), greeting.size());
	r.flush(out);
	server = greeting;
	size_t pos = 0;
	for (size_t cut : cuts) {
		if (cut == pos)
			continue;
		std::string replies;
		if (!login->done())
			replies = login->receive(cut);
		r.client_data((const unsigned char *)client.data() + pos,
			      cut - pos, out);
		pos = cut;
		if (!replies.empty()) {
			r.server_data((const unsigned char *)replies.data(),
				      replies.size());
			r.flush(out);
			server += replies;
		}
	}
	r.finish(out);

	std::vector<Secret> secrets = login->secrets();
	login.reset();
	std::string cut_list;
	for (size_t cut : cuts)
		cut_list += " " + std::to_string(cut);

	for (const Secret &s : secrets) {
		if (!s.checked || s.end - s.begin < 4)
			continue;
		std::string text = client.substr(s.begin, s.end - s.begin);
		if (text.find('*') != std::string::npos)
			continue;
		size_t shown = count(out, text);
		size_t allowed = count_outside(client, text, secrets);
		if (shown > allowed) {
			fprintf(stderr,
				"fuzz-redact-dovecot: %s [%zu,%zu) \"%s\" that "
				"Dovecot took is in the log %zu times, only "
				"%zu explained by other client bytes\n"
				"--- client (cut at%s):\n%s\n--- server:\n%s\n"
				"--- log:\n%s\n",
				s.what, s.begin, s.end, escaped(text).c_str(),
				shown, allowed, cut_list.c_str(),
				escaped(client).c_str(),
				escaped(server).c_str(), escaped(out).c_str());
			abort();
		}
	}
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***)
{
	lib_init();
	return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	T_BEGIN {
		run(data, size);
	} T_END;
	return 0;
}

#ifdef RAWLOG_EXT_FUZZ_DRIVER
static const char *const fuzz_driver_tokens[] = {
	"LOGIN ", "AUTHENTICATE ", "PASS ", "USER ", "APOP ", "AUTH PLAIN ",
	"AUTH LOGIN", "{5}\r\n", "{3+}\r\n", "\"", "\\", "\r\n", "\n", "\r",
	"=", "*\r\n", "a ", "EHLO x\r\n", "\x01",
};
#define FUZZ_DRIVER_NAME "fuzz-redact-dovecot"
#define FUZZ_DRIVER_INITIALIZE
#include "fuzz-driver.hh"
#endif
