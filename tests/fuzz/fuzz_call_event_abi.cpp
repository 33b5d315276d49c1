// The core's reader of a plugin's call event (routing/call_event_abi.cpp from_abi): what a
// plugin of any 2.x build, buggy or not, may hand the core. The input bytes drive the build of a
// jn_call_event with its media description, codecs, candidates, crypto lines and headers:
// every struct_size (smaller than ours: an older plugin; larger: a newer one), every count and
// every string length. Each struct is allocated with exactly its struct_size bytes and each array
// with exactly its count, so ASan reports any read past what the plugin gave; string pointers
// point into a copy of the input (or are NULL, or carry a garbage length).
//
// Oracle (abi.h and call_event_abi.hpp): the status is JN_OK exactly when no present field is
// bad (a NULL pointer with a length, a garbage length, a NULL stream, too many streams or list
// items, an empty codec/header name, an out-of-range setup/direction, a struct too small for its
// basics); on JN_OK every present field reads back as given and every absent one keeps its
// default; on an error the event is empty (type 0); an accepted event goes back out through
// AbiCallEvent and reads back equal.
#include "routing/call_event_abi.hpp"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

using namespace junction;

namespace {

constexpr size_t kMaxStreams = 64;             // the limits call_event_abi.cpp documents
constexpr size_t kMaxListItems = 256;
constexpr size_t kMaxStringBytes = 16u << 20;

struct Input {
  const uint8_t* p;
  size_t n, i = 0;
  uint8_t u8() { return i < n ? p[i++] : 0; }
  uint16_t u16() { return static_cast<uint16_t>(u8() | (u8() << 8)); }
  uint32_t u32() { return static_cast<uint32_t>(u16() | (uint32_t(u16()) << 16)); }
};

// Everything allocated for one input; freed at the end of the run.
struct Arena {
  std::vector<std::unique_ptr<uint8_t[]>> blocks;
  // Exactly `bytes` (no rounding up to the image's size): a read past them is a heap overflow.
  // Past the image: garbage, as a newer plugin's unknown tail, which the core must ignore.
  template <typename T>
  T* alloc_bytes(size_t bytes, const T* image, size_t image_bytes = sizeof(T)) {
    blocks.emplace_back(new uint8_t[bytes ? bytes : 1]);
    uint8_t* b = blocks.back().get();
    std::memset(b, 0xA5, bytes);
    std::memcpy(b, image, std::min(bytes, image_bytes));
    return reinterpret_cast<T*>(b);
  }
  template <typename T>
  T* array(const std::vector<T>& items) {
    if (items.empty()) return nullptr;
    return alloc_bytes(items.size() * sizeof(T), items.data(), items.size() * sizeof(T));
  }
};

struct Builder {
  Input in;
  const char* pool;  // string bytes: a copy of the input
  size_t pool_n;
  Arena arena;
  bool valid = true;    // the model: whether the core must accept the event

  // A jn_str: a slice of the pool, empty, NULL with a length, or a garbage length.
  jn_str str(std::string& expect) {
    uint8_t mode = in.u8() % 10;
    size_t off = pool_n ? in.u16() % (pool_n + 1) : 0;
    size_t len = in.u8();
    jn_str s{};
    if (mode <= 6) {
      s.ptr = pool + off;
      s.len = std::min(len, pool_n - off);
    } else if (mode == 7) {
      s = {nullptr, 0};
    } else if (mode == 8) {
      s = {nullptr, len + 1};
    } else {
      s = {pool + off, kMaxStringBytes + 1 + (size_t(len) << 32)};  // never dereferenced in bounds
    }
    if (s.len == 0) expect.clear();
    else if (!s.ptr || s.len > kMaxStringBytes) expect.clear(), mark_invalid();
    else expect.assign(s.ptr, s.len);
    return s;
  }
  void mark_invalid() { valid = false; }

