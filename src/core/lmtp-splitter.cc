#include "lmtp-splitter.hh"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace rawlog_ext {

namespace {

// Commands waiting for replies; beyond this the client is not one we
// can follow (Dovecot itself stops reading long before).
const size_t max_pending = 10000;

struct Piece {
	Direction direction;
	std::string bytes;		// unless spooled
	bool spooled = false;
	uint64_t offset = 0, length = 0;	// in the spool
	struct timeval time;
};

Piece text_piece(Direction direction, const std::string &bytes,
		 const struct timeval &time)
{
	Piece piece;
	piece.direction = direction;
	piece.bytes = bytes;
	piece.time = time;
	return piece;
}

std::string command_verb(const std::string &line)
{
	std::string verb;
	for (char c : line) {
		if (c == ' ' || c == '\r' || c == '\n')
			break;
		verb += (char)toupper((unsigned char)c);
	}
	return verb;
}

// "BDAT <size> [LAST]": false if no chunk follows (smtp_bdat_chunk()).
bool parse_bdat(const std::string &line, uint64_t &size_r, bool &last_r)
{
	if (line.size() <= 4 || line[4] != ' ')
		return false;
	std::string params = line.substr(5);
	while (!params.empty() &&
	       (params.back() == '\n' || params.back() == '\r'))
		params.pop_back();
	return smtp_bdat_chunk(params, size_r, last_r);
}

bool contains_nocase(const std::string &text, const std::string &part)
{
	auto it = std::search(text.begin(), text.end(), part.begin(), part.end(),
		[](char a, char b) {
			return tolower((unsigned char)a) ==
				tolower((unsigned char)b);
		});
	return it != text.end();
}

} // namespace

struct LmtpSplitter::Transaction {
	struct Recipient {
		std::string line, reply;
		struct timeval line_time, reply_time;
		int accepted_index = -1;
		bool replied = false;
		bool claimed = false;	// by keep_for_recipient()
	};
	const Recipient *accepted_recipient(unsigned int index) const
	{
		for (const Recipient &r : recipients) {
			if (r.accepted_index == (int)index)
				return &r;
		}
		return nullptr;
	}

	Transaction(const std::string &spool_dir, bool keep_r, bool decided_r)
		: spool(spool_dir), keep(keep_r), decided(decided_r) {}
	bool all_replied() const
	{
		for (const Recipient &r : recipients) {
			if (!r.replied)
				return false;
		}
		return true;
	}

	Spool spool;
	bool keep;		// the message goes into spool
	bool decided;		// keep is final
	bool requested = false;	// a recipient that logs asked to keep it
	bool data_seen = false;	// DATA or BDAT sent: no more RCPTs
	std::string mail_line, mail_reply;
	struct timeval mail_time = {0, 0}, mail_reply_time = {0, 0};
	bool mail_refused = false;
	std::vector<Recipient> recipients;
	unsigned int accepted = 0;
	// DATA and its reply, or the BDAT lines, chunks and replies.
	std::vector<Piece> data;
	// The replies to the end of the data, by recipient, as they came.
	std::vector<std::pair<std::string, struct timeval>> final_replies;
	// Attached recipient logs, by accepted index.
	std::vector<std::unique_ptr<RecipientLog>> logs;
};

LmtpSplitter::LmtpSplitter(std::string spool_dir, bool keep_data)
	: spool_dir_(std::move(spool_dir)), keep_data_(keep_data)
{
	// The greeting is the reply to no command.
	pending_.push(SmtpReplies<Pending>::Kind::single,
		      Pending{Pending::Kind::other, nullptr});
}

LmtpSplitter::~LmtpSplitter() = default;

