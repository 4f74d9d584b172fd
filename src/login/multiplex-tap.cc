#include "multiplex-tap.hh"
#include "../dovecot/guard.hh"

#include <cstring>

namespace rawlog_ext {

namespace {

// What imap-login's ID reply says before it starts multiplexing.
const char multiplex_line[] = "* MULTIPLEX 0\r\n";
const size_t multiplex_line_len = sizeof(multiplex_line) - 1;
// The stream format's header: five 0xff, version 0, the switch prefix's
// length 2, the switch prefix (istream-multiplex.c describes it).
const unsigned char stream_header[] = {
	0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x02, 0x03, 0xfe
};
const unsigned char prefix1 = 0x03, prefix2 = 0xfe;
const unsigned char switch_channel = 0x00, switch_prefix_char1 = 0x01;

} // namespace

MultiplexTap::~MultiplexTap()
{
	SessionLog::unref(&log_);
}

void MultiplexTap::decode(const unsigned char *data, size_t size,
			  std::string &out)
{
	for (size_t i = 0; i < size && state_ != State::stopped; i++) {
		unsigned char c = data[i];
		// The common cases in bulk: the rest of a line that cannot be
		// the one, channel 0 data up to the next prefix byte.
		if (state_ == State::lines && !line_start_) {
			const void *nl = memchr(data + i, '\n', size - i);
			size_t end = nl == nullptr ? size :
				(size_t)((const unsigned char *)nl - data) + 1;
			out.append((const char *)data + i, end - i);
			line_start_ = nl != nullptr;
			i = end - 1;
			continue;
		}
		if (state_ == State::normal && c != prefix1) {
			const void *p = memchr(data + i, prefix1, size - i);
			size_t end = p == nullptr ? size :
				(size_t)((const unsigned char *)p - data);
			if (channel_ == 0)
				out.append((const char *)data + i, end - i);
			i = end - 1;
			continue;
		}
		switch (state_) {
		case State::lines:
			// At a line's start (the rest of a line goes above).
			out += (char)c;
			held_ += (char)c;
			if (held_ == multiplex_line) {
				state_ = State::header;
				held_.clear();
			} else if (memcmp(held_.data(), multiplex_line,
					  held_.size()) != 0) {
				line_start_ = c == '\n';
				held_.clear();
			}
			break;
		case State::header:
			held_ += (char)c;
			if ((unsigned char)held_.back() !=
			    stream_header[held_.size() - 1]) {
				// Not the stream format after all (e.g. the
				// line was inside a literal): plain bytes.
				out += held_;
				line_start_ = c == '\n';
				held_.clear();
				state_ = State::lines;
			} else if (held_.size() == sizeof(stream_header)) {
				held_.clear();
				channel_ = 0;
				state_ = State::normal;
			}
			break;
		case State::normal:
			if (c == prefix1)
				state_ = State::prefix1;
			else if (channel_ == 0)
				out += (char)c;
			break;
		case State::prefix1:
			if (c == prefix2) {
				state_ = State::prefix2;
				break;
			}
			// A lone prefix byte is data.
			if (channel_ == 0)
				out += (char)prefix1;
			state_ = State::normal;
			i--;
			break;
		case State::prefix2:
			if (c == switch_channel) {
				state_ = State::channel;
			} else if (c == switch_prefix_char1) {
				if (channel_ == 0)
					out += (char)prefix1;
				state_ = State::normal;
			} else {
				e_warning(log_->event(), "unexpected multiplex "
					  "framing from the backend: not logging "
					  "the rest of the backend leg");
				state_ = State::stopped;
			}
			break;
		case State::channel:
			channel_ = c;
			state_ = State::normal;
			break;
		case State::stopped:
			break;
		}
	}
}

void MultiplexTap::data(Direction direction, const unsigned char *data,
			size_t size, const struct timeval &now) noexcept
{
	if (state_ == State::stopped)
		return;
	if (direction != Direction::in) {
		log_->write_at(direction, data, size, now);
		return;
	}
	std::string out;
	if (!guard(log_->event(), "decoding the backend leg", [&] {
		decode(data, size, out);
	})) {
		state_ = State::stopped;
		log_->abandon();
		return;
	}
	if (!out.empty())
		log_->write_at(direction, out.data(), out.size(), now);
}

} // namespace rawlog_ext
