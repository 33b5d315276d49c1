// URI, name-addr, Via and Contact parsers on arbitrary text. Invariants: views lie inside the
// input; a parsed SIP URI equals itself and re-parses from its own text to the same parts;
// unescape never reads past the input.
#include <junction/sip/headers.hpp>
#include <junction/sip/uri.hpp>

#include <cstdlib>
#include <string>

using namespace junction::sip;

namespace {
bool inside(std::string_view in, std::string_view v) {
  return v.empty() || (v.data() >= in.data() && v.data() + v.size() <= in.data() + in.size());
}
void check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  Uri u;
  if (parse_uri(in, u)) {
    check(inside(in, u.user) && inside(in, u.password) && inside(in, u.host) && inside(in, u.params.raw()) &&
          inside(in, u.headers) && inside(in, u.opaque));
    if (u.scheme != Scheme::Other) check(uri_equal(u, u));
    std::string copy(in);
    Uri v;
    check(parse_uri(copy, v));
    check(v.scheme == u.scheme && v.user == u.user && v.host == u.host && v.port == u.port && v.has_port == u.has_port &&
          v.params.raw() == u.params.raw() && v.headers == u.headers);
    size_t cur = 0;
    std::string_view n, val;
    int guard = 0;
    while (u.params.next(cur, n, val) && ++guard < 10000) check(inside(in, n) && inside(in, val));
    std::string s;
    unescape(u.user, s);
  }
  NameAddr na;
  if (parse_name_addr(in, na)) {
    check(inside(in, na.uri_text) && inside(in, na.display) && inside(in, na.params.raw()));
    check(!na.uri_text.empty());
    unquote(na.display);
  }
  Via via;
  if (parse_via(in, via))
    check(inside(in, via.host) && inside(in, via.transport) && !via.host.empty() && inside(in, via.sent_by) &&
          via.sent_by.find(via.host) != std::string_view::npos);
  Contact c;
  parse_contact(in, c);
  std::string s;
  unescape(in, s);
  return 0;
}