std::shared_ptr<LmtpSplitter::Transaction> LmtpSplitter::new_transaction()
{
	bool undecided = keep_data_ && keep_only_requested_;
	auto txn = std::make_shared<Transaction>(spool_dir_, keep_data_,
						 !undecided);
	// Those left without data (RSET, a new MAIL) once all answered.
	undecided_.erase(std::remove_if(undecided_.begin(), undecided_.end(),
		[](const std::shared_ptr<Transaction> &t) {
			return !t->data_seen && t->all_replied();
		}), undecided_.end());
	if (undecided)
		undecided_.push_back(txn);
	return txn;
}

// Once no RCPT of txn can still ask: keep its message or drop it.
void LmtpSplitter::decide(const std::shared_ptr<Transaction> &txn)
{
	if (txn == nullptr || txn->decided || !txn->data_seen ||
	    !txn->all_replied())
		return;
	txn->decided = true;
	undecided_.erase(std::remove(undecided_.begin(), undecided_.end(), txn),
			 undecided_.end());
	if (txn->requested)
		return;
	txn->keep = false;
	txn->spool.discard();
	not_kept_++;
}

bool LmtpSplitter::keep_for_recipient(const std::string &address)
{
	// In the order the server handles them, which is the wire order.
	for (const auto &txn : undecided_) {
		for (Transaction::Recipient &r : txn->recipients) {
			if (!r.replied && !r.claimed &&
			    contains_nocase(r.line, "<" + address + ">")) {
				r.claimed = true;
				txn->requested = true;
				return true;
			}
		}
	}
	return false;
}

void LmtpSplitter::keep_everything()
{
	keep_only_requested_ = false;
	for (const auto &txn : undecided_)
		txn->decided = true;	// keep is still true
	undecided_.clear();
}

bool LmtpSplitter::take_not_kept()
{
	if (not_kept_ == 0)
		return false;
	not_kept_--;
	return true;
}

void LmtpSplitter::give_up(const std::string &why)
{
	if (broken_)
		return;
	broken_ = true;
	problem_ = why;
	pending_.clear();
	input_txn_.reset();
	data_txn_.reset();
	delivering_.clear();
	undecided_.clear();
	line_.clear();
	line_.shrink_to_fit();
	held_.clear();
	held_.shrink_to_fit();
	reply_.clear();
	reply_line_.clear();
}

bool LmtpSplitter::take_tls_started()
{
	bool started = tls_started_;
	tls_started_ = false;
	return started;
}

bool LmtpSplitter::take_problem(std::string &problem_r)
{
	if (!broken_ || problem_reported_)
		return false;
	problem_reported_ = true;
	problem_r = problem_;
	return true;
}

void LmtpSplitter::client_data(const unsigned char *data, size_t size,
			       const struct timeval &now)
{
	now_ = now;
	client_bytes(data, size);
}

void LmtpSplitter::client_bytes(const unsigned char *data, size_t size)
{
	while (size > 0 && !broken_) {
		switch (input_mode_) {
		case InputMode::command: {
			const void *lf = memchr(data, '\n', size);
			size_t n = lf == nullptr ? size :
				(size_t)((const unsigned char *)lf - data) + 1;
			if (line_.size() + n > max_line) {
				give_up("a command line longer than " +
				     std::to_string(max_line) + " bytes");
				return;
			}
			line_.append((const char *)data, n);
			data += n;
			size -= n;
			if (lf != nullptr) {
				std::string line;
				line.swap(line_);
				command_line(line);
			}
			break;
		}
		case InputMode::await_data_reply:
			if (held_.size() + size > max_held) {
				give_up("more than " + std::to_string(max_held) +
				     " bytes sent before the reply to DATA");
				return;
			}
			held_.append((const char *)data, size);
			return;
		case InputMode::data:
			data_bytes(data, size);
			break;
		case InputMode::chunk:
			chunk_bytes(data, size);
			break;
		}
	}
}

