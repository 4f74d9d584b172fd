#include "hold.hh"

#include <algorithm>
#include <cstring>
#include <string>

namespace rawlog_ext {

namespace {

// Fills a block's slack: no record starts here.
const unsigned char end_of_block = 0xff;
const size_t continued_header = 3;

int64_t usecs(const struct timeval &time)
{
	return (int64_t)time.tv_sec * 1000000 + time.tv_usec;
}

uint64_t zigzag(int64_t value)
{
	return ((uint64_t)value << 1) ^ (uint64_t)(value >> 63);
}

size_t varint_size(uint64_t value)
{
	size_t size = 1;
	for (; value >= 0x80; value >>= 7)
		size++;
	return size;
}

} // namespace

HeldData::HeldData(uint64_t max, const Settings &format) : max_(max)
{
	bool plain = format.format == Format::split && !format.boundaries;
	merge_any_ = plain && format.timestamps == Timestamps::none;
	merge_in_line_ = plain;
	merge_same_time_ = plain && format.timestamps == Timestamps::lines;

	if (max_ < cost_for(1, 0) + max_header + 1) {
		block_size_ = 0;	// nothing fits
		return;
	}
	block_size_ = (size_t)std::min<uint64_t>(max_block,
		max_ - cost_for(1, 0));
}

// What count blocks cost, with the block pointers' array (its capacity a
// power of two, at least 4: see new_block()).
uint64_t HeldData::cost_for(size_t count, size_t block_size) const
{
	size_t capacity = 4;
	while (capacity < count)
		capacity *= 2;
	return capacity * sizeof(blocks_[0]) + alloc_overhead +
		(uint64_t)count * (block_size + alloc_overhead);
}

size_t HeldData::room() const
{
	return blocks_.empty() ? 0 : block_size_ - used_;
}

bool HeldData::mergeable(Direction direction, const unsigned char *data,
			 size_t size, const struct timeval &time) const
{
	if (!have_last_ || direction != last_direction_)
		return false;
	if (merge_any_)
		return true;
	if (merge_same_time_ && usecs(time) == usecs(last_time_))
		return true;
	// It starts no line: no stamp is due in it, whatever its time.
	return merge_in_line_ && !last_lf_ &&
		memchr(data, '\n', size - 1) == nullptr;
}

bool HeldData::new_block()
{
	uint64_t cost = cost_for(blocks_.size() + 1, block_size_);
	if (cost > max_)
		return false;
	if (!blocks_.empty() && used_ < block_size_)
		blocks_.back()[used_] = end_of_block;
	if (blocks_.size() == blocks_.capacity())
		blocks_.reserve(std::max<size_t>(4, blocks_.capacity() * 2));
	blocks_.emplace_back(new unsigned char[block_size_]);
	cost_ = (size_t)cost;
	used_ = 0;
	return true;
}

void HeldData::put_header(unsigned char flags, const struct timeval *time)
{
	unsigned char *p = blocks_.back().get() + used_;
	*p++ = flags;
	last_length_ = p;
	*p++ = 0;
	*p++ = 0;
	last_size_ = 0;
	if (time != nullptr) {
		uint64_t delta = zigzag(usecs(*time) - usecs(last_time_));
		for (; delta >= 0x80; delta >>= 7)
			*p++ = (unsigned char)(delta | 0x80);
		*p++ = (unsigned char)delta;
		last_time_ = *time;
	}
	used_ = p - blocks_.back().get();
}

bool HeldData::add(Direction direction, const unsigned char *data,
		   size_t size, const struct timeval &time)
{
	if (size == 0)
		return true;
	if (block_size_ == 0)
		return false;
	bool merge = mergeable(direction, data, size, time);
	size_t header = 3 + varint_size(zigzag(usecs(time) -
					       usecs(last_time_)));

	// Whole or not at all: count the blocks it needs first.
	size_t first = merge ? room() :
		(room() > header ? room() - header : 0);
	size_t rest = size - std::min(first, size), blocks = 0;
	if (first == 0 && !merge) {
		blocks++;
		rest -= std::min(rest, block_size_ - header);
	}
	size_t per_block = block_size_ - continued_header;
	blocks += (rest + per_block - 1) / per_block;
	if (blocks > 0 &&
	    cost_for(blocks_.size() + blocks, block_size_) > max_)
		return false;

	unsigned char flags = direction == Direction::out ? flag_out : 0;
	if (!merge) {
		if (first == 0)
			(void)new_block();
		put_header(flags, &time);
	}
	for (;;) {
		size_t n = std::min(size, block_size_ - used_);
		memcpy(blocks_.back().get() + used_, data, n);
		used_ += n;
		last_size_ += n;
		last_length_[0] = (unsigned char)(last_size_ & 0xff);
		last_length_[1] = (unsigned char)(last_size_ >> 8);
		data += n;
		size -= n;
		bytes_ += n;
		if (size == 0)
			break;
		(void)new_block();
		put_header(flags | flag_continued, nullptr);
	}
	have_last_ = true;
	last_direction_ = direction;
	last_lf_ = data[-1] == '\n';
	return true;
}

void HeldData::replay(const std::function<void(Direction,
	const unsigned char *, size_t, const struct timeval &)> &write)
{
	struct timeval time = { 0, 0 };
	bool have = false;
	Direction direction = Direction::in;
	const unsigned char *data = nullptr;
	size_t size = 0;
	std::string joined;	// a record that spans blocks
	bool is_joined = false;
	auto emit = [&]() {
		if (!have)
			return;
		if (is_joined) {
			write(direction, (const unsigned char *)joined.data(),
			      joined.size(), time);
		} else {
			write(direction, data, size, time);
		}
		have = is_joined = false;
		joined.clear();
	};

	for (size_t i = 0; i < blocks_.size(); i++) {
		const unsigned char *block = blocks_[i].get();
		size_t end = i + 1 == blocks_.size() ? used_ : block_size_;
		size_t pos = 0;
		while (pos < end && block[pos] != end_of_block) {
			unsigned char flags = block[pos];
			size_t n = block[pos + 1] | (size_t)block[pos + 2] << 8;
			pos += 3;
			if ((flags & flag_continued) != 0) {
				if (!is_joined) {
					joined.assign((const char *)data, size);
					is_joined = true;
				}
				joined.append((const char *)block + pos, n);
				pos += n;
				continue;
			}
			emit();
			uint64_t delta = 0;
			for (unsigned int shift = 0;; shift += 7) {
				unsigned char b = block[pos++];
				delta |= (uint64_t)(b & 0x7f) << shift;
				if ((b & 0x80) == 0)
					break;
			}
			int64_t t = usecs(time) + ((int64_t)(delta >> 1) ^
						   -(int64_t)(delta & 1));
			time.tv_sec = (time_t)(t / 1000000);
			time.tv_usec = (suseconds_t)(t % 1000000);
			have = true;
			direction = (flags & flag_out) != 0 ? Direction::out :
				Direction::in;
			data = block + pos;
			size = n;
			pos += n;
		}
		// It points into this block: write or copy it before the
		// block goes.
		if (have && !is_joined) {
			if (i + 1 < blocks_.size() &&
			    (blocks_[i + 1][0] & flag_continued) != 0) {
				// Its size exactly: no doubling on append.
				size_t total = size;
				for (size_t j = i + 1; j < blocks_.size() &&
				     (blocks_[j][0] & flag_continued) != 0; j++)
					total += blocks_[j][1] |
						(size_t)blocks_[j][2] << 8;
				joined.reserve(total);
				joined.assign((const char *)data, size);
				is_joined = true;
			} else {
				emit();
			}
		}
		blocks_[i].reset();
	}
	emit();
	blocks_.clear();
	blocks_.shrink_to_fit();
	cost_ = 0;
	used_ = 0;
	bytes_ = 0;
	have_last_ = false;
	last_time_ = { 0, 0 };
}

} // namespace rawlog_ext
