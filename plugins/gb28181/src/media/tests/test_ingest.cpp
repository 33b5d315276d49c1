// MediaIngest (src/media/ingest.hpp) over a fake host: what it binds, publishes and reports, the
// TCP connection rules, the sender, and a hot reload between two instances.
#include "ingest.hpp"

#include "media_ps_util.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

using namespace gb::media;
using namespace jn_test;

namespace {

struct FakeHost {
  uint64_t now = 1000;
  uint32_t loops = 0;
  jn_handle next = 100;
  uint32_t next_port = 30000;
  uint32_t next_bus = 1;
  std::map<uint32_t, std::string> bus_names;
  std::map<uint32_t, std::vector<OwnedFrame>> published;  // by bus id
  std::vector<uint64_t> posts;
  std::vector<std::pair<jn_handle, uint64_t>> timers;
  std::vector<jn_handle> udp_closed, tcp_closed;
  std::vector<std::string> connects;
  std::vector<std::vector<uint8_t>> udp_sent, tcp_sent;
  std::vector<std::string> warnings;
  std::vector<std::string> subs;
  int live_bufs = 0;
  std::map<jn_buf*, int> refs;  // buf_ref'd buffers: extra references
  std::map<std::string, std::vector<OwnedFrame>> published_named;  // bus_publish by name
  std::vector<std::pair<jn_work, jn_handle>> work;  // submitted, not yet run
};

FakeHost& fk(jn_host_ctx* c) { return *reinterpret_cast<FakeHost*>(c); }

jn_host_api fake_api() {
  jn_host_api a{};
  a.struct_size = sizeof a;
  a.abi_major = JN_ABI_MAJOR;
  a.abi_minor = JN_ABI_MINOR;
  a.counter_add = [](jn_host_ctx*, jn_str, jn_str, uint64_t) {};  // gb_catch_ups_total
  a.log = [](jn_host_ctx* c, int lvl, jn_str m) {
    if (lvl <= JN_LOG_WARN) fk(c).warnings.emplace_back(m.ptr, m.len);
  };
  a.log_level = [](jn_host_ctx*) { return static_cast<int>(JN_LOG_DEBUG); };
  a.now_ms = [](jn_host_ctx* c) { return fk(c).now; };
  a.media_loops = [](jn_host_ctx* c) { return fk(c).loops; };
  a.port_bind = [](jn_host_ctx* c, const jn_port_request* r, jn_handle* out, uint32_t* port) -> jn_status {
    out[0] = fk(c).next++;
    out[1] = r->pair ? fk(c).next++ : 0;
    *port = fk(c).next_port;
    fk(c).next_port += 2;
    return JN_OK;
  };
  a.udp_close = [](jn_host_ctx* c, jn_handle h) -> jn_status {
    fk(c).udp_closed.push_back(h);
    return JN_OK;
  };
  a.tcp_close = [](jn_host_ctx* c, jn_handle h) -> jn_status {
    fk(c).tcp_closed.push_back(h);
    return JN_OK;
  };
  a.tcp_connect = [](jn_host_ctx* c, jn_str addr, const jn_tcp_options*, uint64_t, jn_handle* out) -> jn_status {
    fk(c).connects.emplace_back(addr.ptr, addr.len);
    *out = fk(c).next++;
    return JN_OK;
  };
  a.tcp_send = [](jn_host_ctx* c, jn_handle, const uint8_t* d, size_t n) -> jn_status {
    fk(c).tcp_sent.emplace_back(d, d + n);
    return JN_OK;
  };
  a.udp_send = [](jn_host_ctx* c, const jn_send* items, size_t n) -> jn_status {
    for (size_t i = 0; i < n; ++i) {
      std::vector<uint8_t> p(items[i].head, items[i].head + items[i].head_len);
      if (items[i].buf) p.insert(p.end(), items[i].buf->data, items[i].buf->data + items[i].buf->len);
      fk(c).udp_sent.push_back(std::move(p));
    }
    return JN_OK;
  };
  a.bus_intern = [](jn_host_ctx* c, jn_str name, uint32_t* id) -> jn_status {
    *id = fk(c).next_bus++;
    fk(c).bus_names[*id] = std::string(name.ptr, name.len);
    return JN_OK;
  };
  a.bus_release_id = [](jn_host_ctx*, uint32_t) -> jn_status { return JN_OK; };
  a.bus_publish_id = [](jn_host_ctx* c, uint32_t id, jn_buf* b) -> jn_status {
    OwnedFrame f;
    f.data.assign(b->data, b->data + b->len);
    f.meta = b->meta;
    REQUIRE((b->flags & JN_BUF_MEDIA));
    fk(c).published[id].push_back(std::move(f));
    return JN_OK;
  };
  a.bus_subscribe = [](jn_host_ctx* c, jn_str s, uint64_t, jn_handle* out) -> jn_status {
    fk(c).subs.emplace_back(s.ptr, s.len);
    *out = fk(c).next++;
    return JN_OK;
  };
  a.bus_unsubscribe = [](jn_host_ctx*, jn_handle) -> jn_status { return JN_OK; };
  a.buf_alloc = [](jn_host_ctx* c, uint32_t len) -> jn_buf* {
    auto* b = static_cast<jn_buf*>(std::calloc(1, sizeof(jn_buf) + len));
    b->data = reinterpret_cast<uint8_t*>(b + 1);
    b->tailroom = len;
    ++fk(c).live_bufs;
    return b;
  };
  a.buf_ref = [](jn_host_ctx* c, jn_buf* b) { ++fk(c).refs[b]; };
  a.buf_unref = [](jn_host_ctx* c, jn_buf* b) {
    auto it = fk(c).refs.find(b);
    if (it != fk(c).refs.end()) {
      if (--it->second == 0) fk(c).refs.erase(it);
      return;
    }
    --fk(c).live_bufs;
    std::free(b);
  };
  a.bus_publish = [](jn_host_ctx* c, jn_str name, jn_buf* b) -> jn_status {
    OwnedFrame f;
    f.data.assign(b->data, b->data + b->len);
    f.meta = b->meta;
    fk(c).published_named[std::string(name.ptr, name.len)].push_back(std::move(f));
    return JN_OK;
  };
  a.post = [](jn_host_ctx* c, uint32_t, uint64_t cookie) -> jn_status {
    fk(c).posts.push_back(cookie);
    return JN_OK;
  };
  a.timer_start = [](jn_host_ctx* c, uint64_t, uint64_t, uint64_t cookie, jn_handle* out) -> jn_status {
    *out = fk(c).next++;
    fk(c).timers.emplace_back(*out, cookie);
    return JN_OK;
  };
  a.event_subscribe = [](jn_host_ctx*, jn_str) -> jn_status { return JN_OK; };
  a.work_submit = [](jn_host_ctx* c, const jn_work* w, jn_handle* out) -> jn_status {
    *out = fk(c).next++;
    fk(c).work.emplace_back(*w, *out);
    return JN_OK;
  };
  return a;
}

struct Events : IngestListener {
  std::vector<Event> got;
  void on_ingest_event(const Event& ev) override { got.push_back(ev); }
  int count(EventType t) const {
    int n = 0;
    for (auto& e : got) n += e.type == t;
    return n;
  }
};

struct Rig {
  FakeHost fh;
  jn_host_api api = fake_api();
  junction::sdk::Host host{&api, reinterpret_cast<jn_host_ctx*>(&fh)};
  Events events;
  std::unique_ptr<MediaIngest> ing = std::make_unique<MediaIngest>(host, events);
  void run_posts() {
    auto p = std::move(fh.posts);
    fh.posts.clear();
    for (auto c : p) CHECK(ing->on_post(c));
  }
  // The worker pool: run every job (on "a worker"), then on_work_done on the loop; in order.
  int run_work() {
    int n = 0;
    while (!fh.work.empty()) {
      auto [w, h] = fh.work.front();
      fh.work.erase(fh.work.begin());
      w.run(w.arg);
      CHECK(ing->on_work_done(h, w.cookie, JN_OK));
      ++n;
    }
    return n;
  }
  void tick() {
    for (auto& [h, c] : fh.timers) ing->on_timer(h, c);
    run_posts();
  }
};

std::vector<std::vector<uint8_t>> rtp_of(const Stream& s, uint32_t ssrc) {
  PsRtpPacketizerConfig pc;
  pc.ssrc = ssrc;
  PsRtpSender tx(PsMuxerConfig{}, pc);
  Packets pk;
  for (auto& f : s.frames) REQUIRE(tx.send(f.view(), pk));
  return pk.pkts;
}

void send_udp(Rig& r, jn_handle sock, uint64_t cookie, const std::vector<uint8_t>& p) {
  jn_buf b{};
  b.data = const_cast<uint8_t*>(p.data());
  b.len = static_cast<uint32_t>(p.size());
  jn_datagram d{&b};
  CHECK(r.ing->on_udp(sock, cookie, &d, 1));
}

OpenRequest oreq(std::string dev, std::string ch, Transport t) {
  OpenRequest r;
  r.device_id = std::move(dev);
  r.channel_id = std::move(ch);
  r.transport = t;
  return r;
}

// The udp socket handle/cookie of the stream just opened: the fake's port_bind numbering.
struct Bound {
  jn_handle sock;
  uint64_t cookie;
};

Bound bound_of(uint32_t id, jn_handle first_handle) {
  return Bound{first_handle, kCookieTag | (1ull << 40) | id};
}

}  // namespace

