// XXXCID codec: the door station's binary UDP protocol and the phone app's JSON orders.
// Pure functions, no Host: unit-tested and fuzzed on their own.
//
// Door datagram layout (canonical, ../shared/seeds/README.md):
//   "XXXCID"(6) cmd(1) type(1) [op(1) for cmd 150] caller addr(20) caller IP(4)
//   cmd 154 type 1: requested addr(20) requested IP(4)                          = 56 bytes
//   cmd 154 type 2: count(1) then count x (addr(20) IP(4))                      = 33 + 24n
//   cmd 150:        callee addr(20) callee IP(4) [multicast flag(1) group(4)]   = 57 or 62
// Addresses are ASCII [0-9A-Za-z._-], left-aligned, padded with NUL (or spaces) to 20 bytes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace xxxcid {

constexpr size_t kAddrLen = 20;
constexpr size_t kHeaderLen = 6;
constexpr uint8_t kCmdCall = 150;
constexpr uint8_t kCmdResolve = 154;
constexpr uint8_t kTypeRequest = 1;
constexpr uint8_t kTypeReply = 2;
constexpr size_t kResolveLen = 56;
constexpr size_t kCallLen = 57;
constexpr size_t kCallMcastLen = 62;
constexpr size_t kMaxResolved = 16;

enum Op : uint8_t { kOpCall = 1, kOpBusy = 2, kOpAnswer = 4, kOpTalk = 6, kOpUnlock = 10, kOpHangup = 30 };

using Ip4 = std::array<uint8_t, 4>;

struct Party {
  std::string addr;  // without padding
  Ip4 ip{};
  bool operator==(const Party&) const = default;
};

struct Packet {
  uint8_t cmd = 0;
  uint8_t type = 0;
  uint8_t op = 0;  // cmd 150 only
  Party caller;
  Party callee;                 // cmd 150; cmd 154 type 1: the address to resolve
  bool has_mcast = false;       // cmd 150: the optional multicast fields are present
  uint8_t mcast = 0;
  Ip4 group{};
  std::vector<Party> resolved;  // cmd 154 type 2
  bool operator==(const Packet&) const = default;
};

enum class Error {
  kNone,
  kShort,        // shorter than header + cmd + type
  kHeader,       // not "XXXCID"
  kCmd,          // unknown cmd
  kType,         // unknown type
  kOp,           // unknown operation
  kLength,       // length does not match the cmd's layout (short or oversized)
  kAddress,      // an address field with bad characters, bad padding or empty
  kCount,        // cmd 154 type 2 count 0 or over kMaxResolved
};
const char* to_string(Error e);

bool valid_op(uint8_t op);
// The address charset check, also used for the phone's JSON fields.
bool valid_address(std::string_view a);

std::optional<Packet> parse(const uint8_t* data, size_t len, Error* err = nullptr);
// Serialises a packet; addresses longer than 20 bytes are refused (empty string returned).
std::string serialise(const Packet& p);

std::string ip_text(const Ip4& ip);

// --- phone side: one JSON object per UDP datagram ------------------------------------------
// Media datagrams on the same socket start with a tag byte instead of '{'.
constexpr uint8_t kTagVideo = 0x01;
constexpr uint8_t kTagAudio = 0x02;

struct Order {
  std::string order;  // "heartbeat", "call ok", "talk", "unlock", "over", "over success", "enable_video", ...
  std::string door;       // doorAddress
  std::string room;       // roomAddress
  std::string uid;
  std::string community;
  bool operator==(const Order&) const = default;
};

enum class OrderError { kNone, kJson, kNotObject, kOrder, kField, kUid, kAddress, kCommunity };
const char* to_string(OrderError e);

// Orders a phone may send.
bool phone_order(std::string_view order);
// Parses one datagram. uid is required; doorAddress/roomAddress are required for every order
// but heartbeat and enable_video (checked by the caller per order); "communit y" (the
// document's typo) is accepted for community.
std::optional<Order> parse_order(std::string_view text, OrderError* err = nullptr);
std::string serialise_order(const Order& o);

}  // namespace xxxcid
