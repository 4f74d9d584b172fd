// libFuzzer target for the Redactor (src/core/redact*.cc).
//
// Input: the first byte picks the mode and protocol:
//   (b0 / 3) % 2 == 0  a free session for protocol b0 % 3 (imap, pop3,
//                      smtp): the rest is client bytes, a 0x02 byte
//                      starts server bytes and a 0x01 byte client bytes
//                      again (each a separate call);
//   otherwise          a credential template (next byte) filled with a
//                      password taken from the input, the client bytes cut
//                      where the rest of the input says.
// Checked:
//   - the output does not depend on how the client bytes are cut (whole
//     chunks and byte by byte agree, server bytes at the same places);
//   - held() stays within Redactor::max_held, and is 0 after finish();
//   - only deletes and "***": the output without '*' is a subsequence of
//     the input without '*', at most one marker per line;
//   - no LOGIN/AUTH/PASS/APOP anywhere in the client bytes (CRs left
//     out) and no server line asking for a SASL response: output ==
//     input;
//   - passthrough() never goes back;
//   - templates: the password never appears in the output.
//
// Built with -DRAWLOG_EXT_FUZZ_DRIVER it has its own main() (no libFuzzer
// needed): it runs the inputs given, then deterministic mutations of them
// for -max_total_time seconds.
#include "core/redact.hh"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using rawlog_ext::RedactProtocol;
using rawlog_ext::Redactor;

namespace {

struct Step {
	bool server;
	std::string data;
};

void check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz-redact: invariant failed: %s\n", what);
		abort();
	}
}

// chunks: client chunk sizes to cut each client step into (cycled), or
// empty for whole steps; bytes: everything one byte at a time.
std::string run(RedactProtocol protocol, const std::vector<Step> &steps,
		bool bytes, const std::vector<size_t> &chunks = {})
{
	Redactor r(protocol);
	std::string out;
	bool passthrough = false;
	size_t next_chunk = 0;
	for (const Step &step : steps) {
		const unsigned char *p = (const unsigned char *)step.data.data();
		size_t size = step.data.size();
		for (size_t pos = 0; pos < size;) {
			size_t n = size - pos;
			if (bytes)
				n = 1;
			else if (!step.server && !chunks.empty())
				n = std::min(n, chunks[next_chunk++ % chunks.size()]);
			if (step.server) {
				r.server_data(p + pos, n);
				r.flush(out);
			} else {
				r.client_data(p + pos, n, out);
			}
			pos += n;
			check(r.held() <= Redactor::max_held, "held <= max_held");
			check(!passthrough || r.passthrough(),
			      "passthrough stays on");
			passthrough = r.passthrough();
		}
	}
	r.finish(out);
	check(r.held() == 0, "nothing held after finish");
	return out;
}

std::string client_bytes(const std::vector<Step> &steps)
{
	std::string in;
	for (const Step &step : steps) {
		if (!step.server)
			in += step.data;
	}
	return in;
}

// Whether a server line asks for a SASL response (IMAP "+...", POP3 "+"
// but not "+OK"; SMTP 334): the client's next line is then hidden as
// one, whatever it is. (An IMAP "+" may be a literal's: conservative.)
bool asks_response(RedactProtocol protocol, const std::vector<Step> &steps)
{
	// The redactor's ServerLine drops CRs from a line's words.
	std::string server;
	for (const Step &step : steps) {
		for (char c : step.server ? step.data : std::string()) {
			if (c != '\r')
				server += c;
		}
	}
	for (size_t i = 0; i < server.size(); i++) {
		if (i > 0 && server[i - 1] != '\n')
			continue;
		const char *line = server.data() + i;
		size_t left = server.size() - i;
		if (protocol == RedactProtocol::smtp) {
			if (left >= 3 && memcmp(line, "334", 3) == 0)
				return true;
		} else if (line[0] == '+' &&
			   (protocol == RedactProtocol::imap || left < 3 ||
			    strncasecmp(line, "+OK", 3) != 0)) {
			return true;
		}
	}
	return false;
}

bool contains_nocase(const std::string &haystack, const char *needle)
{
	size_t n = strlen(needle);
	for (size_t i = 0; i + n <= haystack.size(); i++) {
		if (strncasecmp(haystack.data() + i, needle, n) == 0)
			return true;
	}
	return false;
}

std::string without_stars(const std::string &s)
{
	std::string out;
	for (char c : s) {
		if (c != '*')
			out += c;
	}
	return out;
}

