// fuzz_gb28181_commands: a CommandCenter over the fake link driven by a small script:
//   @query K | @control K | @sub K | @subok STATUS EXPIRES | @unsub K | @ack STATUS |
//   @advance MS | @save | @forget | @body A|B  (the following lines, up to the next @, are a body
//   sent by device A or B; it goes through Body::decode first).
// Invariants: every command that started ends exactly once through on_result (none twice, none
// unknown), all of them after the clock passes every deadline; on_body answers 0, 200 or 4xx
// with a reason; save() -> restore() -> save() is stable.
#include "../tests/fake_link.hpp"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>

using namespace junction::gb;
using junction::gb::test::FakeLink;

namespace {

void fail(const char* what, int line) {
  fprintf(stderr, "invariant broken: %s (line %d)\n", what, line);
  abort();
}
#define check(x) ((x) ? (void)0 : fail(#x, __LINE__))

class Link : public FakeLink {
 public:
  std::map<uint64_t, int> ended;  // tag -> times
  void on_result(const CommandResult& r) override {
    ended[r.tag]++;
    FakeLink::on_result(r);
  }
};

const std::string kA = "34020000001320000001";
const std::string kB = "34020000001320000002";

uint64_t num(std::string_view s) {
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') break;
    v = v * 10 + static_cast<uint64_t>(c - '0');
    if (v > 1000000000ull) break;
  }
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 256 * 1024) return 0;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  Link link;
  CenterConfig cfg;
  cfg.max_pending = 64;
  cfg.max_pending_per_device = 16;
  cfg.max_channels_per_device = 2000;
  CommandCenter center(link, cfg);
  link.center = &center;
  std::set<uint64_t> started;
  uint64_t next_tag = 1;
  auto started_ok = [&](const StartResult& s, uint64_t tag) {
    if (s.ok) started.insert(tag);
    else check(!s.error.empty());
  };

  size_t pos = 0;
  int steps = 0;
  while (pos < in.size() && steps++ < 200) {
    size_t eol = in.find('\n', pos);
    std::string_view line = in.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    pos = eol == std::string_view::npos ? in.size() : eol + 1;
    if (line.empty() || line[0] != '@') continue;
    size_t sp = line.find(' ');
    std::string_view cmd = line.substr(1, sp == std::string_view::npos ? std::string_view::npos : sp - 1);
    std::string_view arg = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
    uint64_t n = num(arg);
    uint64_t tag = next_tag++;
    if (cmd == "query") {
      QueryParams q;
      q.start_time = "2023-10-14T00:00:00";
      q.end_time = "2023-10-14T23:59:59";
      started_ok(center.query(kA, static_cast<QueryKind>(n % 7), q, tag), tag);
    } else if (cmd == "control") {
      StartResult s;
      switch (n % 9) {
        case 0: s = center.ptz(kA, "", ptz_move(PtzMove{1, -1, 1, 10, 20, 3}), tag); break;
        case 1: s = center.teleboot(kA, tag); break;
        case 2: s = center.iframe(kA, "", tag); break;
        case 3: s = center.guard(kA, "", true, tag); break;
        case 4: s = center.alarm_reset(kA, "", 5, "2", tag); break;
        case 5: s = center.record(kA, "", false, tag); break;
        case 6: s = center.home_position(kA, "", HomePosition{}, tag); break;
        case 7: s = center.config_basic(kA, "", BasicParam{"n", 3600, 60, 3}, tag); break;
        default: {
          SnapShotConfig sc;
          sc.upload_url = "http://127.0.0.1/x";
          sc.session_id = std::string(32, 'a');
          s = center.config_snapshot(kA, "", sc, tag);
        }
      }
      started_ok(s, tag);
    } else if (cmd == "sub") {
      started_ok(center.subscribe(kA, static_cast<SubKind>(n % 2), 60, {}, tag), tag);
    } else if (cmd == "subok") {
      size_t sp2 = arg.find(' ');
      uint32_t granted = sp2 == std::string_view::npos ? 0 : static_cast<uint32_t>(num(arg.substr(sp2 + 1)) % 100000);
      center.on_subscribe_outcome(kA, static_cast<SubKind>(n % 2), static_cast<int>(n % 700), granted);
    } else if (cmd == "unsub") {
      center.unsubscribe(kA, static_cast<SubKind>(n % 2));
    } else if (cmd == "ack") {
      if (!link.messages.empty()) center.on_message_outcome(link.messages.back().id, static_cast<int>(n % 700));
    } else if (cmd == "advance") {
      link.advance(n % 200000);
    } else if (cmd == "save") {
      std::string s1 = center.save();
      std::string error;
      check(center.restore(s1, error));
      check(center.save() == s1);
    } else if (cmd == "forget") {
      center.forget_device(kA);
    } else if (cmd == "body") {
      size_t end = in.find("\n@", pos);
      std::string_view raw = in.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
      pos = end == std::string_view::npos ? in.size() : end + 1;
      Body body;
      std::string error;
      if (!body.decode(raw, "Application/MANSCDP+xml", error)) continue;
      BodyAnswer a = center.on_body(arg == "B" ? kB : kA, body);
      check(a.status == 0 || a.status == 200 || (a.status >= 400 && a.status < 500 && !a.reason.empty()));
    }
    for (auto& [t, times] : link.ended) check(times == 1 && started.count(t));
  }
  // Past every deadline (query_max_ms and the subscription answer timeout) everything has ended.
  link.advance(cfg.query_max_ms + 1);
  check(center.pending_count() == 0);
  for (uint64_t t : started) check(link.ended.count(t) == 1);
  for (auto& [t, times] : link.ended) check(times == 1 && started.count(t));
  return 0;
}
