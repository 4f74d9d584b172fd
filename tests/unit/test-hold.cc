// HeldData: what is held costs at most its limit, bookkeeping included,
// and replaying it logs exactly what writing the pieces live would have.
#include "test-common.hh"

#include "core/hold.hh"
#include "core/sink.hh"

#include <random>

using namespace rawlog_ext;

namespace {

struct Piece {
	Direction direction;
	std::string data;
	struct timeval time;
};

// Mostly one-byte pieces (the costly case), some lines, some big ones;
// times that repeat, advance, and once go back.
std::vector<Piece> pieces(unsigned int seed, size_t count)
{
	std::mt19937 rng(seed);
	std::vector<Piece> out;
	struct timeval time = { 1700000000, 999990 };
	const std::string text = "a NOOP\r\n12 digits\r\nx";
	for (size_t i = 0; i < count; i++) {
		Piece piece;
		piece.direction = rng() % 4 == 0 ? Direction::out : Direction::in;
		unsigned int kind = rng() % 10;
		size_t size = kind < 6 ? 1 : kind < 9 ? 1 + rng() % 40 :
			1 + rng() % 9000;
		for (size_t j = 0; j < size; j++)
			piece.data += text[rng() % text.size()];
		unsigned int step = rng() % 3;
		if (step == 1)
			time.tv_usec += 7;
		else if (step == 2)
			time.tv_sec += 1;
		if (time.tv_usec >= 1000000) {
			time.tv_sec++;
			time.tv_usec -= 1000000;
		}
		piece.time = time;
		if (i == count / 2)
			piece.time.tv_sec -= 5;
		out.push_back(piece);
	}
	return out;
}

std::vector<Settings> formats(const std::string &dir)
{
	std::vector<Settings> out;
	for (Timestamps ts : { Timestamps::none, Timestamps::lines,
			       Timestamps::chunks }) {
		for (int variant = 0; variant < 3; variant++) {
			Settings set;
			set.dir = dir;
			set.timestamps = ts;
			set.boundaries = variant == 1;
			set.format = variant == 2 ? Format::transcript :
				Format::split;
			out.push_back(set);
		}
	}
	return out;
}

std::unique_ptr<Sink> open_sink(const Settings &set, const char *host)
{
	std::unique_ptr<Sink> sink;
	std::string message;
	if (Sink::open(set, fixed_parts(host), sink, message) !=
	    OpenResult::opened)
		fail_msg("Sink::open failed: %s", message.c_str());
	return sink;
}

std::string contents(const Settings &set, const char *host)
{
	std::string base = set.dir + "/" + log_base_name(fixed_parts(host));
	if (set.format == Format::transcript)
		return read_file(base + ".log");
	return read_file(base + ".in") + "|" + read_file(base + ".out");
}

void test_hold_cost_never_exceeds_limit(void **)
{
	Settings set;
	for (uint64_t max : { 0, 16, 100, 1024, 5000, 16 * 1024, 100000 }) {
		for (unsigned int seed = 1; seed <= 3; seed++) {
			HeldData held(max, set);
			uint64_t kept = 0;
			for (const Piece &p : pieces(seed, 20000)) {
				if (held.add(p.direction,
					     (const unsigned char *)p.data.data(),
					     p.data.size(), p.time))
					kept += p.data.size();
				if (held.cost() > max)
					fail_msg("max %llu: cost %zu",
						 (unsigned long long)max,
						 held.cost());
			}
			assert_true(held.bytes() == kept);
		}
	}
	// A large limit is paid for as it fills, not up front.
	HeldData big(uint64_t(10) << 30, set);
	assert_true(big.cost() == 0);
	struct timeval time = { 1700000000, 0 };
	assert_true(big.add(Direction::in, (const unsigned char *)"x", 1, time));
	assert_true(big.cost() <= HeldData::max_block + 100);
}

void test_hold_one_byte_pieces_cost_is_bounded(void **)
{
	// One byte per segment at distinct times: every record's header
	// counts, so fewer bytes are kept, never more memory.
	Settings set;
	set.format = Format::transcript;
	const uint64_t max = 16 * 1024;
	HeldData held(max, set);
	struct timeval time = { 1700000000, 0 };
	uint64_t kept = 0;
	for (int i = 0; i < 100000; i++) {
		time.tv_usec = (time.tv_usec + 150) % 1000000;
		if (held.add(Direction::in, (const unsigned char *)"x", 1, time))
			kept++;
		assert_true(held.cost() <= max);
	}
	assert_true(kept > 1000 && kept < max);
	// Split without markers merges what starts no line: all of them.
	Settings split;
	HeldData merged(max, split);
	for (int i = 0; i < 100000; i++) {
		time.tv_usec = (time.tv_usec + 150) % 1000000;
		(void)merged.add(Direction::in, (const unsigned char *)"x", 1,
				 time);
		assert_true(merged.cost() <= max);
	}
	assert_true(merged.bytes() > max - 2 * HeldData::max_block);
}

// Replayed into a sink, the held pieces give the files that writing
// them live gives, in every format; and all of them come back.
void test_hold_replay_is_byte_exact(void **state)
{
	unsigned int n = 0;
	for (unsigned int seed = 1; seed <= 4; seed++) {
		std::vector<Piece> all = pieces(seed, 3000);
		for (Settings set : formats(tmpdir(state).path())) {
			std::string dir = tmpdir(state).path(
				"c" + std::to_string(n++));
			if (mkdir(dir.c_str(), 0700) < 0)
				fail_msg("mkdir(%s) failed", dir.c_str());
			set.dir = dir;
			HeldData held(1 << 20, set);
			std::unique_ptr<Sink> live = open_sink(set, "live");
			std::string data;
			for (const Piece &p : all) {
				if (!held.add(p.direction,
					      (const unsigned char *)p.data.data(),
					      p.data.size(), p.time))
					break;
				live->write(p.direction, p.data.data(),
					    p.data.size(), p.time);
				data += p.data;
			}
			assert_true(held.bytes() == data.size());
			assert_true(data.size() > 100000);
			std::unique_ptr<Sink> replayed = open_sink(set, "held");
			held.replay([&](Direction d, const unsigned char *p,
					size_t size, const struct timeval &t) {
				replayed->write(d, p, size, t);
			});
			live.reset();
			replayed.reset();
			assert_true(held.bytes() == 0);
			assert_bytes_equal(contents(set, "held"),
					   contents(set, "live"));
		}
	}
}

} // namespace

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hold_cost_never_exceeds_limit),
		cmocka_unit_test(test_hold_one_byte_pieces_cost_is_bounded),
		cmocka_unit_test_setup_teardown(test_hold_replay_is_byte_exact, tmpdir_setup, tmpdir_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
