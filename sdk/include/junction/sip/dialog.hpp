// RFC 3261 §12 dialogs, UAC and UAS: early and confirmed, the route set (loose and strict
// routing), remote target refresh, local and remote CSeq, in-dialog requests (BYE, INFO,
// MESSAGE, re-INVITE, UPDATE, NOTIFY, the ACK of a 2xx). A Dialog is plain data the plugin
// keeps (DialogSet finds it from a message) and saves across a hot reload (to_json/from_json).
#pragma once

#include <junction/sip/message.hpp>
#include <junction/sip/stack.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace junction::sip {

enum class DialogState : uint8_t { Early = 1, Confirmed = 2, Terminated = 3 };

struct Dialog {
  std::string call_id, local_tag, remote_tag;
  std::string local_uri, remote_uri;  // From / To values without their tag ("\"A\" <sip:a@x>")
  std::string remote_target;          // the peer's Contact URI
  std::vector<std::string> route_set; // Route values in the order they are sent ("<sip:p;lr>")
  std::string local_contact;          // our Contact value ("<sip:us@host:port>")
  uint32_t local_cseq = 0;
  uint32_t remote_cseq = 0;
  bool remote_cseq_set = false;
  DialogState state = DialogState::Early;
  bool uac = false;
  bool secure = false;
  Flow flow;  // where the peer is reached (its requests' real source, or where we sent ours)

  // UAS: from a dialog-creating request (INVITE, SUBSCRIBE, REFER) and the To tag of our
  // response. Early until confirm() (when the 2xx is sent).
  static bool from_request(const Message& req, const Flow& from, std::string_view local_tag,
                           std::string_view local_contact, Dialog& out, std::string* error = nullptr);
  // UAC: from the request we sent and a response that carries a To tag (1xx: early, 2xx:
  // confirmed).
  static bool from_response(std::string_view request_sent, const Message& resp, const Flow& to,
                            std::string_view local_contact, Dialog& out, std::string* error = nullptr);
  // UAC: a later response in this dialog (the 2xx after an early 1xx confirms it and takes the
  // route set from the 2xx; a 2xx / 1xx to a target refresh updates the remote target).
  void on_response(const Message& resp);
  // A request received in the dialog. False: its CSeq is not above the last one (answer 500,
  // RFC 3261 §12.2.2); an ACK or CANCEL is not counted. Target refresh (INVITE, UPDATE,
  // SUBSCRIBE, NOTIFY, REFER with a Contact) and the flow follow the request.
  bool on_request(const Message& req, const Flow& from);
  void confirm() { state = DialogState::Confirmed; }

  // An in-dialog request; cseq 0 takes the next local CSeq (ACK and CANCEL pass the INVITE's).
  // The next hop is `flow`.
  std::string request(Stack& stack, std::string_view method, std::string_view extra_headers = {},
                      std::string_view body = {}, std::string_view content_type = {}, uint32_t cseq = 0);
  // The ACK of a 2xx to the INVITE with CSeq number invite_cseq (a new branch).
  std::string ack(Stack& stack, uint32_t invite_cseq, std::string_view body = {}, std::string_view content_type = {}) {
    return request(stack, "ACK", {}, body, content_type, invite_cseq);
  }

  std::string key() const { return call_id + '\x1f' + local_tag + '\x1f' + remote_tag; }
  nlohmann::json to_json() const;
  static bool from_json(const nlohmann::json& j, Dialog& out);
};

// The dialogs of a plugin, found from the messages of the peer.
class DialogSet {
 public:
  Dialog* add(Dialog d);
  // The dialog a received request belongs to (its To tag is ours), or a received response
  // (its From tag is ours).
  Dialog* find(const Message& m);
  Dialog* find(std::string_view call_id, std::string_view local_tag, std::string_view remote_tag);
  bool erase(const Dialog& d) { return dialogs_.erase(d.key()) != 0; }
  size_t size() const { return dialogs_.size(); }
  template <class F>
  void for_each(F&& f) {
    for (auto& [k, d] : dialogs_) f(d);
  }
  nlohmann::json to_json() const;
  bool from_json(const nlohmann::json& j);

 private:
  std::unordered_map<std::string, Dialog> dialogs_;
};

// A From / To value without its tag parameter.
std::string without_tag(const NameAddr& a);

}  // namespace junction::sip