TEST_CASE("gb ingest: UDP stream: port from the range, frames on gb28181/<dev>/<ch>/video|audio, first keyframe event") {
  Rig r;
  OpenRequest req = oreq("34020000001320000001", "34020000001310000001", Transport::Udp);
  req.ssrc = 100000001;
  jn_handle first = r.fh.next;
  Opened o = r.ing->open(req);
  REQUIRE(o.id != 0);
  CHECK(o.port == 30000);
  CHECK(o.stream == "gb28181/34020000001320000001/34020000001310000001");
  CHECK(r.fh.bus_names[1] == o.stream + "/video");
  CHECK(r.fh.bus_names[2] == o.stream + "/audio");
  std::string err;
  REQUIRE(r.ing->answer(o.id, Answer{true, 100000001, {{96, "PS"}}, "127.0.0.1", 15060}, err));

  std::mt19937 rng(9);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 30, 10, rng, 5000);
  Bound b = bound_of(o.id, first);
  for (auto& p : rtp_of(s, 100000001)) send_udp(r, b.sock, b.cookie, p);
  r.run_posts();
  CHECK(r.events.count(EventType::FirstKeyframe) == 1);
  size_t video = 0, audio = 0;
  for (auto& f : s.frames) (f.meta.kind == JN_MEDIA_VIDEO ? video : audio)++;
  // The RTP marker closes each frame: the last AU is out with its last packet.
  CHECK(r.fh.published[1].size() == video);
  CHECK(r.fh.published[2].size() == audio);
  Stats st;
  REQUIRE(r.ing->stats(o.id, st));
  CHECK(st.marker_mode == "trusted");
  CHECK(st.marker_frames == video);
  CHECK(r.ing->close(o.id, "test"));
  CHECK(r.fh.published[1].size() == video);
  CHECK(r.fh.udp_closed.size() == 2);       // RTP + RTCP
  CHECK(r.fh.live_bufs == 0);
  // Not ours: another plugin part's cookie.
  CHECK_FALSE(r.ing->on_timer(1, 0x5150000000000001ull));
}

