// Dovecot 2.3: imap's own rawlog_dir keeps no stream pointers of its own,
// and imap_zlib's COMPRESS stacks on whatever is outermost: nothing to
// keep in step. Include after imap-client.h.
#ifndef RAWLOG_EXT_IMAP_CORE_RAWLOG_HH
#define RAWLOG_EXT_IMAP_CORE_RAWLOG_HH

namespace rawlog_ext {

inline void imap_core_rawlog_follow(struct client *) {}

inline bool imap_core_rawlog_compress_takes_ours(struct client *)
{
	return false;
}

inline bool imap_core_rawlog_compress_asserts(struct client *)
{
	return false;
}

} // namespace rawlog_ext

#endif
