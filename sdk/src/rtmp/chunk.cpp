// RTMP chunk stream writer and reader (junction/rtmp/chunk.hpp).
#include <junction/rtmp/chunk.hpp>
#include <junction/util/encoding.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>

namespace junction::rtmp {

namespace {

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

void put_basic_header(std::vector<uint8_t>& out, uint8_t fmt, uint32_t csid) {
  if (csid < 64) {
    out.push_back(static_cast<uint8_t>(fmt << 6 | csid));
  } else if (csid < 320) {
    out.push_back(static_cast<uint8_t>(fmt << 6));
    out.push_back(static_cast<uint8_t>(csid - 64));
  } else {
    uint32_t v = csid - 64;
    out.push_back(static_cast<uint8_t>(fmt << 6 | 1));
    out.push_back(static_cast<uint8_t>(v));
    out.push_back(static_cast<uint8_t>(v >> 8));
  }
}

uint32_t be24(const uint8_t* p) { return uint32_t(p[0]) << 16 | uint32_t(p[1]) << 8 | p[2]; }
uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | be24(p + 1); }

void write_control(const ChunkWriter& w, std::vector<uint8_t>& out, uint8_t type, const uint8_t* body, size_t len) {
  w.write(out, 2, type, 0, 0, body, len);
}

}  // namespace

bool ChunkWriter::set_chunk_size(uint32_t size) {
  if (size < 1 || size > kMaxChunkSize) return false;
  chunk_size_ = size;
  return true;
}

void ChunkWriter::write(std::vector<uint8_t>& out, uint32_t csid, uint8_t type, uint32_t stream_id,
                        uint32_t timestamp, const uint8_t* payload, size_t len) const {
  begin(out, csid, type, stream_id, timestamp, len).put(payload, len);
}

void ChunkOut::put(const uint8_t* p, size_t n) {
  while (n) {
    if (room_ == 0) {  // the next chunk of the message: its continuation header
      put_basic_header(out_, 3, csid_);
      if (ext_) rtmp::put_u32(out_, ts_);
      room_ = left_ < chunk_size_ ? left_ : chunk_size_;
    }
    size_t k = n < room_ ? n : room_;
    out_.insert(out_.end(), p, p + k);
    p += k, n -= k, room_ -= k, left_ -= k;
  }
}

ChunkOut ChunkWriter::begin(std::vector<uint8_t>& out, uint32_t csid, uint8_t type, uint32_t stream_id,
                            uint32_t timestamp, size_t len) const {
  bool ext = timestamp >= 0xFFFFFF;
  size_t chunks = len == 0 ? 1 : (len + chunk_size_ - 1) / chunk_size_;
  out.reserve(out.size() + len + 18 + (chunks - 1) * 7);
  put_basic_header(out, 0, csid);
  uint32_t ts_field = ext ? 0xFFFFFF : timestamp;
  out.push_back(static_cast<uint8_t>(ts_field >> 16));
  out.push_back(static_cast<uint8_t>(ts_field >> 8));
  out.push_back(static_cast<uint8_t>(ts_field));
  out.push_back(static_cast<uint8_t>(len >> 16));
  out.push_back(static_cast<uint8_t>(len >> 8));
  out.push_back(static_cast<uint8_t>(len));
  out.push_back(type);
  for (int s = 0; s < 32; s += 8) out.push_back(static_cast<uint8_t>(stream_id >> s));  // little endian
  if (ext) put_u32(out, timestamp);
  return ChunkOut(out, chunk_size_, csid, timestamp, ext, len);
}

