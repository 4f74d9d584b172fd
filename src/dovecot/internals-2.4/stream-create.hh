// Dovecot 2.4: creating a filter istream. 2.4.5 declares what else an
// istream reads (configure: RAWLOG_EXT_ISTREAM_HIDDEN_INPUTS).
#ifndef RAWLOG_EXT_STREAM_CREATE_HH
#define RAWLOG_EXT_STREAM_CREATE_HH

#include "../compat.hh"

namespace rawlog_ext {

// A filter that reads only from its parent.
inline struct istream *istream_create_filter(struct istream_private *stream,
					     struct istream *parent)
{
#ifdef RAWLOG_EXT_ISTREAM_HIDDEN_INPUTS
	return i_stream_create(stream, parent, i_stream_get_fd(parent),
			       ISTREAM_HIDDEN_INPUTS_NONE,
			       static_cast<enum istream_create_flag>(0));
#else
	return i_stream_create(stream, parent, i_stream_get_fd(parent),
			       static_cast<enum istream_create_flag>(0));
#endif
}

} // namespace rawlog_ext

#endif
