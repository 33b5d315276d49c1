// gb28181 Catalog aggregation benchmark (docs/benchmarks.md, "gb28181 Catalog aggregation").
//
// A lower platform answers one Catalog query for --channels channels in --messages MESSAGE
// bodies (SumNum = channels, an equal share of <Item>s in each, GB18030 bytes declared GB2312 as
// such platforms send them, with Chinese names and addresses and the usual 15 leaf fields). The
// bodies go through what the plugin does with a MESSAGE body: Body::decode (charset, pre-scrub,
// pugixml) and CommandCenter::on_body (match by SN, merge into the device's catalog model, add
// to the pending query's items; the last one ends the query and builds its JSON result).
// Printed per pass: decode and merge time per MESSAGE (median, p99, mean) and in all, the time
// from the first body to the result, and the heap (glibc mallinfo2) held per channel by the
// catalog model after the query ended, and at its peak (model + the query's items) before that.
// Pass 1 fills an empty catalog; the next passes answer the same query again (known channels:
// the refresh a platform does on every re-registration). Times are the thread's CPU time
// (CLOCK_THREAD_CPUTIME_ID) around each call, so time the scheduler gives other processes on a
// shared machine is not counted; no SIP, no sockets: this is the aggregation's own cost. The last
// MESSAGE is shown apart: it also ends the query (sort + JSON result of all the items).
#include "commands.hpp"
#include "fake_link.hpp"

#include <junction/sip/charset.hpp>

#include <malloc.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace junction::gb;

namespace {

const char* kDevice = "34020000002000000002";  // the lower platform (type 200)

size_t heap_used() { return mallinfo2().uordblks; }

double cpu_us() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e6 + double(ts.tv_nsec) / 1e3;
}

std::string channel_id(size_t i) {
  char b[32];
  std::snprintf(b, sizeof b, "340200000013%08zu", 2000000 + i);  // type 132: IP cameras
  return b;
}

// One Response/Catalog body with items [first, first+n) of sum, in GB18030.
std::string make_body(uint32_t sn, size_t sum, size_t first, size_t n) {
  std::string x;
  x.reserve(n * 900 + 256);
  x += "<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Response>\r\n<CmdType>Catalog</CmdType>\r\n<SN>";
  x += std::to_string(sn);
  x += "</SN>\r\n<DeviceID>";
  x += kDevice;
  x += "</DeviceID>\r\n<SumNum>";
  x += std::to_string(sum);
  x += "</SumNum>\r\n<DeviceList Num=\"";
  x += std::to_string(n);
  x += "\">\r\n";
  for (size_t i = first; i < first + n; ++i) {
    std::string id = channel_id(i);
    char civil[16];
    std::snprintf(civil, sizeof civil, "340200%02zu", i % 50);
    x += "<Item>\r\n<DeviceID>" + id + "</DeviceID>\r\n<Name>摄像机-东门广场-" + std::to_string(i) +
         "</Name>\r\n<Manufacturer>Hikvision</Manufacturer>\r\n<Model>DS-2CD2T47G2-L</Model>\r\n<Owner>Owner</Owner>\r\n"
         "<CivilCode>" + civil + "</CivilCode>\r\n<Address>合肥市蜀山区长江西路" + std::to_string(i % 997) +
         "号</Address>\r\n<Parental>0</Parental>\r\n<ParentID>" + kDevice +
         "</ParentID>\r\n<SafetyWay>0</SafetyWay>\r\n<RegisterWay>1</RegisterWay>\r\n<Secrecy>0</Secrecy>\r\n"
         "<IPAddress>192.0.2." + std::to_string(i % 250 + 1) + "</IPAddress>\r\n<Port>8000</Port>\r\n<Status>ON</Status>\r\n"
         "<Longitude>117.2" + std::to_string(i % 1000) + "</Longitude>\r\n<Latitude>31.8" + std::to_string(i % 1000) +
         "</Latitude>\r\n</Item>\r\n";
  }
  x += "</DeviceList>\r\n</Response>\r\n";
  std::string gb;
  if (!junction::sip::utf8_to_gb18030(x, gb)) {
    std::fprintf(stderr, "GB18030 encoding failed\n");
    std::exit(1);
  }
  return gb;
}

struct Stats {
  double median, p99, mean, total;
};
Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  return {v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 99 / 100)], sum / double(v.size()), sum};
}

}  // namespace

