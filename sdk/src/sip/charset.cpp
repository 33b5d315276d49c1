#include <junction/sip/charset.hpp>

#include <junction/sip/uri.hpp>

#include "chars.hpp"

#include <cerrno>
#include <iconv.h>

namespace junction::sip {

using namespace detail;

std::string_view declared_charset(std::string_view content_type, std::string_view body) {
  size_t semi = content_type.find(';');
  if (semi != std::string_view::npos) {
    ParamList p(content_type.substr(semi));
    std::string_view cs;
    if (p.get("charset", cs) && !cs.empty()) {
      if (cs.size() >= 2 && cs.front() == '"' && cs.back() == '"') cs = cs.substr(1, cs.size() - 2);
      return cs;
    }
  }
  // <?xml version="1.0" encoding="GB2312"?>
  std::string_view b = body;
  if (b.size() >= 3 && b.substr(0, 3) == "\xEF\xBB\xBF") b.remove_prefix(3);
  b = ltrim(b);
  if (b.substr(0, 5) != "<?xml") return {};
  size_t end = b.find("?>");
  std::string_view decl = b.substr(0, end);
  size_t e = decl.find("encoding");
  if (e == std::string_view::npos) return {};
  size_t i = e + 8;
  while (i < decl.size() && is_lws(decl[i])) ++i;
  if (i >= decl.size() || decl[i] != '=') return {};
  ++i;
  while (i < decl.size() && is_lws(decl[i])) ++i;
  if (i >= decl.size() || (decl[i] != '"' && decl[i] != '\'')) return {};
  char q = decl[i];
  size_t close = decl.find(q, i + 1);
  if (close == std::string_view::npos) return {};
  return decl.substr(i + 1, close - i - 1);
}

bool is_valid_utf8(std::string_view s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    uint8_t c = uint8_t(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
    else return false;
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      uint8_t cc = uint8_t(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// Converts with iconv; an invalid or incomplete sequence costs one input byte and, when replace
// is set, one U+FFFD (else one '?'). Returns the number of replacements.
size_t convert(const char* to, const char* from, std::string_view in, std::string& out, bool replace) {
  out.clear();
  iconv_t cd = iconv_open(to, from);
  if (cd == reinterpret_cast<iconv_t>(-1)) {
    // No such converter in this libc: keep the ASCII, replace the rest.
    size_t bad = 0;
    for (char c : in) {
      if (uint8_t(c) < 0x80) out += c;
      else out.append(replace ? kReplacement : "?"), ++bad;
    }
    return bad;
  }
  size_t bad = 0;
  char buf[1024];
  char* src = const_cast<char*>(in.data());
  size_t left = in.size();
  while (left > 0) {
    char* dst = buf;
    size_t room = sizeof buf;
    size_t r = iconv(cd, &src, &left, &dst, &room);
    out.append(buf, size_t(dst - buf));
    if (r == size_t(-1)) {
      if (errno == E2BIG) continue;
      // EILSEQ / EINVAL: skip one byte
      out.append(replace ? kReplacement : "?");
      ++bad;
      ++src;
      --left;
      iconv(cd, nullptr, nullptr, nullptr, nullptr);
    }
  }
  // flush any shift state
  char* dst = buf;
  size_t room = sizeof buf;
  iconv(cd, nullptr, nullptr, &dst, &room);
  out.append(buf, size_t(dst - buf));
  iconv_close(cd);
  return bad;
}

bool is_latin1_label(std::string_view cs) {
  return iequals(cs, "ISO-8859-1") || iequals(cs, "ISO8859-1") || iequals(cs, "latin1") || iequals(cs, "latin-1");
}

}  // namespace

CharsetSource to_utf8(std::string_view body, std::string_view declared, std::string& out) {
  // Valid UTF-8 is taken as UTF-8 whatever the label: the lying "GB2312" case, and ASCII.
  if (is_valid_utf8(body)) {
    out.assign(body);
    return CharsetSource::Utf8;
  }
  if (is_latin1_label(declared)) {
    out.clear();
    for (char c : body) {
      uint8_t u = uint8_t(c);
      if (u < 0x80) out += c;
      else out += char(0xC0 | (u >> 6)), out += char(0x80 | (u & 0x3F));
    }
    return CharsetSource::Latin1;
  }
  // GB2312, GBK, GB18030, undeclared, or mislabelled: GB18030 reads all of them.
  size_t bad = convert("UTF-8", "GB18030", body, out, true);
  return bad ? CharsetSource::Replaced : CharsetSource::Gb18030;
}

bool utf8_to_gb18030(std::string_view utf8, std::string& out) {
  bool valid = is_valid_utf8(utf8);
  convert("GB18030", "UTF-8", utf8, out, false);
  return valid;
}

}  // namespace junction::sip
