// Verto's JSON-RPC 2.0 as FreeSWITCH's mod_verto speaks it: requests and responses in one frame
// (or a batch), integer ids from the server, client ids of any JSON type echoed, mod_verto's
// error codes. Pure functions over nlohmann::json: the plugin, the unit tests and the fuzz
// target share them.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace verto {

using json = nlohmann::json;

// mod_verto's codes (and JSON-RPC's for the generic ones).
enum ErrorCode : int {
  kInvalidRequest = -32600,  // not JSON, not an object, no method, params not an object
  kMethodNotFound = -32601,
  kInvalidParams = -32602,
  kAuthRequired = -32000,    // anything but login before a login; a login without credentials
  kLoginFailed = -32001,     // wrong password / token, or another user's sessid ("Session in use")
  kCallNotFound = -32002,
  kRateLimited = -32003,     // Junction's own: over the per-connection request rate (README)
};

struct Message {
  enum Kind { Request, Response, Invalid } kind = Invalid;
  json id;             // request: the client's id (any JSON type, null when absent); response: ours
  std::string method;  // request
  json params;         // request: an object (absent = {})
  json result;         // response: result, or null
  json error;          // response: error object, or null
  std::string why;     // Invalid: the reason, for the error reply and the log
};

struct Frame {
  bool batch = false;
  std::vector<Message> messages;  // a frame that is not JSON: one Invalid message
};

struct Limits {
  size_t max_batch = 16;  // a longer batch is one Invalid message (answered once)
  size_t max_depth = 32;  // JSON nesting deeper than this is refused before parsing
};

Frame parse_frame(std::string_view text, const Limits& lim = {});

// A reply to a client request: mod_verto adds the connection's sessid to every result.
json make_result(const json& id, json result, const std::string& sessid);
json make_error(const json& id, int code, const std::string& message);
json make_request(int64_t id, const std::string& method, json params);

// Text of a JSON value for log lines: at most 120 bytes, non-printables escaped.
std::string printable(std::string_view s, size_t max = 120);

}  // namespace verto