int main(int argc, char** argv) {
  size_t channels = 10000, messages = 500, repeat = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--channels")) channels = std::strtoul(argv[i + 1], nullptr, 10);
    else if (!std::strcmp(argv[i], "--messages")) messages = std::strtoul(argv[i + 1], nullptr, 10);
    else if (!std::strcmp(argv[i], "--repeat")) repeat = std::strtoul(argv[i + 1], nullptr, 10);
    else {
      std::fprintf(stderr, "usage: %s [--channels N] [--messages M] [--repeat R]\n", argv[0]);
      return 2;
    }
  }
  if (!channels || !messages || messages > channels) {
    std::fprintf(stderr, "need 0 < messages <= channels\n");
    return 2;
  }
  // The unit tests' link, but a result is not copied (the plugin hands it to the admin reply).
  struct Link : test::FakeLink {
    size_t results_ok = 0, received = 0;
    void on_result(const CommandResult& r) override {
      results_ok += r.outcome == Outcome::Ok;
      received = r.data.value("received", size_t(0));
      results.emplace_back();
    }
  } link;
  CenterConfig cfg;
  cfg.query_max_ms = 600000;
  size_t heap0 = heap_used();
  CommandCenter center(link, cfg);
  link.center = &center;
  std::printf("Catalog of %zu channels in %zu MESSAGEs (%zu items each), %zu passes; times in microseconds\n", channels,
              messages, channels / messages, repeat);
  for (size_t pass = 1; pass <= repeat; ++pass) {
    link.results.clear();
    link.results_ok = 0;
    link.messages.clear();
    StartResult st = center.query(kDevice, QueryKind::Catalog, QueryParams{}, pass);
    if (!st.ok) {
      std::fprintf(stderr, "query refused: %s\n", st.error.c_str());
      return 1;
    }
    center.on_message_outcome(link.messages.back().id, 200);
    std::vector<std::string> bodies;
    size_t bytes = 0;
    for (size_t m = 0; m < messages; ++m) {
      size_t first = channels * m / messages, last = channels * (m + 1) / messages;
      bodies.push_back(make_body(st.sn, channels, first, last - first));
      bytes += bodies.back().size();
    }
    std::vector<double> dec, merge;
    size_t peak = 0;
    double t_all = cpu_us();
    for (size_t m = 0; m < messages; ++m) {
      Body b;
      std::string err;
      double t0 = cpu_us();
      bool ok = b.decode(bodies[m], "Application/MANSCDP+xml", err);
      double t1 = cpu_us();
      if (!ok) {
        std::fprintf(stderr, "decode: %s\n", err.c_str());
        return 1;
      }
      if (m + 1 == messages) peak = heap_used();  // model + pending items, before the last one ends the query
      BodyAnswer a = center.on_body(kDevice, b);
      double t2 = cpu_us();
      if (a.status != 200) {
        std::fprintf(stderr, "on_body: %d %s\n", a.status, a.reason.c_str());
        return 1;
      }
      dec.push_back(t1 - t0);
      merge.push_back(t2 - t1);
    }
    double all_us = cpu_us() - t_all;
    double last_merge = merge.back();
    merge.pop_back();  // the one that ends the query, shown apart
    if (link.results.size() != 1 || link.results_ok != 1 || link.received != channels) {
      std::fprintf(stderr, "the query did not end Ok with %zu items\n", channels);
      return 1;
    }
    link.results.clear();
    bodies.clear();
    bodies.shrink_to_fit();
    const DeviceCatalog* cat = center.catalog(kDevice);
    if (!cat || cat->channels.size() != channels) {
      std::fprintf(stderr, "catalog has %zu channels\n", cat ? cat->channels.size() : size_t(0));
      return 1;
    }
    size_t held = heap_used();
    Stats d = stats(dec), g = stats(merge);
    std::printf("pass %zu (%s): %zu body bytes (%.0f per MESSAGE)\n", pass, pass == 1 ? "new channels" : "known channels",
                bytes, double(bytes) / double(messages));
    std::printf("  decode / MESSAGE   median %8.1f  p99 %8.1f  mean %8.1f   total %9.0f\n", d.median, d.p99, d.mean, d.total);
    std::printf("  merge  / MESSAGE   median %8.1f  p99 %8.1f  mean %8.1f   total %9.0f  (the first %zu)\n", g.median, g.p99,
                g.mean, g.total, messages - 1);
    std::printf("  last MESSAGE: merge + end of the query (sorted JSON result of every item) %.0f\n", last_merge);
    std::printf("  first body to result: %.0f us CPU (decode + merge + result)\n", all_us);
    std::printf("  heap per channel: %.0f B held by the catalog model, %.0f B at the peak (model + pending items)\n",
                double(held - heap0) / double(channels), double(peak - heap0) / double(channels));
  }
  return 0;
}
