// bencode (BitTorrent BEP 3 encoding) parse/serialise, as used by the rtpengine "ng" control
// protocol and anything else that speaks it. Header-only, C++20 standard library only.
//
//   integer  i<decimal>e          (no leading zeros, no "-0")
//   string   <length>:<bytes>     (binary-safe)
//   list     l<items>e
//   dict     d<string key><value>...e
//
// The parser is strict about syntax, bounded in depth and count (a hostile input cannot blow
// the stack or memory beyond a small multiple of its own size), and reports the byte offset
// and reason of the first error. Dict keys keep their wire order; lookups are linear (ng
// messages have a dozen keys). Serialisation writes dict keys in insertion order (peers such
// as rtpengine and Kamailio do not require sorted keys); sort_keys() exists for canonical form.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace junction::proto::bencode {

class Value {
 public:
  enum class Type : uint8_t { Int, Str, List, Dict };
  using List = std::vector<Value>;
  using Dict = std::vector<std::pair<std::string, Value>>;

  Value() : type_(Type::Str) {}
  static Value integer(int64_t v) {
    Value x;
    x.type_ = Type::Int;
    x.int_ = v;
    return x;
  }
  static Value string(std::string_view s) {
    Value x;
    x.str_.assign(s.data(), s.size());
    return x;
  }
  static Value list() {
    Value x;
    x.type_ = Type::List;
    return x;
  }
  static Value dict() {
    Value x;
    x.type_ = Type::Dict;
    return x;
  }

  Type type() const { return type_; }
  bool is_int() const { return type_ == Type::Int; }
  bool is_str() const { return type_ == Type::Str; }
  bool is_list() const { return type_ == Type::List; }
  bool is_dict() const { return type_ == Type::Dict; }

  int64_t as_int() const { return int_; }
  const std::string& as_str() const { return str_; }
  const List& as_list() const { return list_; }
  List& as_list() { return list_; }
  const Dict& as_dict() const { return dict_; }
  Dict& as_dict() { return dict_; }

  // Dict access: nullptr when this is not a dict or the key is absent.
  const Value* find(std::string_view key) const {
    if (type_ != Type::Dict) return nullptr;
    for (auto& [k, v] : dict_)
      if (k == key) return &v;
    return nullptr;
  }
  // The string at key, or nullopt (absent or not a string).
  std::optional<std::string_view> get_str(std::string_view key) const {
    const Value* v = find(key);
    if (!v || !v->is_str()) return std::nullopt;
    return std::string_view(v->str_);
  }
  // The integer at key; a decimal string is accepted too (peers differ).
  std::optional<int64_t> get_int(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return std::nullopt;
    if (v->is_int()) return v->int_;
    if (v->is_str() && !v->str_.empty() && v->str_.size() < 19) {
      int64_t r = 0;
      for (char c : v->str_) {
        if (c < '0' || c > '9') return std::nullopt;
        r = r * 10 + (c - '0');
      }
      return r;
    }
    return std::nullopt;
  }
  // Sets (replaces or appends) a dict entry; turns a default (empty string) value into a dict.
  Value& set(std::string_view key, Value v) {
    if (type_ != Type::Dict) {
      *this = dict();
    }
    for (auto& [k, old] : dict_)
      if (k == key) return old = std::move(v);
    dict_.emplace_back(std::string(key), std::move(v));
    return dict_.back().second;
  }
  Value& set(std::string_view key, std::string_view s) { return set(key, string(s)); }
  Value& set(std::string_view key, const char* s) { return set(key, string(s)); }
  Value& set_int(std::string_view key, int64_t i) { return set(key, integer(i)); }
  Value& push(Value v) {
    if (type_ != Type::List) *this = list();
    list_.push_back(std::move(v));
    return list_.back();
  }

  void sort_keys() {
    if (type_ == Type::Dict) {
      std::stable_sort(dict_.begin(), dict_.end(), [](auto& a, auto& b) { return a.first < b.first; });
      for (auto& kv : dict_) kv.second.sort_keys();
    } else if (type_ == Type::List) {
      for (auto& v : list_) v.sort_keys();
    }
  }

  friend bool operator==(const Value& a, const Value& b) {
    if (a.type_ != b.type_) return false;
    switch (a.type_) {
      case Type::Int: return a.int_ == b.int_;
      case Type::Str: return a.str_ == b.str_;
      case Type::List: return a.list_ == b.list_;
      case Type::Dict: return a.dict_ == b.dict_;
    }
    return false;
  }

 private:
  Type type_;
  int64_t int_ = 0;
  std::string str_;
  List list_;
  Dict dict_;
};

struct Limits {
  size_t max_depth = 32;       // nesting of lists/dicts
  size_t max_items = 1 << 16;  // total values in one document
};

struct ParseResult {
  std::optional<Value> value;
  size_t consumed = 0;  // bytes used by the value (on success) or offset of the error
  std::string error;    // empty on success
  explicit operator bool() const { return value.has_value(); }
};

namespace detail {

class Parser {
 public:
  Parser(std::string_view in, const Limits& lim) : in_(in), lim_(lim) {}

