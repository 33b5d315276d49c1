// Metrics: label values escaped per the Prometheus text exposition format, label strings from
// plugins validated, and the per-name series cap with its overflow series.
#include "util/metrics.hpp"

#include <doctest/doctest.h>

#include <regex>
#include <sstream>
#include <string>

using namespace junction;

namespace {

// Every sample line of the exposition must parse: name{l="v",...} value, with values made of
// escapes or characters other than '"', '\\' and newline.
bool exposition_parses(const std::string& text, int* samples) {
  static const std::regex line(R"re(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")*\})? \S+$)re");
  std::istringstream in(text);
  std::string l;
  *samples = 0;
  while (std::getline(in, l)) {
    if (l.rfind("# ", 0) == 0) continue;
    if (!std::regex_match(l, line)) {
      MESSAGE("bad line: " << l);
      return false;
    }
    ++*samples;
  }
  return true;
}

}  // namespace

TEST_CASE("metrics: label values are escaped (backslash, quote, newline)") {
  Metrics m;
  // What a plugin passes: the value of `path` holds a bare quote, a backslash and a newline.
  m.add("jn_req_total", "plugin=\"p\",path=\"/a\"b\\c\nd\"", 2);
  std::string t = m.prometheus_text();
  CHECK(t.find("jn_req_total{plugin=\"p\",path=\"/a\\\"b\\\\c\\nd\"} 2\n") != std::string::npos);
  int n = 0;
  CHECK(exposition_parses(t, &n));
  CHECK(n == 1);
  // Already-escaped input means the same value: one series, not two.
  m.add("jn_req_total", "plugin=\"p\",path=\"/a\\\"b\\\\c\\nd\"", 1);
  CHECK(m.prometheus_text().find("jn_req_total{plugin=\"p\",path=\"/a\\\"b\\\\c\\nd\"} 3\n") != std::string::npos);
  CHECK(Metrics::escape_label_value("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
}

TEST_CASE("metrics: label strings that do not parse are refused and counted") {
  Metrics m;
  const char* bad[] = {
      "1a=\"x\"",                  // name starts with a digit
      "a-b=\"x\"",                 // '-' in a name
      "a=x",                       // unquoted value
      "a=\"x",                     // unterminated
      "a=\"1\",a=\"2\"",           // repeated name
      "plugin=\"p\",plugin=\"q\"",  // a plugin naming itself someone else
      "__name__=\"x\"",            // reserved
      "a=\"1\",b",                  // a name without a value
      "=\"x\"",
      ",",
  };
  for (const char* l : bad) {
    INFO(std::string(l));
    std::string out, why;
    CHECK_FALSE(Metrics::normalize_labels(l, &out, &why));
    CHECK_FALSE(why.empty());
    m.add("jn_bad_total", l, 1);
  }
  CHECK(m.counter_value("junction_metric_labels_invalid_total") == std::size(bad));
  std::string t = m.prometheus_text();
  CHECK(t.find("jn_bad_total{") == std::string::npos);
  int n = 0;
  CHECK(exposition_parses(t, &n));

  std::string out, why;
  CHECK(Metrics::normalize_labels(" a = \"1\" , b=\"x,y\", ", &out, &why));
  CHECK(out == "a=\"1\",b=\"x,y\"");
  // A quote not followed by ',' or the end is part of the value (and gets escaped).
  CHECK(Metrics::normalize_labels("a=\"1\"b=\"2\"", &out, &why));
  CHECK(out == "a=\"1\\\"b=\\\"2\"");
  CHECK(Metrics::normalize_labels("", &out, &why));
  CHECK(out.empty());
}

TEST_CASE("metrics: series per name are capped; the excess goes to one overflow series") {
  Metrics m;
  m.set_series_cap(3);
  for (int i = 0; i < 5; ++i) m.add("jn_peer_total", "peer=\"" + std::to_string(i) + "\"", 10);
  m.add("jn_peer_total", "peer=\"0\"", 1);  // an existing series still counts normally
  m.add("jn_peer_total", "peer=\"99\"", 1);
  m.set("jn_peer_gauge", "peer=\"0\"", 1);  // another name has its own budget
  CHECK(m.counter_value("jn_peer_total", "peer=\"0\"") == 11);
  CHECK(m.counter_value("jn_peer_total", "peer=\"2\"") == 10);
  CHECK(m.counter_value("jn_peer_total", "peer=\"3\"") == 0);
  CHECK(m.counter_value("jn_peer_total", "overflow=\"true\"") == 21);
  CHECK(m.counter_value("junction_metric_series_dropped_total") == 3);
  std::string t = m.prometheus_text();
  int n = 0;
  CHECK(exposition_parses(t, &n));
  size_t series = 0;
  for (size_t p = t.find("\njn_peer_total{"); p != std::string::npos; p = t.find("\njn_peer_total{", p + 1)) ++series;
  CHECK(series == 4);  // 3 + overflow
  CHECK(t.find("jn_peer_gauge{peer=\"0\"} 1\n") != std::string::npos);

  Metrics d;  // the default cap
  CHECK(d.series_cap() == Metrics::kDefaultSeriesCap);
  for (int i = 0; i < 1500; ++i) d.add("jn_many_total", "k=\"" + std::to_string(i) + "\"", 1);
  CHECK(d.counter_value("junction_metric_series_dropped_total") == 500);
  CHECK(d.counter_value("jn_many_total", "overflow=\"true\"") == 500);
}

TEST_CASE("metrics: find_counter returns an existing canonical series only, and creates nothing") {
  // counter_add's per-slot cache keeps what find_counter returns: it must never hand out the
  // overflow series or the sink of unparseable labels (those paths count each sample).
  Metrics m;
  m.set_series_cap(1);
  CHECK(m.find_counter("x_total", "a=\"1\"") == nullptr);
  CHECK(m.counter_value("x_total", "a=\"1\"") == 0);
  m.add("x_total", "a=\"1\"", 2);
  uint64_t* c = m.find_counter("x_total", "a=\"1\"");
  REQUIRE(c != nullptr);
  CHECK(c == m.counter("x_total", "a=\"1\""));
  CHECK(*c == 2);
  m.add("x_total", "a=\"2\"", 1);  // over the cap: the overflow series
  CHECK(m.find_counter("x_total", "a=\"2\"") == nullptr);
  m.add("x_total", "a=\"3", 1);  // does not parse: the sink
  CHECK(m.find_counter("x_total", "a=\"3") == nullptr);
  CHECK(m.find_counter("y_total", "") == nullptr);
  CHECK(m.prometheus_text().find("y_total") == std::string::npos);
}