TEST_CASE("gb ingest: RTP timeout is reported once, through the bounded hand-off") {
  Rig r;
  OpenRequest req = oreq("d", "c", Transport::Udp);
  req.rtp_timeout_ms = 3000;
  Opened o = r.ing->open(req);
  REQUIRE(o.id);
  REQUIRE(r.fh.timers.size() == 1);  // no media loops: one housekeeping timer on the control loop
  r.fh.now += 2000;
  r.tick();
  CHECK(r.events.count(EventType::Timeout) == 0);
  r.fh.now += 1500;
  r.tick();
  r.fh.now += 1500;
  r.tick();
  CHECK(r.events.count(EventType::Timeout) == 1);
}

TEST_CASE("gb ingest: keyframe requests for our video stream become rate-limited KeyframeWanted events") {
  Rig r;
  Opened o = r.ing->open(oreq("d", "c", Transport::Udp));
  REQUIRE(o.id);
  std::string json = R"({"stream":"gb28181/d/c/video","reason":"join"})";
  CHECK(r.ing->on_event(JN_MEDIA_KEYFRAME_REQUEST_TOPIC, json));
  CHECK(r.ing->on_event(JN_MEDIA_KEYFRAME_REQUEST_TOPIC, json));  // within 500 ms: held
  CHECK(r.events.count(EventType::KeyframeWanted) == 1);
  r.fh.now += 600;
  CHECK(r.ing->on_event(JN_MEDIA_KEYFRAME_REQUEST_TOPIC, json));
  CHECK(r.events.count(EventType::KeyframeWanted) == 2);
  CHECK_FALSE(r.ing->on_event(JN_MEDIA_KEYFRAME_REQUEST_TOPIC, R"({"stream":"other/video"})"));
}

TEST_CASE("gb ingest: TCP passive: one connection per stream, bytes cut anywhere, the device's close ends the stream") {
  Rig r;
  Opened o = r.ing->open(oreq("d", "c", Transport::TcpPassive));
  REQUIRE(o.id);
  uint64_t c = kCookieTag | (1ull << 40) | o.id;
  jn_tcp_event ev{};
  ev.struct_size = sizeof ev;
  ev.cookie = c;
  ev.type = JN_TCP_ACCEPTED;
  ev.conn = 500;
  CHECK(r.ing->on_tcp(ev));
  ev.conn = 501;  // a second device connection: refused
  CHECK(r.ing->on_tcp(ev));
  CHECK(r.fh.tcp_closed == std::vector<jn_handle>{501});
  std::mt19937 rng(10);
  Stream s = make_stream(JN_CODEC_H264, 0, 20, 10, rng, 7000);
  std::vector<uint8_t> bytes;
  for (auto& p : rtp_of(s, 77)) {
    bytes.push_back(static_cast<uint8_t>(p.size() >> 8));
    bytes.push_back(static_cast<uint8_t>(p.size()));
    bytes.insert(bytes.end(), p.begin(), p.end());
  }
  ev.type = JN_TCP_FRAME;
  ev.conn = 500;
  for (size_t i = 0; i < bytes.size();) {
    size_t n = std::min<size_t>(bytes.size() - i, 1 + rng() % 1500);
    ev.data = bytes.data() + i;
    ev.len = n;
    r.ing->on_tcp(ev);
    i += n;
  }
  ev.type = JN_TCP_CLOSED;
  ev.data = nullptr;
  ev.len = 0;
  r.ing->on_tcp(ev);
  r.run_posts();
  CHECK(r.events.count(EventType::StreamEnd) == 1);
  CHECK(r.fh.published[1].size() == s.frames.size());
  Stats st;
  REQUIRE(r.ing->stats(o.id, st));
  CHECK(st.ssrc == 77);
  CHECK(st.tcp_resyncs == 0);
}

TEST_CASE("gb ingest: TCP active connects to the answer's address on answer") {
  Rig r;
  Opened o = r.ing->open(oreq("d", "c", Transport::TcpActive));
  REQUIRE(o.id);
  CHECK(o.port == 9);
  std::string err;
  CHECK_FALSE(r.ing->answer(o.id, Answer{}, err));
  CHECK(!err.empty());
  REQUIRE(r.ing->answer(o.id, Answer{true, 5, {}, "127.0.0.1", 40000}, err));
  CHECK(r.fh.connects == std::vector<std::string>{"127.0.0.1:40000"});
  CHECK_FALSE(r.ing->answer(o.id, Answer{false, 0, {{98, "H264"}}, "127.0.0.1", 1}, err));  // no PS
}

