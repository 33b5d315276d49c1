// junction/util/retransmit.hpp: re-send every interval until acked or the re-sends run out.
#include <junction/util/retransmit.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

using junction::util::Retransmit;

TEST_CASE("sdk retransmit: re-sent every interval, given up after max re-sends") {
  Retransmit<int, std::string> r(100, 2);
  r.start(1, "cmd", 1000);
  std::vector<std::string> sent;
  std::vector<int> gone;
  auto resend = [&](int, const std::string& p) { sent.push_back(p); };
  auto gave_up = [&](int k) { gone.push_back(k); };
  r.poll(1099, resend, gave_up);
  CHECK(sent.empty());  // not due yet
  r.poll(1100, resend, gave_up);
  CHECK(sent.size() == 1);
  CHECK(r.next_due() == 1200u);
  r.poll(1200, resend, gave_up);
  CHECK(sent.size() == 2);
  CHECK(gone.empty());
  r.poll(1300, resend, gave_up);  // two re-sends unanswered: given up, not sent a third time
  CHECK(sent.size() == 2);
  CHECK(gone == std::vector<int>{1});
  CHECK(r.empty());
  CHECK(!r.next_due());
}

TEST_CASE("sdk retransmit: an ack stops the re-sends; a stale ack is told apart") {
  Retransmit<std::string, int> r(50, 5);
  r.start("a", 1, 0);
  r.start("b", 2, 0);
  CHECK(r.ack("a"));
  CHECK(!r.ack("a"));
  CHECK(!r.pending("a"));
  std::vector<int> sent;
  r.poll(50, [&](const std::string&, int p) { sent.push_back(p); }, [](const std::string&) {});
  CHECK(sent == std::vector<int>{2});
  CHECK(r.entries().at("b").tries == 1);
}

TEST_CASE("sdk retransmit: gave_up may change the table; restore keeps due and tries") {
  Retransmit<int, int> r(10, 0);
  r.start(1, 1, 0);
  r.start(2, 2, 0);
  int calls = 0;
  r.poll(10, [](int, int) { FAIL("max 0 re-sends: nothing is re-sent"); }, [&](int) {
    ++calls;
    r.clear();
  });
  CHECK(calls == 2);
  Retransmit<int, int> back(10, 3);
  back.restore(7, 70, 500, 2);
  CHECK(back.entries().at(7).due == 500);
  CHECK(back.entries().at(7).tries == 2);
  int sent = 0;
  back.poll(500, [&](int, int p) { sent = p; }, [](int) {});
  CHECK(sent == 70);
  CHECK(back.entries().at(7).tries == 3);
}