void write_set_chunk_size(const ChunkWriter& w, std::vector<uint8_t>& out, uint32_t size) {
  uint8_t b[4] = {uint8_t(size >> 24 & 0x7F), uint8_t(size >> 16), uint8_t(size >> 8), uint8_t(size)};
  write_control(w, out, kSetChunkSize, b, 4);
}
void write_acknowledgement(const ChunkWriter& w, std::vector<uint8_t>& out, uint32_t sequence) {
  uint8_t b[4] = {uint8_t(sequence >> 24), uint8_t(sequence >> 16), uint8_t(sequence >> 8), uint8_t(sequence)};
  write_control(w, out, kAcknowledgement, b, 4);
}
void write_window_ack_size(const ChunkWriter& w, std::vector<uint8_t>& out, uint32_t size) {
  uint8_t b[4] = {uint8_t(size >> 24), uint8_t(size >> 16), uint8_t(size >> 8), uint8_t(size)};
  write_control(w, out, kWindowAckSize, b, 4);
}
void write_set_peer_bandwidth(const ChunkWriter& w, std::vector<uint8_t>& out, uint32_t size, uint8_t limit_type) {
  uint8_t b[5] = {uint8_t(size >> 24), uint8_t(size >> 16), uint8_t(size >> 8), uint8_t(size), limit_type};
  write_control(w, out, kSetPeerBandwidth, b, 5);
}
void write_user_control(const ChunkWriter& w, std::vector<uint8_t>& out, uint16_t event, uint32_t value) {
  uint8_t b[6] = {uint8_t(event >> 8), uint8_t(event), uint8_t(value >> 24), uint8_t(value >> 16),
                  uint8_t(value >> 8), uint8_t(value)};
  write_control(w, out, kUserControl, b, 6);
}

ChunkReader::Stream* ChunkReader::stream(uint32_t csid, bool create) {
  for (auto& s : streams_)
    if (s.csid == csid) return &s;
  if (!create) return nullptr;
  if (streams_.size() >= kMaxStreams) return nullptr;
  if (streams_.capacity() < kMaxStreams) streams_.reserve(kMaxStreams);  // pointers stay valid
  streams_.emplace_back();
  streams_.back().csid = csid;
  return &streams_.back();
}

bool ChunkReader::fail(const char* why) {
  error_ = why;
  return false;
}

// Bytes the header being read needs, from what hdr_ holds so far (grows as fields arrive).
size_t ChunkReader::header_needed() const {
  if (hdr_len_ == 0) return 1;
  uint8_t fmt = hdr_[0] >> 6;
  size_t basic = (hdr_[0] & 63) == 0 ? 2 : (hdr_[0] & 63) == 1 ? 3 : 1;
  static constexpr size_t kMsg[4] = {11, 7, 3, 0};
  size_t need = basic + kMsg[fmt];
  if (hdr_len_ < need) return need;
  bool ext;
  if (fmt < 3) {
    ext = be24(hdr_ + basic) == 0xFFFFFF;
  } else {
    uint32_t csid = basic == 1 ? (hdr_[0] & 63u) : basic == 2 ? 64u + hdr_[1] : 64u + hdr_[1] + (uint32_t(hdr_[2]) << 8);
    const Stream* s = nullptr;
    for (const auto& st : streams_)
      if (st.csid == csid) s = &st;
    ext = s && s->extended;
  }
  return need + (ext ? 4 : 0);
}

