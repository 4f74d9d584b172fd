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
	drop_output();
	drop_input();
	SessionLog::unref(&log_);
}

// Our outermost streams' destroy callbacks take void (*)() to remove.
using DestroyCallback = void (*)();

void ClientLog::input_destroyed(void *context)
{
	static_cast<ClientLog *>(context)->input_ = nullptr;
}

void ClientLog::output_destroyed(void *context)
{
	static_cast<ClientLog *>(context)->output_ = nullptr;
}

// Forgets our outermost input (which may live on without us).
void ClientLog::drop_input()
{
	if (input_ == nullptr)
		return;
	if (released_) {
		i_stream_remove_destroy_callback(input_,
			reinterpret_cast<DestroyCallback>(input_destroyed));
		input_ = nullptr;
	} else {
		i_stream_unref(&input_);
	}
}

void ClientLog::drop_output()
{
	if (output_ == nullptr)
		return;
	// It may outlive us (other references): drop its pointer to us.
	ostream_set_activity(output_, nullptr, nullptr);
	if (released_) {
		o_stream_remove_destroy_callback(output_,
			reinterpret_cast<DestroyCallback>(output_destroyed));
		output_ = nullptr;
	} else {
		o_stream_unref(&output_);
	}
}

void ClientLog::release()
{
	if (released_ || input_ == nullptr || output_ == nullptr)
		return;
	(i_stream_add_destroy_callback)(input_, input_destroyed, this);
	(o_stream_add_destroy_callback)(output_, output_destroyed, this);
	struct istream *input = input_;
	struct ostream *output = output_;
	i_stream_unref(&input);
	o_stream_unref(&output);
	released_ = true;
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

// After release(): what of ours is still alive is referenced by us again
// (and then kept or replaced as usual).
void ClientLog::reclaim()
{
	if (input_ != nullptr) {
		i_stream_remove_destroy_callback(input_,
			reinterpret_cast<DestroyCallback>(input_destroyed));
		i_stream_ref(input_);
	}
	if (output_ != nullptr) {
		o_stream_remove_destroy_callback(output_,
			reinterpret_cast<DestroyCallback>(output_destroyed));
		o_stream_ref(output_);
	}
	released_ = false;
}

void ClientLog::wrap_input()
{
	if (input_ != nullptr)
		istream_stop_logging(input_);
	drop_input();
	struct istream *input = istream_create_logging(*client_input_, log_);
	// The client's byte counters and 2.4's COMPRESS (with core rawlog)
	// expect the offsets of the stream we replace.
	istream_continue_offsets(input);
	i_stream_unref(client_input_);
	*client_input_ = input;
	input_ = input;
	i_stream_ref(input_);
}

void ClientLog::wrap_output()
{
	if (output_ != nullptr)
		ostream_stop_logging(output_);
	drop_output();
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

bool ClientLog::unstack()
{
	sync();
	if (destroying_ || unstacked_ || input_ == nullptr ||
	    output_ == nullptr || *client_input_ != input_ ||
	    *client_output_ != output_)
		return false;
	istream_stop_logging(input_);
	ostream_stop_logging(output_);	// passes on what it holds
	istream_seek_parent(input_);
	struct istream *input = input_->real_stream->parent;
	struct ostream *output = output_->real_stream->parent;
	i_stream_ref(input);
	o_stream_ref(output);
	i_stream_unref(client_input_);
	o_stream_unref(client_output_);
	*client_input_ = input;
	*client_output_ = output;
	drop_output();
	drop_input();
	unstacked_ = true;
	if (streams_changed_ != nullptr)
		streams_changed_(context_);
	return true;
}

void ClientLog::sync(bool output_too)
{
	if (destroying_ || unstacked_)
		return;
	if (released_)
		reclaim();
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
