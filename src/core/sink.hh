// The files of one session's log: safe creation, formatting, size cap and
// error state. Plain POSIX; the Dovecot glue only reports what it says.
#ifndef RAWLOG_EXT_SINK_HH
#define RAWLOG_EXT_SINK_HH

#include "format.hh"
#include "naming.hh"
#include "seal.hh"
#include "settings.hh"

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <sys/uio.h>

namespace rawlog_ext {

enum class OpenResult {
	opened,		// message: where it logs
	not_enabled,	// message: why not (a Debug line, not an error)
	failed,		// message: the error
};

// Gathers formatted pieces and writes them with as few writev() calls as
// possible: short pieces (stamps, markers, short lines) are copied into a
// staging buffer, longer data is written from where it is. The buffers
// are one per process, not per session: a write is always finished before
// it returns (Dovecot's processes are single-threaded), so sessions never
// share them at the same time, and a logged session costs no buffer.
class PieceWriter {
public:
	// seal: the file is sealed; pieces go through it, written_ then
	// counts what went into it (the log's bytes, not the file's).
	void begin(int fd, SealedFile *seal = nullptr)
	{ fd_ = fd; seal_ = seal; error_ = 0; iov_count_ = 0;
	  staging_used_ = 0; seal_error_.clear(); }
	// Called for every stamp, marker and line: the common case (a
	// short piece that extends the staged run) stays inline.
	void operator()(const char *data, size_t size)
	{
		if (size <= max_copied && error_ == 0 &&
		    staging_used_ + size <= staging_size && iov_count_ > 0 &&
		    (char *)iov_[iov_count_ - 1].iov_base +
		    iov_[iov_count_ - 1].iov_len == staging_ + staging_used_) {
			memcpy(staging_ + staging_used_, data, size);
			staging_used_ += size;
			iov_[iov_count_ - 1].iov_len += size;
			return;
		}
		add(data, size);
	}
	// Writes what is still queued; false (errno in error()) on failure.
	bool finish();
	int error() const { return error_; }
	// Non-empty when sealing failed (error() is then EIO).
	const std::string &seal_error() const { return seal_error_; }
	uint64_t take_written() { uint64_t n = written_; written_ = 0; return n; }

private:
	// Sized for the per-session memory goal: in a process serving one
	// session they count as that session's (64 KiB cost 100 KiB RssAnon).
	static constexpr unsigned int max_iov = 256;
	static constexpr size_t staging_size = 16 * 1024;
	static constexpr size_t max_copied = 256;

	void add(const char *data, size_t size);
	bool flush();
	bool flush_for_room();

	bool flush_sealed();

	static struct iovec iov_[max_iov];
	static char staging_[staging_size];
	static std::string sealed_;	// ciphertext of one flush
	unsigned int iov_count_ = 0;
	size_t staging_used_ = 0;
	int fd_ = -1;
	SealedFile *seal_ = nullptr;
	int error_ = 0;
	std::string seal_error_;
	uint64_t written_ = 0;
};

class Sink {
public:
	// What open() would do now, creating nothing (doveadm rawlog
	// status): opened = it would log (message: where), else why not.
	// Checks as the effective uid.
	static OpenResult check(const Settings &settings,
				std::string &message_r);
	// Creates the session's log file(s) in settings.dir.
	static OpenResult open(const Settings &settings, const NameParts &parts,
			       std::unique_ptr<Sink> &sink_r,
			       std::string &message_r);
	// The same below a directory opened earlier (a login process opens
	// it as root, before its chroot): in base_fd itself, or in its
	// subdirectory subdir (one path component; created with autocreate).
	// base names base_fd in messages.
	static OpenResult open_in(int base_fd, const std::string &base,
				  const std::string &subdir,
				  const Settings &settings, const NameParts &parts,
				  std::unique_ptr<Sink> &sink_r,
				  std::string &message_r);
	~Sink();
	Sink(const Sink &) = delete;
	Sink &operator=(const Sink &) = delete;

