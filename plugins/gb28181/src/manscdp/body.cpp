#include "body.hpp"

#include <junction/sip/charset.hpp>

#include <cctype>
#include <charconv>
#include <sstream>

namespace junction::gb {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == ':';
}

// An `&` at s[i] starts a well-formed reference: &name; &#123; &#x1F;
bool is_reference(std::string_view s, size_t i) {
  size_t j = i + 1;
  if (j < s.size() && s[j] == '#') {
    ++j;
    bool hex = j < s.size() && (s[j] == 'x' || s[j] == 'X');
    if (hex) ++j;
    size_t start = j;
    while (j < s.size() && j - start < 8 &&
           (hex ? std::isxdigit(static_cast<unsigned char>(s[j])) : std::isdigit(static_cast<unsigned char>(s[j]))))
      ++j;
    return j > start && j < s.size() && s[j] == ';';
  }
  size_t start = j;
  if (j < s.size() && (std::isalpha(static_cast<unsigned char>(s[j])) || s[j] == '_')) {
    while (j < s.size() && j - start < 32 && is_name_char(s[j])) ++j;
    return j < s.size() && s[j] == ';';
  }
  return false;
}

// Counts elements and text nodes and the depth, stopping early past the limits.
struct Counter : pugi::xml_tree_walker {
  size_t nodes = 0, max_depth = 0;
  size_t limit_nodes, limit_depth;
  Counter(size_t n, size_t d) : limit_nodes(n), limit_depth(d) {}
  bool for_each(pugi::xml_node&) override {
    ++nodes;
    size_t d = static_cast<size_t>(depth()) + 1;
    if (d > max_depth) max_depth = d;
    return nodes <= limit_nodes && max_depth <= limit_depth;
  }
};

}  // namespace

std::string_view root_kind_name(RootKind k) {
  switch (k) {
    case RootKind::Query: return "Query";
    case RootKind::Control: return "Control";
    case RootKind::Notify: return "Notify";
    case RootKind::Response: return "Response";
  }
  return "?";
}

bool parse_charset(std::string_view name, Charset& out) {
  name = trim(name);
  if (iequals(name, "GB2312") || iequals(name, "GBK") || iequals(name, "GB18030")) {
    out = Charset::Gb2312;
    return true;
  }
  if (iequals(name, "UTF-8") || iequals(name, "UTF8")) {
    out = Charset::Utf8;
    return true;
  }
  return false;
}

std::string_view charset_label(Charset c) { return c == Charset::Utf8 ? "UTF-8" : "GB2312"; }

std::string scrub_xml(std::string_view s, size_t* fixes) {
  std::string out;
  out.reserve(s.size() + 16);
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    // CDATA is copied as it is: a bare & is legal there.
    if (c == '<' && s.compare(i, 9, "<![CDATA[") == 0) {
      size_t end = s.find("]]>", i + 9);
      end = end == std::string_view::npos ? s.size() : end + 3;
      out.append(s.substr(i, end - i));
      i = end - 1;
      continue;
    }
    if (c == '&' && !is_reference(s, i)) {
      out += "&amp;";
      ++n;
      continue;
    }
    // "<!" followed by blanks then "--": the document's comment spelling `<! --`.
    if (c == '<' && i + 1 < s.size() && s[i + 1] == '!') {
      size_t j = i + 2;
      while (j < s.size() && (s[j] == ' ' || s[j] == '\t')) ++j;
      if (j > i + 2 && j + 1 < s.size() && s[j] == '-' && s[j + 1] == '-') {
        out += "<!--";
        ++n;
        i = j + 1;
        // A comment may not contain "--" before its end: the samples' bodies do not, but
        // "<! -- a -- b -->" would then fail to parse, which is a refusal with pugixml's reason.
        continue;
      }
    }
    out += c;
  }
  if (fixes) *fixes = n;
  return out;
}

Body::Body() = default;
Body::~Body() = default;
Body::Body(Body&&) noexcept = default;
Body& Body::operator=(Body&&) noexcept = default;

