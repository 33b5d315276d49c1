// AMF0 encoding and decoding (junction/rtmp/amf0.hpp).
#include <junction/rtmp/amf0.hpp>

#include <cstring>

namespace junction::rtmp::amf0 {

namespace {

void put_u16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}
void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}
void put_double(std::vector<uint8_t>& out, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, 8);
  for (int s = 56; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(bits >> s));
}

struct Cursor {
  const uint8_t* p;
  size_t size;
  size_t pos;
  const char* error = nullptr;

  bool need(size_t n, const char* what) {
    if (size - pos < n) {
      error = what;
      return false;
    }
    return true;
  }
  uint16_t u16() { uint16_t v = static_cast<uint16_t>(p[pos] << 8 | p[pos + 1]); pos += 2; return v; }
  uint32_t u32() {
    uint32_t v = uint32_t(p[pos]) << 24 | uint32_t(p[pos + 1]) << 16 | uint32_t(p[pos + 2]) << 8 | p[pos + 3];
    pos += 4;
    return v;
  }
  double dbl() {
    uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits = bits << 8 | p[pos + i];
    pos += 8;
    double v;
    std::memcpy(&v, &bits, 8);
    return v;
  }
  bool str(size_t len_bytes, std::string* out) {
    if (!need(len_bytes, "truncated string length")) return false;
    size_t n = len_bytes == 2 ? u16() : u32();
    if (!need(n, "truncated string")) return false;
    out->assign(reinterpret_cast<const char*>(p + pos), n);
    pos += n;
    return true;
  }
};

bool decode_value(Cursor& c, Value* out, int depth);

// Members until the 00 00 09 end marker.
bool decode_props(Cursor& c, Value* out, int depth) {
  for (;;) {
    if (!c.need(3, "truncated object (no end marker)")) return false;
    if (c.p[c.pos] == 0 && c.p[c.pos + 1] == 0 && c.p[c.pos + 2] == kObjectEnd) {
      c.pos += 3;
      return true;
    }
    if (out->props.size() >= kMaxElements) {
      c.error = "object has too many members";
      return false;
    }
    std::string key;
    if (!c.str(2, &key)) return false;
    Value v;
    if (!decode_value(c, &v, depth + 1)) return false;
    out->props.emplace_back(std::move(key), std::move(v));
  }
}

bool decode_value(Cursor& c, Value* out, int depth) {
  if (depth > kMaxDepth) {
    c.error = "nested too deeply";
    return false;
  }
  if (!c.need(1, "truncated value (no type marker)")) return false;
  uint8_t marker = c.p[c.pos++];
  *out = Value{};
  switch (marker) {
    case kNumber:
      if (!c.need(8, "truncated number")) return false;
      out->type = Type::Number;
      out->number = c.dbl();
      return true;
    case kBoolean:
      if (!c.need(1, "truncated boolean")) return false;
      out->type = Type::Boolean;
      out->boolean = c.p[c.pos++] != 0;
      return true;
    case kString:
      out->type = Type::String;
      return c.str(2, &out->string);
    case kLongString:
    case kXmlDocument:
      out->type = Type::String;
      return c.str(4, &out->string);
    case kObject:
      out->type = Type::Object;
      return decode_props(c, out, depth);
    case kTypedObject:  // class name, then members: kept as an object
      out->type = Type::Object;
      if (!c.str(2, &out->string)) return false;
      return decode_props(c, out, depth);
    case kEcmaArray:
      // The count is a hint (encoders get it wrong); the end marker ends the array.
      if (!c.need(4, "truncated ECMA array count")) return false;
      c.u32();
      out->type = Type::EcmaArray;
      return decode_props(c, out, depth);
    case kStrictArray: {
      if (!c.need(4, "truncated strict array count")) return false;
      uint32_t n = c.u32();
      if (n > kMaxElements || n > c.size - c.pos) {  // each item takes at least one byte
        c.error = "strict array count too large";
        return false;
      }
      out->type = Type::StrictArray;
      out->items.resize(n);
      for (auto& item : out->items)
        if (!decode_value(c, &item, depth + 1)) return false;
      return true;
    }
    case kNull:
      out->type = Type::Null;
      return true;
    case kUndefined:
      out->type = Type::Undefined;
      return true;
    case kUnsupported:
      out->type = Type::Unsupported;
      return true;
    case kReference:
      if (!c.need(2, "truncated reference")) return false;
      out->type = Type::Reference;
      out->number = c.u16();
      return true;
    case kDate:
      if (!c.need(10, "truncated date")) return false;
      out->type = Type::Date;
      out->number = c.dbl();
      c.pos += 2;  // time zone: reserved, 0
      return true;
    case kObjectEnd:
      c.error = "object end marker outside an object";
      return false;
    default:
      c.error = "unsupported AMF0 type marker";
      return false;
  }
}

}  // namespace

