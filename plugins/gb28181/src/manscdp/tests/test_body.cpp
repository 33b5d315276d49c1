// Body layer: the document's own samples (tests/samples/, copied verbatim from the document, with
// its defects), charsets, the pre-scrub, every refusal, encoding.
#include "body.hpp"

#include <junction/sip/charset.hpp>

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

using namespace junction::gb;

namespace {
std::string sample(const char* name) {
  std::ifstream f(std::string(JN_MANSCDP_TEST_DIR) + "/samples/" + name, std::ios::binary);
  REQUIRE_MESSAGE(f.good(), name);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

Body decoded(const std::string& raw, std::string_view ct = "Application/MANSCDP+xml") {
  Body b;
  std::string error;
  bool ok = b.decode(raw, ct, error);
  INFO(error);
  REQUIRE(ok);
  CHECK(error.empty());
  return b;
}

std::string refused(const std::string& raw, const BodyLimits& limits = BodyLimits{}) {
  Body b;
  std::string error;
  CHECK_FALSE(b.decode(raw, "Application/MANSCDP+xml", error, limits));
  CHECK_FALSE(error.empty());
  return error;
}
}  // namespace

TEST_CASE("document samples: root kind, CmdType, SN, DeviceID") {
  struct Case {
    const char* file;
    RootKind kind;
    const char* cmd;
    uint32_t sn;
    const char* device;
  };
  const Case cases[] = {
      {"keepalive.xml", RootKind::Notify, "Keepalive", 2749, "130909113319427420"},
      {"catalog_query_flow.xml", RootKind::Query, "Catalog", 471, "130909113319427420"},
      {"catalog_response_flow.xml", RootKind::Response, "Catalog", 1708, "62010201001320000393"},
      {"catalog_query.xml", RootKind::Query, "Catalog", 1708, "62010201001320000393"},
      {"catalog_response.xml", RootKind::Response, "Catalog", 1708, "62010201001320000393"},
      {"deviceinfo_query.xml", RootKind::Query, "DeviceInfo", 1708, "62010201001320000393"},
      // The document's defect: the DeviceInfo / DeviceStatus answers say CmdType Catalog.
      {"deviceinfo_response.xml", RootKind::Response, "Catalog", 1708, "62010201001320000393"},
      {"devicestatus_query.xml", RootKind::Query, "DeviceStatus", 1708, "62010201001320000393"},
      {"devicestatus_response.xml", RootKind::Response, "Catalog", 1708, "xxx"},
      {"ptz_control.xml", RootKind::Control, "DeviceControl", 130, "xxx"},
      {"control_result.xml", RootKind::Control, "DeviceControl", 130, "xxx"},
      {"recordinfo_query.xml", RootKind::Query, "RecordInfo", 10000, "xxx"},
      {"recordinfo_response.xml", RootKind::Response, "RecordInfo", 17430, "xxx"},
      {"alarm_subscribe.xml", RootKind::Query, "Alarm", 130, "xxx"},
      {"alarm_notify.xml", RootKind::Notify, "Alarm", 2, "xxx"},
      {"alarm_response.xml", RootKind::Response, "Alarm", 2, "xxx"},
      {"mediastatus.xml", RootKind::Notify, "MediaStatus", 151, "xxx"},
  };
  for (const Case& c : cases) {
    INFO(c.file);
    Body b = decoded(sample(c.file));
    CHECK(b.kind() == c.kind);
    CHECK(b.cmd_type() == c.cmd);
    CHECK(b.has_sn());
    CHECK(b.sn() == c.sn);
    CHECK(b.device_id() == c.device);
  }
}

TEST_CASE("keepalive is recognised; other Notify bodies are not keepalives") {
  CHECK(decoded(sample("keepalive.xml")).is_keepalive());
  CHECK_FALSE(decoded(sample("alarm_notify.xml")).is_keepalive());
  CHECK_FALSE(decoded(sample("catalog_query.xml")).is_keepalive());
}

TEST_CASE("is_plain_keepalive: the plain keepalive forms, and everything unusual goes the full path") {
  // Accepted: the document's sample, the benchmark's form, no declaration, no Status, one line.
  const std::string plain[] = {
      sample("keepalive.xml"),
      "<?xml version=\"1.0\"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>17</SN>\r\n"
      "<DeviceID>34020000001320000001</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n",
      "<?xml version=\"1.0\" encoding=\"GB2312\"?><Notify><SN>1</SN><DeviceID>1</DeviceID><CmdType>Keepalive</CmdType></Notify>",
      "<Notify><CmdType>Keepalive</CmdType><SN>0</SN><DeviceID>x</DeviceID><Status>OK</Status></Notify>",
  };
  for (const std::string& b : plain) {
    INFO(b);
    CHECK(is_plain_keepalive(b));
    CHECK(decoded(b).is_keepalive());  // the fast path never says yes where decode() would not
  }
  // Refused by the fast path (decode() decides, whatever it says).
  const std::string unusual[] = {
      "",
      "<Notify><CmdType>Alarm</CmdType><SN>1</SN><DeviceID>1</DeviceID></Notify>",
      "<Notify><CmdType>keepalive</CmdType><SN>1</SN><DeviceID>1</DeviceID></Notify>",
      "<Notify><CmdType> Keepalive </CmdType><SN>1</SN><DeviceID>1</DeviceID></Notify>",
      "<Query><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>1</DeviceID></Query>",
      "<Notify><CmdType>Keepalive</CmdType><SN>1</SN></Notify>",                              // no DeviceID
      "<Notify><CmdType>Keepalive</CmdType><DeviceID>1</DeviceID></Notify>",                   // no SN
      "<Notify><CmdType>Keepalive</CmdType><SN>1x</SN><DeviceID>1</DeviceID></Notify>",
      "<Notify><CmdType>Keepalive</CmdType><SN>4294967296</SN><DeviceID>1</DeviceID></Notify>",
      "<Notify><CmdType>Keepalive</CmdType><SN>1</SN><SN>2</SN><DeviceID>1</DeviceID></Notify>",
      "<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>1</DeviceID><Info>x</Info></Notify>",
      "<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID a=\"1\">1</DeviceID></Notify>",
      "<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>1&amp;</DeviceID></Notify>",
      "<Notify><!-- c --><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>1</DeviceID></Notify>",
      "<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>1</DeviceID></Notify>x",
      "<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>1</DeviceID></Notify><Notify>",
      "<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>1</DeviceID>",                  // truncated
      "<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>\xB1\xA3</DeviceID></Notify>", // GB2312 bytes
      "<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>1</Device></Notify>",
      "<?xml version=\"1.0\"<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>1</DeviceID></Notify>",
      // Bytes outside printable ASCII and whitespace, wherever they are: the declaration, a text,
      // between elements, after the root.
      std::string("<?xml version=\"1.0\" encoding=\"\xB1\"?><Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>1</DeviceID></Notify>"),
      std::string("<?xml version=\"1.0\"\x01?><Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>1</DeviceID></Notify>"),
      std::string("<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>1</DeviceID><Status>O\x7fK</Status></Notify>"),
      std::string("<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>1\x00</DeviceID></Notify>", 78),
      std::string("<Notify>\x0b<CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>1</DeviceID></Notify>"),
      std::string("<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>1</DeviceID></Notify>\xEF\xBB\xBF"),
  };
  for (const std::string& b : unusual) {
    INFO(b);
    CHECK_FALSE(is_plain_keepalive(b));
  }
}

TEST_CASE("the document's `<! --` comments are scrubbed, then parsed as comments") {
  std::string raw = sample("catalog_response.xml");
  REQUIRE(raw.find("<! --") != std::string::npos);
  Body b = decoded(raw);
  CHECK(b.scrub_fixes() >= 10);
  pugi::xml_node item = b.root().child("DeviceList").child("Item");
  CHECK(std::string(item.child("Name").child_value()) == "Camera 01");
  CHECK(std::string(item.child("Status").child_value()) == "ON");
  CHECK(std::string(item.child("ParentID").child_value()) == "51000000002000000001");
  // Without the scrub pugixml refuses the text: the scrub is what makes it readable.
  pugi::xml_document d;
  CHECK_FALSE(d.load_string(raw.c_str()));
}

TEST_CASE("scrub_xml: unescaped & becomes &amp;, references are kept") {
  size_t fixes = 0;
  CHECK(scrub_xml("<a>Tom & Jerry</a>", &fixes) == "<a>Tom &amp; Jerry</a>");
  CHECK(fixes == 1);
  CHECK(scrub_xml("<a>&amp;&lt;&#20013;&#x4E2D;&quot;</a>", &fixes) == "<a>&amp;&lt;&#20013;&#x4E2D;&quot;</a>");
  CHECK(fixes == 0);
  CHECK(scrub_xml("<a>&&#;&#x;&1;</a>", &fixes) == "<a>&amp;&amp;#;&amp;#x;&amp;1;</a>");
  CHECK(fixes == 4);
  CHECK(scrub_xml("<!  --x-->", &fixes) == "<!--x-->");
  CHECK(fixes == 1);
  CHECK(scrub_xml("<!DOCTYPE a>", &fixes) == "<!DOCTYPE a>");
  CHECK(fixes == 0);
  // CDATA is left alone (a bare & is legal there); an unterminated one runs to the end.
  CHECK(scrub_xml("<a><![CDATA[x & <! -- y]]> & </a>", &fixes) == "<a><![CDATA[x & <! -- y]]> &amp; </a>");
  CHECK(fixes == 1);
  CHECK(scrub_xml("<a><![CDATA[x & y", &fixes) == "<a><![CDATA[x & y");
  CHECK(fixes == 0);
  // A body with an unescaped & (a camera named "A&B") decodes with its text intact.
  Body b = decoded("<?xml version=\"1.0\"?><Response><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>1</DeviceID>"
                   "<DeviceList Num=\"1\"><Item><DeviceID>2</DeviceID><Name>A&B</Name></Item></DeviceList></Response>");
  CHECK(std::string(b.root().child("DeviceList").child("Item").child("Name").child_value()) == "A&B");
  CHECK(b.scrub_fixes() == 1);
}

TEST_CASE("charsets: GB18030 bytes, UTF-8 labelled GB2312, UTF-8") {
  // "视频动检" in GB18030 (= GB2312) bytes, declared GB2312.
  std::string gb = "<?xml version=\"1.0\" encoding=\"GB2312\"?><Notify><CmdType>Alarm</CmdType><SN>2</SN>"
                   "<DeviceID>34020000001320000001</DeviceID><AlarmDescription>\xca\xd3\xc6\xb5\xb6\xaf\xbc\xec"
                   "</AlarmDescription></Notify>";
  Body b1 = decoded(gb);
  CHECK(b1.source_charset() == "gb18030");
  CHECK(b1.declared_charset() == "GB2312");
  CHECK(b1.text("AlarmDescription") == "视频动检");

  // The same text as UTF-8 while the declaration says GB2312 (what many devices send).
  std::string u8 = "<?xml version=\"1.0\" encoding=\"GB2312\"?><Notify><CmdType>Alarm</CmdType><SN>2</SN>"
                   "<DeviceID>34020000001320000001</DeviceID><AlarmDescription>视频动检</AlarmDescription></Notify>";
  Body b2 = decoded(u8);
  CHECK(b2.source_charset() == "utf-8");
  CHECK(b2.text("AlarmDescription") == "视频动检");

  // GB18030 bytes with no label at all, only the Content-Type's charset.
  std::string nolabel = "<Notify><CmdType>Alarm</CmdType><SN>2</SN><DeviceID>1</DeviceID><AlarmDescription>"
                        "\xc9\xe3\xcf\xf1\xbb\xfa</AlarmDescription></Notify>";
  Body b3 = decoded(nolabel, "Application/MANSCDP+xml; charset=GB2312");
  CHECK(b3.source_charset() == "gb18030");
  CHECK(b3.text("AlarmDescription") == "摄像机");

  // The document's alarm sample (UTF-8 with standalone="true", text between elements).
  Body b4 = decoded(sample("alarm_notify.xml"));
  CHECK(b4.text("AlarmDescription") == "视频动检");
  CHECK(b4.source_charset() == "utf-8");
}

TEST_CASE("refusals say why") {
  CHECK(refused("") == "body: empty");
  BodyLimits small;
  small.max_bytes = 64;
  CHECK(refused(sample("catalog_query.xml"), small).find("above the limit of 64") != std::string::npos);
  CHECK(refused("<Query><CmdType>Catalog</CmdType>").find("not XML") != std::string::npos);
  CHECK(refused("just text").find("not XML") != std::string::npos);
  CHECK(refused("<?xml version=\"1.0\"?>") == "body: not XML (No document element found at offset 21)");
  CHECK(refused("<Request><CmdType>Catalog</CmdType></Request>").find("<Request> is not Query/Control/Notify/Response") !=
        std::string::npos);
  CHECK(refused("<Query><SN>1</SN></Query>").find("has no CmdType") != std::string::npos);
  CHECK(refused("<Query><CmdType> </CmdType></Query>").find("has no CmdType") != std::string::npos);
  CHECK(refused("<Query><CmdType>Catalog</CmdType><SN>-1</SN></Query>").find("SN '-1' is not") != std::string::npos);
  CHECK(refused("<Query><CmdType>Catalog</CmdType><SN>4294967296</SN></Query>").find("not an unsigned 32-bit") !=
        std::string::npos);
  CHECK(refused("<Query><CmdType>Catalog</CmdType><SN>12a</SN></Query>").find("SN '12a'") != std::string::npos);
  CHECK(refused("<Query><CmdType>" + std::string(65, 'C') + "</CmdType></Query>").find("CmdType longer") !=
        std::string::npos);
  CHECK(refused("<Query><CmdType>Catalog</CmdType><DeviceID>" + std::string(65, '1') + "</DeviceID></Query>")
            .find("DeviceID longer") != std::string::npos);
  BodyLimits few;
  few.max_nodes = 10;
  CHECK(refused(sample("catalog_response.xml"), few).find("more than 10 XML nodes") != std::string::npos);
  std::string deep = "<Query><CmdType>Catalog</CmdType>";
  for (int i = 0; i < 40; ++i) deep += "<a>";
  for (int i = 0; i < 40; ++i) deep += "</a>";
  deep += "</Query>";
  CHECK(refused(deep).find("nested deeper than 32") != std::string::npos);
  // Root names are case-sensitive as in A.2 ("query" is not a MANSCDP root).
  CHECK(refused("<query><CmdType>Catalog</CmdType></query>").find("is not Query") != std::string::npos);
}

TEST_CASE("a UTF-8 byte-order mark before the declaration is accepted") {
  Body b = decoded("\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"UTF-8\"?><Notify><CmdType>Keepalive</CmdType><SN>3</SN>"
                   "<DeviceID>1</DeviceID></Notify>");
  CHECK(b.is_keepalive());
  CHECK(b.sn() == 3);
}

TEST_CASE("a body without SN decodes with has_sn false") {
  Body b = decoded("<Notify><CmdType>Keepalive</CmdType><DeviceID>1</DeviceID></Notify>");
  CHECK_FALSE(b.has_sn());
  CHECK(b.is_keepalive());
}

TEST_CASE("a failed decode leaves no stale root") {
  Body b = decoded(sample("keepalive.xml"));
  std::string error;
  CHECK_FALSE(b.decode("<nope", "", error));
  CHECK_FALSE(b.root());
}

TEST_CASE("encode: GB2312 declaration with GB18030 bytes, or UTF-8; round trip") {
  BodyBuilder b(RootKind::Control, "DeviceConfig", 77, "34020000001320000001");
  pugi::xml_node bp = b.add("BasicParam", "");
  b.add("Name", "摄像机 <1> & 2", bp);
  b.add("Expiration", 3600, bp);

  std::string gb = b.encode(Charset::Gb2312);
  CHECK(gb.rfind("<?xml version=\"1.0\" encoding=\"GB2312\"?>", 0) == 0);
  CHECK(gb.find("\xc9\xe3\xcf\xf1\xbb\xfa") != std::string::npos);  // 摄像机 in GB18030
  CHECK_FALSE(junction::sip::is_valid_utf8(gb));
  Body d1 = decoded(gb);
  CHECK(d1.kind() == RootKind::Control);
  CHECK(d1.cmd_type() == "DeviceConfig");
  CHECK(d1.sn() == 77);
  CHECK(std::string(d1.root().child("BasicParam").child("Name").child_value()) == "摄像机 <1> & 2");
  CHECK(d1.scrub_fixes() == 0);

  std::string u8 = b.encode(Charset::Utf8);
  CHECK(u8.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", 0) == 0);
  CHECK(u8.find("摄像机") != std::string::npos);
  Body d2 = decoded(u8);
  CHECK(std::string(d2.root().child("BasicParam").child("Expiration").child_value()) == "3600");
}

TEST_CASE("parse_charset") {
  Charset c{};
  CHECK((parse_charset("gb2312", c) && c == Charset::Gb2312));
  CHECK((parse_charset("GBK", c) && c == Charset::Gb2312));
  CHECK((parse_charset("GB18030", c) && c == Charset::Gb2312));
  CHECK((parse_charset("utf-8", c) && c == Charset::Utf8));
  CHECK((parse_charset("UTF8", c) && c == Charset::Utf8));
  CHECK_FALSE(parse_charset("latin1", c));
  CHECK(charset_label(Charset::Gb2312) == "GB2312");
}