void LmtpSplitter::command_line(const std::string &line)
{
	if (pending_.size() >= max_pending) {
		give_up("too many commands without replies");
		return;
	}
	std::string verb = command_verb(line);
	Pending pending{Pending::Kind::other, nullptr};

	if (verb == "MAIL") {
		bool nested = input_txn_ != nullptr && !input_txn_->mail_refused;
		input_txn_ = new_transaction();
		input_txn_->mail_line = line;
		input_txn_->mail_time = now_;
		pending = Pending{Pending::Kind::mail, input_txn_};
		pending.nested = nested;
	} else if (verb == "RCPT" && input_txn_ != nullptr) {
		Transaction::Recipient recipient;
		recipient.line = line;
		recipient.line_time = now_;
		input_txn_->recipients.push_back(recipient);
		pending = Pending{Pending::Kind::rcpt, input_txn_,
				  input_txn_->recipients.size() - 1};
	} else if (verb == "DATA") {
		// Without MAIL the server refuses it, but a reply decides.
		if (input_txn_ == nullptr)
			input_txn_ = new_transaction();
		input_txn_->data_seen = true;
		decide(input_txn_);
		input_txn_->data.push_back(text_piece(Direction::in, line,
						      now_));
		pending = Pending{Pending::Kind::data, input_txn_};
		input_mode_ = InputMode::await_data_reply;
	} else if (verb == "BDAT") {
		uint64_t size;
		bool last;
		if (parse_bdat(line, size, last)) {
			if (input_txn_ == nullptr)
				input_txn_ = new_transaction();
			input_txn_->data_seen = true;
			decide(input_txn_);
			input_txn_->data.push_back(
				text_piece(Direction::in, line, now_));
			pending = Pending{last ? Pending::Kind::data_end :
					  Pending::Kind::bdat, input_txn_};
			data_txn_ = input_txn_;
			data_start_ = data_txn_->spool.size();
			chunk_left_ = size;
			chunk_last_ = last;
			input_mode_ = InputMode::chunk;
		}
	} else if (verb == "RSET") {
		input_txn_.reset();
	} else if (verb == "STARTTLS") {
		pending = Pending{Pending::Kind::starttls, nullptr};
	}
	// DATA's final replies and BDAT LAST's: one per accepted recipient.
	using Replies = SmtpReplies<Pending>;
	Replies::Kind replies = pending.kind == Pending::Kind::data ?
		Replies::Kind::data :
		pending.kind == Pending::Kind::data_end ?
		Replies::Kind::last_chunk : Replies::Kind::single;
	pending_.push(replies, pending);
	if (input_mode_ == InputMode::chunk && chunk_left_ == 0) {
		const unsigned char *none = nullptr;
		size_t zero = 0;
		chunk_bytes(none, zero);
	}
}

void LmtpSplitter::data_bytes(const unsigned char *&data, size_t &size)
{
	bool end;
	size_t i = data_end_.scan(data, size, end);
	if (data_txn_->keep && !data_txn_->spool.append(data, i)) {
		give_up("spooling the message: " + data_txn_->spool.error());
		return;
	}
	data += i;
	size -= i;
	if (!end)
		return;

	add_spooled_piece();
	// DATA, answered 354, now waits for its final replies.
	delivering_.push_back(data_txn_);
	data_txn_.reset();
	input_txn_.reset();
	input_mode_ = InputMode::command;
}

// The data (or chunk) that just ended, as a piece of its transaction.
void LmtpSplitter::add_spooled_piece()
{
	Piece piece;
	piece.direction = Direction::in;
	piece.spooled = true;
	piece.offset = data_start_;
	piece.length = data_txn_->spool.size() - data_start_;
	piece.time = now_;
	data_txn_->data.push_back(piece);
}

