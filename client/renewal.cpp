// The journal's steps, roll back and roll forward (see renewal.h).
#include "client/renewal.h"

#include "client/scep_trust.h"
#include "token/times.h"

#include <algorithm>

namespace ukey::client {

namespace {

Error renewal_error(const std::string& what)
{
    return Error{CKR_OK, what};
}

// The new pair failed its check on the Key: a Key-side failure.
Error pair_error(const std::string& what)
{
    return Error{CKR_GENERAL_ERROR, what};
}

const CertOnKey* cert_with_der(const std::vector<CertOnKey>& certs, const Bytes& der)
{
    for (const auto& c : certs)
        if (c.der == der)
            return &c;
    return nullptr;
}

// The new pair on the Key works: its certificate is there, a private key
// with its id has the certificate's public key, it chains to the pinned CA
// and is valid now.
Result<void> verify_on_key(const Journal& j, RenewalKey& key)
{
    auto certs = key.certificates();
    if (!certs)
        return certs.error();
    const CertOnKey* c = cert_with_der(*certs, j.cert);
    if (!c || c->id != j.new_id)
        return pair_error("the new certificate is not on the Key with the new key's id: the old certificate was "
                          "kept; run `ukey renew --resume` again");
    X509Ptr x = c->parse();
    auto keys = key.keys();
    if (!keys)
        return keys.error();
    const bool match = x && std::any_of(keys->begin(), keys->end(), [&](const KeyOnKey& k) {
        return k.is_private() && k.id == j.new_id && k.public_key &&
               same_public_key(k.public_key.get(), X509_get0_pubkey(x.get()));
    });
    if (!match)
        return pair_error("no private key on the Key matches the new certificate: the old certificate was kept");
    if (auto issued = verify_issued(j, x.get(), nullptr); !issued)
        return pair_error("the new certificate on the Key does not verify (" + issued.error().message +
                          "): the old certificate was kept");
    return {};
}

// The old certificate (and its key, when the renewal made a new one) is
// deleted, or kept under a superseded label.
Result<OldAction> retire(const Journal& j, RenewalKey& key, std::time_t now)
{
    if (!j.old)
        return OldAction::none;
    const std::string new_label = superseded_prefix + iso8601(now).substr(0, 10) + ": " + j.old->label;
    auto apply = [&](CK_OBJECT_HANDLE h, const std::string& what) {
        return j.keep_old ? key.relabel(h, new_label) : key.destroy(h, what);
    };
    auto certs = key.certificates();
    if (!certs)
        return certs.error();
    if (const CertOnKey* c = cert_with_der(*certs, j.old->cert))
        if (auto r = apply(c->handle, "the old certificate"); !r)
            return r.error();
    if (j.rekey && j.old->id != j.new_id) {
        auto keys = key.keys();
        if (!keys)
            return keys.error();
        for (const auto& k : *keys)
            if (k.id == j.old->id)
                if (auto r = apply(k.handle, "the old key"); !r)
                    return r.error();
    }
    return j.keep_old ? OldAction::kept_superseded : OldAction::deleted;
}

// The new certificate, its CA certificates and the new key's final label.
Result<void> write_new(const Journal& j, RenewalKey& key, X509* x)
{
    auto certs = key.certificates();
    if (!certs)
        return certs.error();
    if (!cert_with_der(*certs, j.cert))
        if (auto r = key.write_certificate(x, j.new_id, j.final_label, 1); !r)
            return r.error();
    for (const auto& der : j.chain) {
        X509Ptr cx = parse_der(der);
        if (!cx || cert_with_der(*certs, der))
            continue;
        CertDetails d = cert_details(cx.get());
        if (auto r = key.write_certificate(cx.get(), d.subject_key_id, d.subject_cn.empty() ? d.subject : d.subject_cn, 2);
            !r)
            return r.error();
    }
    if (!j.pending_label.empty()) {
        auto pending = key.labelled(j.pending_label);
        if (!pending)
            return pending.error();
        for (CK_OBJECT_HANDLE h : *pending)
            if (auto r = key.relabel(h, j.final_label); !r)
                return r.error();
    }
    return {};
}

} // namespace

Result<void> FileJournal::save(const Journal& j)
{
    auto r = save_journal(path_, journal_text(j) + "\n");
    if (r && after_save_)
        after_save_(j.step());
    return r;
}

Result<void> FileJournal::remove()
{
    return remove_journal(path_);
}

Result<void> record(Journal& j, Step step, JournalStore& store, std::time_t now)
{
    j.steps.push_back({step, iso8601(now)});
    return store.save(j);
}

bool is_superseded(const std::string& label)
{
    return label.rfind(superseded_prefix, 0) == 0;
}

ResumeAction resume_action(const Journal& j)
{
    return j.reached(Step::cert_received) ? ResumeAction::roll_forward : ResumeAction::roll_back;
}

Result<void> roll_back(const Journal& j, RenewalKey& key, JournalStore& store)
{
    if (!j.pending_label.empty() && j.rekey) {
        auto pending = key.labelled(j.pending_label);
        if (!pending)
            return pending.error();
        for (CK_OBJECT_HANDLE h : *pending)
            if (auto r = key.destroy(h, "the unfinished new key"); !r)
                return r.error();
    }
    return store.remove();
}

const char* old_action_name(OldAction a)
{
    static constexpr const char* names[] = {"none", "deleted", "kept_superseded"}; // OldAction's order
    return names[static_cast<int>(a)];
}

Result<Finished> roll_forward(Journal& j, RenewalKey& key, JournalStore& store, std::time_t now)
{
    if (!j.reached(Step::cert_received))
        return renewal_error("internal: the renewal has no certificate to finish with");
    Finished out;
    out.cert = parse_der(j.cert);
    if (!out.cert)
        return renewal_error("the renewal journal holds no readable certificate");
    out.label = j.final_label;
    out.key_id = j.new_id;
    if (!j.reached(Step::cert_written)) {
        if (auto r = write_new(j, key, out.cert.get()); !r)
            return r.error();
        if (auto r = record(j, Step::cert_written, store, now); !r)
            return r.error();
    }
    if (!j.reached(Step::old_retired)) {
        if (auto r = verify_on_key(j, key); !r)
            return r.error();
        auto action = retire(j, key, now);
        if (!action)
            return action.error();
        out.old_action = *action;
        if (auto r = record(j, Step::old_retired, store, now); !r)
            return r.error();
    }
    if (auto r = store.remove(); !r)
        return r.error();
    return out;
}

Result<void> verify_issued(const Journal& j, X509* x, const X509_NAME* subject)
{
    X509Ptr ca = parse_der(j.ca_cert);
    if (!ca)
        return Error{CKR_FUNCTION_FAILED, "the journal holds no CA certificate"};
    if (auto chain = check_chain(x, ca.get()); !chain)
        return chain;
    if (subject && !same_attributes(X509_get_subject_name(x), subject))
        return Error{CKR_FUNCTION_FAILED,
                     "its subject " + name_text(X509_get_subject_name(x)) + " is not the one requested"};
    return {};
}

bool same_attributes(const X509_NAME* a, const X509_NAME* b)
{
    auto entries = [](const X509_NAME* n) {
        std::vector<std::pair<int, std::string>> out;
        for (int i = 0; i < X509_NAME_entry_count(n); ++i) {
            const X509_NAME_ENTRY* e = X509_NAME_get_entry(n, i);
            out.emplace_back(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)), utf8_text(X509_NAME_ENTRY_get_data(e)));
        }
        std::sort(out.begin(), out.end());
        return out;
    };
    return entries(a) == entries(b);
}

} // namespace ukey::client
