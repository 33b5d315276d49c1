// junction/sip/charset.hpp: GB2312 / GBK / GB18030 bodies to UTF-8, undeclared and lying labels,
// invalid sequences replaced.
#include <junction/sip/charset.hpp>

#include <doctest/doctest.h>

#include <string>

using namespace junction::sip;

namespace {
// "中国" in UTF-8 and in GB2312.
const std::string kUtf8 = "\xE4\xB8\xAD\xE5\x9B\xBD";
const std::string kGb = "\xD6\xD0\xB9\xFA";
// "镕" (U+9555): in GBK, not in GB2312.
const std::string kGbkOnlyUtf8 = "\xE9\x95\x95";
const std::string kGbkOnly = "\xE9\x46";
}  // namespace

TEST_CASE("sip charset: declared GB2312 / GBK / GB18030 and undeclared GB text become UTF-8") {
  std::string out;
  for (const char* label : {"GB2312", "gbk", "GB18030", ""}) {
    INFO(label);
    CHECK(to_utf8("<Name>" + kGb + "</Name>", label, out) == CharsetSource::Gb18030);
    CHECK(out == "<Name>" + kUtf8 + "</Name>");
  }
  CHECK(to_utf8(kGbkOnly, "GB2312", out) == CharsetSource::Gb18030);
  CHECK(out == kGbkOnlyUtf8);
  // GB18030 four-byte form: U+20000 (𠀀) = 95 32 82 36.
  CHECK(to_utf8("\x95\x32\x82\x36", "GB18030", out) == CharsetSource::Gb18030);
  CHECK(out == "\xF0\xA0\x80\x80");
}

TEST_CASE("sip charset: valid UTF-8 labelled GB2312 stays as it is") {
  std::string out;
  CHECK(to_utf8("<?xml version=\"1.0\" encoding=\"GB2312\"?><Name>" + kUtf8 + "</Name>", "GB2312", out) ==
        CharsetSource::Utf8);
  CHECK(out.find(kUtf8) != std::string::npos);
  CHECK(to_utf8("plain ascii", "GB2312", out) == CharsetSource::Utf8);
  CHECK(out == "plain ascii");
}

TEST_CASE("sip charset: invalid sequences are replaced, never a crash") {
  std::string out;
  // A lone lead byte at the end and an invalid pair.
  CHECK(to_utf8("a" + kGb + "\xFF\x20" + "\x81", "GB2312", out) == CharsetSource::Replaced);
  CHECK(out.rfind("a" + kUtf8, 0) == 0);
  CHECK(out.find("\xEF\xBF\xBD") != std::string::npos);
  CHECK(is_valid_utf8(out));
  // Every byte value, every position: the output is always valid UTF-8.
  std::string all;
  for (int i = 0; i < 256; ++i) all += char(i);
  to_utf8(all, "", out);
  CHECK(is_valid_utf8(out));
  to_utf8(all, "ISO-8859-1", out);
  CHECK(is_valid_utf8(out));
}

TEST_CASE("sip charset: the declared charset from Content-Type or the XML declaration") {
  CHECK(declared_charset("Application/MANSCDP+xml; charset=GB2312", "") == "GB2312");
  CHECK(declared_charset("text/plain;charset=\"utf-8\"", "") == "utf-8");
  CHECK(declared_charset("Application/MANSCDP+xml", "<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Query/>") ==
        "GB2312");
  CHECK(declared_charset("Application/MANSCDP+xml", "  <?xml version='1.0' encoding = 'gbk' ?>") == "gbk");
  CHECK(declared_charset("Application/MANSCDP+xml", "<Query/>").empty());
  CHECK(declared_charset("", "<?xml version=\"1.0\"?>").empty());
}

TEST_CASE("sip charset: UTF-8 validation and conversion back to GB18030") {
  CHECK(is_valid_utf8(kUtf8));
  CHECK_FALSE(is_valid_utf8(kGb));
  CHECK_FALSE(is_valid_utf8("\xC0\x80"));          // overlong
  CHECK_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
  CHECK_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  CHECK_FALSE(is_valid_utf8("\xE4\xB8"));          // truncated
  std::string gb;
  CHECK(utf8_to_gb18030("<a>" + kUtf8 + "</a>", gb));
  CHECK(gb == "<a>" + kGb + "</a>");
  CHECK_FALSE(utf8_to_gb18030("\xFF", gb));
}
