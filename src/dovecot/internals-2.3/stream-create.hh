// Dovecot 2.3: creating a filter istream.
#ifndef RAWLOG_EXT_STREAM_CREATE_HH
#define RAWLOG_EXT_STREAM_CREATE_HH

#include "../compat.hh"

namespace rawlog_ext {

// A filter that reads only from its parent.
inline struct istream *istream_create_filter(struct istream_private *stream,
					     struct istream *parent)
{
	return i_stream_create(stream, parent, i_stream_get_fd(parent),
			       static_cast<enum istream_create_flag>(0));
}

} // namespace rawlog_ext

#endif
