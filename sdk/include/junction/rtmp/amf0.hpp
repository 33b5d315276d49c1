// AMF0 (Adobe Action Message Format 0): the encoding of RTMP command messages (connect,
// createStream, publish, _result/_error/onStatus) and of data messages (@setDataFrame onMetaData).
// Commands are control-plane traffic (a handful per connection), so values here are plain
// allocating C++ objects. Decoding never throws: a malformed or truncated input, or one nested
// deeper than kMaxDepth, makes decode() return false with a reason.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace junction::rtmp::amf0 {

// Type markers (AMF0 spec, 2.1). Only these are decoded; others (movieclip, recordset, AVM+
// switch) make decode() fail.
enum Marker : uint8_t {
  kNumber = 0x00,
  kBoolean = 0x01,
  kString = 0x02,
  kObject = 0x03,
  kNull = 0x05,
  kUndefined = 0x06,
  kReference = 0x07,
  kEcmaArray = 0x08,
  kObjectEnd = 0x09,
  kStrictArray = 0x0A,
  kDate = 0x0B,
  kLongString = 0x0C,
  kUnsupported = 0x0D,
  kXmlDocument = 0x0F,
  kTypedObject = 0x10,
};

inline constexpr int kMaxDepth = 16;           // nesting of objects/arrays accepted on decode
inline constexpr size_t kMaxElements = 65536;  // members of one object/array accepted on decode

enum class Type : uint8_t { Number, Boolean, String, Object, Null, Undefined, EcmaArray, StrictArray, Date, Reference, Unsupported };

struct Value {
  Type type = Type::Null;
  double number = 0;      // Number, Date (ms since epoch), Reference (index)
  bool boolean = false;   // Boolean
  std::string string;     // String (short or long), XmlDocument; TypedObject's class name
  std::vector<std::pair<std::string, Value>> props;  // Object, EcmaArray (in order)
  std::vector<Value> items;                          // StrictArray

  static Value num(double v) { Value x; x.type = Type::Number; x.number = v; return x; }
  static Value boolean_(bool v) { Value x; x.type = Type::Boolean; x.boolean = v; return x; }
  static Value str(std::string v) { Value x; x.type = Type::String; x.string = std::move(v); return x; }
  static Value null() { return Value{}; }
  static Value undefined() { Value x; x.type = Type::Undefined; return x; }
  static Value object(std::vector<std::pair<std::string, Value>> p = {}) {
    Value x; x.type = Type::Object; x.props = std::move(p); return x;
  }
  static Value ecma_array(std::vector<std::pair<std::string, Value>> p = {}) {
    Value x; x.type = Type::EcmaArray; x.props = std::move(p); return x;
  }
  static Value strict_array(std::vector<Value> v = {}) {
    Value x; x.type = Type::StrictArray; x.items = std::move(v); return x;
  }

  // Object / EcmaArray member by name (nullptr when absent or not an object).
  const Value* get(std::string_view name) const;
  // The member's string / number, or the fallback when absent or of another type.
  std::string_view get_string(std::string_view name, std::string_view fallback = {}) const;
  double get_number(std::string_view name, double fallback = 0) const;

  bool operator==(const Value& o) const;
};

// Encoders append to out. Strings over 65535 bytes are written as long strings.
void put_number(std::vector<uint8_t>& out, double v);
void put_boolean(std::vector<uint8_t>& out, bool v);
void put_string(std::vector<uint8_t>& out, std::string_view s);
void put_null(std::vector<uint8_t>& out);
// An object's members: put_object_begin, then for each member put_key + a value, then put_object_end.
void put_object_begin(std::vector<uint8_t>& out);
void put_ecma_array_begin(std::vector<uint8_t>& out, uint32_t count);
void put_key(std::vector<uint8_t>& out, std::string_view key);  // a member name (no marker)
void put_object_end(std::vector<uint8_t>& out);                 // 00 00 09
void encode(std::vector<uint8_t>& out, const Value& v);

// Decodes one value at data[*pos], advancing *pos. On failure returns false, *error (static
// string) says why and *pos is unspecified.
bool decode(const uint8_t* data, size_t size, size_t* pos, Value* out, const char** error);
// Decodes values until the end of the input (a whole command or data message body).
bool decode_all(const uint8_t* data, size_t size, std::vector<Value>* out, const char** error);

}  // namespace junction::rtmp::amf0
