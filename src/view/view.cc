// rawlog-ext-view: a session's log as one conversation (issue #17).
// Exit status: 0 shown, 1 bad input, 2 usage.
#include "core/age-read.hh"
#include "core/log-parse.hh"
#include "view/fold.hh"
#include "view/render.hh"
#include "view/sessions.hh"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <functional>
#include <memory>
#include <ctime>
#include <string>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

using namespace rawlog_ext;

namespace {

bool ends_with(const std::string &s, const char *suffix)
{
	size_t n = strlen(suffix);
	return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

bool file_exists(const std::string &path)
{
	return access(path.c_str(), F_OK) == 0;
}

// A sealed log's name is the plain one with ".age" appended.
std::string unsealed(const std::string &name)
{
	return ends_with(name, ".age") ? name.substr(0, name.size() - 4) : name;
}

// What a sealed file that lacks its final chunk says, once the output
// shown (its authenticated part) is out.
std::vector<std::string> sealed_notes;

enum class Bytes { all, failed, truncated };

// Hands a log file's bytes to take, decrypted when it is sealed (.age):
// only authenticated chunks. failed: a message is printed (none when
// take refused: its own error says why). truncated: a sealed file that
// ends after a chunk that is not its last; its note is kept.
Bytes file_bytes(const std::string &path, const AgeIdentities &ids,
		 const std::function<bool(const char *, size_t)> &take)
{
	const bool sealed = ends_with(path, ".age");
	if (sealed && ids.size() == 0) {
		fprintf(stderr, "rawlog-ext-view: %s: sealed: give --identity\n",
			path.c_str());
		return Bytes::failed;
	}
	int fd = open(path.c_str(), O_RDONLY);
	if (fd == -1) {
		fprintf(stderr, "rawlog-ext-view: %s: %s\n", path.c_str(),
			strerror(errno));
		return Bytes::failed;
	}
	bool taken = true;
	AgeReader reader(ids, [&](const unsigned char *p, size_t n) {
		if (taken)
			taken = take((const char *)p, n);
	});
	static char buf[65536];
	Bytes got = Bytes::all;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0) {
			fprintf(stderr, "rawlog-ext-view: %s: %s\n",
				path.c_str(), strerror(errno));
			got = Bytes::failed;
			break;
		}
		bool ok = !sealed ? n == 0 || take(buf, n) :
			n == 0 ? reader.finish() : reader.feed(buf, n);
		if (!ok || !taken) {
			got = Bytes::failed;
			break;
		}
		if (n == 0)
			break;
	}
	close(fd);
	if (sealed && taken && reader.kind() != AgeReadError::none) {
		std::string msg = "rawlog-ext-view: " + path + ": ";
		if (reader.kind() != AgeReadError::no_identity)
			msg += "byte " + std::to_string(reader.error_offset()) +
				": ";
		msg += reader.error();
		if (reader.kind() == AgeReadError::truncated) {
			sealed_notes.push_back(msg);
			return Bytes::truncated;
		}
		fprintf(stderr, "%s\n", msg.c_str());
	}
	return got;
}

// One log file read a block at a time (decrypted when it is sealed:
// only authenticated chunks): its pieces wait in a small queue, each
// marked whether it starts a record (a new stamp or direction: what a
// JSON line shows). Memory stays bounded: a read's worth of pieces.
struct Piece {
	Direction direction;
	bool has_time;
	struct timeval time;
	size_t offset, size;	// in the reader's arena
	bool starts;
};

class LogReader {
public:
	enum class State { more, waiting, ended, failed };

	// keep: pieces are queued (else only checked); notes: a sealed
	// file's truncation note is kept for after the output; follow: at
	// the end of the file, wait while its writer holds it (flock).
	LogReader(const std::string &path, size_t index,
		  const AgeIdentities &ids, bool keep, bool notes, bool follow)
		: path(path), index(index), sealed_(ends_with(path, ".age")),
		  ids_(ids), keep_(keep), notes_(notes), follow_(follow),
		  age_(ids, [this](const unsigned char *p, size_t n) {
			if (taken_)
				taken_ = parser_.feed((const char *)p, n);
		  }),
		  parser_(ends_with(unsealed(path), ".log"),
			  ends_with(unsealed(path), ".out") ? Direction::out :
			  Direction::in,
			  [this](const LogPiece &piece) { take(piece); }) {}
	~LogReader()
	{
		if (fd_ != -1)
			close(fd_);
	}
	LogReader(const LogReader &) = delete;
	LogReader &operator=(const LogReader &) = delete;

	// false: a message is printed. kept: the file as an earlier pass
	// opened it (this reader takes it over, read from its start), so a
	// file replaced between the passes is not read as another; -1: open
	// path. Only a regular file: a FIFO would block open() (so
	// O_NONBLOCK, cleared after), a device could be read forever.
	bool open(int kept = -1)
	{
		if (sealed_ && ids_.size() == 0) {
			fprintf(stderr, "rawlog-ext-view: %s: sealed: give "
				"--identity\n", path.c_str());
			if (kept != -1)
				close(kept);
			return false;
		}
		if (kept != -1) {
			fd_ = kept;
			if (lseek(fd_, 0, SEEK_SET) == -1) {
				fprintf(stderr, "rawlog-ext-view: %s: %s\n",
					path.c_str(), strerror(errno));
				return false;
			}
			clock_gettime(CLOCK_MONOTONIC, &opened_);
			return true;
		}
		fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (fd_ == -1) {
			fprintf(stderr, "rawlog-ext-view: %s: %s\n", path.c_str(),
				strerror(errno));
			return false;
		}
		struct stat st;
		if (fstat(fd_, &st) != 0) {
			fprintf(stderr, "rawlog-ext-view: %s: %s\n", path.c_str(),
				strerror(errno));
			return false;
		}
		if (!S_ISREG(st.st_mode)) {
			fprintf(stderr, "rawlog-ext-view: %s: not a regular "
				"file\n", path.c_str());
			return false;
		}
		int fl = fcntl(fd_, F_GETFL);
		if (fl == -1 || fcntl(fd_, F_SETFL, fl & ~O_NONBLOCK) == -1) {
			fprintf(stderr, "rawlog-ext-view: %s: %s\n", path.c_str(),
				strerror(errno));
			return false;
		}
		clock_gettime(CLOCK_MONOTONIC, &opened_);
		return true;
	}

