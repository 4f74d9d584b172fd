// The viewer's output (render.hh). Every byte of log data is the
// client's or the server's, never ours: it is shown escaped, so that it
// cannot drive a terminal or become markup in a browser.
#include "view/render.hh"

#include <openssl/evp.h>

#include <cinttypes>
#include <cstring>

namespace rawlog_ext {

size_t printable_length(const std::string &data, size_t i)
{
	unsigned char c = (unsigned char)data[i];
	if (c < 0x80)
		return c >= 0x20 && c != 0x7f ? 1 : 0;
	size_t n;
	uint32_t cp;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (data.size() - i < n)
		return 0;
	for (size_t k = 1; k < n; k++) {
		unsigned char cc = (unsigned char)data[i + k];
		if ((cc & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (cc & 0x3f);
	}
	static const uint32_t least[] = { 0, 0, 0x80, 0x800, 0x10000 };
	if (cp < least[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
	    (cp >= 0x80 && cp <= 0x9f))
		return 0;
	return n;
}

namespace {

// s[from, to) with what cannot be shown as "\xNN"; html: also markup
// characters as entities and the escapes in a span of their own.
void append_shown(std::string &out, const std::string &s, size_t from,
		  size_t to, bool html)
{
	size_t i = from;
	while (i < to) {
		size_t n = printable_length(s, i);
		if (n > 0 && i + n <= to) {
			if (html && n == 1) {
				switch (s[i]) {
				case '&': out += "&amp;"; break;
				case '<': out += "&lt;"; break;
				case '>': out += "&gt;"; break;
				case '"': out += "&quot;"; break;
				case '\'': out += "&#39;"; break;
				default: out += s[i];
				}
			} else {
				out.append(s, i, n);
			}
			i += n;
			continue;
		}
		char e[8];
		snprintf(e, sizeof(e), "\\x%02x", (unsigned char)s[i]);
		if (html)
			out += "<span class=\"x\">";
		out += e;
		if (html)
			out += "</span>";
		i++;
	}
}

std::string latency_text(int64_t us)
{
	char b[40];
	if (us < 0)
		return "";
	if (us < 10000)
		snprintf(b, sizeof(b), "(%.1f ms)", us / 1000.0);
	else
		snprintf(b, sizeof(b), "(%" PRId64 " ms)", (us + 500) / 1000);
	return b;
}

std::string fold_text(const ViewItem &item, BodiesMode bodies, bool headers_done)
{
	std::string s = "{" + std::to_string(item.size) + " bytes, sha256 " +
		item.sha256.substr(0, 16);
	if (!item.complete)
		s += ", the log ends inside";
	if (bodies == BodiesMode::headers && headers_done)
		s += ", after the headers folded";
	return s + "}";
}

class TextRenderer : public Renderer {
public:
	TextRenderer(FILE *out, BodiesMode bodies, bool colour)
		: out_(out), bodies_(bodies), colour_(colour) {}

	void item(const ViewItem &item) override
	{
		const int d = item.client ? 0 : 1;
		switch (item.kind) {
		case ViewItem::Kind::body_begin:
			in_headers_[d] = true;
			return;
		case ViewItem::Kind::body_end:
			if (bodies_ != BodiesMode::full)
				print(item, fold_text(item, bodies_,
						      !in_headers_[d]), true);
			return;
		case ViewItem::Kind::line:
			break;
		}
		if (item.after_literal && item.text.empty() && item.newline)
			return;		// the line end after a literal
		if (item.body) {
			if (bodies_ == BodiesMode::fold ||
			    (bodies_ == BodiesMode::headers && !in_headers_[d]))
				return;
			if (item.text.empty() && item.newline)
				in_headers_[d] = false;
		}
		print(item, std::string(), false);
	}

	// Notices carry names (a user from a directory's name, a file's
	// stem): shown escaped as the data lines are.
	void notice(const std::string &text) override
	{
		std::string line = "(";
		append_shown(line, text, 0, text.size(), false);
		line += ")\n";
		fputs(line.c_str(), out_);
	}

	void truncated() override
	{
		fprintf(out_, "%s--- log truncated (rawlog_ext_max_size) ---%s\n",
			colour_ ? "\033[1;33m" : "", colour_ ? "\033[m" : "");
	}

	void finish() override {}

private:
	void print(const ViewItem &item, const std::string &fold, bool is_fold)
	{
		const char *on = !colour_ ? "" : is_fold ? "\033[35m" :
			item.failure ? "\033[1;31m" :
			item.body ? (item.client ? "\033[2;32m" : "\033[2;34m") :
			item.client ? "\033[32m" : "\033[34m";
		std::string line = on;
		line += item.client ? "C: " : "S: ";
		if (is_fold) {
			line += fold;
		} else if (item.redacted != std::string::npos) {
			append_shown(line, item.text, 0, item.redacted, false);
			line += colour_ ? "\033[7m***\033[27m" : "***";
			append_shown(line, item.text, item.redacted + 3,
				     item.text.size(), false);
			line += " (redacted)";
		} else {
			append_shown(line, item.text, 0, item.text.size(), false);
		}
		if (item.latency_us >= 0)
			line += " " + latency_text(item.latency_us);
		if (!is_fold && !item.newline && !item.body)
			line += " [no newline]";
		if (colour_)
			line += "\033[m";
		line += '\n';
		fwrite(line.data(), 1, line.size(), out_);
	}

	FILE *out_;
	BodiesMode bodies_;
	bool colour_;
	bool in_headers_[2] = { false, false };
};

// The page's own style and script, allowed by their hashes in its
// Content-Security-Policy: nothing else may run or load, whatever the
// log holds.
const char page_style[] =
	"body{font-family:sans-serif;margin:1em;background:#fff;color:#111}"
	".conv{font-family:monospace;font-size:13px}"
	".l{white-space:pre-wrap;word-break:break-all;min-height:1.2em;"
	"padding:0 .3em}"
	".c{background:#eef8ee;color:#064}"
	".s{background:#eef2fb;color:#124}"
	".w{font-weight:bold;user-select:none}"
	".b{opacity:.8}"
	".fail{background:#fde4e4;color:#a00;font-weight:bold}"
	".red{background:#fd6;color:#000;font-weight:bold}"
	".lat{color:#777}"
	".x{color:#a0a;font-style:italic}"
	".mark{color:#a60;font-weight:bold}"
	"details{margin:0 0 0 2em}"
	"summary{cursor:pointer;color:#707;font-family:monospace}"
	".note{color:#555;font-style:italic}";
const char page_script[] =
	"(function(){var p=document.createElement('p');"
	"function all(o){var d=document.querySelectorAll('details');"
	"for(var i=0;i<d.length;i++)d[i].open=o;}"
	"[['Unfold all bodies',true],['Fold all bodies',false]].forEach("
	"function(a){var b=document.createElement('button');"
	"b.textContent=a[0];b.addEventListener('click',function(){all(a[1]);});"
	"p.appendChild(b);});"
	"var c=document.querySelector('.conv');"
	"c.parentNode.insertBefore(p,c);})();";

std::string csp_hash(const char *text)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	if (EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), nullptr) != 1)
		abort();
	unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
	EVP_EncodeBlock(b64, md, (int)len);
	return std::string("'sha256-") + (const char *)b64 + "'";
}

class HtmlRenderer : public Renderer {
public:
	// A body's markup is held until its end (its summary comes first);
	// past this much, its lines are left out of the page.
	static constexpr size_t max_body_html = 32 << 20;

	HtmlRenderer(FILE *out, BodiesMode bodies, const std::string &title)
		: out_(out), bodies_(bodies)
	{
		std::string t = "rawlog-ext-view: ";
		append_shown(t, title, 0, title.size(), true);
		std::string head =
			"<!DOCTYPE html>\n<html lang=\"en\"><head>"
			"<meta charset=\"utf-8\">\n"
			"<meta http-equiv=\"Content-Security-Policy\" content=\""
			"default-src 'none'; style-src " + csp_hash(page_style) +
			"; script-src " + csp_hash(page_script) +
			"; base-uri 'none'; form-action 'none'\">\n"
			"<title>" + t + "</title>\n<style>" + page_style +
			"</style></head>\n<body>\n<h1>" + t + "</h1>\n"
			"<p><span class=\"l c\"><span class=\"w\">C:</span> client"
			"</span> <span class=\"l s\"><span class=\"w\">S:</span> "
			"server</span></p>\n<div class=\"conv\">\n";
		fputs(head.c_str(), out_);
	}

	void item(const ViewItem &item) override
	{
		const int d = item.client ? 0 : 1;
		Body &b = body_[d];
		switch (item.kind) {
		case ViewItem::Kind::body_begin:
			b = Body();
			b.open = true;
			return;
		case ViewItem::Kind::body_end:
			end_body(item, b);
			return;
		case ViewItem::Kind::line:
			break;
		}
		if (item.after_literal && item.text.empty() && item.newline)
			return;		// the line end after a literal
		std::string html = line_html(item);
		if (!item.body || !b.open) {
			fputs(html.c_str(), out_);
			return;
		}
		const bool head = bodies_ == BodiesMode::headers && b.in_headers;
		if (head && item.text.empty() && item.newline)
			b.in_headers = false;
		std::string &to = head ? b.head : b.rest;
		if (to.size() + html.size() > max_body_html) {
			b.left_out += item.text.size();
			return;
		}
		to += html;
	}

	void notice(const std::string &text) override
	{
		std::string h = "<div class=\"note\">";
		append_shown(h, text, 0, text.size(), true);
		h += "</div>\n";
		fputs(h.c_str(), out_);
	}

	void truncated() override
	{
		fputs("<div class=\"mark\">--- log truncated (rawlog_ext_max_size)"
		      " ---</div>\n", out_);
	}

	void finish() override
	{
		fprintf(out_, "</div>\n<script>%s</script>\n</body></html>\n",
			page_script);
	}

private:
	struct Body {
		bool open = false;
		bool in_headers = true;
		std::string head, rest;
		uint64_t left_out = 0;
	};

	std::string line_html(const ViewItem &item)
	{
		std::string h = "<div class=\"l ";
		h += item.client ? "c" : "s";
		if (item.body)
			h += " b";
		if (item.failure)
			h += " fail";
		h += "\"><span class=\"w\">";
		h += item.client ? "C:" : "S:";
		h += "</span> ";
		if (item.redacted != std::string::npos) {
			append_shown(h, item.text, 0, item.redacted, true);
			h += "<span class=\"red\" title=\"redacted by rawlog_ext\">"
				"***</span>";
			append_shown(h, item.text, item.redacted + 3,
				     item.text.size(), true);
			h += " <span class=\"lat\">(redacted)</span>";
		} else {
			append_shown(h, item.text, 0, item.text.size(), true);
		}
		if (item.latency_us >= 0)
			h += " <span class=\"lat\">" +
				latency_text(item.latency_us) + "</span>";
		if (!item.newline && !item.body)
			h += " <span class=\"lat\">[no newline]</span>";
		return h + "</div>\n";
	}

	void end_body(const ViewItem &item, Body &b)
	{
		std::string summary;
		const std::string fold = fold_text(item, bodies_, !b.in_headers);
		append_shown(summary, fold, 0, fold.size(), true);
		std::string h = b.head;
		h += "<details class=\"";
		h += item.client ? "c" : "s";
		h += "\"";
		if (bodies_ == BodiesMode::full)
			h += " open";
		h += "><summary>" + summary + " " + item.what + "</summary>\n";
		h += b.rest;
		if (b.left_out > 0)
			h += "<div class=\"note\">(" + std::to_string(b.left_out) +
				" more bytes not in this page)</div>\n";
		h += "</details>\n";
		fputs(h.c_str(), out_);
		b = Body();
	}

	FILE *out_;
	BodiesMode bodies_;
	Body body_[2];
};

} // namespace

std::unique_ptr<Renderer> text_renderer(FILE *out, BodiesMode bodies,
					bool colour)
{
	return std::unique_ptr<Renderer>(new TextRenderer(out, bodies, colour));
}

std::unique_ptr<Renderer> html_renderer(FILE *out, BodiesMode bodies,
					const std::string &title)
{
	return std::unique_ptr<Renderer>(new HtmlRenderer(out, bodies, title));
}

} // namespace rawlog_ext
