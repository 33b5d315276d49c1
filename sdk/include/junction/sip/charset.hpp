// Body text to UTF-8. GB/T 28181 devices send MANSCDP XML bodies in GB2312 (often really GBK or
// GB18030), sometimes with no charset at all, and sometimes UTF-8 while the header or the XML
// declaration says GB2312. to_utf8() decides from what the text is, not only from its label:
// valid UTF-8 stays UTF-8 whatever the label says (GB2312 text of any length is almost never valid
// UTF-8), anything else is decoded as GB18030 (a superset of GB2312 and GBK). Invalid sequences
// become U+FFFD; nothing here can fail or crash on any input.
#pragma once

#include <string>
#include <string_view>

namespace junction::sip {

// The charset parameter of a Content-Type value ("application/MANSCDP+xml; charset=GB2312"), or
// the encoding="..." of an XML declaration at the start of body; empty when neither says.
std::string_view declared_charset(std::string_view content_type, std::string_view body);

// True when text is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view text);

enum class CharsetSource : unsigned char {
  Utf8,        // already UTF-8 (declared or not): copied
  Gb18030,     // decoded from GB2312 / GBK / GB18030 (declared or guessed)
  Latin1,      // declared ISO-8859-1: decoded
  Replaced,    // decoded with at least one invalid sequence replaced by U+FFFD
};

// Converts body to UTF-8 in out. declared: a charset label (from declared_charset() or elsewhere),
// may be empty or wrong. Returns how the text was read.
CharsetSource to_utf8(std::string_view body, std::string_view declared, std::string& out);

// GB18030 from UTF-8 (for bodies sent to devices that want GB2312); unmappable characters become
// '?'. False when the input is not valid UTF-8 (out then holds the conversion of the valid part).
bool utf8_to_gb18030(std::string_view utf8, std::string& out);

}  // namespace junction::sip
