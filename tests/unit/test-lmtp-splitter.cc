// LmtpSplitter and Spool: what each recipient's part of an LMTP
// connection contains, however the bytes are chunked.
#include "test-common.hh"

#include "core/lmtp-splitter.hh"

#include <map>
#include <memory>

using rawlog_ext::Direction;
using rawlog_ext::LmtpSplitter;
using rawlog_ext::RecipientLog;
using rawlog_ext::Spool;

namespace {

// What one recipient's log received.
struct Recorded {
	std::string in, out;
	std::string order;	// "I"/"O" per write: the interleaving
	bool closed = false;
};

class TestLog : public RecipientLog {
public:
	explicit TestLog(Recorded &rec) : rec_(rec) {}
	~TestLog() override { rec_.closed = true; }
	void write(Direction direction, const unsigned char *data, size_t size,
		   const struct timeval &) override
	{
		(direction == Direction::in ? rec_.in : rec_.out)
			.append((const char *)data, size);
		rec_.order += direction == Direction::in ? "I" : "O";
	}
	void caught_up() override { rec_.order += "|"; }

private:
	Recorded &rec_;
};

// One step of a scripted connection.
struct Step {
	enum Kind { client, server, attach } kind;
	std::string bytes;	// attach: the recipient's address
	unsigned int rcpt = 0;
};

Step C(const std::string &s) { return Step{Step::client, s}; }
Step S(const std::string &s) { return Step{Step::server, s}; }
Step A(unsigned int rcpt, const std::string &address)
{
	return Step{Step::attach, address, rcpt};
}

const struct timeval tv0 = {0, 0};

// Runs the script, feeding each byte string in pieces of at most chunk
// bytes (0 = whole). Returns the recipients' logs by index (the n-th log
// of the same index at index + 100 * n).
std::map<unsigned int, Recorded>
run(const std::vector<Step> &steps, size_t chunk = 0,
    LmtpSplitter *splitter_r = nullptr)
{
	std::map<unsigned int, Recorded> logs;
	LmtpSplitter own("/tmp");
	LmtpSplitter &splitter = splitter_r != nullptr ? *splitter_r : own;
	for (const Step &step : steps) {
		if (step.kind == Step::attach) {
			std::string error;
			unsigned int key = step.rcpt;
			while (logs.count(key) > 0)
				key += 100;
			if (!splitter.attach(step.rcpt, step.bytes, std::unique_ptr<RecipientLog>(
					new TestLog(logs[key])), error))
				fail_msg("attach(%u): %s", step.rcpt, error.c_str());
			continue;
		}
		const unsigned char *p =
			(const unsigned char *)step.bytes.data();
		size_t left = step.bytes.size();
		while (left > 0) {
			size_t n = chunk == 0 || chunk > left ? left : chunk;
			if (step.kind == Step::client)
				splitter.client_data(p, n, tv0);
			else
				splitter.server_data(p, n, tv0);
			p += n;
			left -= n;
		}
	}
	return logs;
}

// Runs the script whole, byte by byte and in 7-byte pieces: the
// recipients' logs must not depend on the chunking.
std::map<unsigned int, Recorded> run_all_chunkings(const std::vector<Step> &steps)
{
	auto logs = run(steps);
	for (size_t chunk : {1, 7}) {
		auto again = run(steps, chunk);
		assert_int_equal(again.size(), logs.size());
		for (auto &entry : logs) {
			assert_bytes_equal(again[entry.first].in, entry.second.in);
			assert_bytes_equal(again[entry.first].out, entry.second.out);
		}
	}
	return logs;
}

const char greeting[] = "220 mx LMTP ready\r\n";
const char lhlo_reply[] = "250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n";

void test_one_recipient(void **)
{
	const std::string body =
		"Subject: x\r\n\r\n..dot-stuffed\r\nline\r\n.\r\n";
	auto logs = run_all_chunkings({
		S(greeting), C("LHLO client\r\n"), S(lhlo_reply),
		C("MAIL FROM:<s@x>\r\n"), S("250 2.1.0 OK\r\n"),
		C("RCPT TO:<alice@x>\r\n"), S("250 2.1.5 OK\r\n"),
		C("DATA\r\n"), S("354 OK\r\n"),
		C(body), A(0, "alice@x"),
		S("250 2.0.0 <alice@x> abc Saved\r\n"),
		C("QUIT\r\n"), S("221 2.0.0 Bye\r\n"),
	});
	assert_int_equal(logs.size(), 1);
	const Recorded &r = logs[0];
	assert_bytes_equal(r.in, "MAIL FROM:<s@x>\r\nRCPT TO:<alice@x>\r\nDATA\r\n" +
		     body);
	assert_bytes_equal(r.out, "250 2.1.0 OK\r\n250 2.1.5 OK\r\n354 OK\r\n"
		     "250 2.0.0 <alice@x> abc Saved\r\n");
	assert_true(r.closed);
	// Wire order: each command before its reply; the replay ends
	// (caught_up) before the reply to the data passes.
	assert_string_equal(r.order.c_str(), "IOIOIOI|O");
}

// Pipelined, one recipient refused: each accepted recipient gets its own
// RCPT and reply only, and the n-th reply to the data.
void test_pipelined_mixed_recipients(void **)
{
	const std::string body = "Subject: y\r\n\r\nhi\r\n.\r\n";
	auto logs = run_all_chunkings({
		S(greeting), C("LHLO c\r\n"), S(lhlo_reply),
		C("MAIL FROM:<s@x>\r\nRCPT TO:<alice@x>\r\n"
		  "RCPT TO:<nobody@x>\r\nRCPT TO:<bob@x>\r\nDATA\r\n"),
		S("250 2.1.0 OK\r\n250 2.1.5 OK\r\n"
		  "550 5.1.1 <nobody@x> User doesn't exist\r\n"
		  "250 2.1.5 OK\r\n354 OK\r\n"),
		C(body + "QUIT\r\n"), A(0, "alice@x"), A(1, "bob@x"),
		S("250 2.0.0 <alice@x> Saved\r\n250 2.0.0 <bob@x> Saved\r\n"
		  "221 Bye\r\n"),
	});
	assert_int_equal(logs.size(), 2);
	assert_bytes_equal(logs[0].in, "MAIL FROM:<s@x>\r\nRCPT TO:<alice@x>\r\n"
		     "DATA\r\n" + body);
	assert_bytes_equal(logs[0].out, "250 2.1.0 OK\r\n250 2.1.5 OK\r\n354 OK\r\n"
		     "250 2.0.0 <alice@x> Saved\r\n");
	assert_bytes_equal(logs[1].in, "MAIL FROM:<s@x>\r\nRCPT TO:<bob@x>\r\n"
		     "DATA\r\n" + body);
	assert_bytes_equal(logs[1].out, "250 2.1.0 OK\r\n250 2.1.5 OK\r\n354 OK\r\n"
		     "250 2.0.0 <bob@x> Saved\r\n");
	for (auto &entry : logs) {
		const std::string all = entry.second.in + entry.second.out;
		assert_true(all.find("nobody") == std::string::npos);
		assert_true(entry.second.closed);
	}
}

// RSET drops a transaction; a second transaction on the connection is
// cut on its own.
void test_rset_and_two_transactions(void **)
{
	auto logs = run_all_chunkings({
		S(greeting),
		C("MAIL FROM:<a@x>\r\n"), S("250 OK\r\n"),
		C("RCPT TO:<alice@x>\r\n"), S("250 OK\r\n"),
		C("RSET\r\n"), S("250 2.0.0 OK\r\n"),
		C("MAIL FROM:<b@x>\r\n"), S("250 OK\r\n"),
		C("RCPT TO:<alice@x>\r\n"), S("250 OK\r\n"),
		C("DATA\r\n"), S("354 OK\r\n"), C("one\r\n.\r\n"), A(0, "alice@x"),
		S("250 first\r\n"),
	});
	assert_bytes_equal(logs[0].in, "MAIL FROM:<b@x>\r\nRCPT TO:<alice@x>\r\n"
		     "DATA\r\none\r\n.\r\n");
	assert_bytes_equal(logs[0].out, "250 OK\r\n250 OK\r\n354 OK\r\n250 first\r\n");

	auto second = run({
		S(greeting),
		C("MAIL FROM:<a@x>\r\nRCPT TO:<alice@x>\r\nDATA\r\n"),
		S("250 OK\r\n250 OK\r\n354 OK\r\n"),
		// The next transaction pipelined right behind the data.
		C("one\r\n.\r\nMAIL FROM:<b@x>\r\nRCPT TO:<alice@x>\r\nDATA\r\n"),
		A(0, "alice@x"), S("250 first\r\n250 OK\r\n250 OK\r\n354 OK\r\n"),
	});
	assert_bytes_equal(second[0].in, "MAIL FROM:<a@x>\r\nRCPT TO:<alice@x>\r\n"
		     "DATA\r\none\r\n.\r\n");
	assert_bytes_equal(second[0].out, "250 OK\r\n250 OK\r\n354 OK\r\n250 first\r\n");
}

// BDAT: every chunk with its BDAT line and reply.
void test_bdat_chunks(void **)
{
	auto logs = run_all_chunkings({
		S(greeting),
		C("MAIL FROM:<s@x>\r\nRCPT TO:<alice@x>\r\n"
		  "BDAT 5\r\nab\r\nc"),
		S("250 OK\r\n250 OK\r\n250 2.0.0 5 bytes\r\n"),
		C("bdat 0 last\r\n"), A(0, "alice@x"),
		S("250 2.0.0 <alice@x> Saved\r\n"),
	});
	assert_bytes_equal(logs[0].in, "MAIL FROM:<s@x>\r\nRCPT TO:<alice@x>\r\n"
		     "BDAT 5\r\nab\r\ncbdat 0 last\r\n");
	assert_bytes_equal(logs[0].out, "250 OK\r\n250 OK\r\n250 2.0.0 5 bytes\r\n"
		     "250 2.0.0 <alice@x> Saved\r\n");
}

// A BDAT that lib-smtp refuses for its other parameters still has its
// chunk read (smtp-server-cmd-data.c): the chunk is not commands.
void test_refused_bdat_chunk_is_skipped(void **)
{
	auto logs = run_all_chunkings({
		S(greeting),
		C("MAIL FROM:<s@x>\r\nRCPT TO:<alice@x>\r\n"
		  "BDAT 6 FIRST\r\nRSET\r\n"),
		S("250 OK\r\n250 OK\r\n501 5.5.4 Invalid end marker parameter\r\n"),
		C("BDAT 3 LAST\r\nabc"), A(0, "alice@x"),
		S("250 2.0.0 <alice@x> Saved\r\n"),
	});
	assert_bytes_equal(logs[0].in, "MAIL FROM:<s@x>\r\nRCPT TO:<alice@x>\r\n"
		     "BDAT 6 FIRST\r\nRSET\r\nBDAT 3 LAST\r\nabc");
}

// A refused DATA: what follows is commands again, nothing is cut.
void test_refused_data_then_commands(void **)
{
	LmtpSplitter splitter("/tmp");
	auto logs = run({
		S(greeting),
		C("MAIL FROM:<s@x>\r\nRCPT TO:<nobody@x>\r\nDATA\r\n"),
		S("250 OK\r\n550 5.1.1 no such user\r\n"
		  "554 5.5.1 No valid recipients\r\n"),
		C("MAIL FROM:<s@x>\r\n"), S("250 OK\r\n"),
		C("RCPT TO:<alice@x>\r\nDATA\r\n"), S("250 OK\r\n354 OK\r\n"),
		C(".\r\n"), A(0, "alice@x"), S("250 saved\r\n"),
	}, 0, &splitter);
	assert_bytes_equal(logs[0].in, "MAIL FROM:<s@x>\r\nRCPT TO:<alice@x>\r\n"
		     "DATA\r\n.\r\n");
	assert_false(splitter.broken());
}

// A message larger than the spool's memory goes through a file and comes
// back intact.
void test_large_message(void **)
{
	std::string body;
	for (unsigned int i = 0; body.size() < 3 * Spool::default_memory_max; i++)
		body += "line " + std::to_string(i) + " \xe9\xff\r\n";
	body += ".\r\n";
	auto logs = run({
		S(greeting),
		C("MAIL FROM:<s@x>\r\nRCPT TO:<alice@x>\r\nDATA\r\n"),
		S("250 OK\r\n250 OK\r\n354 OK\r\n"),
		C(body), A(0, "alice@x"), S("250 saved\r\n"),
	}, 4096);
	assert_bytes_equal(logs[0].in, "MAIL FROM:<s@x>\r\nRCPT TO:<alice@x>\r\n"
		     "DATA\r\n" + body);
}

// A recipient attached after its reply was already seen still gets it.
void test_attach_after_reply(void **)
{
	auto logs = run({
		S(greeting),
		C("MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n"),
		S("250 OK\r\n250 OK\r\n250 OK\r\n354 OK\r\n"),
		C("x\r\n.\r\n"), A(0, "a@x"), S("250 a saved\r\n"), A(1, "b@x"),
		S("250 b saved\r\n"),
	});
	assert_bytes_equal(logs[0].out, "250 OK\r\n250 OK\r\n354 OK\r\n250 a saved\r\n");
	assert_bytes_equal(logs[1].out, "250 OK\r\n250 OK\r\n354 OK\r\n250 b saved\r\n");
}

void test_attach_refused(void **)
{
	LmtpSplitter splitter("/tmp");
	Recorded rec;
	std::string error;
	assert_false(splitter.attach(0, "a@x", std::unique_ptr<RecipientLog>(
		new TestLog(rec)), error));
	assert_true(rec.closed);
	assert_true(error.find("no message data") != std::string::npos);

	run({
		S(greeting),
		C("MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nDATA\r\n"),
		S("250 OK\r\n250 OK\r\n354 OK\r\n"), C(".\r\n"),
	}, 0, &splitter);
	Recorded rec2;
	assert_false(splitter.attach(1, "a@x", std::unique_ptr<RecipientLog>(
		new TestLog(rec2)), error));
	assert_true(error.find("recipient 1 not seen") != std::string::npos);
}

// Traffic it cannot follow stops the splitting, said once.
void test_overlong_line_breaks_once(void **)
{
	LmtpSplitter splitter("/tmp");
	std::string line(LmtpSplitter::max_line + 1, 'a');
	splitter.client_data((const unsigned char *)line.data(), line.size(),
			     tv0);
	assert_true(splitter.broken());
	std::string problem;
	assert_true(splitter.take_problem(problem));
	assert_true(problem.find("longer than") != std::string::npos);
	assert_false(splitter.take_problem(problem));
	// Further traffic is ignored, without a crash.
	splitter.client_data((const unsigned char *)"DATA\r\n", 6, tv0);
	splitter.server_data((const unsigned char *)"354 x\r\n", 7, tv0);
}

// STARTTLS accepted: said once; the session starts over behind it.
void test_starttls(void **)
{
	LmtpSplitter splitter("/tmp");
	run({
		S(greeting), C("MAIL FROM:<s@x>\r\nSTARTTLS\r\n"),
		S("250 OK\r\n503 5.5.1 MAIL already given\r\n"), C("RSET\r\n"),
		S("250 OK\r\n"),
	}, 0, &splitter);
	assert_false(splitter.take_tls_started());
	auto logs = run({
		C("STARTTLS\r\n"), S("220 2.0.0 Begin TLS\r\n"),
	}, 0, &splitter);
	assert_true(splitter.take_tls_started());
	assert_false(splitter.take_tls_started());
	// Plaintext again after the handshake: a delivery as usual.
	logs = run({
		C("LHLO c\r\nMAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nDATA\r\n"),
		S("250 mx\r\n250 OK\r\n250 OK\r\n354 OK\r\n"), C(".\r\n"), A(0, "a@x"),
		S("250 saved\r\n"),
	}, 0, &splitter);
	assert_bytes_equal(logs[0].in, "MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nDATA\r\n.\r\n");
}

// Following the protocol only: nothing kept, nothing attached.
void test_without_data(void **)
{
	LmtpSplitter splitter("/nonexistent-rawlog-ext-dir", false);
	std::string big(Spool::default_memory_max * 2, 'x');
	run({
		S(greeting), C("MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nDATA\r\n"),
		S("250 OK\r\n250 OK\r\n354 OK\r\n"), C(big + "\r\n.\r\n"),
		C("STARTTLS\r\n"), S("250 saved\r\n220 go\r\n"),
	}, 0, &splitter);
	assert_false(splitter.broken());
	assert_true(splitter.take_tls_started());
	Recorded rec;
	std::string error;
	assert_false(splitter.attach(0, "a@x", std::unique_ptr<RecipientLog>(
		new TestLog(rec)), error));
	assert_true(error.find("off") != std::string::npos);
}

// keep_only_requested: a transaction nobody asked to keep is not spooled
// (a spool in a missing directory would fail a large message), one asked
// for at RCPT (before the RCPT's reply) is kept whole, as before.
void test_keep_only_requested(void **)
{
	LmtpSplitter splitter("/nonexistent-rawlog-ext-dir");
	splitter.keep_only_requested();
	std::string big(Spool::default_memory_max * 2, 'x');
	run({
		S(greeting), C("MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nDATA\r\n"),
		S("250 OK\r\n250 OK\r\n354 OK\r\n"), C(big + "\r\n.\r\n"),
	}, 0, &splitter);
	assert_false(splitter.broken());
	assert_true(splitter.take_not_kept());
	assert_false(splitter.take_not_kept());
	Recorded rec;
	std::string error;
	assert_false(splitter.attach(0, "a@x", std::unique_ptr<RecipientLog>(
		new TestLog(rec)), error));
	assert_true(error.find("not spooled") != std::string::npos);

	LmtpSplitter kept("/tmp");
	kept.keep_only_requested();
	const std::string body = "Subject: x\r\n\r\n" + big + "\r\n.\r\n";
	run({
		S(greeting), C("MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\n"
			       "RCPT TO:<b@x>\r\nDATA\r\n"),
	}, 0, &kept);
	// Only b logs; an address no RCPT waits for is not found.
	assert_true(kept.keep_for_recipient("B@x"));
	assert_false(kept.keep_for_recipient("c@x"));
	auto logs = run({
		S("250 OK\r\n250 OK\r\n250 OK\r\n354 OK\r\n"), C(body),
		A(1, "b@x"), A(0, "a@x"), S("250 a\r\n250 b\r\n"),
	}, 0, &kept);
	assert_false(kept.take_not_kept());
	assert_int_equal(logs.size(), 2);
	assert_bytes_equal(logs[0].in, "MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\n"
			   "DATA\r\n" + body);
	assert_bytes_equal(logs[0].out, "250 OK\r\n250 OK\r\n354 OK\r\n"
			   "250 a\r\n");
	assert_bytes_equal(logs[1].in, "MAIL FROM:<s@x>\r\nRCPT TO:<b@x>\r\n"
			   "DATA\r\n" + body);
	// After the RCPT's reply it is too late to ask.
	run({ C("MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\n"),
	      S("250 OK\r\n250 OK\r\n") }, 0, &kept);
	assert_false(kept.keep_for_recipient("a@x"));
}

// Pipelined BDAT: the chunk comes in before the RCPT is answered (and
// before the glue could decide). It is spooled meanwhile, then kept if a
// recipient asked, dropped if none did; the next transaction, pipelined
// behind it, is decided on its own.
void test_keep_only_requested_bdat(void **)
{
	std::string big(Spool::default_memory_max * 2, 'y');
	const std::string script =
		"MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nBDAT " +
		std::to_string(big.size()) + " LAST\r\n" + big +
		"MAIL FROM:<s@x>\r\nRCPT TO:<b@x>\r\nBDAT 3 LAST\r\nabc";
	for (bool ask_a : {false, true}) {
		LmtpSplitter splitter("/tmp");
		splitter.keep_only_requested();
		run({ S(greeting), C(script) }, 0, &splitter);
		// The server handles a's RCPT, then (later) b's.
		if (ask_a)
			assert_true(splitter.keep_for_recipient("a@x"));
		run({ S("250 OK\r\n250 OK\r\n") }, 0, &splitter);
		assert_int_equal(splitter.take_not_kept(), !ask_a);
		assert_true(splitter.keep_for_recipient("b@x"));
		auto logs = run({ S("250 2.0.0 a saved\r\n"),
				  S("250 OK\r\n250 OK\r\n"), A(0, "b@x"),
				  S("250 2.0.0 b saved\r\n") }, 0, &splitter);
		assert_false(splitter.take_not_kept());
		assert_false(splitter.broken());
		assert_bytes_equal(logs[0].in, "MAIL FROM:<s@x>\r\n"
				   "RCPT TO:<b@x>\r\nBDAT 3 LAST\r\nabc");
		assert_bytes_equal(logs[0].out, "250 OK\r\n250 OK\r\n"
				   "250 2.0.0 b saved\r\n");
	}
	// a kept: its log has the whole chunk.
	LmtpSplitter splitter("/tmp");
	splitter.keep_only_requested();
	run({ S(greeting), C(script) }, 0, &splitter);
	assert_true(splitter.keep_for_recipient("a@x"));
	auto logs = run({ S("250 OK\r\n250 OK\r\n"), A(0, "a@x"),
			  S("250 2.0.0 a saved\r\n") }, 0, &splitter);
	assert_bytes_equal(logs[0].in, "MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\n"
			   "BDAT " + std::to_string(big.size()) + " LAST\r\n" +
			   big);
	// Not kept: attach says so.
	LmtpSplitter dropped("/tmp");
	dropped.keep_only_requested();
	run({ S(greeting), C(script), S("250 OK\r\n250 OK\r\n") }, 0,
	    &dropped);
	std::string error;
	assert_false(dropped.can_attach(0, "a@x", error));
	assert_true(error.find("not spooled") != std::string::npos);
}

// keep_everything (the glue cannot tell): undecided transactions and all
// later ones are kept, as without keep_only_requested; one already
// dropped stays dropped. An abandoned transaction (RSET) does not hold
// up the next one's decision.
void test_keep_everything(void **)
{
	LmtpSplitter splitter("/tmp");
	splitter.keep_only_requested();
	run({ S(greeting), C("MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nRSET\r\n"),
	      S("250 OK\r\n250 OK\r\n250 OK\r\n"),
	      C("MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nBDAT 3 LAST\r\nabc"),
	      S("250 OK\r\n250 OK\r\n"), S("250 one\r\n") }, 0, &splitter);
	assert_true(splitter.take_not_kept());
	run({ C("MAIL FROM:<s@x>\r\nRCPT TO:<b@x>\r\nBDAT 3 LAST\r\ndef") },
	    0, &splitter);
	splitter.keep_everything();
	auto logs = run({ S("250 OK\r\n250 OK\r\n"), A(0, "b@x"),
			  S("250 two\r\n"),
			  C("MAIL FROM:<s@x>\r\nRCPT TO:<c@x>\r\nBDAT 3 LAST\r\nghi"),
			  S("250 OK\r\n250 OK\r\n"), A(0, "c@x"),
			  S("250 three\r\n") }, 0, &splitter);
	assert_false(splitter.take_not_kept());
	assert_int_equal(logs.size(), 2);
	assert_bytes_equal(logs[0].in, "MAIL FROM:<s@x>\r\nRCPT TO:<b@x>\r\n"
			   "BDAT 3 LAST\r\ndef");
	assert_bytes_equal(logs[100].in, "MAIL FROM:<s@x>\r\nRCPT TO:<c@x>\r\n"
			   "BDAT 3 LAST\r\nghi");
}

// A refused nested MAIL: the RCPT behind it joined the open transaction,
// not the refused one. Stop, never put bob into alice's log.
void test_nested_mail_refused_gives_up(void **)
{
	LmtpSplitter splitter("/tmp");
	run({
		S(greeting),
		C("MAIL FROM:<a@x>\r\nRCPT TO:<alice@x>\r\nMAIL FROM:<b@x>\r\n"
		  "RCPT TO:<bob@x>\r\nDATA\r\n"),
		S("250 OK\r\n250 OK\r\n503 5.5.0 MAIL already given\r\n"
		  "250 OK\r\n354 OK\r\n"),
		C("x\r\n.\r\n"),
	}, 0, &splitter);
	assert_true(splitter.broken());
	std::string error;
	assert_false(splitter.can_attach(0, "alice@x", error));
	assert_false(splitter.can_attach(1, "bob@x", error));
}

// Two transactions pipelined behind BDAT ... LAST: each recipient gets
// its own transaction's part.
void test_pipelined_bdat_transactions(void **)
{
	auto logs = run_all_chunkings({
		S(greeting),
		C("MAIL FROM:<a@x>\r\nRCPT TO:<alice@x>\r\nBDAT 3 LAST\r\nabc"
		  "MAIL FROM:<b@x>\r\nRCPT TO:<bob@x>\r\nBDAT 2 LAST\r\nde"),
		S("250 OK\r\n250 OK\r\n"), A(0, "alice@x"),
		S("250 alice saved\r\n250 OK\r\n250 OK\r\n"), A(0, "bob@x"),
		S("250 bob saved\r\n"),
	});
	assert_bytes_equal(logs[0].in, "MAIL FROM:<a@x>\r\nRCPT TO:<alice@x>\r\n"
		     "BDAT 3 LAST\r\nabc");
	assert_bytes_equal(logs[0].out, "250 OK\r\n250 OK\r\n250 alice saved\r\n");
	assert_true(logs[0].closed);
	assert_bytes_equal(logs[100].in, "MAIL FROM:<b@x>\r\nRCPT TO:<bob@x>\r\n"
		     "BDAT 2 LAST\r\nde");
	assert_bytes_equal(logs[100].out, "250 OK\r\n250 OK\r\n250 bob saved\r\n");
}

// The recipient at that index must be the one Dovecot delivers to.
void test_attach_checks_the_address(void **)
{
	LmtpSplitter splitter("/tmp");
	run({
		S(greeting), C("MAIL FROM:<s@x>\r\nRCPT TO:<Alice@X>\r\nDATA\r\n"),
		S("250 OK\r\n250 OK\r\n354 OK\r\n"), C(".\r\n"),
	}, 0, &splitter);
	std::string error;
	assert_false(splitter.can_attach(0, "malice@x", error));
	assert_true(error.find("is not malice@x") != std::string::npos);
	assert_false(splitter.can_attach(0, "lice@x", error));
	assert_true(splitter.can_attach(0, "alice@x", error));
}

void test_spool_memory_then_file(void **)
{
	Spool spool("/tmp", 10);
	assert_true(spool.append((const unsigned char *)"0123456789", 10));
	assert_false(spool.in_file());
	assert_true(spool.append((const unsigned char *)"abc", 3));
	assert_true(spool.in_file());
	std::string got;
	assert_true(spool.read(8, 4, [&](const unsigned char *d, size_t n) {
		got.append((const char *)d, n);
	}));
	assert_bytes_equal(got, "89ab");
	assert_false(spool.read(10, 4, [](const unsigned char *, size_t) {}));
}

void test_spool_failure(void **)
{
	Spool spool("/nonexistent-rawlog-ext-dir", 2);
	assert_false(spool.append((const unsigned char *)"abc", 3));
	assert_true(spool.failed());
	assert_true(spool.error().find("/nonexistent-rawlog-ext-dir") !=
		    std::string::npos);
}

} // namespace

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_recipient),
		cmocka_unit_test(test_pipelined_mixed_recipients),
		cmocka_unit_test(test_rset_and_two_transactions),
		cmocka_unit_test(test_bdat_chunks),
		cmocka_unit_test(test_refused_bdat_chunk_is_skipped),
		cmocka_unit_test(test_refused_data_then_commands),
		cmocka_unit_test(test_large_message),
		cmocka_unit_test(test_attach_after_reply),
		cmocka_unit_test(test_attach_refused),
		cmocka_unit_test(test_overlong_line_breaks_once),
		cmocka_unit_test(test_starttls),
		cmocka_unit_test(test_without_data),
		cmocka_unit_test(test_keep_only_requested),
		cmocka_unit_test(test_keep_only_requested_bdat),
		cmocka_unit_test(test_keep_everything),
		cmocka_unit_test(test_nested_mail_refused_gives_up),
		cmocka_unit_test(test_pipelined_bdat_transactions),
		cmocka_unit_test(test_attach_checks_the_address),
		cmocka_unit_test(test_spool_memory_then_file),
		cmocka_unit_test(test_spool_failure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
