// The viewer's output: a conversation's items (fold.hh) as text (a
// terminal in colour, or plain) or as one self-contained HTML page.
#ifndef RAWLOG_EXT_VIEW_RENDER_HH
#define RAWLOG_EXT_VIEW_RENDER_HH

#include "view/fold.hh"

#include <cstdio>
#include <memory>
#include <string>

namespace rawlog_ext {

// --bodies: fold (default), headers (a message's header lines, the rest
// folded), full.
enum class BodiesMode { fold, headers, full };

class Renderer {
public:
	virtual ~Renderer() = default;
	virtual void item(const ViewItem &item) = 0;
	// A remark of the viewer's own, not log data.
	virtual void notice(const std::string &text) = 0;
	// The max-size truncation marker.
	virtual void truncated() = 0;
	virtual void finish() = 0;
};

std::unique_ptr<Renderer> text_renderer(FILE *out, BodiesMode bodies,
					bool colour);
// title: shown as the page's <title> after "rawlog-ext-view: ".
std::unique_ptr<Renderer> html_renderer(FILE *out, BodiesMode bodies,
					const std::string &title);

// How many bytes at data[i] may be shown as they are: one printable
// ASCII byte, or one well-formed UTF-8 character that is not a C1
// control. 0: show data[i] escaped ("\xNN").
size_t printable_length(const std::string &data, size_t i);

} // namespace rawlog_ext

#endif
