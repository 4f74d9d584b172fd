#include "seal.hh"
#include "seal-abi.h"

#include <cstdlib>
#include <dlfcn.h>
#include <unistd.h>
#include <vector>

#ifndef RAWLOG_EXT_SEAL_MODULE
#  define RAWLOG_EXT_SEAL_MODULE "rawlog_ext_seal.so"
#endif

namespace rawlog_ext {

namespace {

const char module_name[] = "rawlog_ext_seal.so";

const struct rawlog_ext_seal_abi *abi = nullptr;
bool load_tried = false;
std::string load_error;
std::string path_override;

// The module beside the object that holds this code, or in its parent
// directory: the mail plugin is in $(moduledir) beside it, the login
// companion in $(moduledir)/login, and both in a build tree's src/.libs.
// Nothing else decides the path: no environment variable can make a
// Dovecot process load other code.
std::vector<std::string> candidate_paths()
{
	std::vector<std::string> paths;
	Dl_info info;
	if (dladdr(reinterpret_cast<void *>(&candidate_paths), &info) != 0 &&
	    info.dli_fname != nullptr) {
		// The plugin may be loaded through a symlink (a private
		// plugin directory): its real directory is where it was
		// installed.
		char *real = realpath(info.dli_fname, nullptr);
		std::string path = real != nullptr ? real : info.dli_fname;
		free(real);
		size_t slash = path.rfind('/');
		if (slash != std::string::npos && slash > 0) {
			std::string dir = path.substr(0, slash);
			paths.push_back(dir + "/" + module_name);
			size_t up = dir.rfind('/');
			if (up != std::string::npos)
				paths.push_back(dir.substr(0, up + 1) + module_name);
		}
	}
	paths.push_back(RAWLOG_EXT_SEAL_MODULE);
	return paths;
}

// Where the module's output goes. No exception may cross the module's C
// frames (each side has its own C++ runtime): a failed append is noted.
struct Output {
	std::string &bytes;
	bool failed = false;
};

void append_output(void *context, const void *data, size_t size) noexcept
{
	Output *out = static_cast<Output *>(context);
	try {
		out->bytes.append(static_cast<const char *>(data), size);
	} catch (...) {
		out->failed = true;
	}
}

// How a call into the module went: its own error, or a failed append.
bool outcome(bool ok, const Output &output, const char *error,
	     std::string &error_r)
{
	if (!ok)
		error_r = error;
	else if (output.failed)
		error_r = "out of memory";
	return ok && !output.failed;
}

} // namespace

void seal_module_set_path(const std::string &path)
{
	path_override = path;
}

bool seal_module_load(std::string &error_r)
{
	if (!load_tried) {
		load_tried = true;
		std::string path = path_override;
		if (path.empty()) {
			for (const std::string &candidate : candidate_paths()) {
				path = candidate;
				if (access(path.c_str(), F_OK) == 0)
					break;
			}
		}
		// RTLD_LOCAL: libcrypto's symbols stay out of the process's
		// global scope; never unloaded (its atexit handlers).
		void *handle = dlopen(path.c_str(),
				      RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
		if (handle == nullptr) {
			const char *why = dlerror();
			// Remembered for the process's life: a long-lived one
			// (lmtp, a login process) needs a restart once fixed.
			load_error = "cannot load the seal module: " +
				std::string(why != nullptr ? why : path) +
				" (until this process restarts)";
		} else {
			auto entry = reinterpret_cast<rawlog_ext_seal_entry *>(
				dlsym(handle, RAWLOG_EXT_SEAL_ENTRY));
			const struct rawlog_ext_seal_abi *found =
				entry != nullptr ? entry() : nullptr;
			char error[256] = "";
			if (found == nullptr ||
			    found->version != RAWLOG_EXT_SEAL_ABI_VERSION)
				load_error = path + " is not a seal module of "
					"this version of rawlog_ext";
			else if (found->prepare(error, sizeof(error)) < 0)
				load_error = path + ": " + error;
			else
				abi = found;
		}
	}
	if (abi == nullptr)
		error_r = load_error;
	return abi != nullptr;
}

SealedFile::~SealedFile()
{
	if (writer_ != nullptr)
		abi->free(writer_);
}

bool SealedFile::begin(const std::vector<AgeRecipient> &recipients,
		       std::string &out, std::string &error_r)
{
	if (writer_ != nullptr || finished_) {
		error_r = "sealed file already begun";
		return false;
	}
	if (!seal_module_load(error_r))
		return false;
	char error[256] = "";
	const unsigned char (*keys)[32] =
		reinterpret_cast<const unsigned char (*)[32]>(
			recipients.data());
	static_assert(sizeof(AgeRecipient) == 32, "AgeRecipient is 32 bytes");
	Output output{out};
	writer_ = abi->begin(keys, recipients.size(), append_output, &output,
			     error, sizeof(error));
	return outcome(writer_ != nullptr, output, error, error_r);
}

bool SealedFile::write(const void *data, size_t size, std::string &out,
		       std::string &error_r)
{
	if (!open()) {
		error_r = "sealed file not open";
		return false;
	}
	char error[256] = "";
	Output output{out};
	return outcome(abi->write(writer_, data, size, append_output, &output,
				  error, sizeof(error)) == 0,
		       output, error, error_r);
}

bool SealedFile::finish(std::string &out, std::string &error_r)
{
	if (!open()) {
		error_r = "sealed file not open";
		return false;
	}
	finished_ = true;
	char error[256] = "";
	Output output{out};
	int ret = abi->finish(writer_, append_output, &output, error,
			      sizeof(error));
	// The key and the tail are wiped now, not at the session's end.
	abi->free(writer_);
	writer_ = nullptr;
	return outcome(ret == 0, output, error, error_r);
}

} // namespace rawlog_ext