const Value* Value::get(std::string_view name) const {
  if (type != Type::Object && type != Type::EcmaArray) return nullptr;
  for (const auto& [k, v] : props)
    if (k == name) return &v;
  return nullptr;
}

std::string_view Value::get_string(std::string_view name, std::string_view fallback) const {
  const Value* v = get(name);
  return v && v->type == Type::String ? std::string_view(v->string) : fallback;
}

double Value::get_number(std::string_view name, double fallback) const {
  const Value* v = get(name);
  return v && v->type == Type::Number ? v->number : fallback;
}

bool Value::operator==(const Value& o) const {
  if (type != o.type) return false;
  switch (type) {
    case Type::Number:
    case Type::Date:
    case Type::Reference:
      // Bit equality: NaN round trips compare equal, 0.0 and -0.0 do not.
      return std::memcmp(&number, &o.number, sizeof number) == 0;
    case Type::Boolean: return boolean == o.boolean;
    case Type::String: return string == o.string;
    case Type::Object:
    case Type::EcmaArray: return string == o.string && props == o.props;
    case Type::StrictArray: return items == o.items;
    default: return true;
  }
}

void put_number(std::vector<uint8_t>& out, double v) {
  out.push_back(kNumber);
  put_double(out, v);
}
void put_boolean(std::vector<uint8_t>& out, bool v) {
  out.push_back(kBoolean);
  out.push_back(v ? 1 : 0);
}
void put_string(std::vector<uint8_t>& out, std::string_view s) {
  if (s.size() > 0xFFFF) {
    out.push_back(kLongString);
    put_u32(out, static_cast<uint32_t>(s.size()));
  } else {
    out.push_back(kString);
    put_u16(out, static_cast<uint16_t>(s.size()));
  }
  out.insert(out.end(), s.begin(), s.end());
}
void put_null(std::vector<uint8_t>& out) { out.push_back(kNull); }
void put_object_begin(std::vector<uint8_t>& out) { out.push_back(kObject); }
void put_ecma_array_begin(std::vector<uint8_t>& out, uint32_t count) {
  out.push_back(kEcmaArray);
  put_u32(out, count);
}
void put_key(std::vector<uint8_t>& out, std::string_view key) {
  // Member names are short strings: longer ones are cut (no AMF0 encoding exists for them).
  size_t n = key.size() > 0xFFFF ? 0xFFFF : key.size();
  put_u16(out, static_cast<uint16_t>(n));
  out.insert(out.end(), key.begin(), key.begin() + static_cast<ptrdiff_t>(n));
}
void put_object_end(std::vector<uint8_t>& out) {
  out.push_back(0);
  out.push_back(0);
  out.push_back(kObjectEnd);
}

void encode(std::vector<uint8_t>& out, const Value& v) {
  switch (v.type) {
    case Type::Number: put_number(out, v.number); break;
    case Type::Boolean: put_boolean(out, v.boolean); break;
    case Type::String: put_string(out, v.string); break;
    case Type::Null: put_null(out); break;
    case Type::Undefined: out.push_back(kUndefined); break;
    case Type::Unsupported: out.push_back(kUnsupported); break;
    case Type::Reference:
      out.push_back(kReference);
      put_u16(out, static_cast<uint16_t>(v.number));
      break;
    case Type::Date:
      out.push_back(kDate);
      put_double(out, v.number);
      put_u16(out, 0);
      break;
    case Type::Object:
    case Type::EcmaArray:
      if (v.type == Type::EcmaArray) {
        put_ecma_array_begin(out, static_cast<uint32_t>(v.props.size()));
      } else if (!v.string.empty()) {
        out.push_back(kTypedObject);
        put_key(out, v.string);
      } else {
        put_object_begin(out);
      }
      for (const auto& [k, m] : v.props) {
        put_key(out, k);
        encode(out, m);
      }
      put_object_end(out);
      break;
    case Type::StrictArray:
      out.push_back(kStrictArray);
      put_u32(out, static_cast<uint32_t>(v.items.size()));
      for (const auto& item : v.items) encode(out, item);
      break;
  }
}

bool decode(const uint8_t* data, size_t size, size_t* pos, Value* out, const char** error) {
  Cursor c{data, size, *pos};
  if (c.pos > size) {
    *error = "offset past the end";
    return false;
  }
  bool ok = decode_value(c, out, 0);
  *pos = c.pos;
  if (!ok) *error = c.error;
  return ok;
}

bool decode_all(const uint8_t* data, size_t size, std::vector<Value>* out, const char** error) {
  out->clear();
  size_t pos = 0;
  while (pos < size) {
    if (out->size() >= kMaxElements) {
      *error = "too many values";
      return false;
    }
    Value v;
    if (!decode(data, size, &pos, &v, error)) return false;
    out->push_back(std::move(v));
  }
  return true;
}

}  // namespace junction::rtmp::amf0
