// ukeyd's Key tracking: PC/SC readers and backend scans merged into the
// Keys present, what changed since subscribers were last told, and PIN
// locks confirmed over two scans.
#include "key_tracker.h"

#include <gtest/gtest.h>

using nlohmann::json;
using ukey::daemon::KeyTracker;
using ukey::daemon::PinLockWatch;

namespace {

json token_key(const std::string& id, const std::string& slot_description)
{
    return json{{"id", id}, {"label", "Alice"}, {"serial", "1234"}, {"slot_description", slot_description},
                {"certificates", json::array()}};
}

json scan(json keys, json slots = json::array())
{
    return json{{"keys", std::move(keys)}, {"slots", std::move(slots)}};
}

std::vector<std::string> ids(const std::vector<json>& keys)
{
    std::vector<std::string> out;
    for (const auto& k : keys)
        out.push_back(k.value("id", ""));
    return out;
}

} // namespace

TEST(KeyTracker, ABackendKeyIsInsertedOnceAndRemovedWhenAScanNoLongerShowsIt)
{
    KeyTracker t;
    t.scanned(scan(json::array({token_key("softhsm/1", "SoftHSM slot 0")})));
    auto ch = t.reconcile();
    ASSERT_EQ(ch.present.size(), 1u);
    EXPECT_FALSE(ch.present[0].before);
    EXPECT_TRUE(ch.removed.empty());

    ch = t.reconcile(); // nothing new: present, and told before
    ASSERT_EQ(ch.present.size(), 1u);
    ASSERT_TRUE(ch.present[0].before);
    EXPECT_EQ(ch.present[0].before->value("id", ""), "softhsm/1");

    t.scanned(scan(json::array()));
    ch = t.reconcile();
    EXPECT_TRUE(ch.present.empty());
    EXPECT_EQ(ids(ch.removed), std::vector<std::string>{"softhsm/1"});
    EXPECT_TRUE(t.published_list().empty());
}

TEST(KeyTracker, AFailedScanIsNotARemoval)
{
    KeyTracker t;
    t.scanned(scan(json::array({token_key("softhsm/1", "")})));
    t.reconcile();
    t.scan_finished(); // a failed scan: scanned() is not called
    auto ch = t.reconcile();
    EXPECT_TRUE(ch.removed.empty());
    EXPECT_EQ(t.published().size(), 1u);
}

// A slot that answered with an error in a scan says nothing about its Key:
// the Keys of its backend stay (a Key of another backend does go).
TEST(KeyTracker, ASlotThatAnsweredWithAnErrorRemovesNoKeyOfItsBackend)
{
    KeyTracker t;
    json a = token_key("softhsm/1", ""), b = token_key("vendor/2", "");
    a["backend"] = "softhsm";
    b["backend"] = "vendor";
    t.scanned(scan(json::array({a, b})));
    t.scan_finished();
    ASSERT_EQ(t.reconcile().present.size(), 2u);

    t.scanned(scan(json::array(), json::array({{{"slot_id", 7}, {"backend", "softhsm"}, {"error", "CKR_DEVICE_ERROR"}}})));
    t.scan_finished();
    auto ch = t.reconcile();
    EXPECT_EQ(ids(ch.removed), std::vector<std::string>{"vendor/2"});
    EXPECT_EQ(t.published().size(), 1u);

    // No backend named (C_GetSlotInfo failed): no Key goes.
    t.scanned(scan(json::array(), json::array({{{"slot_id", 9}, {"error", "C_GetSlotInfo failed"}}})));
    t.scan_finished();
    EXPECT_TRUE(t.reconcile().removed.empty());

    // A good scan without it: now it is removed.
    t.scanned(scan(json::array()));
    t.scan_finished();
    EXPECT_EQ(ids(t.reconcile().removed), std::vector<std::string>{"softhsm/1"});
}

TEST(KeyTracker, ACardBehindABackendSlotIsOneKeyNamedByTheBackend)
{
    KeyTracker t;
    const json slots = json::array({{{"description", "Reader A 00 00"}, {"token", true}}});
    t.scanned(scan(json::array(), slots));
    t.reader_added("Reader A 00 00");
    t.card_inserted("Reader A 00 00", "3B:00");
    // The backend should name it: no pcsc Key while the scan is awaited.
    EXPECT_TRUE(t.reconcile().present.empty());

    t.scanned(scan(json::array({token_key("vendor/7", "Reader A 00 00")}), slots));
    t.scan_finished();
    auto ch = t.reconcile();
    ASSERT_EQ(ch.present.size(), 1u);
    EXPECT_EQ(ch.present[0].key["id"], "vendor/7");
    EXPECT_EQ(ch.present[0].key["reader"], "Reader A 00 00");
    EXPECT_EQ(ch.present[0].key["atr"], "3B:00");

    // Card out: the Key goes at once, whatever the last scan said.
    t.card_removed("Reader A 00 00");
    ch = t.reconcile();
    EXPECT_EQ(ids(ch.removed), std::vector<std::string>{"vendor/7"});
}