void LmtpSplitter::chunk_bytes(const unsigned char *&data, size_t &size)
{
	size_t n = chunk_left_ < size ? (size_t)chunk_left_ : size;
	if (data_txn_->keep && n > 0 && !data_txn_->spool.append(data, n)) {
		give_up("spooling the message: " + data_txn_->spool.error());
		return;
	}
	data += n;
	size -= n;
	chunk_left_ -= n;
	if (chunk_left_ > 0)
		return;

	add_spooled_piece();
	if (chunk_last_) {
		delivering_.push_back(data_txn_);
		input_txn_.reset();
	}
	data_txn_.reset();
	input_mode_ = InputMode::command;
}

void LmtpSplitter::server_data(const unsigned char *data, size_t size,
			       const struct timeval &now)
{
	now_ = now;
	while (size > 0 && !broken_) {
		const void *lf = memchr(data, '\n', size);
		size_t n = lf == nullptr ? size :
			(size_t)((const unsigned char *)lf - data) + 1;
		if (reply_.size() + reply_line_.size() + n > max_line) {
			give_up("a reply longer than " +
			     std::to_string(max_line) + " bytes");
			return;
		}
		reply_line_.append((const char *)data, n);
		data += n;
		size -= n;
		if (lf == nullptr)
			return;
		reply_ += reply_line_;
		bool more = smtp_reply_line(reply_line_).more;
		reply_line_.clear();
		if (!more) {
			std::string text;
			text.swap(reply_);
			reply(text);
		}
	}
}

void LmtpSplitter::reply(const std::string &text)
{
	// Nothing to match: e.g. "421 Shutting down" on its own.
	if (pending_.empty())
		return;
	Pending pending = *pending_.front();
	std::shared_ptr<Transaction> txn = pending.txn;
	unsigned int code = smtp_reply_line(text).code;
	// One final reply per accepted recipient; a refused DATA (no
	// recipients) gets just one.
	unsigned int finals = txn != nullptr && txn->accepted > 0 ?
		txn->accepted : 1;
	unsigned int index;
	using Answer = SmtpReplies<Pending>::Answer;
	Answer answer = pending_.reply(code, finals, index);

	switch (pending.kind) {
	case Pending::Kind::other:
		break;
	case Pending::Kind::mail:
		txn->mail_reply = text;
		txn->mail_reply_time = now_;
		if (code < 200 || code >= 300) {
			txn->mail_refused = true;
			if (pending.nested) {
				// Which transaction the commands sent behind it
				// joined is now unclear: stop rather than guess.
				give_up("MAIL refused within a transaction");
				return;
			}
		}
		break;
	case Pending::Kind::rcpt: {
		Transaction::Recipient &recipient =
			txn->recipients[pending.recipient];
		recipient.reply = text;
		recipient.reply_time = now_;
		recipient.replied = true;
		if (code >= 200 && code < 300)
			recipient.accepted_index = (int)txn->accepted++;
		decide(txn);
		break;
	}
	case Pending::Kind::data:
		if (answer == Answer::partial || answer == Answer::last) {
			// After the data.
			reply_to_data(pending, index, answer == Answer::last,
				      text);
			break;
		}
		txn->data.push_back(text_piece(Direction::out, text, now_));
		if (answer == Answer::go_ahead) {
			data_txn_ = txn;
			data_start_ = txn->spool.size();
			data_end_.reset();
			input_mode_ = InputMode::data;
		} else {
			input_mode_ = InputMode::command;
		}
		{
			std::string held;
			held.swap(held_);
			client_bytes((const unsigned char *)held.data(),
				     held.size());
		}
		break;
	case Pending::Kind::bdat:
		txn->data.push_back(text_piece(Direction::out, text, now_));
		break;
	case Pending::Kind::data_end:
		reply_to_data(pending, index, answer == Answer::last, text);
		break;
	case Pending::Kind::starttls:
		if (code == 220) {
			// The session starts over (RFC 3207 4.2).
			tls_started_ = true;
			input_txn_.reset();
		}
		break;
	}
}