  // A count: usually small, sometimes past the limit, sometimes garbage (with a short array).
  uint32_t count(size_t limit, uint32_t& allocated) {
    uint8_t mode = in.u8() % 16;
    uint32_t c = mode < 12 ? mode % 4 : mode < 14 ? static_cast<uint32_t>(limit + 1) : in.u32();
    allocated = c <= limit + 1 ? c : 2;
    return c;
  }
  // A struct_size for a struct of size `full`: ours, one of an older build (any shorter size),
  // or one of a newer build (longer, with an unknown tail).
  uint32_t size_of(size_t full) {
    uint8_t mode = in.u8() % 8;
    if (mode < 5) return static_cast<uint32_t>(full);
    // Never below struct_size itself: that much the plugin always wrote.
    if (mode < 7) return static_cast<uint32_t>(sizeof(uint32_t) + in.u16() % (full - sizeof(uint32_t) + 1));
    return static_cast<uint32_t>(full + 8 + in.u8());
  }

  const jn_codec* codecs(uint32_t& count_out, std::vector<Codec>& expect) {
    uint32_t n;
    count_out = count(kMaxListItems, n);
    if (count_out == 0) {
      // NULL or not: an empty list is valid either way.
      return in.u8() & 1 ? arena.array(std::vector<jn_codec>(1)) : nullptr;
    }
    if (in.u8() % 8 == 0) {
      mark_invalid();  // NULL with a count
      return nullptr;
    }
    if (count_out > kMaxListItems) mark_invalid();
    std::vector<jn_codec> v(n);
    expect.resize(n);
    for (uint32_t i = 0; i < n; ++i) {
      v[i].name = str(expect[i].name);
      if (v[i].name.len == 0) mark_invalid();
      v[i].payload_type = expect[i].payload_type = in.u8();
      v[i].clock_rate = expect[i].clock_rate = in.u32();
      v[i].channels = expect[i].channels = in.u8();
      v[i].fmtp = str(expect[i].fmtp);
      v[i].rtcp_fb = str(expect[i].rtcp_fb);
    }
    return arena.array(v);
  }

  const jn_str* strs(uint32_t& count_out, std::vector<std::string>& expect) {
    uint32_t n;
    count_out = count(kMaxListItems, n);
    if (count_out == 0) return nullptr;
    if (in.u8() % 8 == 0) {
      mark_invalid();
      return nullptr;
    }
    if (count_out > kMaxListItems) mark_invalid();
    std::vector<jn_str> v(n);
    expect.resize(n);
    for (uint32_t i = 0; i < n; ++i) v[i] = str(expect[i]);
    return arena.array(v);
  }

  jn_addr addr() {
    jn_addr a{};
    a.family = in.u8() % 8;
    a.port = in.u16();
    for (auto& b : a.ip) b = in.u8();
    a.scope_id = in.u8();
    return a;
  }

