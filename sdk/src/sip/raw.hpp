// Private helpers of the transaction layer: a line-level walk over a SIP message's header
// section (folded lines joined, compact names expanded) and the few edits the transaction layer
// makes to messages it did not build itself (a response from a request, the ACK of a non-2xx,
// a CANCEL). Views into the bytes, no copy until a new message is written.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace junction::sip::raw {

inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; }
inline bool ieq(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}
inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}
// The long name of a compact header name (RFC 3261 §7.3.3 and the event package's o/u).
inline std::string_view long_name(std::string_view n) {
  if (n.size() != 1) return n;
  switch (lower(n[0])) {
    case 'v': return "Via";
    case 'f': return "From";
    case 't': return "To";
    case 'i': return "Call-ID";
    case 'm': return "Contact";
    case 'l': return "Content-Length";
    case 'c': return "Content-Type";
    case 'k': return "Supported";
    case 's': return "Subject";
    case 'e': return "Content-Encoding";
    case 'o': return "Event";
    case 'u': return "Allow-Events";
    default: return n;
  }
}
inline bool is_name(std::string_view a, std::string_view want) { return ieq(long_name(a), want); }

struct Line {
  std::string_view name;   // as written (may be compact)
  std::string_view value;  // trimmed; a folded value spans its continuation lines (CRLF kept inside)
  std::string_view whole;  // the header's bytes, from its name to its last CRLF (exclusive)
};

// Walks the headers after the start line. f(const Line&) returns false to stop. Returns the
// offset of the body (after the blank line), or npos when the header section does not end.
template <class F>
size_t for_each_header(std::string_view msg, F&& f) {
  size_t pos = msg.find('\n');
  if (pos == std::string_view::npos) return std::string_view::npos;
  ++pos;
  bool go = true;
  while (pos < msg.size()) {
    size_t eol = msg.find('\n', pos);
    if (eol == std::string_view::npos) return std::string_view::npos;
    std::string_view first = msg.substr(pos, eol - pos);
    if (!first.empty() && first.back() == '\r') first.remove_suffix(1);
    if (first.empty()) return eol + 1;  // the blank line
    size_t end = eol;                    // extend over continuation lines (folding)
    while (end + 1 < msg.size() && (msg[end + 1] == ' ' || msg[end + 1] == '\t')) {
      size_t next = msg.find('\n', end + 1);
      if (next == std::string_view::npos) return std::string_view::npos;
      end = next;
    }
    std::string_view whole = msg.substr(pos, end - pos);
    if (!whole.empty() && whole.back() == '\r') whole.remove_suffix(1);
    size_t colon = whole.find(':');
    if (go && colon != std::string_view::npos) go = f(Line{trim(whole.substr(0, colon)), trim(whole.substr(colon + 1)), whole});
    pos = end + 1;
  }
  return std::string_view::npos;
}

// The first value of a header (its first line's whole value; nothing when absent).
inline std::string_view header(std::string_view msg, std::string_view name) {
  std::string_view out;
  for_each_header(msg, [&](const Line& l) {
    if (!is_name(l.name, name)) return true;
    out = l.value;
    return false;
  });
  return out;
}

// The value of ;name=value in a header value's parameters (after the URI part: '>' or the first
// ';' outside a quoted string and outside <...>). Empty when absent; `present` tells "tag" from "tag=".
inline std::string_view param(std::string_view v, std::string_view name, bool* present = nullptr) {
  if (present) *present = false;
  size_t i = 0;
  bool quoted = false, angle = false;
  while (i < v.size()) {
    char c = v[i];
    if (quoted) {
      if (c == '\\') ++i;
      else if (c == '"') quoted = false;
    } else if (c == '"') {
      quoted = true;
    } else if (c == '<') {
      angle = true;
    } else if (c == '>') {
      angle = false;
    } else if (c == ',' && !angle) {
      break;  // the next value of a comma list
    } else if (c == ';' && !angle) {
      size_t s = i + 1, e = s;
      while (e < v.size() && v[e] != ';' && v[e] != ',' && v[e] != '=') ++e;
      std::string_view n = trim(v.substr(s, e - s));
      std::string_view val;
      if (e < v.size() && v[e] == '=') {
        size_t vs = e + 1, ve = vs;
        bool q = false;
        while (ve < v.size() && (q || (v[ve] != ';' && v[ve] != ','))) {
          if (v[ve] == '"') q = !q;
          ++ve;
        }
        val = trim(v.substr(vs, ve - vs));
        if (val.size() >= 2 && val.front() == '"' && val.back() == '"') val = val.substr(1, val.size() - 2);
        e = ve;
      }
      if (ieq(n, name)) {
        if (present) *present = true;
        return val;
      }
      i = e;
      continue;
    }
    ++i;
  }
  return {};
}

}  // namespace junction::sip::raw