pugi::xml_node Body::root() const { return doc_ ? doc_->document_element() : pugi::xml_node(); }

std::string Body::text(const char* child) const {
  pugi::xml_node r = root();
  if (!r) return {};
  return std::string(trim(r.child(child).text().get()));
}

namespace {
bool ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
void skip_ws(std::string_view s, size_t& i) {
  while (i < s.size() && ws(s[i])) ++i;
}
bool eat(std::string_view s, size_t& i, std::string_view lit) {
  if (s.substr(i, lit.size()) != lit) return false;
  i += lit.size();
  return true;
}

// Printable ASCII or whitespace: the only bytes the fast path lets through.
bool plain(char c) { return (uint8_t(c) >= 0x20 && uint8_t(c) <= 0x7e) || ws(c); }
}  // namespace

bool is_plain_keepalive(std::string_view raw) {
  if (raw.size() > 1024) return false;  // a keepalive is ~150 bytes
  // One pass: the byte rule is checked where the structure does not already fix the bytes (the
  // declaration's inside and each element's text; names are letters, the rest literals or
  // whitespace), not in a loop of its own over the whole body first.
  size_t i = 0;
  skip_ws(raw, i);
  if (eat(raw, i, "<?xml")) {  // the declaration: its encoding= does not matter for ASCII
    size_t end = raw.find("?>", i);
    if (end == std::string_view::npos) return false;
    for (; i < end; ++i)
      if (raw[i] == '<' || raw[i] == '>' || !plain(raw[i])) return false;
    i = end + 2;
    skip_ws(raw, i);
  }
  if (!eat(raw, i, "<Notify>")) return false;
  int cmd = 0, sn = 0, dev = 0, status = 0;
  for (;;) {
    skip_ws(raw, i);
    if (eat(raw, i, "</Notify>")) break;
    if (!eat(raw, i, "<")) return false;
    size_t n0 = i;
    while (i < raw.size() && ((raw[i] >= 'A' && raw[i] <= 'Z') || (raw[i] >= 'a' && raw[i] <= 'z'))) ++i;
    std::string_view name = raw.substr(n0, i - n0);
    if (name.empty() || !eat(raw, i, ">")) return false;  // an attribute, "/>", or no name
    size_t t0 = i;
    while (i < raw.size() && raw[i] != '<' && raw[i] != '&') {
      if (!plain(raw[i])) return false;
      ++i;
    }
    std::string_view text = raw.substr(t0, i - t0);
    if (!eat(raw, i, "</") || !eat(raw, i, name) || !eat(raw, i, ">")) return false;
    if (name == "CmdType") {
      if (text != "Keepalive" || cmd++) return false;
    } else if (name == "SN") {
      if (text.empty() || text.size() > 9 || text.find_first_not_of("0123456789") != std::string_view::npos || sn++) return false;
    } else if (name == "DeviceID") {
      if (text.empty() || dev++) return false;
    } else if (name == "Status") {
      if (status++) return false;
    } else {
      return false;
    }
  }
  skip_ws(raw, i);
  return i == raw.size() && cmd == 1 && sn == 1 && dev == 1;
}

