// Unit tests of the core's small pieces: handle table, stream framer, metrics, KV store, config.
#include "config/config.hpp"
#include "handles.hpp"
#include "host/framer.hpp"
#include "store/kv_store.hpp"
#include "util/metrics.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <vector>

using namespace junction;

TEST_CASE("handle table refuses stale handles after reuse") {
  HandleTable<int> t;
  jn_handle a = t.insert(std::make_unique<int>(1));
  CHECK(a != JN_INVALID_HANDLE);
  CHECK(*t.get(a) == 1);
  CHECK(t.erase(a));
  CHECK(t.get(a) == nullptr);
  jn_handle b = t.insert(std::make_unique<int>(2));
  CHECK((a & 0xffffffff) == (b & 0xffffffff));  // same slot reused...
  CHECK(a != b);                                // ...with a new generation
  CHECK(t.get(a) == nullptr);
  CHECK(*t.get(b) == 2);
  CHECK(t.get(0) == nullptr);
  CHECK(t.get(0xffffffffffffffffull) == nullptr);
  CHECK(t.size() == 1);
}

namespace {
struct Collected {
  std::vector<std::string> frames;
  std::vector<size_t> oversize;
};
Collected feed_all(StreamFramer& f, const std::vector<std::string>& chunks) {
  Collected c;
  for (auto& ch : chunks)
    f.feed(ch.data(), ch.size(), [&](std::string_view s) { c.frames.emplace_back(s); return true; },
           [&](size_t n) { c.oversize.push_back(n); return true; });
  return c;
}
}  // namespace

TEST_CASE("DELIM framing: split across chunks, several per chunk, oversize resync") {
  StreamFramer f(JN_FRAME_DELIM, 0, 8);
  using namespace std::string_literals;
  auto c = feed_all(f, {"ab"s, "c\0de\0"s, "\0"s, "fgh"s, "\0"s});
  CHECK(c.frames == std::vector<std::string>{"abc", "de", "fgh"});  // empty frames are skipped
  CHECK(c.oversize.empty());
  auto d = feed_all(f, {"0123456789"s, "xyz\0ok\0"s});
  CHECK(d.oversize.size() == 1);
  CHECK(d.frames == std::vector<std::string>{"ok"});  // resynchronised after the delimiter
  auto e = feed_all(f, {"012345678\0"s, "1234\0"s});
  CHECK(e.oversize == std::vector<size_t>{9});
  CHECK(e.frames == std::vector<std::string>{"1234"});
  std::string out;
  CHECK(f.encode("hi", out));
  CHECK(out == "hi\0"s);
  CHECK_FALSE(f.encode("a\0b"s, out));
}

TEST_CASE("LEN16 framing (RFC 4571): byte by byte, oversize skipped in sync") {
  StreamFramer f(JN_FRAME_LEN16, 0, 4);
  std::string wire;
  std::string tmp;
  for (auto s : {"ab", "abcd", "toolong", "x"}) {
    std::string frame(s);
    wire.push_back(static_cast<char>(frame.size() >> 8));
    wire.push_back(static_cast<char>(frame.size()));
    wire += frame;
  }
  std::vector<std::string> bytes;
  for (char ch : wire) bytes.emplace_back(1, ch);
  auto c = feed_all(f, bytes);
  CHECK(c.frames == std::vector<std::string>{"ab", "abcd", "x"});
  CHECK(c.oversize == std::vector<size_t>{7});
  CHECK(f.buffered() == 0);
  CHECK(f.encode("hey", tmp));
  CHECK(tmp == std::string("\0\3hey", 5));
  CHECK_FALSE(f.encode(std::string(70000, 'a'), tmp));
}

