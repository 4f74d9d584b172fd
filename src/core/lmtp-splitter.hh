// Cuts one LMTP connection's traffic into what each recipient of a
// delivery saw: MAIL FROM, that recipient's RCPT, DATA (or the BDAT
// chunks), the message, and that recipient's own reply to the data. No
// other recipient's address gets into a recipient's piece of the log.
//
// It is fed the bytes the server read and the bytes it sent, in the order
// they passed, and matches replies to commands the way SMTP does: in
// order, one reply per command, except the end of an LMTP message, which
// gets one reply per accepted recipient (RFC 2033). Message data is kept
// in a Spool until the recipients' logs are attached (at delivery, when
// their settings are known) and dropped when the transaction is over.
#ifndef RAWLOG_EXT_LMTP_SPLITTER_HH
#define RAWLOG_EXT_LMTP_SPLITTER_HH

#include "format.hh"
#include "smtp-follow.hh"
#include "spool.hh"

#include <deque>
#include <memory>
#include <string>
#include <sys/time.h>
#include <vector>

namespace rawlog_ext {

// Where one recipient's part goes (the glue's per-user log).
class RecipientLog {
public:
	virtual ~RecipientLog() = default;
	virtual void write(Direction direction, const unsigned char *data,
			   size_t size, const struct timeval &time) = 0;
	// attach() has written what passed before it: from here on each
	// write() is something passing now (the log may hold the replay's
	// pieces until this, to write them together).
	virtual void caught_up() {}
};

class LmtpSplitter {
public:
	// spool_dir: where large messages are spooled until delivery.
	// keep_data = false: only follow the protocol (e.g. for STARTTLS),
	// without keeping messages; attach() then always fails.
	explicit LmtpSplitter(std::string spool_dir, bool keep_data = true);
	~LmtpSplitter();
	LmtpSplitter(const LmtpSplitter &) = delete;
	LmtpSplitter &operator=(const LmtpSplitter &) = delete;

	void client_data(const unsigned char *data, size_t size,
			 const struct timeval &now);
	void server_data(const unsigned char *data, size_t size,
			 const struct timeval &now);

	// During delivery of a transaction whose data has ended: gives log
	// the part of its rcpt_index-th accepted recipient (counting from 0,
	// as Dovecot's recipient index does), whose RCPT must name address
	// (compared without case). log receives the reply to the data when
	// it is sent and is then destroyed. False (error_r says why) if there
	// is no such delivery or recipient.
	bool attach(unsigned int rcpt_index, const std::string &address,
		    std::unique_ptr<RecipientLog> log, std::string &error_r);
	// Whether attach() would find that recipient (so that no log file
	// is created in vain).
	bool can_attach(unsigned int rcpt_index, const std::string &address,
			std::string &error_r) const;

	// From now on, a transaction's message is kept only if the glue
	// asked for it (deciding at RCPT whether the recipient can log)
	// with keep_for_recipient() before the reply to that RCPT passed.
	// A transaction is decided once its data command was seen and all
	// its RCPTs have replies: until then its message is spooled as
	// before (pipelined BDAT chunks can come in before the RCPTs are
	// answered); then, if nobody asked, what was spooled is dropped and
	// the rest of the message is not kept.
	void keep_only_requested() { keep_only_requested_ = true; }
	// The oldest unanswered RCPT naming address (compared as attach()
	// does) keeps its transaction's message. False if there is none:
	// the caller should then keep_everything().
	bool keep_for_recipient(const std::string &address);
	// Back to keeping every message (e.g. when the glue cannot tell).
	void keep_everything();
	// True once for each transaction decided not to be kept.
	bool take_not_kept();

	// True once, when the reply to STARTTLS accepted it: what follows
	// on the wire is TLS until the glue moves above it.
	bool take_tls_started();

	// Set once the traffic could not be followed (or spooling failed):
	// no further recipient parts. The reason, for the log, once.
	bool take_problem(std::string &problem_r);
	bool broken() const { return broken_; }

	// Limits on what is held in memory besides the spool.
	static constexpr size_t max_line = 64 * 1024;
	static constexpr size_t max_held = 64 * 1024;

private:
	struct Transaction;
	// A command waiting for its replies.
	struct Pending {
		enum class Kind {
			other, mail, rcpt, data, bdat, data_end, starttls
		};
		Kind kind;
		std::shared_ptr<Transaction> txn;
		size_t recipient = 0;
		// MAIL sent while another transaction was open: if it is
		// refused, the commands after it belong to that one.
		bool nested = false;
	};

	void client_bytes(const unsigned char *data, size_t size);
	void command_line(const std::string &line);
	void data_bytes(const unsigned char *&data, size_t &size);
	void chunk_bytes(const unsigned char *&data, size_t &size);
	void add_spooled_piece();
	std::shared_ptr<Transaction> new_transaction();
	void decide(const std::shared_ptr<Transaction> &txn);
	void reply(const std::string &text);
	void reply_to_data(const Pending &pending, unsigned int index,
			   bool last, const std::string &text);
	void give_up(const std::string &why);

	enum class InputMode { command, await_data_reply, data, chunk };

	std::string spool_dir_;
	bool keep_data_;
	bool keep_only_requested_ = false;
	// Transactions not decided yet (keep_only_requested()), oldest first.
	std::deque<std::shared_ptr<Transaction>> undecided_;
	unsigned int not_kept_ = 0;	// for take_not_kept()
	bool tls_started_ = false;
	struct timeval now_ = {0, 0};

	InputMode input_mode_ = InputMode::command;
	std::string line_;		// unfinished command line
	std::string held_;		// input after DATA, before its reply
	std::shared_ptr<Transaction> input_txn_;	// MAIL seen, not ended
	std::shared_ptr<Transaction> data_txn_;		// receiving data
	SmtpDataEnd data_end_;		// where the data ends
	uint64_t data_start_ = 0;
	uint64_t chunk_left_ = 0;
	bool chunk_last_ = false;

	std::string reply_;		// unfinished reply (all its lines)
	std::string reply_line_;	// unfinished reply line
	SmtpReplies<Pending> pending_;	// commands waiting for replies
	// Data ended, replies to it not all seen, oldest first (a client
	// may pipeline the next transaction behind BDAT ... LAST).
	std::deque<std::shared_ptr<Transaction>> delivering_;
	std::shared_ptr<Transaction> find_delivery(unsigned int rcpt_index,
						   const std::string &address,
						   std::string &error_r) const;

	bool broken_ = false;
	bool problem_reported_ = false;
	std::string problem_;
};

} // namespace rawlog_ext

#endif