TEST_CASE("gb ingest: talk sender: G.711A bus frames go out as plain RTP (PT 8) to the device, other codecs are not sent") {
  Rig r;
  SenderRequest sr;
  sr.device_id = "d";
  sr.source = "webrtc/leg1/audio";
  sr.ps = false;
  sr.payload_type = 8;
  sr.ssrc = 0x11223344;
  Opened o = r.ing->open_sender(sr);
  REQUIRE(o.id);
  std::string err;
  REQUIRE(r.ing->answer_sender(o.id, SenderAnswer{"127.0.0.1", 30002, false, 8}, err));
  CHECK(r.fh.subs == std::vector<std::string>{"webrtc/leg1/audio"});
  std::vector<uint8_t> pcm(160, 0xD5);
  jn_buf b{};
  b.data = pcm.data();
  b.len = 160;
  b.flags = JN_BUF_MEDIA;
  b.meta.codec = JN_CODEC_PCMA;
  b.meta.kind = JN_MEDIA_AUDIO;
  b.meta.clock_rate = 8000;
  b.meta.pts = 1600;
  uint64_t c = kCookieTag | (5ull << 40) | o.id;
  CHECK(r.ing->on_bus(1, c, &b));
  b.meta.codec = JN_CODEC_OPUS;
  CHECK(r.ing->on_bus(1, c, &b));
  REQUIRE(r.fh.udp_sent.size() == 1);
  auto& p = r.fh.udp_sent[0];
  REQUIRE(p.size() == 172);
  CHECK((p[1] & 0x7F) == 8);
  CHECK(p[4] == 0);
  CHECK(p[7] == 0x40);  // ts 1600
  CHECK(p[8] == 0x11);
  CHECK(p[11] == 0x44);
  CHECK(p[12] == 0xD5);
}

TEST_CASE("gb ingest: broadcast sender over TCP active: PS-wrapped G.711A RTP, one RFC 4571 frame per packet") {
  Rig r;
  SenderRequest sr;
  sr.device_id = "d";
  sr.source = "sip/leg/audio";
  sr.transport = Transport::TcpActive;
  Opened o = r.ing->open_sender(sr);
  REQUIRE(o.id);
  std::string err;
  REQUIRE(r.ing->answer_sender(o.id, SenderAnswer{"127.0.0.1", 41000, true, 96}, err));
  CHECK(r.fh.connects.size() == 1);
  std::vector<uint8_t> pcm(160, 0x55);
  jn_buf b{};
  b.data = pcm.data();
  b.len = 160;
  b.flags = JN_BUF_MEDIA;
  b.meta.codec = JN_CODEC_PCMA;
  b.meta.kind = JN_MEDIA_AUDIO;
  b.meta.clock_rate = 8000;
  b.meta.track = 1;
  r.ing->on_bus(1, kCookieTag | (5ull << 40) | o.id, &b);
  REQUIRE(r.fh.tcp_sent.size() >= 1);
  // The receiver side of this very module gets the frame back out of it.
  {
    PsRtpReceiverConfig rc;
    rc.reorder_window = 0;
    PsRtpReceiver rx(rc);
    Collect col;
    for (auto& p : r.fh.tcp_sent) rx.on_rtp(p.data(), p.size(), col);
    rx.finish(col);
    REQUIRE(col.frames.size() == 1);
    CHECK(col.frames[0].data == pcm);
    CHECK(col.frames[0].meta.codec == JN_CODEC_PCMA);
  }
}

TEST_CASE("gb ingest: hot reload between frames: sockets kept, no frame lost, numbering continues, no DISCONT") {
  Rig r;
  OpenRequest req = oreq("d", "c", Transport::Udp);
  req.ssrc = 100000001;
  jn_handle first = r.fh.next;
  Opened o = r.ing->open(req);
  REQUIRE(o.id);
  Bound b = bound_of(o.id, first);
  std::mt19937 rng(11);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 50, 10, rng, 6000);
  // Packets of the first half of the frames, then the swap, then the rest.
  PsRtpPacketizerConfig pc;
  pc.ssrc = 100000001;
  PsRtpSender tx(PsMuxerConfig{}, pc);
  Packets first_half, second_half;
  for (size_t i = 0; i < s.frames.size(); ++i) REQUIRE(tx.send(s.frames[i].view(), i < s.frames.size() / 2 ? first_half : second_half));
  for (auto& p : first_half.pkts) send_udp(r, b.sock, b.cookie, p);

  std::string saved = r.ing->save_state();
  r.ing.reset();  // the old instance goes: nothing closed
  CHECK(r.fh.udp_closed.empty());
  r.ing = std::make_unique<MediaIngest>(r.host, r.events);
  std::string err;
  REQUIRE(r.ing->restore_state(saved, err));
  for (auto& p : second_half.pkts) send_udp(r, b.sock, b.cookie, p);
  REQUIRE(r.ing->close(o.id, "end"));

  size_t video = 0, audio = 0;
  for (auto& f : s.frames) (f.meta.kind == JN_MEDIA_VIDEO ? video : audio)++;
  auto& pv = r.fh.published[1];
  auto& pa = r.fh.published[2];
  CHECK(pv.size() == video);
  CHECK(pa.size() == audio);
  for (size_t i = 0; i < pv.size(); ++i) {
    CHECK(pv[i].meta.seq == i);
    if (i) CHECK((pv[i].meta.frame_flags & JN_MF_DISCONT) == 0);
  }
  for (size_t i = 0; i < pa.size(); ++i) {
    CHECK(pa[i].meta.seq == i);
    if (i) CHECK((pa[i].meta.frame_flags & JN_MF_DISCONT) == 0);
  }
  Stats st;
  CHECK_FALSE(r.ing->stats(o.id, st));  // closed
}

