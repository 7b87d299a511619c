#include "normalize/event_json.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>

#include "common/civil_time.h"

namespace authwall::normalize {
namespace {

AuthEvent full_event() {
  AuthEvent e;
  e.has_time = true;
  e.time = (days_from_civil(2026, 11, 28) * 86400 + 10 * 3600) * kMicrosPerSecond;
  e.host = "mx";
  e.program = "postfix/submission/smtpd";
  e.source = EventSource::postfix;
  e.service = "submission";
  e.kind = EventKind::auth_failure;
  e.reason = "sasl_failed";
  EXPECT_TRUE(IpAddress::parse("2001:db8::7", e.ip));
  e.port = 51234;
  e.has_user = true;
  e.user = "alice";
  e.mechanism.assign("LOGIN");
  e.attempts = 1;
  e.session.assign("mx/1234/2001:db8::7");
  return e;
}

TEST(EventJson, WritesEveryContractFieldInOrder) {
  std::string out;
  append_event_json(full_event(), out);
  EXPECT_EQ(out,
            R"({"time":"2026-11-28T10:00:00Z","host":"mx","program":"postfix/submission/smtpd",)"
            R"("source":"postfix","service":"submission","kind":"auth_failure","reason":"sasl_failed",)"
            R"("ip":"2001:db8::7","port":51234,"user":"alice","mechanism":"LOGIN","attempts":1,)"
            R"("session":"mx/1234/2001:db8::7"})");
}

TEST(EventJson, AbsentFieldsAreNullAndLineIsAppended) {
  AuthEvent e;
  e.program = "dovecot";
  e.source = EventSource::dovecot;
  e.kind = EventKind::no_auth_disconnect;
  e.reason = "no_auth_attempts";
  ASSERT_TRUE(IpAddress::parse("192.0.2.1", e.ip));
  e.attempts = 0;
  std::string out;
  append_event_json(e, out, 42);
  EXPECT_EQ(out,
            R"({"time":null,"host":null,"program":"dovecot","source":"dovecot","service":null,)"
            R"("kind":"no_auth_disconnect","reason":"no_auth_attempts","ip":"192.0.2.1","port":null,)"
            R"("user":null,"mechanism":null,"attempts":0,"session":null,"line":42})");
}

TEST(EventJson, EmptyUserIsAStringNotNull) {
  AuthEvent e = full_event();
  e.user = "";
  std::string out;
  append_event_json(e, out);
  EXPECT_NE(out.find(R"("user":"")"), std::string::npos) << out;
}

TEST(EventJson, FractionalTimesKeepMicroseconds) {
  AuthEvent e = full_event();
  e.time += 123456;
  std::string out;
  append_event_json(e, out);
  EXPECT_NE(out.find(R"("time":"2026-11-28T10:00:00.123456Z")"), std::string::npos) << out;
}

std::string quoted(std::string_view s) {
  std::string out;
  append_json_string(s, out);
  return out;
}

TEST(JsonString, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(quoted("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(quoted("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(quoted(std::string_view("\0\x01\x1f\x7f", 4)), R"("\u0000\u0001\u001f\u007f")");
}

TEST(JsonString, KeepsValidUtf8) {
  EXPECT_EQ(quoted("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x94\x91"), "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x94\x91\"");
}

TEST(JsonString, ReplacesInvalidUtf8WithReplacementCharacter) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(quoted("\xFF"), "\"" + fffd + "\"");
  EXPECT_EQ(quoted("\xC0\x80"), "\"" + fffd + fffd + "\"");        // overlong NUL
  EXPECT_EQ(quoted("\xED\xA0\x80"), "\"" + fffd + fffd + fffd + "\"");  // UTF-16 surrogate
  EXPECT_EQ(quoted("a\xE2\x82"), "\"a" + fffd + fffd + "\"");      // truncated sequence
  EXPECT_EQ(quoted("\xF4\x90\x80\x80"), "\"" + fffd + fffd + fffd + fffd + "\"");  // > U+10FFFF
}

TEST(JsonString, OutputIsAlwaysValidJsonWhateverTheBytes) {
  // Every byte value, in every position relative to a multi-byte sequence.
  std::string all;
  for (int i = 0; i < 256; ++i) {
    all += static_cast<char>(i);
    all += "\xC3";
    all += static_cast<char>(i);
  }
  AuthEvent e = full_event();
  e.user = all;
  e.host = all;
  std::string out;
  append_event_json(e, out);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(out).get(doc), simdjson::SUCCESS);
  std::string_view user;
  ASSERT_EQ(doc["user"].get(user), simdjson::SUCCESS);
  EXPECT_GT(user.size(), 256u);
}

TEST(EventJson, ReusedBufferDoesNotReallocate) {
  std::string out;
  out.reserve(4096);
  const AuthEvent e = full_event();
  append_event_json(e, out, 1);
  const char* data = out.data();
  for (int i = 0; i < 100; ++i) {
    out.clear();
    append_event_json(e, out, i);
  }
  EXPECT_EQ(out.data(), data);
}

}  // namespace
}  // namespace authwall::normalize
