// The renewal's crash safety without a Key or a CA (client/renewal.h): a
// run interrupted right after each journal step leaves the Key in a known
// state; a resume then rolls back (before cert_received) or forward (from
// it), and ends with exactly one working pair and no journal. The Key is an
// in-memory RenewalKey; certificates and keys are made here. The end to end
// version (SCEP CA, SoftHSM2, SIGKILL) is tests/renewal/crash.sh.
#include "client/renewal.h"

#include <gtest/gtest.h>

#include <openssl/x509v3.h>

#include <algorithm>
#include <map>

using namespace ukey;
using namespace ukey::client;

namespace {

PKeyPtr new_key()
{
    return PKeyPtr(EVP_EC_gen("P-256"));
}

// A certificate for `key` named CN=`cn`, signed by `signer` (null: itself).
X509Ptr make_cert(const std::string& cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* signer, bool ca)
{
    static long serial = 100;
    X509Ptr x(X509_new(), X509_free);
    X509_set_version(x.get(), X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x.get()), ++serial);
    X509NamePtr n(X509_NAME_new());
    X509_NAME_add_entry_by_txt(n.get(), "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1,
                               -1, 0);
    X509_set_subject_name(x.get(), n.get());
    X509_set_issuer_name(x.get(), issuer ? X509_get_subject_name(issuer) : n.get());
    X509_gmtime_adj(X509_getm_notBefore(x.get()), -60);
    X509_gmtime_adj(X509_getm_notAfter(x.get()), 30 * 86400);
    X509_set_pubkey(x.get(), key);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer ? issuer : x.get(), x.get(), nullptr, nullptr, 0);
    X509ExtPtr bc(X509V3_EXT_conf_nid(nullptr, &ctx, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE"));
    X509_add_ext(x.get(), bc.get(), -1);
    X509_sign(x.get(), signer ? signer : key, EVP_sha256());
    return x;
}

// The Key in memory: certificate and key objects by handle.
class FakeKey : public RenewalKey {
public:
    std::map<CK_OBJECT_HANDLE, CertOnKey> certs;
    struct KeyObj {
        CK_OBJECT_CLASS cls;
        Bytes id;
        std::string label;
        EVP_PKEY* pub;
    };
    std::map<CK_OBJECT_HANDLE, KeyObj> keys_;
    CK_OBJECT_HANDLE next = 1;
    int writes = 0, destroys = 0;

    CK_OBJECT_HANDLE add_cert(X509* x, const Bytes& id, const std::string& label, CK_ULONG category)
    {
        CertOnKey c;
        c.handle = next++;
        c.id = id;
        c.label = label;
        c.der = to_der(x);
        c.category = category;
        certs[c.handle] = c;
        return c.handle;
    }
    void add_pair(EVP_PKEY* pub, const Bytes& id, const std::string& label)
    {
        keys_[next++] = {CKO_PRIVATE_KEY, id, label, pub};
        keys_[next++] = {CKO_PUBLIC_KEY, id, label, pub};
    }
    std::vector<std::string> labels() const
    {
        std::vector<std::string> out;
        for (const auto& [h, c] : certs)
            out.push_back("cert:" + c.label);
        for (const auto& [h, k] : keys_)
            out.push_back(std::string(k.cls == CKO_PRIVATE_KEY ? "priv:" : "pub:") + k.label);
        std::sort(out.begin(), out.end());
        return out;
    }

    Result<std::vector<CertOnKey>> certificates() override
    {
        std::vector<CertOnKey> out;
        for (const auto& [h, c] : certs)
            out.push_back(c);
        return out;
    }
    Result<std::vector<KeyOnKey>> keys() override
    {
        std::vector<KeyOnKey> out;
        for (const auto& [h, k] : keys_) {
            KeyOnKey o;
            o.handle = h;
            o.cls = k.cls;
            o.id = k.id;
            o.label = k.label;
            o.public_key = pkey_ref(k.pub);
            out.push_back(std::move(o));
        }
        return out;
    }
    Result<std::vector<CK_OBJECT_HANDLE>> labelled(const std::string& label) override
    {
        std::vector<CK_OBJECT_HANDLE> out;
        for (const auto& [h, c] : certs)
            if (c.label == label)
                out.push_back(h);
        for (const auto& [h, k] : keys_)
            if (k.label == label)
                out.push_back(h);
        return out;
    }
    Result<CK_OBJECT_HANDLE> write_certificate(X509* x, const Bytes& id, const std::string& label,
                                               CK_ULONG category) override
    {
        ++writes;
        return add_cert(x, id, label, category);
    }
    Result<void> relabel(CK_OBJECT_HANDLE h, const std::string& label) override
    {
        if (certs.count(h))
            certs[h].label = label;
        else if (keys_.count(h))
            keys_[h].label = label;
        else
            return Error{CKR_OBJECT_HANDLE_INVALID, "no such object"};
        return {};
    }
    Result<void> destroy(CK_OBJECT_HANDLE h, const std::string&) override
    {
        ++destroys;
        if (!certs.erase(h) && !keys_.erase(h))
            return Error{CKR_OBJECT_HANDLE_INVALID, "no such object"};
        return {};
    }
};

// The journal file in memory, kept as its text (so every save is also a
// round trip through parse_journal); `fail_at` makes the save of that step
// fail, as a crash or a full disk would.
class MemoryStore : public JournalStore {
public:
    std::optional<std::string> text;
    std::optional<Step> fail_at;

    Result<void> save(const Journal& j) override
    {
        if (fail_at && j.step() == *fail_at)
            return Error{CKR_OK, "the disk is full"};
        text = journal_text(j);
        return {};
    }
    Result<void> remove() override
    {
        text.reset();
        return {};
    }
    Journal load() const
    {
        auto j = parse_journal(*text);
        EXPECT_TRUE(j) << (j ? "" : j.error().message);
        return j ? std::move(*j) : Journal{};
    }
};

constexpr std::time_t now = 1'800'000'000; // 2027-01-15
const std::string old_label = "Alice", pending = "ukey-renewal-pending-0a0b0c";

class RenewalTest : public ::testing::Test {
protected:
    PKeyPtr ca_key = new_key(), old_key = new_key(), new_key_ = new_key();
    X509Ptr ca = make_cert("Example CA", ca_key.get(), nullptr, nullptr, true);
    X509Ptr old_cert = make_cert("Alice", old_key.get(), ca.get(), ca_key.get(), false);
    X509Ptr new_cert = make_cert("Alice", new_key_.get(), ca.get(), ca_key.get(), false);
    Bytes old_id{0x01, 0x02}, new_id{0x0a, 0x0b};
    FakeKey key;
    MemoryStore store;

    void SetUp() override
    {
        key.add_cert(old_cert.get(), old_id, old_label, 1);
        key.add_pair(old_key.get(), old_id, old_label);
    }

    Journal started(bool rekey = true, bool keep_old = false)
    {
        Journal j;
        j.key = "softhsm2/SoftHSM project/SoftHSM v2/0123";
        j.ca_url = "http://ca.example/scep";
        j.ca_cert = to_der(ca.get());
        j.rekey = rekey;
        j.keep_old = keep_old;
        j.pending_label = pending;
        j.final_label = old_label;
        j.old = JournalOld{old_id, old_label, to_der(old_cert.get())};
        return j;
    }

    // A fresh Key, and a run (the default journal) killed after `last`.
    void killed_after(Step last)
    {
        key = FakeKey{};
        SetUp();
        Journal j = started();
        run_until(j, last);
    }

    // What a run does up to and including `last` (the journal and the Key),
    // then it is killed.
    void run_until(Journal& j, Step last)
    {
        for (int i = 0; i <= static_cast<int>(last); ++i) {
            const Step s = static_cast<Step>(i);
            if (s == Step::key_generated) {
                if (j.rekey)
                    key.add_pair(new_key_.get(), new_id, pending);
                j.new_id = j.rekey ? new_id : old_id;
            }
            if (s == Step::request_sent)
                j.transaction_id = "txid";
            if (s == Step::cert_received) {
                j.cert = j.rekey ? to_der(new_cert.get()) : to_der(old_cert_renewed().get());
                j.chain = {j.ca_cert};
            }
            if (s == Step::cert_written) {
                key.add_cert(parse_der(j.cert).get(), j.new_id, old_label, 1);
                key.add_cert(ca.get(), {}, "Example CA", 2);
                auto found = key.labelled(pending);
                for (auto h : *found)
                    (void)key.relabel(h, old_label);
            }
            if (s == Step::old_retired) {
                auto certs = key.certificates();
                for (auto& c : *certs)
                    if (c.der == j.old->cert)
                        (void)key.destroy(c.handle, "");
                auto keys = key.keys();
                if (j.rekey)
                    for (auto& k : *keys)
                        if (k.id == old_id)
                            (void)key.destroy(k.handle, "");
            }
            ASSERT_TRUE(record(j, s, store, now));
        }
    }

    // Same-key renewal: a new certificate for the old key.
    X509Ptr renewed{nullptr, X509_free};
    X509Ptr old_cert_renewed()
    {
        if (!renewed)
            renewed = make_cert("Alice", old_key.get(), ca.get(), ca_key.get(), false);
        return x509_ref(renewed.get());
    }

    // A resume as `ukey renew --resume` does it, from what the store holds.
    ResumeAction resume(Result<Finished>* finished = nullptr)
    {
        Journal j = store.load();
        const ResumeAction a = resume_action(j);
        if (a == ResumeAction::roll_back) {
            EXPECT_TRUE(roll_back(j, key, store));
        } else {
            auto r = roll_forward(j, key, store, now);
            EXPECT_TRUE(r) << (r ? "" : r.error().message);
            if (finished)
                *finished = std::move(r);
        }
        return a;
    }

    void expect_old_pair_only()
    {
        EXPECT_EQ(key.labels(), (std::vector<std::string>{"cert:Alice", "priv:Alice", "pub:Alice"}));
        ASSERT_EQ(key.certs.size(), 1u);
        EXPECT_EQ(key.certs.begin()->second.der, to_der(old_cert.get()));
        EXPECT_FALSE(store.text);
    }

    void expect_new_pair_only()
    {
        EXPECT_EQ(key.labels(), (std::vector<std::string>{"cert:Alice", "cert:Example CA", "priv:Alice", "pub:Alice"}));
        for (const auto& [h, c] : key.certs)
            if (c.category == 1) {
                EXPECT_EQ(c.der, to_der(new_cert.get()));
                EXPECT_EQ(c.id, new_id);
            }
        for (const auto& [h, k] : key.keys_)
            EXPECT_EQ(k.id, new_id);
        EXPECT_FALSE(store.text);
    }
};

TEST(JournalText, StepsHaveOneNameEach)
{
    for (int i = 0; i < step_count; ++i) {
        const Step s = static_cast<Step>(i);
        EXPECT_EQ(step_named(step_name(s)), s);
    }
    EXPECT_EQ(std::string(step_name(Step::cert_received)), "cert_received");
    EXPECT_FALSE(step_named("cert_recieved"));
    EXPECT_FALSE(step_named(""));
}

TEST_F(RenewalTest, JournalSurvivesItsText)
{
    Journal j = started(true, true);
    j.ca_name = "lab";
    j.old_summary = R"({"label":"Alice"})";
    run_until(j, Step::cert_received);
    Journal back = store.load();
    EXPECT_EQ(back.step(), Step::cert_received);
    EXPECT_EQ(back.steps.size(), 4u);
    EXPECT_EQ(back.steps[0].time, "2027-01-15T08:00:00Z");
    EXPECT_EQ(back.ca_name, std::optional<std::string>("lab"));
    EXPECT_EQ(back.ca_cert, j.ca_cert);
    EXPECT_TRUE(back.rekey);
    EXPECT_TRUE(back.keep_old);
    EXPECT_EQ(back.pending_label, pending);
    ASSERT_TRUE(back.old);
    EXPECT_EQ(back.old->id, old_id);
    EXPECT_EQ(back.old->cert, j.old->cert);
    EXPECT_EQ(back.new_id, new_id);
    EXPECT_EQ(back.transaction_id, "txid");
    EXPECT_EQ(back.cert, j.cert);
    EXPECT_EQ(back.chain, j.chain);
    EXPECT_EQ(back.old_summary, R"({"label":"Alice"})");
}

TEST_F(RenewalTest, DamagedJournalsNameTheField)
{
    Journal j = started();
    run_until(j, Step::cert_received);
    const std::string good = *store.text;
    auto damaged = [&](const std::string& from, const std::string& to) {
        std::string t = good;
        auto at = t.find(from);
        EXPECT_NE(at, std::string::npos) << from;
        t.replace(at, from.size(), to);
        auto r = parse_journal(t);
        EXPECT_FALSE(r) << to;
        return r ? std::string() : r.error().message;
    };
    EXPECT_NE(damaged("\"new_id\": \"0a0b\"", "\"new_id\": \"not-hex\"").find("new_id is not a key ID in hex"),
              std::string::npos);
    EXPECT_NE(damaged("\"step\": \"cert_received\"", "\"step\": \"done\"").find("step"), std::string::npos);
    EXPECT_NE(damaged("\"cert\": \"", "\"cert\": \"!").find("cert is not base64"), std::string::npos);
    EXPECT_NE(damaged("\"new_id\": \"0a0b\"", "\"new_id\": 7").find("new_id"), std::string::npos);
    EXPECT_FALSE(parse_journal("[]"));
    EXPECT_FALSE(parse_journal("{\"step\": \"started\""));
    EXPECT_FALSE(parse_journal("{}"));
    // Before key_generated there is no new_id to check.
    EXPECT_TRUE(parse_journal(R"({"step": "started"})"));
}

TEST_F(RenewalTest, InterruptedBeforeTheCertificateRollsBack)
{
    for (Step last : {Step::started, Step::key_generated, Step::request_sent}) {
        SCOPED_TRACE(step_name(last));
        killed_after(last);
        EXPECT_EQ(resume(), ResumeAction::roll_back);
        expect_old_pair_only();
    }
}

TEST_F(RenewalTest, InterruptedFromTheCertificateOnRollsForward)
{
    for (Step last : {Step::cert_received, Step::cert_written, Step::old_retired}) {
        SCOPED_TRACE(step_name(last));
        killed_after(last);
        const int writes = key.writes;
        Result<Finished> done = Error{};
        EXPECT_EQ(resume(&done), ResumeAction::roll_forward);
        expect_new_pair_only();
        // The certificate and its CA are written once, whoever wrote them.
        EXPECT_EQ(key.writes - writes, last == Step::cert_received ? 2 : 0);
        ASSERT_TRUE(done);
        EXPECT_EQ(done->key_id, new_id);
        EXPECT_EQ(done->label, old_label);
        EXPECT_EQ(done->old_action, last == Step::old_retired ? OldAction::none : OldAction::deleted);
    }
}

TEST_F(RenewalTest, SameKeyRollBackKeepsTheKey)
{
    Journal j = started(false);
    run_until(j, Step::request_sent);
    EXPECT_EQ(resume(), ResumeAction::roll_back);
    expect_old_pair_only();
}

TEST_F(RenewalTest, SameKeyRollForwardKeepsTheKeyAndReplacesTheCertificate)
{
    Journal j = started(false);
    run_until(j, Step::cert_received);
    EXPECT_EQ(resume(), ResumeAction::roll_forward);
    EXPECT_EQ(key.labels(), (std::vector<std::string>{"cert:Alice", "cert:Example CA", "priv:Alice", "pub:Alice"}));
    for (const auto& [h, c] : key.certs)
        if (c.category == 1) {
            EXPECT_EQ(c.der, to_der(old_cert_renewed().get()));
        }
    EXPECT_FALSE(store.text);
}

TEST_F(RenewalTest, KeepOldLabelsTheOldPairSuperseded)
{
    Journal j = started(true, true);
    run_until(j, Step::cert_written);
    Result<Finished> done = Error{};
    resume(&done);
    ASSERT_TRUE(done);
    EXPECT_EQ(done->old_action, OldAction::kept_superseded);
    EXPECT_EQ(key.labels(), (std::vector<std::string>{"cert:Alice", "cert:Example CA", "cert:superseded 2027-01-15: Alice",
                                                      "priv:Alice", "priv:superseded 2027-01-15: Alice",
                                                      "pub:Alice", "pub:superseded 2027-01-15: Alice"}));
    EXPECT_TRUE(is_superseded("superseded 2027-01-15: Alice"));
}

TEST_F(RenewalTest, APairThatDoesNotCheckKeepsTheOldCertificateAndTheJournal)
{
    Journal j = started();
    run_until(j, Step::cert_written);
    // The new private key is gone (the Key was swapped, or its driver lost it).
    auto keys = key.keys();
    for (auto& k : *keys)
        if (k.id == new_id)
            (void)key.destroy(k.handle, "");
    Journal again = store.load();
    auto r = roll_forward(again, key, store, now);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().rv, static_cast<CK_RV>(CKR_GENERAL_ERROR));
    EXPECT_NE(r.error().message.find("old certificate was kept"), std::string::npos);
    bool old_there = false;
    for (const auto& [h, c] : key.certs)
        old_there |= c.der == to_der(old_cert.get());
    EXPECT_TRUE(old_there);
    ASSERT_TRUE(store.text);
    EXPECT_EQ(store.load().step(), Step::cert_written);
}