TEST_CASE("SIP framing (RFC 3261 18.3): Content-Length bodies, compact form, keepalives, byte by byte") {
  const std::string reg = "REGISTER sip:a SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n";
  const std::string msg = "MESSAGE sip:a SIP/2.0\r\nl : 5\r\nContent-Type: text/plain\r\n\r\nhello";
  const std::string folded = "INFO sip:a SIP/2.0\r\nSubject: x\r\n y\r\ncontent-LENGTH:\t3 \r\n\r\nabc";
  const std::string no_length = "OPTIONS sip:a SIP/2.0\r\nVia: x\r\n\r\n";
  std::string wire = "\r\n" + reg + "\r\n\r\n" + msg + folded + "\r\n" + no_length;
  std::vector<std::string> bytes;
  for (char ch : wire) bytes.emplace_back(1, ch);
  StreamFramer f(JN_FRAME_SIP, 0, 4096);
  auto c = feed_all(f, bytes);
  CHECK(c.frames == std::vector<std::string>{reg, "\r\n\r\n", msg, folded, no_length});
  CHECK(c.oversize.empty());
  CHECK_FALSE(f.broken());
  CHECK(f.buffered() == 0);
  // Several messages in one chunk.
  StreamFramer g(JN_FRAME_SIP, 0, 4096);
  auto d = feed_all(g, {reg + msg + reg});
  CHECK(d.frames == std::vector<std::string>{reg, msg, reg});
}

TEST_CASE("SIP framing: a stream that lies about its length is broken, not trusted") {
  using V = std::vector<std::string>;
  for (const std::string& bad : V{"INVITE sip:a SIP/2.0\r\nContent-Length: 12x\r\n\r\n",
                                   "INVITE sip:a SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\nab",
                                   "INVITE sip:a SIP/2.0\r\nContent-Length: -1\r\n\r\n",
                                   "INVITE sip:a SIP/2.0\r\nContent-Length: 99999999999\r\n\r\n",
                                   "INVITE sip:a SIP/2.0\r\nContent-Length: 5000\r\n\r\n"}) {
    StreamFramer f(JN_FRAME_SIP, 0, 1024);
    auto c = feed_all(f, {bad, "OPTIONS sip:b SIP/2.0\r\nContent-Length: 0\r\n\r\n"});
    CHECK(f.broken());
    CHECK(std::string(f.broken_reason()).size() > 0);
    CHECK(c.oversize.size() == 1);
    CHECK(c.frames.empty());  // nothing after the lie is framed
  }
  StreamFramer h(JN_FRAME_SIP, 0, 64);
  auto e = feed_all(h, {std::string(65, 'A')});  // no end of headers within max_frame
  CHECK(h.broken());
  CHECK(e.oversize == std::vector<size_t>{65});
  StreamFramer same(JN_FRAME_SIP, 0, 1024);  // a repeated, equal Content-Length is fine
  auto ok = feed_all(same, {"MESSAGE sip:a SIP/2.0\r\nContent-Length: 2\r\nl: 2\r\n\r\nhi"});
  CHECK(ok.frames.size() == 1);
  CHECK_FALSE(same.broken());
}

TEST_CASE("framer stops when the callback says the connection is closing") {
  StreamFramer f(JN_FRAME_DELIM, '\n', 100);
  int n = 0;
  std::string in = "a\nb\nc\n";
  f.feed(in.data(), in.size(), [&](std::string_view) { return ++n < 2; }, [](size_t) { return true; });
  CHECK(n == 2);
}