// index: which of the final replies this is; last: the final one.
void LmtpSplitter::reply_to_data(const Pending &pending, unsigned int index,
				 bool last, const std::string &text)
{
	std::shared_ptr<Transaction> txn = pending.txn;
	txn->final_replies.emplace_back(text, now_);
	if (index < txn->logs.size() && txn->logs[index] != nullptr) {
		txn->logs[index]->write(Direction::out,
					(const unsigned char *)text.data(),
					text.size(), now_);
		txn->logs[index].reset();
	}
	if (!last)
		return;
	for (auto it = delivering_.begin(); it != delivering_.end(); ++it) {
		if (*it == txn) {
			delivering_.erase(it);
			break;
		}
	}
}

std::shared_ptr<LmtpSplitter::Transaction>
LmtpSplitter::find_delivery(unsigned int rcpt_index, const std::string &address,
			    std::string &error_r) const
{
	if (broken_) {
		error_r = "the connection's traffic could not be followed";
		return nullptr;
	}
	if (!keep_data_) {
		error_r = "per-recipient logs are off";
		return nullptr;
	}
	if (delivering_.empty()) {
		error_r = "no message data seen for this delivery";
		return nullptr;
	}
	// The oldest delivery whose recipient this still is (replies to an
	// earlier one may not have gone out yet).
	for (const auto &txn : delivering_) {
		if ((rcpt_index < txn->logs.size() &&
		     txn->logs[rcpt_index] != nullptr) ||
		    rcpt_index < txn->final_replies.size())
			continue;
		const Transaction::Recipient *recipient =
			txn->accepted_recipient(rcpt_index);
		if (recipient == nullptr)
			continue;
		if (!contains_nocase(recipient->line, "<" + address + ">")) {
			error_r = "recipient " + std::to_string(rcpt_index) +
				" in the connection's traffic is not " +
				address;
			return nullptr;
		}
		if (!txn->keep) {
			error_r = "message not spooled: no recipient of "
				"this transaction logs";
			return nullptr;
		}
		if (txn->spool.failed()) {
			error_r = "spooling the message failed: " +
				txn->spool.error();
			return nullptr;
		}
		return txn;
	}
	error_r = "recipient " + std::to_string(rcpt_index) +
		" not seen in the connection's traffic";
	return nullptr;
}

bool LmtpSplitter::can_attach(unsigned int rcpt_index,
			      const std::string &address,
			      std::string &error_r) const
{
	return find_delivery(rcpt_index, address, error_r) != nullptr;
}

bool LmtpSplitter::attach(unsigned int rcpt_index, const std::string &address,
			  std::unique_ptr<RecipientLog> log,
			  std::string &error_r)
{
	std::shared_ptr<Transaction> txn =
		find_delivery(rcpt_index, address, error_r);
	if (txn == nullptr)
		return false;
	const Transaction::Recipient *recipient = txn->accepted_recipient(rcpt_index);

	auto text = [&](Direction direction, const std::string &bytes,
			const struct timeval &time) {
		log->write(direction, (const unsigned char *)bytes.data(),
			   bytes.size(), time);
	};
	text(Direction::in, txn->mail_line, txn->mail_time);
	text(Direction::out, txn->mail_reply, txn->mail_reply_time);
	text(Direction::in, recipient->line, recipient->line_time);
	text(Direction::out, recipient->reply, recipient->reply_time);
	for (const Piece &piece : txn->data) {
		if (!piece.spooled) {
			text(piece.direction, piece.bytes, piece.time);
			continue;
		}
		bool ok = txn->spool.read(piece.offset, piece.length,
			[&](const unsigned char *data, size_t size) {
				log->write(piece.direction, data, size,
					   piece.time);
			});
		if (!ok) {
			error_r = "reading the spooled message: " +
				txn->spool.error();
			return false;
		}
	}
	log->caught_up();
	if (txn->logs.size() <= rcpt_index)
		txn->logs.resize(rcpt_index + 1);
	txn->logs[rcpt_index] = std::move(log);
	return true;
}

} // namespace rawlog_ext
