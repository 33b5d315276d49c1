#include "snapshots.hpp"

#include "ids.hpp"

#include <algorithm>
#include <cctype>

namespace gb {

namespace {
bool ichar_eq(char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b)); }
bool istarts(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && std::equal(p.begin(), p.end(), s.begin(), ichar_eq);
}
size_t ifind(std::string_view hay, std::string_view needle, size_t from = 0) {
  if (from > hay.size()) return std::string_view::npos;
  auto it = std::search(hay.begin() + long(from), hay.end(), needle.begin(), needle.end(), ichar_eq);
  return it == hay.end() ? std::string_view::npos : size_t(it - hay.begin());
}
// A parameter of a header value ("multipart/form-data; boundary=xyz"), quotes removed.
std::string_view param(std::string_view v, std::string_view name) {
  size_t p = ifind(v, std::string(name) + "=");
  if (p == std::string_view::npos) return {};
  std::string_view r = v.substr(p + name.size() + 1);
  if (!r.empty() && r.front() == '"') {
    r.remove_prefix(1);
    return r.substr(0, r.find('"'));
  }
  return r.substr(0, std::min(r.find(';'), r.find(' ')));
}
}  // namespace

bool valid_session_id(std::string_view s) {
  if (s.size() < 32 || s.size() > 128) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; });
}

bool valid_file_name(std::string_view s) {
  if (s.empty() || s.size() > 64 || s.front() == '.') return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'; });
}

bool parse_snapshot_path(std::string_view path, std::string& device, std::string& session, std::string& file) {
  constexpr std::string_view kPrefix = "/snapshot/";
  if (path.substr(0, kPrefix.size()) != kPrefix) return false;
  path.remove_prefix(kPrefix.size());
  size_t a = path.find('/');
  if (a == std::string_view::npos) return false;
  device = std::string(path.substr(0, a));
  path.remove_prefix(a + 1);
  size_t b = path.find('/');
  session = std::string(path.substr(0, b));
  file = b == std::string_view::npos ? std::string() : std::string(path.substr(b + 1));
  if (!file.empty() && file.back() == '/') file.pop_back();
  return is_gb_id(device) && valid_session_id(session) && (file.empty() || valid_file_name(file));
}

std::string_view upload_image(std::string_view body, std::string_view ctype, std::string& error, std::string* part_filename) {
  if (!istarts(ctype, "multipart/form-data")) {
    if (body.empty()) error = "empty body";
    return body;
  }
  std::string_view boundary = param(ctype, "boundary");
  if (boundary.empty() || boundary.size() > 200) {
    error = "multipart/form-data without a boundary";
    return {};
  }
  std::string delim = "--" + std::string(boundary);
  size_t pos = body.find(delim);
  while (pos != std::string_view::npos) {
    size_t head = pos + delim.size();
    if (body.substr(head, 2) == "--") break;  // the closing delimiter
    size_t hdr_end = body.find("\r\n\r\n", head);
    if (hdr_end == std::string_view::npos) break;
    std::string_view headers = body.substr(head, hdr_end - head);
    size_t data = hdr_end + 4;
    size_t next = body.find("\r\n" + delim, data);
    if (next == std::string_view::npos) break;
    // The first part that carries a file (filename=) or an image type.
    if (ifind(headers, "filename=") != std::string_view::npos || ifind(headers, "image/") != std::string_view::npos) {
      if (part_filename) *part_filename = std::string(param(headers, "filename"));
      return body.substr(data, next - data);
    }
    pos = next + 2;
  }
  error = "no file part in the multipart body";
  return {};
}

}  // namespace gb