TEST_CASE("metrics: prometheus text, labels, removal") {
  Metrics m;
  *m.counter("jn_x_total", "plugin=\"a\"", "help text") += 3;
  m.set("jn_g", "", 1.5);
  m.computed("jn_c", "", [] { return 7.0; });
  std::string t = m.prometheus_text();
  CHECK(t.find("# HELP jn_x_total help text\n# TYPE jn_x_total counter\njn_x_total{plugin=\"a\"} 3\n") != std::string::npos);
  CHECK(t.find("jn_g 1.5\n") != std::string::npos);
  CHECK(t.find("jn_c 7\n") != std::string::npos);
  CHECK(t.find("# TYPE jn_c gauge\n") != std::string::npos);
  m.computed("jn_copies_total", "", [] { return 2.0; });
  CHECK(m.prometheus_text().find("# TYPE jn_copies_total counter\njn_copies_total 2\n") != std::string::npos);
  CHECK(m.counter_value("jn_x_total", "plugin=\"a\"") == 3);
  m.remove_matching("plugin=\"a\"");
  CHECK(m.prometheus_text().find("jn_x_total") == std::string::npos);
  CHECK(Metrics::valid_name("a_b:c1"));
  CHECK_FALSE(Metrics::valid_name("1abc"));
  CHECK_FALSE(Metrics::valid_name("a-b"));
  CHECK_FALSE(Metrics::valid_name(""));
}

TEST_CASE("kv store: owners are isolated, scan is ordered and prefix-bounded, data persists") {
  auto path = std::filesystem::temp_directory_path() / "jn-kv-test.db";
  std::filesystem::remove(path);
  {
    KvStore kv(path.string());
    CHECK(kv.put("a", "room/1", "x"));
    CHECK(kv.put("a", "room/2", std::string("b\0in", 4)));
    CHECK(kv.put("a", "rooms", "no"));
    CHECK(kv.put("b", "room/1", "other"));
    CHECK(kv.put("a", "room/1", "y"));  // overwrite
    CHECK(*kv.get("a", "room/1") == "y");
    CHECK(*kv.get("b", "room/1") == "other");
    CHECK_FALSE(kv.get("c", "room/1"));
    auto rows = kv.scan("a", "room/");
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].first == "room/1");
    CHECK(rows[1].second == std::string("b\0in", 4));
    CHECK(kv.del("a", "room/1"));
    CHECK_FALSE(kv.del("a", "room/1"));
  }
  KvStore again(path.string());
  CHECK(*again.get("a", "room/2") == std::string("b\0in", 4));
  CHECK_FALSE(again.get("a", "room/1"));
  std::filesystem::remove(path);
}

TEST_CASE("config: file:line messages for bad values, duplicate listens") {
  auto dir = std::filesystem::temp_directory_path() / "jn-conf-test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "plugins");
  auto write = [](const std::filesystem::path& p, const std::string& s) { std::ofstream(p) << s; };
  std::string core = "[server]\nstate_dir = \"" + (dir / "var").string() + "\"\n[plugins]\nconf_dir = \"" +
                     (dir / "plugins").string() + "\"\ndir = \"" + dir.string() + "\"\nenabled = [\"p\"]\n";
  write(dir / "j.toml", core);
  write(dir / "plugins" / "p.toml", "listen = \"127.0.0.1:7600\"\nnested = { x_listen = \"127.0.0.1:9\" }\n");
  write(dir / "p.so", "");
  try {
    load_config((dir / "j.toml").string());
    FAIL("duplicate listen accepted");
  } catch (const ConfigError& e) {
    std::string m = e.what();
    CHECK(m.find("p.toml:1 (listen): duplicate listen address 127.0.0.1:7600") != std::string::npos);
  }
  write(dir / "plugins" / "p.toml", "listen = \"127.0.0.1:7601\"\nnested = { x_listen = \"127.0.0.1:9\" }\n");
  CoreConfig c = load_config((dir / "j.toml").string());
  REQUIRE(c.plugins.size() == 1);
  CHECK(c.plugins[0].settings["nested"]["x_listen"] == "127.0.0.1:9");
  CHECK(plugin_listen_addrs(c.plugins[0]).size() == 2);
  CHECK(c.plugins[0].key_lines.at("listen") == 1);
  write(dir / "j.toml", core + "\n[admin]\nlisten = 7600\n");
  CHECK_THROWS_WITH_AS(load_config((dir / "j.toml").string()), doctest::Contains("'admin.listen' must be a string, not integer"), ConfigError);
  std::filesystem::remove_all(dir);
}