TEST_CASE("gb ingest: download writes the stream's whole frames as PS to record_path through the worker pool, in order") {
  Rig r;
  std::string path = "/tmp/gb_ingest_test_" + std::to_string(::getpid()) + ".ps";
  OpenRequest req = oreq("d", "c", Transport::Udp);
  req.purpose = Purpose::Download;
  req.record_path = path;
  req.stream = "gb28181/d/c/download/1";
  jn_handle first = r.fh.next;
  Opened o = r.ing->open(req);
  REQUIRE(o.id);
  CHECK(r.fh.bus_names[1] == "gb28181/d/c/download/1/video");
  Bound b = bound_of(o.id, first);
  std::mt19937 rng(12);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 120, 25, rng, 20000);  // ~480 KB: 2 writes of 256 KB chunks
  int writes = 0;
  auto pkts = rtp_of(s, 5);
  for (size_t i = 0; i < pkts.size(); ++i) {
    send_udp(r, b.sock, b.cookie, pkts[i]);
    if (i % 50 == 0) writes += r.run_work();  // writes complete while the stream goes on
  }
  REQUIRE(r.ing->close(o.id, "download done"));
  writes += r.run_work();
  CHECK(writes >= 2);
  // The file demuxes back to every frame, byte-exact, in order.
  FILE* f = std::fopen(path.c_str(), "rb");
  REQUIRE(f);
  std::vector<uint8_t> bytes;
  uint8_t tmp[65536];
  size_t n;
  while ((n = std::fread(tmp, 1, sizeof tmp, f)) > 0) bytes.insert(bytes.end(), tmp, tmp + n);
  std::fclose(f);
  std::remove(path.c_str());
  CHECK(bytes.size() > (256u << 10));
  PsDemuxer dm;
  Collect col;
  dm.feed(bytes.data(), bytes.size(), col);
  dm.flush(col);
  REQUIRE(col.frames.size() == s.frames.size());
  std::vector<const OwnedFrame*> v_src, v_got;
  for (auto& fr : s.frames)
    if (fr.meta.kind == JN_MEDIA_VIDEO) v_src.push_back(&fr);
  for (auto& fr : col.frames)
    if (fr.meta.kind == JN_MEDIA_VIDEO) v_got.push_back(&fr);
  REQUIRE(v_src.size() == v_got.size());
  for (size_t i = 0; i < v_src.size(); ++i) CHECK(v_src[i]->data == v_got[i]->data);
}

TEST_CASE("gb ingest: record_path that cannot be created fails the open with the reason") {
  Rig r;
  OpenRequest req = oreq("d", "c", Transport::Udp);
  req.purpose = Purpose::Download;
  req.record_path = "/nonexistent-dir/x.ps";
  Opened o = r.ing->open(req);
  CHECK(o.id == 0);
  CHECK(o.error.find("cannot create") != std::string::npos);
  CHECK(r.fh.next == 100);  // nothing bound
}

TEST_CASE("gb ingest: streams spread over the media loops; each loop's housekeeping timer starts once, not again after a reload") {
  Rig r;
  r.fh.loops = 2;
  std::vector<uint32_t> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(r.ing->open(oreq("d", "c" + std::to_string(i), Transport::Udp)).id);
  // One post per media loop asks it to start its timer there (a media-loop timer is started on its loop).
  REQUIRE(r.fh.posts.size() == 2);
  r.run_posts();
  CHECK(r.fh.timers.size() == 2);
  std::string saved = r.ing->save_state();
  auto j = nlohmann::json::parse(saved);
  std::vector<uint32_t> loops;
  for (auto& e : j["streams"]) loops.push_back(e["loop"].get<uint32_t>());
  std::sort(loops.begin(), loops.end());
  CHECK(loops == std::vector<uint32_t>{1, 1, 2});
  r.ing.reset();
  r.ing = std::make_unique<MediaIngest>(r.host, r.events);
  std::string err;
  REQUIRE(r.ing->restore_state(saved, err));
  CHECK(r.ing->open(oreq("d", "c9", Transport::Udp)).id == 4);  // ids continue
  CHECK(r.fh.posts.empty());  // the old instance's timers carry on: none started twice
  CHECK(r.ing->size() == 4);
}