  bool value(Value& out, size_t depth) {
    if (depth > lim_.max_depth) return fail("nesting too deep");
    if (++items_ > lim_.max_items) return fail("too many items");
    if (pos_ >= in_.size()) return fail("unexpected end of input");
    char c = in_[pos_];
    if (c == 'i') {
      ++pos_;
      int64_t v = 0;
      if (!integer('e', v)) return false;
      out = Value::integer(v);
      return true;
    }
    if (c >= '0' && c <= '9') {
      std::string_view s;
      if (!string(s)) return false;
      out = Value::string(s);
      return true;
    }
    if (c == 'l') {
      ++pos_;
      out = Value::list();
      while (true) {
        if (pos_ >= in_.size()) return fail("unterminated list");
        if (in_[pos_] == 'e') {
          ++pos_;
          return true;
        }
        Value item;
        if (!value(item, depth + 1)) return false;
        out.as_list().push_back(std::move(item));
      }
    }
    if (c == 'd') {
      ++pos_;
      out = Value::dict();
      while (true) {
        if (pos_ >= in_.size()) return fail("unterminated dictionary");
        if (in_[pos_] == 'e') {
          ++pos_;
          return true;
        }
        if (in_[pos_] < '0' || in_[pos_] > '9') return fail("dictionary key is not a string");
        std::string_view key;
        if (!string(key)) return false;
        Value item;
        if (!value(item, depth + 1)) return false;
        out.as_dict().emplace_back(std::string(key), std::move(item));
      }
    }
    return fail(std::string("unexpected byte '") + printable(c) + "'");
  }

  size_t pos() const { return pos_; }
  const std::string& error() const { return error_; }

 private:
  static std::string printable(char c) {
    if (c >= 0x20 && c < 0x7f) return std::string(1, c);
    static const char* hex = "0123456789abcdef";
    std::string s = "\\x";
    s += hex[(static_cast<unsigned char>(c) >> 4) & 0xf];
    s += hex[static_cast<unsigned char>(c) & 0xf];
    return s;
  }
  bool fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
    return false;
  }
  // Decimal digits up to `end`; rejects leading zeros and "-0" like the spec says.
  bool integer(char end, int64_t& out) {
    bool neg = false;
    if (pos_ < in_.size() && in_[pos_] == '-' && end == 'e') {
      neg = true;
      ++pos_;
    }
    size_t start = pos_;
    uint64_t v = 0;
    while (pos_ < in_.size() && in_[pos_] >= '0' && in_[pos_] <= '9') {
      if (v > (UINT64_C(1) << 62)) return fail("integer too large");
      v = v * 10 + static_cast<uint64_t>(in_[pos_] - '0');
      ++pos_;
    }
    size_t n = pos_ - start;
    if (n == 0) return fail("missing digits");
    if (n > 1 && in_[start] == '0') return fail("leading zero");
    if (neg && v == 0) return fail("negative zero");
    if (pos_ >= in_.size() || in_[pos_] != end) return fail(std::string("expected '") + end + "'");
    ++pos_;
    out = neg ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
    return true;
  }
  bool string(std::string_view& out) {
    int64_t len = 0;
    if (!integer(':', len)) return false;
    if (static_cast<uint64_t>(len) > in_.size() - pos_) return fail("string length beyond end of input");
    out = in_.substr(pos_, static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return true;
  }

  std::string_view in_;
  Limits lim_;
  size_t pos_ = 0;
  size_t items_ = 0;
  std::string error_;
};

inline void write(const Value& v, std::string& out) {
  switch (v.type()) {
    case Value::Type::Int:
      out += 'i';
      out += std::to_string(v.as_int());
      out += 'e';
      break;
    case Value::Type::Str:
      out += std::to_string(v.as_str().size());
      out += ':';
      out += v.as_str();
      break;
    case Value::Type::List:
      out += 'l';
      for (auto& x : v.as_list()) write(x, out);
      out += 'e';
      break;
    case Value::Type::Dict:
      out += 'd';
      for (auto& [k, x] : v.as_dict()) {
        out += std::to_string(k.size());
        out += ':';
        out += k;
        write(x, out);
      }
      out += 'e';
      break;
  }
}

}  // namespace detail

// Parses one value at the start of `in`. Trailing bytes are allowed (see consumed); use
// parse_all() to require the value to span the whole input.
inline ParseResult parse_prefix(std::string_view in, const Limits& lim = {}) {
  ParseResult r;
  detail::Parser p(in, lim);
  Value v;
  if (p.value(v, 0)) {
    r.value = std::move(v);
  } else {
    r.error = p.error().empty() ? "invalid bencode" : p.error();
  }
  r.consumed = p.pos();
  return r;
}

inline ParseResult parse_all(std::string_view in, const Limits& lim = {}) {
  ParseResult r = parse_prefix(in, lim);
  if (r.value && r.consumed != in.size()) {
    r.value.reset();
    r.error = "trailing bytes after value";
  }
  return r;
}

inline std::string serialize(const Value& v) {
  std::string out;
  detail::write(v, out);
  return out;
}
inline void serialize_to(const Value& v, std::string& out) { detail::write(v, out); }

}  // namespace junction::proto::bencode
