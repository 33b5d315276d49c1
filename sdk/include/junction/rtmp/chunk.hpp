// The RTMP chunk stream (Adobe RTMP specification 1.0, 5.3) and protocol control messages (5.4,
// 6.2 User Control, 7.1 message types).
//
// ChunkWriter splits messages into chunks of its chunk size: a type-0 header for the first
// chunk (timestamps >= 0xFFFFFF go in the extended timestamp field), type-3 headers for the rest
// (repeating the extended timestamp when the message has one, as nginx-rtmp, librtmp and ffmpeg
// expect). ChunkReader reassembles messages from bytes split anywhere (all four header types,
// 1-3 byte basic headers, extended timestamps, Set Chunk Size and Abort applied as they arrive);
// it serves both the publisher (the server's messages) and tests (a server-side reader).
// Neither throws; the reader's state and buffers are bounded (max_message, kMaxStreams).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace junction::rtmp {

// Message type ids (7.1).
enum MessageType : uint8_t {
  kSetChunkSize = 1,
  kAbort = 2,
  kAcknowledgement = 3,
  kUserControl = 4,
  kWindowAckSize = 5,
  kSetPeerBandwidth = 6,
  kAudioMessage = 8,
  kVideoMessage = 9,
  kDataAmf3 = 15,
  kSharedObjectAmf3 = 16,
  kCommandAmf3 = 17,
  kDataAmf0 = 18,
  kSharedObjectAmf0 = 19,
  kCommandAmf0 = 20,
  kAggregate = 22,
};

// User Control event types (6.2 / 7.1.7).
enum UserControlEvent : uint16_t {
  kStreamBegin = 0,
  kStreamEof = 1,
  kStreamDry = 2,
  kSetBufferLength = 3,
  kStreamIsRecorded = 4,
  kPingRequest = 6,
  kPingResponse = 7,
};

inline constexpr uint32_t kDefaultChunkSize = 128;
inline constexpr uint32_t kMaxChunkSize = 0xFFFFFF;  // larger Set Chunk Size values are refused (as nginx-rtmp does)
inline constexpr uint32_t kMinCsid = 2, kMaxCsid = 65599;
inline constexpr size_t kHandshakeSize = 1536;  // C1/S1/C2/S2

struct MessageHeader {
  uint32_t timestamp = 0;  // ms (absolute, 32 bits)
  uint32_t length = 0;     // payload bytes
  uint8_t type = 0;        // MessageType
  uint32_t stream_id = 0;  // message stream id
};

struct Message {
  uint32_t csid = 0;
  MessageHeader header;
  const uint8_t* payload = nullptr;  // header.length bytes, valid during the callback only
};

// One message being appended in pieces (ChunkWriter::begin): put() copies payload bytes and
// inserts a continuation header (type 3) at each chunk boundary, so a message is built straight
// into the output with no body buffer of its own. The pieces must add up to the begun length.
class ChunkOut {
 public:
  void put(const uint8_t* p, size_t n);
  void put_u32(uint32_t v) {
    uint8_t b[4] = {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
    put(b, 4);
  }

 private:
  friend class ChunkWriter;
  ChunkOut(std::vector<uint8_t>& out, uint32_t chunk_size, uint32_t csid, uint32_t timestamp, bool ext, size_t len)
      : out_(out), chunk_size_(chunk_size), csid_(csid), ts_(timestamp), ext_(ext), left_(len),
        room_(len < chunk_size ? len : chunk_size) {}
  std::vector<uint8_t>& out_;
  uint32_t chunk_size_, csid_, ts_;
  bool ext_;
  size_t left_;  // payload bytes still to come
  size_t room_;  // of them, in the current chunk
};

class ChunkWriter {
 public:
  uint32_t chunk_size() const { return chunk_size_; }
  // Takes effect for the next message: call it right after writing the Set Chunk Size message
  // that announces it (1..kMaxChunkSize; other values are ignored and false returned).
  bool set_chunk_size(uint32_t size);
  // Appends the chunks of one message to out. csid 2..65599 (1-3 byte basic header).
  void write(std::vector<uint8_t>& out, uint32_t csid, uint8_t type, uint32_t stream_id, uint32_t timestamp,
             const uint8_t* payload, size_t len) const;
  // The same message in pieces: the first chunk's header now, the len payload bytes through put().
  ChunkOut begin(std::vector<uint8_t>& out, uint32_t csid, uint8_t type, uint32_t stream_id, uint32_t timestamp,
                 size_t len) const;

 private:
  uint32_t chunk_size_ = kDefaultChunkSize;
};

// Protocol control and user control messages, whole (chunked on csid 2, stream 0), appended to out.
void write_set_chunk_size(const ChunkWriter& w, std::vector<uint8_t>& out, uint32_t size);
void write_acknowledgement(const ChunkWriter& w, std::vector<uint8_t>& out, uint32_t sequence);
void write_window_ack_size(const ChunkWriter& w, std::vector<uint8_t>& out, uint32_t size);
void write_set_peer_bandwidth(const ChunkWriter& w, std::vector<uint8_t>& out, uint32_t size, uint8_t limit_type);
void write_user_control(const ChunkWriter& w, std::vector<uint8_t>& out, uint16_t event, uint32_t value);

class ChunkReader {
 public:
  // Receives each complete message. Returning false stops feed() (it returns Stopped).
  struct Sink {
    virtual bool on_message(const Message& m) = 0;

   protected:
    ~Sink() = default;
  };
  enum class Result { Ok, Error, Stopped };
  static constexpr size_t kMaxStreams = 64;  // chunk streams with state at once

  explicit ChunkReader(size_t max_message = 1u << 20) : max_message_(max_message) {}

  // Parses bytes (any split). Set Chunk Size (type 1) and Abort (type 2) are applied by the
  // reader, and still delivered. On Error, error() says why and the reader stays failed.
  Result feed(const uint8_t* data, size_t len, Sink& sink);
  const char* error() const { return error_; }
  uint32_t chunk_size() const { return chunk_size_; }
  uint64_t bytes() const { return bytes_; }  // fed so far

  // Hot reload: the whole reader state (chunk size, per-stream headers, a message or header half
  // read) as JSON, and back into a fresh reader made with the same max_message. A failed reader
  // saves nothing (empty).
  std::string save() const;
  bool restore(std::string_view bytes, std::string& error);

 private:
  struct Stream {
    uint32_t csid = 0;
    MessageHeader header;     // of the current / last message
    uint32_t delta = 0;       // last timestamp delta (type 3 starting a new message reuses it)
    bool extended = false;    // the current message's header had an extended timestamp
    bool has_header = false;  // a message header was seen on this chunk stream
    uint32_t received = 0;    // payload bytes of the current message so far
    std::vector<uint8_t> buf;
  };
  Stream* stream(uint32_t csid, bool create);
  bool fail(const char* why);
  size_t header_needed() const;
  bool apply_header();
  bool deliver(Stream& s, Sink& sink, bool* stop);

  size_t max_message_;
  uint32_t chunk_size_ = kDefaultChunkSize;
  std::vector<Stream> streams_;
  uint8_t hdr_[18] = {};  // the chunk header being read (3 basic + 11 message + 4 extended)
  size_t hdr_len_ = 0;
  Stream* cur_ = nullptr;    // the chunk whose payload is being read (nullptr: reading a header)
  uint32_t chunk_left_ = 0;  // payload bytes left in the current chunk
  uint64_t bytes_ = 0;
  const char* error_ = nullptr;
};

}  // namespace junction::rtmp