TEST_CASE("gb ingest: a live stream reopened (a restart) comes back on its media loop, known before it opens; also after a reload") {
  Rig r;
  r.fh.loops = 3;
  auto loop_of = [&](uint32_t id) {
    auto j = nlohmann::json::parse(r.ing->save_state());
    for (auto& e : j["streams"])
      if (e["id"].get<uint32_t>() == id) return e["loop"].get<uint32_t>();
    return 0u;
  };
  // Asked before the stream exists (a client's sender binds first): the stream then opens there.
  uint32_t want = r.ing->live_loop("gb28181/d/c1");
  REQUIRE(want >= 1);
  REQUIRE(want <= 3);
  uint32_t a = r.ing->open(oreq("d", "c0", Transport::Udp)).id;
  uint32_t b = r.ing->open(oreq("d", "c1", Transport::Udp)).id;
  CHECK(loop_of(b) == want);
  CHECK(loop_of(a) != want);  // round-robin still spreads the others
  // Closed and opened again (the play side's restart) while other streams opened meanwhile.
  REQUIRE(r.ing->close(b, "timeout"));
  for (int i = 2; i < 6; ++i) r.ing->open(oreq("d", "c" + std::to_string(i), Transport::Udp));
  uint32_t b2 = r.ing->open(oreq("d", "c1", Transport::Udp)).id;
  CHECK(loop_of(b2) == want);
  // A hot reload keeps the assignment, of open and of closed streams.
  REQUIRE(r.ing->close(b2, "timeout"));
  std::string saved = r.ing->save_state();
  r.ing = std::make_unique<MediaIngest>(r.host, r.events);
  std::string err;
  REQUIRE(r.ing->restore_state(saved, err));
  CHECK(r.ing->live_loop("gb28181/d/c1") == want);
  CHECK(loop_of(r.ing->open(oreq("d", "c1", Transport::Udp)).id) == want);
  // No media loops: the control loop.
  r.fh.loops = 0;
  CHECK(r.ing->live_loop("gb28181/d/c7") == 0);
}

TEST_CASE("gb ingest: bad input is logged at most once per second per stream, with the count of lines held back") {
  Rig r;
  jn_handle first = r.fh.next;
  Opened o = r.ing->open(oreq("d", "c", Transport::Udp));
  REQUIRE(o.id);
  Bound b = bound_of(o.id, first);
  std::vector<uint8_t> junk(100, 0xFF);
  for (int i = 0; i < 50; ++i) send_udp(r, b.sock, b.cookie, junk);
  auto lines = [&] {
    int n = 0;
    for (auto& w : r.fh.warnings) n += w.find("malformed") != std::string::npos;
    return n;
  };
  CHECK(lines() == 1);
  r.fh.now += 1000;
  send_udp(r, b.sock, b.cookie, junk);
  CHECK(lines() == 2);
  CHECK(r.fh.warnings.back().find("+49 more") != std::string::npos);
  Stats st;
  REQUIRE(r.ing->stats(o.id, st));
  CHECK(st.malformed == 51);
}

TEST_CASE("gb ingest: GOP cache: a joiner's catch-up stream gets the frames since the last keyframe, by reference") {
  Rig r;
  IngestConf conf;
  conf.gop_cache = true;
  r.ing->configure(conf);
  OpenRequest req = oreq("34020000001320000001", "34020000001310000001", Transport::Udp);
  req.ssrc = 7;
  jn_handle first = r.fh.next;
  Opened o = r.ing->open(req);
  REQUIRE(o.id != 0);
  Bound b = bound_of(o.id, first);
  std::mt19937 rng(41);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 27, 10, rng, 5000);  // keyframes 0, 10, 20
  for (auto& p : rtp_of(s, 7)) send_udp(r, b.sock, b.cookie, p);
  auto& live_v = r.fh.published[1];
  auto& live_a = r.fh.published[2];
  REQUIRE(live_v.size() == 27);
  size_t audio_since = 0;  // audio published after keyframe 20
  for (auto& f : live_a)
    if (f.meta.pts * 90000 / 8000 >= live_v[20].meta.pts) ++audio_since;
  Stats st;
  REQUIRE(r.ing->stats(o.id, st));
  CHECK(st.gop_cache_frames >= 7);
  CHECK(st.gop_cache_frames <= 7 + audio_since + 1);
  CHECK(r.fh.live_bufs > 0);  // the cache holds pool buffers (no copies: the published ones)

  // Asking on the live name itself is refused; gop_cache's answer goes to the consumer's names.
  std::string video = o.stream + "/video";
  CHECK(r.ing->on_event(JN_MEDIA_KEYFRAME_REQUEST_TOPIC, R"({"stream":")" + video + R"(","catch_up":")" + video + R"("})"));
  CHECK(r.fh.published_named.empty());
  CHECK(r.ing->on_event(JN_MEDIA_KEYFRAME_REQUEST_TOPIC,
                        R"({"stream":")" + video + R"(","reason":"join","catch_up":"viewer/1/video","catch_up_audio":"viewer/1/audio"})"));
  auto& cv = r.fh.published_named["viewer/1/video"];
  auto& ca = r.fh.published_named["viewer/1/audio"];
  REQUIRE(cv.size() == 7);
  CHECK((cv[0].meta.frame_flags & JN_MF_KEY) != 0);
  for (size_t i = 0; i < cv.size(); ++i) {
    CHECK(cv[i].meta.seq == 20 + i);  // the live numbering: the joiner merges on seq
    CHECK(cv[i].data == live_v[20 + i].data);
  }
  CHECK(ca.size() + 7 == st.gop_cache_frames);
  for (auto& f : ca) CHECK(f.meta.kind == JN_MEDIA_AUDIO);
  REQUIRE(r.ing->stats(o.id, st));
  CHECK(st.catch_ups == 1);
  CHECK(r.events.count(EventType::KeyframeWanted) == 1);  // the device is still asked for an IFrame

  CHECK(r.ing->close(o.id, "test"));
  CHECK(r.fh.refs.empty());
  CHECK(r.fh.live_bufs == 0);  // every cached ref released
}