	bool logs(Direction direction) const
	{ return !stopped_ && wanted_[(int)direction] &&
		 file_for(direction).fd != -1; }
	// Input (client to server) may be held back, formatted, until the
	// next output, flush_deferred() or max_deferred bytes; output is
	// written at once (unless held, below). A chunk too long to hold
	// goes out in the same writev() as what is held for its file.
	void write(Direction direction, const void *data, size_t size,
		   const struct timeval &now);
	// Writes held-back input (and output) now; false if logging has
	// stopped.
	bool flush_deferred();
	// Until release_output(), short output is held back as input is:
	// for a replay of what passed earlier (an LMTP recipient's part at
	// delivery), whose many short pieces then cost one write per file,
	// not one or two each. Without a cap only (the cap's exactness needs
	// each chunk measured as it comes).
	void hold_output() { holding_output_ = max_size_ == 0; }
	bool release_output()
	{ holding_output_ = false; return flush_deferred(); }

	// Stops logging for good, reporting why (once).
	void stop(const std::string &why);
	// Stops logging for good without writing or reporting anything more
	// (the caller has reported a failure of its own). A sealed file stays
	// without its last chunk: it reads as truncated.
	void abandon() noexcept
	{ stopped_ = true; abandoned_ = true; deferred_[0].clear();
	  deferred_[1].clear(); }
	// The session's end: writes held input and completes sealed files;
	// a failure is reported (take_report()) rather than lost.
	void end_session();

	// A message for Dovecot's log, at most once each: the first write
	// error (logging has then stopped) or the size-cap notice.
	enum class Level { warning, error };
	bool take_report(Level &level_r, std::string &message_r);

	const std::string &description() const { return description_; }
	uint64_t bytes_written() const { return written_; }

private:
	struct File {
		int fd = -1;
		std::string path;
		Formatter formatter;
		std::unique_ptr<SealedFile> seal;	// sealed logs only
		File(const Formatter &f) : formatter(f) {}
	};

	explicit Sink(const Settings &settings);
	// Creates the files in dirfd (which it closes).
	static OpenResult open_files(int dirfd, const std::string &dir,
				     const Settings &settings,
				     const NameParts &parts,
				     std::unique_ptr<Sink> &sink_r,
				     std::string &message_r);
	unsigned int file_index(Direction direction) const
	{ return transcript_ ? 0 : (unsigned int)direction; }
	File &file_for(Direction direction)
	{ return files_[file_index(direction)]; }
	const File &file_for(Direction direction) const
	{ return files_[file_index(direction)]; }
	// Writes what is held for file, then the chunk (if any), in one
	// writer run.
	bool write_chunk(File &file, Direction direction,
			 const unsigned char *data, size_t size,
			 const struct timeval &now);
	bool flush_deferred(unsigned int index);
	bool write_text(File &file, const std::string &text);
	// Flushes writer_; on failure reports it and stops logging.
	bool end_write(File &file);
	void truncate_at_cap();
	// Seals the last chunk of each sealed file: it is then complete.
	void finish_sealed();
	void report(Level level, std::string message);

	static constexpr size_t max_deferred_chunk = 4096;
	static constexpr size_t max_deferred = 16 * 1024;

	File files_[2];
	// Formatted bytes not written yet, by file: input; with
	// hold_output() also output.
	std::string deferred_[2];
	bool holding_output_ = false;
	bool transcript_;
	bool wanted_[2];	// rawlog_ext_direction: in, out
	uint64_t max_size_;
	uint64_t written_ = 0;
	std::shared_ptr<SessionAccounting> accounting_;	// told written_ at the end
	bool max_size_is_budget_;
	bool stopped_ = false;
	bool abandoned_ = false;
	// Sealed files: never a byte in clear, even on a path that lost its
	// seal (a write error resets them all: no file completes after one
	// of the session's files failed).
	bool sealed_ = false;
	bool seal_failed_ = false;
	bool have_report_ = false;
	Level report_level_ = Level::error;
	std::string report_;
	PieceWriter writer_;
	std::string description_;
};

// Opens (and with autocreate, creates with mode 0700) directory path
// without following a symlink in its last component, or in any component
// it created itself. Returns the fd or -1 with errno set.
int open_log_dir(const std::string &path, bool autocreate);

} // namespace rawlog_ext

#endif