// The header in hdr_ is complete: update its chunk stream and start reading the chunk's payload.
bool ChunkReader::apply_header() {
  uint8_t fmt = hdr_[0] >> 6;
  size_t basic = (hdr_[0] & 63) == 0 ? 2 : (hdr_[0] & 63) == 1 ? 3 : 1;
  uint32_t csid = basic == 1 ? (hdr_[0] & 63u) : basic == 2 ? 64u + hdr_[1] : 64u + hdr_[1] + (uint32_t(hdr_[2]) << 8);
  Stream* s = stream(csid, fmt == 0);
  if (!s) {
    if (fmt == 0) return fail("too many chunk streams at once");
    return fail("chunk header type 1-3 on a chunk stream with no previous header");
  }
  if (fmt > 0 && !s->has_header) return fail("chunk header type 1-3 on a chunk stream with no previous header");
  const uint8_t* m = hdr_ + basic;
  bool in_progress = s->received > 0 && s->received < s->header.length;
  if (fmt < 3) {
    if (in_progress) return fail("new message header on a chunk stream whose message is incomplete");
    uint32_t ts = be24(m);
    s->extended = ts == 0xFFFFFF;
    if (s->extended) ts = be32(m + (fmt == 0 ? 11 : fmt == 1 ? 7 : 3));
    if (fmt == 0) {
      s->header.timestamp = ts;
      s->delta = ts;  // a type 3 that starts the next message adds it (ffmpeg, librtmp)
    } else {
      s->header.timestamp += ts;
      s->delta = ts;
    }
    if (fmt <= 1) {
      s->header.length = be24(m + 3);
      s->header.type = m[6];
    }
    if (fmt == 0) s->header.stream_id = uint32_t(m[7]) | uint32_t(m[8]) << 8 | uint32_t(m[9]) << 16 | uint32_t(m[10]) << 24;
    s->has_header = true;
    s->received = 0;
  } else if (!in_progress) {
    // Type 3 starting a new message: same header, timestamp advanced by the last delta.
    s->header.timestamp += s->delta;
    s->received = 0;
  }
  if (s->received == 0) {
    if (s->header.length > max_message_) return fail("message larger than the reader accepts");
    s->buf.resize(s->header.length);
  }
  cur_ = s;
  chunk_left_ = std::min<uint32_t>(chunk_size_, s->header.length - s->received);
  return true;
}

bool ChunkReader::deliver(Stream& s, Sink& sink, bool* stop) {
  Message msg{s.csid, s.header, s.buf.data()};
  s.received = 0;
  // Protocol control the reader itself needs (5.4.1, 5.4.2).
  if (s.header.type == kSetChunkSize && s.csid == 2 && s.header.length >= 4) {
    uint32_t size = be32(s.buf.data()) & 0x7FFFFFFF;
    if (size < 1 || size > kMaxChunkSize) return fail("Set Chunk Size out of range");
    chunk_size_ = size;
  } else if (s.header.type == kAbort && s.header.length >= 4) {
    if (Stream* a = stream(be32(s.buf.data()), false)) a->received = 0;
  }
  if (!sink.on_message(msg)) *stop = true;
  return true;
}

ChunkReader::Result ChunkReader::feed(const uint8_t* data, size_t len, Sink& sink) {
  if (error_) return Result::Error;
  bytes_ += len;
  size_t pos = 0;
  for (;;) {
    if (!cur_) {
      // Header bytes, as many as the header needs (known once its first fields are in).
      for (;;) {
        size_t need = header_needed();
        if (hdr_len_ >= need) break;
        if (pos >= len) return Result::Ok;
        size_t n = std::min(need - hdr_len_, len - pos);
        std::copy(data + pos, data + pos + n, hdr_ + hdr_len_);
        hdr_len_ += n;
        pos += n;
      }
      if (!apply_header()) return Result::Error;
      hdr_len_ = 0;
    }
    size_t n = std::min<size_t>(chunk_left_, len - pos);
    if (n) {
      std::copy(data + pos, data + pos + n, cur_->buf.data() + cur_->received);
      cur_->received += static_cast<uint32_t>(n);
      chunk_left_ -= static_cast<uint32_t>(n);
      pos += n;
    }
    if (chunk_left_ > 0) return Result::Ok;  // input used up mid-chunk
    Stream* s = cur_;
    cur_ = nullptr;
    if (s->received == s->header.length) {
      bool stop = false;
      if (!deliver(*s, sink, &stop)) return Result::Error;
      if (stop) return Result::Stopped;
    }
    if (pos >= len) return Result::Ok;
  }
}

namespace {

// Saved state is JSON with hex blobs (util/encoding.hpp's codec).
std::string hex(const uint8_t* p, size_t n) { return util::hex_encode({reinterpret_cast<const char*>(p), n}); }
bool unhex(const std::string& s, std::vector<uint8_t>& out) {
  std::string bytes;
  if (!util::hex_decode(s, bytes)) return false;
  out.assign(bytes.begin(), bytes.end());
  return true;
}

}  // namespace