bool Body::decode(std::string_view raw, std::string_view content_type, std::string& error, const BodyLimits& limits) {
  doc_.reset();
  cmd_type_.clear();
  device_id_.clear();
  has_sn_ = false;
  sn_ = 0;
  scrub_fixes_ = 0;
  if (raw.empty()) {
    error = "body: empty";
    return false;
  }
  if (raw.size() > limits.max_bytes) {
    error = "body: " + std::to_string(raw.size()) + " bytes, above the limit of " + std::to_string(limits.max_bytes);
    return false;
  }
  declared_ = std::string(sip::declared_charset(content_type, raw));
  std::string utf8;
  switch (sip::to_utf8(raw, declared_, utf8)) {
    case sip::CharsetSource::Utf8: source_charset_ = "utf-8"; break;
    case sip::CharsetSource::Gb18030: source_charset_ = "gb18030"; break;
    case sip::CharsetSource::Latin1: source_charset_ = "latin1"; break;
    case sip::CharsetSource::Replaced: source_charset_ = "replaced"; break;
  }
  utf8_ = scrub_xml(utf8, &scrub_fixes_);
  auto doc = std::make_unique<pugi::xml_document>();
  // encoding_utf8: the declaration's encoding= (GB2312) must not make pugixml re-decode UTF-8 text.
  pugi::xml_parse_result pr =
      doc->load_buffer(utf8_.data(), utf8_.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!pr) {
    error = std::string("body: not XML (") + pr.description() + " at offset " + std::to_string(pr.offset) + ")";
    return false;
  }
  Counter counter(limits.max_nodes, limits.max_depth);
  doc->traverse(counter);
  if (counter.nodes > limits.max_nodes) {
    error = "body: more than " + std::to_string(limits.max_nodes) + " XML nodes";
    return false;
  }
  if (counter.max_depth > limits.max_depth) {
    error = "body: XML nested deeper than " + std::to_string(limits.max_depth);
    return false;
  }
  pugi::xml_node r = doc->document_element();
  if (!r) {
    error = "body: no root element";
    return false;
  }
  std::string_view rn = r.name();
  if (rn == "Query") kind_ = RootKind::Query;
  else if (rn == "Control") kind_ = RootKind::Control;
  else if (rn == "Notify") kind_ = RootKind::Notify;
  else if (rn == "Response") kind_ = RootKind::Response;
  else {
    error = "body: root element <" + std::string(rn.substr(0, 64)) + "> is not Query/Control/Notify/Response";
    return false;
  }
  std::string_view ct = trim(r.child("CmdType").text().get());
  if (ct.empty()) {
    error = "body: <" + std::string(rn) + "> has no CmdType";
    return false;
  }
  if (ct.size() > 64) {
    error = "body: CmdType longer than 64 characters";
    return false;
  }
  cmd_type_ = std::string(ct);
  pugi::xml_node snn = r.child("SN");
  if (snn) {
    std::string_view s = trim(snn.text().get());
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v > 0xFFFFFFFFull) {
      error = "body: SN '" + std::string(s.substr(0, 32)) + "' is not an unsigned 32-bit integer";
      return false;
    }
    sn_ = static_cast<uint32_t>(v);
    has_sn_ = true;
  }
  std::string_view did = trim(r.child("DeviceID").text().get());
  if (did.size() > 64) {
    error = "body: DeviceID longer than 64 characters";
    return false;
  }
  device_id_ = std::string(did);
  doc_ = std::move(doc);
  return true;
}

BodyBuilder::BodyBuilder(RootKind kind, std::string_view cmd_type, uint32_t sn, std::string_view device_id)
    : doc_(std::make_unique<pugi::xml_document>()) {
  pugi::xml_node r = doc_->append_child(std::string(root_kind_name(kind)).c_str());
  add("CmdType", cmd_type);
  add("SN", static_cast<int64_t>(sn));
  add("DeviceID", device_id);
  (void)r;
}

BodyBuilder::~BodyBuilder() = default;

pugi::xml_node BodyBuilder::root() { return doc_->document_element(); }

pugi::xml_node BodyBuilder::add(std::string_view name, std::string_view value, pugi::xml_node parent) {
  if (!parent) parent = root();
  pugi::xml_node c = parent.append_child(std::string(name).c_str());
  if (!value.empty()) c.text().set(std::string(value).c_str());
  return c;
}

pugi::xml_node BodyBuilder::add(std::string_view name, int64_t value, pugi::xml_node parent) {
  return add(name, std::to_string(value), parent);
}

std::string BodyBuilder::encode(Charset cs) const {
  std::ostringstream os;
  os << "<?xml version=\"1.0\" encoding=\"" << charset_label(cs) << "\"?>\r\n";
  doc_->save(os, "  ", pugi::format_indent | pugi::format_no_declaration, pugi::encoding_utf8);
  std::string utf8 = os.str();
  if (cs == Charset::Utf8) return utf8;
  std::string gb;
  sip::utf8_to_gb18030(utf8, gb);
  return gb;
}

}  // namespace junction::gb