  // One stream; nullptr (a NULL stream pointer) makes the description invalid. abi: the
  // struct is too short to hold `kind`. valid is cleared when a present field is bad.
  const jn_media_stream* stream(MediaStream& e, bool& abi) {
    if (in.u8() % 16 == 0) {
      mark_invalid();
      return nullptr;
    }
    jn_media_stream s{};
    s.struct_size = size_of(sizeof s);
    MediaStream full;  // what the core must read if every field is present
    struct Field {
      size_t end;
      bool ok;
    };
    std::vector<Field> fields;  // per field: is it bad, as the plugin filled it in
    auto field = [&](size_t end, auto&& build) {
      const bool before = valid;
      valid = true;
      build();
      fields.push_back({end, valid});
      valid = before;
    };
#define JN_END(f) (offsetof(jn_media_stream, f) + sizeof(s.f))
    s.kind = full.kind = in.u8() % 5;
    field(JN_END(format), [&] { s.format = str(full.format); });
    s.payload_type = full.payload_type = in.u8();
    s.clock_rate = full.clock_rate = in.u32();
    s.channels = full.channels = in.u8();
    field(JN_END(transport), [&] { s.transport = str(full.transport); });
    s.addr = full.addr = addr();
    s.ssrc = full.ssrc = in.u32();
    s.direction = full.direction = in.u8() % 6;
    field(JN_END(bus_stream), [&] { s.bus_stream = str(full.bus_stream); });
    field(JN_END(params), [&] { s.params = str(full.params); });
    field(JN_END(codec_count), [&] { s.codecs = codecs(s.codec_count, full.codecs); });
    s.setup = full.setup = in.u8() % 6;
    s.flags = full.flags = in.u8();
    s.rtcp_addr = full.rtcp_addr = addr();
    field(JN_END(mid), [&] { s.mid = str(full.mid); });
    field(JN_END(ice_ufrag), [&] { s.ice_ufrag = str(full.ice_ufrag); });
    field(JN_END(ice_pwd), [&] { s.ice_pwd = str(full.ice_pwd); });
    field(JN_END(candidate_count), [&] { s.candidates = strs(s.candidate_count, full.candidates); });
    field(JN_END(fingerprint), [&] { s.fingerprint = str(full.fingerprint); });
    field(JN_END(crypto), [&] { s.crypto = strs(s.crypto_count, full.crypto); });

    const uint32_t size = s.struct_size;
    auto present = [&](size_t end) { return size >= end; };
    e = MediaStream{};
    if (!present(JN_END(kind))) {
      abi = true;
      return arena.alloc_bytes(size, &s);
    }
    for (const Field& f : fields)
      if (present(f.end) && !f.ok) mark_invalid();
    e.kind = full.kind;
    if (present(JN_END(format))) e.format = full.format;
    if (present(JN_END(payload_type))) e.payload_type = full.payload_type;
    if (present(JN_END(clock_rate))) e.clock_rate = full.clock_rate;
    if (present(JN_END(channels))) e.channels = full.channels;
    if (present(JN_END(transport))) e.transport = full.transport;
    if (present(JN_END(addr))) e.addr = full.addr;
    if (present(JN_END(ssrc))) e.ssrc = full.ssrc;
    if (present(JN_END(direction))) e.direction = full.direction;
    if (present(JN_END(bus_stream))) e.bus_stream = full.bus_stream;
    if (present(JN_END(params))) e.params = full.params;
    if (present(JN_END(codec_count))) e.codecs = full.codecs;
    if (present(JN_END(setup))) e.setup = full.setup;
    if (present(JN_END(flags))) e.flags = full.flags;
    if (present(JN_END(rtcp_addr))) e.rtcp_addr = full.rtcp_addr;
    if (present(JN_END(mid))) e.mid = full.mid;
    if (present(JN_END(ice_ufrag))) e.ice_ufrag = full.ice_ufrag;
    if (present(JN_END(ice_pwd))) e.ice_pwd = full.ice_pwd;
    if (present(JN_END(candidate_count))) e.candidates = full.candidates;
    if (present(JN_END(fingerprint))) e.fingerprint = full.fingerprint;
    if (present(JN_END(crypto))) e.crypto = full.crypto;
#undef JN_END
    if (e.setup > JN_SETUP_HOLDCONN || e.direction > JN_DIR_INACTIVE) mark_invalid();
    if (!e.codecs.empty()) {
      e.format = e.codecs.front().name;
      e.payload_type = e.codecs.front().payload_type;
      e.clock_rate = e.codecs.front().clock_rate;
      e.channels = e.codecs.front().channels;
    }
    return arena.alloc_bytes(size, &s);
  }

