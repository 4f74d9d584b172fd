#include "session-log.hh"
#include "guard.hh"
#include "stream-create.hh"	// per Dovecot line

namespace rawlog_ext {

struct event *log_event_create(struct event *parent)
{
	struct event *event = event_create(parent);
	event_set_append_log_prefix(event, "rawlog_ext: ");
	return event;
}

std::unique_ptr<Sink> sink_opened(OpenResult result, std::unique_ptr<Sink> sink,
				  const std::string &message,
				  struct event *event)
{
	if (result == OpenResult::failed) {
		e_error(event, "%s", message.c_str());
		return nullptr;
	}
	e_debug(event, "%s", message.c_str());
	return result == OpenResult::opened ? std::move(sink) : nullptr;
}

SessionLog::SessionLog(std::unique_ptr<Sink> sink, struct event *event,
		       std::unique_ptr<SessionTap> tap)
	: sink_(std::move(sink)), event_(event), tap_(std::move(tap))
{
	event_ref(event_);
}

SessionLog::~SessionLog()
{
	if (redactor_ != nullptr && sink_ != nullptr) {
		// What it still holds, a held secret still as "***".
		if (!guard(event_, "writing the end of the log", [&] {
			redacted_.clear();
			redactor_->finish(redacted_);
			sink_write(client_direction_, redacted_.data(),
				   redacted_.size(), ioloop_timeval);
		}))
			abandon();
	}
	// Here, not in ~Sink: a sealed file's last chunk is written now, and
	// a failure to write it is said like any other.
	if (sink_ != nullptr && !guard(event_, "closing the log", [&] {
		sink_->end_session();
		report_problems();
	}))
		abandon();
	event_unref(&event_);
}

void SessionLog::unref(SessionLog **log)
{
	SessionLog *l = *log;
	*log = nullptr;
	if (l != nullptr && --l->refcount_ == 0)
		delete l;
}

void SessionLog::abandon() noexcept
{
	// Nothing more is written: whatever went wrong may be in the sink.
	if (sink_ != nullptr)
		sink_->abandon();
	sink_.reset();
	redactor_.reset();
	holding_ = false;
	held_.reset();
	failed_ = true;
}

void SessionLog::write_at(Direction direction, const void *data,
			  size_t size, const struct timeval &time) noexcept
{
	if (paused_)
		return;
	if (tap_ != nullptr)
		tap_->data(direction, (const unsigned char *)data, size, time);
	if (sink_ == nullptr && !holding_)
		return;
	if (!guard(event_, "writing the log", [&] {
		if (redactor_ == nullptr)
			sink_write(direction, data, size, time);
		else
			redact_write(direction, data, size, time);
	}))
		abandon();
}

void SessionLog::redact_write(Direction direction, const void *data,
			      size_t size, const struct timeval &time)
{
	const unsigned char *bytes = (const unsigned char *)data;
	redacted_.clear();
	if (direction == client_direction_) {
		redactor_->client_data(bytes, size, redacted_);
		sink_write(direction, redacted_.data(), redacted_.size(), time);
		return;
	}
	// The client's bytes this reply resolved were sent before it.
	redactor_->server_data(bytes, size);
	redactor_->flush(redacted_);
	sink_write(client_direction_, redacted_.data(), redacted_.size(), time);
	sink_write(direction, data, size, time);
}

void SessionLog::sink_write(Direction direction, const void *data,
			    size_t size, const struct timeval &time)
{
	if (size == 0)
		return;
	if (sink_ == nullptr) {
		if (!holding_)
			return;
		// Past the limit nothing more is kept, so what is kept is
		// one piece from the start, with a single gap after it.
		if (held_dropped_ > 0 ||
		    !held_->add(direction, (const unsigned char *)data, size,
				time))
			held_dropped_ += size;
		return;
	}
	sink_->write(direction, data, size, time);
	report_problems();
}

void SessionLog::flush() noexcept
{
	if (sink_ == nullptr)
		return;
	if (!guard(event_, "writing the log", [&] {
		(void)sink_->flush_deferred();
		report_problems();
	}))
		abandon();
}

void SessionLog::release_output() noexcept
{
	if (sink_ == nullptr)
		return;
	if (!guard(event_, "writing the log", [&] {
		(void)sink_->release_output();
		report_problems();
	}))
		abandon();
}

void SessionLog::attach_sink(std::unique_ptr<Sink> sink) noexcept
{
	// Stopped for good: no log with a gap in it.
	if (failed_)
		return;
	sink_ = std::move(sink);
	std::unique_ptr<HeldData> held = std::move(held_);
	holding_ = false;
	if (!guard(event_, "writing what was held before login", [&] {
		if (held != nullptr) {
			held->replay([this](Direction direction,
					    const unsigned char *data,
					    size_t size,
					    const struct timeval &time) {
				sink_write(direction, data, size, time);
			});
		}
		// Held bytes are old news: on disk now, not with the next
		// output (a plaintext login's next output is the post-login
		// process's).
		if (sink_ != nullptr) {
			(void)sink_->flush_deferred();
			report_problems();
		}
	}))
		abandon();
}

void SessionLog::drop() noexcept
{
	sink_.reset();
	holding_ = false;
	held_.reset();
}

void SessionLog::report_problems() noexcept
{
	if (sink_ == nullptr)
		return;
	Sink::Level level;
	std::string message;
	if (!sink_->take_report(level, message))
		return;
	if (level == Sink::Level::error)
		e_error(event_, "%s", message.c_str());
	else
		e_warning(event_, "%s", message.c_str());
}

namespace {

struct LoggingIstream {
	struct istream_private istream;
	SessionLog *log;
	bool logging;
};
static_assert(std::is_standard_layout_v<LoggingIstream>,
	      "Dovecot allocates and frees this as a C struct");

struct LoggingOstream {
	struct ostream_private ostream;
	SessionLog *log;
	bool logging;
	void (*activity)(void *context);
	void *activity_context;
	void (*default_cork)(struct ostream_private *stream, bool set);
	// Bytes logged by an earlier send that the parent did not accept
	// then: they come again first.
	size_t logged_ahead;
	// Output held while corked: neither logged nor passed on yet.
	buffer_t *pending;
};

// While the client's output is corked, it is gathered here and logged with
// one write when it is passed on (uncork, flush, or this much gathered),
// instead of one write per send: imap sends a FETCH reply in dozens of
// pieces, each of which would otherwise cost a write(2).
const size_t max_pending = 32 * 1024;
static_assert(std::is_standard_layout_v<LoggingOstream>,
	      "Dovecot allocates and frees this as a C struct");

LoggingIstream *logging_istream(struct istream_private *stream)
{
	return reinterpret_cast<LoggingIstream *>(stream);
}

LoggingOstream *logging_ostream(struct ostream_private *stream)
{
	return reinterpret_cast<LoggingOstream *>(stream);
}

ssize_t logging_istream_read(struct istream_private *stream) noexcept
{
	LoggingIstream *lstream = logging_istream(stream);

	i_stream_seek(stream->parent, stream->parent_start_offset +
		      stream->istream.v_offset);
	ssize_t ret = i_stream_read_copy_from_parent(&stream->istream);
	// The parent's buffer is shared: the new bytes end at pos.
	if (ret > 0 && lstream->logging) {
		lstream->log->write(Direction::in,
				    stream->buffer + stream->pos - ret,
				    (size_t)ret);
	}
	return ret;
}

// Leave the parent where a reader of ours stopped, as other filters do.
void seek_parent(struct istream_private *istream)
{
	uoff_t v_offset = istream->parent_start_offset +
		istream->istream.v_offset;
	if (istream->parent->seekable || v_offset > istream->parent->v_offset)
		i_stream_seek(istream->parent, v_offset);
}

void logging_istream_destroy(struct iostream_private *stream) noexcept
{
	LoggingIstream *lstream = reinterpret_cast<LoggingIstream *>(
		container_of(stream, struct istream_private, iostream));
	seek_parent(&lstream->istream);
	SessionLog::unref(&lstream->log);
}

void run_activity(LoggingOstream *lstream)
{
	if (lstream->activity == nullptr)
		return;
	void (*activity)(void *) = lstream->activity;
	lstream->activity = nullptr;
	activity(lstream->activity_context);
}

// The log is written before the bytes go to the parent, which may put
// them on the wire at once: a crash never leaves the client with bytes the
// log lacks. (imap's and pop3's fd streams accept all they are given; when
// a parent takes less, the rest comes again in the next call and is not
// logged twice.)
ssize_t log_and_send(LoggingOstream *lstream, const struct const_iovec *iov,
		     unsigned int iov_count, size_t total)
{
	struct ostream_private *stream = &lstream->ostream;
	if (lstream->logging) {
		size_t skip = lstream->logged_ahead;
		for (unsigned int i = 0; i < iov_count; i++) {
			if (skip >= iov[i].iov_len) {
				skip -= iov[i].iov_len;
				continue;
			}
			lstream->log->write(Direction::out,
					    (const char *)iov[i].iov_base + skip,
					    iov[i].iov_len - skip);
			skip = 0;
		}
	}

	ssize_t ret = o_stream_sendv(stream->parent, iov, iov_count);
	if (ret < 0) {
		o_stream_copy_error_from_parent(stream);
		return -1;
	}
	// Logged so far: max(ahead, total) bytes from the start of this call.
	lstream->logged_ahead = (lstream->logged_ahead > total ?
				 lstream->logged_ahead : total) - (size_t)ret;
	return ret;
}

// Passes the held output on. 1: all of it, 0: the parent took only part
// (the rest stays), -1: error.
int pass_pending(LoggingOstream *lstream)
{
	buffer_t *pending = lstream->pending;
	if (pending == nullptr || pending->used == 0)
		return 1;
	struct const_iovec iov = { pending->data, pending->used };
	ssize_t ret = log_and_send(lstream, &iov, 1, pending->used);
	if (ret < 0)
		return -1;
	buffer_delete(pending, 0, (size_t)ret);
	return pending->used == 0 ? 1 : 0;
}

ssize_t logging_ostream_sendv(struct ostream_private *stream,
			      const struct const_iovec *iov,
			      unsigned int iov_count) noexcept
{
	LoggingOstream *lstream = logging_ostream(stream);
	run_activity(lstream);

	size_t total = 0;
	for (unsigned int i = 0; i < iov_count; i++)
		total += iov[i].iov_len;
	size_t pending_used = lstream->pending == nullptr ? 0 :
		lstream->pending->used;
	bool hold = stream->corked && lstream->logging && total <= max_pending;
	if (!hold || pending_used + total > max_pending) {
		int ret = pass_pending(lstream);
		if (ret <= 0)
			return ret;
	}
	if (hold) {
		if (lstream->pending == nullptr) {
			lstream->pending = buffer_create_dynamic(default_pool,
								 max_pending);
		}
		for (unsigned int i = 0; i < iov_count; i++) {
			buffer_append(lstream->pending, iov[i].iov_base,
				      iov[i].iov_len);
		}
		stream->ostream.offset += total;
		return (ssize_t)total;
	}
	ssize_t ret = log_and_send(lstream, iov, iov_count, total);
	if (ret > 0)
		stream->ostream.offset += (uoff_t)ret;
	return ret;
}

int logging_ostream_flush(struct ostream_private *stream) noexcept
{
	int ret = pass_pending(logging_ostream(stream));
	if (ret <= 0)
		return ret;
	return o_stream_flush_parent(stream);
}

size_t logging_ostream_get_buffer_used_size(const struct ostream_private *stream)
	noexcept
{
	const LoggingOstream *lstream =
		reinterpret_cast<const LoggingOstream *>(stream);
	size_t pending_used = lstream->pending == nullptr ? 0 :
		lstream->pending->used;
	return pending_used + o_stream_get_buffer_used_size(stream->parent);
}

void logging_ostream_cork(struct ostream_private *stream, bool set) noexcept
{
	LoggingOstream *lstream = logging_ostream(stream);
	if (set)
		run_activity(lstream);
	else
		(void)pass_pending(lstream);
	lstream->default_cork(stream, set);
}

void logging_ostream_close(struct iostream_private *stream,
			   bool close_parent) noexcept
{
	LoggingOstream *lstream = reinterpret_cast<LoggingOstream *>(
		container_of(stream, struct ostream_private, iostream));
	(void)pass_pending(lstream);
	if (close_parent)
		o_stream_close(lstream->ostream.parent);
}

void logging_ostream_destroy(struct iostream_private *stream) noexcept
{
	LoggingOstream *lstream = reinterpret_cast<LoggingOstream *>(
		container_of(stream, struct ostream_private, iostream));
	buffer_free(&lstream->pending);
	o_stream_unref(&lstream->ostream.parent);
	SessionLog::unref(&lstream->log);
}

} // namespace

struct istream *istream_create_logging(struct istream *parent,
				       SessionLog *log)
{
	LoggingIstream *lstream = i_new(LoggingIstream, 1);
	lstream->log = log;
	lstream->logging = log->logs(Direction::in);
	log->ref();

	struct istream_private *stream = &lstream->istream;
	stream->max_buffer_size = parent->real_stream->max_buffer_size;
	stream->stream_size_passthrough = TRUE;
	stream->read = logging_istream_read;
	stream->iostream.destroy = logging_istream_destroy;
	stream->istream.readable_fd = parent->readable_fd;
	stream->istream.blocking = parent->blocking;
	stream->istream.seekable = parent->seekable;
	return istream_create_filter(stream, parent);
}

struct ostream *ostream_create_logging(struct ostream *parent,
				       SessionLog *log)
{
	LoggingOstream *lstream = i_new(LoggingOstream, 1);
	lstream->log = log;
	lstream->logging = log->logs(Direction::out);
	log->ref();

	struct ostream_private *stream = &lstream->ostream;
	stream->sendv = logging_ostream_sendv;
	stream->flush = logging_ostream_flush;
	stream->get_buffer_used_size = logging_ostream_get_buffer_used_size;
	stream->iostream.close = logging_ostream_close;
	stream->iostream.destroy = logging_ostream_destroy;
	struct ostream *output = o_stream_create(stream, parent,
						 o_stream_get_fd(parent));
	// o_stream_create() filled in the default cork; run ours first.
	lstream->default_cork = stream->cork;
	stream->cork = logging_ostream_cork;
	return output;
}

void istream_stop_logging(struct istream *input)
{
	logging_istream(input->real_stream)->logging = false;
}

void istream_continue_offsets(struct istream *input)
{
	struct istream_private *stream = input->real_stream;
	// i_stream_create() set both to the parent's v_offset.
	stream->istream.v_offset = stream->parent_start_offset;
	stream->parent_start_offset = 0;
	stream->start_offset = 0;
}

void istream_seek_parent(struct istream *input)
{
	seek_parent(input->real_stream);
}

void ostream_set_activity(struct ostream *output,
			  void (*activity)(void *context), void *context)
{
	LoggingOstream *lstream = logging_ostream(output->real_stream);
	lstream->activity = activity;
	lstream->activity_context = context;
}

void ostream_stop_logging(struct ostream *output)
{
	LoggingOstream *lstream = logging_ostream(output->real_stream);
	// What it holds was sent before the change: log it as it goes.
	(void)pass_pending(lstream);
	lstream->logging = false;
	lstream->activity = nullptr;
}

} // namespace rawlog_ext
