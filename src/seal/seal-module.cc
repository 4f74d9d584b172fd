// rawlog_ext_seal.so: the age writer behind a C entry point. A module of
// its own so that libcrypto (about 1.1 ms of loading per process, measured
// with fork+dlopen here) is loaded only by processes that seal a log.
#include "core/age.hh"
#include "core/seal-abi.h"

#include <cstdio>
#include <memory>

#include <openssl/crypto.h>
#include <openssl/rand.h>

using namespace rawlog_ext;

namespace {

// Every entry point catches everything: no exception may leave the module
// (the caller has C frames and a C++ runtime of its own).
struct Output {
	std::string bytes;
	void emit(rawlog_ext_seal_output *output, void *context)
	{
		if (!bytes.empty())
			output(context, bytes.data(), bytes.size());
		bytes.clear();
	}
};

void set_error(char *error, size_t error_size, const std::string &text)
{
	if (error_size > 0)
		snprintf(error, error_size, "%s", text.c_str());
}

int seal_prepare(char *error, size_t error_size)
{
	unsigned char byte;
	if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, nullptr) != 1 ||
	    RAND_bytes(&byte, 1) != 1) {
		set_error(error, error_size, "OpenSSL failed to initialise");
		return -1;
	}
	OPENSSL_cleanse(&byte, 1);
	return 0;
}

void *seal_begin(const unsigned char (*recipients)[32], size_t count,
		 rawlog_ext_seal_output *output, void *context, char *error,
		 size_t error_size)
{
	try {
		std::vector<AgeRecipient> keys(count);
		for (size_t i = 0; i < count; i++)
			std::copy(recipients[i], recipients[i] + 32,
				  keys[i].begin());
		// Owned until begin() succeeded: an exception in it must not
		// leak a writer holding a key.
		std::unique_ptr<AgeWriter> writer(new AgeWriter());
		Output out;
		std::string why;
		if (!writer->begin(keys, out.bytes, why)) {
			set_error(error, error_size, why);
			return nullptr;
		}
		out.emit(output, context);
		return writer.release();
	} catch (...) {
		set_error(error, error_size, "out of memory");
		return nullptr;
	}
}

// One writer call: its output passed on, its failure (or an exception)
// as the error.
template <typename Call>
int run(Call call, rawlog_ext_seal_output *output, void *context,
	char *error, size_t error_size)
{
	try {
		Output out;
		std::string why;
		bool ok = call(out.bytes, why);
		out.emit(output, context);
		if (!ok)
			set_error(error, error_size, why);
		return ok ? 0 : -1;
	} catch (...) {
		set_error(error, error_size, "out of memory");
		return -1;
	}
}

int seal_write(void *writer, const void *data, size_t size,
	       rawlog_ext_seal_output *output, void *context, char *error,
	       size_t error_size)
{
	return run([&](std::string &bytes, std::string &why) {
			return static_cast<AgeWriter *>(writer)->write(
				static_cast<const unsigned char *>(data), size,
				bytes, why);
		}, output, context, error, error_size);
}

int seal_finish(void *writer, rawlog_ext_seal_output *output, void *context,
		char *error, size_t error_size)
{
	return run([&](std::string &bytes, std::string &why) {
			return static_cast<AgeWriter *>(writer)->finish(bytes,
									why);
		}, output, context, error, error_size);
}

void seal_free(void *writer)
{
	delete static_cast<AgeWriter *>(writer);
}

const struct rawlog_ext_seal_abi abi = {
	RAWLOG_EXT_SEAL_ABI_VERSION,
	seal_prepare, seal_begin, seal_write, seal_finish, seal_free,
};

} // namespace

extern "C" __attribute__((visibility("default")))
const struct rawlog_ext_seal_abi *rawlog_ext_seal_abi_v1(void)
{
	return &abi;
}
