// CommandCenter over a fake DeviceLink with a fake clock: queries from the document's samples,
// aggregation, catalog model and events, controls, alarms, subscriptions, timeouts, reload.
#include "commands.hpp"
#include "fake_link.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

using namespace junction::gb;
using junction::gb::test::FakeLink;
using nlohmann::json;

namespace {

const std::string kDev = "34020000001320000001";

std::string sample(const char* name) {
  std::ifstream f(std::string(JN_MANSCDP_TEST_DIR) + "/samples/" + name, std::ios::binary);
  REQUIRE_MESSAGE(f.good(), name);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string with_sn(std::string xml, uint32_t sn) {
  return std::regex_replace(xml, std::regex("<SN>[0-9]+</SN>"), "<SN>" + std::to_string(sn) + "</SN>",
                            std::regex_constants::format_first_only);
}

Body decode(const std::string& raw) {
  Body b;
  std::string error;
  bool ok = b.decode(raw, "Application/MANSCDP+xml", error);
  INFO(error);
  REQUIRE(ok);
  return b;
}

struct Rig {
  FakeLink link;
  CommandCenter center;
  explicit Rig(CenterConfig cfg = CenterConfig{}) : center(link, cfg) { link.center = &center; }
  BodyAnswer feed(const std::string& raw, const std::string& from = kDev) { return center.on_body(from, decode(raw)); }
  // The body of the last MESSAGE sent, decoded.
  Body last_sent() {
    REQUIRE_FALSE(link.messages.empty());
    return decode(link.messages.back().body);
  }
  void ack_last(int status = 200) { center.on_message_outcome(link.messages.back().id, status); }
};

std::string catalog_item(const std::string& id, const std::string& extra = "") {
  return "<Item><DeviceID>" + id + "</DeviceID><Name>cam " + id.substr(id.size() - 3) +
         "</Name><CivilCode>340200</CivilCode><ParentID>" + kDev + "</ParentID><Status>ON</Status>" + extra + "</Item>";
}

std::string catalog_response(uint32_t sn, uint32_t sum, const std::vector<std::string>& items) {
  std::string s = "<?xml version=\"1.0\" encoding=\"GB2312\"?>\n<Response><CmdType>Catalog</CmdType><SN>" +
                  std::to_string(sn) + "</SN><DeviceID>" + kDev + "</DeviceID><SumNum>" + std::to_string(sum) +
                  "</SumNum><DeviceList Num=\"" + std::to_string(items.size()) + "\">";
  for (auto& i : items) s += i;
  return s + "</DeviceList></Response>";
}

std::string chan(int n) {
  char buf[32];
  snprintf(buf, sizeof buf, "34020000001310%06d", n);
  return buf;
}

std::string record_response(uint32_t sn, uint32_t sum, const std::vector<std::pair<std::string, std::string>>& spans) {
  std::string s = "<Response><CmdType>RecordInfo</CmdType><SN>" + std::to_string(sn) + "</SN><DeviceID>" + kDev +
                  "</DeviceID><Name>Camera 01</Name><SumNum>" + std::to_string(sum) + "</SumNum><RecordList Num=\"" +
                  std::to_string(spans.size()) + "\">";
  for (auto& [a, b] : spans)
    s += "<Item><DeviceID>" + kDev + "</DeviceID><StartTime>" + a + "</StartTime><EndTime>" + b +
         "</EndTime><Type>time</Type></Item>";
  return s + "</RecordList></Response>";
}

}  // namespace

TEST_CASE("Catalog query from the document's samples: body sent, response aggregated, model filled") {
  Rig r;
  StartResult s = r.center.query(kDev, QueryKind::Catalog, {}, 41);
  REQUIRE(s.ok);
  CHECK(s.sn >= 1);
  Body q = r.last_sent();
  CHECK(q.kind() == RootKind::Query);
  CHECK(q.cmd_type() == "Catalog");
  CHECK(q.sn() == s.sn);
  CHECK(q.device_id() == kDev);
  CHECK(q.declared_charset() == "GB2312");
  CHECK(r.link.timer_at == r.link.now + 10000);
  r.ack_last(200);
  CHECK(r.link.results.empty());  // the 200 to our MESSAGE is not the answer
  // The document's sample answer (SumNum 1), from the device, with our SN.
  BodyAnswer a = r.feed(with_sn(sample("catalog_response.xml"), s.sn));
  CHECK(a.status == 200);
  REQUIRE(r.link.results.size() == 1);
  const CommandResult& res = r.link.results[0];
  CHECK(res.tag == 41);
  CHECK(res.outcome == Outcome::Ok);
  CHECK(res.cmd == "Catalog");
  CHECK(res.data["sum_num"] == 1);
  REQUIRE(res.data["items"].size() == 1);
  CHECK(res.data["items"][0]["Name"] == "Camera 01");
  const DeviceCatalog* cat = r.center.catalog(kDev);
  REQUIRE(cat);
  REQUIRE(cat->channels.count("62010201001320000393"));
  const Channel& ch = cat->channels.at("62010201001320000393");
  CHECK(ch.name == "Camera 01");
  CHECK(ch.civil_code == "5100000000");
  CHECK(ch.parent_id == "51000000002000000001");
  CHECK(ch.status == "ON");
  CHECK(ch.fields.at("Manufacturer") == "Hikvision");
  CHECK(r.center.pending_count() == 0);
  CHECK(r.link.timer_at == 0);  // nothing left to time
}

TEST_CASE("DeviceInfo and DeviceStatus: the samples' CmdType Catalog is tolerated for the pending SN") {
  Rig r;
  StartResult s1 = r.center.query(kDev, QueryKind::DeviceInfo, {}, 1);
  StartResult s2 = r.center.query(kDev, QueryKind::DeviceStatus, {}, 2);
  REQUIRE((s1.ok && s2.ok));
  CHECK(s1.sn != s2.sn);
  CHECK(decode(r.link.messages[0].body).cmd_type() == "DeviceInfo");
  CHECK(decode(r.link.messages[1].body).cmd_type() == "DeviceStatus");
  CHECK(r.feed(with_sn(sample("devicestatus_response.xml"), s2.sn)).status == 200);
  CHECK(r.feed(with_sn(sample("deviceinfo_response.xml"), s1.sn)).status == 200);
  REQUIRE(r.link.results.size() == 2);
  CHECK(r.link.results[0].tag == 2);
  CHECK(r.link.results[0].outcome == Outcome::Ok);
  CHECK(r.link.results[0].data["Online"] == "ONLINE");
  CHECK(r.link.results[0].data["Encode"] == "ON");
  CHECK(r.link.results[1].tag == 1);
  CHECK(r.link.results[1].outcome == Outcome::Ok);
  CHECK(r.link.results[1].data["Manufacturer"] == "Hikvision");
  CHECK(r.link.results[1].data["Model"] == "IP Camera");
  // Not taken as a catalog set: no channel appeared.
  CHECK(r.center.catalog(kDev) == nullptr);
}

TEST_CASE("RecordInfo from the samples: query fields, answer") {
  Rig r;
  QueryParams q;
  q.start_time = "2023-10-14T00:00:00";
  q.end_time = "2023-10-14T23:00:00";
  StartResult s = r.center.query(kDev, QueryKind::RecordInfo, q, 7);
  REQUIRE(s.ok);
  Body b = r.last_sent();
  CHECK(b.text("StartTime") == "2023-10-14T00:00:00");
  CHECK(b.text("EndTime") == "2023-10-14T23:00:00");
  CHECK(b.text("Type") == "all");
  CHECK(b.text("Secrecy") == "0");
  CHECK(r.feed(with_sn(sample("recordinfo_response.xml"), s.sn)).status == 200);
  REQUIRE(r.link.results.size() == 1);
  CHECK(r.link.results[0].outcome == Outcome::Ok);
  CHECK(r.link.results[0].data["items"][0]["FileSize"] == "19396096");
  CHECK(r.link.results[0].data["items"][0]["StartTime"] == "2023-10-14T14:15:52");
}

TEST_CASE("RecordInfo needs well-formed times") {
  Rig r;
  QueryParams q;
  q.start_time = "2023-10-14 00:00";
  q.end_time = "2023-10-14T23:00:00";
  StartResult s = r.center.query(kDev, QueryKind::RecordInfo, q, 7);
  CHECK_FALSE(s.ok);
  CHECK(s.error.find("yyyy-MM-ddTHH:mm:ss") != std::string::npos);
  CHECK(r.link.messages.empty());
}

TEST_CASE("ConfigDownload, PresetQuery and Alarm queries") {
  Rig r;
  QueryParams q;
  q.config_type = "BasicParam";
  StartResult s1 = r.center.query(kDev, QueryKind::ConfigDownload, q, 1);
  REQUIRE(s1.ok);
  CHECK(r.last_sent().text("ConfigType") == "BasicParam");
  StartResult s2 = r.center.query(kDev, QueryKind::PresetQuery, {}, 2);
  REQUIRE(s2.ok);
  QueryParams qa;
  qa.start_priority = 1;
  qa.end_priority = 4;
  qa.alarm_method = 5;
  StartResult s3 = r.center.query(kDev, QueryKind::Alarm, qa, 3);
  REQUIRE(s3.ok);
  Body ab = r.last_sent();
  CHECK(ab.cmd_type() == "Alarm");
  CHECK(ab.text("StartAlarmPriority") == "1");
  CHECK(ab.text("AlarmMethod") == "5");

  r.feed("<Response><CmdType>ConfigDownload</CmdType><SN>" + std::to_string(s1.sn) + "</SN><DeviceID>" + kDev +
         "</DeviceID><Result>OK</Result><BasicParam><Name>gate</Name><Expiration>3600</Expiration>"
         "<HeartBeatInterval>60</HeartBeatInterval><HeartBeatCount>3</HeartBeatCount></BasicParam></Response>");
  r.feed("<Response><CmdType>PresetQuery</CmdType><SN>" + std::to_string(s2.sn) + "</SN><DeviceID>" + kDev +
         "</DeviceID><PresetList Num=\"2\"><Item><PresetID>1</PresetID><PresetName>door</PresetName></Item>"
         "<Item><PresetID>2</PresetID><PresetName>yard</PresetName></Item></PresetList></Response>");
  r.feed(with_sn(sample("alarm_response.xml"), s3.sn));
  REQUIRE(r.link.results.size() == 3);
  CHECK(r.link.results[0].data["BasicParam"]["HeartBeatInterval"] == "60");
  CHECK(r.link.results[1].data["PresetList"].size() == 2);
  CHECK(r.link.results[1].data["PresetList"][1]["PresetName"] == "yard");
  CHECK(r.link.results[2].outcome == Outcome::Ok);
  CHECK(r.link.results[2].data["Result"] == "OK");
}

TEST_CASE("Catalog split over 3 MESSAGEs completes at SumNum") {
  Rig r;
  StartResult s = r.center.query(kDev, QueryKind::Catalog, {}, 9);
  r.ack_last();
  r.link.advance(3000);
  r.feed(catalog_response(s.sn, 5, {catalog_item(chan(1)), catalog_item(chan(2))}));
  CHECK(r.link.results.empty());
  // Each MESSAGE pushes the deadline to at least now + idle (5 s), here beyond the first 10 s.
  r.link.advance(6000);
  r.feed(catalog_response(s.sn, 5, {catalog_item(chan(3)), catalog_item(chan(2))}));  // a repeat of 2
  CHECK(r.link.results.empty());
  CHECK(r.link.timer_at == r.link.now + 5000);
  r.link.advance(4000);
  r.feed(catalog_response(s.sn, 5, {catalog_item(chan(4)), catalog_item(chan(5))}));
  REQUIRE(r.link.results.size() == 1);
  CHECK(r.link.results[0].outcome == Outcome::Ok);
  CHECK(r.link.results[0].data["received"] == 5);
  CHECK(r.center.catalog(kDev)->channels.size() == 5);
}

TEST_CASE("a partial or unsolicited catalog set never wipes known channels") {
  Rig r;
  StartResult s = r.center.query(kDev, QueryKind::Catalog, {}, 1);
  r.feed(catalog_response(s.sn, 3, {catalog_item(chan(1)), catalog_item(chan(2)), catalog_item(chan(3))}));
  REQUIRE(r.center.catalog(kDev)->channels.size() == 3);
  // Unsolicited (no query pending, an SN of the device's own): merged.
  CHECK(r.feed(catalog_response(999, 3, {catalog_item(chan(2), "<Model>X9</Model>")})).status == 200);
  CHECK(r.center.catalog(kDev)->channels.size() == 3);
  CHECK(r.center.catalog(kDev)->channels.at(chan(2)).fields.at("Model") == "X9");
  // A partial UPDATE keeps the fields it does not carry.
  r.feed(catalog_response(1000, 1, {"<Item><DeviceID>" + chan(2) + "</DeviceID><Name>renamed</Name></Item>"}));
  const Channel& c2 = r.center.catalog(kDev)->channels.at(chan(2));
  CHECK(c2.name == "renamed");
  CHECK(c2.fields.at("Model") == "X9");
  CHECK(c2.civil_code == "340200");
  // A new query answered with 1 of 3 then a timeout: Partial, all 3 channels still known.
  StartResult s2 = r.center.query(kDev, QueryKind::Catalog, {}, 2);
  r.feed(catalog_response(s2.sn, 3, {catalog_item(chan(1))}));
  r.link.advance(60000);
  REQUIRE(r.link.results.size() == 2);
  CHECK(r.link.results[1].outcome == Outcome::Partial);
  CHECK(r.link.results[1].data["received"] == 1);
  CHECK(r.center.catalog(kDev)->channels.size() == 3);
}

TEST_CASE("RecordInfo over 3 MESSAGEs is merged and sorted by StartTime") {
  Rig r;
  QueryParams q;
  q.start_time = "2023-10-14T00:00:00";
  q.end_time = "2023-10-14T23:59:59";
  StartResult s = r.center.query(kDev, QueryKind::RecordInfo, q, 3);
  r.feed(record_response(s.sn, 5, {{"2023-10-14T12:00:00", "2023-10-14T12:30:00"},
                                   {"2023-10-14T01:00:00", "2023-10-14T01:30:00"}}));
  r.feed(record_response(s.sn, 5, {{"2023-10-14T23:00:00", "2023-10-14T23:30:00"}}));
  CHECK(r.link.results.empty());
  r.feed(record_response(s.sn, 5, {{"2023-10-14T05:00:00", "2023-10-14T05:10:00"},
                                   {"2023-10-14T01:00:00", "2023-10-14T01:00:10"}}));
  REQUIRE(r.link.results.size() == 1);
  const json& items = r.link.results[0].data["items"];
  REQUIRE(items.size() == 5);
  CHECK(items[0]["EndTime"] == "2023-10-14T01:00:10");  // same start: shorter span first
  CHECK(items[1]["StartTime"] == "2023-10-14T01:00:00");
  CHECK(items[2]["StartTime"] == "2023-10-14T05:00:00");
  CHECK(items[3]["StartTime"] == "2023-10-14T12:00:00");
  CHECK(items[4]["StartTime"] == "2023-10-14T23:00:00");
  CHECK(r.link.results[0].data["name"] == "Camera 01");
}

TEST_CASE("Catalog with SumNum 0 and no DeviceList completes at once, empty; without SumNum it waits") {
  Rig r;
  StartResult s = r.center.query(kDev, QueryKind::Catalog, {}, 3);
  r.feed("<Response><CmdType>Catalog</CmdType><SN>" + std::to_string(s.sn) + "</SN><DeviceID>" + kDev +
         "</DeviceID><SumNum>0</SumNum></Response>");
  REQUIRE(r.link.results.size() == 1);
  CHECK(r.link.results[0].outcome == Outcome::Ok);
  CHECK(r.link.results[0].data["items"].empty());
  StartResult s2 = r.center.query(kDev, QueryKind::Catalog, {}, 4);
  r.feed("<Response><CmdType>Catalog</CmdType><SN>" + std::to_string(s2.sn) + "</SN><DeviceID>" + kDev +
         "</DeviceID></Response>");
  CHECK(r.link.results.size() == 1);
  r.link.advance(60000);
  REQUIRE(r.link.results.size() == 2);
  CHECK(r.link.results[1].outcome == Outcome::Partial);
}

TEST_CASE("RecordInfo with SumNum 0 completes at once, empty") {
  Rig r;
  QueryParams q;
  q.start_time = "2023-10-14T00:00:00";
  q.end_time = "2023-10-14T23:59:59";
  StartResult s = r.center.query(kDev, QueryKind::RecordInfo, q, 3);
  r.feed(record_response(s.sn, 0, {}));
  REQUIRE(r.link.results.size() == 1);
  CHECK(r.link.results[0].outcome == Outcome::Ok);
  CHECK(r.link.results[0].data["items"].empty());
}

TEST_CASE("timeouts deliver what arrived; nothing = Timeout; a late answer is acknowledged and dropped") {
  Rig r;
  StartResult s1 = r.center.query(kDev, QueryKind::Catalog, {}, 1);
  StartResult s2 = r.center.query(kDev, QueryKind::DeviceInfo, {}, 2);
  r.center.on_message_outcome(r.link.messages[1].id, 200);
  r.feed(catalog_response(s1.sn, 4, {catalog_item(chan(1)), catalog_item(chan(2))}));
  r.link.advance(9999);
  CHECK(r.link.results.empty());
  r.link.advance(1);  // both due at +10 s (one catalog MESSAGE's idle extension ends earlier)
  REQUIRE(r.link.results.size() == 2);
  auto find = [&](uint64_t tag) -> const CommandResult* {
    for (auto& x : r.link.results)
      if (x.tag == tag) return &x;
    return nullptr;
  };
  const CommandResult* cat = find(1);
  const CommandResult* info = find(2);
  REQUIRE(cat);
  REQUIRE(info);
  CHECK(cat->outcome == Outcome::Partial);
  CHECK(cat->data["received"] == 2);
  CHECK(cat->data["sum_num"] == 4);
  CHECK(cat->error.find("2 of 4") != std::string::npos);
  CHECK(info->outcome == Outcome::Timeout);
  CHECK(info->error.find("accepted the MESSAGE but sent no response") != std::string::npos);
  CHECK(r.link.results.size() == 2);
  // Late answers: 200, no second result, nothing pending.
  CHECK(r.feed(with_sn(sample("deviceinfo_response.xml"), s2.sn)).status == 200);
  CHECK(r.link.results.size() == 2);
  CHECK(r.center.pending_count() == 0);
  CHECK(r.center.stats_json()["responses_unmatched"] == 1);
}

TEST_CASE("the first catalog answer must come within query_timeout_ms") {
  Rig r;
  r.center.query(kDev, QueryKind::Catalog, {}, 1);
  r.link.advance(9999);
  CHECK(r.link.results.empty());
  r.link.advance(1);
  REQUIRE(r.link.results.size() == 1);
  CHECK(r.link.results[0].outcome == Outcome::Timeout);
  CHECK(r.link.results[0].error == "no answer from the device");
}

TEST_CASE("aggregation is capped at query_max_ms even while MESSAGEs keep coming") {
  CenterConfig cfg;
  cfg.query_max_ms = 20000;
  Rig r(cfg);
  StartResult s = r.center.query(kDev, QueryKind::Catalog, {}, 1);
  for (int i = 0; i < 10 && r.link.results.empty(); ++i) {
    r.feed(catalog_response(s.sn, 100, {catalog_item(chan(i))}));
    r.link.advance(4000);
  }
  REQUIRE(r.link.results.size() == 1);
  CHECK(r.link.results[0].outcome == Outcome::Partial);
  CHECK(r.link.now - 1000000 <= 24000);
}

TEST_CASE("a MESSAGE refused by the device ends the command as Failed; a link refusal starts nothing") {
  Rig r;
  r.center.query(kDev, QueryKind::DeviceStatus, {}, 5);
  r.ack_last(404);
  REQUIRE(r.link.results.size() == 1);
  CHECK(r.link.results[0].outcome == Outcome::Failed);
  CHECK(r.link.results[0].sip_status == 404);
  CHECK(r.link.results[0].error == "MESSAGE answered 404");
  r.link.refuse_send = true;
  StartResult s = r.center.query(kDev, QueryKind::DeviceStatus, {}, 6);
  CHECK_FALSE(s.ok);
  CHECK(s.error == "device " + kDev + " is offline");
  CHECK(r.center.pending_count() == 0);
  CHECK(r.link.results.size() == 1);
}

TEST_CASE("the pending table is bounded, per device and in all") {
  CenterConfig cfg;
  cfg.max_pending_per_device = 2;
  cfg.max_pending = 3;
  Rig r(cfg);
  CHECK(r.center.query(kDev, QueryKind::DeviceStatus, {}, 1).ok);
  CHECK(r.center.query(kDev, QueryKind::DeviceStatus, {}, 2).ok);
  StartResult s3 = r.center.query(kDev, QueryKind::DeviceStatus, {}, 3);
  CHECK_FALSE(s3.ok);
  CHECK(s3.error.find("has 2 commands pending") != std::string::npos);
  CHECK(r.center.query("34020000001320000002", QueryKind::DeviceStatus, {}, 4).ok);
  StartResult s5 = r.center.query("34020000001320000003", QueryKind::DeviceStatus, {}, 5);
  CHECK_FALSE(s5.ok);
  CHECK(s5.error.find("pending table full") != std::string::npos);
  CHECK(r.center.pending_count() == 3);
}

TEST_CASE("SNs are unique per device among pending commands and wrap below 2^31") {
  Rig r;
  std::set<uint32_t> sns;
  for (int i = 0; i < 50; ++i) {
    StartResult s = r.center.query(kDev, QueryKind::DeviceStatus, {}, i);
    REQUIRE(s.ok);
    CHECK(sns.insert(s.sn).second);
  }
  // Near the top of the range the counter wraps to 1, skipping SNs still pending.
  FakeLink link;
  CommandCenter c(link);
  std::string error;
  REQUIRE(c.restore("{\"v\":1,\"next_sn\":2147483646}", error));
  CHECK(c.query(kDev, QueryKind::DeviceStatus, {}, 1).sn == 2147483646);
  CHECK(c.query(kDev, QueryKind::DeviceStatus, {}, 2).sn == 2147483647);
  CHECK(c.query(kDev, QueryKind::DeviceStatus, {}, 3).sn == 1);
  REQUIRE(c.restore(c.save(), error));
  std::string saved = c.save();
  // Force the counter back onto a pending SN: it is skipped.
  json st = json::parse(saved);
  st["next_sn"] = 1;
  REQUIRE(c.restore(st.dump(), error));
  CHECK(c.query(kDev, QueryKind::DeviceStatus, {}, 4).sn == 2);
}

TEST_CASE("a response matches only the device that was asked") {
  Rig r;
  StartResult s = r.center.query(kDev, QueryKind::DeviceStatus, {}, 1);
  CHECK(r.feed(with_sn(sample("devicestatus_response.xml"), s.sn), "34020000001320000099").status == 200);
  CHECK(r.link.results.empty());
  r.feed(with_sn(sample("devicestatus_response.xml"), s.sn));
  CHECK(r.link.results.size() == 1);
}

TEST_CASE("a Response without SN is refused with 400") {
  Rig r;
  BodyAnswer a = r.feed("<Response><CmdType>DeviceStatus</CmdType><DeviceID>1</DeviceID></Response>");
  CHECK(a.status == 400);
  CHECK(a.reason == "Response DeviceStatus without SN");
  CHECK(r.center.stats_json()["bodies_refused"] == 1);
}

TEST_CASE("bodies this layer does not handle are left to the plugin (status 0)") {
  Rig r;
  CHECK(r.feed(sample("keepalive.xml")).status == 0);
  CHECK(r.feed(sample("mediastatus.xml")).status == 0);
  CHECK(r.feed(sample("catalog_query.xml")).status == 0);
  CHECK(r.feed(sample("ptz_control.xml")).status == 0);
}

TEST_CASE("PTZ control without a Response: the body, then Ok on the MESSAGE's 200") {
  Rig r;
  PtzMove m;
  m.tilt = 1;
  m.tilt_speed = 0xFA;
  StartResult s = r.center.ptz(kDev, "34020000001310000001", ptz_move(m), 11);
  REQUIRE(s.ok);
  Body b = r.last_sent();
  CHECK(b.kind() == RootKind::Control);
  CHECK(b.cmd_type() == "DeviceControl");
  CHECK(b.device_id() == "34020000001310000001");
  CHECK(b.text("PTZCmd") == "A50F010800FA00B7");
  CHECK(r.link.results.empty());
  r.ack_last(200);
  REQUIRE(r.link.results.size() == 1);
  CHECK(r.link.results[0].outcome == Outcome::Ok);
  CHECK(r.link.results[0].cmd == "DeviceControl");
}

TEST_CASE("commands without a Response time out when the MESSAGE gets no final answer") {
  Rig r;
  r.center.teleboot(kDev, 1);
  CHECK(r.last_sent().text("TeleBoot") == "Boot");
  r.center.iframe(kDev, "", 2);
  CHECK(r.last_sent().text("IFameCmd") == "Send");
  r.link.advance(5000);
  REQUIRE(r.link.results.size() == 2);
  CHECK(r.link.results[0].outcome == Outcome::Timeout);
  CHECK(r.link.results[0].error == "no SIP answer to the MESSAGE");
}

TEST_CASE("commands with a Response: OK, ERROR, none, and the document's <Control> answer") {
  Rig r;
  StartResult g = r.center.guard(kDev, "", true, 1);
  CHECK(r.last_sent().text("GuardCmd") == "SetGuard");
  StartResult rec = r.center.record(kDev, "34020000001310000001", true, 2);
  CHECK(r.last_sent().text("RecordCmd") == "Record");
  StartResult ar = r.center.alarm_reset(kDev, "", 5, "2", 3);
  Body arb = r.last_sent();
  CHECK(arb.text("AlarmCmd") == "ResetAlarm");
  CHECK(std::string(arb.root().child("Info").child("AlarmMethod").child_value()) == "5");
  StartResult hp = r.center.home_position(kDev, "", HomePosition{true, 30, 4}, 4);
  Body hb = r.last_sent();
  CHECK(std::string(hb.root().child("HomePosition").child("PresetIndex").child_value()) == "4");
  CHECK(std::string(hb.root().child("HomePosition").child("ResetTime").child_value()) == "30");
  r.center.guard(kDev, "", false, 5);
  CHECK(r.last_sent().text("GuardCmd") == "ResetGuard");
  for (auto& msg : r.link.messages) r.center.on_message_outcome(msg.id, 200);
  CHECK(r.link.results.empty());  // a 200 to the MESSAGE is not the Response

  auto resp = [&](uint32_t sn, const std::string& result) {
    return "<Response><CmdType>DeviceControl</CmdType><SN>" + std::to_string(sn) + "</SN><DeviceID>" + kDev +
           "</DeviceID><Result>" + result + "</Result></Response>";
  };
  r.feed(resp(g.sn, "OK"));
  r.feed(resp(rec.sn, "ERROR"));
  // The document's sample answer has a <Control> root.
  r.feed(with_sn(sample("control_result.xml"), ar.sn));
  r.feed("<Response><CmdType>DeviceControl</CmdType><SN>" + std::to_string(hp.sn) + "</SN><DeviceID>" + kDev +
         "</DeviceID></Response>");
  r.link.advance(5000);
  REQUIRE(r.link.results.size() == 5);
  CHECK(r.link.results[0].outcome == Outcome::Ok);
  CHECK(r.link.results[1].outcome == Outcome::DeviceError);
  CHECK(r.link.results[1].error == "device answered Result ERROR");
  // control_result.xml says <Result>...</Result>: not OK, so a device error.
  CHECK(r.link.results[2].tag == 3);
  CHECK(r.link.results[2].outcome == Outcome::DeviceError);
  CHECK(r.link.results[3].outcome == Outcome::DeviceError);
  CHECK(r.link.results[3].error == "Response without Result");
  CHECK(r.link.results[4].tag == 5);
  CHECK(r.link.results[4].outcome == Outcome::Timeout);
}

TEST_CASE("DeviceConfig BasicParam and SnapShotConfig") {
  Rig r;
  StartResult b = r.center.config_basic(kDev, "", BasicParam{"gate", 3600, 60, 3}, 1);
  REQUIRE(b.ok);
  Body bb = r.last_sent();
  CHECK(bb.cmd_type() == "DeviceConfig");
  CHECK(std::string(bb.root().child("BasicParam").child("HeartBeatInterval").child_value()) == "60");
  SnapShotConfig sc;
  sc.snap_num = 3;
  sc.interval_s = 2;
  sc.upload_url = "http://127.0.0.1:8080/gb/snapshot?token=x";
  sc.session_id = std::string(32, 'a') + "-1";
  StartResult s = r.center.config_snapshot(kDev, "", sc, 2);
  REQUIRE(s.ok);
  Body sb = r.last_sent();
  CHECK(std::string(sb.root().child("SnapShotConfig").child("SessionID").child_value()) == sc.session_id);
  CHECK(std::string(sb.root().child("SnapShotConfig").child("UploadURL").child_value()) == sc.upload_url);
  r.feed("<Response><CmdType>DeviceConfig</CmdType><SN>" + std::to_string(s.sn) + "</SN><DeviceID>" + kDev +
         "</DeviceID><Result>OK</Result></Response>");
  REQUIRE(r.link.results.size() == 1);
  CHECK(r.link.results[0].tag == 2);
  CHECK(r.link.results[0].outcome == Outcome::Ok);

  sc.session_id = "short";
  CHECK(r.center.config_snapshot(kDev, "", sc, 3).error.find("session_id must be 32..128") != std::string::npos);
  sc.session_id = std::string(40, 'b');
  sc.snap_num = 11;
  CHECK(r.center.config_snapshot(kDev, "", sc, 3).error.find("snap_num must be 1..10") != std::string::npos);
  sc.snap_num = 1;
  sc.upload_url = "ftp://x";
  CHECK_FALSE(r.center.config_snapshot(kDev, "", sc, 3).ok);
  CHECK(r.center.config_basic(kDev, "", BasicParam{}, 4).error == "BasicParam: nothing to set");

  // The transfer-complete notification becomes an event.
  CHECK(r.feed("<Notify><CmdType>UploadSnapShotFinished</CmdType><SN>9</SN><DeviceID>" + kDev +
               "</DeviceID><SessionID>" + sc.session_id +
               "</SessionID><SnapShotList><SnapShotFileID>f1</SnapShotFileID><SnapShotFileID>f2</SnapShotFileID>"
               "</SnapShotList></Notify>")
            .status == 200);
  REQUIRE(r.link.events.size() == 1);
  CHECK(r.link.events[0].first == "gb/snapshot/" + kDev);
  CHECK(r.link.events[0].second["files"] == json::array({"f1", "f2"}));
}

TEST_CASE("a Response whose SumNum is not a number is refused with 400 and changes nothing") {
  Rig r;
  StartResult s = r.center.query(kDev, QueryKind::Catalog, {}, 9);
  r.ack_last();
  r.feed(catalog_response(s.sn, 3, {catalog_item(chan(1))}));
  std::string bad = catalog_response(s.sn, 3, {catalog_item(chan(2)), catalog_item(chan(3))});
  bad.replace(bad.find("<SumNum>3<"), 10, "<SumNum>x3<");
  BodyAnswer a = r.feed(bad);
  CHECK(a.status == 400);
  CHECK(a.reason.find("SumNum") != std::string::npos);
  CHECK(r.link.results.empty());
  CHECK(r.center.catalog(kDev)->channels.size() == 1);
  r.feed(catalog_response(s.sn, 3, {catalog_item(chan(2)), catalog_item(chan(3))}));
  REQUIRE(r.link.results.size() == 1);
  CHECK(r.link.results[0].outcome == Outcome::Ok);
}

TEST_CASE("alarm from the document's sample: 200, event alarm/gb/<device>, Response Result OK") {
  Rig r;
  r.link.charset = Charset::Utf8;
  BodyAnswer a = r.feed(sample("alarm_notify.xml"));
  CHECK(a.status == 200);
  REQUIRE(r.link.events.size() == 1);
  CHECK(r.link.events[0].first == "alarm/gb/" + kDev);
  const json& ev = r.link.events[0].second;
  CHECK(ev["device"] == kDev);
  CHECK(ev["channel"] == "xxx");
  CHECK(ev["port"] == "xxx");  // the zone an intercom screen shows: the alarmed channel
  CHECK(ev["priority"] == "1");
  CHECK(ev["method"] == "5");
  CHECK(ev["time"] == "2023-10-20T09:19:12");
  CHECK(ev["description"] == "视频动检");
  CHECK(ev["message"] == "视频动检");
  CHECK(ev["type"] == "2");
  CHECK(ev["event_type"] == "1");
  CHECK(ev["info"] == "11");
  REQUIRE(r.link.messages.size() == 1);
  Body resp = r.last_sent();
  CHECK(resp.kind() == RootKind::Response);
  CHECK(resp.cmd_type() == "Alarm");
  CHECK(resp.sn() == 2);
  CHECK(resp.device_id() == "xxx");
  CHECK(resp.text("Result") == "OK");
  // The outcome of that Response MESSAGE is nobody's command.
  r.ack_last(200);
  CHECK(r.link.results.empty());
}

TEST_CASE("catalog NOTIFY events: ADD, UPDATE, DEL, ON, OFF, VLOST, DEFECT") {
  Rig r;
  auto notify = [&](const std::string& items) {
    return "<?xml version=\"1.0\" encoding=\"GB2312\"?><Notify><CmdType>Catalog</CmdType><SN>5</SN><DeviceID>" + kDev +
           "</DeviceID><SumNum>1</SumNum><DeviceList Num=\"1\">" + items + "</DeviceList></Notify>";
  };
  auto item = [&](int n, const std::string& ev, const std::string& extra = "") {
    return "<Item><DeviceID>" + chan(n) + "</DeviceID><Event>" + ev + "</Event>" + extra + "</Item>";
  };
  CHECK(r.feed(notify(item(1, "ADD", "<Name>a</Name><Status>ON</Status>") + item(2, "ADD", "<Name>b</Name>"))).status ==
        200);
  const DeviceCatalog* c = r.center.catalog(kDev);
  REQUIRE(c);
  CHECK(c->channels.size() == 2);
  r.feed(notify(item(1, "UPDATE", "<Name>a2</Name>")));
  CHECK(c->channels.at(chan(1)).name == "a2");
  CHECK(c->channels.at(chan(1)).status == "ON");
  r.feed(notify(item(1, "OFF")));
  CHECK(c->channels.at(chan(1)).status == "OFF");
  r.feed(notify(item(1, "VLOST")));
  CHECK(c->channels.at(chan(1)).vlost);
  r.feed(notify(item(1, "DEFECT")));
  CHECK(c->channels.at(chan(1)).defect);
  r.feed(notify(item(1, "ON")));
  CHECK(c->channels.at(chan(1)).status == "ON");
  CHECK_FALSE(c->channels.at(chan(1)).vlost);
  CHECK_FALSE(c->channels.at(chan(1)).defect);
  CHECK(c->channels.at(chan(1)).name == "a2");  // an event without fields keeps them
  r.feed(notify(item(2, "DEL")));
  CHECK(c->channels.count(chan(2)) == 0);
  CHECK(c->channels.size() == 1);
  // Unknown events are logged and change nothing; the NOTIFY still gets its 200.
  CHECK(r.feed(notify(item(1, "EXPLODE"))).status == 200);
  CHECK(c->channels.at(chan(1)).status == "ON");
  CHECK(r.center.stats_json()["catalog_events_unknown"] == 1);
  // Each applied event is published.
  CHECK(r.link.events.size() == 8);
  CHECK(r.link.events.back().second["event"] == "DEL");
}

TEST_CASE("catalog tree: civil codes, business group, virtual organisation, cycles") {
  Rig r;
  std::string bg = "34020000002150000001", vo = "34020000002160000001";
  std::string items =
      "<Item><DeviceID>3402</DeviceID><Name>Hefei</Name></Item>"
      "<Item><DeviceID>" + bg + "</DeviceID><Name>Police</Name></Item>"
      "<Item><DeviceID>" + vo + "</DeviceID><Name>Station</Name><BusinessGroupID>" + bg + "</BusinessGroupID></Item>"
      "<Item><DeviceID>" + chan(1) + "</DeviceID><Name>c1</Name><ParentID>" + vo + "</ParentID></Item>"
      "<Item><DeviceID>" + chan(2) + "</DeviceID><Name>c2</Name><CivilCode>34020000</CivilCode></Item>"
      "<Item><DeviceID>" + chan(3) + "</DeviceID><ParentID>" + chan(4) + "</ParentID></Item>"
      "<Item><DeviceID>" + chan(4) + "</DeviceID><ParentID>" + chan(3) + "</ParentID></Item>"
      "<Item><DeviceID>" + chan(5) + "</DeviceID><ParentID>" + kDev + "/" + vo + "</ParentID></Item>";
  r.feed(catalog_response(1, 8, {items}));
  json t = r.center.catalog_tree(kDev);
  std::string dump = t.dump();
  // 34 -> 3402 (named) -> 340200 -> 34020000 -> c2
  json n34;
  for (auto& c : t["children"])
    if (c["id"] == "34") n34 = c;
  REQUIRE(n34.is_object());
  CHECK(n34["kind"] == "civil");
  CHECK(n34["children"][0]["id"] == "3402");
  CHECK(n34["children"][0]["name"] == "Hefei");
  CHECK(n34["children"][0]["children"][0]["children"][0]["children"][0]["id"] == chan(2));
  json nbg;
  for (auto& c : t["children"])
    if (c["id"] == bg) nbg = c;
  REQUIRE(nbg.is_object());
  CHECK(nbg["kind"] == "business_group");
  CHECK(nbg["children"][0]["id"] == vo);
  CHECK(nbg["children"][0]["kind"] == "virtual_org");
  CHECK(nbg["children"][0]["children"].size() == 2);  // c1 and c5 (slash-path ParentID)
  // Both members of the ParentID cycle still appear.
  CHECK(dump.find(chan(3)) != std::string::npos);
  CHECK(dump.find(chan(4)) != std::string::npos);
}

TEST_CASE("subscriptions: SUBSCRIBE, refresh at half the granted time, retries, unsubscribe") {
  Rig r;
  StartResult s = r.center.subscribe(kDev, SubKind::Catalog, 0, {}, 21);
  REQUIRE(s.ok);
  REQUIRE(r.link.subscribes.size() == 1);
  CHECK(r.link.subscribes[0].expires == 3600);
  CHECK(r.link.subscribes[0].kind == SubKind::Catalog);
  Body sb = decode(r.link.subscribes[0].body);
  CHECK(sb.kind() == RootKind::Query);
  CHECK(sb.cmd_type() == "Catalog");
  CHECK(r.link.timer_at == r.link.now + 5000);  // the answer is awaited
  r.center.on_subscribe_outcome(kDev, SubKind::Catalog, 200, 600);
  REQUIRE(r.link.results.size() == 1);
  CHECK(r.link.results[0].cmd == "Subscribe:Catalog");
  CHECK(r.link.results[0].outcome == Outcome::Ok);
  CHECK(r.link.results[0].data["expires"] == 600);
  CHECK(r.link.timer_at == r.link.now + 300000);
  r.link.advance(299999);
  CHECK(r.link.subscribes.size() == 1);
  r.link.advance(1);
  REQUIRE(r.link.subscribes.size() == 2);
  CHECK(r.link.subscribes[1].expires == 3600);
  // The refresh fails: retried 30 s later, the subscription kept.
  r.center.on_subscribe_outcome(kDev, SubKind::Catalog, 481, 0);
  CHECK(r.link.results.size() == 1);  // no second result
  r.link.advance(30000);
  REQUIRE(r.link.subscribes.size() == 3);
  r.center.on_subscribe_outcome(kDev, SubKind::Catalog, 200, 3600);
  json subs = r.center.subscriptions_json();
  REQUIRE(subs.size() == 1);
  CHECK(subs[0]["active"] == true);
  CHECK(subs[0]["expires_s"] == 3600);
  // 3600 s: refresh at 1800 s (half), well before the end.
  CHECK(r.link.timer_at == r.link.now + 1800000);
  r.center.unsubscribe(kDev, SubKind::Catalog);
  REQUIRE(r.link.subscribes.size() == 4);
  CHECK(r.link.subscribes[3].expires == 0);
  CHECK(r.center.subscriptions_json().empty());
  CHECK(r.link.timer_at == 0);
}

TEST_CASE("alarm subscription: body fields; no answer = Timeout; refused = Failed") {
  Rig r;
  QueryParams q;
  q.start_priority = 1;
  q.end_priority = 4;
  r.center.subscribe(kDev, SubKind::Alarm, 300, q, 1);
  Body b = decode(r.link.subscribes[0].body);
  CHECK(b.cmd_type() == "Alarm");
  CHECK(b.text("EndAlarmPriority") == "4");
  CHECK(r.link.subscribes[0].expires == 300);
  r.link.advance(5000);
  REQUIRE(r.link.results.size() == 1);
  CHECK(r.link.results[0].outcome == Outcome::Timeout);
  CHECK(r.center.subscriptions_json().empty());
  r.center.subscribe(kDev, SubKind::Alarm, 300, q, 2);
  r.center.on_subscribe_outcome(kDev, SubKind::Alarm, 489, 0);
  REQUIRE(r.link.results.size() == 2);
  CHECK(r.link.results[1].outcome == Outcome::Failed);
  CHECK(r.link.results[1].error == "SUBSCRIBE answered 489");
}

TEST_CASE("save/restore mid-aggregation: the new instance completes the query") {
  FakeLink link;
  std::string saved;
  uint32_t sn = 0;
  uint64_t first_msg = 0;
  {
    CommandCenter c(link);
    link.center = &c;
    StartResult s = c.query(kDev, QueryKind::Catalog, {}, 77);
    sn = s.sn;
    first_msg = link.messages.back().id;
    c.on_message_outcome(first_msg, 200);
    c.on_body(kDev, decode(catalog_response(sn, 5, {catalog_item(chan(1)), catalog_item(chan(2))})));
    c.subscribe(kDev, SubKind::Alarm, 600, {}, 78);
    c.on_subscribe_outcome(kDev, SubKind::Alarm, 200, 600);
    saved = c.save();
    link.center = nullptr;
  }
  REQUIRE(link.results.size() == 1);  // the subscription's
  link.timer_at = 0;
  FakeLink link2;
  link2.now = link.now + 1000;
  CommandCenter c2(link2);
  link2.center = &c2;
  std::string error;
  REQUIRE(c2.restore(saved, error));
  CHECK(error.empty());
  CHECK(c2.pending_count() == 1);
  CHECK(link2.timer_at != 0);  // re-armed
  CHECK(c2.catalog(kDev)->channels.size() == 2);
  CHECK(c2.subscriptions_json().size() == 1);
  // A new command gets a fresh SN and a fresh MESSAGE id.
  StartResult other = c2.query(kDev, QueryKind::DeviceStatus, {}, 79);
  CHECK(other.sn != sn);
  CHECK(link2.messages.back().id > first_msg);
  // The rest of the catalog, one item repeated.
  c2.on_body(kDev, decode(catalog_response(sn, 5, {catalog_item(chan(2)), catalog_item(chan(3))})));
  CHECK(link2.results.empty());
  c2.on_body(kDev, decode(catalog_response(sn, 5, {catalog_item(chan(4)), catalog_item(chan(5))})));
  REQUIRE(link2.results.size() == 1);
  CHECK(link2.results[0].tag == 77);
  CHECK(link2.results[0].outcome == Outcome::Ok);
  CHECK(link2.results[0].data["received"] == 5);
  CHECK(c2.catalog(kDev)->channels.size() == 5);
  // A save of the restored instance is identical in content to a save/restore round trip.
  FakeLink link3;
  CommandCenter c3(link3);
  REQUIRE(c3.restore(c2.save(), error));
  CHECK(json::parse(c3.save()) == json::parse(c2.save()));
}

TEST_CASE("restore refuses what it cannot read, and keeps its state") {
  FakeLink link;
  CommandCenter c(link);
  c.on_body(kDev, decode(catalog_response(1, 1, {catalog_item(chan(1))})));
  std::string error;
  CHECK_FALSE(c.restore("not json", error));
  CHECK(error == "manscdp state: not a JSON object");
  CHECK_FALSE(c.restore("{\"v\":2}", error));
  CHECK(error == "manscdp state: version is not 1");
  CHECK_FALSE(c.restore("{\"v\":1,\"pending\":[{\"id\":\"x\"}]}", error));
  CHECK(error.rfind("manscdp state: ", 0) == 0);
  CHECK(c.catalog(kDev)->channels.size() == 1);
}

TEST_CASE("forget_device ends its commands and drops its catalog and subscriptions") {
  Rig r;
  r.center.query(kDev, QueryKind::Catalog, {}, 1);
  r.feed(catalog_response(999, 1, {catalog_item(chan(1))}));
  r.center.subscribe(kDev, SubKind::Catalog, 60, {}, 2);
  r.center.forget_device(kDev);
  REQUIRE(r.link.results.size() == 2);
  CHECK(r.link.results[0].outcome == Outcome::Failed);
  CHECK(r.link.results[0].error == "device removed");
  CHECK(r.center.catalog(kDev) == nullptr);
  CHECK(r.center.subscriptions_json().empty());
  CHECK(r.link.timer_at == 0);
}

TEST_CASE("catalog channel limit per device") {
  CenterConfig cfg;
  cfg.max_channels_per_device = 2;
  Rig r(cfg);
  r.feed(catalog_response(1, 3, {catalog_item(chan(1)), catalog_item(chan(2)), catalog_item(chan(3))}));
  CHECK(r.center.catalog(kDev)->channels.size() == 2);
  CHECK(r.center.stats_json()["catalog_channels_dropped"] == 1);
}
