#include "log-parse.hh"

#include <cstring>

namespace rawlog_ext {

const char truncation_marker_prefix[] = "*** rawlog_ext: log truncated: ";

size_t parse_stamp(const char *s, size_t n, struct timeval &tv_r)
{
	size_t i = 0;
	long long sec = 0;
	while (i < n && i < 18 && s[i] >= '0' && s[i] <= '9')
		sec = sec * 10 + (s[i++] - '0');
	if (i == 0 || i >= n || s[i] != '.')
		return 0;
	size_t j = i + 1;
	long usec = 0;
	for (; j < n && j < i + 7; j++) {
		if (s[j] < '0' || s[j] > '9')
			return 0;
		usec = usec * 10 + (s[j] - '0');
	}
	if (j != i + 7 || j >= n || s[j] != ' ')
		return 0;
	tv_r.tv_sec = (time_t)sec;
	tv_r.tv_usec = usec;
	return j + 1;
}

bool LogParser::bad(const std::string &why, uint64_t offset)
{
	if (!failed_) {
		failed_ = true;
		error_ = why;
		error_offset_ = offset;
	}
	return false;
}

// Line data passes through; the last 4 bytes wait until the line ends,
// where they may turn out to be a ">>>\n" or an added "\n".
void LogParser::data(const char *p, size_t n)
{
	LogPiece piece{ cur_dir_, have_time_, time_, nullptr, 0 };
	if (n >= 4) {
		if (!tail_.empty()) {
			piece.data = tail_.data();
			piece.size = tail_.size();
			emit_(piece);
		}
		if (n > 4) {
			piece.data = p;
			piece.size = n - 4;
			emit_(piece);
		}
		tail_.assign(p + n - 4, 4);
		return;
	}
	tail_.append(p, n);
	if (tail_.size() > 4) {
		std::string out = tail_.substr(0, tail_.size() - 4);
		tail_.erase(0, tail_.size() - 4);
		piece.data = out.data();
		piece.size = out.size();
		emit_(piece);
	}
}

void LogParser::flush_held()
{
	if (held_.empty())
		return;
	LogPiece piece{ cur_dir_, have_time_, time_, held_.data(), held_.size() };
	emit_(piece);
	held_.clear();
}

void LogParser::line_end_data()
{
	size_t keep = tail_.size();
	if (transcript_) {
		if (drop_final_lf_ && keep > 0)
			keep--;
	} else if (boundaries_ && in_chunk_ && keep == 4 && tail_ == ">>>\n") {
		keep = 0;
		held_ = ">>>\n";
	} else if (keep > 0) {
		// Could be the "\n" in front of a truncation marker.
		keep--;
		held_ = "\n";
	}
	if (keep > 0) {
		LogPiece piece{ cur_dir_, have_time_, time_, tail_.data(), keep };
		emit_(piece);
	}
	tail_.clear();
}

// Exactly the line Sink::truncate_at_cap() writes.
static bool is_marker_line(const std::string &head, bool complete)
{
	const size_t pl = sizeof(truncation_marker_prefix) - 1;
	static const char size_part[] = "rawlog_ext_max_size=";
	static const char end_part[] = " bytes reached ***\n";
	const size_t sl = sizeof(size_part) - 1, el = sizeof(end_part) - 1;
	if (!complete || head.size() < pl + sl + 1 + el ||
	    head.compare(0, pl, truncation_marker_prefix) != 0 ||
	    head.compare(pl, sl, size_part) != 0 ||
	    head.compare(head.size() - el, el, end_part) != 0)
		return false;
	for (size_t i = pl + sl; i < head.size() - el; i++)
		if (head[i] < '0' || head[i] > '9')
			return false;
	return true;
}

// In a split file data can look like the marker: it is one only as the
// file's last line.
bool LogParser::replay_marker_as_data()
{
	std::string line;
	line.swap(marker_);
	if (transcript_)
		return bad("data after the truncation marker", marker_offset_);
	std::string saved;
	saved.swap(head_);
	head_ = line;
	no_marker_ = true;
	bool ok = classify_head(true);
	no_marker_ = false;
	head_.swap(saved);
	return ok;
}

bool LogParser::classify_head(bool complete)
{
	const uint64_t at = head_offset_;
	const char *p = head_.data();
	size_t n = head_.size();
	const bool first = first_line_;
	first_line_ = false;

	if (!no_marker_ && is_marker_line(head_, complete)) {
		marker_ = head_;
		marker_offset_ = at;
		return true;
	}
	if (transcript_) {
		if (head_ == "<<<\n") {
			if (in_chunk_)
				return bad("\"<<<\" inside a chunk", at);
			boundaries_ = in_chunk_ = true;
			return true;
		}
		if (head_ == ">>>\n") {
			if (!in_chunk_)
				return bad("\">>>\" outside a chunk", at);
			in_chunk_ = false;
			return true;
		}
		if (boundaries_ && !in_chunk_)
			return bad("record outside a \"<<<\"/\">>>\" chunk", at);
		struct timeval tv;
		size_t sl = parse_stamp(p, n, tv);
		if (first)
			stamps_ = sl > 0;
		if (sl > 0) {
			time_ = tv;
			have_time_ = true;
		}
		p += sl;
		n -= sl;
		if (n < 3 || (p[0] != 'I' && p[0] != 'O') ||
		    (p[1] != ':' && p[1] != '+') || p[2] != ' ')
			return bad("not a rawlog_ext transcript record", at);
		cur_dir_ = p[0] == 'I' ? Direction::in : Direction::out;
		drop_final_lf_ = p[1] == '+';
		data(p + 3, n - 3);
		if (complete)
			line_end_data();
		return true;
	}

	// split
	if (first && head_ == "<<<\n")
		boundaries_ = true;
	if (boundaries_) {
		if (head_ == "<<<\n" && !in_chunk_) {
			flush_held();
			in_chunk_ = true;
			return true;
		}
		if (head_ == "<<<\n" && held_.compare(0, 4, ">>>\n") == 0) {
			held_.erase(0, 4);
			flush_held();	// corrupt, but keep the bytes
			return true;	// still in a (new) chunk
		}
		if (head_ == "\n" && held_ == ">>>\n") {
			held_ += "\n";	// maybe the truncation marker's
			return true;
		}
		if (!in_chunk_)
			return bad("data outside a \"<<<\"/\">>>\" chunk", at);
	}
	flush_held();
	if (!stamps_known_) {
		struct timeval tv;
		stamps_ = parse_stamp(p, n, tv) > 0;
		stamps_known_ = true;
	}
	if (stamps_) {
		struct timeval tv;
		size_t sl = parse_stamp(p, n, tv);
		if (sl > 0) {
			time_ = tv;
			have_time_ = true;
			p += sl;
			n -= sl;
		} else if (could_pass_for_stamp(p) && n > 0) {
			return bad("a line starts with a digit but no timestamp", at);
		}
	}
	data(p, n);
	if (complete)
		line_end_data();
	return true;
}

bool LogParser::feed(const char *buf, size_t size)
{
	if (failed_)
		return false;
	const char *p = buf, *end = buf + size;
	while (p < end) {
		if (!marker_.empty() && !replay_marker_as_data())
			return false;
		if (at_line_start_) {
			if (head_.empty())
				head_offset_ = offset_;
			size_t room = head_max - head_.size();
			size_t avail = end - p;
			const char *lf = (const char *)memchr(p, '\n',
							      avail < room ? avail : room);
			size_t take = lf != nullptr ? lf + 1 - p :
				(avail < room ? avail : room);
			head_.append(p, take);
			p += take;
			offset_ += take;
			if (lf == nullptr && head_.size() < head_max)
				continue;
			bool ok = classify_head(lf != nullptr);
			head_.clear();
			if (!ok)
				return false;
			at_line_start_ = lf != nullptr;
		} else {
			const char *lf = (const char *)memchr(p, '\n', end - p);
			size_t take = lf != nullptr ? lf + 1 - p : end - p;
			data(p, take);
			p += take;
			offset_ += take;
			if (lf != nullptr) {
				line_end_data();
				at_line_start_ = true;
			}
		}
	}
	return true;
}

void LogParser::release_held()
{
	if (failed_ || transcript_ || held_ != "\n" || !at_line_start_ ||
	    !head_.empty() || !marker_.empty() || !tail_.empty())
		return;
	flush_held();
}

bool LogParser::finish()
{
	if (failed_)
		return false;
	if (!head_.empty()) {
		bool ok = classify_head(false);
		head_.clear();
		if (!ok)
			return false;
		at_line_start_ = false;
	}
	if (!at_line_start_) {
		if (transcript_)
			return bad("truncated: the last record has no end",
				   head_offset_);
		if (!tail_.empty()) {
			LogPiece piece{ cur_dir_, have_time_, time_, tail_.data(),
					tail_.size() };
			emit_(piece);
			tail_.clear();
		}
		at_line_start_ = true;
	}
	if (!marker_.empty()) {
		truncated_ = true;
		marker_.clear();
		held_.clear();	// the marker's "\n", or a closing ">>>"
		in_chunk_ = false;
	}
	if (boundaries_ && held_.compare(0, 4, ">>>\n") == 0) {
		in_chunk_ = false;
		held_.erase(0, 4);
	}
	flush_held();
	if (in_chunk_)
		return bad("truncated: a chunk has no \">>>\"", offset_);
	return true;
}

} // namespace rawlog_ext
