// MANSCDP bodies (GB/T 28181 A.2): the XML carried by MESSAGE / NOTIFY / SUBSCRIBE with
// Content-Type Application/MANSCDP+xml.
//
// Decoding, in this order, each step refusing with a clear error string:
//   1. size limit (BodyLimits::max_bytes) and non-empty;
//   2. charset: valid UTF-8 stays UTF-8 whatever the label says (devices send UTF-8 labelled
//      GB2312); anything else is decoded as GB18030 (superset of GB2312/GBK) by
//      junction::sip::to_utf8; the XML declaration's encoding= is then ignored by the parser
//      (the text handed to pugixml is always UTF-8);
//   3. pre-scrub of the documented malformations: `<! --` comments (the document's samples)
//      become `<!--`, an `&` that does not start an entity or character reference becomes
//      `&amp;`; each fix is counted in Body::scrub_fixes;
//   4. pugixml parse, node-count and depth limits;
//   5. root element Query / Control / Notify / Response (case-sensitive as in A.2), CmdType
//      required and non-empty, SN an unsigned integer when present (required for every kind but a
//      tolerated absence is reported by has_sn=false), DeviceID text.
// Encoding of outgoing bodies: a UTF-8 document is serialised with an XML declaration naming the
// device's charset; for Gb2312 the bytes are GB18030 (declared "GB2312", as devices expect).
#pragma once

#include <pugixml.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace junction::gb {

enum class RootKind : uint8_t { Query, Control, Notify, Response };
std::string_view root_kind_name(RootKind k);

// The charset a device wants on what we send it (device conf `charset`).
enum class Charset : uint8_t { Gb2312, Utf8 };
// "GB2312" / "GBK" / "GB18030" (any case) -> Gb2312, "UTF-8" / "UTF8" -> Utf8; false otherwise.
bool parse_charset(std::string_view name, Charset& out);
std::string_view charset_label(Charset c);  // "GB2312" or "UTF-8"

struct BodyLimits {
  size_t max_bytes = 1 << 20;    // a 1 MiB body is far above any real MESSAGE (UDP ones are < 64 KiB)
  size_t max_nodes = 200000;     // elements + text nodes
  size_t max_depth = 32;
};

// The pre-scrub alone (exposed for tests and the fuzz target). Returns the scrubbed text and the
// number of fixes made.
std::string scrub_xml(std::string_view text, size_t* fixes = nullptr);

class Body {
 public:
  Body();
  ~Body();
  Body(Body&&) noexcept;
  Body& operator=(Body&&) noexcept;
  Body(const Body&) = delete;
  Body& operator=(const Body&) = delete;

  // raw: the body bytes as received; content_type: the Content-Type header value (its charset=
  // parameter is only a hint). True with *this filled, or false with error set ("body: ...").
  bool decode(std::string_view raw, std::string_view content_type, std::string& error,
              const BodyLimits& limits = BodyLimits{});

  RootKind kind() const { return kind_; }
  const std::string& cmd_type() const { return cmd_type_; }
  uint32_t sn() const { return sn_; }
  bool has_sn() const { return has_sn_; }
  const std::string& device_id() const { return device_id_; }
  pugi::xml_node root() const;
  // The text of a direct child of the root (trimmed), empty when absent.
  std::string text(const char* child) const;

  // "Notify" + "Keepalive": the plugin's keepalive path.
  bool is_keepalive() const { return kind_ == RootKind::Notify && cmd_type_ == "Keepalive"; }

  // How the bytes were read: "utf-8", "gb18030", "latin1" or "replaced" (invalid sequences
  // became U+FFFD), and the charset the body or Content-Type declared (may be empty).
  std::string_view source_charset() const { return source_charset_; }
  const std::string& declared_charset() const { return declared_; }
  size_t scrub_fixes() const { return scrub_fixes_; }
  const std::string& utf8() const { return utf8_; }  // the scrubbed UTF-8 text that was parsed

 private:
  std::unique_ptr<pugi::xml_document> doc_;
  RootKind kind_ = RootKind::Query;
  std::string cmd_type_;
  uint32_t sn_ = 0;
  bool has_sn_ = false;
  std::string device_id_;
  std::string_view source_charset_;
  std::string declared_;
  size_t scrub_fixes_ = 0;
  std::string utf8_;
};

// The keepalive fast path: true only when raw is exactly the plain form devices send, so the
// plugin answers it without decode() (no charset pass, no scrub, no pugixml). The form, all of it
// printable ASCII or whitespace (so its charset does not matter):
//   [<?xml ...?>] <Notify> children </Notify>   (whitespace allowed between the parts)
// where the children are <Name>text</Name> elements without attributes, text without '<' or '&':
// CmdType exactly "Keepalive", SN 1 to 9 digits, DeviceID non-empty, each exactly once, and
// optionally Status once. Anything else (a comment, an attribute, an entity, another child,
// another byte) is false: the full decode() decides. True implies decode() would give a
// Notify/Keepalive (is_keepalive()).
bool is_plain_keepalive(std::string_view raw);

// Builds an outgoing body: <Kind><CmdType/><SN/><DeviceID/>...</Kind>, then add() children
// (text is UTF-8) and encode() for the device's charset.
class BodyBuilder {
 public:
  BodyBuilder(RootKind kind, std::string_view cmd_type, uint32_t sn, std::string_view device_id);
  ~BodyBuilder();
  BodyBuilder(const BodyBuilder&) = delete;
  BodyBuilder& operator=(const BodyBuilder&) = delete;

  pugi::xml_node root();
  // Appends <name>value</name> under parent (the root when parent is empty); returns the child.
  pugi::xml_node add(std::string_view name, std::string_view value, pugi::xml_node parent = {});
  pugi::xml_node add(std::string_view name, int64_t value, pugi::xml_node parent = {});
  // The bytes to send: XML declaration with charset_label(cs), then the document; GB18030 bytes
  // for Gb2312 (unmappable characters become '?').
  std::string encode(Charset cs) const;

 private:
  std::unique_ptr<pugi::xml_document> doc_;
};

}  // namespace junction::gb
