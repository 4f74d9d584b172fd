#ifndef RAWLOG_EXT_FUZZ_DRIVER_HH
#define RAWLOG_EXT_FUZZ_DRIVER_HH
// Included by a fuzz target built with -DRAWLOG_EXT_FUZZ_DRIVER, after it
// defined fuzz_driver_tokens[] (inserted by mutations), FUZZ_DRIVER_NAME
// and, if it has LLVMFuzzerInitialize(), FUZZ_DRIVER_INITIALIZE.
// Without libFuzzer: the inputs (files, or directories of files), then
// mutations of them from a fixed seed until -max_total_time=N seconds.
#include <dirent.h>
#include <sys/stat.h>
#include <ctime>


namespace {

void read_inputs(const std::string &path, std::vector<std::string> &inputs)
{
	struct stat st;
	if (stat(path.c_str(), &st) < 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		DIR *dir = opendir(path.c_str());
		if (dir == nullptr)
			return;
		while (struct dirent *d = readdir(dir)) {
			if (d->d_name[0] != '.')
				read_inputs(path + "/" + d->d_name, inputs);
		}
		closedir(dir);
		return;
	}
	FILE *f = fopen(path.c_str(), "rb");
	if (f == nullptr)
		return;
	std::string data;
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		data.append(buf, n);
	fclose(f);
	inputs.push_back(data);
}

uint64_t next_random(uint64_t &state)
{
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return state;
}

void run_input(const std::string &input)
{
	LLVMFuzzerTestOneInput((const uint8_t *)input.data(), input.size());
}

} // namespace

int main(int argc, char **argv)
{
#ifdef FUZZ_DRIVER_INITIALIZE
	// libFuzzer calls it once before the inputs.
	LLVMFuzzerInitialize(&argc, &argv);
#endif
	unsigned long seconds = 10;
	std::vector<std::string> inputs;
	for (int i = 1; i < argc; i++) {
		if (strncmp(argv[i], "-max_total_time=", 16) == 0)
			seconds = strtoul(argv[i] + 16, nullptr, 10);
		else if (argv[i][0] != '-')
			read_inputs(argv[i], inputs);
	}
	if (inputs.empty()) {
		fprintf(stderr, FUZZ_DRIVER_NAME ": no inputs\n");
		return 1;
	}
	for (const std::string &input : inputs)
		run_input(input);

	const char *const *tokens = fuzz_driver_tokens;
	const size_t n_tokens =
		sizeof(fuzz_driver_tokens) / sizeof(fuzz_driver_tokens[0]);
	uint64_t state = 0x9e3779b97f4a7c15ULL;
	time_t end = time(nullptr) + (time_t)seconds;
	unsigned long runs = inputs.size();
	while (time(nullptr) < end) {
		for (int round = 0; round < 100; round++) {
			std::string s = inputs[next_random(state) % inputs.size()];
			unsigned int edits = 1 + next_random(state) % 8;
			for (unsigned int e = 0; e < edits; e++) {
				size_t at = s.empty() ? 0 : next_random(state) % (s.size() + 1);
				switch (next_random(state) % 4) {
				case 0:
					s.insert(at, tokens[next_random(state) % n_tokens]);
					break;
				case 1:
					if (at < s.size())
						s.erase(at, 1 + next_random(state) % 8);
					break;
				case 2:
					if (at < s.size())
						s[at] = (char)next_random(state);
					break;
				default:
					s.insert(at, s.substr(at, next_random(state) % 64));
					break;
				}
			}
			run_input(s);
			runs++;
		}
	}
	printf(FUZZ_DRIVER_NAME ": %lu runs, no failure\n", runs);
	return 0;
}

#endif
