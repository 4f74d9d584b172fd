// Sealed log files (age v1 to the admin's X25519 recipients), through the
// seal module rawlog_ext_seal.so, loaded on the first sealed file: only
// processes that seal load libcrypto.
#ifndef RAWLOG_EXT_SEAL_HH
#define RAWLOG_EXT_SEAL_HH

#include "age.hh"

#include <string>
#include <vector>

namespace rawlog_ext {

// Loads the module (once per process; a failure is remembered too).
// Where: beside the object this code is linked into (the plugin's
// directory), else the configured RAWLOG_EXT_SEAL_MODULE path. A login
// process calls it before its chroot.
bool seal_module_load(std::string &error_r);
// Tests: load from path instead (before the first load).
void seal_module_set_path(const std::string &path);

// One file's sealing. Bytes to write to the file are appended to out.
class SealedFile {
public:
	SealedFile() = default;
	~SealedFile();
	SealedFile(const SealedFile &) = delete;
	SealedFile &operator=(const SealedFile &) = delete;

	// Loads the module if needed; out gets the header.
	bool begin(const std::vector<AgeRecipient> &recipients,
		   std::string &out, std::string &error_r);
	bool write(const void *data, size_t size, std::string &out,
		   std::string &error_r);
	// Seals the last chunk; afterwards the file is complete.
	bool finish(std::string &out, std::string &error_r);
	bool open() const { return writer_ != nullptr && !finished_; }

private:
	void *writer_ = nullptr;
	bool finished_ = false;
};

} // namespace rawlog_ext

#endif