TEST_F(RenewalTest, ACrashWhileRollingForwardIsResumedAgain)
{
    Journal j = started();
    run_until(j, Step::cert_received);
    // The resume dies saving cert_written: the certificate is on the Key, the
    // journal still says cert_received.
    store.fail_at = Step::cert_written;
    Journal first = store.load();
    EXPECT_FALSE(roll_forward(first, key, store, now));
    EXPECT_EQ(store.load().step(), Step::cert_received);
    store.fail_at.reset();
    const int writes = key.writes;
    EXPECT_EQ(resume(), ResumeAction::roll_forward);
    EXPECT_EQ(key.writes, writes); // not written twice
    expect_new_pair_only();
}

// "" for success, else the error's sentence.
std::string why(const Result<void>& r)
{
    return r ? "" : r.error().message;
}

TEST_F(RenewalTest, TheIssuedCertificateMustChainAndNameTheSubject)
{
    Journal j = started();
    EXPECT_EQ(why(verify_issued(j, new_cert.get(), X509_get_subject_name(old_cert.get()))), "");
    PKeyPtr other_ca_key = new_key();
    X509Ptr other_ca = make_cert("Other CA", other_ca_key.get(), nullptr, nullptr, true);
    X509Ptr foreign = make_cert("Alice", new_key_.get(), other_ca.get(), other_ca_key.get(), false);
    EXPECT_NE(why(verify_issued(j, foreign.get(), nullptr)), "");
    X509Ptr bob = make_cert("Bob", new_key_.get(), ca.get(), ca_key.get(), false);
    EXPECT_NE(why(verify_issued(j, bob.get(), X509_get_subject_name(old_cert.get()))).find("not the one requested"),
              std::string::npos);
    j.ca_cert.clear();
    EXPECT_EQ(why(verify_issued(j, new_cert.get(), nullptr)), "the journal holds no CA certificate");
}

TEST(SameAttributes, IgnoresOrderAndStringType)
{
    auto name = [](std::vector<std::pair<const char*, int>> entries) {
        X509NamePtr n(X509_NAME_new());
        const char* values[] = {"Alice", "Example"};
        for (std::size_t i = 0; i < entries.size(); ++i)
            X509_NAME_add_entry_by_txt(n.get(), entries[i].first, entries[i].second,
                                       reinterpret_cast<const unsigned char*>(values[entries[i].first[0] == 'O']), -1,
                                       -1, 0);
        return n;
    };
    auto a = name({{"CN", MBSTRING_UTF8}, {"O", MBSTRING_UTF8}});
    auto b = name({{"O", V_ASN1_PRINTABLESTRING}, {"CN", MBSTRING_ASC}});
    auto c = name({{"CN", MBSTRING_UTF8}});
    EXPECT_TRUE(same_attributes(a.get(), b.get()));
    EXPECT_FALSE(same_attributes(a.get(), c.get()));
}

} // namespace