TEST_CASE("gb ingest: a viewer stream (a call's viewer) starts with the cached GOP at the next frame, then every live frame") {
  std::mt19937 rng(43);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 35, 10, rng, 5000);  // keyframes 0, 10, 20, 30
  PsRtpPacketizerConfig pc;
  pc.ssrc = 7;
  PsRtpSender tx(PsMuxerConfig{}, pc);
  Packets pk;
  size_t split = 0;  // where video frame 25 starts: the viewers join in GOP 20's middle
  for (auto& f : s.frames) {
    if (f.meta.kind == JN_MEDIA_VIDEO && f.meta.seq == 25) split = pk.pkts.size();
    REQUIRE(tx.send(f.view(), pk));
  }
  REQUIRE(split > 0);
  Rig r;
  IngestConf conf;
  conf.gop_cache = true;
  r.ing->configure(conf);
  OpenRequest req = oreq("34020000001320000001", "34020000001310000001", Transport::Udp);
  req.ssrc = 7;
  jn_handle first = r.fh.next;
  Opened o = r.ing->open(req);
  Bound b = bound_of(o.id, first);
  for (size_t i = 0; i < split; ++i) send_udp(r, b.sock, b.cookie, pk.pkts[i]);
  CHECK(r.ing->viewer_stream(o.id, "bad tag!").empty());
  std::string asks = r.ing->viewer_stream(o.id, "call-1"), waits = r.ing->viewer_stream(o.id, "call-2");
  CHECK(asks == o.stream + "/viewer/call-1");
  CHECK(r.ing->viewer_stream(o.id, "call-1") == asks);  // idempotent
  auto id_of = [&](const std::string& name) {
    for (auto& [id, n] : r.fh.bus_names)
      if (n == name) return id;
    return 0u;
  };
  uint32_t av = id_of(asks + "/video"), wv = id_of(waits + "/video");
  REQUIRE(av != 0);
  REQUIRE(wv != 0);
  CHECK(r.ing->on_event(JN_MEDIA_KEYFRAME_REQUEST_TOPIC, R"({"stream":")" + asks + R"(/video","reason":"join"})"));
  CHECK(r.fh.published[av].empty());  // in line with the live frames: at the next frame
  for (size_t i = split; i < pk.pkts.size(); ++i) send_udp(r, b.sock, b.cookie, pk.pkts[i]);
  auto& live = r.fh.published[1];
  REQUIRE(live.size() >= 34);
  auto& got = r.fh.published[av];
  REQUIRE(got.size() >= 14);
  CHECK((got[0].meta.frame_flags & JN_MF_KEY) != 0);
  for (size_t i = 0; i < got.size(); ++i) {
    CHECK(got[i].meta.seq == 20 + i);  // the cached GOP (20..) then live, no gap, no duplicate
    CHECK(got[i].data == live[20 + i].data);
  }
  CHECK(got.size() == live.size() - 20);
  // A viewer whose consumer never asked starts at the next keyframe (30).
  auto& w = r.fh.published[wv];
  REQUIRE(!w.empty());
  CHECK(w[0].meta.seq == 30);
  Stats st;
  REQUIRE(r.ing->stats(o.id, st));
  CHECK(st.catch_ups == 1);
  r.ing->drop_viewer_stream(o.id, "call-1");
  size_t before = got.size();
  CHECK(r.ing->close(o.id, "test"));  // flushes the last frame: not to the dropped viewer
  CHECK(r.fh.published[av].size() == before);
  CHECK(r.fh.refs.empty());
  CHECK(r.fh.live_bufs == 0);
}

TEST_CASE("gb ingest: GOP cache: off, over the byte cap, or spoilt by a loss: nothing is replayed") {
  std::mt19937 rng(42);
  Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 15, 10, rng, 5000);  // keyframes 0, 10
  // Packets frame by frame, to know where video frame 12 starts.
  PsRtpPacketizerConfig pc;
  pc.ssrc = 7;
  PsRtpSender tx(PsMuxerConfig{}, pc);
  Packets pk;
  size_t lose = 0;
  for (auto& f : s.frames) {
    if (f.meta.kind == JN_MEDIA_VIDEO && f.meta.seq == 12) lose = pk.pkts.size();
    REQUIRE(tx.send(f.view(), pk));
  }
  REQUIRE(lose > 0);
  auto& pkts = pk.pkts;
  std::string ask = R"(","catch_up":"viewer/v"})";
  for (int mode = 0; mode < 3; ++mode) {
    CAPTURE(mode);
    Rig r;
    IngestConf conf;
    conf.gop_cache = mode != 0;
    if (mode == 1) conf.gop_cache_max_bytes = 6000;  // a keyframe (5000) and a bit
    r.ing->configure(conf);
    OpenRequest req = oreq("34020000001320000001", "34020000001310000001", Transport::Udp);
    req.ssrc = 7;
    jn_handle first = r.fh.next;
    Opened o = r.ing->open(req);
    Bound b = bound_of(o.id, first);
    for (size_t i = 0; i < pkts.size(); ++i) {
      if (mode == 2 && i == lose) continue;  // frame 12 lost: frames 13.. of the GOP do not decode
      send_udp(r, b.sock, b.cookie, pkts[i]);
    }
    r.fh.now += 1000;
    r.tick();  // the reorder flush gives up on the lost packet: the frames after it go out
    CHECK(r.fh.published[1].size() == (mode == 2 ? 14u : 15u));
    CHECK(r.ing->on_event(JN_MEDIA_KEYFRAME_REQUEST_TOPIC, R"({"stream":")" + o.stream + "/video" + ask));
    CHECK(r.fh.published_named.empty());
    Stats st;
    REQUIRE(r.ing->stats(o.id, st));
    CHECK(st.catch_ups == 0);
    CHECK(st.gop_cache_frames == 0);
    if (mode == 1) CHECK(st.gop_overflows >= 1);
    CHECK(r.ing->close(o.id, "test"));
    CHECK(r.fh.live_bufs == 0);
  }
}

