// Resque wire formats: the job body preforkctl stores, what the handler sees, failures.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "sources/redis/resque_format.hpp"

using namespace preforkd::redis;

TEST(ResqueFormat, AResqueJobIsStoredAsItIsAndAnyOtherPayloadIsWrapped) {
  EXPECT_EQ(resque_body(R"({"class":"Echo","args":[1,"two"]})"), R"({"class":"Echo","args":[1,"two"]})");
  auto wrapped = nlohmann::json::parse(resque_body(R"({"to":"ann"})"));
  EXPECT_EQ(wrapped["class"], "Preforkd::Job");
  EXPECT_EQ(wrapped["args"][0]["to"], "ann");
}

TEST(ResqueFormat, TheHandlerSeesTheJobWithoutPreforkdsIdMember) {
  EXPECT_EQ(handler_payload(R"({"class":"Echo","args":[12345678901234567890],"preforkd":{"id":"17"}})"),
            R"({"class":"Echo","args":[12345678901234567890]})");
  EXPECT_EQ(handler_payload(R"({"preforkd":{"id":"3"}})"), "{}");
  // A wrapped preforkctl payload is unwrapped again.
  EXPECT_EQ(handler_payload(R"({"args":[{"to":"ann"}],"class":"Preforkd::Job","preforkd":{"id":"4"}})"),
            R"({"to":"ann"})");
  // Found by a probe: the payload came back parsed and written out again (digits,
  // key order lost), and one nested 511-512 deep not at all. Now as it was given.
  std::string exact = R"({"big":123456789012345678901234567890,"f":1.10,"e":1E5,"k":{"b":1,"a":2}})";
  EXPECT_EQ(handler_payload(resque_body(exact) + ""), exact);
  std::string deep = std::string(512, '[') + std::string(512, ']');
  EXPECT_EQ(handler_payload(resque_body(deep)), deep);
  // As stored with preforkd's id member, and as earlier versions wrapped it.
  std::string body = resque_body(exact);
  EXPECT_EQ(handler_payload(body.substr(0, body.size() - 1) + R"(,"preforkd":{"id":"5"}})"), exact);
  EXPECT_EQ(handler_payload(R"({"args":[{"x":1.50}],"class":"Preforkd::Job"})"), R"({"x":1.50})");
  // A client's own args of several values under our class are not cut apart.
  EXPECT_EQ(handler_payload(R"({"class":"Preforkd::Job","args":[1,2]})"), R"({"class":"Preforkd::Job","args":[1,2]})");
  // Text that is not ours is passed on untouched.
  EXPECT_EQ(handler_payload("not json"), "not json");
  EXPECT_EQ(handler_payload(R"({"a":"\"preforkd\":{\"id\":\"x\"}"})"), R"({"a":"\"preforkd\":{\"id\":\"x\"}"})");
}

TEST(ResqueFormat, AFailureHasEveryFieldResqueWebShows) {
  auto failure = nlohmann::json::parse(resque_failure(
      R"({"class":"Echo","args":[1],"preforkd":{"id":"9"}})", "mail", "web-1:42:1", "boom",
      std::chrono::system_clock::time_point(std::chrono::seconds(1764045600))));
  EXPECT_EQ(failure["failed_at"], "2025/11/25 04:40:00 UTC");
  EXPECT_EQ(failure["payload"], nlohmann::json::parse(R"({"class":"Echo","args":[1]})"));
  EXPECT_EQ(failure["exception"], "Preforkd::JobFailed");
  EXPECT_EQ(failure["error"], "boom");
  EXPECT_EQ(failure["backtrace"], nlohmann::json::array());
  EXPECT_EQ(failure["worker"], "web-1:42:1:mail");
  EXPECT_EQ(failure["queue"], "mail");
}
