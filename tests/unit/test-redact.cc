// Redactor: every credential form of IMAP, POP3 and SMTP, each fed whole,
// cut in two at every byte and byte by byte (with the same output every
// time); sessions without credentials come out byte-identical; what is
// held back and for how long.
//
// Sessions are written as steps from the client (C) and the server (S).
// In client steps, "[[...]]" marks a secret: the input has the bytes in
// it, the expected output has "***" in their place ("[[&...]]": nothing,
// the secret goes on from an earlier step).
#include "test-common.hh"

#include "core/redact.hh"

#include <cstdio>
#include <string>
#include <vector>

using namespace rawlog_ext;

namespace {

struct Step {
	bool server;
	std::string data;
};

Step C(const std::string &data) { return { false, data }; }
Step S(const std::string &data) { return { true, data }; }

struct Case {
	const char *name;
	std::vector<Step> steps;
	// Whether the session ends logged in (client_data only copies).
	bool passthrough;
};

// Splits "[[secret]]" markup into the bytes sent, the expected log and
// the secrets.
void unmark(const std::string &marked, std::string &input_r,
	    std::string &expected_r, std::vector<std::string> &secrets_r)
{
	size_t pos = 0;
	for (;;) {
		size_t open = marked.find("[[", pos);
		if (open == std::string::npos)
			break;
		size_t close = marked.find("]]", open + 2);
		if (close == std::string::npos)
			fail_msg("unbalanced [[ in \"%s\"", escape(marked).c_str());
		input_r.append(marked, pos, open - pos);
		expected_r.append(marked, pos, open - pos);
		std::string secret = marked.substr(open + 2, close - open - 2);
		// "[[&...]]": more of the secret before it (in an earlier
		// step), under the same marker.
		bool more = !secret.empty() && secret[0] == '&';
		if (more)
			secret.erase(0, 1);
		input_r += secret;
		if (!more)
			expected_r += "***";
		secrets_r.push_back(secret);
		pos = close + 2;
	}
	input_r.append(marked, pos, std::string::npos);
	expected_r.append(marked, pos, std::string::npos);
}

enum class Feed {
	whole,		// each step in one call, flush() after server data
	no_flush,	// the same without flush(): client_data() releases
	cut,		// the client stream cut in two at one offset
	bytes,		// everything byte by byte
};

struct Run {
	std::string out;
	bool passthrough;
};

void feed_client(Redactor &r, const std::string &data, size_t from,
		 size_t to, std::string &out)
{
	r.client_data((const unsigned char *)data.data() + from, to - from,
		      out);
	if (r.held() > Redactor::max_held)
		fail_msg("held %zu > %zu", r.held(), Redactor::max_held);
}

Run run(RedactProtocol protocol, const std::vector<Step> &steps, Feed feed,
	size_t cut = 0)
{
	Redactor r(protocol);
	Run result;
	size_t offset = 0;	// client bytes so far
	for (const Step &step : steps) {
		const std::string &d = step.data;
		if (step.server) {
			if (feed == Feed::bytes) {
				for (size_t i = 0; i < d.size(); i++) {
					r.server_data((const unsigned char *)d.data() + i, 1);
					r.flush(result.out);
				}
			} else {
				r.server_data((const unsigned char *)d.data(), d.size());
				if (feed != Feed::no_flush)
					r.flush(result.out);
			}
			continue;
		}
		if (feed == Feed::bytes) {
			for (size_t i = 0; i < d.size(); i++)
				feed_client(r, d, i, i + 1, result.out);
		} else if (feed == Feed::cut && cut > offset &&
			   cut < offset + d.size()) {
			feed_client(r, d, 0, cut - offset, result.out);
			feed_client(r, d, cut - offset, d.size(), result.out);
		} else {
			feed_client(r, d, 0, d.size(), result.out);
		}
		offset += d.size();
	}
	result.passthrough = r.passthrough();
	r.finish(result.out);
	if (r.held() != 0)
		fail_msg("held %zu after finish", r.held());
	return result;
}

void check_output(const char *name, const char *how, const std::string &got,
		  const std::string &expected,
		  const std::vector<std::string> &secrets)
{
	if (got != expected)
		fail_msg("%s (%s):\n got      \"%s\"\n expected \"%s\"", name,
			 how, escape(got).c_str(), escape(expected).c_str());
	// Implied by the above, but this is the point: short secrets like
	// "" or "*" may legitimately appear elsewhere.
	for (const std::string &secret : secrets) {
		if (secret.size() >= 4 && got.find(secret) != std::string::npos)
			fail_msg("%s (%s): secret \"%s\" in the output", name,
				 how, escape(secret).c_str());
	}
}

void check_case(RedactProtocol protocol, const Case &c)
{
	std::vector<Step> steps;
	std::string expected;
	std::vector<std::string> secrets;
	size_t client_size = 0;
	for (const Step &step : c.steps) {
		if (step.server) {
			steps.push_back(step);
			continue;
		}
		std::string input;
		unmark(step.data, input, expected, secrets);
		client_size += input.size();
		steps.push_back(C(input));
	}

	Run whole = run(protocol, steps, Feed::whole);
	check_output(c.name, "whole", whole.out, expected, secrets);
	if (whole.passthrough != c.passthrough)
		fail_msg("%s: passthrough() is %d", c.name, whole.passthrough);
	check_output(c.name, "without flush",
		     run(protocol, steps, Feed::no_flush).out, expected, secrets);
	check_output(c.name, "byte by byte",
		     run(protocol, steps, Feed::bytes).out, expected, secrets);
	for (size_t cut = 1; cut < client_size; cut++) {
		char how[64];
		snprintf(how, sizeof(how), "cut at %zu", cut);
		check_output(c.name, how, run(protocol, steps, Feed::cut, cut).out,
			     expected, secrets);
	}
}

void check_cases(RedactProtocol protocol, const std::vector<Case> &cases)
{
	for (const Case &c : cases)
		check_case(protocol, c);
}

// Message text full of what must not be taken for commands: credential
// commands, literal headers, quotes, "." and "*" lines, a bare LF.
std::string tricky_message(size_t min_size, bool smtp)
{
	static const char *const lines[] = {
		"From: alice@example.com\r\n",
		"a LOGIN alice pa55word\r\n",
		"b AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=\r\n",
		"c APPEND INBOX {5}\r\n",
		"PASS hunter2\r\n",
		"APOP alice 0123456789abcdef\r\n",
		"AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q=\r\n",
		"\"quoted {3}\r\n",
		"* OK {4+}\r\n",
		"DATA\r\n",
		"BDAT 100 LAST\r\n",
		"bare lf line\n",
		"*\r\n",
		"+ OK\r\n",
		"x LOGIN {6}\r\n",
		"\r\n",
	};
	std::string text;
	for (size_t i = 0; text.size() < min_size; i++) {
		text += lines[i % (sizeof(lines) / sizeof(lines[0]))];
		// SMTP data ends at a "." line; there it is stuffed.
		text += smtp ? "..\r\n" : ".\r\n";
	}
	return text;
}

std::string literal(const std::string &data, bool sync = true)
{
	return "{" + std::to_string(data.size()) + (sync ? "}" : "+}") +
		"\r\n";
}

// --- IMAP ------------------------------------------------------------

void test_imap_login(void **)
{
	check_cases(RedactProtocol::imap, {
		{ "atom", {
			C("a LOGIN alice [[s3cret]]\r\n"),
			S("a OK [CAPABILITY IMAP4rev1] Logged in\r\n"),
			C("b SELECT INBOX\r\n") }, true },
		{ "quoted with escapes", {
			C("a1 LOGIN \"alice\" [[\"s3\\\"c\\\\ret\"]]\r\n"),
			S("a1 OK\r\n") }, false },
		{ "quoted user with a space", {
			C("a LOGIN \"al ice\" [[\"pa ss\"]]\r\n") }, false },
		{ "synchronizing literal", {
			C("a LOGIN alice {6}\r\n"), S("+ OK\r\n"),
			C("[[s3cret]]\r\n"), S("a OK\r\n") }, false },
		{ "non-synchronizing literal", {
			C("a LOGIN alice {6+}\r\n[[s3cret]]\r\n"),
			S("a OK\r\n") }, false },
		{ "user and password literals", {
			C("a LOGIN {5}\r\n"), S("+ OK\r\n"),
			C("alice {6}\r\n"), S("+ OK\r\n"),
			C("[[s3cret]]\r\n"), S("a OK\r\n"),
			C("b LIST \"\" *\r\n") }, true },
		{ "user literal, quoted password", {
			C("a LOGIN {5+}\r\nalice [[\"s3cret\"]]\r\n") }, false },
		{ "quoted user, literal password", {
			C("a LOGIN \"alice\" {8+}\r\n[[s3cret!!]]\r\n") }, false },
		{ "lower case", { C("a login alice [[s3cret]]\r\n") }, false },
		{ "bare LF", {
			C("a LOGIN alice [[s3cret]]\n"), S("a OK\n"),
			C("b NOOP\n") }, true },
		{ "literal sent without waiting for +", {
			C("a LOGIN alice {6}\r\n[[s3cret]]\r\n"),
			S("+ OK\r\n") }, false },
		{ "literal holding a line end", {
			C("a LOGIN alice {8+}\r\n[[s3\r\ncret]]\r\n") }, false },
		{ "empty literal", { C("a LOGIN alice {0+}\r\n[[]]\r\n") }, false },
		{ "password starting with {", {
			C("a LOGIN alice [[{s3cret]]\r\n") }, false },
		{ "password like a literal header", {
			C("a LOGIN alice [[{6}x]]\r\n"),
			C("b LOGIN alice [[{6}\rx]]\r\n"),
			C("c LOGIN alice [[{6}{7}x]]\r\n"),
			C("d LOGIN alice [[{12345678901234567890}]]\r\n") }, false },
		// imap-login reads the would-be literal as commands; the
		// redactor does too, but hides them: they were meant as the
		// password.
		{ "literal8 password: imap-login refuses the line", {
			C("a LOGIN alice [[~{6+}]]\r\n[[s3cret]]\r\n"
			  "b LOGIN bob [[other]]\r\n") }, false },
		{ "refused literal password, the client waits", {
			C("a LOGIN alice [[~{6}]]\r\n"),
			S("a BAD Error in IMAP command LOGIN: literal8 not allowed here\r\n"),
			C("b LOGIN alice [[s3cret]]\r\n") }, false },
		{ "refused literal password, read as commands", {
			C("a LOGIN alice [[x{6+}]]\r\n[[b LOGI]]N bob [[other]]\r\n") },
		  false },
		{ "literal after the password swallowed too", {
			C("a LOGIN alice [[s3cret {5+}\r\nabcde more]]\r\n"),
			C("b NOOP\r\n") }, false },
		{ "words after the password", {
			C("a LOGIN alice [[s3cret and more]]\r\n") }, false },
		{ "CR inside the password", {
			C("a LOGIN alice [[s3\rcret]]\r\n") }, false },
		{ "no password", {
			C("a LOGIN alice\r\nb LOGIN\r\nc LOGIN \r\n") }, false },
		{ "without a tag, as typed by hand", {
			C("LOGIN alice [[s3cret]]\r\n"),
			S("LOGIN BAD Error in IMAP command\r\n") }, false },
		{ "failed, then a second attempt", {
			C("a LOGIN alice [[wrong1pw]]\r\n"),
			S("a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
			C("b LOGIN alice [[right2pw]]\r\n"),
			S("b OK Logged in\r\n"),
			C("c SELECT INBOX\r\n") }, true },
		{ "literal too large: imap-login disconnects", {
			C("a LOGIN alice [[{600000}]]\r\n"),
			S("* BYE Literal size too large\r\n"),
			C("[[b LOGIN alice s3cret\r\n]]") }, false },
	});
}

void test_imap_authenticate(void **)
{
	check_cases(RedactProtocol::imap, {
		{ "PLAIN", {
			C("a AUTHENTICATE PLAIN\r\n"), S("+ \r\n"),
			C("[[AGFsaWNlAHMzY3JldA==]]\r\n"),
			S("a OK Logged in\r\n"), C("b NOOP\r\n") }, true },
		{ "PLAIN with initial response", {
			C("a AUTHENTICATE PLAIN [[AGFsaWNlAHMzY3JldA==]]\r\n"),
			S("a OK\r\n") }, false },
		{ "empty initial response kept", {
			C("a AUTHENTICATE PLAIN =\r\n"), S("+ \r\n"),
			C("[[AGFsaWNlAHMzY3JldA==]]\r\n"), S("a OK\r\n") }, false },
		{ "initial response starting with =", {
			C("a AUTHENTICATE PLAIN [[=AGFsaWNl]]\r\n"), S("a NO\r\n"),
			C("b AUTHENTICATE PLAIN [[=\rAGFsaWNl]]\r\n") }, false },
		{ "no literals in AUTHENTICATE: a response line follows", {
			C("a AUTHENTICATE PLAIN [[{20+}]]\r\n[[AGFsaWNlAHMzY3JldA==\r\n]]"),
			S("a OK\r\n") }, false },
		{ "LOGIN", {
			C("a AUTHENTICATE LOGIN\r\n"), S("+ VXNlcm5hbWU6\r\n"),
			C("[[YWxpY2U=]]\r\n"), S("+ UGFzc3dvcmQ6\r\n"),
			C("[[czNjcmV0]]\r\n"), S("a OK\r\n") }, false },
		{ "XOAUTH2 failing", {
			C("a AUTHENTICATE XOAUTH2 [[dXNlcj1hbGljZQFhdXRoPUJlYXJlciB5YTI5AQE=]]\r\n"),
			S("+ eyJzdGF0dXMiOiI0MDEifQ==\r\n"), C("\r\n"),
			S("a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
			C("b LOGOUT\r\n") }, false },
		{ "OAUTHBEARER, lower case", {
			C("a authenticate oauthbearer [[bixhPWFsaWNlLAFhdXRoPUJlYXJlciB5YTI5AQE=]]\r\n"),
			S("a OK\r\n") }, false },
		{ "cancel", {
			C("a AUTHENTICATE PLAIN\r\n"), S("+ \r\n"), C("*\r\n"),
			S("a BAD Authentication aborted by client.\r\n"),
			C("b CAPABILITY\r\n") }, false },
		{ "cancel, bare LF", {
			C("a AUTHENTICATE PLAIN\n"), S("+ \n"), C("*\n"),
			S("a BAD aborted\n"), C("b CAPABILITY\n") }, false },
		{ "responses that only start like a cancel", {
			C("a AUTHENTICATE PLAIN\r\n"), S("+ \r\n"),
			C("[[*AGFs]]\r\n"), S("+ \r\n"), C("[[**]]\r\n"),
			S("+ \r\n"), C("[[*\rx]]\r\n"), S("+ \r\n"),
			C("[[AG\rFs]]\r\n"), S("a NO\r\n") }, false },
		{ "response before the continuation", {
			C("a AUTHENTICATE PLAIN\r\n[[AGFsaWNlAHMzY3JldA==\r\n]]"),
			S("+ \r\na OK\r\n") }, false },
		{ "failed, then success", {
			C("a AUTHENTICATE PLAIN\r\n"), S("+ \r\n"),
			C("[[AGFsaWNlAHdyb25n]]\r\n"), S("a NO failed\r\n"),
			C("b AUTHENTICATE LOGIN [[YWxpY2U=]]\r\n"),
			S("+ UGFzc3dvcmQ6\r\n"), C("[[czNjcmV0]]\r\n"),
			S("b OK\r\n"), C("c LOGOUT\r\n") }, true },
		{ "reply to an earlier command with the same tag", {
			C("a NOOP\r\na AUTHENTICATE PLAIN\r\n"),
			S("a OK NOOP completed.\r\n+ \r\n"),
			C("[[AGFsaWNlAHMzY3JldA==]]\r\n"), S("a OK\r\n") }, false },
		{ "replies to other tags and untagged lines", {
			C("x NOOP\r\na AUTHENTICATE PLAIN\r\n"),
			S("* 1 EXISTS\r\n+ \r\nx OK\r\n"),
			C("[[AGFsaWNlAHMzY3JldA==\r\n]]"),
			S("* OK still here\r\na NO\r\n"), C("b NOOP\r\n") }, false },
		{ "a tagged reply inside a server literal", {
			C("a AUTHENTICATE PLAIN\r\n"),
			S("* OK {6}\r\na OK\r\n\r\n+ \r\n"),
			C("[[AGFsaWNlAHMzY3JldA==]]\r\n"), S("a OK\r\n") }, false },
		{ "a tagged reply after a server literal", {
			C("a AUTHENTICATE PLAIN\r\n"),
			S("* X {2}\r\nab a OK\r\n+ \r\n"),
			C("[[AGFsaWNlAHMzY3JldA==]]\r\n") }, false },
	});
}

void test_imap_no_credentials(void **)
{
	const std::string big = tricky_message(2000, false);
	const std::string small = tricky_message(300, false);
	check_cases(RedactProtocol::imap, {
		{ "APPEND, synchronizing literal", {
			C("a APPEND INBOX (\\Seen) " + literal(big)),
			S("+ OK\r\n"), C(big + "\r\n"), S("a OK\r\n"),
			C("b LOGIN alice [[s3cret]]\r\n") }, false },
		{ "MULTIAPPEND, non-synchronizing", {
			C("a APPEND INBOX " + literal(small, false) + small +
			  " " + literal(small, false) + small + "\r\n"
			  "b LOGIN alice [[s3cret]]\r\n") }, false },
		{ "literal sent without waiting for +", {
			C("a APPEND INBOX " + literal(small) + small + "\r\n"),
			S("+ OK\r\na OK\r\n"),
			C("b LOGIN alice [[s3cret]]\r\n") }, false },
		{ "literal refused", {
			C("a APPEND nobox {10}\r\n"),
			S("a NO [TRYCREATE] No such mailbox\r\n"),
			C("b LOGIN alice [[s3cret]]\r\n") }, false },
		{ "quoted strings are not literals", {
			C("a SEARCH SUBJECT \"x {5}\"\r\n"
			  "b SEARCH SUBJECT \"\\\" {5}\r\n"
			  "c LOGIN alice [[s3cret]]\r\n") }, false },
		{ "words that only look like commands", {
			C("LOGINS a b\r\na LOGINX b c\r\na AUTHENTICATED x y\r\n"
			  "a LIST \"\" LOGIN\r\n* LOGIN x\r\n\r\n \r\n"
			  "a LOGI\rN alice pw\r\nLOGIN\r alice pw\r\n") }, false },
		{ "a session without login", {
			C("a CAPABILITY\r\nb ID (\"name\" \"client\")\r\n"
			  "c STARTTLS\r\n"),
			S("* CAPABILITY IMAP4rev1\r\na OK\r\nb OK\r\nc OK\r\n"),
			C("d LOGOUT\r\n") }, false },
	});
}

void test_imap_pipelining(void **)
{
	check_cases(RedactProtocol::imap, {
		{ "commands around logins in one chunk", {
			C("a CAPABILITY\r\nb LOGIN alice [[s3cret]]\r\n"
			  "c SELECT INBOX\r\nd LOGIN bob {6+}\r\n[[second]]\r\n"
			  "e NOOP\r\n"),
			S("* CAPABILITY IMAP4rev1\r\na OK\r\nb NO\r\nc BAD\r\n"
			  "d OK\r\ne OK\r\n"),
			C("f SELECT INBOX\r\n") }, true },
		{ "reply comes after several lines", {
			C("a LOGIN alice [[s3cret]]\r\nb SELECT INBOX\r\n"
			  "c APPEND INBOX {13+}\r\nx LOGIN u p\r\n\r\n"
			  "d LOGIN bob [[another]]\r\n"),
			S("a OK\r\n"),
			C("e FETCH 1 BODY[]\r\n") }, true },
		{ "a login reply while the next line is unfinished", {
			C("a LOGIN alice [[s3cret]]\r\nb LOGIN bob "),
			S("a OK\r\n"),
			C("[[other1]]\r\nc NOOP\r\n") }, true },
	});
}

void test_imap_preauth(void **)
{
	check_cases(RedactProtocol::imap, {
		{ "nothing is inspected after PREAUTH", {
			S("* PREAUTH [CAPABILITY IMAP4rev1] Logged in as alice\r\n"),
			C("a LOGIN alice notredacted\r\n") }, true },
	});
}

// Where the redactor read a client differently from imap-login (Dovecot
// 2.3.19.1) and logged a password that imap-login would take. Each case
// logged the secret before. A line imap-login refuses has no literal on
// it (client_handle_parser_error() skips to the next LF): the bytes after
// it are the next command.
void test_imap_dovecot_divergences(void **)
{
	const std::string next = "b LOGIN alice [[s3cret]]\r\n";
	// What a literal on the refused line would have covered.
	const std::string n = "{22+}\r\n";
	const std::string nul(1, '\0');
	check_cases(RedactProtocol::imap, {
		{ "bad tag (read_tag)", { C("a* NOOP " + n + next) }, false },
		{ "tag too long (IMAP_TAG_MAX_LEN)", {
			C(std::string(127, 't') + " NOOP " + n + next) }, false },
		{ "no command name", { C("a  " + n + next) }, false },
		{ "bad command name", { C("a NO{OP " + n + next) }, false },
		{ "'{' in an atom", { C("a NOOP x" + n + next) }, false },
		{ "CR without LF", { C("a NOOP x\ry " + n + next) }, false },
		{ "unexpected ')'", { C("a NOOP ) " + n + next) }, false },
		{ "NUL in a quoted string", {
			C("a NOOP \"x" + nul + "\" " + n + next) }, false },
		{ "8-bit atom", { C("a NOOP \xe4 " + n + next) }, false },
		{ "literal8 (no IMAP_PARSE_FLAG_LITERAL8)", {
			C("a NOOP ~" + n + next) }, false },
		{ "bad literal before", { C("a NOOP {2x} " + n + next) }, false },
		{ "literal larger than the line takes", {
			C("a NOOP {9000+}\r\n" + next) }, false },
		{ "line too long", {
			C("a NOOP " + [] {
				std::string words;
				while (words.size() < 8200)
					words += "x ";
				return words;
			}() + n + next) }, false },
		{ "AUTHENTICATE: no literal as the mechanism", {
			C("a AUTHENTICATE " + n),
			S("a NO Unsupported authentication mechanism.\r\n"),
			C(next) }, false },
		{ "AUTHENTICATE: a CR ends the mechanism", {
			C("a AUTHENTICATE PLAIN[[\rAGFsaWNlAHMzY3JldA==]]\r\n"),
			S("a OK\r\n") }, false },
		{ "ID NIL: the rest of the line is skipped", {
			C("a ID NIL " + n + next) }, false },
		{ "ID after its list", {
			C("a ID (\"name\" \"x\") " + n + next) }, false },
		{ "ID with an atom key", { C("a ID (name " + n + next) }, false },
		{ "ID with a key over 30 bytes", {
			C("a ID (\"" + std::string(31, 'k') + "\" " + n + next) },
		  false },
		// (A second list is over imap-login's limit, or refused when
		// it closes: what follows waits for the reply.)
		{ "ID with a list value", {
			C("a ID (\"name\" (x) " + n + "[[b LOGIN x y\r\n]]"),
			S("a BAD Invalid ID parameters\r\n"),
			C("[[&b LOGIN alice s3cret\r\n]]") }, false },
		{ "ID without a list", { C("a ID x " + n + next) }, false },
		// (Not a divergence: that these literals still count.)
		{ "ID: literals inside the list are read", {
			C("a ID ({4+}\r\nname {22+}\r\nb LOGIN alice other!\r\n)\r\n"
			  + next), S("* ID NIL\r\na OK ID completed.\r\n") },
		  false },
		// Refused by imap-login, hidden all the same.
		{ "refused LOGIN: the rest of the line", {
			C("a LOGIN alice[[\ts3cret]]\r\n"
			  "b LOGIN alice[[(s3cret]]\r\n"
			  "c LOGIN \"alice[[" + nul + "\" s3cret]]\r\n") }, false },
		{ "empty non-synchronizing literal", {
			C("a LOGIN {+}\r\n [[s3cret]]\r\n") }, false },
		{ "empty synchronizing literal", {
			C("a LOGIN {}\r\n"), S("+ OK\r\n"),
			C(" [[s3cret]]\r\n") }, false },
		// Tags and names the two Dovecot lines read differently
		// (imap_parser_read_next_atom(): 2.3 takes 0x7f and refuses
		// ']' in a tag, 2.4 the reverse): a literal on such a line is
		// one for one line only, so what follows is hidden.
		{ "0x7f in the tag: taken by 2.3 only", {
			C("a\x7f NOOP {22}\r\n"), S("+ OK\r\n"),
			C("[[b LOGIN alice s3cret\r\n]]") }, false },
		{ "0x7f in the tag, empty literal (2.4 refuses)", {
			C("c\x7f 8 {}\r\n"),
			S("* BAD Error in IMAP command received by server.\r\n"),
			C("[[s LOGIN {5}\r\n]]"), S("+ OK\r\n"),
			C("[[&alice s3cret\r\n]]") }, false },
		{ "0x7f in the name", {
			C("a NO\x7fOP {22+}\r\n[[b LOGIN alice s3cret\r\n]]") },
		  false },
		{ "']' in the tag: taken by 2.4 only", {
			C("a]b NOOP {22+}\r\n[[b LOGIN alice s3cret\r\n]]") },
		  false },
		{ "']' in the tag, no literal: read on", {
			C("a]b NOOP\r\n" + next) }, false },
		// An empty name (two spaces after the tag) is refused by both
		// lines whatever follows: no literal, the next line is read.
		{ "empty name, then 0x7f: refused by both", {
			C("a  \x7f {10}\r\nb NOOP\r\n" + next) }, false },
		{ "empty name, then LOGIN: still hidden", {
			C("a  LOGIN alice [[s3cret]]\r\nb NOOP\r\n") }, false },
	});
}

// --- POP3 ------------------------------------------------------------

const Step pop3_greeting = S("+OK Dovecot ready.\r\n");

void test_pop3_credentials(void **)
{
	check_cases(RedactProtocol::pop3, {
		{ "USER and PASS", {
			pop3_greeting, C("USER alice\r\n"), S("+OK\r\n"),
			C("PASS [[s3cret]]\r\n"), S("+OK Logged in.\r\n"),
			C("STAT\r\n") }, true },
		{ "PASS: everything after the first space", {
			pop3_greeting, C("pass [[s3 cr et]]\r\n"),
			C("PASS [[ s3cret]]\r\n"), C("Pass [[*]]\r\n") }, false },
		{ "PASS without a password", {
			pop3_greeting, C("PASS\r\nPASS \r\nPASSWORD x\r\n") }, false },
		{ "APOP", {
			pop3_greeting,
			C("APOP alice [[c4c9334bac560ecc979e58001b3e22fb]]\r\n"),
			S("+OK\r\n") }, false },
		{ "AUTH PLAIN with initial response", {
			pop3_greeting,
			C("AUTH PLAIN [[AGFsaWNlAHMzY3JldA==]]\r\n"),
			S("+OK Logged in.\r\n"), C("LIST\r\n") }, true },
		{ "AUTH PLAIN", {
			pop3_greeting, C("AUTH PLAIN\r\n"), S("+ \r\n"),
			C("[[AGFsaWNlAHMzY3JldA==]]\r\n"), S("+OK\r\n") }, false },
		{ "AUTH LOGIN", {
			pop3_greeting, C("AUTH LOGIN\r\n"),
			S("+ VXNlcm5hbWU6\r\n"), C("[[YWxpY2U=]]\r\n"),
			S("+ UGFzc3dvcmQ6\r\n"), C("[[czNjcmV0]]\r\n"),
			S("+OK\r\n") }, false },
		{ "empty initial response kept", {
			pop3_greeting, C("AUTH PLAIN =\r\n"), S("+ \r\n"),
			C("[[AGFsaWNlAHMzY3JldA==]]\r\n"), S("-ERR failed\r\n"),
			C("QUIT\r\n") }, false },
		{ "cancel", {
			pop3_greeting, C("AUTH PLAIN\r\n"), S("+ \r\n"),
			C("*\r\n"), S("-ERR Authentication aborted\r\n"),
			C("USER alice\r\n") }, false },
		{ "XOAUTH2 failing", {
			pop3_greeting,
			C("AUTH XOAUTH2 [[dXNlcj1hbGljZQFhdXRoPUJlYXJlciB5YTI5AQE=]]\r\n"),
			S("+ eyJzdGF0dXMiOiI0MDEifQ==\r\n"), C("\r\n"),
			S("-ERR [AUTH] failed\r\n"), C("QUIT\r\n") }, false },
		{ "failed, then a second attempt", {
			pop3_greeting, C("USER alice\r\nPASS [[wrong1pw]]\r\n"),
			S("+OK\r\n-ERR [AUTH] Authentication failed.\r\n"),
			C("USER alice\r\nPASS [[right2pw]]\r\n"),
			S("+OK\r\n+OK Logged in.\r\n"), C("RETR 1\r\n") }, true },
		{ "pipelined", {
			pop3_greeting,
			C("CAPA\r\nUSER alice\r\nPASS [[s3cret]]\r\nSTAT\r\n"),
			S("+OK\r\nUSER\r\n.\r\n+OK\r\n+OK Logged in.\r\n+OK 0 0\r\n"),
			C("QUIT\r\n") }, true },
		{ "status lines inside a multi-line reply", {
			pop3_greeting, C("CAPA\r\nAUTH PLAIN\r\n"),
			S("+OK\r\nSASL PLAIN\r\n-ERR not a reply\r\n"
			  "+OK not a reply\r\n.\r\n+ \r\n"),
			C("[[AGFsaWNlAHMzY3JldA==]]\r\n"), S("+OK\r\n"),
			C("STAT\r\n") }, true },
		{ "AUTH without a mechanism lists them", {
			pop3_greeting, C("AUTH\r\n"),
			S("+OK\r\nPLAIN\r\n-ERR x\r\n.\r\n"),
			C("USER alice\r\nPASS [[x1x2x3]]\r\n") }, false },
		{ "bare LF", {
			pop3_greeting, C("USER alice\nPASS [[s3cret]]\n"),
			S("+OK\n+OK\n"), C("STAT\n") }, true },
		{ "CR inside the password", {
			pop3_greeting, C("PASS [[s3\rcret]]\r\n") }, false },
		{ "CR inside the command: pop3-login drops it", {
			pop3_greeting, C("PA\rSS [[s3cret]]\r\nPASS\r [[s3cret]]\r\n"
					 "PASS\r\n") }, false },
	});
}

// The same for pop3-login: client_read_cmd_name() drops CRs inside the
// name and ends it at a NUL or after 8 bytes; cmd_auth() ends the
// mechanism at a CR.
void test_pop3_dovecot_divergences(void **)
{
	const std::string nul(1, '\0');
	check_cases(RedactProtocol::pop3, {
		{ "CR before the space", {
			pop3_greeting, C("PASS\r [[s3cret]]\r\n") }, false },
		{ "CRs up to the name's 8 bytes, no space", {
			pop3_greeting, C("pass\r\r\r\r[[s3cret]]\r\n") }, false },
		{ "NUL ends the name", {
			pop3_greeting, C("PASS[[" + nul + "s3cret]]\r\n") }, false },
		{ "APOP with a CR in the name", {
			pop3_greeting,
			C("AP\rOP alice [[c4c9334bac560ecc979e58001b3e22fb]]\r\n") },
		  false },
		{ "AUTH with a CR in the name", {
			pop3_greeting, C("AUTH\r PLAIN [[AGFsaWNlAHMzY3JldA==]]\r\n") },
		  false },
		{ "AUTH with a CR in the name, then a response", {
			pop3_greeting, C("A\rUTH PLAIN\r\n"), S("+ \r\n"),
			C("[[AGFsaWNlAHMzY3JldA==]]\r\n"), S("+OK\r\n") }, false },
		{ "a CR ends the mechanism", {
			pop3_greeting,
			C("AUTH PLAIN[[\rAGFsaWNlAHMzY3JldA==]]\r\n") }, false },
		{ "a NUL in the mechanism", {
			pop3_greeting,
			C("AUTH PLAIN[[" + nul + "AGFsaWNlAHMzY3JldA==]]\r\n") }, false },
	});
}

// --- SMTP ------------------------------------------------------------

const Step smtp_greeting = S("220 mx.example.com ESMTP\r\n");
const Step smtp_ehlo_reply =
	S("250-mx.example.com\r\n250-PIPELINING\r\n250-CHUNKING\r\n"
	  "250 AUTH PLAIN LOGIN XOAUTH2\r\n");

void test_smtp_auth(void **)
{
	check_cases(RedactProtocol::smtp, {
		{ "PLAIN with initial response", {
			smtp_greeting, C("EHLO client\r\n"), smtp_ehlo_reply,
			C("AUTH PLAIN [[AGFsaWNlAHMzY3JldA==]]\r\n"),
			S("235 2.7.0 Authentication successful\r\n"),
			C("MAIL FROM:<alice@example.com>\r\n") }, true },
		{ "LOGIN", {
			smtp_greeting, C("AUTH LOGIN\r\n"),
			S("334 VXNlcm5hbWU6\r\n"), C("[[YWxpY2U=]]\r\n"),
			S("334 UGFzc3dvcmQ6\r\n"), C("[[czNjcmV0]]\r\n"),
			S("235 2.7.0 OK\r\n") }, false },
		{ "LOGIN with initial response", {
			smtp_greeting, C("AUTH LOGIN [[YWxpY2U=]]\r\n"),
			S("334 UGFzc3dvcmQ6\r\n"), C("[[czNjcmV0]]\r\n"),
			S("235 2.7.0 OK\r\n"), C("QUIT\r\n") }, true },
		{ "empty initial response kept", {
			smtp_greeting, C("AUTH PLAIN =\r\n"), S("334 \r\n"),
			C("[[AGFsaWNlAHMzY3JldA==]]\r\n"), S("235 OK\r\n") }, false },
		{ "XOAUTH2 failing", {
			smtp_greeting,
			C("AUTH XOAUTH2 [[dXNlcj1hbGljZQFhdXRoPUJlYXJlciB5YTI5AQE=]]\r\n"),
			S("334 eyJzdGF0dXMiOiI0MDEifQ==\r\n"), C("\r\n"),
			S("535-5.7.8 Username and Password not accepted.\r\n"
			  "535 5.7.8 Learn more\r\n"),
			C("QUIT\r\n") }, false },
		{ "cancel", {
			smtp_greeting, C("AUTH PLAIN\r\n"), S("334 \r\n"),
			C("*\r\n"), S("501 5.5.2 Authentication cancelled\r\n"),
			C("QUIT\r\n") }, false },
		{ "failed, then a second attempt", {
			smtp_greeting, C("auth plain [[AGFsaWNlAHdyb25n]]\r\n"),
			S("535 5.7.8 Authentication failed\r\n"),
			C("Auth Login\r\n"), S("334 VXNlcm5hbWU6\r\n"),
			C("[[YWxpY2U=]]\r\n"), S("334 UGFzc3dvcmQ6\r\n"),
			C("[[czNjcmV0]]\r\n"), S("235 OK\r\n"),
			C("MAIL FROM:<>\r\n") }, true },
		{ "AUTH without a mechanism", {
			smtp_greeting, C("AUTH\r\nAUTH \r\n"),
			S("501 no\r\n501 no\r\n"), C("NOOP\r\n") }, false },
		{ "bare LF", {
			smtp_greeting, C("AUTH PLAIN\n"), S("334 \n"),
			C("[[AGFsaWNlAHMzY3JldA==]]\n"), S("235 OK\n"),
			C("QUIT\n") }, true },
		{ "a greeting spread over lines", {
			S("220-mx.example.com\r\n220 ESMTP\r\n"),
			C("AUTH PLAIN\r\n"), S("334 \r\n"),
			C("[[AGFsaWNlAHMzY3JldA==]]\r\n") }, false },
	});
}

// The same for submission-login (lib-smtp). It takes no BDAT (even where
// its EHLO reply lists the backend's CHUNKING): BDAT is refused and its
// "chunk" is read as commands.
void test_smtp_dovecot_divergences(void **)
{
	const std::string auth = "AUTH PLAIN [[AGFsaWNlAHMzY3JldA==]]\r\n";
	check_cases(RedactProtocol::smtp, {
		{ "BDAT without CHUNKING", {
			smtp_greeting, C("EHLO client\r\n"),
			S("250-mx.example.com\r\n250 AUTH PLAIN\r\n"),
			C("BDAT 33\r\n" + auth),
			S("502 5.5.1 Unsupported command\r\n") }, false },
		{ "BDAT refused although CHUNKING is listed", {
			smtp_greeting, C("EHLO client\r\n"), smtp_ehlo_reply,
			C("BDAT 33\r\n" + auth),
			S("502 5.5.1 Unsupported command\r\n235 2.7.0 OK\r\n"),
			C("QUIT\r\n") }, true },
		// Refused by lib-smtp, hidden all the same.
		{ "a tab after the mechanism", {
			smtp_greeting, C("AUTH PLAIN[[\tAGFsaWNlAHMzY3JldA==]]\r\n") },
		  false },
		{ "a tab after AUTH", {
			smtp_greeting, C("AUTH[[\tPLAIN AGFsaWNlAHMzY3JldA==]]\r\n") },
		  false },
		{ "a CR after the mechanism", {
			smtp_greeting, C("AUTH PLAIN[[\rAGFsaWNlAHMzY3JldA==]]\r\n") },
		  false },
	});
}

// An AUTH that fails at once (an unknown mechanism, a response lib-smtp
// refuses, an initial response that fails) ends its exchange there:
// Dovecot reads the client's next pipelined line as a command, an AUTH
// there starting an exchange of its own. The pipelined line was hidden
// as a response before the reply came; the exchange it starts goes on.
// (The differential fuzzer's seeds in tests/fuzz/run.sh.)
void test_auth_pipelined_after_failure(void **)
{
	const std::string plain = "[[AGFsaWNlAHMzY3JldA==]]\r\n";
	check_cases(RedactProtocol::pop3, {
		{ "unknown mechanism, then AUTH", {
			pop3_greeting, C("AUTH X\r\n[[AUTH PLAIN]]\r\n"),
			S("-ERR Unsupported authentication mechanism.\r\n"
			  "+ \r\n"),
			C(plain), S("-ERR [AUTH] Authentication failed.\r\n"),
			C("QUIT\r\n") }, false },
	});
	// The reply comes while the pipelined line is being read: it stays
	// hidden to its end and is read again as a command there.
	check_cases(RedactProtocol::pop3, {
		{ "the reply within the pipelined AUTH", {
			pop3_greeting, C("AUTH X\r\n[[AUTH PL]]"),
			S("-ERR Unsupported authentication mechanism.\r\n"),
			C("[[&AIN]]\r\n"), S("+ \r\n"), C(plain),
			S("-ERR [AUTH] Authentication failed.\r\n"),
			C("QUIT\r\n") }, false },
		{ "the reply within the response after it", {
			pop3_greeting,
			C("AUTH X\r\n[[AUTH PLAIN]]\r\n[[AGFsaWNl]]"),
			S("-ERR Unsupported authentication mechanism.\r\n"
			  "+ \r\n"),
			C("[[&AHMzY3JldA==]]\r\n"),
			S("-ERR [AUTH] Authentication failed.\r\n"),
			C("QUIT\r\n") }, false },
		{ "a login ends it: the pipelined line stays hidden", {
			pop3_greeting,
			C("AUTH PLAIN " + plain + "[[STAT]]\r\n"),
			S("+OK Logged in.\r\n+OK 0 0\r\n"),
			C("QUIT\r\n") }, true },
	});
	check_cases(RedactProtocol::imap, {
		{ "unknown mechanism, then AUTHENTICATE", {
			C("a AUTHENTICATE PLAN\r\n"
			  "[[b AUTHENTICATE PLAIN\r\n]]"),
			S("a NO Unsupported authentication mechanism.\r\n"
			  "+ \r\n"),
			C(plain), S("b NO [AUTHENTICATIONFAILED] no\r\n"),
			C("c LOGOUT\r\n") }, false },
		// The reply comes within a LITERAL+ of the pipelined line.
		{ "unknown mechanism, then LOGIN with a LITERAL+", {
			C("0a AUTHENTICATE PLAN\r\n[[b LOGIN {5+}\r\nal]]"),
			S("0a NO Unsupported authentication mechanism.\r\n"),
			C("ice [[s3cretpw]]\r\n"),
			S("b NO [AUTHENTICATIONFAILED] no\r\n"),
			C("c LOGOUT\r\n") }, false },
		// ... and within a synchronizing literal the client did not
		// wait for.
		{ "unknown mechanism, then LOGIN with an unawaited literal", {
			C("a AUTHENTICATE PLAN\r\n[[b LOGIN  {8}\r\nT]]"),
			S("a NO Unsupported authentication mechanism.\r\n"
			  "+ OK\r\n"),
			C("[[\x03\nTT s3cretpw\r\n]]"),
			S("b NO [AUTHENTICATIONFAILED] no\r\n"),
			C("c LOGOUT\r\n") }, false },
		{ "... the literal's first line complete", {
			C("a AUTHENTICATE PLAN\r\n[[b LOGIN  {6}\n\rT\x03\n]]"),
			S("a NO Unsupported authentication mechanism.\r\n"
			  "+ OK\r\n"),
			C("[[TT s6cretpw\r\n]]"),
			S("b NO [AUTHENTICATIONFAILED] no\r\n"),
			C("c LOGOUT\r\n") }, false },
		{ "unknown mechanism, then LOGIN with a literal", {
			C("a AUTHENTICATE PLAN\r\n[[b LOGIN alice {8}\r\n"
			  "s3cr]]"),
			S("a NO Unsupported authentication mechanism.\r\n"
			  "+ OK\r\n"),
			C("[[&etpw\r\n]]"),
			S("b NO [AUTHENTICATIONFAILED] no\r\n"),
			C("c LOGOUT\r\n") }, false },
	});
	check_cases(RedactProtocol::smtp, {
		{ "initial response fails, then AUTH", {
			smtp_greeting,
			C("AUTH PLAIN " + plain + "[[AUTH LOGIN]]\r\n"),
			S("535 5.7.8 Authentication failed\r\n"
			  "334 VXNlcm5hbWU6\r\n"),
			C("[[YWxpY2U=]]\r\n"), S("334 UGFzc3dvcmQ6\r\n"),
			C("[[czNjcmV0cHc=]]\r\n"),
			S("535 5.7.8 Authentication failed\r\n"),
			C("QUIT\r\n") }, false },
		{ "unknown mechanism, then AUTH", {
			smtp_greeting, C("AUTH X\r\n[[AUTH PLAIN]]\r\n"),
			S("504 5.5.4 Unsupported auth mechanism\r\n334 \r\n"),
			C(plain), S("535 5.7.8 Authentication failed\r\n"),
			C("QUIT\r\n") }, false },
		{ "refused response, then AUTH", {
			smtp_greeting, C("AUTH PLAIN\r\n"), S("334 \r\n"),
			C("[[\377]]\r\n[[AUTH LOGIN YWxpY2U=]]\r\n"),
			S("501 5.5.2 Invalid characters in base64 response\r\n"
			  "334 UGFzc3dvcmQ6\r\n"),
			C("[[czNjcmV0cHc=]]\r\n"),
			S("535 5.7.8 Authentication failed\r\n"),
			C("QUIT\r\n") }, false },
	});
}

// A continuation request means the client's next line is a response,
// whatever the redactor made of the command before it.
void test_continuation_means_response(void **)
{
	check_cases(RedactProtocol::smtp, {
		{ "334 after a line not taken for AUTH", {
			smtp_greeting, C("XAUTH PLAIN\r\n"), S("334 \r\n"),
			C("[[AGFsaWNlAHMzY3JldA==]]\r\n"), S("535 no\r\n"),
			C("QUIT\r\n") }, false },
	});
	check_cases(RedactProtocol::pop3, {
		{ "+ after a line not taken for AUTH", {
			pop3_greeting, C("XAUTH PLAIN\r\n"), S("+ \r\n"),
			C("[[AGFsaWNlAHMzY3JldA==]]\r\n"), S("-ERR no\r\n"),
			C("QUIT\r\n") }, false },
	});
	check_cases(RedactProtocol::imap, {
		// imap-login's parser answers "{8}" with "+ OK" before it
		// finds the "$": the tagged reply ends that.
		{ "a literal's + before its line is refused", {
			C(" x {8}$\r\nb LOGIN x [[0 x {8}$]]\r\n"),
			S("* BAD Error in IMAP command received by server.\r\n"
			  "+ OK\r\nb BAD Missing LF after literal size\r\n"),
			C("b LOGIN alice {8}\r\n"), S("+ OK\r\n"),
			C("[[scr3etpw]]\r\n"), S("b NO\r\n"),
			C("c LOGOUT\r\n") }, false },
		// ... and when the "+ OK" comes while the line is unfinished.
		{ "a literal's + within the line", {
			C(" x {8}$\r\nb LOGIN x [[0 x {8}]]"),
			S("* BAD Error in IMAP command received by server.\r\n"
			  "+ OK\r\n"),
			C("[[&b LOGIN8}$]]\r\nb LOGIN  alice {8}\r\n"
			  "[[s3cretpw]]\r\n"),
			S("b BAD Missing LF after literal size\r\n+ OK\r\n"
			  "b NO [AUTHENTICATIONFAILED] no\r\n"),
			C("c LOGOUT\r\n") }, false },
		// imap-login asks for a literal once it has "{8}": the "+ OK"
		// may come before the header's LF.
		{ "a literal's + before the LF", {
			C(" x {8}$\r\nb LOGIN  alice {8}\r"),
			S("* BAD Error in IMAP command received by server.\r\n"
			  "+ OK\r\n"),
			C("\n[[s3#\x96" "8}$\r]]\nb LOGIN  alice [[{8}cretpw]]\r\n"),
			S("b NO [AUTHENTICATIONFAILED] no\r\n+ OK\r\n"
			  "b BAD Missing LF after literal size\r\n"),
			C("c LOGOUT\r\n") }, false },
		// ... which skips one CR per read: "{8}\r", then "\r\n".
		{ "a literal's + after a CR, then another CR", {
			C("b LOGIN alice {8}\r"), S("+ OK\r\n"),
			C("\r\n[[3crPetpw\r\n]]"),
			S("b NO [AUTHENTICATIONFAILED] no\r\n"),
			C("[[&c LOGOUT\r\n]]") }, false },
		// ... or refused when in one read: not known at the LF, so
		// what follows is hidden.
		{ "... or refused in one read", {
			C("b LOGIN alice {8}\r\r\n[[x LOGIN bob pw123456\r\n]]"),
			S("b BAD Missing LF after literal size\r\nx NO\r\n"),
			C("[[&c LOGOUT\r\n]]") }, false },
		// ... the same with LITERAL+, "{8+}\r" then "\r\n" (found in
		// review).
		{ "more CRs after a LITERAL+ header, in two reads", {
			C("a LOGIN alice {8+}\r"),
			C("\r\n[[pw123456\r\n]]") }, false },
		// Refused before the LF, after the "+ OK" of the '}': the
		// client may send the literal all the same; hidden.
		{ "more CRs, refused, then the literal", {
			C("b LOGIN alice {8}\r\r"),
			S("+ OK\r\nb BAD Missing LF after literal size\r\n"),
			C("\n[[pw123456]]\r\n") }, false },
		// Read again after a failed AUTHENTICATE (found beside 2.4).
		{ "more CRs after a literal header, read again", {
			C("a AUTHENTICATE\n[[W\xbfLoGINE0 x {8}\r\n"
			  "b LOGIN alice  {8}\r\r\nb LOGIN alice  ]]"),
			S("a BAD Error in IMAP command received by server.\r\n"
			  "* BAD Error in IMAP command received by server.\r\n"
			  "+ OK\r\nb BAD Missing LF after literal size\r\n"),
			C("[[&{8}\r\n\n\n\n\n\xbe\n\n\n\n\n\nHLO\n\n]]"),
			S("+ OK\r\nb NO [AUTHENTICATIONFAILED] Authentication failed.\r\n") },
		  false },
		// The "+ OK" is sent at the '}', before the CRs are read: it
		// does not tell that the literal is taken. Found by the
		// differential fuzzer (minimised).
		{ "a literal's + before more CRs are refused", {
			C("\x7f 8 {}\r\r\n[[b LOGIN {6}\n\r\r\n\n6crLAN\n]]"),
			S("+ OK\r\n\x7f BAD Missing LF after literal size\r\n"
			  "+ OK\r\nb NO [AUTHENTICATIONFAILED] no\r\n"),
			C("[[&c LOGOUT\r\n]]") }, false },
		// ... the password made of LFs is hidden, line ends and all.
		{ "a literal's + after a CR, then another CR and LFs", {
			C("b LOGIN alice {8}\r"), S("+ OK\r\n"),
			C("\r\n[[\n\n\n\n\n\n\n\n\r\n]]"),
			S("b NO [AUTHENTICATIONFAILED] no\r\n"),
			C("[[&c LOGOUT\r\n]]") }, false },
		// A "+ OK" for a literal the client did not wait for, on lines
		// hidden (after a failed AUTHENTICATE) and read again: the
		// lines after its header are that literal, then its line.
		{ "an unawaited literal taken while hidden", {
			C("a AUTHENTICATE\n[[b L {6}\n\rT\x03\n"
			  "c\x7f\x7f 8 {}]]"),
			S("a BAD Error in IMAP command received by server.\r\n"
			  "+ OK\r\nb BAD Invalid characters in atom\r\n"),
			C("\ns LOGIN {6}\n\r\x03" + std::string(2, '\0') +
			  "6c[[rLAN]]\n"),
			S("+ OK\r\ns NO [AUTHENTICATIONFAILED] no\r\n"),
			C("c LOGOUT\r\n") }, false },
		// ... and a "+ OK" that came while the line asking for it
		// was hidden (after a failed AUTHENTICATE).
		{ "a literal's + while its line is hidden", {
			C("a AUTHENTICATE\n[[W LOGIN a {8}\r]]"),
			S("a BAD Error in IMAP command received by server.\r\n"
			  "+ OK\r\n"),
			C("[[\n\n\n\n}\n\n\n\r\n]]"),
			S("W NO [AUTHENTICATIONFAILED] no\r\n"),
			C("[[&c LOGOUT\r\n]]") }, false },
		{ "... and the same + before the CRs", {
			C("\x7f 8 {}"), S("+ OK\r\n"),
			C("\r\r\n[[b LOGIN {6}\n\r\r\n\n6crLAN\n]]"),
			S("\x7f BAD Missing LF after literal size\r\n"
			  "+ OK\r\nb NO [AUTHENTICATIONFAILED] no\r\n"),
			C("[[&c LOGOUT\r\n]]") }, false },
		// imap-login takes one list per command ("Too many '('"):
		// no literal after the second '(' counts. Found by the
		// differential fuzzer (minimised).
		{ "a literal after too many lists", {
			C("a A (( {}\n[[]]"), S("a BAD Too many '('\r\n"),
			C("[[&b LOGIN {8}\r\n]]"), S("+ OK\r\n"),
			C("[[&T\nTT s2cretp\n]]"),
			S("b NO [AUTHENTICATIONFAILED] no\r\n"),
			C("[[&c LOGOUT\r\n]]") }, false },
		// ... where the refusal comes first, the next line is read.
		{ "... refused before its LF", {
			C("a A (("), S("a BAD Too many '('\r\n"),
			C(" {8}\r\nb LOGIN alice [[s3cretpw]]\r\n"),
			S("b NO [AUTHENTICATIONFAILED] no\r\n"),
			C("c LOGOUT\r\n") }, false },
		// A Dovecot without the limit takes the literal.
		{ "... and taken where there is no limit", {
			C("a A (( {20}\r\n"), S("+ OK\r\n"),
			C("[[b LOGIN alice pw\r\n) \r\n]]"),
			S("a BAD Unknown command\r\n"),
			C("[[&c LOGIN bob s3cretpw\r\n]]"), S("c NO\r\n"),
			C("[[&d LOGOUT\r\n]]") }, false },
		{ "+ after a line not taken for AUTHENTICATE", {
			C("a XAUTH PLAIN\r\n"), S("+ \r\n"),
			C("[[AGFsaWNlAHMzY3JldA==]]\r\n"), S("a NO\r\n"),
			C("b LOGOUT\r\n") }, false },
	});
}

std::string dot_stuffed(const std::string &text)
{
	return text;	// tricky_message(.., true) already stuffs
}

void test_smtp_data(void **)
{
	const std::string message = dot_stuffed(tricky_message(1500, true));
	const std::string chunk = tricky_message(200, true);
	check_cases(RedactProtocol::smtp, {
		{ "DATA is not inspected", {
			smtp_greeting,
			C("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
			  "DATA\r\n"),
			S("250 2.1.0 OK\r\n250 2.1.5 OK\r\n354 End data with .\r\n"),
			C(message + ".\r\n"), S("250 2.0.0 queued\r\n"),
			C("AUTH PLAIN [[AGFsaWNlAHMzY3JldA==]]\r\n") }, false },
		{ "DATA sent before 354", {
			smtp_greeting,
			C("DATA\r\nAUTH PLAIN eHh4\r\n.\n"),
			S("354 go ahead\r\n250 OK\r\n"),
			C("AUTH PLAIN [[AGFsaWNlAHMzY3JldA==]]\r\n") }, false },
		{ "an empty message, bare LF", {
			smtp_greeting, C("DATA\n"), S("354 go\n"), C(".\n"),
			S("250 OK\n"), C("AUTH PLAIN [[AGFsaWNl]]\n") }, false },
		{ "what only looks like the end", {
			smtp_greeting, C("DATA\r\n"), S("354 go\r\n"),
			C("x\r\n.x\r\n. \r\n.\rAUTH PLAIN eHh4\r\n"
			  "AUTH PLAIN eHh4\r\n.\r\n"),
			S("250 OK\r\n"), C("AUTH PLAIN [[AGFsaWNl]]\r\n") }, false },
		{ "DATA refused: the lines are commands", {
			smtp_greeting, C("DATA\r\nAUTH PLAIN [[AGFsaWNl]]\r\n"),
			S("554 5.5.1 No valid recipients\r\n") }, false },
		{ "BDAT chunks are not inspected", {
			smtp_greeting, C("EHLO client\r\n"), smtp_ehlo_reply,
			C("BDAT " + std::to_string(chunk.size()) + "\r\n" + chunk +
			  "bdat " + std::to_string(chunk.size()) + " LAST\r\n" +
			  chunk + "BDAT 0 LAST\r\n"),
			S("250 OK\r\n250 OK\r\n250 OK\r\n"),
			C("AUTH PLAIN [[AGFsaWNlAHMzY3JldA==]]\r\n") }, false },
		{ "BDAT without a valid size", {
			smtp_greeting, C("EHLO client\r\n"), smtp_ehlo_reply,
			C("BDAT\r\nBDAT x\r\nBDAT 12345678901234567890\r\n"
			  "AUTH PLAIN [[AGFsaWNl]]\r\n") }, false },
		{ "pipelined transaction", {
			smtp_greeting,
			C("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
			  "RCPT TO:<c@example.com>\r\nDATA\r\n"),
			S("250 OK\r\n550 no such user\r\n250 OK\r\n"),
			S("354 go\r\n"), C("AUTH PLAIN eHh4\r\n.\r\nQUIT\r\n"),
			S("250 OK\r\n221 bye\r\n") }, false },
	});
}

// --- held bytes ------------------------------------------------------

struct LagCase {
	RedactProtocol protocol;
	std::vector<Step> steps;	// no markup
	std::string out;		// before finish()
	size_t held;
};

// How much is out before a line ends: held only what may be a secret or
// waits for the server.
void test_lag(void **)
{
	const RedactProtocol imap = RedactProtocol::imap;
	const RedactProtocol pop3 = RedactProtocol::pop3;
	const RedactProtocol smtp = RedactProtocol::smtp;
	const std::vector<LagCase> cases = {
		{ imap, { C("a SELECT INB") }, "a SELECT INB", 0 },
		{ imap, { C("a LOG") }, "a LOG", 0 },
		{ imap, { C("a LOGIN ali") }, "a LOGIN ali", 0 },
		{ imap, { C("a LOGIN alice s3") }, "a LOGIN alice ***", 0 },
		{ imap, { C("a LOGIN alice s3cret\r") }, "a LOGIN alice ***", 1 },
		{ imap, { C("a LOGIN alice {6") }, "a LOGIN alice ", 2 },
		{ imap, { C("a LOGIN alice {6}\r") }, "a LOGIN alice ", 4 },
		{ imap, { C("a LOGIN alice {6}\r\ns3c") },
		  "a LOGIN alice {6}\r\n", 3 },
		{ imap, { C("a LOGIN alice {6}\r\n"), S("+ OK\r\n"), C("s3c") },
		  "a LOGIN alice {6}\r\n***", 0 },
		{ imap, { C("a LOGIN alice {6+}\r\ns3c") },
		  "a LOGIN alice {6+}\r\n***", 0 },
		{ imap, { C("a AUTHENTICATE PLAIN =") },
		  "a AUTHENTICATE PLAIN ", 1 },
		{ imap, { C("a AUTHENTICATE PLAIN\r\n"), S("+ \r\n"), C("*") },
		  "a AUTHENTICATE PLAIN\r\n", 1 },
		{ imap, { C("a AUTHENTICATE PLAIN\r\n"), S("+ \r\n"), C("AGFs") },
		  "a AUTHENTICATE PLAIN\r\n***", 0 },
		{ imap, { C("a APPEND INBOX {10}\r\n"), S("+ OK\r\n"), C("01234") },
		  "a APPEND INBOX {10}\r\n01234", 0 },
		{ imap, { C("a APPEND INBOX {10}\r\n01234") },
		  "a APPEND INBOX {10}\r\n", 5 },
		// Released by server_data(), given by flush().
		{ imap, { C("a APPEND INBOX {10}\r\n01234"), S("+ OK\r\n") },
		  "a APPEND INBOX {10}\r\n01234", 0 },
		{ imap, { C("a APPEND INBOX {10}\r\nb LOGIN x y\r\n"),
			  S("a NO\r\n") },
		  "a APPEND INBOX {10}\r\nb LOGIN x ***\r\n", 0 },
		{ pop3, { C("USER al") }, "USER al", 0 },
		{ pop3, { C("PASS") }, "PASS", 0 },
		{ pop3, { C("PASS s") }, "PASS ***", 0 },
		{ pop3, { C("AUTH PLAIN =\r") }, "AUTH PLAIN ", 2 },
		{ smtp, { C("MAIL FROM:<a@exa") }, "MAIL FROM:<a@exa", 0 },
		{ smtp, { S("220 hi\r\n"), C("DATA\r\nSubject") }, "DATA\r\n", 7 },
		{ smtp, { S("220 hi\r\n"), C("DATA\r\nSubject"), S("354 go\r\n") },
		  "DATA\r\nSubject", 0 },
		{ smtp, { S("220 hi\r\n"), C("DATA\r\n"), S("354 go\r\n"),
			  C("Subject: x\r\n.") },
		  "DATA\r\nSubject: x\r\n.", 0 },
	};
	for (size_t i = 0; i < cases.size(); i++) {
		const LagCase &c = cases[i];
		Redactor r(c.protocol);
		std::string out;
		for (const Step &step : c.steps) {
			const unsigned char *p =
				(const unsigned char *)step.data.data();
			if (step.server) {
				r.server_data(p, step.data.size());
				r.flush(out);
			} else {
				r.client_data(p, step.data.size(), out);
			}
		}
		if (out != c.out || r.held() != c.held)
			fail_msg("case %zu: out \"%s\" held %zu, expected \"%s\" held %zu",
				 i, escape(out).c_str(), r.held(),
				 escape(c.out).c_str(), c.held);
	}
}

// A large literal streams through: nothing is held, every chunk comes
// out as it goes in.
void test_large_literal_streams(void **)
{
	Redactor r(RedactProtocol::imap);
	// As large as imap-login takes (the line's limit is 8192 bytes).
	const size_t size = 8000;
	std::string header = "a APPEND INBOX {" + std::to_string(size) + "}\r\n";
	std::string out;
	r.client_data((const unsigned char *)header.data(), header.size(), out);
	r.server_data((const unsigned char *)"+ OK\r\n", 6);
	r.flush(out);
	std::string expected = header;
	const std::string text = tricky_message(1000, false);
	for (size_t sent = 0; sent < size;) {
		size_t n = std::min(text.size(), size - sent);
		r.client_data((const unsigned char *)text.data(), n, out);
		expected.append(text, 0, n);
		sent += n;
		assert_int_equal(r.held(), 0);
		assert_true(out == expected);
	}
	std::string rest = "\r\nb LOGIN alice s3cret\r\n";
	r.client_data((const unsigned char *)rest.data(), rest.size(), out);
	assert_true(out == expected + "\r\nb LOGIN alice ***\r\n");
}

// A client that sends more than max_pending without waiting for the
// server is read as sending commands: held bytes stay bounded.
void test_pending_is_bounded(void **)
{
	for (RedactProtocol protocol : { RedactProtocol::imap,
					  RedactProtocol::smtp }) {
		Redactor r(protocol);
		std::string text = protocol == RedactProtocol::imap ?
			"a APPEND INBOX {100000}\r\n" : "DATA\r\n";
		std::string out;
		r.client_data((const unsigned char *)text.data(), text.size(), out);
		std::string line = "Subject: hello\r\n";
		while (text.size() < 3 * Redactor::max_pending) {
			r.client_data((const unsigned char *)line.data(),
				      line.size(), out);
			text += line;
			assert_true(r.held() <= Redactor::max_pending);
		}
		// Long given up waiting: out lags by less than a line.
		assert_true(out.size() + line.size() >= text.size());
		std::string login = protocol == RedactProtocol::imap ?
			"b LOGIN alice s3cret\r\n" : "AUTH PLAIN s3cret\r\n";
		r.client_data((const unsigned char *)login.data(), login.size(), out);
		r.finish(out);
		assert_true(out.find("s3cret") == std::string::npos);
		assert_true(out.compare(0, text.size(), text) == 0);
	}
}

// finish() releases what is held, a held secret still redacted.
void test_finish_releases_held(void **)
{
	struct {
		RedactProtocol protocol;
		std::vector<Step> steps;
		const char *out;
	} cases[] = {
		{ RedactProtocol::imap, { C("a LOGIN alice {12") },
		  "a LOGIN alice ***" },
		{ RedactProtocol::imap, { C("a LOGIN alice {12}\r") },
		  "a LOGIN alice ***" },
		{ RedactProtocol::imap, { C("a LOGIN alice s3cret\r") },
		  "a LOGIN alice ***\r" },
		{ RedactProtocol::imap, { C("a AUTHENTICATE PLAIN =\r") },
		  "a AUTHENTICATE PLAIN =\r" },
		{ RedactProtocol::imap,
		  { C("a AUTHENTICATE PLAIN\r\n"), S("+ \r\n"), C("*\r") },
		  "a AUTHENTICATE PLAIN\r\n*\r" },
		// The server never answered: read as commands.
		{ RedactProtocol::imap,
		  { C("a LOGIN alice {6}\r\nb LOGIN bob s3cret\r\n") },
		  "a LOGIN alice {6}\r\nb LOGIN bob ***\r\n" },
		{ RedactProtocol::imap,
		  { C("a APPEND x {5}\r\nb APPEND y {3}\r\nc LOGIN u pw\r\n") },
		  "a APPEND x {5}\r\nb APPEND y {3}\r\nc LOGIN u ***\r\n" },
		{ RedactProtocol::pop3, { C("AUTH PLAIN =") }, "AUTH PLAIN =" },
		{ RedactProtocol::pop3, { C("PASS s3cret\r") }, "PASS ***\r" },
		{ RedactProtocol::smtp, { C("DATA\r\nAUTH PLAIN s3cret") },
		  "DATA\r\nAUTH PLAIN ***" },
	};
	for (const auto &c : cases) {
		Redactor r(c.protocol);
		std::string out;
		for (const Step &step : c.steps) {
			const unsigned char *p =
				(const unsigned char *)step.data.data();
			if (step.server)
				r.server_data(p, step.data.size());
			else
				r.client_data(p, step.data.size(), out);
		}
		r.finish(out);
		if (out != c.out)
			fail_msg("got \"%s\", expected \"%s\"",
				 escape(out).c_str(), escape(c.out).c_str());
		assert_int_equal(r.held(), 0);
	}
}

// A client too far ahead of the server (more unanswered commands than
// can be matched to replies) is not followed any more: an exchange then
// never ends, nothing after it is logged in the clear.
void test_too_many_outstanding_commands(void **)
{
	Redactor r(RedactProtocol::smtp);
	std::string out, expected;
	auto client = [&](const std::string &data, const std::string &logged) {
		r.client_data((const unsigned char *)data.data(), data.size(), out);
		expected += logged;
	};
	auto server = [&](const std::string &data) {
		r.server_data((const unsigned char *)data.data(), data.size());
		r.flush(out);
	};
	server("220 hi\r\n");
	std::string noops;
	for (int i = 0; i < 2000; i++)
		noops += "NOOP\r\n";
	client(noops, noops);
	client("AUTH PLAIN\r\n", "AUTH PLAIN\r\n");
	std::string replies;
	for (int i = 0; i < 2000; i++)
		replies += "250 ok\r\n";
	server(replies + "334 \r\n");
	client("AGFsaWNlAHMzY3JldA==\r\n", "***\r\n");
	server("235 ok\r\n");
	client("MAIL FROM:<a@example.com>\r\n", "***\r\n");
	r.finish(out);
	assert_true(out == expected);
}

// After the login, client_data() only copies, even what looks like a
// login: that is the price of not inspecting a mail session.
void test_passthrough_after_login(void **)
{
	Redactor r(RedactProtocol::imap);
	std::string out;
	const std::string login = "a LOGIN alice s3cret\r\n";
	r.client_data((const unsigned char *)login.data(), login.size(), out);
	assert_false(r.passthrough());
	r.server_data((const unsigned char *)"a OK\r\n", 6);
	// Not before the client's next line starts.
	assert_false(r.passthrough());
	const std::string rest = "b LOGIN alice again\r\nc APPEND INBOX {5}\r\n";
	r.client_data((const unsigned char *)rest.data(), rest.size(), out);
	assert_true(r.passthrough());
	assert_int_equal(r.held(), 0);
	r.server_data((const unsigned char *)"b NO\r\n", 6);
	r.finish(out);
	assert_true(out == "a LOGIN alice ***\r\n" + rest);
}

} // namespace

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_imap_login),
		cmocka_unit_test(test_imap_authenticate),
		cmocka_unit_test(test_imap_no_credentials),
		cmocka_unit_test(test_imap_pipelining),
		cmocka_unit_test(test_imap_preauth),
		cmocka_unit_test(test_imap_dovecot_divergences),
		cmocka_unit_test(test_pop3_credentials),
		cmocka_unit_test(test_pop3_dovecot_divergences),
		cmocka_unit_test(test_smtp_auth),
		cmocka_unit_test(test_smtp_data),
		cmocka_unit_test(test_smtp_dovecot_divergences),
		cmocka_unit_test(test_auth_pipelined_after_failure),
		cmocka_unit_test(test_continuation_means_response),
		cmocka_unit_test(test_lag),
		cmocka_unit_test(test_large_literal_streams),
		cmocka_unit_test(test_pending_is_bounded),
		cmocka_unit_test(test_finish_releases_held),
		cmocka_unit_test(test_too_many_outstanding_commands),
		cmocka_unit_test(test_passthrough_after_login),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