// A large keyframe split into many packets, the reload in the middle of it (UDP: with a packet
// held for reordering at that instant; TCP: the swap between two RFC 4571 packets): the frame
// arrives whole after the swap, numbering continues, no DISCONT, nothing dropped.
TEST_CASE("gb ingest: hot reload in the middle of a keyframe: the frame straddling the swap arrives whole (TCP: and the packet it cut)") {
  for (Transport t : {Transport::Udp, Transport::TcpPassive}) {
    std::string tname = to_string(t);
    CAPTURE(tname);
    Rig r;
    OpenRequest req = oreq("d", "c", t);
    req.ssrc = 4242;
    jn_handle first = r.fh.next;
    Opened o = r.ing->open(req);
    REQUIRE(o.id);
    Bound b = bound_of(o.id, first);
    jn_tcp_event ev{};
    ev.struct_size = sizeof ev;
    ev.cookie = kCookieTag | (1ull << 40) | o.id;
    if (t == Transport::TcpPassive) {
      ev.type = JN_TCP_ACCEPTED;
      ev.conn = 700;
      CHECK(r.ing->on_tcp(ev));
      ev.type = JN_TCP_FRAME;
    }
    std::mt19937 rng(12);
    Stream s = make_stream(JN_CODEC_H264, JN_CODEC_PCMA, 30, 10, rng, 80000);  // ~58 packets per keyframe
    PsRtpPacketizerConfig pc;
    pc.ssrc = 4242;
    PsRtpSender tx(PsMuxerConfig{}, pc);
    Packets pk;
    size_t ks = 0, ke = 0;
    for (auto& f : s.frames) {
      if (f.meta.kind == JN_MEDIA_VIDEO && f.meta.seq == 20) ks = pk.pkts.size();
      REQUIRE(tx.send(f.view(), pk));
      if (f.meta.kind == JN_MEDIA_VIDEO && f.meta.seq == 20) ke = pk.pkts.size();
    }
    REQUIRE(ke - ks > 40);
    size_t cut = ks + (ke - ks) / 2;
    auto net = pk.pkts;
    if (t == Transport::Udp) std::swap(net[cut - 1], net[cut]);  // one held across the swap
    auto deliver = [&](const std::vector<uint8_t>& p) {
      if (t == Transport::Udp) return send_udp(r, b.sock, b.cookie, p);
      std::vector<uint8_t> framed{static_cast<uint8_t>(p.size() >> 8), static_cast<uint8_t>(p.size())};
      framed.insert(framed.end(), p.begin(), p.end());
      ev.data = framed.data();
      ev.len = framed.size();
      r.ing->on_tcp(ev);
    };
    for (size_t i = 0; i < cut; ++i) deliver(net[i]);
    // TCP: the swap also cuts a packet in two (its first 7 bytes before, the rest after).
    std::vector<uint8_t> split;
    if (t == Transport::TcpPassive) {
      split = {static_cast<uint8_t>(net[cut].size() >> 8), static_cast<uint8_t>(net[cut].size())};
      split.insert(split.end(), net[cut].begin(), net[cut].end());
      ev.data = split.data();
      ev.len = 7;
      r.ing->on_tcp(ev);
    }
    size_t before = r.fh.published[1].size();
    CHECK(before == 20);  // frames 0..19 out (marker trusted), frame 20 in progress

    std::string saved = r.ing->save_state();
    r.ing.reset();
    r.ing = std::make_unique<MediaIngest>(r.host, r.events);
    std::string err;
    REQUIRE(r.ing->restore_state(saved, err));
    size_t resume = cut;
    if (t == Transport::TcpPassive) {
      ev.data = split.data() + 7;
      ev.len = split.size() - 7;
      r.ing->on_tcp(ev);
      resume = cut + 1;
    }
    for (size_t i = resume; i < net.size(); ++i) deliver(net[i]);

    auto& pv = r.fh.published[1];
    auto& pa = r.fh.published[2];
    size_t video = 0, audio = 0;
    for (auto& f : s.frames) (f.meta.kind == JN_MEDIA_VIDEO ? video : audio)++;
    REQUIRE(pv.size() == video);  // all out by their markers, the straddling keyframe included
    // TCP: the deframer holds the last packet until the next header (here: the end of the input).
    CHECK(pa.size() == (t == Transport::Udp ? audio : audio - 1));
    size_t vi = 0;
    for (auto& f : s.frames) {
      if (f.meta.kind != JN_MEDIA_VIDEO) continue;
      CHECK(pv[vi].data == f.data);
      CHECK(pv[vi].meta.seq == vi);
      if (vi) CHECK((pv[vi].meta.frame_flags & JN_MF_DISCONT) == 0);
      ++vi;
    }
    CHECK((pv[20].meta.frame_flags & JN_MF_KEY) != 0);
    Stats st;
    REQUIRE(r.ing->stats(o.id, st));
    CHECK(st.lost == 0);
    CHECK(st.dropped_frames == 0);
    CHECK(st.marker_mode == "trusted");  // learnt once, kept over the swap
    CHECK(r.ing->close(o.id, "end"));
    CHECK(r.fh.live_bufs == 0);
  }
}
