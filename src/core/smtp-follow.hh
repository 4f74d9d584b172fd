// Following an SMTP (or LMTP) session from its bytes, as Dovecot's
// lib-smtp does: reply lines and multi-line replies, the end of DATA and
// the size of a BDAT chunk. Shared by the SMTP redactor (redact-smtp.cc)
// and the LMTP splitter, so that both cut a session the same way.
#ifndef RAWLOG_EXT_SMTP_FOLLOW_HH
#define RAWLOG_EXT_SMTP_FOLLOW_HH

#include <cstddef>
#include <cstdint>
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

} // namespace rawlog_ext

#endif
