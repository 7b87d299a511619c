#include "normalize/json_normalizer.h"

#include <gtest/gtest.h>

#include <string>

#include "common/civil_time.h"

namespace authwall::normalize {
namespace {

constexpr UnixMicros at(std::int64_t y, unsigned mo, unsigned d, int h, int mi, int s) {
  return (days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s) * kMicrosPerSecond;
}

TEST(Rfc3339, ParsesZonesAndFractions) {
  UnixMicros t = 0;
  ASSERT_TRUE(parse_rfc3339("2026-11-28T10:00:00Z", t));
  EXPECT_EQ(t, at(2026, 11, 28, 10, 0, 0));
  ASSERT_TRUE(parse_rfc3339("2026-11-28T10:00:00.5+01:00", t));
  EXPECT_EQ(t, at(2026, 11, 28, 9, 0, 0) + 500000);
  ASSERT_TRUE(parse_rfc3339("2026-11-28 10:00:00.123456789-02:30", t));
  EXPECT_EQ(t, at(2026, 11, 28, 12, 30, 0) + 123456);
  ASSERT_TRUE(parse_rfc3339("2024-02-29t23:59:59z", t));
  EXPECT_EQ(t, at(2024, 2, 29, 23, 59, 59));
}

TEST(Rfc3339, RejectsAnythingElse) {
  UnixMicros t = 0;
  for (const char* bad : {"", "2026-11-28", "2026-11-28T10:00:00", "2026-13-28T10:00:00Z",
                          "2026-11-28T24:00:00Z", "2026-11-28T10:00:00.Z", "2026-11-28T10:00:00+1:00",
                          "2026-11-28T10:00:00Zjunk", "26-11-28T10:00:00Z", "2026/11/28T10:00:00Z"}) {
    EXPECT_FALSE(parse_rfc3339(bad, t)) << bad;
  }
}

TEST(JsonExtract, FindsJsonBodies) {
  std::string_view json;
  EXPECT_TRUE(JsonNormalizer::extract(R"({"a":1})", json));
  EXPECT_EQ(json, R"({"a":1})");
  EXPECT_TRUE(JsonNormalizer::extract(R"(@cee: {"a":1})", json));
  EXPECT_EQ(json, R"({"a":1})");
  EXPECT_TRUE(JsonNormalizer::extract(R"(@cee:{"a":1})", json));
  EXPECT_TRUE(JsonNormalizer::extract(R"(stats: {"event":"x"})", json));
  EXPECT_EQ(json, R"({"event":"x"})");
  EXPECT_TRUE(JsonNormalizer::extract(R"(stats: Info: {"event":"x"})", json));
  EXPECT_TRUE(JsonNormalizer::extract(R"(Info: {"event":"x"})", json));
  EXPECT_FALSE(JsonNormalizer::extract("", json));
  EXPECT_FALSE(JsonNormalizer::extract("warning: unknown[192.0.2.1]: SASL LOGIN authentication failed", json));
  EXPECT_FALSE(JsonNormalizer::extract("@cee: not json", json));
  EXPECT_FALSE(JsonNormalizer::extract("stats: ready", json));
  EXPECT_FALSE(JsonNormalizer::extract(R"(["a"])", json));
}

class JsonNormalizerTest : public ::testing::Test {
 protected:
  JsonOutcome run(std::string_view body) {
    outer_ = ingest::SyslogMessage{};
    outer_.app_name = "rsyslogd";  // a log relay may speak for other programs
    outer_.hostname = "outer-host";
    outer_.has_time = true;
    outer_.time = at(2026, 11, 28, 12, 0, 0);
    outer_.message = body;
    std::string_view json;
    EXPECT_TRUE(JsonNormalizer::extract(body, json));
    return normalizer_.normalize(outer_, json, event_, embedded_);
  }
  JsonNormalizer normalizer_;
  ingest::SyslogMessage outer_;
  ingest::SyslogMessage embedded_;
  AuthEvent event_;
};

TEST_F(JsonNormalizerTest, WrappedLineKeepsOuterFieldsTheJsonDoesNotGive) {
  ASSERT_EQ(run(R"({"msg":"  hello"})"), JsonOutcome::embedded);
  EXPECT_EQ(embedded_.message, "hello");
  EXPECT_EQ(embedded_.app_name, "rsyslogd");
  EXPECT_EQ(embedded_.hostname, "outer-host");
  EXPECT_EQ(embedded_.time, at(2026, 11, 28, 12, 0, 0));
}

TEST_F(JsonNormalizerTest, WrappedLineTakesProgramHostPidAndTime) {
  ASSERT_EQ(run(R"({"syslogtag":"postfix/smtpd[4242]:","hostname":"mx","timestamp":"2026-11-28T11:00:00+01:00","message":"connect from x[192.0.2.1]"})"),
            JsonOutcome::embedded);
  EXPECT_EQ(embedded_.app_name, "postfix/smtpd");
  EXPECT_EQ(embedded_.procid, "4242");
  EXPECT_EQ(embedded_.hostname, "mx");
  EXPECT_EQ(embedded_.time, at(2026, 11, 28, 10, 0, 0));
  EXPECT_EQ(embedded_.message, "connect from x[192.0.2.1]");
}

// The Dovecot normalizer rejoins HOSTNAME/TAG and MSG of log_path lines by the distance between
// the views, so the wrapped line must be laid out in one buffer exactly as parse_syslog leaves
// a plain line: "<host> <tag>[<pid>]: <msg>", whatever the JSON key order and wherever a field
// came from (the outer header's tag here).
TEST_F(JsonNormalizerTest, WrappedLineIsLaidOutInOneBufferInSyslogOrder) {
  for (std::string_view body :
       {R"({"msg":"passwd-file(a,192.0.2.1): unknown user","pid":"9","hostname":"mx"})",
        R"({"hostname":"mx","msg":"passwd-file(a,192.0.2.1): unknown user","procid":9})"}) {
    ASSERT_EQ(run(body), JsonOutcome::embedded) << body;
    const std::string_view whole(embedded_.hostname.data(),
                                 static_cast<std::size_t>(embedded_.message.data() +
                                                          embedded_.message.size() -
                                                          embedded_.hostname.data()));
    EXPECT_EQ(whole, "mx rsyslogd[9]: passwd-file(a,192.0.2.1): unknown user") << body;
    EXPECT_EQ(embedded_.app_name.data(), whole.data() + 3);
    EXPECT_EQ(embedded_.procid.data(), whole.data() + 12);
  }
}

TEST_F(JsonNormalizerTest, PreferredKeysWinWhateverTheirOrder) {
  ASSERT_EQ(run(R"({"tag":"other:","programname":"postfix/smtpd","pid":77,"MESSAGE":"b","msg":"a"})"),
            JsonOutcome::embedded);
  EXPECT_EQ(embedded_.app_name, "postfix/smtpd");
  EXPECT_EQ(embedded_.procid, "77");
  EXPECT_EQ(embedded_.message, "a");
}

TEST_F(JsonNormalizerTest, EscapedStringsAreUnescaped) {
  ASSERT_EQ(run(R"({"msg":"a\tb\u00e9\"c"})"), JsonOutcome::embedded);
  EXPECT_EQ(embedded_.message, "a\tb\xC3\xA9\"c");
}

TEST_F(JsonNormalizerTest, ViewsStayValidUntilTheNextCall) {
  std::string body = R"({"event":"auth_request_finished","fields":{"user":"alice","remote_ip":"192.0.2.1","error":"authentication failed"}})";
  ASSERT_EQ(run(body), JsonOutcome::event);
  // The input buffer may be reused as soon as normalize() returns.
  std::fill(body.begin(), body.end(), 'x');
  EXPECT_EQ(event_.user, "alice");
  EXPECT_EQ(event_.ip.to_string(), "192.0.2.1");
  EXPECT_EQ(event_.program, "rsyslogd");
  EXPECT_EQ(event_.host, "outer-host");
}

TEST_F(JsonNormalizerTest, MalformedJsonIsIgnored) {
  for (const char* bad : {R"({"msg":)", R"({"msg":"x")", "{\"msg\":\"\xFF\"}", R"({msg:"x"})",
                          R"({"event":"auth_request_finished","fields":[1,2]})", "{}"}) {
    EXPECT_EQ(run(bad), JsonOutcome::ignored) << bad;
  }
}

TEST_F(JsonNormalizerTest, DeepNestingIsIgnoredNotFatal) {
  std::string deep = R"({"x":)" + std::string(5000, '[') + std::string(5000, ']') + "}";
  EXPECT_EQ(run(deep), JsonOutcome::ignored);
}

TEST_F(JsonNormalizerTest, HugeAttemptCountsAreCapped) {
  ASSERT_EQ(run(R"({"event":"login_aborted","fields":{"remote_ip":"192.0.2.1","reason":"auth_failed","auth_attempts":99999999999}})"),
            JsonOutcome::event);
  EXPECT_EQ(event_.attempts, 1000000u);
}

TEST_F(JsonNormalizerTest, EveryFailureReasonCountsTheSessionsAttempts) {
  // The reason is the code of the session's last attempt: the wrong passwords before an
  // invalid base64 or an unknown mechanism must count too.
  ASSERT_EQ(run(R"({"event":"login_aborted","fields":{"remote_ip":"192.0.2.1","reason":"invalid_base64","auth_attempts":50}})"),
            JsonOutcome::event);
  EXPECT_EQ(event_.kind, EventKind::auth_failure);
  EXPECT_EQ(event_.reason, "invalid_base64");
  EXPECT_EQ(event_.attempts, 50u);
  ASSERT_EQ(run(R"({"event":"login_aborted","fields":{"remote_ip":"192.0.2.1","reason":"invalid_mech","auth_attempts":7,"auth_successes":1}})"),
            JsonOutcome::event);
  EXPECT_EQ(event_.attempts, 6u);
  ASSERT_EQ(run(R"({"event":"login_aborted","fields":{"remote_ip":"192.0.2.1","reason":"auth_aborted_by_client","auth_attempts":1}})"),
            JsonOutcome::event);
  EXPECT_EQ(event_.kind, EventKind::protocol_abuse);
}

}  // namespace
}  // namespace authwall::normalize