bool is_subsequence(const std::string &sub, const std::string &s)
{
	size_t i = 0;
	for (size_t j = 0; i < sub.size() && j < s.size(); j++) {
		if (sub[i] == s[j])
			i++;
	}
	return i == sub.size();
}

// An IMAP command opening more lists than imap-login takes: what follows
// is hidden until its reply (an older imap-login may read literals there).
bool lists_over_limit(const std::string &in)
{
	int lists = 0;
	char last = 0;	// the last byte other than CR
	for (char c : in) {
		// A literal's header does not end the command.
		if (c == '\n' && last != '}')
			lists = 0;
		else if (c == '(' && ++lists > 1)
			return true;
		if (c != '\r')
			last = c;
	}
	return false;
}

// An IMAP line with a '{' whose tag or name holds a byte only one Dovecot
// line takes (']', 0x7f): what follows is hidden (looser than the
// Redactor's own test of the tag and name).
bool line_ambiguous(const std::string &in)
{
	size_t words = 0;
	bool odd = false, brace = false;
	for (char c : in) {
		if (c == '\n') {
			if (odd && brace)
				return true;
			words = 0;
			odd = brace = false;
			continue;
		}
		if (c == ' ')
			words++;
		else if (words < 2 && (c == ']' || c == 0x7f))
			odd = true;
		if (c == '{')
			brace = true;
	}
	return odd && brace;
}

void check_session(RedactProtocol protocol, const std::vector<Step> &steps)
{
	std::string out = run(protocol, steps, false);
	check(run(protocol, steps, true) == out, "byte by byte == whole");

	std::string in = client_bytes(steps);
	// pop3-login drops CRs inside a command name: "PA\rSS" is PASS.
	std::string words;
	for (char c : in) {
		if (c != '\r')
			words += c;
	}
	if (!contains_nocase(words, "login") && !contains_nocase(words, "auth") &&
	    !contains_nocase(words, "pass") && !contains_nocase(words, "apop") &&
	    !asks_response(protocol, steps) &&
	    !(protocol == RedactProtocol::imap &&
	      (lists_over_limit(in) || line_ambiguous(in) ||
	       // CRs after a literal header: hidden from there.
	       in.find("}\r\r") != std::string::npos)))
		check(out == in, "no credential command: output == input");
	check(is_subsequence(without_stars(out), without_stars(in)),
	      "only deletions and markers");
	size_t lines = 1;
	for (char c : in)
		lines += c == '\n' ? 1 : 0;
	check(out.size() <= in.size() + 3 * lines, "one marker per line");
}

void free_session(const uint8_t *data, size_t size)
{
	RedactProtocol protocol = (RedactProtocol)(data[0] % 3);
	std::vector<Step> steps;
	Step step = { false, "" };
	for (size_t i = 1; i < size; i++) {
		if (data[i] == 0x01 || data[i] == 0x02) {
			if (!step.data.empty())
				steps.push_back(step);
			step = { data[i] == 0x02, "" };
		} else {
			step.data += (char)data[i];
		}
	}
	if (!step.data.empty())
		steps.push_back(step);
	check_session(protocol, steps);
}

struct Template {
	RedactProtocol protocol;
	// Steps; in client steps "%P" is the password, "%N" its length.
	std::vector<Step> steps;
};

const Step greeting_pop3 = { true, "+OK ready\r\n" };
const Step greeting_smtp = { true, "220 ready\r\n" };