	// Another descriptor of the open file, for a later pass; -1 if not.
	int dup_fd() const
	{
		return fd_ == -1 ? -1 : fcntl(fd_, F_DUPFD_CLOEXEC, 0);
	}

	// One read: more (perhaps pieces), waiting (follow: nothing new
	// yet), ended (the file is read; pieces may still wait), failed
	// (a message printed).
	State read_more()
	{
		if (state_ == State::ended || state_ == State::failed)
			return state_;
		static char buf[65536];
		// A file that grew since it was checked: only what was checked.
		const size_t want = limit_ - read_bytes_ < sizeof(buf) ?
			(size_t)(limit_ - read_bytes_) : sizeof(buf);
		ssize_t n = want == 0 ? 0 : read(fd_, buf, want);
		if (n < 0) {
			fprintf(stderr, "rawlog-ext-view: %s: %s\n",
				path.c_str(), strerror(errno));
			return end(Bytes::failed);
		}
		if (n == 0 && shrunk())
			return end(Bytes::failed);
		if (n == 0) {
			if (follow_ && !closed_seen_) {
				if (live()) {
					// Nothing more for now: a line end
					// held back for a marker is data
					// (LogParser::release_held()). A
					// sealed file's pieces come in whole
					// chunks: left as they are.
					if (!sealed_)
						parser_.release_held();
					return State::waiting;
				}
				// Unlocked: what it holds now is all; one more
				// read to its end, then done.
				closed_seen_ = true;
				return State::more;
			}
			bool ok = !sealed_ || age_.finish();
			return end(ok && taken_ ? Bytes::all : Bytes::failed);
		}
		read_bytes_ += n;
		bool ok = !sealed_ ? parser_.feed(buf, n) : age_.feed(buf, n);
		if (!ok || !taken_)
			return end(Bytes::failed);
		return State::more;
	}

	// Reads until a piece waits or the file is done; false on bad input.
	bool fill()
	{
		while (!has_piece()) {
			State st = read_more();
			if (st == State::failed)
				return false;
			if (st == State::ended)
				break;
		}
		return true;
	}

	bool ended() const { return state_ == State::ended; }
	uint64_t bytes_read() const { return read_bytes_; }
	void limit(uint64_t bytes) { limit_ = bytes; }
	bool marker() const { return marker_; }	// the max-size marker seen
	bool has_piece() const { return next_ < pieces_.size(); }
	const Piece &head() const { return pieces_[next_]; }
	const char *data(const Piece &p) const { return arena_.data() + p.offset; }
	void pop()
	{
		if (++next_ == pieces_.size()) {
			pieces_.clear();
			arena_.clear();
			next_ = 0;
		}
	}

	const std::string path;
	const size_t index;

private:
	void take(const LogPiece &piece)
	{
		// Pieces of one stamp and direction form one record.
		const bool starts = !any_ || last_dir_ != piece.direction ||
			last_has_time_ != piece.has_time ||
			(piece.has_time &&
			 (last_time_.tv_sec != piece.time.tv_sec ||
			  last_time_.tv_usec != piece.time.tv_usec));
		any_ = true;
		last_dir_ = piece.direction;
		last_has_time_ = piece.has_time;
		last_time_ = piece.time;
		if (!keep_)
			return;
		pieces_.push_back({ piece.direction, piece.has_time, piece.time,
				    arena_.size(), piece.size, starts });
		arena_.append(piece.data, piece.size);
	}

	// At the end of what can be read: whether the file lost bytes from
	// outside (truncated while followed, or since the first pass checked
	// it) instead of being read whole; a message is printed.
	bool shrunk()
	{
		struct stat st;
		uint64_t size = read_bytes_, had = read_bytes_;
		if (follow_) {
			if (fstat(fd_, &st) != 0)
				return false;
			size = (uint64_t)st.st_size;
		} else if (limit_ != UINT64_MAX) {
			had = limit_;	// what the first pass checked
		}
		if (size >= had)
			return false;
		fprintf(stderr, "rawlog-ext-view: %s: truncated from outside "
			"at byte %llu: %llu bytes %s\n", path.c_str(),
			(unsigned long long)size, (unsigned long long)had,
			follow_ ? "had been read" : "had been checked");
		return true;
	}

	// A writer (the module) holds its file locked until it closes it; a
	// file still empty just after it was created is given a moment.
	bool live()
	{
		if (flock(fd_, LOCK_SH | LOCK_NB) != 0)
			return errno == EWOULDBLOCK || errno == EINTR;
		(void)flock(fd_, LOCK_UN);
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		const double waited = (now.tv_sec - opened_.tv_sec) +
			(now.tv_nsec - opened_.tv_nsec) / 1e9;
		return read_bytes_ == 0 && waited < 1.0;
	}

