#include "client-log.hh"
#include "guard.hh"

namespace rawlog_ext {

ClientLog::ClientLog(SessionLog *log, struct istream **input,
		     struct ostream **output,
		     void (*streams_changed)(void *context), void *context)
	: log_(log), client_input_(input), client_output_(output),
	  streams_changed_(streams_changed), context_(context)
{
	// The input too, right away: on paths without login data (e.g.
	// unhibernation) bytes may be read before the first output.
	wrap_input();
	wrap_output();
}

ClientLog::~ClientLog()
{
	if (output_ != nullptr) {
		// It may outlive us (other references): drop its pointer to us.
		ostream_set_activity(output_, nullptr, nullptr);
		o_stream_unref(&output_);
	}
	i_stream_unref(&input_);
	SessionLog::unref(&log_);
}

ClientLog *client_log_create(SessionLog *log, struct istream **input,
			     struct ostream **output,
			     void (*streams_changed)(void *context),
			     void *context) noexcept
{
	ClientLog *client_log = nullptr;
	if (!guard(log->event(), "wrapping the client streams", [&] {
		client_log = new ClientLog(log, input, output, streams_changed,
					   context);
	}))
		SessionLog::unref(&log);
	return client_log;
}

void ClientLog::wrap_input()
{
	if (input_ != nullptr) {
		istream_stop_logging(input_);
		i_stream_unref(&input_);
	}
	struct istream *input = istream_create_logging(*client_input_, log_);
	i_stream_unref(client_input_);
	*client_input_ = input;
	input_ = input;
	i_stream_ref(input_);
}

void ClientLog::wrap_output()
{
	if (output_ != nullptr) {
		ostream_stop_logging(output_);
		o_stream_unref(&output_);
	}
	struct ostream *old_output = *client_output_;
	struct ostream *output = ostream_create_logging(old_output, log_);
	if (!first_output_seen_)
		ostream_set_activity(output, first_output, this);
	// Keep the byte counters of the logout line going.
	output->offset = old_output->offset;
	o_stream_unref(&old_output);
	*client_output_ = output;
	output_ = output;
	o_stream_ref(output_);
}

void ClientLog::first_output(void *context)
{
	ClientLog *client_log = static_cast<ClientLog *>(context);
	client_log->first_output_seen_ = true;
	// Only the input: this runs inside our output filter, which is busy
	// passing on the very bytes that triggered it.
	client_log->sync(false);
}

void ClientLog::sync(bool output_too)
{
	if (destroying_)
		return;
	bool changed = false;
	if (output_too && *client_output_ != output_) {
		wrap_output();
		changed = true;
	}
	if (*client_input_ != input_) {
		wrap_input();
		changed = true;
	}
	if (changed && streams_changed_ != nullptr)
		streams_changed_(context_);
}

} // namespace rawlog_ext
