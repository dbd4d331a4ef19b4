// The persistent handler's JSON lines: request framing and answer parsing.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "handlers/persistent_handler.hpp"
#include "util/json_text.hpp"

using preforkd::HandlerOutcome;
using preforkd::Job;

TEST(PersistentProtocol, RequestIsOneLineWithThePayloadEmbeddedAsJson) {
  Job job{"42", "mail", "{\n  \"to\": \"a@b\"\n}", 2, 0, 0, ""};
  std::string line = preforkd::persistent_request(job);
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  auto request = nlohmann::json::parse(line);
  EXPECT_EQ(request["id"], "42");
  EXPECT_EQ(request["queue"], "mail");
  EXPECT_EQ(request["attempt"], 2);
  EXPECT_EQ(request["payload"]["to"], "a@b");
}

TEST(PersistentProtocol, ThePayloadTravelsAsWrittenNumbersIncluded) {
  // Parsed and written out again, 18446744073709551616 became 1.8446744073709552e+19,
  // 1.10 became 1.1 and 1E2 100.0: what the database kept digit for digit, and exec
  // handlers got unchanged, reached a persistent handler changed (found by a probe).
  std::string payload = R"({"price": 1.10, "big": 18446744073709551616, "e": 1E2, "neg": -0})";
  Job job{"5", "q", payload, 1, 0, 0, ""};
  std::string line = preforkd::persistent_request(job);
  EXPECT_NE(line.find("\"payload\":" + payload + "}\n"), std::string::npos) << line;
  auto request = nlohmann::json::parse(line);
  EXPECT_EQ(request["id"], "5");
  EXPECT_TRUE(request["payload"]["price"].is_number()) << line;

  Job bare{"6", "q", "123456789012345678901234567890", 1, 0, 0, ""};
  EXPECT_EQ(preforkd::persistent_request(bare),
            R"({"attempt":1,"id":"6","queue":"q","payload":123456789012345678901234567890})" "\n");
}

TEST(PersistentProtocol, APayloadThatIsNotJsonTravelsAsAString) {
  Job job{"1", "q", "plain text", 1, 0, 0, ""};
  EXPECT_EQ(nlohmann::json::parse(preforkd::persistent_request(job))["payload"], "plain text");
  // In the same order as any request, the payload last (it came before "queue").
  EXPECT_EQ(preforkd::persistent_request(job), R"({"attempt":1,"id":"1","queue":"q","payload":"plain text"})" "\n");
}

// Found by a probe: one byte that is not UTF-8 anywhere in an answer made it "not JSON",
// and the job waited for its timeout (for ever without one).
TEST(PersistentProtocol, AnAnswerWithBytesThatAreNotUtf8IsStillAnAnswer) {
  std::string problem;
  auto ok = preforkd::parse_persistent_answer("{\"id\":\"7\",\"status\":\"ok\",\"note\":\"\xff\"}", "7", &problem);
  ASSERT_TRUE(ok) << problem;
  EXPECT_EQ(ok->kind, HandlerOutcome::Kind::done);
  auto failed = preforkd::parse_persistent_answer(
      "{\"id\":\"7\",\"status\":\"error\",\"error\":\"caf\xe9 closed\",\"retry\":false}", "7", &problem);
  ASSERT_TRUE(failed) << problem;
  EXPECT_EQ(failed->kind, HandlerOutcome::Kind::permanent);
  EXPECT_EQ(failed->error, "caf\xEF\xBF\xBD closed");
  EXPECT_EQ(preforkd::with_valid_utf8("\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"), "\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  // An overlong '/' and a UTF-16 surrogate: each byte replaced.
  std::string replacement = "\xEF\xBF\xBD";
  EXPECT_EQ(preforkd::with_valid_utf8("\xC0\xAF\xED\xA0\x80"),
            replacement + replacement + replacement + replacement + replacement);
}

TEST(PersistentProtocol, AnswersAreParsed) {
  std::string problem;
  auto ok = preforkd::parse_persistent_answer(R"({"id":"7","status":"ok"})", "7", &problem);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->kind, HandlerOutcome::Kind::done);

  auto retry = preforkd::parse_persistent_answer(
      R"({"id":"7","status":"error","error":"smtp down","retry":true})", "7", &problem);
  ASSERT_TRUE(retry);
  EXPECT_EQ(retry->kind, HandlerOutcome::Kind::failed);
  EXPECT_EQ(retry->error, "smtp down");

  auto permanent = preforkd::parse_persistent_answer(
      R"({"id":"7","status":"error","error":"bad address","retry":false})", "7", &problem);
  ASSERT_TRUE(permanent);
  EXPECT_EQ(permanent->kind, HandlerOutcome::Kind::permanent);
}

// Found by a probe: "retry": "false" (or 0) was taken as true without a word.
TEST(PersistentProtocol, ARetryThatIsNotABooleanFollowsThePolicyAndTheErrorSaysSo) {
  for (std::string value : {R"("false")", "0", "null", R"({"no":1})"}) {
    std::string problem;
    auto outcome = preforkd::parse_persistent_answer(
        R"({"id":"7","status":"error","error":"smtp down","retry":)" + value + "}", "7", &problem);
    ASSERT_TRUE(outcome) << value << ": " << problem;
    EXPECT_EQ(outcome->kind, HandlerOutcome::Kind::failed) << value;
    EXPECT_EQ(outcome->error, "smtp down; \"retry\" must be true or false, not " + value +
                                  ": the job follows the retry policy");
  }
}

TEST(PersistentProtocol, StrayOrMismatchedLinesAreNotAnswers) {
  std::string problem;
  EXPECT_FALSE(preforkd::parse_persistent_answer("hello", "7", &problem));
  EXPECT_EQ(problem.rfind("not JSON: syntax error", 0), 0u) << problem;
  EXPECT_FALSE(preforkd::parse_persistent_answer("[1]", "7", &problem));
  EXPECT_EQ(problem, "not a JSON object");
  EXPECT_FALSE(preforkd::parse_persistent_answer(R"({"id":"8","status":"ok"})", "7", &problem));
  EXPECT_NE(problem.find("answer for id '8'"), std::string::npos);
  EXPECT_FALSE(preforkd::parse_persistent_answer(R"({"id":"7","status":"maybe"})", "7", &problem));
  EXPECT_FALSE(preforkd::parse_persistent_answer(R"({"id":"7"})", "7", &problem));
}

// A handler's answer nested 300,000 levels deep crashed its worker (SIGSEGV writing it
// out again): it is refused before it is parsed, as any line that is not an answer.
TEST(PersistentProtocol, AnAnswerNestedTooDeeplyIsNotAnAnswer) {
  std::string problem;
  std::string deep = R"({"id":"7","status":"error","error":)" + std::string(300000, '[') +
                     std::string(300000, ']') + "}";
  EXPECT_FALSE(preforkd::parse_persistent_answer(deep, "7", &problem));
  EXPECT_EQ(problem, "not JSON: nested deeper than 512 levels");
  std::string fine = R"({"id":"7","status":"error","error":)" + std::string(100, '[') +
                     std::string(100, ']') + "}";
  EXPECT_TRUE(preforkd::parse_persistent_answer(fine, "7", &problem)) << problem;
}