	State end(Bytes got)
	{
		close(fd_);
		fd_ = -1;
		if (sealed_ && taken_ && age_.kind() != AgeReadError::none) {
			std::string msg = "rawlog-ext-view: " + path + ": ";
			if (age_.kind() != AgeReadError::no_identity)
				msg += "byte " + std::to_string(age_.error_offset()) +
					": ";
			msg += age_.error();
			if (age_.kind() == AgeReadError::truncated) {
				if (notes_)
					sealed_notes.push_back(msg);
				got = Bytes::truncated;
			} else {
				fprintf(stderr, "%s\n", msg.c_str());
			}
		}
		// Truncated: what the sealed file holds is shown, its
		// unfinished last record (if any) is not an error of its own.
		bool ok = got == Bytes::all ? parser_.finish() :
			got == Bytes::truncated;
		if (got == Bytes::truncated)
			(void)parser_.finish();
		if (!ok && !parser_.error().empty())
			fprintf(stderr, "rawlog-ext-view: %s: %sbyte %llu: %s\n",
				path.c_str(), sealed_ ? "decrypted " : "",
				(unsigned long long)parser_.error_offset(),
				parser_.error().c_str());
		marker_ = ok && parser_.truncated();
		state_ = ok ? State::ended : State::failed;
		return state_;
	}

	const bool sealed_;
	const AgeIdentities &ids_;
	const bool keep_, notes_, follow_;
	int fd_ = -1;
	State state_ = State::more;
	bool taken_ = true;
	bool marker_ = false;
	bool closed_seen_ = false;
	uint64_t read_bytes_ = 0;
	uint64_t limit_ = UINT64_MAX;
	struct timespec opened_ = { 0, 0 };
	bool any_ = false, last_has_time_ = false;
	Direction last_dir_ = Direction::in;
	struct timeval last_time_ = { 0, 0 };
	std::string arena_;
	std::vector<Piece> pieces_;
	size_t next_ = 0;
	AgeReader age_;
	LogParser parser_;
};

using Readers = std::vector<std::unique_ptr<LogReader>>;

bool piece_before(const Piece &a, const Piece &b)
{
	if (a.time.tv_sec != b.time.tv_sec)
		return a.time.tv_sec < b.time.tv_sec;
	if (a.time.tv_usec != b.time.tv_usec)
		return a.time.tv_usec < b.time.tv_usec;
	return a.direction < b.direction;
}

struct MergeOut {
	// Before the first piece: whether every record has a timestamp.
	std::function<void(bool all_timed)> start;
	std::function<void(LogReader &, const Piece &, const char *)> piece;
	std::function<void(LogReader &)> marker;	// max-size truncation
	std::function<void()> batch;			// follow: a pause
};

// The files' pieces in the order shown: by time (then input before
// output, then file order), the k-way merge of the files' own orders;
// without timestamps (or a transcript alone: it is in order already,
// a clock step must not reorder it) one file after the other. Markers
// go last. Only each file's next read is held. false on bad input.
bool merge(Readers &rs, bool merging, const MergeOut &out)
{
	for (auto &r : rs)
		if (!r->fill())
			return false;
	// A file's stamps start with its first record or never come.
	bool all_timed = true;
	for (auto &r : rs)
		if (r->has_piece() && !r->head().has_time)
			all_timed = false;
	out.start(all_timed);
	if (!(all_timed && merging)) {
		for (auto &r : rs) {
			for (;;) {
				while (r->has_piece()) {
					out.piece(*r, r->head(), r->data(r->head()));
					r->pop();
				}
				if (r->ended())
					break;
				if (!r->fill())
					return false;
			}
			if (r->marker())
				out.marker(*r);
		}
		return true;
	}
	for (;;) {
		LogReader *best = nullptr;
		for (auto &r : rs)
			if (r->has_piece() &&
			    (best == nullptr || piece_before(r->head(), best->head())))
				best = r.get();
		if (best == nullptr)
			break;
		// Its record (one stamp and direction) whole.
		do {
			out.piece(*best, best->head(), best->data(best->head()));
			best->pop();
			if (!best->fill())
				return false;
		} while (best->has_piece() && !best->head().starts);
	}
	for (auto &r : rs)
		if (r->marker())
			out.marker(*r);
	return true;
}

// --follow: what the files hold, then what they get while their writer
// has them open, in the order it comes (by time where the files have
// it); done once every file is closed by its writer and read. Each poll
// merges as far as every file has come: a piece is shown only once each
// other file still being read has its next piece known, or is at its
// end for now (idle) or done. Catching up on what is there interleaves
// by time as a plain view does; memory stays a read per file.
bool follow(Readers &rs, const MergeOut &out)
{
	out.start(true);
	std::vector<bool> marked(rs.size(), false);
	for (;;) {
		bool progress = false;
		std::vector<bool> idle(rs.size(), false);
		for (;;) {
			for (auto &r : rs) {
				while (!r->has_piece() && !idle[r->index] &&
				       !r->ended()) {
					LogReader::State st = r->read_more();
					if (st == LogReader::State::failed)
						return false;
					if (st == LogReader::State::more)
						progress = true;
					if (st == LogReader::State::waiting)
						idle[r->index] = true;
				}
			}
			LogReader *best = nullptr;
			for (auto &r : rs)
				if (r->has_piece() &&
				    (best == nullptr ||
				     (r->head().has_time && best->head().has_time &&
				      piece_before(r->head(), best->head()))))
					best = r.get();
			if (best == nullptr)
				break;
			out.piece(*best, best->head(), best->data(best->head()));
			best->pop();
		}
		bool all_ended = true;
		for (auto &r : rs) {
			if (r->ended() && r->marker() && !marked[r->index]) {
				marked[r->index] = true;
				out.marker(*r);
			}
			if (!r->ended())
				all_ended = false;
		}
		if (all_ended)
			return true;
		out.batch();
		if (!progress)
			usleep(150 * 1000);
	}
}

// After the output: the sealed files that lack their final chunk; 1 if
// any (a truncated file is bad input, as a truncated plain log).
int sealed_status()
{
	for (const std::string &note : sealed_notes)
		fprintf(stderr, "%s\n", note.c_str());
	return sealed_notes.empty() ? 0 : 1;
}