  // The media description; `status` is the model's verdict for it alone.
  const jn_media_desc* media(std::vector<MediaStream>& e, jn_status& status) {
    jn_media_desc d{};
    d.struct_size = size_of(sizeof d);
    uint32_t n;
    d.count = count(kMaxStreams, n);
    status = JN_OK;
    std::vector<const jn_media_stream*> ptrs;
    const bool outer_valid = valid;
    bool null_array = d.count > 0 && in.u8() % 8 == 0;
    e.assign(n, MediaStream{});
    for (uint32_t i = 0; i < n && !null_array; ++i) {
      valid = true;
      bool abi = false;
      ptrs.push_back(stream(e[i], abi));
      // The first bad stream decides the status.
      if (status == JN_OK && (abi || !valid)) status = abi ? JN_ERR_ABI : JN_ERR_INVALID;
    }
    valid = outer_valid;
    if (!null_array) d.streams = arena.array(ptrs);
    if (!JN_HAS_FIELD(&d, jn_media_desc, streams)) status = JN_ERR_ABI;
    else if (d.count > kMaxStreams || (d.count > 0 && !d.streams)) status = JN_ERR_INVALID;
    return arena.alloc_bytes(d.struct_size, &d);
  }
};

bool same(const jn_addr& a, const jn_addr& b) { return std::memcmp(&a, &b, sizeof a) == 0; }
bool same(const Codec& a, const Codec& b) {
  return a.name == b.name && a.payload_type == b.payload_type && a.clock_rate == b.clock_rate && a.channels == b.channels &&
         a.fmtp == b.fmtp && a.rtcp_fb == b.rtcp_fb;
}
bool same(const MediaStream& a, const MediaStream& b) {
  if (a.codecs.size() != b.codecs.size()) return false;
  for (size_t i = 0; i < a.codecs.size(); ++i)
    if (!same(a.codecs[i], b.codecs[i])) return false;
  return a.kind == b.kind && a.format == b.format && a.payload_type == b.payload_type && a.clock_rate == b.clock_rate &&
         a.channels == b.channels && a.transport == b.transport && same(a.addr, b.addr) && a.ssrc == b.ssrc &&
         a.direction == b.direction && a.bus_stream == b.bus_stream && a.params == b.params && a.setup == b.setup &&
         a.flags == b.flags && same(a.rtcp_addr, b.rtcp_addr) && a.mid == b.mid && a.ice_ufrag == b.ice_ufrag &&
         a.ice_pwd == b.ice_pwd && a.fingerprint == b.fingerprint && a.candidates == b.candidates && a.crypto == b.crypto;
}
bool same(const CallEvent& a, const CallEvent& b) {
  if (a.media.has_value() != b.media.has_value()) return false;
  if (a.media) {
    if (a.media->size() != b.media->size()) return false;
    for (size_t i = 0; i < a.media->size(); ++i)
      if (!same((*a.media)[i], (*b.media)[i])) return false;
  }
  return a.type == b.type && a.call_id == b.call_id && a.from == b.from && a.to == b.to && a.target == b.target &&
         a.code == b.code && a.reason == b.reason && a.dtmf == b.dtmf && a.info_type == b.info_type &&
         a.info_body == b.info_body && a.from_name == b.from_name && a.headers == b.headers;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<char[]> pool(new char[size ? size : 1]);
  if (size) std::memcpy(pool.get(), data, size);
  Builder b{Input{data, size}, pool.get(), size, {}};

  jn_call_event ev{};
  ev.struct_size = b.size_of(sizeof ev);
  CallEvent full;
  ev.type = full.type = b.in.u8() % 9;
  // Strings: model validity per field, counted only for the fields within struct_size.
  struct Field {
    size_t end;
    bool ok;
  };
  std::vector<Field> fields;
  auto s = [&](jn_str& dst, std::string& exp, size_t end) {
    b.valid = true;
    dst = b.str(exp);
    fields.push_back({end, b.valid});
  };
#define JN_END(f) (offsetof(jn_call_event, f) + sizeof(ev.f))
  s(ev.call_id, full.call_id, JN_END(call_id));
  s(ev.from, full.from, JN_END(from));
  s(ev.to, full.to, JN_END(to));
  s(ev.target, full.target, JN_END(target));
  jn_status media_status = JN_OK;
  std::vector<MediaStream> media;
  const bool with_media = b.in.u8() % 3 != 0;
  b.valid = true;
  if (with_media) ev.media = b.media(media, media_status);
  ev.code = full.code = static_cast<int32_t>(b.in.u32());
  s(ev.reason, full.reason, JN_END(reason));
  s(ev.dtmf, full.dtmf, JN_END(dtmf));
  s(ev.info_type, full.info_type, JN_END(info_type));
  s(ev.info_body, full.info_body, JN_END(info_body));
  s(ev.from_name, full.from_name, JN_END(from_name));
  // Headers: a name must not be empty.
  {
    b.valid = true;
    uint32_t n;
    ev.header_count = b.count(kMaxListItems, n);
    if (ev.header_count && b.in.u8() % 8 == 0) {
      b.mark_invalid();
    } else if (ev.header_count) {
      if (ev.header_count > kMaxListItems) b.mark_invalid();
      std::vector<jn_header> hs(n);
      full.headers.resize(n);
      for (uint32_t i = 0; i < n; ++i) {
        hs[i].name = b.str(full.headers[i].first);
        if (hs[i].name.len == 0) b.mark_invalid();
        hs[i].value = b.str(full.headers[i].second);
      }
      ev.headers = b.arena.array(hs);
    }
    fields.push_back({JN_END(header_count), b.valid});
  }

  // The model's verdict and the event the core must produce.
  const uint32_t size_given = ev.struct_size;
  auto present = [&](size_t end) { return size_given >= end; };
  CallEvent expect;
  jn_status expect_status = JN_OK;
  if (!present(JN_END(type))) {
    expect_status = JN_ERR_ABI;
  } else {
    bool ok = true;
    for (const Field& f : fields)
      if (present(f.end) && !f.ok) ok = false;
    if (present(JN_END(media)) && ev.media && media_status != JN_OK) expect_status = media_status;
    else if (!ok) expect_status = JN_ERR_INVALID;
    else {
      expect.type = full.type;
      if (present(JN_END(call_id))) expect.call_id = full.call_id;
      if (present(JN_END(from))) expect.from = full.from;
      if (present(JN_END(to))) expect.to = full.to;
      if (present(JN_END(target))) expect.target = full.target;
      if (present(JN_END(media)) && ev.media) expect.media = media;
      if (present(JN_END(code))) expect.code = full.code;
      if (present(JN_END(reason))) expect.reason = full.reason;
      if (present(JN_END(dtmf))) expect.dtmf = full.dtmf;
      if (present(JN_END(info_type))) expect.info_type = full.info_type;
      if (present(JN_END(info_body))) expect.info_body = full.info_body;
      if (present(JN_END(from_name))) expect.from_name = full.from_name;
      if (present(JN_END(header_count))) expect.headers = full.headers;
    }
  }
#undef JN_END

  const jn_call_event* given = b.arena.alloc_bytes(size_given, &ev);
  CallEvent out;
  out.type = 99;  // from_abi must reset whatever it is handed
  jn_status st = from_abi(*given, out);
  if (st != expect_status) std::abort();
  if (!same(out, expect)) std::abort();  // (an error leaves the empty event)
  if (st == JN_OK && from_abi(*given).type != out.type) std::abort();
  if (st != JN_OK && from_abi(*given).type != 0) std::abort();

  // A description alone (anchor replies) reads as it does inside an event.
  if (ev.media) {
    std::vector<MediaStream> alone;
    jn_status ms = read_media(*ev.media, alone);
    if (ms != media_status) std::abort();
    if (ms == JN_OK && st == JN_OK && present(offsetof(jn_call_event, media) + sizeof(ev.media))) {
      if (alone.size() != out.media->size()) std::abort();
      for (size_t i = 0; i < alone.size(); ++i)
        if (!same(alone[i], (*out.media)[i])) std::abort();
    }
  }

  // What the core hands to the other leg reads back as the same event.
  if (st == JN_OK) {
    AbiCallEvent again(out);
    CallEvent back;
    if (from_abi(*again.get(), back) != JN_OK) std::abort();
    if (!same(back, out)) std::abort();
  }
  return 0;
}