std::vector<Template> templates()
{
	const RedactProtocol imap = RedactProtocol::imap;
	const RedactProtocol pop3 = RedactProtocol::pop3;
	const RedactProtocol smtp = RedactProtocol::smtp;
	return {
		{ imap, { { false, "a LOGIN alice %P\r\n" }, { true, "a OK\r\n" },
			  { false, "b SELECT INBOX\r\n" } } },
		{ imap, { { false, "a CAPABILITY\r\nb LOGIN \"alice\" \"%P\"\r\nc NOOP\r\n" } } },
		{ imap, { { false, "a LOGIN alice {%N}\r\n" }, { true, "+ OK\r\n" },
			  { false, "%P\r\n" }, { true, "a OK\r\n" },
			  { false, "b NOOP\r\n" } } },
		{ imap, { { false, "a LOGIN {5+}\r\nalice {%N+}\r\n%P\r\nb NOOP\r\n" } } },
		{ imap, { { false, "a AUTHENTICATE PLAIN %P\r\n" },
			  { true, "a OK\r\n" } } },
		{ imap, { { false, "a AUTHENTICATE PLAIN\r\n" }, { true, "+ \r\n" },
			  { false, "%P\r\n" }, { true, "a NO\r\n" },
			  { false, "b LOGIN alice %P\r\n" } } },
		{ pop3, { greeting_pop3, { false, "USER alice\r\nPASS %P\r\n" },
			  { true, "+OK\r\n+OK\r\n" }, { false, "STAT\r\n" } } },
		{ pop3, { greeting_pop3, { false, "APOP alice %P\r\nQUIT\r\n" } } },
		{ pop3, { greeting_pop3, { false, "AUTH PLAIN\r\n" }, { true, "+ \r\n" },
			  { false, "%P\r\n" }, { true, "-ERR\r\n" },
			  { false, "AUTH LOGIN %P\r\n" } } },
		{ smtp, { greeting_smtp, { false, "EHLO x\r\n" }, { true, "250 ok\r\n" },
			  { false, "AUTH PLAIN %P\r\n" }, { true, "235 ok\r\n" } } },
		{ smtp, { greeting_smtp, { false, "AUTH LOGIN\r\n" },
			  { true, "334 VXNlcm5hbWU6\r\n" }, { false, "%P\r\n" },
			  { true, "334 UGFzc3dvcmQ6\r\n" }, { false, "%P\r\n" },
			  { true, "235 ok\r\n" }, { false, "QUIT\r\n" } } },
		{ smtp, { greeting_smtp, { false, "MAIL FROM:<a>\r\nDATA\r\n" },
			  { true, "250 ok\r\n354 go\r\n" },
			  { false, "hello\r\n.\r\n" }, { true, "250 ok\r\n" },
			  { false, "AUTH PLAIN %P\r\n" } } },
	};
}

std::string fill(const std::string &text, const std::string &password)
{
	std::string out;
	for (size_t i = 0; i < text.size(); i++) {
		if (text[i] == '%' && i + 1 < text.size() &&
		    (text[i + 1] == 'P' || text[i + 1] == 'N')) {
			out += text[i + 1] == 'P' ? password :
				std::to_string(password.size());
			i++;
		} else {
			out += text[i];
		}
	}
	return out;
}

void template_session(const uint8_t *data, size_t size)
{
	if (size < 2)
		return;
	const std::vector<Template> all = templates();
	const Template &t = all[data[1] % all.size()];
	size_t pos = 2;
	// Printable, no space, quote, backslash or brace: a valid atom,
	// quoted string content and response line in every template.
	std::string password;
	for (; pos < size && data[pos] != 0 && password.size() < 40; pos++) {
		unsigned char c = (unsigned char)(33 + data[pos] % 94);
		if (c == '"' || c == '\\' || c == '{' || c == '}')
			c = 'x';
		password += (char)c;
	}
	while (password.size() < 4)
		password += 'Z';
	std::vector<size_t> chunks;
	for (pos++; pos < size; pos++)
		chunks.push_back(1 + data[pos] % 32);

	std::vector<Step> steps;
	std::string plain;	// everything but the password
	for (const Step &step : t.steps) {
		steps.push_back({ step.server,
				  step.server ? step.data : fill(step.data, password) });
		plain += fill(step.data, "") + "\n";
	}
	std::string whole = run(t.protocol, steps, false);
	check(run(t.protocol, steps, false, chunks) == whole,
	      "template: any cut == whole");
	check(run(t.protocol, steps, true) == whole,
	      "template: byte by byte == whole");
	if (plain.find(password) == std::string::npos &&
	    password.find_first_not_of('*') != std::string::npos)
		check(whole.find(password) == std::string::npos,
		      "template: password not in the output");
	check_session(t.protocol, steps);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if ((data[0] / 3) % 2 == 0)
		free_session(data, size);
	else
		template_session(data, size);
	return 0;
}

#ifdef RAWLOG_EXT_FUZZ_DRIVER
static const char *const fuzz_driver_tokens[] = {
	"LOGIN ", "AUTHENTICATE ", "PASS ", "APOP ", "AUTH PLAIN ",
	"{5}\r\n", "{3+}\r\n", "\"", "\\", "\r\n", "\n", "+ OK\r\n",
	"a OK\r\n", "+OK\r\n", "-ERR\r\n", "DATA\r\n", "354 go\r\n",
	"334 \r\n", "235 ok\r\n", "BDAT 4\r\n", ".\r\n", "*\r\n",
	"=", "\x01", "\x02",
};
#define FUZZ_DRIVER_NAME "fuzz-redact"
#include "fuzz-driver.hh"
#endif
