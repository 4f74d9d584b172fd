// ViewTracker (src/view/fold.cc): what is a body and what a command, in
// both directions, however the bytes are cut; tags paired with their
// completion; the redactor's marker found. Digests are sha256sum's.
#include "test-common.hh"

#include "view/fold.hh"

using namespace rawlog_ext;

namespace {

const std::string sha_hello =
	"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

struct Step {
	Direction dir;
	std::string data;
	long usec;	// the record's time (seconds: 1000)
};

// The items as one text per item, e.g. "C line a OK", "S begin literal",
// "C end 5 <sha> complete", "S line a OK fail 12000us".
std::vector<std::string> run(ViewProtocol proto, const std::vector<Step> &steps,
			     size_t cut = 0, bool body_lines = true)
{
	std::vector<std::string> out;
	ViewTracker t(proto, Direction::in, [&out](const ViewItem &i) {
		std::string s = i.client ? "C " : "S ";
		switch (i.kind) {
		case ViewItem::Kind::body_begin:
			s += std::string("begin ") + i.what;
			break;
		case ViewItem::Kind::body_end:
			s += "end " + std::to_string(i.size) + " " + i.sha256 +
				(i.complete ? " complete" : " incomplete");
			break;
		case ViewItem::Kind::line:
			s += (i.body ? "body " : "line ") + i.text;
			if (!i.newline)
				s += " [nl]";
			if (i.failure)
				s += " fail";
			if (i.redacted != std::string::npos)
				s += " redacted@" + std::to_string(i.redacted);
			if (i.latency_us >= 0)
				s += " " + std::to_string(i.latency_us) + "us";
			if (i.after_literal)
				s += " after-literal";
			break;
		}
		out.push_back(s);
	}, body_lines);
	for (const Step &st : steps) {
		struct timeval tv = { 1000, st.usec };
		if (cut == 0) {
			t.feed(st.dir, true, tv, st.data.data(), st.data.size());
			continue;
		}
		for (size_t i = 0; i < st.data.size(); i += cut)
			t.feed(st.dir, true, tv, st.data.data() + i,
			       std::min(cut, st.data.size() - i));
	}
	t.flush();
	return out;
}

// The same items whole, byte by byte and in 3-byte pieces.
void check(ViewProtocol proto, const std::vector<Step> &steps,
	   const std::vector<std::string> &expected)
{
	for (size_t cut : { 0, 1, 3 }) {
		std::vector<std::string> got = run(proto, steps, cut);
		if (got != expected) {
			for (const std::string &s : got)
				print_error("got: %s\n", s.c_str());
			fail_msg("items differ (cut %zu)", cut);
		}
	}
	// Without body lines: the same items but those.
	std::vector<std::string> folded;
	for (const std::string &s : expected)
		if (s.compare(2, 5, "body ") != 0)
			folded.push_back(s);
	assert_true(run(proto, steps, 1, false) == folded);
}

const Direction C = Direction::in, S = Direction::out;

void test_imap_client_literals(void **)
{
	// {N}, LITERAL+ and literal8; a body holding what looks like a
	// literal header and a tagged reply is not read as either.
	check(ViewProtocol::imap, {
		{ S, "* OK ready\r\n", 0 },
		{ C, "a APPEND INBOX {5}\r\n", 100 },
		{ S, "+ OK\r\n", 200 },
		{ C, "hello\r\n", 300 },
		{ S, "a OK done\r\n", 12300 },
		{ C, "b APPEND INBOX (\\Seen) {13+}\r\nx {9}\r\nb OK\r\n FLAGS\r\n", 20000 },
		{ C, "c APPEND INBOX ~{5}\r\nhello\r\n", 30000 },
	}, {
		"S line * OK ready",
		"C line a APPEND INBOX {5}",
		"S line + OK",
		"C begin literal",
		"C body hello [nl]",
		"C end 5 " + sha_hello + " complete",
		"C line  after-literal",
		"S line a OK done 12200us",
		"C line b APPEND INBOX (\\Seen) {13+}",
		"C begin literal",
		"C body x {9}",
		"C body b OK",
		"C end 13 20cfa81887410ce6a1c90dd2bc20c098cc0a2c5fe074e821050b7b338d1f8b7d complete",
		"C line  FLAGS after-literal",
		"C line c APPEND INBOX ~{5}",
		"C begin literal",
		"C body hello [nl]",
		"C end 5 " + sha_hello + " complete",
		"C line  after-literal",
	});
}

void test_imap_server_literals_and_failures(void **)
{
	check(ViewProtocol::imap, {
		{ C, "f FETCH 1 (BODY[] BODY[1])\r\n", 0 },
		{ S, "* 1 FETCH (BODY[] {5}\r\nhello BODY[1] {0}\r\n)\r\n", 500 },
		{ S, "f NO [SERVERBUG] x\r\n* BAD y\r\n", 1500 },
		{ C, "g NOOP\r\n", 2000 },
		{ S, "g BAD z\r\n", 2400 },
	}, {
		"C line f FETCH 1 (BODY[] BODY[1])",
		"S line * 1 FETCH (BODY[] {5}",
		"S begin literal",
		"S body hello [nl]",
		"S end 5 " + sha_hello + " complete",
		"S line  BODY[1] {0} after-literal",
		"S begin literal",
		"S end 0 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 complete",
		"S line ) after-literal",
		"S line f NO [SERVERBUG] x fail 1500us",
		"S line * BAD y fail",
		"C line g NOOP",
		"S line g BAD z fail 400us",
	});
}

void test_imap_refused_literal_is_not_sent(void **)
{
	// The server refuses the synchronizing literal: the client's next
	// bytes are a command. A LOGIN literal is the redactor's "***".
	check(ViewProtocol::imap, {
		{ C, "a APPEND INBOX {500}\r\n", 0 },
		{ S, "a NO too big\r\n", 10 },
		{ C, "b LOGIN alice {6}\r\n", 20 },
		{ S, "+ OK\r\n", 30 },
		{ C, "***\r\nc LOGIN bob ***\r\n", 40 },
	}, {
		"C line a APPEND INBOX {500}",
		"S line a NO too big fail 10us",
		"C line b LOGIN alice {6}",
		"S line + OK",
		"C line *** redacted@0",
		"C line c LOGIN bob *** redacted@12",
	});
}

void test_smtp_data_dot_stuffing(void **)
{
	// "..dot" is a stuffed "." (not the end, not in the message);
	// ".\r" without LF is data; the body ends at "\r\n.\r\n".
	check(ViewProtocol::smtp, {
		{ S, "220 mx\r\n", 0 },
		{ C, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n", 10 },
		{ S, "250 ok\r\n250 ok\r\n354 go\r\n", 20 },
		{ C, "Subject: s\r\n\r\n..dot\r\nx\r\n.\r\nQUIT\r\n", 30 },
		{ S, "250 queued\r\n", 40 },
	}, {
		"S line 220 mx",
		"C line MAIL FROM:<a@b>",
		"C line RCPT TO:<c@d>",
		"C line DATA",
		"S line 250 ok",
		"S line 250 ok",
		"S line 354 go",
		"C begin message",
		"C body Subject: s",
		"C body ",
		"C body ..dot",
		"C body x",
		"C end 23 ff7c4e4ad1b18f81bfd2d267aaaa09a2976a42d4cc34680d7201ef12d1cacd70 complete",
		"C line .",
		"C line QUIT",
		"S line 250 queued",
	});
}

void test_smtp_data_refused(void **)
{
	// DATA's reply (the third after the greeting) is no 354: no body.
	check(ViewProtocol::smtp, {
		{ S, "220 mx\r\n", 0 },
		{ C, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n", 10 },
		{ S, "250 ok\r\n550 no\r\n554 no valid recipients\r\n", 20 },
		{ C, "RSET\r\n", 30 },
	}, {
		"S line 220 mx",
		"C line MAIL FROM:<a@b>",
		"C line RCPT TO:<c@d>",
		"C line DATA",
		"S line 250 ok",
		"S line 550 no fail",
		"S line 554 no valid recipients fail",
		"C line RSET",
	});
}

void test_smtp_bdat(void **)
{
	check(ViewProtocol::smtp, {
		{ C, "EHLO c\r\nBDAT 5\r\nab\r\ncBDAT 3 LAST\r\nxyzQUIT\r\n", 0 },
		{ C, "AUTH PLAIN ***\r\n", 10 },
	}, {
		"C line EHLO c",
		"C line BDAT 5",
		"C begin BDAT chunk",
		"C body ab",
		"C body c [nl]",
		"C end 5 97c30b430f9d694aea0ed5cbfc29fd7eea7742662a87bd1b1342c22676f12bfa complete",
		"C line BDAT 3 LAST",
		"C begin BDAT chunk",
		"C body xyz [nl]",
		"C end 3 3608bca1e44ea6c4d268eb6db02260269892c0b42b86bbf1e77a6fa16c3c9282 complete",
		"C line QUIT",
		"C line AUTH PLAIN *** redacted@11",
	});
}

void test_pop3_retr_and_top(void **)
{
	// Pipelined RETR RETR: each "+OK" is followed by a message up to
	// its "." line ("..dot" a stuffed "."), folded as DATA's is; a
	// -ERR has no body; TOP n 0 is the headers; LIST, UIDL and CAPA
	// are lines (their "." too), whatever they hold.
	const std::string sha_a =
		"2f848ace40bc2e247c438a5d811cc75f6ed529289b90b034432bc499dc5fa3a1";
	check(ViewProtocol::pop3, {
		{ S, "+OK ready\r\n", 0 },
		{ C, "USER a\r\n", 10 },
		{ S, "+OK\r\n", 20 },
		{ C, "PASS ***\r\n", 30 },
		{ S, "+OK Logged in.\r\n", 40 },
		{ C, "RETR 1\r\nRETR 2\r\n", 50 },
		{ S, "+OK 23 octets\r\nSubject: a\r\n\r\n..dot\r\nx\r\n.\r\n"
		     "+OK 18 octets\r\nSubject: b\r\n\r\nhi\r\n.\r\n", 60 },
		{ C, "RETR 9\r\nTOP 1 0\r\nLIST\r\n", 70 },
		{ S, "-ERR There's no message 9.\r\n"
		     "+OK\r\nSubject: a\r\n\r\n.\r\n"
		     "+OK 2 messages:\r\n1 23\r\n..x\r\n.\r\n", 80 },
		{ C, "UIDL 1\r\nCAPA\r\n", 90 },
		{ S, "+OK 1 a\r\n+OK\r\nTOP\r\n.\r\n", 100 },
		{ C, "RETR 1\r\nQUIT\r\n", 110 },
		{ S, "+OK\r\n..\r\n.\r\n+OK bye\r\n", 120 },
	}, {
		"S line +OK ready",
		"C line USER a",
		"S line +OK",
		"C line PASS *** redacted@5",
		"S line +OK Logged in.",
		"C line RETR 1",
		"C line RETR 2",
		"S line +OK 23 octets",
		"S begin message",
		"S body Subject: a",
		"S body ",
		"S body ..dot",
		"S body x",
		"S end 23 " + sha_a + " complete",
		"S line .",
		"S line +OK 18 octets",
		"S begin message",
		"S body Subject: b",
		"S body ",
		"S body hi",
		"S end 18 ae253d147d06313e4334b64a712022e0e042051b4f03bf7f515e3d58ad9422eb complete",
		"S line .",
		"C line RETR 9",
		"C line TOP 1 0",
		"C line LIST",
		"S line -ERR There's no message 9. fail",
		"S line +OK",
		"S begin message",
		"S body Subject: a",
		"S body ",
		"S end 14 7e6153f6b7ffbdad88e9b6cc06050b419ada6c43264efe58787864c77c7d8019 complete",
		"S line .",
		"S line +OK 2 messages:",
		"S line 1 23",
		"S line ..x",
		"S line .",
		"C line UIDL 1",
		"C line CAPA",
		"S line +OK 1 a",
		"S line +OK",
		"S line TOP",
		"S line .",
		"C line RETR 1",
		"C line QUIT",
		"S line +OK",
		"S begin message",
		"S body ..",
		"S end 3 c0a317f60910eed08bbfc7b3ac6e6de1b2029bf4922d0b0d7d3759313a24b16c complete",
		"S line .",
		"S line +OK bye",
	});
}

void test_pop3_sasl_and_refused_retr(void **)
{
	// AUTH's "+ " challenge is answered by a line that is no command;
	// a RETR refused is followed by a reply, not a body; AUTH without
	// a mechanism (Dovecot lists them) is a multi-line reply.
	check(ViewProtocol::pop3, {
		{ S, "+OK ready\r\n", 0 },
		{ C, "AUTH\r\n", 10 },
		{ S, "+OK\r\nPLAIN\r\n.\r\n", 20 },
		{ C, "AUTH PLAIN\r\n", 30 },
		{ S, "+ \r\n", 40 },
		{ C, "***\r\n", 50 },
		{ S, "+OK Logged in.\r\n", 60 },
		{ C, "RETR 5\r\nSTAT\r\n", 70 },
		{ S, "-ERR no such message\r\n+OK 0 0\r\n", 80 },
	}, {
		"S line +OK ready",
		"C line AUTH",
		"S line +OK",
		"S line PLAIN",
		"S line .",
		"C line AUTH PLAIN",
		"S line + ",
		"C line *** redacted@0",
		"S line +OK Logged in.",
		"C line RETR 5",
		"C line STAT",
		"S line -ERR no such message fail",
		"S line +OK 0 0",
	});
}

void test_log_ending_inside_a_body(void **)
{
	check(ViewProtocol::imap, {
		{ C, "a APPEND INBOX {10}\r\nhel", 0 },
		{ S, "* BYE\r\n", 10 },
		{ S, "partial", 10 },
	}, {
		"C line a APPEND INBOX {10}",
		"C begin literal",
		"S line * BYE",
		"C body hel [nl]",
		"C end 3 d6a81f224bbf2f7c22baddbd5d40730eb20cfb0b3d74e10cab61788214caceb1 incomplete",
		"S line partial [nl]",
	});
}

void test_protocol_from_name_and_guess(void **)
{
	bool out;
	assert_true(view_protocol_from_name(
		"/x/20261202T101010Z_imap_abc_1_h.in", &out) == ViewProtocol::imap);
	assert_false(out);
	assert_true(view_protocol_from_name(
		"20261202T101010Z_pop3-login_abc_1_h.log", &out) == ViewProtocol::pop3);
	assert_true(view_protocol_from_name(
		"d/20261202T101010Z_submission-relay_abc_1_h_mx:25.out", &out) ==
		ViewProtocol::smtp);
	assert_true(out);
	assert_true(view_protocol_from_name(
		"20261202T101010Z_lmtp-proxy_abc_1_h.in", &out) == ViewProtocol::smtp);
	assert_true(out);
	assert_true(view_protocol_from_name("x.log", &out) == ViewProtocol::unknown);
	assert_false(out);

	// Unknown: the greeting says.
	std::vector<std::string> got = run(ViewProtocol::unknown, {
		{ S, "* OK hi\r\n", 0 },
		{ C, "a APPEND x {5}\r\nhello\r\n", 10 },
	});
	assert_true(std::find(got.begin(), got.end(), "C begin literal") != got.end());
	got = run(ViewProtocol::unknown, {
		{ S, "220 mx\r\n", 0 },
		{ C, "DATA\r\nhi\r\n.\r\n", 10 },
	});
	assert_true(std::find(got.begin(), got.end(), "C begin message") != got.end());
	got = run(ViewProtocol::unknown, { { S, "+OK\r\n", 0 },
					   { C, "DATA\r\nhi\r\n", 10 } });
	assert_true(std::find(got.begin(), got.end(), "C line hi") != got.end());
}

void test_long_lines_come_in_pieces(void **)
{
	// A line longer than max_line is handed out in pieces (memory stays
	// bounded); the literal header ending it still counts.
	std::string big(ViewTracker::max_line + 10, 'x');
	std::vector<std::string> got = run(ViewProtocol::imap, {
		{ C, "a APPEND INBOX " + big + " {5}\r\nhello\r\n", 0 },
	});
	assert_int_equal(got.size(), 6);
	assert_true(got[0].size() == 7 + ViewTracker::max_line + 5);
	assert_true(got[1] == "C line " + big.substr(0, 10 + 15) + " {5}");
	assert_true(got[2] == "C begin literal");
	assert_true(got[4] == "C end 5 " + sha_hello + " complete");

	// A POP3 "+OK" line to RETR in pieces: the message starts after
	// its last piece.
	got = run(ViewProtocol::pop3, {
		{ C, "RETR 1\r\n", 0 },
		{ S, "+OK " + big + "\r\nhello\r\n.\r\n", 10 },
	});
	assert_int_equal(got.size(), 7);
	assert_true(got[2] == "S line " + big.substr(0, 10 + 4));
	assert_true(got[3] == "S begin message");
	assert_true(got[5].compare(0, 8, "S end 7 ") == 0);
}

void test_smtp_body_only_after_the_command_line(void **)
{
	// "DATA" or "BDAT 5" and spaces up to max_line, with no line end:
	// the first piece of a long line, no command; what follows its end
	// are lines, not a body.
	const std::string pad(ViewTracker::max_line, ' ');
	for (const std::string cmd : { "DATA", "BDAT 5" }) {
		for (size_t cut : { 0, 1, 3 }) {
			std::vector<std::string> got = run(ViewProtocol::smtp, {
				{ S, "220 mx\r\n", 0 },
				{ C, cmd + pad + "\r\nhello\r\n.\r\n", 10 },
				{ S, "500 5.5.2 Line too long\r\n", 20 },
				{ C, "QUIT\r\n", 30 },
			}, cut);
			const std::vector<std::string> expected = {
				"S line 220 mx",
				"C line " + (cmd + pad).substr(0, ViewTracker::max_line) +
					" [nl]",
				"C line " + pad.substr(0, cmd.size()),
				"C line hello",
				"C line .",
				"S line 500 5.5.2 Line too long fail",
				"C line QUIT",
			};
			if (got != expected) {
				for (const std::string &s : got)
					print_error("got: %.80s\n", s.c_str());
				fail_msg("%s: items differ (cut %zu)", cmd.c_str(), cut);
			}
		}
	}
}

void test_pop3_commands_before_the_greeting(void **)
{
	// A client that does not wait for the greeting: it answers none of
	// them (a log from the start: the first command is one of before
	// the login), and the replies after it stay paired.
	const std::string sha_a =
		"345c998765510e871193cd99636bf6de2affcaf40779cc3d8f8cac382b2dc555";
	check(ViewProtocol::pop3, {
		{ C, "USER a\r\nPASS ***\r\nRETR 1\r\nQUIT\r\n", 0 },
		{ S, "+OK ready\r\n+OK\r\n+OK Logged in.\r\n", 10 },
		{ S, "+OK 17 octets\r\nSubject: a\r\n\r\nx\r\n.\r\n+OK bye\r\n", 20 },
	}, {
		"C line USER a",
		"C line PASS *** redacted@5",
		"C line RETR 1",
		"C line QUIT",
		"S line +OK ready",
		"S line +OK",
		"S line +OK Logged in.",
		"S line +OK 17 octets",
		"S begin message",
		"S body Subject: a",
		"S body ",
		"S body x",
		"S end 17 " + sha_a + " complete",
		"S line .",
		"S line +OK bye",
	});
	// A post-login log: the commands pipelined with PASS are handed
	// over and logged before pop3's "+OK Logged in.", the reply to the
	// PASS of the pre-login log.
	check(ViewProtocol::pop3, {
		{ C, "RETR 1\r\nQUIT\r\n", 0 },
		{ S, "+OK Logged in.\r\n+OK 17 octets\r\nSubject: a\r\n\r\nx\r\n"
		     ".\r\n+OK bye\r\n", 10 },
	}, {
		"C line RETR 1",
		"C line QUIT",
		"S line +OK Logged in.",
		"S line +OK 17 octets",
		"S begin message",
		"S body Subject: a",
		"S body ",
		"S body x",
		"S end 17 " + sha_a + " complete",
		"S line .",
		"S line +OK bye",
	});
}

} // namespace

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_imap_client_literals),
		cmocka_unit_test(test_imap_server_literals_and_failures),
		cmocka_unit_test(test_imap_refused_literal_is_not_sent),
		cmocka_unit_test(test_smtp_data_dot_stuffing),
		cmocka_unit_test(test_smtp_data_refused),
		cmocka_unit_test(test_smtp_bdat),
		cmocka_unit_test(test_pop3_retr_and_top),
		cmocka_unit_test(test_pop3_sasl_and_refused_retr),
		cmocka_unit_test(test_log_ending_inside_a_body),
		cmocka_unit_test(test_protocol_from_name_and_guess),
		cmocka_unit_test(test_long_lines_come_in_pieces),
		cmocka_unit_test(test_smtp_body_only_after_the_command_line),
		cmocka_unit_test(test_pop3_commands_before_the_greeting),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}