TEST(KeyTracker, ACardNoBackendShowsIsAKeyOfItsOwnUntilItsReaderGoes)
{
    KeyTracker t;
    t.reader_added("Reader B");
    t.card_inserted("Reader B", "3B:FF");
    auto ch = t.reconcile();
    ASSERT_EQ(ch.present.size(), 1u);
    const json& k = ch.present[0].key;
    EXPECT_EQ(k["id"], "pcsc:Reader B");
    EXPECT_EQ(k["source"], "pcsc");
    EXPECT_NE(k["note"].get<std::string>().find("[[backend]]"), std::string::npos);
    EXPECT_EQ(t.readers().at("Reader B").atr, "3B:FF");

    EXPECT_TRUE(t.reader_removed("Reader B"));
    EXPECT_FALSE(t.reader_removed("Reader B"));
    ch = t.reconcile();
    EXPECT_EQ(ids(ch.removed), std::vector<std::string>{"pcsc:Reader B"});
}

TEST(KeyTracker, AnUninitialisedTokenInAReaderSaysSo)
{
    KeyTracker t;
    t.scanned(scan(json::array(), json::array({{{"description", "Reader C"}, {"token", true}, {"initialized", false}}})));
    t.reader_added("Reader C");
    t.card_inserted("Reader C", "3B");
    t.scan_finished();
    auto ch = t.reconcile();
    ASSERT_EQ(ch.present.size(), 1u);
    EXPECT_EQ(ch.present[0].key["initialized"], false);
    EXPECT_NE(ch.present[0].key["note"].get<std::string>().find("ukey init"), std::string::npos);
}

TEST(KeyTracker, ALongReaderNameCutInTheSlotDescriptionStillMatches)
{
    KeyTracker t;
    const std::string reader(70, 'r');
    const std::string cut = reader.substr(0, 64);
    t.reader_added(reader);
    t.card_inserted(reader, "3B");
    t.scanned(scan(json::array({token_key("vendor/1", cut)})));
    auto ch = t.reconcile();
    ASSERT_EQ(ch.present.size(), 1u);
    EXPECT_EQ(ch.present[0].key["reader"], reader);
}

TEST(KeyTracker, ForgettingTheReadersRemovesTheirCards)
{
    KeyTracker t;
    t.reader_added("R");
    t.card_inserted("R", "3B");
    t.reconcile();
    t.forget_readers();
    EXPECT_TRUE(t.readers().empty());
    EXPECT_EQ(ids(t.reconcile().removed), std::vector<std::string>{"pcsc:R"});
}

TEST(PinLockWatch, ALockIsAnnouncedOnceAfterASecondScanShowsIt)
{
    PinLockWatch w;
    json key{{"id", "k"}, {"user_pin", {{"locked", true}}}, {"so_pin", {{"locked", false}}}};
    auto v = w.check(key, 1);
    EXPECT_TRUE(v.confirm);
    EXPECT_TRUE(v.announce.empty());
    v = w.check(key, 1); // the same scan again: not a confirmation
    EXPECT_FALSE(v.confirm);
    EXPECT_TRUE(v.announce.empty());
    v = w.check(key, 2);
    EXPECT_EQ(v.announce, std::vector<std::string>{"user_pin"});
    EXPECT_TRUE(w.check(key, 3).announce.empty()); // announced once

    // Unlocked, then locked again: announced again.
    key["user_pin"]["locked"] = false;
    w.check(key, 4);
    key["user_pin"]["locked"] = true;
    EXPECT_TRUE(w.check(key, 5).confirm);
    EXPECT_EQ(w.check(key, 6).announce, std::vector<std::string>{"user_pin"});
}

TEST(PinLockWatch, AKeyThatLeavesStartsAfresh)
{
    PinLockWatch w;
    json key{{"id", "k"}, {"so_pin", {{"locked", true}}}};
    w.check(key, 1);
    EXPECT_EQ(w.check(key, 2).announce, std::vector<std::string>{"so_pin"});
    w.forget("k");
    EXPECT_TRUE(w.check(key, 3).confirm);
    EXPECT_EQ(w.check(key, 4).announce, std::vector<std::string>{"so_pin"});
}

TEST(PinLockWatch, ALockSeenOnceThenGoneIsNeverAnnounced)
{
    PinLockWatch w;
    json key{{"id", "k"}, {"user_pin", {{"locked", true}}}};
    EXPECT_TRUE(w.check(key, 1).confirm);
    key["user_pin"]["locked"] = false;
    EXPECT_TRUE(w.check(key, 2).announce.empty());
    key["user_pin"]["locked"] = true;
    auto v = w.check(key, 3);
    EXPECT_TRUE(v.confirm);
    EXPECT_TRUE(v.announce.empty());
}