std::string base64(const std::string &in)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	std::string out;
	size_t i = 0;
	for (; i + 2 < in.size(); i += 3) {
		unsigned v = (unsigned char)in[i] << 16 |
			(unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
		out += tab[v >> 18]; out += tab[(v >> 12) & 63];
		out += tab[(v >> 6) & 63]; out += tab[v & 63];
	}
	if (i + 1 == in.size()) {
		unsigned v = (unsigned char)in[i] << 16;
		out += tab[v >> 18]; out += tab[(v >> 12) & 63]; out += "==";
	} else if (i + 2 == in.size()) {
		unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8;
		out += tab[v >> 18]; out += tab[(v >> 12) & 63];
		out += tab[(v >> 6) & 63]; out += '=';
	}
	return out;
}

std::string json_string(const std::string &s)
{
	std::string out = "\"";
	for (unsigned char c : s) {
		if (c == '"' || c == '\\') {
			out += '\\';
			out += (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			char e[8];
			snprintf(e, sizeof(e), "\\u%04x", c);
			out += e;
		} else {
			out += (char)c;
		}
	}
	return out + "\"";
}

// --- Trees of logs: `list` and --session (issue #17 items 7 and 2) ---

const int max_depth = 64;

// Adds the log files below the open directory fd (path: its name for
// messages). Never follows a symlink: directories are opened with
// O_NOFOLLOW relative to their parent, files are stat'ed with
// AT_SYMLINK_NOFOLLOW and must be regular files. false if some part
// could not be read (a message printed; the rest is still walked).
bool walk(int fd, const std::string &path, const std::string &dir_name,
	  int depth, std::vector<LogFile> &out)
{
	DIR *d = fdopendir(fd);
	if (d == nullptr) {
		fprintf(stderr, "rawlog-ext-view: %s: %s\n", path.c_str(),
			strerror(errno));
		close(fd);
		return false;
	}
	bool ok = true;
	std::vector<std::string> subdirs;
	for (;;) {
		errno = 0;
		struct dirent *e = readdir(d);
		if (e == nullptr) {
			if (errno != 0) {
				fprintf(stderr, "rawlog-ext-view: %s: %s\n",
					path.c_str(), strerror(errno));
				ok = false;
			}
			break;
		}
		const std::string name = e->d_name;
		if (name == "." || name == "..")
			continue;
		unsigned char type = e->d_type;
		if (type == DT_DIR) {
			subdirs.push_back(name);
			continue;
		}
		if (type != DT_REG && type != DT_UNKNOWN)
			continue;
		LogFile f;
		if (!parse_log_name(name, f.name)) {
			if (type == DT_UNKNOWN)
				subdirs.push_back(name);	// perhaps one
			continue;
		}
		struct stat st;
		if (fstatat(dirfd(d), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno != ENOENT) {
				fprintf(stderr, "rawlog-ext-view: %s/%s: %s\n",
					path.c_str(), name.c_str(), strerror(errno));
				ok = false;
			}
			continue;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		f.path = path + "/" + name;
		f.dir_name = dir_name;
		f.size = (uint64_t)st.st_size;
		f.mtime = st.st_mtime;
		out.push_back(std::move(f));
	}
	std::sort(subdirs.begin(), subdirs.end());
	for (const std::string &name : subdirs) {
		const std::string sub = path + "/" + name;
		if (depth >= max_depth) {
			fprintf(stderr, "rawlog-ext-view: %s: more than %d "
				"directories deep: not read\n", sub.c_str(),
				max_depth);
			ok = false;
			continue;
		}
		int sfd = openat(dirfd(d), name.c_str(), O_RDONLY | O_DIRECTORY |
				 O_NOFOLLOW | O_CLOEXEC);
		if (sfd == -1) {
			// ELOOP/ENOTDIR: a symlink or no directory, skipped.
			if (errno != ELOOP && errno != ENOTDIR && errno != ENOENT) {
				fprintf(stderr, "rawlog-ext-view: %s: %s\n",
					sub.c_str(), strerror(errno));
				ok = false;
			}
			continue;
		}
		if (!walk(sfd, sub, name, depth + 1, out))
			ok = false;
	}
	closedir(d);
	return ok;
}

bool walk_tree(const std::string &top, std::vector<LogFile> &out)
{
	// The top is the user's own choice: a symlink to it is followed.
	int fd = open(top.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1) {
		fprintf(stderr, "rawlog-ext-view: %s: %s\n", top.c_str(),
			strerror(errno));
		return false;
	}
	std::string path = top;
	while (path.size() > 1 && path.back() == '/')
		path.pop_back();
	return walk(fd, path, "", 0, out);
}

// What a file's contents say, for list's columns and --session's header.
struct Scan {
	bool read = false;	// false: not read (bad, or sealed without --identity)
	bool sealed_unread = false;
	bool has_time = false;
	struct timeval first = { 0, 0 }, last = { 0, 0 };
	uint64_t client_bytes = 0, server_bytes = 0;
	uint64_t commands = 0, failures = 0;

	void time(const struct timeval &tv)
	{
		if (!has_time || timercmp(&tv, &first, <))
			first = tv;
		if (!has_time || timercmp(&tv, &last, >))
			last = tv;
		has_time = true;
	}
	void add(const Scan &o)
	{
		read = read || o.read;
		sealed_unread = sealed_unread || o.sealed_unread;
		if (o.has_time) {
			time(o.first);
			time(o.last);
		}
		client_bytes += o.client_bytes;
		server_bytes += o.server_bytes;
		commands += o.commands;
		failures += o.failures;
	}
};

// Counts what the tracker hands out: client lines (commands; not body
// lines, not the rest of a line after a literal) and server failures.
void count_item(const ViewItem &item, Scan &scan)
{
	if (item.kind != ViewItem::Kind::line || item.body)
		return;
	if (item.client) {
		if (item.newline && !item.after_literal)
			scan.commands++;
	} else if (item.failure && item.newline) {
		scan.failures++;
	}
}

// Reads one file for its Scan; false on bad input (message printed).
bool scan_file(const std::string &path, const AgeIdentities &ids, Scan &scan)
{
	scan = Scan();
	if (ends_with(path, ".age") && ids.size() == 0) {
		scan.sealed_unread = true;
		return true;
	}
	const std::string base = unsealed(path);
	bool client_out = false;
	const ViewProtocol protocol = view_protocol_from_name(path, &client_out);
	const Direction client_dir = client_out ? Direction::out : Direction::in;
	ViewTracker tracker(protocol, client_dir,
			    [&](const ViewItem &item) { count_item(item, scan); },
			    false);
	LogParser parser(ends_with(base, ".log"), ends_with(base, ".out") ?
			 Direction::out : Direction::in,
			 [&](const LogPiece &piece) {
		if (piece.has_time)
			scan.time(piece.time);
		(piece.direction == client_dir ? scan.client_bytes :
		 scan.server_bytes) += piece.size;
		tracker.feed(piece.direction, piece.has_time, piece.time,
			     piece.data, piece.size);
	});
	Bytes got = file_bytes(path, ids, [&](const char *p, size_t n) {
		return parser.feed(p, n);
	});
	bool ok = got == Bytes::all ? parser.finish() : got == Bytes::truncated;
	if (got == Bytes::truncated)
		(void)parser.finish();
	tracker.flush();
	if (!ok && !parser.error().empty())
		fprintf(stderr, "rawlog-ext-view: %s: byte %llu: %s\n",
			path.c_str(), (unsigned long long)parser.error_offset(),
			parser.error().c_str());
	scan.read = ok;
	return ok;
}

// A user name as a terminal may show it: its controls and non-ASCII
// bytes as JSON escapes.
std::string printable(const std::string &s)
{
	std::string j = json_string(s);
	return j.substr(1, j.size() - 2);
}

std::string join(const std::vector<std::string> &v, const char *sep)
{
	std::string out;
	for (const std::string &s : v)
		out += (out.empty() ? "" : sep) + s;
	return out;
}

std::string json_list(const std::vector<std::string> &v)
{
	std::string out = "[";
	for (const std::string &s : v)
		out += (out.size() > 1 ? ", " : "") + json_string(s);
	return out + "]";
}

double seconds(const struct timeval &tv)
{
	return tv.tv_sec + tv.tv_usec / 1e6;
}

const char list_usage_text[] =
	"usage: rawlog-ext-view list [--user U] [--session S] [--ip A] "
	"[--since T] [--until T] [--failed] [--json] [--identity KEYFILE]... "
	"DIR...\n"
	"  T: YYYY-MM-DD[THH:MM[:SS]] (UTC)\n";

int list_main(int argc, char **argv)
{
	std::string user, session, ip;
	bool has_user = false, has_session = false, has_ip = false;
	time_t since = 0, until = 0;
	bool has_since = false, has_until = false, failed = false, json = false;
	AgeIdentities ids;
	std::vector<std::string> dirs;
	auto usage = [] {
		fprintf(stderr, "%s", list_usage_text);
		return 2;
	};
	for (int i = 2; i < argc; i++) {
		std::string a = argv[i];
		auto value = [&](std::string &v) {
			if (i + 1 == argc)
				return false;
			v = argv[++i];
			return true;
		};
		std::string v;
		if (a == "--user") {
			if (!value(user))
				return usage();
			has_user = true;
		} else if (a == "--session") {
			if (!value(v))
				return usage();
			session = sanitize_name_field(v);
			has_session = true;
		} else if (a == "--ip") {
			if (!value(v))
				return usage();
			ip = sanitize_name_field(v);
			has_ip = true;
		} else if (a == "--since" || a == "--until") {
			time_t &t = a == "--since" ? since : until;
			if (!value(v) || !parse_utc_time(v, t)) {
				fprintf(stderr, "rawlog-ext-view: %s: give "
					"YYYY-MM-DD[THH:MM[:SS]] (UTC)\n",
					a.c_str());
				return 2;
			}
			(a == "--since" ? has_since : has_until) = true;
		} else if (a == "--failed") {
			failed = true;
		} else if (a == "--json") {
			json = true;
		} else if (a == "--identity") {
			std::string err;
			if (!value(v))
				return usage();
			if (!ids.add_file(v, err)) {
				fprintf(stderr, "rawlog-ext-view: %s\n", err.c_str());
				return 1;
			}
		} else if (a == "--help" || a == "-h") {
			printf("%s", list_usage_text);
			return 0;
		} else if (a.size() > 1 && a[0] == '-') {
			return usage();
		} else {
			dirs.push_back(a);
		}
	}
	if (dirs.empty())
		return usage();

	int status = 0;
	std::vector<LogFile> files;
	for (const std::string &d : dirs)
		if (!walk_tree(d, files))
			status = 1;
	std::vector<SessionEntry> sessions = group_sessions(std::move(files));
	// Contents only when asked for: the result column (--failed, --json).
	const bool contents = failed || json;
	size_t unread = 0;
	for (const SessionEntry &s : sessions) {
		if ((has_user && s.user != user) || (has_session && s.id != session) ||
		    (has_ip && std::find(s.ips.begin(), s.ips.end(), ip) ==
		     s.ips.end()) ||
		    (has_since && s.start < since) || (has_until && s.start > until))
			continue;
		Scan scan;
		bool all_read = true;
		if (contents) {
			for (const LogFile &f : s.files) {
				Scan one;
				if (!scan_file(f.path, ids, one))
					status = 1;
				if (!one.read)
					all_read = false;
				scan.add(one);
			}
		}
		// A failure seen is one, even if a sealed file is not read.
		const char *result = !contents ? nullptr :
			scan.failures > 0 ? "failed" : all_read ? "ok" : nullptr;
		if (contents && result == nullptr && scan.sealed_unread)
			unread++;
		if (failed && (result == nullptr || strcmp(result, "failed") != 0))
			continue;
		// Names and mtimes; first and last timestamps when read.
		double duration = (double)(s.last_mtime > s.start ?
					   s.last_mtime - s.start : 0);
		if (scan.has_time) {
			duration = seconds(scan.last) - seconds(scan.first);
		}
		if (json) {
			std::vector<std::string> paths;
			for (const LogFile &f : s.files)
				paths.push_back(f.path);
			printf("{\"start\": %s, \"start_time\": %.6f, \"user\": %s, "
			       "\"services\": %s, \"session\": %s, "
			       "\"duration\": %.6f, \"bytes\": %llu, "
			       "\"result\": %s, \"ips\": %s, \"files\": %s}\n",
			       json_string(utc_iso(s.start)).c_str(), (double)s.start,
			       s.user.empty() ? "null" : json_string(s.user).c_str(),
			       json_list(s.services).c_str(),
			       json_string(s.id).c_str(), duration,
			       (unsigned long long)s.bytes,
			       result == nullptr ? "null" :
			       json_string(result).c_str(),
			       json_list(s.ips).c_str(), json_list(paths).c_str());
		} else {
			// User and session: names' characters, printable.
			printf("%s  %-12s  %-20s  %-24s  %7.0fs  %10llu  %s\n",
			       utc_iso(s.start).c_str(),
			       s.user.empty() ? "-" : printable(s.user).c_str(),
			       join(s.services, ",").c_str(), s.id.c_str(),
			       duration, (unsigned long long)s.bytes,
			       result == nullptr ? "-" : result);
		}
	}
	if (unread > 0)
		fprintf(stderr, "rawlog-ext-view: %zu session(s) with sealed "
			"files not read: give --identity\n", unread);
	// Exits without freeing the tree's files one by one (a sixth of the
	// run for 100,000 sessions): the process ends anyway.
	if (fflush(stdout) != 0)
		_exit(1);
	_exit(status);
}

const char usage_text[] =
	"usage: rawlog-ext-view [--json | --html OUT] [--bodies[=headers]] "
	"[--no-pager] [--identity KEYFILE]... FILE...\n"
	"       rawlog-ext-view --follow [--json] [--bodies[=headers]] "
	"[--identity KEYFILE]... FILE...\n"
	"       rawlog-ext-view [options] --session ID DIR...\n"
	"       rawlog-ext-view [options] --session FILE [DIR...]\n"
	"       rawlog-ext-view list [--help] [filters] DIR...\n";

int usage()
{
	fprintf(stderr, "%s", usage_text);
	return 2;
}

} // namespace

int main(int argc, char **argv)
{
	bool json = false, pager = true, follow_mode = false;
	BodiesMode bodies = BodiesMode::fold;
	std::string html;
	std::vector<std::string> files;
	AgeIdentities ids;
	std::string session_arg;
	bool session_mode = false;
	if (argc > 1 && strcmp(argv[1], "list") == 0)
		return list_main(argc, argv);
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		if (a == "--json")
			json = true;
		else if (a == "--no-pager")
			pager = false;
		else if (a == "--follow" || a == "-f")
			follow_mode = true;
		else if (a == "--identity" || a.compare(0, 11, "--identity=") == 0) {
			// age -i's identity files, for sealed (.age) logs.
			if (a == "--identity" && i + 1 == argc)
				return usage();
			std::string err;
			if (!ids.add_file(a == "--identity" ? argv[++i] :
					  a.substr(11), err)) {
				fprintf(stderr, "rawlog-ext-view: %s\n", err.c_str());
				return 1;
			}
		} else if (a == "--bodies" || a == "--bodies=full")
			bodies = BodiesMode::full;
		else if (a == "--bodies=headers")
			bodies = BodiesMode::headers;
		else if (a == "--session" && i + 1 < argc) {
			session_arg = argv[++i];
			session_mode = true;
		} else if (a == "--html" && i + 1 < argc)
			html = argv[++i];
		else if (a.compare(0, 7, "--html=") == 0 && a.size() > 7)
			html = a.substr(7);
		else if (a == "--help" || a == "-h") {
			printf("%s", usage_text);
			return 0;
		} else if (a.size() > 1 && a[0] == '-')
			return usage();
		else
			files.push_back(a);
	}
	if ((files.empty() && !session_mode) || (json && !html.empty()))
		return usage();
	if (follow_mode && (!html.empty() || session_mode)) {
		fprintf(stderr, "rawlog-ext-view: --follow: not with %s\n",
			session_mode ? "--session" : "--html");
		return usage();
	}
	if (follow_mode)
		pager = false;	// as tail -f

	// --session ID DIR...: every file of that session in the trees;
	// --session FILE [DIR...]: the session of that file (by default in
	// the file's own directory).
	std::vector<LogFile> story;
	std::string session_id;
	if (session_mode) {
		LogName given;
		const std::string given_base =
			session_arg.substr(session_arg.rfind('/') + 1);
		if (parse_log_name(given_base, given) && file_exists(session_arg)) {
			session_id = given.parts.session;
			if (files.empty())
				files.push_back(session_arg.find('/') ==
						std::string::npos ? "." :
						session_arg.substr(0,
							session_arg.rfind('/') + 1));
		} else {
			session_id = sanitize_name_field(session_arg);
		}
		if (files.empty())
			return usage();
		std::vector<LogFile> found;
		for (const std::string &d : files)
			if (!walk_tree(d, found))
				return 1;
		for (LogFile &f : found)
			if (f.name.parts.session == session_id)
				story.push_back(std::move(f));
		std::sort(story.begin(), story.end(), file_before);
		if (story.empty()) {
			fprintf(stderr, "rawlog-ext-view: session %s: no log "
				"file in %s\n", session_id.c_str(),
				join(files, ", ").c_str());
			return 1;
		}
		files.clear();
		for (const LogFile &f : story)
			files.push_back(f.path);
	}

	// Either file of a split pair brings the other (a sealed pair, the
	// sealed other).
	std::vector<std::string> logs;
	for (const std::string &f : files) {
		std::vector<std::string> add;
		const std::string base = unsealed(f), seal = f.substr(base.size());
		if (ends_with(base, ".in") || ends_with(base, ".out")) {
			std::string stem = base.substr(0, base.rfind('.'));
			for (const char *ext : { ".in", ".out" })
				if (stem + ext + seal == f ||
				    file_exists(stem + ext + seal))
					add.push_back(stem + ext + seal);
		} else if (ends_with(base, ".log")) {
			add.push_back(f);
		} else {
			fprintf(stderr, "rawlog-ext-view: %s: not a rawlog_ext log "
				"(.in, .out or .log, sealed: .age after it)\n",
				f.c_str());
			return 1;
		}
		for (const std::string &l : add)
			if (std::find(logs.begin(), logs.end(), l) == logs.end())
				logs.push_back(l);
	}

	// A transcript alone is in order already (its records are written
	// as things happen; a clock step must not reorder it).
	const bool merging = logs.size() > 1 ||
		(logs.size() == 1 && !ends_with(unsealed(logs[0]), ".log"));
	// The files are read whole first: bad input is refused before any
	// output. Then read again as they are shown (a --session header
	// is counted by a pass of its own): memory does not grow with them.
	std::vector<uint64_t> checked(logs.size(), UINT64_MAX);
	// The files as this first pass opened them, for the passes after it.
	std::vector<int> kept(logs.size(), -1);
	if (!follow_mode) {
		for (size_t i = 0; i < logs.size(); i++) {
			LogReader r(logs[i], i, ids, false, true, false);
			if (!r.open())
				return 1;
			kept[i] = r.dup_fd();
			if (kept[i] == -1) {
				fprintf(stderr, "rawlog-ext-view: %s: %s\n",
					logs[i].c_str(), strerror(errno));
				return 1;
			}
			LogReader::State st;
			while ((st = r.read_more()) != LogReader::State::ended)
				if (st == LogReader::State::failed)
					return 1;
			checked[i] = r.bytes_read();
		}
	}
	// last: the pass that shows them takes the kept files over.
	auto open_readers = [&](Readers &rs, bool last) {
		rs.clear();
		for (size_t i = 0; i < logs.size(); i++) {
			rs.push_back(std::make_unique<LogReader>(
				logs[i], i, ids, true, follow_mode, follow_mode));
			int fd = kept[i];
			if (fd != -1 && !last) {
				fd = fcntl(kept[i], F_DUPFD_CLOEXEC, 0);
				if (fd == -1) {
					fprintf(stderr, "rawlog-ext-view: %s: "
						"%s\n", logs[i].c_str(),
						strerror(errno));
					return false;
				}
			} else {
				kept[i] = -1;
			}
			if (!rs.back()->open(fd))
				return false;
			rs.back()->limit(checked[i]);
		}
		return true;
	};
	// A leg Dovecot opens: its ".out" is the client's (ours).
	std::vector<bool> client_out_of(logs.size(), false);
	for (size_t i = 0; i < logs.size(); i++) {
		bool client_out = false;
		(void)view_protocol_from_name(logs[i], &client_out);
		client_out_of[i] = client_out;
	}

	FILE *out = stdout;
	const bool tty = isatty(STDOUT_FILENO);
	std::unique_ptr<Renderer> renderer;
	if (!html.empty() && html != "-") {
		out = fopen(html.c_str(), "w");
		if (out == nullptr) {
			fprintf(stderr, "rawlog-ext-view: %s: %s\n", html.c_str(),
				strerror(errno));
			return 1;
		}
	}
	if (!html.empty()) {
		std::string name = logs[0].substr(logs[0].rfind('/') + 1);
		renderer = html_renderer(out, bodies, name);
	} else if (!json) {
		if (tty && pager) {
			setenv("LESS", getenv("LESS") != nullptr ?
			       getenv("LESS") : "FRX", 1);
			const char *p = getenv("PAGER");
			FILE *pipe = popen(p != nullptr && *p != '\0' ? p :
					   "less -R", "w");
			if (pipe != nullptr)
				out = pipe;
		}
		renderer = text_renderer(out, bodies, tty);
	}
	// One conversation per file pair (stem) of a story, one for all the
	// files given otherwise. Its protocol from its first file's name
	// (the tracker guesses it from the first lines if the name does not
	// say).
	std::vector<size_t> conv_of(logs.size(), 0);
	std::vector<std::string> conv_stems;
	for (size_t i = 0; i < logs.size() && session_mode; i++) {
		const std::string &stem = story[i].name.stem;
		auto it = std::find(conv_stems.begin(), conv_stems.end(), stem);
		conv_of[i] = it - conv_stems.begin();
		if (it == conv_stems.end())
			conv_stems.push_back(stem);
	}
	const size_t convs = std::max<size_t>(conv_stems.size(), 1);
	std::vector<size_t> conv_first(convs, logs.size());
	for (size_t i = logs.size(); i-- > 0;)
		conv_first[conv_of[i]] = i;
	size_t shown = convs;
	Scan total;
	std::vector<std::unique_ptr<ViewTracker>> trackers;
	auto make_trackers = [&](bool counting, bool body_lines) {
		trackers.clear();
		for (size_t c = 0; c < convs; c++) {
			bool client_out = false;
			const ViewProtocol protocol = view_protocol_from_name(
				logs[conv_first[c]], &client_out);
			trackers.push_back(std::make_unique<ViewTracker>(
				protocol, client_out ? Direction::out : Direction::in,
				[&, c, counting](const ViewItem &item) {
				if (counting) {
					count_item(item, total);
					return;
				}
				// A story: each leg's lines under its label.
				if (session_mode && c != shown) {
					shown = c;
					const LogFile &f = story[conv_first[c]];
					renderer->notice("[" + leg_of(f.name.parts.service) +
							 "] " + f.name.stem);
				}
				renderer->item(item);
			}, body_lines));
		}
	};
	if (session_mode && renderer) {
		// The header: counted by a first pass over what was read.
		make_trackers(true, false);
		Readers rs;
		MergeOut counting;
		counting.start = [](bool) {};
		counting.piece = [&](LogReader &r, const Piece &p, const char *d) {
			if (p.has_time)
				total.time(p.time);
			((p.direction == Direction::out) == client_out_of[r.index] ?
			 total.client_bytes : total.server_bytes) += p.size;
			trackers[conv_of[r.index]]->feed(p.direction, p.has_time,
							 p.time, d, p.size);
		};
		counting.marker = [](LogReader &) {};
		counting.batch = [] {};
		if (!open_readers(rs, false) || !merge(rs, merging, counting))
			return 1;
		for (auto &t : trackers)
			t->flush();
		std::vector<std::string> services, addresses, users;
		uint64_t name_bytes = 0;
		time_t last_mtime = 0;
		for (const LogFile &f : story) {
			const std::string u = user_of(f);
			if (!u.empty() && std::find(users.begin(), users.end(), u) ==
			    users.end())
				users.push_back(u);
			if (std::find(services.begin(), services.end(),
				      f.name.parts.service) == services.end())
				services.push_back(f.name.parts.service);
			for (const std::string &a : { f.name.parts.ip, f.name.parts.peer })
				if (!a.empty() && std::find(addresses.begin(),
				    addresses.end(), a) == addresses.end())
					addresses.push_back(a);
			name_bytes += f.size;
			last_mtime = std::max(last_mtime, f.mtime);
		}
		std::string start = utc_iso(story[0].name.parts.time),
			end = utc_iso(last_mtime), duration = "-";
		if (total.has_time) {
			char b[64];
			start = utc_iso(total.first.tv_sec);
			end = utc_iso(total.last.tv_sec);
			snprintf(b, sizeof(b), "%.3f s",
				 seconds(total.last) - seconds(total.first));
			duration = b;
		}
		renderer->notice("session " + session_id + ": user " +
				 (users.empty() ? "-" : join(users, ", ")) +
				 ", service " + join(services, ", ") +
				 ", addresses " + (addresses.empty() ? "-" :
						   join(addresses, ", ")));
		renderer->notice("start " + start + ", end " + end +
				 ", duration " + duration);
		renderer->notice("bytes from the client " +
				 std::to_string(total.client_bytes) +
				 ", from the server " +
				 std::to_string(total.server_bytes) +
				 "; commands " + std::to_string(total.commands) +
				 "; failures " + std::to_string(total.failures) +
				 "; " + std::to_string(story.size()) + " files, " +
				 std::to_string(name_bytes) + " bytes");
	}
	make_trackers(false, !html.empty() || bodies != BodiesMode::fold);
	// --json: one line per record (a record longer than json_max is
	// cut into lines of its own stamp and direction).
	const size_t json_max = 1 << 20;
	struct {
		LogReader *src = nullptr;
		Direction direction = Direction::in;
		bool has_time = false;
		struct timeval time = { 0, 0 };
		std::string data;
	} rec;
	auto json_line = [&] {
		if (rec.src == nullptr)
			return;
		std::string t = "null";
		if (rec.has_time) {
			char b[40];
			snprintf(b, sizeof(b), "%lld.%06ld",
				 (long long)rec.time.tv_sec, (long)rec.time.tv_usec);
			t = b;
		}
		const std::string leg = session_mode ?
			leg_of(story[rec.src->index].name.parts.service) : "session";
		fprintf(out, "{\"time\": %s, \"from\": \"%s\", \"leg\": \"%s\", "
			"\"file\": %s, \"data_b64\": \"%s\"}\n", t.c_str(),
			(rec.direction == Direction::out) ==
			client_out_of[rec.src->index] ? "client" : "server",
			leg.c_str(), json_string(rec.src->path).c_str(),
			base64(rec.data).c_str());
		rec.src = nullptr;
		rec.data.clear();
	};
	MergeOut shown_out;
	shown_out.start = [&](bool all_timed) {
		if (renderer && !all_timed && logs.size() > 1)
			renderer->notice(session_mode ?
					 "no timestamps: the files are shown one "
					 "after the other, in the order of their "
					 "names' time" :
					 "no timestamps: the directions cannot be "
					 "interleaved; shown one after the other");
	};
	shown_out.piece = [&](LogReader &r, const Piece &p, const char *d) {
		if (renderer) {
			trackers[conv_of[r.index]]->feed(p.direction, p.has_time,
							 p.time, d, p.size);
			return;
		}
		if (rec.src != nullptr && (p.starts || rec.src != &r ||
					   rec.data.size() >= json_max))
			json_line();
		if (rec.src == nullptr) {
			rec.src = &r;
			rec.direction = p.direction;
			rec.has_time = p.has_time;
			rec.time = p.time;
		}
		rec.data.append(d, p.size);
	};
	shown_out.marker = [&](LogReader &r) {
		if (renderer) {
			trackers[conv_of[r.index]]->flush();
			renderer->truncated();
		}
	};
	shown_out.batch = [&] {
		json_line();
		fflush(out);
	};
	{
		Readers rs;
		if (!open_readers(rs, true) ||
		    !(follow_mode ? follow(rs, shown_out) :
		      merge(rs, merging, shown_out))) {
			json_line();
			fflush(out);
			return 1;
		}
		json_line();
	}
	if (renderer) {
		for (auto &t : trackers)
			t->flush();
		renderer->finish();
	}
	if (out != stdout && html.empty())
		pclose(out);
	else if (out != stdout) {
		if (fclose(out) != 0) {
			fprintf(stderr, "rawlog-ext-view: %s: %s\n", html.c_str(),
				strerror(errno));
			return 1;
		}
	} else if (fflush(stdout) != 0)
		return 1;
	return sealed_status();
}
