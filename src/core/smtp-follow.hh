// Following an SMTP (or LMTP) session from its bytes, as Dovecot's
// lib-smtp does: reply lines and multi-line replies, which command a
// reply answers, the end of DATA and the size of a BDAT chunk. Shared by the SMTP redactor (redact-smtp.cc)
// and the LMTP splitter, so that both cut a session the same way.
#ifndef RAWLOG_EXT_SMTP_FOLLOW_HH
#define RAWLOG_EXT_SMTP_FOLLOW_HH

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

namespace rawlog_ext {

// One reply line: "250-..." (more lines of the reply follow) or "250 ...".
struct SmtpReplyLine {
	unsigned int code = 0;	// 0: not a reply line
	bool more = false;
};
SmtpReplyLine smtp_reply_line(const unsigned char *line, size_t size);
inline SmtpReplyLine smtp_reply_line(const std::string &line)
{
	return smtp_reply_line((const unsigned char *)line.data(), line.size());
}

// Where DATA ends: at a line that is a lone "." (dot-stuffed data has
// ".." there), the line ending CRLF or a bare LF. Fed the data from its
// first byte, in pieces.
class SmtpDataEnd {
public:
	void reset() { state_ = State::line_start; }
	// How many of the bytes are data (the end line's LF included);
	// ended_r: whether the data ended there.
	size_t scan(const unsigned char *data, size_t size, bool &ended_r);

private:
	enum class State { line_start, mid_line, dot, dot_cr };
	State state_ = State::line_start;
};

// A BDAT command's parameters (after "BDAT "): true if the chunk's size
// is known, and so its bytes follow, as lib-smtp's cmd_bdat() reads even
// a command it refuses for other parameters (Dovecot 2.3:
// smtp-server-cmd-data.c). last_r: a valid "LAST" ends the message.
// A line lib-smtp's parser refuses ("BDAT  5": two spaces) has no chunk.
bool smtp_bdat_chunk(const unsigned char *params, size_t size,
		     uint64_t &size_r, bool &last_r);
inline bool smtp_bdat_chunk(const std::string &params, uint64_t &size_r,
			    bool &last_r)
{
	return smtp_bdat_chunk((const unsigned char *)params.data(),
			       params.size(), size_r, last_r);
}

// The replies a server owes, in command order (RFC 2920 pipelining):
// one per command, except that DATA gets 354 first and then, after the
// data, its final reply -- in LMTP one per accepted recipient (RFC
// 2033), as BDAT LAST does. A DATA refused gets its one reply. T is the
// caller's record of a command.
template <class T>
class SmtpReplies {
public:
	enum class Kind {
		single,
		data,		// 354, then the final replies
		last_chunk,	// final replies only (LMTP's BDAT LAST)
	};
	enum class Answer {
		none,		// no command waits for it
		go_ahead,	// 354 to DATA: the data follows
		refused,	// DATA answered otherwise: no data; dropped
		partial,	// a final reply, more of them to come
		last,		// the command is answered and dropped
	};

	void push(Kind kind, T item)
	{
		queue_.push_back(Entry{ kind, false, 0, std::move(item) });
	}
	size_t size() const { return queue_.size(); }
	bool empty() const { return queue_.empty(); }
	void clear() { queue_.clear(); }
	// The command the next reply answers, or nullptr.
	T *front() { return queue_.empty() ? nullptr : &queue_.front().item; }

	// A whole reply. finals: how many final replies the front command
	// gets (1 but for LMTP's data). index_r: which final reply this is.
	Answer reply(unsigned int code, unsigned int finals,
		     unsigned int &index_r)
	{
		index_r = 0;
		if (queue_.empty())
			return Answer::none;
		Entry &head = queue_.front();
		if (head.kind == Kind::data && !head.data_sent) {
			if (code == 354) {
				head.data_sent = true;
				return Answer::go_ahead;
			}
			queue_.pop_front();
			return Answer::refused;
		}
		if (head.kind != Kind::single) {
			index_r = head.finals++;
			if (head.finals < finals)
				return Answer::partial;
		}
		queue_.pop_front();
		return Answer::last;
	}

private:
	struct Entry {
		Kind kind;
		bool data_sent;		// DATA got its 354
		unsigned int finals;	// final replies so far
		T item;
	};
	std::deque<Entry> queue_;
};

} // namespace rawlog_ext

#endif
