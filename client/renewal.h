// The crash-safe part of an enrolment or renewal (docs/renewal.md): the
// journal's steps and what a run that finds a journal does with it.
//
// Before cert_received nothing the Key held was changed, only a new key
// (labelled with the journal's pending label) was added: a resume rolls
// back (deletes that key). From cert_received on the verified certificate
// is in the journal: a resume rolls forward (writes it, renames the new key,
// checks the pair on the Key, retires the old objects). Each part checks
// what the Key holds first, so a part done before a crash is not done twice.
//
// The Key and the journal's storage are behind small interfaces, so that
// tests drive every interrupted step without a Key or a CA.
#pragma once

#include "client/certs.h"
#include "client/journal.h"

#include <ctime>
#include <functional>
#include <string>
#include <vector>

namespace ukey::client {

// The objects a renewal reads and changes on the Key.
class RenewalKey {
public:
    virtual ~RenewalKey() = default;
    virtual Result<std::vector<CertOnKey>> certificates() = 0;
    virtual Result<std::vector<KeyOnKey>> keys() = 0;
    virtual Result<std::vector<CK_OBJECT_HANDLE>> labelled(const std::string& label) = 0;
    // A public X.509 certificate object; category 1 (user) or 2 (authority).
    virtual Result<CK_OBJECT_HANDLE> write_certificate(X509* x, const Bytes& id, const std::string& label,
                                                       CK_ULONG category) = 0;
    virtual Result<void> relabel(CK_OBJECT_HANDLE h, const std::string& label) = 0;
    // `what` names the object in the error ("the old certificate").
    virtual Result<void> destroy(CK_OBJECT_HANDLE h, const std::string& what) = 0;
};

// RenewalKey over a logged-in read-write session.
class SessionKey : public RenewalKey {
public:
    explicit SessionKey(const Session& s) : s_(s) {}
    Result<std::vector<CertOnKey>> certificates() override;
    Result<std::vector<KeyOnKey>> keys() override;
    Result<std::vector<CK_OBJECT_HANDLE>> labelled(const std::string& label) override;
    Result<CK_OBJECT_HANDLE> write_certificate(X509* x, const Bytes& id, const std::string& label,
                                               CK_ULONG category) override;
    Result<void> relabel(CK_OBJECT_HANDLE h, const std::string& label) override;
    Result<void> destroy(CK_OBJECT_HANDLE h, const std::string& what) override;

private:
    const Session& s_;
};

// Where the journal is kept.
class JournalStore {
public:
    virtual ~JournalStore() = default;
    virtual Result<void> save(const Journal& j) = 0;
    virtual Result<void> remove() = 0;
};

// The journal file (journal.h); `after_save` runs after each step is on
// disk (the tests' crash switch).
class FileJournal : public JournalStore {
public:
    explicit FileJournal(std::filesystem::path path, std::function<void(Step)> after_save = {})
        : path_(std::move(path)), after_save_(std::move(after_save)) {}
    Result<void> save(const Journal& j) override;
    Result<void> remove() override;
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
    std::function<void(Step)> after_save_;
};

// Appends `step` (at `now`) and saves the journal.
Result<void> record(Journal& j, Step step, JournalStore& store, std::time_t now);

// The label prefix of a certificate or key a renewal kept (--keep-old).
inline constexpr const char* superseded_prefix = "superseded ";
bool is_superseded(const std::string& label);

// What a resume does with a journal.
enum class ResumeAction { roll_back, roll_forward };
ResumeAction resume_action(const Journal& j);

// Deletes the new key (the pending label; rekey only) and the journal.
Result<void> roll_back(const Journal& j, RenewalKey& key, JournalStore& store);

enum class OldAction { none, deleted, kept_superseded };
const char* old_action_name(OldAction a); // "none", "deleted", "kept_superseded"

struct Finished {
    X509Ptr cert{nullptr, X509_free}; // the new certificate
    std::string label;
    Bytes key_id;
    OldAction old_action = OldAction::none; // what this run did (none if retired before)
};

// From cert_received: writes the certificate and chain (unless there),
// renames the new key, records cert_written; checks the pair on the Key,
// retires the old certificate (and key, if rekeyed), records old_retired;
// removes the journal. A pair that does not check is an error with rv
// CKR_GENERAL_ERROR, and the old certificate is kept.
Result<Finished> roll_forward(Journal& j, RenewalKey& key, JournalStore& store, std::time_t now);

// `x` is acceptable as the journal's new certificate: chains to the
// journal's CA, valid now, and (if given) has the subject asked for; else the
// error says why not.
Result<void> verify_issued(const Journal& j, X509* x, const X509_NAME* subject);

// The same attributes, in any order and string type: some CAs (Go's
// crypto/x509, hence scepserver) re-encode the subject in their own RDN order.
bool same_attributes(const X509_NAME* a, const X509_NAME* b);

} // namespace ukey::client