std::string ChunkReader::save() const {
  if (error_) return {};
  nlohmann::json j;
  j["v"] = 1;
  j["chunk_size"] = chunk_size_;
  j["bytes"] = bytes_;
  j["hdr"] = hex(hdr_, hdr_len_);
  j["cur"] = cur_ ? static_cast<int64_t>(cur_ - streams_.data()) : -1;
  j["chunk_left"] = chunk_left_;
  auto& arr = j["streams"] = nlohmann::json::array();
  for (const auto& s : streams_) {
    arr.push_back({{"csid", s.csid}, {"ts", s.header.timestamp}, {"len", s.header.length}, {"type", s.header.type},
                   {"sid", s.header.stream_id}, {"delta", s.delta}, {"ext", s.extended}, {"has", s.has_header},
                   {"received", s.received}, {"buf", hex(s.buf.data(), std::min<size_t>(s.received, s.buf.size()))}});
  }
  return j.dump();
}

bool ChunkReader::restore(std::string_view bytes, std::string& error) {
  auto j = nlohmann::json::parse(bytes, nullptr, false);
  auto bad = [&](const char* why) {
    error = std::string("chunk reader state: ") + why;
    return false;
  };
  if (!j.is_object() || j.value("v", 0) != 1) return bad("not a version 1 state");
  try {
    uint32_t cs = j.at("chunk_size").get<uint32_t>();
    if (cs < 1 || cs > kMaxChunkSize) return bad("chunk size out of range");
    std::vector<uint8_t> hdr;
    if (!unhex(j.at("hdr").get<std::string>(), hdr) || hdr.size() > sizeof hdr_) return bad("bad partial header");
    const auto& arr = j.at("streams");
    if (!arr.is_array() || arr.size() > kMaxStreams) return bad("bad chunk streams");
    std::vector<Stream> streams;
    streams.reserve(kMaxStreams);
    for (const auto& e : arr) {
      Stream s;
      s.csid = e.at("csid").get<uint32_t>();
      s.header.timestamp = e.at("ts").get<uint32_t>();
      s.header.length = e.at("len").get<uint32_t>();
      s.header.type = e.at("type").get<uint8_t>();
      s.header.stream_id = e.at("sid").get<uint32_t>();
      s.delta = e.at("delta").get<uint32_t>();
      s.extended = e.at("ext").get<bool>();
      s.has_header = e.at("has").get<bool>();
      s.received = e.at("received").get<uint32_t>();
      if (s.header.length > max_message_ || s.received > s.header.length) return bad("message size out of range");
      if (!unhex(e.at("buf").get<std::string>(), s.buf) || s.buf.size() != s.received) return bad("bad partial message");
      s.buf.resize(s.header.length);
      streams.push_back(std::move(s));
    }
    int64_t cur = j.at("cur").get<int64_t>();
    uint32_t left = j.at("chunk_left").get<uint32_t>();
    if (cur >= static_cast<int64_t>(streams.size()) || cur < -1 || (cur >= 0 && !hdr.empty()))
      return bad("bad current chunk stream");
    if (cur >= 0 && left > streams[static_cast<size_t>(cur)].header.length - streams[static_cast<size_t>(cur)].received)
      return bad("bad chunk remainder");
    streams_ = std::move(streams);
    chunk_size_ = cs;
    bytes_ = j.at("bytes").get<uint64_t>();
    hdr_len_ = hdr.size();
    std::copy(hdr.begin(), hdr.end(), hdr_);
    cur_ = cur >= 0 ? &streams_[static_cast<size_t>(cur)] : nullptr;
    chunk_left_ = cur_ ? left : 0;
    error_ = nullptr;
    return true;
  } catch (const std::exception& e) {  // control plane: a missing or mistyped field
    return bad(e.what());
  }
}

}  // namespace junction::rtmp
