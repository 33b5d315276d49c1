// fuzz_gb28181_body: any bytes through Body::decode (size limit, charset, pre-scrub, pugixml,
// limits, root/CmdType/SN checks). Invariants: a refusal always has a reason and leaves no
// root; an accepted body has a known root kind, a non-empty CmdType and the decoded fields;
// the scrub is idempotent; a body rebuilt from the decoded fields round-trips through both
// output charsets.
#include "body.hpp"

#include <junction/sip/charset.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

using namespace junction::gb;

namespace {
void fail(const char* what, int line) {
  fprintf(stderr, "invariant broken: %s (line %d)\n", what, line);
  abort();
}
#define check(x) ((x) ? (void)0 : fail(#x, __LINE__))
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view raw(reinterpret_cast<const char*>(data), size);
  // The first byte picks the Content-Type label (none, GB2312, UTF-8) so both paths are reached.
  static constexpr std::string_view kTypes[] = {"Application/MANSCDP+xml", "Application/MANSCDP+xml;charset=GB2312",
                                                "application/MANSCDP+xml; charset=UTF-8"};
  std::string_view ct = kTypes[size ? data[0] % 3 : 0];

  std::string once = scrub_xml(raw);
  check(scrub_xml(once) == once);

  Body body;
  std::string error;
  BodyLimits limits;
  limits.max_bytes = 64 * 1024;
  bool ok = body.decode(raw, ct, error, limits);
  if (!ok) {
    check(!error.empty() && error.rfind("body: ", 0) == 0);
    check(!body.root());
    return 0;
  }
  check(error.empty());
  check(body.root());
  check(!body.cmd_type().empty() && body.cmd_type().size() <= 64);
  check(body.device_id().size() <= 64);
  check(body.kind() == RootKind::Query || body.kind() == RootKind::Control || body.kind() == RootKind::Notify ||
        body.kind() == RootKind::Response);

  BodyBuilder b(body.kind(), body.cmd_type(), body.sn(), body.device_id());
  for (Charset cs : {Charset::Utf8, Charset::Gb2312}) {
    Body back;
    std::string e2;
    std::string bytes = b.encode(cs);
    check(back.decode(bytes, "", e2));
    check(back.kind() == body.kind());
    check(back.sn() == body.sn());
    // GB18030 maps all of Unicode, so the text comes back, except for the documented ambiguity
    // of the charset rule: GB18030 bytes that happen to be valid UTF-8 are read as UTF-8.
    bool non_ascii = std::any_of(bytes.begin(), bytes.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
    bool ambiguous = cs == Charset::Gb2312 && non_ascii && junction::sip::is_valid_utf8(bytes);
    if (!ambiguous) {
      check(back.cmd_type() == body.cmd_type());
      check(back.device_id() == body.device_id());
    }
  }
  return 0;
}
